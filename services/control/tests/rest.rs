//! The admin REST API `/admin/v1`, driven through its router on a real
//! SQLite control store.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use confab_control::keyring::Keyring;
use confab_control::model::{SessionRecord, kind};
use confab_control::service::{Actor, Control, WordScope};
use confab_store::ControlWrite;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const ADMIN_PASSWORD: &str = "tenant-admin-password";

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts the api.md error shape, with the request id of the header.
    fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "{}",
            self.text()
        );
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
        let request_id = self.header("x-request-id").expect("x-request-id");
        assert!(!request_id.is_empty());
        assert_eq!(body["error"]["request_id"], request_id, "{body}");
    }
}

/// A data plane whose one answer fits every support endpoint's shape.
struct AnyCell;

#[async_trait::async_trait]
impl confab_control::service::support::DataPlane for AnyCell {
    async fn call(
        &self,
        _: &str,
        _: &str,
        path: &str,
        _: Option<Value>,
    ) -> Result<confab_control::service::support::V1Answer, String> {
        // An answer of the shape the cell's /v1 route documents (the control
        // plane checks it), whatever is asked.
        let body = if path.starts_with("/v1/usage") {
            json!({"from": "2026-11-25T00:00:00Z", "to": "2026-11-25T01:00:00Z", "step": 60,
                   "points": [], "daily_active_users": [],
                   "totals": {"messages": 0, "logins": 0, "errors": 0, "push_sent": 0,
                              "push_retried": 0, "push_dead_token": 0, "push_dead_letter": 0,
                              "peak_connections": 0.0}})
        } else if path.starts_with("/v1/groups/") && !path.contains("/members") {
            json!({"group_id": "grp1", "name": "g", "avatar": "", "announcement": "", "custom": {},
                   "join_policy": "approval", "owner": "alice", "mute_all": true, "member_count": 1,
                   "created_at": "2026-11-25T14:00:00.000Z", "dismissed": true})
        } else {
            json!({"items": [], "next_cursor": null, "user_id": "bob", "revoked_before": "t",
                   "msg_id": "m", "conv_id": "p2p:bob:system", "seq": 1, "ts": "t",
                   "role": "member", "joined_at": "t", "muted_until": null})
        };
        Ok(confab_control::service::support::V1Answer { status: 200, body })
    }
}

struct Api {
    router: Router,
    control: Arc<Control>,
    /// The data plane's push queue the control plane lists dead letters of.
    push_queue: Arc<dyn confab_store::PushQueue>,
    dir: tempfile::TempDir,
    operator: String,
    names: AtomicU32,
}

impl Api {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let stores =
            confab_store::sqlite::SqliteStore::open(&dir.path().join("db"), Default::default())
                .await
                .unwrap()
                .into_stores();
        let keyring = Keyring::parse(&Keyring::generate_spec()).unwrap();
        let push_queue = stores.push_queue.clone();
        let control = Arc::new(
            Control::new(stores.control, Arc::new(keyring))
                .with_webhook_outbox(stores.webhooks)
                .with_push_queue(stores.push_queue),
        );
        let boot = control
            .bootstrap()
            .await
            .unwrap()
            .expect("a fresh store bootstraps");
        // A cell that answers every support lookup (tests/support.rs checks
        // what is asked of it; here only who may ask).
        for cell in ["default", "cell-b"] {
            control.register_data_plane(cell, Arc::new(AnyCell));
        }
        let router = confab_control::rest::router(control.clone());
        let mut api = Self {
            router,
            control,
            push_queue,
            dir,
            operator: String::new(),
            names: AtomicU32::new(0),
        };
        api.operator = api
            .login(&boot.operator_username, &boot.operator_password)
            .await;
        api
    }

    fn unique(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.names.fetch_add(1, Ordering::Relaxed))
    }

    async fn send(&self, request: Request<Body>) -> Resp {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Resp {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }

    async fn text(&self, path: &str, token: &str, text: &str) -> Resp {
        let request = Request::post(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "text/plain")
            .body(Body::from(text.to_owned()))
            .unwrap();
        self.send(request).await
    }

    /// A 2xx call's JSON (null for 204).
    async fn ok(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> Value {
        let r = self.call(method, path, Some(token), body).await;
        assert!(
            r.status.is_success(),
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
        assert!(r.header("x-request-id").is_some());
        if r.body.is_empty() {
            Value::Null
        } else {
            r.json()
        }
    }

    async fn login(&self, username: &str, password: &str) -> String {
        let r = self
            .call(
                "POST",
                "/admin/v1/sessions",
                None,
                Some(&json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()["token"].as_str().unwrap().to_owned()
    }

    /// Every page of a list, following `next_cursor`.
    async fn all(&self, path: &str, token: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = match &cursor {
                Some(c) => format!("{path}{sep}limit=200&cursor={c}"),
                None => format!("{path}{sep}limit=200"),
            };
            let page = self.ok("GET", &url, token, None).await;
            items.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return items,
            }
        }
    }

    /// The bytes of the SQLite database and its WAL.
    fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("db")
            {
                bytes.extend(std::fs::read(&path).unwrap());
            }
        }
        bytes
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn ids(items: &[Value], field: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[field].as_str().unwrap().to_owned())
        .collect()
}

/// One tenant with an app, a key, a word and (optionally) a tenant admin.
#[derive(Debug, Clone)]
struct Fixture {
    tenant: String,
    tenant_name: String,
    app: String,
    key: String,
    secret: String,
    word: String,
    /// A second tenant without apps (deletable).
    bare_tenant: String,
    admin_username: String,
    admin_account: String,
}

impl Api {
    /// Made through the API by the operator.
    async fn fixture_via_api(&self, with_admin: bool) -> Fixture {
        let op = self.operator.clone();
        let tenant_name = self.unique("tenant-");
        let tenant = self
            .ok(
                "POST",
                "/admin/v1/tenants",
                &op,
                Some(&json!({"name": tenant_name})),
            )
            .await;
        let tenant_id = tenant["tenant_id"].as_str().unwrap().to_owned();
        let app = self
            .ok(
                "POST",
                "/admin/v1/apps",
                &op,
                Some(&json!({"tenant_id": tenant_id, "name": "app"})),
            )
            .await;
        let app_id = app["app_id"].as_str().unwrap().to_owned();
        let word = self.unique("secretword");
        self.ok(
            "POST",
            &format!("/admin/v1/apps/{app_id}/words"),
            &op,
            Some(&json!({"add": [{"word": word, "action": "block"}]})),
        )
        .await;
        let bare = self
            .ok(
                "POST",
                "/admin/v1/tenants",
                &op,
                Some(&json!({"name": self.unique("bare-")})),
            )
            .await;
        let (admin_username, admin_account) = if with_admin {
            let username = self.unique("admin");
            let account = self
                .ok(
                    "POST",
                    "/admin/v1/accounts",
                    &op,
                    Some(&json!({"username": username, "password": ADMIN_PASSWORD, "role": "tenant_admin", "tenant_id": tenant_id})),
                )
                .await;
            (username, account["account_id"].as_str().unwrap().to_owned())
        } else {
            (String::new(), String::new())
        };
        self.add_webhook(&app_id).await;
        Fixture {
            tenant: tenant_id,
            tenant_name,
            app: app_id,
            key: app["key_id"].as_str().unwrap().to_owned(),
            secret: app["secret"].as_str().unwrap().to_owned(),
            word,
            bare_tenant: bare["tenant_id"].as_str().unwrap().to_owned(),
            admin_username,
            admin_account,
        }
    }

    /// A webhook for the app, and one dead letter `dl-<app id>` of it.
    async fn add_webhook(&self, app_id: &str) {
        use confab_store::webhooks::{NewWebhookEvent, WebhookAttempt};
        self.control
            .put_webhook(
                &Actor::System,
                app_id,
                confab_control::service::WebhookSettings {
                    url: "https://hooks.example.com/confab".into(),
                    events: vec![confab_config::webhook::WebhookEvent::AfterSend],
                    timeout_ms: None,
                    fail_mode: None,
                },
            )
            .await
            .unwrap();
        let outbox = self.control.webhook_outbox().unwrap();
        let app = confab_model::AppId::parse(app_id).unwrap();
        let id = format!("dl-{app_id}");
        outbox
            .enqueue(vec![NewWebhookEvent {
                id: id.clone(),
                app_id: app.clone(),
                event_type: "after_send".into(),
                payload: "{}".into(),
                created_at: 0,
            }])
            .await
            .unwrap();
        let claimed = outbox.claim(1, 60_000, 100).await.unwrap();
        assert_eq!(claimed.events.len(), 1);
        let attempt = WebhookAttempt {
            app_id: app,
            event_id: id,
            event_type: "after_send".into(),
            status_code: Some(500),
            outcome: "dead_lettered".into(),
            latency_ms: 1,
            error: None,
            at: 1,
        };
        assert!(outbox.dead_letter(&claimed.token, attempt).await.unwrap());
    }

    /// Made directly through the service (fast: no account).
    async fn fixture_direct(&self) -> Fixture {
        let c = &self.control;
        let sys = Actor::System;
        let tenant_name = self.unique("direct-");
        let tenant = c.create_tenant(&sys, &tenant_name).await.unwrap();
        let app = c
            .create_app(&sys, &tenant.tenant_id, "app", None)
            .await
            .unwrap();
        let word = self.unique("directword");
        c.change_words(
            &sys,
            &WordScope::App(app.app_id.clone()),
            vec![confab_config::words::WordRule {
                word: word.clone(),
                action: confab_config::words::WordAction::Block,
            }],
            vec![],
        )
        .await
        .unwrap();
        let bare = c
            .create_tenant(&sys, &self.unique("direct-bare-"))
            .await
            .unwrap();
        self.add_webhook(&app.app_id).await;
        Fixture {
            tenant: tenant.tenant_id,
            tenant_name,
            app: app.app_id,
            key: app.key_id,
            secret: app.secret,
            word,
            bare_tenant: bare.tenant_id,
            admin_username: String::new(),
            admin_account: String::new(),
        }
    }
}

/// A request of the matrix: `{tenant}`, `{bare_tenant}`, `{app}`, `{key}`
/// are the target's; `{own_app}` is the caller's own app; `{uniq}` is fresh.
#[derive(Clone, Copy)]
enum Payload {
    None,
    Json(&'static str),
    Text(&'static str),
}

struct Row {
    method: &'static str,
    path: &'static str,
    payload: Payload,
}

const fn row(method: &'static str, path: &'static str, payload: Payload) -> Row {
    Row {
        method,
        path,
        payload,
    }
}

const QUOTAS: &str = r#"{"max_connections": 5, "app_messages_per_sec": 5, "user_messages_per_sec": 5, "max_group_size": 5, "max_groups_per_user": 5, "rest_requests_per_sec": 5}"#;

/// Every endpoint that names a tenant-owned thing (in its path, query or body).
const TENANT_OWNED: &[Row] = &[
    row("GET", "/admin/v1/tenants/{tenant}", Payload::None),
    row(
        "PATCH",
        "/admin/v1/tenants/{tenant}",
        Payload::Json(r#"{"name": "renamed-{uniq}"}"#),
    ),
    row("DELETE", "/admin/v1/tenants/{bare_tenant}", Payload::None),
    row("POST", "/admin/v1/tenants/{tenant}/suspend", Payload::None),
    row("POST", "/admin/v1/tenants/{tenant}/resume", Payload::None),
    row("GET", "/admin/v1/apps?tenant_id={tenant}", Payload::None),
    row(
        "POST",
        "/admin/v1/apps",
        Payload::Json(r#"{"tenant_id": "{tenant}", "name": "intruder"}"#),
    ),
    row(
        "POST",
        "/admin/v1/accounts",
        Payload::Json(
            r#"{"username": "intruder{uniq}", "password": "intruder-password", "role": "tenant_admin", "tenant_id": "{tenant}"}"#,
        ),
    ),
    row("GET", "/admin/v1/apps/{app}", Payload::None),
    row(
        "PATCH",
        "/admin/v1/apps/{app}",
        Payload::Json(r#"{"name": "renamed"}"#),
    ),
    row(
        "PATCH",
        "/admin/v1/apps/{app}",
        Payload::Json(r#"{"settings": {"quotas": {"max_connections": 1}}}"#),
    ),
    row("DELETE", "/admin/v1/apps/{app}", Payload::None),
    row("POST", "/admin/v1/apps/{app}/suspend", Payload::None),
    row("POST", "/admin/v1/apps/{app}/resume", Payload::None),
    row("GET", "/admin/v1/apps/{app}/keys", Payload::None),
    row("POST", "/admin/v1/apps/{app}/keys", Payload::None),
    row(
        "POST",
        "/admin/v1/apps/{app}/keys/{key}/revoke",
        Payload::None,
    ),
    row(
        "POST",
        "/admin/v1/apps/{own_app}/keys/{key}/revoke",
        Payload::None,
    ),
    row("GET", "/admin/v1/apps/{app}/quotas", Payload::None),
    row("PUT", "/admin/v1/apps/{app}/quotas", Payload::Json(QUOTAS)),
    row("GET", "/admin/v1/apps/{app}/words", Payload::None),
    row(
        "POST",
        "/admin/v1/apps/{app}/words",
        Payload::Json(r#"{"add": [{"word": "intruder", "action": "mask"}], "remove": ["{word}"]}"#),
    ),
    row(
        "POST",
        "/admin/v1/apps/{app}/words/import",
        Payload::Text("intruder\nother,mask\n"),
    ),
    row("GET", "/admin/v1/apps/{app}/webhook", Payload::None),
    row(
        "PUT",
        "/admin/v1/apps/{app}/webhook",
        Payload::Json(r#"{"url": "https://hooks.example.com/x", "events": ["after_send"]}"#),
    ),
    row("DELETE", "/admin/v1/apps/{app}/webhook", Payload::None),
    row(
        "POST",
        "/admin/v1/apps/{app}/webhook/rotate-secret",
        Payload::None,
    ),
    row(
        "GET",
        "/admin/v1/apps/{app}/webhook/deliveries",
        Payload::None,
    ),
    row(
        "GET",
        "/admin/v1/apps/{app}/webhook/dead-letters",
        Payload::None,
    ),
    row(
        "POST",
        "/admin/v1/apps/{app}/webhook/dead-letters/{dead}/redeliver",
        Payload::None,
    ),
    row(
        "GET",
        "/admin/v1/apps/{app}/push-dead-letters",
        Payload::None,
    ),
    row(
        "GET",
        "/admin/v1/apps/{app}/push-credentials",
        Payload::None,
    ),
    row(
        "PUT",
        "/admin/v1/apps/{app}/push-credentials/huawei",
        Payload::Json(r#"{"app_id": "1", "app_secret": "intruder"}"#),
    ),
    row(
        "DELETE",
        "/admin/v1/apps/{app}/push-credentials/huawei",
        Payload::None,
    ),
    row(
        "GET",
        "/admin/v1/apps/{app}/support/users/bob/devices",
        Payload::None,
    ),
    row(
        "POST",
        "/admin/v1/apps/{app}/support/users/bob/revoke",
        Payload::None,
    ),
    row(
        "POST",
        "/admin/v1/apps/{app}/support/users/bob/messages",
        Payload::Json(r#"{"text": "intruder"}"#),
    ),
    row(
        "GET",
        "/admin/v1/apps/{app}/support/conversations/p2p:a:b/messages",
        Payload::None,
    ),
    row(
        "POST",
        "/admin/v1/apps/{app}/push-credentials/huawei/test",
        Payload::Json(r#"{"token": "intruder"}"#),
    ),
    row("GET", "/admin/v1/apps/{app}/usage", Payload::None),
    row("GET", "/admin/v1/apps/{app}/groups/grp1", Payload::None),
    row("DELETE", "/admin/v1/apps/{app}/groups/grp1", Payload::None),
    row(
        "GET",
        "/admin/v1/apps/{app}/groups/grp1/members",
        Payload::None,
    ),
    row(
        "POST",
        "/admin/v1/apps/{app}/groups/grp1/mute",
        Payload::Json(r#"{"mute_all": true}"#),
    ),
    row(
        "POST",
        "/admin/v1/apps/{app}/groups/grp1/members/bob/mute",
        Payload::Json(r#"{"duration_s": 60}"#),
    ),
];

/// Operator-only endpoints, with the caller's own ids where they take one.
const OPERATOR_ONLY: &[Row] = &[
    row(
        "POST",
        "/admin/v1/tenants",
        Payload::Json(r#"{"name": "nope-{uniq}"}"#),
    ),
    row(
        "PATCH",
        "/admin/v1/tenants/{tenant}",
        Payload::Json(r#"{"name": "nope-{uniq}"}"#),
    ),
    row("DELETE", "/admin/v1/tenants/{tenant}", Payload::None),
    row("POST", "/admin/v1/tenants/{tenant}/suspend", Payload::None),
    row("POST", "/admin/v1/tenants/{tenant}/resume", Payload::None),
    row("PUT", "/admin/v1/apps/{app}/quotas", Payload::Json(QUOTAS)),
    row(
        "PATCH",
        "/admin/v1/apps/{app}",
        Payload::Json(r#"{"settings": {"quotas": {"max_connections": 1}}}"#),
    ),
    row(
        "PATCH",
        "/admin/v1/apps/{app}",
        Payload::Json(r#"{"settings": {"retention_days": 3650}}"#),
    ),
    row(
        "POST",
        "/admin/v1/apps",
        Payload::Json(
            r#"{"tenant_id": "{tenant}", "name": "x", "settings": {"max_body_bytes": 65536}}"#,
        ),
    ),
    row(
        "POST",
        "/admin/v1/accounts",
        Payload::Json(
            r#"{"username": "nope{uniq}", "password": "operator-password", "role": "operator"}"#,
        ),
    ),
    row(
        "POST",
        "/admin/v1/words",
        Payload::Json(r#"{"add": [{"word": "nope", "action": "block"}]}"#),
    ),
    row("POST", "/admin/v1/words/import", Payload::Text("nope\n")),
    row("GET", "/admin/v1/gray-rules", Payload::None),
    row(
        "POST",
        "/admin/v1/gray-rules",
        Payload::Json(r#"{"release": "canary", "percent": 10}"#),
    ),
    row(
        "PUT",
        "/admin/v1/gray-rules/{rule}",
        Payload::Json(r#"{"release": "canary", "percent": 20}"#),
    ),
    row("DELETE", "/admin/v1/gray-rules/{rule}", Payload::None),
    row(
        "POST",
        "/admin/v1/gray-rules/preview",
        Payload::Json(r#"{"rule": {"release": "canary", "percent": 30}, "app_id": "{app}"}"#),
    ),
    row("GET", "/admin/v1/cells", Payload::None),
    row(
        "POST",
        "/admin/v1/cells",
        Payload::Json(r#"{"cell_id": "nope"}"#),
    ),
    row("DELETE", "/admin/v1/cells/{cell}", Payload::None),
];

struct Ids<'a> {
    target: &'a Fixture,
    own: &'a Fixture,
    uniq: String,
    rule: &'a str,
    cell: &'a str,
}

fn fill(template: &str, ids: &Ids<'_>) -> String {
    template
        .replace("{bare_tenant}", &ids.target.bare_tenant)
        .replace("{tenant}", &ids.target.tenant)
        .replace("{own_app}", &ids.own.app)
        .replace("{app}", &ids.target.app)
        .replace("{key}", &ids.target.key)
        .replace("{dead}", &format!("dl-{}", ids.target.app))
        .replace("{word}", &ids.target.word)
        .replace("{uniq}", &ids.uniq)
        .replace("{rule}", ids.rule)
        .replace("{cell}", ids.cell)
}

impl Api {
    async fn run_row(&self, row: &Row, token: &str, ids: &Ids<'_>) -> Resp {
        let path = fill(row.path, ids);
        match row.payload {
            Payload::None => self.call(row.method, &path, Some(token), None).await,
            Payload::Json(t) => {
                let body: Value = serde_json::from_str(&fill(t, ids)).unwrap();
                self.call(row.method, &path, Some(token), Some(&body)).await
            }
            Payload::Text(t) => self.text(&path, token, &fill(t, ids)).await,
        }
    }

    /// What the operator sees of a fixture (to show it did not change).
    async fn observe(&self, f: &Fixture) -> Value {
        let op = &self.operator;
        json!({
            "tenant": self.ok("GET", &format!("/admin/v1/tenants/{}", f.tenant), op, None).await,
            "bare": self.ok("GET", &format!("/admin/v1/tenants/{}", f.bare_tenant), op, None).await,
            "app": self.ok("GET", &format!("/admin/v1/apps/{}", f.app), op, None).await,
            "keys": self.all(&format!("/admin/v1/apps/{}/keys", f.app), op).await,
            "words": self.all(&format!("/admin/v1/apps/{}/words", f.app), op).await,
            "apps": self.all(&format!("/admin/v1/apps?tenant_id={}", f.tenant), op).await,
            "accounts": self.all("/admin/v1/accounts", op).await,
        })
    }
}

/// The (method, path) pairs of the document whose path names a tenant-owned id.
fn documented_tenant_owned_routes() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(confab_control::rest::openapi()).unwrap();
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !["{tenant_id}", "{app_id}", "{key_id}"]
            .iter()
            .any(|p| path.contains(p))
        {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            routes.insert((method.to_uppercase(), path.clone()));
        }
    }
    routes
}

fn template_route(row: &Row) -> (String, String) {
    let path = row.path.split('?').next().unwrap();
    let path = path
        .replace("{bare_tenant}", "{tenant_id}")
        .replace("{tenant}", "{tenant_id}")
        .replace("{own_app}", "{app_id}")
        .replace("{app}", "{app_id}")
        .replace("{key}", "{key_id}")
        .replace("{dead}", "{event_id}")
        .replace("/push-credentials/huawei", "/push-credentials/{vendor}")
        .replace("/support/users/bob/", "/support/users/{user_id}/")
        .replace("/groups/grp1", "/groups/{group_id}")
        .replace("/members/bob/", "/members/{user_id}/")
        .replace(
            "/support/conversations/p2p:a:b/",
            "/support/conversations/{conv_id}/",
        );
    (row.method.to_owned(), path)
}

#[tokio::test]
async fn isolation_matrix() -> TestResult {
    let api = Api::new().await;
    // The matrix covers every documented route that takes a tenant-owned id.
    let covered: BTreeSet<_> = TENANT_OWNED.iter().map(template_route).collect();
    let missing: Vec<_> = documented_tenant_owned_routes()
        .difference(&covered)
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from the isolation matrix: {missing:?}"
    );

    let t1 = api.fixture_via_api(true).await;
    let t2 = api.fixture_via_api(true).await;
    let admin1 = api.login(&t1.admin_username, ADMIN_PASSWORD).await;
    let rule = api
        .ok(
            "POST",
            "/admin/v1/gray-rules",
            &api.operator,
            Some(&json!({"release": "canary", "percent": 10})),
        )
        .await["rule_id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.ok(
        "POST",
        "/admin/v1/cells",
        &api.operator,
        Some(&json!({"cell_id": "cell-b"})),
    )
    .await;

    // T1's admin, every one of T2's things: 404, and T2 unchanged.
    let before = api.observe(&t2).await;
    for (n, row) in TENANT_OWNED.iter().enumerate() {
        let ids = Ids {
            target: &t2,
            own: &t1,
            uniq: format!("t1x{n}"),
            rule: &rule,
            cell: "cell-b",
        };
        let r = api.run_row(row, &admin1, &ids).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "T1 admin: {} {}: {}",
            row.method,
            fill(row.path, &ids),
            r.text()
        );
        r.assert_error(StatusCode::NOT_FOUND, "not_found");
        assert!(!r.text().contains(&t2.tenant_name), "{}", r.text());
    }
    // Bad input for another tenant's thing is still not found (who may
    // comes before what the request holds).
    let r = api
        .text(
            &format!("/admin/v1/apps/{}/words/import", t2.app),
            &admin1,
            "ok\nbad,nonsense\n",
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");
    let r = api
        .call(
            "PATCH",
            &format!("/admin/v1/apps/{}", t2.app),
            Some(&admin1),
            Some(&json!({"name": ""})),
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        api.observe(&t2).await,
        before,
        "T2 changed under T1's admin"
    );

    // Operator-only endpoints: 403 to T1's admin, even on its own things.
    let before1 = api.observe(&t1).await;
    for (n, row) in OPERATOR_ONLY.iter().enumerate() {
        let ids = Ids {
            target: &t1,
            own: &t1,
            uniq: format!("t1o{n}"),
            rule: &rule,
            cell: "cell-b",
        };
        let r = api.run_row(row, &admin1, &ids).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "T1 admin: {} {}: {}",
            row.method,
            fill(row.path, &ids),
            r.text()
        );
        r.assert_error(StatusCode::FORBIDDEN, "forbidden");
    }
    assert_eq!(
        api.observe(&t1).await,
        before1,
        "T1 changed by forbidden calls"
    );

    // Lists T1's admin gets hold none of T2's things, and T1's own.
    let t2_marks = [
        t2.tenant.as_str(),
        t2.tenant_name.as_str(),
        t2.bare_tenant.as_str(),
        t2.app.as_str(),
        t2.key.as_str(),
        t2.word.as_str(),
        t2.admin_username.as_str(),
        t2.admin_account.as_str(),
    ];
    let lists = [
        ("/admin/v1/tenants".to_owned(), t1.tenant.clone()),
        ("/admin/v1/apps".to_owned(), t1.app.clone()),
        (
            format!("/admin/v1/apps?tenant_id={}", t1.tenant),
            t1.app.clone(),
        ),
        (format!("/admin/v1/apps/{}/keys", t1.app), t1.key.clone()),
        ("/admin/v1/accounts".to_owned(), t1.admin_account.clone()),
        (format!("/admin/v1/apps/{}/words", t1.app), t1.word.clone()),
        ("/admin/v1/words".to_owned(), String::new()),
    ];
    for (path, own) in &lists {
        let items = api.all(path, &admin1).await;
        let text = serde_json::to_string(&items)?;
        for mark in t2_marks {
            assert!(!text.contains(mark), "{path} shows T2's {mark}: {text}");
        }
        assert!(
            text.contains(own.as_str()),
            "{path} lacks T1's {own}: {text}"
        );
    }
    let tenants = api.all("/admin/v1/tenants", &admin1).await;
    assert_eq!(ids(&tenants, "tenant_id"), vec![t1.tenant.clone()]);
    let accounts = api.all("/admin/v1/accounts", &admin1).await;
    assert_eq!(ids(&accounts, "account_id"), vec![t1.admin_account.clone()]);

    // The operator sees both tenants' things.
    let all_tenants = ids(
        &api.all("/admin/v1/tenants", &api.operator).await,
        "tenant_id",
    );
    assert!(all_tenants.contains(&t1.tenant) && all_tenants.contains(&t2.tenant));
    let all_apps = ids(&api.all("/admin/v1/apps", &api.operator).await, "app_id");
    assert!(all_apps.contains(&t1.app) && all_apps.contains(&t2.app));

    // The operator: 2xx on every tenant-owned endpoint (a fresh tenant per
    // request, since some of them delete or revoke).
    for (n, row) in TENANT_OWNED.iter().enumerate() {
        let target = api.fixture_direct().await;
        let ids = Ids {
            target: &target,
            own: &target,
            uniq: format!("op{n}"),
            rule: &rule,
            cell: "cell-b",
        };
        let r = api.run_row(row, &api.operator, &ids).await;
        assert!(
            r.status.is_success(),
            "operator: {} {}: {} {}",
            row.method,
            fill(row.path, &ids),
            r.status,
            r.text()
        );
    }
    // … and on the operator-only ones.
    for (n, row) in OPERATOR_ONLY.iter().enumerate() {
        let target = api.fixture_direct().await;
        let ids = Ids {
            target: &target,
            own: &target,
            uniq: format!("opo{n}"),
            rule: &rule,
            cell: "cell-b",
        };
        let r = if row.method == "DELETE" && row.path == "/admin/v1/tenants/{tenant}" {
            // A tenant is deleted once it has no apps.
            let mut r = api.run_row(row, &api.operator, &ids).await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
            api.ok(
                "DELETE",
                &format!("/admin/v1/apps/{}", target.app),
                &api.operator,
                None,
            )
            .await;
            r = api.run_row(row, &api.operator, &ids).await;
            r
        } else {
            api.run_row(row, &api.operator, &ids).await
        };
        assert!(
            r.status.is_success(),
            "operator: {} {}: {} {}",
            row.method,
            fill(row.path, &ids),
            r.status,
            r.text()
        );
    }
    Ok(())
}

#[tokio::test]
async fn key_rotation_never_shows_a_secret_again() -> TestResult {
    let api = Api::new().await;
    let op = api.operator.clone();
    let f = api.fixture_via_api(false).await;
    let keys_path = format!("/admin/v1/apps/{}/keys", f.app);

    // Step 1: a second key, its secret shown once.
    let r = api.call("POST", &keys_path, Some(&op), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let second = r.json();
    let second_key = second["key_id"].as_str().unwrap().to_owned();
    let second_secret = second["secret"].as_str().unwrap().to_owned();
    assert!(second_secret.starts_with("sk_"));
    assert_ne!(second_secret, f.secret);

    // Both listed, active, without any secret.
    let r = api.call("GET", &keys_path, Some(&op), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.text();
    assert!(!text.contains("secret"), "{text}");
    assert!(!text.contains(&f.secret) && !text.contains(&second_secret));
    let keys = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(
        ids(&keys, "key_id"),
        vec![f.key.clone(), second_key.clone()]
    );
    assert!(
        keys.iter()
            .all(|k| k["status"] == "active" && k["revoked_at"].is_null())
    );
    for path in [
        format!("/admin/v1/apps/{}", f.app),
        "/admin/v1/apps".to_owned(),
    ] {
        let r = api.call("GET", &path, Some(&op), None).await;
        assert!(!r.text().contains("secret"), "{path}: {}", r.text());
    }

    // Never in the database in clear.
    let db = api.database_bytes();
    assert!(!db.is_empty());
    assert!(
        !contains(&db, &f.secret),
        "the first secret is in the database in clear"
    );
    assert!(
        !contains(&db, &second_secret),
        "the second secret is in the database in clear"
    );
    assert!(
        contains(&db, &second_key),
        "the database file is not the one written"
    );

    // A third active key is refused.
    let r = api.call("POST", &keys_path, Some(&op), None).await;
    r.assert_error(StatusCode::CONFLICT, "conflict");

    // Revoke the old one: listed as revoked.
    let r = api
        .call(
            "POST",
            &format!("{keys_path}/{}/revoke", f.key),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["status"], "revoked");
    let keys = api.all(&keys_path, &op).await;
    let old = keys.iter().find(|k| k["key_id"] == f.key.as_str()).unwrap();
    assert_eq!(old["status"], "revoked");
    assert!(old["revoked_at"].as_str().unwrap().ends_with('Z'));
    let new = keys
        .iter()
        .find(|k| k["key_id"] == second_key.as_str())
        .unwrap();
    assert_eq!(new["status"], "active");
    // Revoking it again: no such active key.
    let r = api
        .call(
            "POST",
            &format!("{keys_path}/{}/revoke", f.key),
            Some(&op),
            None,
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");
    // With one active key, another may be made.
    let r = api.call("POST", &keys_path, Some(&op), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    Ok(())
}

#[tokio::test]
async fn errors_are_json_with_the_request_id() -> TestResult {
    let api = Api::new().await;
    let op = api.operator.clone();

    // Malformed JSON.
    let r = api
        .send(
            Request::post("/admin/v1/tenants")
                .header("authorization", format!("Bearer {op}"))
                .header("content-type", "application/json")
                .body(Body::from("{\"name\": "))?,
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");

    // Wrong content type; unknown field; wrong type.
    let r = api
        .send(
            Request::post("/admin/v1/tenants")
                .header("authorization", format!("Bearer {op}"))
                .header("content-type", "text/plain")
                .body(Body::from("{\"name\": \"x\"}"))?,
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    let r = api
        .call(
            "POST",
            "/admin/v1/tenants",
            Some(&op),
            Some(&json!({"nmae": "x"})),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nmae")
    );
    let r = api
        .call(
            "POST",
            "/admin/v1/tenants",
            Some(&op),
            Some(&json!({"name": 7})),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    // Bad values the service refuses.
    let r = api
        .call(
            "POST",
            "/admin/v1/tenants",
            Some(&op),
            Some(&json!({"name": ""})),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    // Bad paging.
    for q in ["limit=0", "limit=201", "limit=x", "cursor=%21%21"] {
        let r = api
            .call("GET", &format!("/admin/v1/tenants?{q}"), Some(&op), None)
            .await;
        r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    }

    // Unknown routes under /admin/v1 and a method a route does not take.
    for path in [
        "/admin/v1/nope",
        "/admin/v1/tenants/x/nope",
        "/admin/v1",
        "/admin/v1/",
    ] {
        let r = api.call("GET", path, Some(&op), None).await;
        r.assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    let r = api.call("PUT", "/admin/v1/tenants", Some(&op), None).await;
    r.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    // Not found things.
    let r = api
        .call("GET", "/admin/v1/apps/app_nope", Some(&op), None)
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");

    // No session; an unknown one; a malformed header; an expired one.
    let r = api.call("GET", "/admin/v1/tenants", None, None).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(r.header("www-authenticate").is_some());
    let unknown = format!("cs_{}", "0".repeat(40));
    let r = api.call("GET", "/admin/v1/me", Some(&unknown), None).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let r = api
        .send(
            Request::get("/admin/v1/me")
                .header("authorization", "Basic YWRtaW46YWRtaW4=")
                .body(Body::empty())?,
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    let me = api.ok("GET", "/admin/v1/me", &op, None).await;
    let expired = format!("cs_{}", "1".repeat(40));
    let now = confab_model::now_ms();
    let session = SessionRecord {
        account_id: me["account_id"].as_str().unwrap().to_owned(),
        created_at: now - 20_000,
        expires_at: now - 10_000,
    };
    api.control
        .store()
        .write(vec![ControlWrite::Insert {
            kind: kind::SESSION.into(),
            id: Sha256::digest(expired.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            tenant_id: None,
            doc: serde_json::to_string(&session)?,
        }])
        .await?;
    let r = api.call("GET", "/admin/v1/me", Some(&expired), None).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    // Wrong password.
    let r = api
        .call(
            "POST",
            "/admin/v1/sessions",
            None,
            Some(&json!({"username": "admin", "password": "wrong password"})),
        )
        .await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");

    // A body over 1 MiB.
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let r = api
        .send(
            Request::post("/admin/v1/tenants")
                .header("authorization", format!("Bearer {op}"))
                .header("content-type", "application/json")
                .body(Body::from(big))?,
        )
        .await;
    r.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");

    // A request id the client brings is kept; success responses carry one too.
    let r = api
        .send(
            Request::get("/admin/v1/nope")
                .header("x-request-id", "my-request-42")
                .body(Body::empty())?,
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");
    assert_eq!(r.header("x-request-id"), Some("my-request-42"));
    let r = api.call("GET", "/admin/v1/me", Some(&op), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("x-request-id").is_some_and(|id| id.len() == 26));

    // The cookie works as well as the header; after sign-out neither does.
    let r = api
        .send(
            Request::get("/admin/v1/me")
                .header("cookie", format!("theme=dark; confab_session={op}"))
                .body(Body::empty())?,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = api
        .call("DELETE", "/admin/v1/sessions/current", Some(&op), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api.call("GET", "/admin/v1/me", Some(&op), None).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    Ok(())
}

#[tokio::test]
async fn idempotent_creates() -> TestResult {
    let api = Api::new().await;
    let op = api.operator.clone();
    let tenant = api
        .ok(
            "POST",
            "/admin/v1/tenants",
            &op,
            Some(&json!({"name": "idem"})),
        )
        .await;
    let tenant_id = tenant["tenant_id"].as_str().unwrap();
    let create = |key: &str, body: &Value| {
        Request::post("/admin/v1/apps")
            .header("authorization", format!("Bearer {op}"))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let key = "5f0c6e1e-8a4b-4c1e-9d55-0f7f5b1c2a3d";
    let body = json!({"tenant_id": tenant_id, "name": "once"});
    let first = api.send(create(key, &body)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = api.send(create(key, &body)).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text());
    assert_eq!(again.json(), first.json());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let app_id = first.json()["app_id"].as_str().unwrap().to_owned();
    let apps = api
        .all(&format!("/admin/v1/apps?tenant_id={tenant_id}"), &op)
        .await;
    assert_eq!(ids(&apps, "app_id"), vec![app_id]);

    // The same key with another body: a conflict, and nothing created.
    let other = json!({"tenant_id": tenant_id, "name": "twice"});
    let r = api.send(create(key, &other)).await;
    r.assert_error(StatusCode::CONFLICT, "conflict");
    let apps = api
        .all(&format!("/admin/v1/apps?tenant_id={tenant_id}"), &op)
        .await;
    assert_eq!(apps.len(), 1);

    // After 24 hours the key is free again (and the sweep drops the record).
    let me = api.ok("GET", "/admin/v1/me", &op, None).await;
    let record_id: String = Sha256::new()
        .chain_update(me["account_id"].as_str().unwrap().as_bytes())
        .chain_update([0u8])
        .chain_update(key.as_bytes())
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let record = api
        .control
        .store()
        .get(kind::IDEMPOTENCY, &record_id)
        .await?
        .expect("the record is kept under sha256(account, key)");
    assert!(
        !record
            .doc
            .contains(&first.json()["secret"].as_str().unwrap()[3..])
    );
    let mut doc: Value = serde_json::from_str(&record.doc)?;
    doc["created_at"] = json!(confab_model::now_ms() - 25 * 3600 * 1000);
    api.control
        .store()
        .write(vec![ControlWrite::Put {
            kind: kind::IDEMPOTENCY.into(),
            id: record_id.clone(),
            tenant_id: None,
            doc: doc.to_string(),
        }])
        .await?;
    assert_eq!(
        confab_control::rest::sweep_idempotency(&api.control).await?,
        1
    );
    assert!(
        api.control
            .store()
            .get(kind::IDEMPOTENCY, &record_id)
            .await?
            .is_none()
    );
    let r = api.send(create(key, &other)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("idempotent-replayed"), None);
    let r = api.send(create(key, &body)).await;
    r.assert_error(StatusCode::CONFLICT, "conflict");

    // Another key creates another app; a short key is refused.
    let r = api
        .send(create("1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed", &other))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = api.send(create("short", &other)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");

    // A failed create keeps no record: the key works once the request does.
    let bad = json!({"tenant_id": tenant_id, "name": ""});
    let retry_key = "c2a1f9e0-5d3b-4f6a-8e7d-9b0c1d2e3f4a";
    let r = api.send(create(retry_key, &bad)).await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    let good = json!({"tenant_id": tenant_id, "name": "retried"});
    let r = api.send(create(retry_key, &good)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());

    // Keys too: the replay shows the same secret, which the store holds sealed.
    let key_request = || {
        Request::post(format!(
            "/admin/v1/apps/{}/keys",
            first.json()["app_id"].as_str().unwrap()
        ))
        .header("authorization", format!("Bearer {op}"))
        .header("idempotency-key", "8c7e2f4a-1b3d-4e5f-a6b7-c8d9e0f1a2b3")
        .body(Body::empty())
        .unwrap()
    };
    let k1 = api.send(key_request()).await;
    let k2 = api.send(key_request()).await;
    assert_eq!(k1.status, StatusCode::CREATED, "{}", k1.text());
    assert_eq!(k1.json(), k2.json());
    let db = api.database_bytes();
    for secret in [&first.json()["secret"], &k1.json()["secret"]] {
        assert!(
            !contains(&db, secret.as_str().unwrap()),
            "a secret is in the database in clear"
        );
    }
    Ok(())
}

#[tokio::test]
async fn pagination_pages_through_every_tenant_once() -> TestResult {
    let api = Api::new().await;
    let op = api.operator.clone();
    let mut created = HashSet::new();
    for n in 0..7 {
        let t = api
            .ok(
                "POST",
                "/admin/v1/tenants",
                &op,
                Some(&json!({"name": format!("page-{n}")})),
            )
            .await;
        created.insert(t["tenant_id"].as_str().unwrap().to_owned());
    }
    let total = api.control.tenants(&Actor::System).await?.len();
    assert_eq!(total, 8, "7 and the default tenant");
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("/admin/v1/tenants?limit=3&cursor={c}"),
            None => "/admin/v1/tenants?limit=3".to_owned(),
        };
        let page = api.ok("GET", &url, &op, None).await;
        let items = page["items"].as_array().unwrap();
        sizes.push(items.len());
        seen.extend(ids(items, "tenant_id"));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(sizes.len() < 10, "no end");
    }
    assert_eq!(sizes, vec![3, 3, total - 6]);
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates: {seen:?}");
    assert_eq!(unique.len(), total);
    assert!(created.is_subset(&unique));
    // Ordered, and the default page holds all eight.
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen);
    let page = api.ok("GET", "/admin/v1/tenants", &op, None).await;
    assert_eq!(page["items"].as_array().unwrap().len(), total);
    assert!(page["next_cursor"].is_null());
    Ok(())
}

#[tokio::test]
async fn swagger_ui_and_the_document_are_served() -> TestResult {
    let api = Api::new().await;
    let r = api.call("GET", "/admin/docs/", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().to_lowercase().contains("swagger"));
    let r = api.call("GET", "/admin/v1/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("x-request-id").is_some());
    let doc = r.json();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/admin/v1/sessions",
        "/admin/v1/tenants",
        "/admin/v1/apps/{app_id}/keys",
        "/admin/v1/gray-rules/preview",
    ] {
        assert!(paths.contains_key(p), "{p}");
    }
    assert_eq!(doc, serde_json::to_value(confab_control::rest::openapi())?);
    Ok(())
}

#[tokio::test]
async fn every_operation_works_for_an_operator() -> TestResult {
    let api = Api::new().await;
    let op = api.operator.clone();
    let rfc3339 = |v: &Value| {
        let s = v.as_str().unwrap_or_default();
        assert!(
            s.len() == 24 && s.as_bytes()[10] == b'T' && s.ends_with('Z'),
            "not RFC 3339: {v}"
        );
    };

    let me = api.ok("GET", "/admin/v1/me", &op, None).await;
    assert_eq!(me["role"], "operator");
    rfc3339(&me["created_at"]);

    // Cells and a tenant in one.
    let cell = api
        .ok(
            "POST",
            "/admin/v1/cells",
            &op,
            Some(&json!({"cell_id": "eu-1", "description": "Europe"})),
        )
        .await;
    rfc3339(&cell["created_at"]);
    let cells = api.all("/admin/v1/cells", &op).await;
    assert_eq!(ids(&cells, "cell_id"), vec!["default", "eu-1"]);
    let t = api
        .ok(
            "POST",
            "/admin/v1/tenants",
            &op,
            Some(&json!({"name": "acme", "cell_id": "eu-1"})),
        )
        .await;
    assert_eq!(t["cell_id"], "eu-1");
    rfc3339(&t["created_at"]);
    let tid = t["tenant_id"].as_str().unwrap().to_owned();
    let r = api
        .call("DELETE", "/admin/v1/cells/eu-1", Some(&op), None)
        .await;
    r.assert_error(StatusCode::CONFLICT, "conflict");
    let t = api
        .ok(
            "PATCH",
            &format!("/admin/v1/tenants/{tid}"),
            &op,
            Some(&json!({"name": "acme-corp", "cell_id": "default", "status": "suspended"})),
        )
        .await;
    assert_eq!(
        (
            t["name"].as_str(),
            t["cell_id"].as_str(),
            t["status"].as_str()
        ),
        (Some("acme-corp"), Some("default"), Some("suspended"))
    );
    api.ok("DELETE", "/admin/v1/cells/eu-1", &op, None).await;
    let t = api
        .ok(
            "POST",
            &format!("/admin/v1/tenants/{tid}/resume"),
            &op,
            None,
        )
        .await;
    assert_eq!(t["status"], "active");
    // By name too.
    let t = api
        .ok("GET", "/admin/v1/tenants/acme-corp", &op, None)
        .await;
    assert_eq!(t["tenant_id"], tid.as_str());
    let r = api
        .call(
            "POST",
            "/admin/v1/tenants",
            Some(&op),
            Some(&json!({"name": "acme-corp"})),
        )
        .await;
    r.assert_error(StatusCode::CONFLICT, "conflict");

    // An app with settings; quotas.
    let app = api
        .ok(
            "POST",
            "/admin/v1/apps",
            &op,
            Some(&json!({"tenant_id": tid, "name": "chat", "settings": {"kick_policy": "one_in_all", "quotas": {"max_connections": 77}}})),
        )
        .await;
    let aid = app["app_id"].as_str().unwrap().to_owned();
    let got = api
        .ok("GET", &format!("/admin/v1/apps/{aid}"), &op, None)
        .await;
    assert_eq!(got["settings"]["kick_policy"], "one_in_all");
    assert_eq!(got["settings"]["quotas"]["max_connections"], 77);
    assert_eq!(got["settings"]["quotas"]["max_group_size"], 500);
    assert_eq!(got["settings"]["max_body_bytes"], 12 * 1024);
    rfc3339(&got["created_at"]);
    let q = api
        .ok("GET", &format!("/admin/v1/apps/{aid}/quotas"), &op, None)
        .await;
    assert_eq!(q["max_connections"], 77);
    let q = api
        .ok(
            "PUT",
            &format!("/admin/v1/apps/{aid}/quotas"),
            &op,
            Some(&json!({"max_connections": 1, "app_messages_per_sec": 2, "user_messages_per_sec": 3, "max_group_size": 4, "max_groups_per_user": 5, "rest_requests_per_sec": 6})),
        )
        .await;
    assert_eq!(q["rest_requests_per_sec"], 6);
    let r = api
        .call(
            "PUT",
            &format!("/admin/v1/apps/{aid}/quotas"),
            Some(&op),
            Some(&json!({"max_connections": 1})),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    let r = api
        .call(
            "PATCH",
            &format!("/admin/v1/apps/{aid}"),
            Some(&op),
            Some(&json!({"settings": {"quotas": {"max_group_size": 1}}})),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    let got = api
        .ok(
            "PATCH",
            &format!("/admin/v1/apps/{aid}"),
            &op,
            Some(&json!({"name": "chat2", "settings": {"retention_days": 7}})),
        )
        .await;
    assert_eq!(got["name"], "chat2");
    assert_eq!(got["settings"]["retention_days"], 7);
    assert_eq!(
        got["settings"]["quotas"]["max_connections"], 1,
        "other settings kept"
    );
    let got = api
        .ok("POST", &format!("/admin/v1/apps/{aid}/suspend"), &op, None)
        .await;
    assert_eq!(got["status"], "suspended");
    let got = api
        .ok("POST", &format!("/admin/v1/apps/{aid}/resume"), &op, None)
        .await;
    assert_eq!(got["status"], "active");

    // A tenant admin may change the kick policy of its apps, not quotas.
    api.ok(
        "POST",
        "/admin/v1/accounts",
        &op,
        Some(&json!({"username": "acme-admin", "password": ADMIN_PASSWORD, "role": "tenant_admin", "tenant_id": tid})),
    )
    .await;
    let admin = api.login("acme-admin", ADMIN_PASSWORD).await;
    let got = api
        .ok(
            "PATCH",
            &format!("/admin/v1/apps/{aid}"),
            &admin,
            Some(&json!({"settings": {"kick_policy": "unlimited", "retention_days": 7}})),
        )
        .await;
    assert_eq!(got["settings"]["kick_policy"], "unlimited");
    // ... and its push templates (replaced as a whole, checked).
    assert_eq!(got["settings"]["push"]["placeholders"]["image"], "[image]");
    let got = api
        .ok(
            "PATCH",
            &format!("/admin/v1/apps/{aid}"),
            &admin,
            Some(&json!({"settings": {"push": {"title": "{sender} says", "group_title": "{group}", "hide_content": true, "hidden_body": "You have a new message", "placeholders": {"image": "[photo]"}, "other": "[message]"}}})),
        )
        .await;
    assert_eq!(got["settings"]["push"]["title"], "{sender} says");
    assert_eq!(got["settings"]["push"]["hide_content"], true);
    assert_eq!(got["settings"]["push"]["placeholders"]["image"], "[photo]");
    let r = api
        .call(
            "PATCH",
            &format!("/admin/v1/apps/{aid}"),
            Some(&admin),
            Some(&json!({"settings": {"push": {"title": "x".repeat(201), "group_title": "", "hide_content": false, "hidden_body": "", "placeholders": {}, "other": ""}}})),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    let me = api.ok("GET", "/admin/v1/me", &admin, None).await;
    assert_eq!(
        (me["role"].as_str(), me["tenant_id"].as_str()),
        (Some("tenant_admin"), Some(tid.as_str()))
    );
    // A tenant admin creates an admin of its own tenant.
    let acct = api
        .ok(
            "POST",
            "/admin/v1/accounts",
            &admin,
            Some(&json!({"username": "acme-admin-2", "password": ADMIN_PASSWORD, "role": "tenant_admin"})),
        )
        .await;
    assert_eq!(acct["tenant_id"], tid.as_str());
    // Suspending the tenant refuses its admins' sign-in.
    api.ok(
        "POST",
        &format!("/admin/v1/tenants/{tid}/suspend"),
        &op,
        None,
    )
    .await;
    let r = api
        .call(
            "POST",
            "/admin/v1/sessions",
            None,
            Some(&json!({"username": "acme-admin", "password": ADMIN_PASSWORD})),
        )
        .await;
    r.assert_error(StatusCode::FORBIDDEN, "suspended");
    api.ok(
        "POST",
        &format!("/admin/v1/tenants/{tid}/resume"),
        &op,
        None,
    )
    .await;

    // Words: global and per app, change and import.
    let r = api
        .ok(
            "POST",
            "/admin/v1/words",
            &op,
            Some(&json!({"add": [{"word": "spam", "action": "block"}, {"word": "darn", "action": "mask"}]})),
        )
        .await;
    assert_eq!(r["count"], 2);
    let r = api
        .text(
            "/admin/v1/words/import?default_action=mask",
            &op,
            "# list\nheck\nscam,block\n\n",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!({"imported": 2, "count": 4}));
    let words = api.all("/admin/v1/words", &op).await;
    assert_eq!(
        words,
        vec![
            json!({"word": "darn", "action": "mask"}),
            json!({"word": "heck", "action": "mask"}),
            json!({"word": "scam", "action": "block"}),
            json!({"word": "spam", "action": "block"}),
        ]
    );
    let r = api
        .text("/admin/v1/words/import", &op, "ok\nbad,delete\n")
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    let r = api
        .send(
            Request::post("/admin/v1/words/import")
                .header("authorization", format!("Bearer {op}"))
                .header("content-type", "application/json")
                .body(Body::from("[]"))?,
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    let r = api
        .ok(
            "POST",
            "/admin/v1/words",
            &op,
            Some(&json!({"remove": ["SPAM"]})),
        )
        .await;
    assert_eq!(r["count"], 3);
    // Tenant admins read the global list and change their app's.
    assert_eq!(api.all("/admin/v1/words", &admin).await.len(), 3);
    let r = api
        .ok(
            "POST",
            &format!("/admin/v1/apps/{aid}/words"),
            &admin,
            Some(&json!({"add": [{"word": "rival", "action": "mask"}]})),
        )
        .await;
    assert_eq!(r["count"], 1);
    let r = api
        .text(
            &format!("/admin/v1/apps/{aid}/words/import"),
            &admin,
            "foe\n",
        )
        .await;
    assert_eq!(r.json(), json!({"imported": 1, "count": 2}));
    assert_eq!(
        api.all(&format!("/admin/v1/apps/{aid}/words"), &admin)
            .await
            .len(),
        2
    );

    // Gray rules: create, list, preview, replace, delete.
    let rule = api
        .ok(
            "POST",
            "/admin/v1/gray-rules",
            &op,
            Some(&json!({"release": "canary", "app_id": aid, "percent": 30, "priority": 5})),
        )
        .await;
    let rid = rule["rule_id"].as_str().unwrap().to_owned();
    assert_eq!(rule["tenant_id"], Value::Null);
    let rule2 = api
        .ok(
            "POST",
            "/admin/v1/gray-rules",
            &op,
            Some(
                &json!({"release": "beta", "tenant_id": "acme-corp", "percent": 5, "priority": -3}),
            ),
        )
        .await;
    assert_eq!(
        rule2["tenant_id"],
        tid.as_str(),
        "a tenant name resolves to its id"
    );
    let rules = api.all("/admin/v1/gray-rules", &op).await;
    assert_eq!(
        ids(&rules, "rule_id"),
        vec![rule2["rule_id"].as_str().unwrap().to_owned(), rid.clone()],
        "checked in priority order"
    );
    let r = api
        .call(
            "POST",
            "/admin/v1/gray-rules",
            Some(&op),
            Some(&json!({"release": "x", "app_id": "app_nope", "percent": 1})),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    let preview = api
        .ok(
            "POST",
            "/admin/v1/gray-rules/preview",
            &op,
            Some(&json!({"rule": {"release": "canary", "app_id": aid, "percent": 30}, "app_id": aid, "sample": 2000})),
        )
        .await;
    assert_eq!(preview["total"], 2000);
    let share = preview["share"].as_f64().unwrap();
    assert!((0.25..=0.35).contains(&share), "{preview}");
    let preview = api
        .ok(
            "POST",
            "/admin/v1/gray-rules/preview",
            &op,
            Some(&json!({"rule": {"release": "canary", "percent": 100, "platforms": ["ios"]}, "app_id": aid, "platform": "android"})),
        )
        .await;
    assert_eq!(
        (preview["matched"].as_u64(), preview["total"].as_u64()),
        (Some(0), Some(10_000))
    );
    let r = api
        .call(
            "POST",
            "/admin/v1/gray-rules/preview",
            Some(&op),
            Some(&json!({"rule": {"release": "canary", "percent": 30}, "app_id": aid, "sample": 100_001})),
        )
        .await;
    r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
    let put = api
        .ok(
            "PUT",
            &format!("/admin/v1/gray-rules/{rid}"),
            &op,
            Some(&json!({"release": "canary", "percent": 60})),
        )
        .await;
    assert_eq!(
        (put["rule_id"].as_str(), put["percent"].as_u64()),
        (Some(rid.as_str()), Some(60))
    );
    let r = api
        .call(
            "PUT",
            "/admin/v1/gray-rules/gr_nope",
            Some(&op),
            Some(&json!({"release": "canary", "percent": 1})),
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");
    api.ok("DELETE", &format!("/admin/v1/gray-rules/{rid}"), &op, None)
        .await;
    let r = api
        .call(
            "DELETE",
            &format!("/admin/v1/gray-rules/{rid}"),
            Some(&op),
            None,
        )
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");

    // The config version moves with changes.
    let v1 = api.ok("GET", "/admin/v1/config", &op, None).await["version"]
        .as_u64()
        .unwrap();
    api.ok("POST", &format!("/admin/v1/apps/{aid}/suspend"), &op, None)
        .await;
    let v2 = api.ok("GET", "/admin/v1/config", &op, None).await["version"]
        .as_u64()
        .unwrap();
    assert!(v2 > v1);

    // Deleting: the tenant waits for its apps.
    let r = api
        .call(
            "DELETE",
            &format!("/admin/v1/tenants/{tid}"),
            Some(&op),
            None,
        )
        .await;
    r.assert_error(StatusCode::CONFLICT, "conflict");
    for app in api
        .all(&format!("/admin/v1/apps?tenant_id={tid}"), &op)
        .await
    {
        api.ok(
            "DELETE",
            &format!("/admin/v1/apps/{}", app["app_id"].as_str().unwrap()),
            &op,
            None,
        )
        .await;
    }
    let r = api
        .call(
            "DELETE",
            &format!("/admin/v1/tenants/{tid}"),
            Some(&op),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.body.is_empty());
    let r = api
        .call("GET", &format!("/admin/v1/tenants/{tid}"), Some(&op), None)
        .await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");
    // Its admins went with it.
    let r = api.call("GET", "/admin/v1/me", Some(&admin), None).await;
    r.assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    Ok(())
}

#[tokio::test]
async fn merges_into_a_server_and_serves_over_http() -> TestResult {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let api = Api::new().await;
    let server = Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .merge(confab_control::rest::router(api.control.clone()))
        .fallback(|| async { (StatusCode::NOT_FOUND, "server fallback") });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let serving = tokio::spawn(async move { axum::serve(listener, server).await });
    let get = |path: &'static str| async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut out = String::new();
        stream.read_to_string(&mut out).await?;
        Ok::<_, std::io::Error>(out.to_lowercase())
    };
    let me = get("/admin/v1/me").await?;
    assert!(me.starts_with("http/1.1 401"), "{me}");
    assert!(me.contains("x-request-id: "), "{me}");
    assert!(me.contains("\"code\":\"unauthorized\""), "{me}");
    let docs = get("/admin/docs").await?;
    assert!(
        docs.starts_with("http/1.1 3") || docs.starts_with("http/1.1 200"),
        "{docs}"
    );
    let docs = get("/admin/docs/").await?;
    assert!(
        docs.starts_with("http/1.1 200") && docs.contains("text/html"),
        "{docs}"
    );
    let other = get("/elsewhere").await?;
    assert!(other.contains("server fallback"), "{other}");
    let health = get("/healthz").await?;
    assert!(health.starts_with("http/1.1 200"), "{health}");
    serving.abort();
    Ok(())
}

// ---- push credentials ----

const P8: &str = "-----BEGIN PRIVATE KEY-----\nMIGTAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBHkwdwIBAQQg\n-----END PRIVATE KEY-----";

#[tokio::test]
async fn push_credentials_are_stored_sealed_and_never_returned() -> TestResult {
    let api = Api::new().await;
    let t1 = api.fixture_via_api(true).await;
    let admin = api.login(&t1.admin_username, ADMIN_PASSWORD).await;
    let path = format!("/admin/v1/apps/{}/push-credentials/apns", t1.app);
    let body = json!({"key_p8": P8, "key_id": "ABC123DEFG", "team_id": "TEAM123456", "topic": "com.example.chat"});
    let status = api.ok("PUT", &path, &admin, Some(&body)).await;
    assert_eq!(status["vendor"], "apns");
    assert_eq!(status["app_id"], t1.app.as_str());
    assert_eq!(status["fingerprint"].as_str().unwrap().len(), 16);
    assert!(!status.to_string().contains("MIGTAgEAMBMG"), "{status}");
    let list = api
        .ok(
            "GET",
            &format!("/admin/v1/apps/{}/push-credentials", t1.app),
            &admin,
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0], status);
    assert!(!list.to_string().contains("MIGTAgEAMBMG"));
    // Sealed at rest: the key's text is nowhere in the database files.
    assert!(!contains(&api.database_bytes(), "MIGTAgEAMBMG"));
    // The worker (holding the KEK) gets them back.
    let opened = api
        .control
        .open_push_credentials(&t1.app, confab_push::Vendor::Apns)
        .await?
        .expect("stored");
    assert_eq!(opened.fingerprint, status["fingerprint"].as_str().unwrap());
    match opened.credentials {
        confab_push::Credentials::Apns { key_p8, topic, .. } => {
            assert_eq!(key_p8, P8);
            assert_eq!(topic, "com.example.chat");
        }
        other => panic!("{other:?}"),
    }
    // Replacing changes the fingerprint; deleting removes them.
    let mut changed = body.clone();
    changed["topic"] = json!("com.example.other");
    let again = api.ok("PUT", &path, &admin, Some(&changed)).await;
    assert_ne!(again["fingerprint"], status["fingerprint"]);
    api.ok("DELETE", &path, &admin, None).await;
    // Idempotent.
    api.ok("DELETE", &path, &admin, None).await;
    let list = api
        .ok(
            "GET",
            &format!("/admin/v1/apps/{}/push-credentials", t1.app),
            &admin,
            None,
        )
        .await;
    assert!(list["items"].as_array().unwrap().is_empty());
    Ok(())
}

#[tokio::test]
async fn invalid_push_credentials_are_a_clear_400() -> TestResult {
    let api = Api::new().await;
    let t1 = api.fixture_via_api(false).await;
    let op = api.operator.clone();
    let put = |vendor: &str, body: Value| {
        let path = format!("/admin/v1/apps/{}/push-credentials/{vendor}", t1.app);
        let op = op.clone();
        let api = &api;
        async move { api.call("PUT", &path, Some(&op), Some(&body)).await }
    };
    let cases = [
        (
            "apns",
            json!({"key_p8": "not a key", "key_id": "ABC123DEFG", "team_id": "TEAM123456", "topic": "t"}),
            "key_p8",
        ),
        (
            "apns",
            json!({"key_p8": P8, "key_id": "short", "team_id": "TEAM123456", "topic": "t"}),
            "key_id",
        ),
        ("fcm", json!({"service_account_json": "{}"}), "project_id"),
        (
            "fcm",
            json!({"service_account_json": "nope"}),
            "service_account_json",
        ),
        ("huawei", json!({"app_id": "1"}), "app_secret"),
        (
            "xiaomi",
            json!({"app_secret": "", "package": "p"}),
            "app_secret",
        ),
        ("blackberry", json!({"x": 1}), "unknown push vendor"),
        (
            "apns",
            json!({"vendor": "fcm", "service_account_json": "{}"}),
            "path says apns",
        ),
    ];
    for (vendor, body, mention) in cases {
        let r = put(vendor, body).await;
        r.assert_error(StatusCode::BAD_REQUEST, "bad_request");
        let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(mention), "{vendor}: {message}");
    }
    Ok(())
}

#[tokio::test]
async fn another_tenants_admin_cannot_see_or_touch_push_credentials() -> TestResult {
    let api = Api::new().await;
    let t1 = api.fixture_via_api(true).await;
    let t2 = api.fixture_via_api(true).await;
    let op = api.operator.clone();
    let path = format!("/admin/v1/apps/{}/push-credentials/huawei", t2.app);
    api.ok(
        "PUT",
        &path,
        &op,
        Some(&json!({"app_id": "1", "app_secret": "s3cret-t2"})),
    )
    .await;
    let admin1 = api.login(&t1.admin_username, ADMIN_PASSWORD).await;
    for (method, path, body) in [
        (
            "GET",
            format!("/admin/v1/apps/{}/push-credentials", t2.app),
            None,
        ),
        (
            "PUT",
            path.clone(),
            Some(json!({"app_id": "1", "app_secret": "mine"})),
        ),
        ("DELETE", path.clone(), None),
    ] {
        api.call(method, &path, Some(&admin1), body.as_ref())
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    let list = api
        .ok(
            "GET",
            &format!("/admin/v1/apps/{}/push-credentials", t2.app),
            &op,
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "still there");
    let opened = api
        .control
        .open_push_credentials(&t2.app, confab_push::Vendor::Huawei)
        .await?
        .expect("stored");
    assert!(
        matches!(opened.credentials, confab_push::Credentials::Huawei { app_secret, .. } if app_secret == "s3cret-t2")
    );
    Ok(())
}

#[tokio::test]
async fn push_dead_letters_are_listed_per_app_and_hidden_from_other_tenants() -> TestResult {
    let api = Api::new().await;
    let t1 = api.fixture_via_api(true).await;
    let t2 = api.fixture_via_api(true).await;
    let op = api.operator.clone();
    let job = |app: &str, id: &str| confab_store::NewPushJob {
        id: id.to_owned(),
        app_id: confab_model::AppId::parse(app).unwrap(),
        user_id: confab_model::UserId::parse("bob").unwrap(),
        device_id: "bob-phone".into(),
        vendor: "apns".into(),
        payload: r#"{"title":"Alice","body":"t2 secret"}"#.into(),
    };
    api.push_queue
        .enqueue(vec![job(&t2.app, "job-t2"), job(&t1.app, "job-t1")])
        .await?;
    for j in api
        .push_queue
        .claim(10, std::time::Duration::from_secs(60))
        .await?
    {
        api.push_queue
            .dead_letter(&j.id, "gave up after 8 attempts: 500")
            .await?;
    }
    let path = format!("/admin/v1/apps/{}/push-dead-letters", t2.app);
    let list = api.ok("GET", &path, &op, None).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["id"], "job-t2");
    assert_eq!(items[0]["user_id"], "bob");
    assert_eq!(items[0]["vendor"], "apns");
    assert_eq!(items[0]["attempts"], 1);
    assert_eq!(items[0]["reason"], "gave up after 8 attempts: 500");
    assert_eq!(items[0]["payload"]["body"], "t2 secret");
    assert!(items[0]["failed_at"].as_str().unwrap().ends_with('Z'));
    // Its own tenant's admin sees it; another tenant's admin gets 404.
    let admin2 = api.login(&t2.admin_username, ADMIN_PASSWORD).await;
    assert_eq!(api.ok("GET", &path, &admin2, None).await, list);
    let admin1 = api.login(&t1.admin_username, ADMIN_PASSWORD).await;
    let r = api.call("GET", &path, Some(&admin1), None).await;
    r.assert_error(StatusCode::NOT_FOUND, "not_found");
    assert!(!r.text().contains("t2 secret"));
    api.call("GET", &format!("{path}?limit=0"), Some(&op), None)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "bad_request");
    Ok(())
}
