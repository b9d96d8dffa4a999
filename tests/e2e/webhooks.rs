//! Webhooks (docs/webhooks.md) against a real local HTTP receiver: signed
//! requests, before_send allow/reject/modify/timeout in both fail modes,
//! at-least-once asynchronous events with retries that keep the event id,
//! dead letters listed (and redelivered) through the admin API, and a slow
//! app that never delays another app's sends.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use confab_config::webhook::{FailMode, WebhookEvent};
use confab_control::service::{Actor, WebhookSettings};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::rest::http;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    signature: String,
    event_id: String,
    raw: Bytes,
    body: Value,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Serves on 127.0.0.1:0:
    /// `/ok`: 200; `/fail/{n}`: 500 for the first n requests of each event
    /// id, then 200; `/slow/{ms}`: 200 after ms; `/before/{action}`: a
    /// before_send answer (`allow`, `reject`, `modify`, `bad_modify`).
    async fn start() -> (Self, SocketAddr) {
        let me = Self::default();
        let app = axum::Router::new()
            .route("/ok", post(ok))
            .route("/fail/{n}", post(fail))
            .route("/slow/{ms}", post(slow))
            .route("/before/{action}", post(before))
            .with_state(me.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (me, addr)
    }

    fn keep(&self, path: String, headers: &HeaderMap, raw: Bytes) -> usize {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        let event_id = h("confab-event-id");
        let mut got = self.got.lock().unwrap();
        got.push(Received {
            path,
            signature: h("confab-signature"),
            event_id: event_id.clone(),
            raw,
            body,
        });
        got.iter().filter(|r| r.event_id == event_id).count()
    }

    fn of_type(&self, t: &str) -> Vec<Received> {
        let got = self.got.lock().unwrap();
        got.iter()
            .filter(|r| r.body["type"] == t)
            .cloned()
            .collect()
    }

    async fn wait_for(&self, t: &str, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.of_type(t);
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn ok(State(r): State<Receiver>, headers: HeaderMap, raw: Bytes) -> StatusCode {
    r.keep("/ok".into(), &headers, raw);
    StatusCode::OK
}

async fn fail(
    State(r): State<Receiver>,
    Path(n): Path<usize>,
    headers: HeaderMap,
    raw: Bytes,
) -> StatusCode {
    let seen = r.keep(format!("/fail/{n}"), &headers, raw);
    if seen <= n {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    }
}

async fn slow(
    State(r): State<Receiver>,
    Path(ms): Path<u64>,
    headers: HeaderMap,
    raw: Bytes,
) -> StatusCode {
    r.keep(format!("/slow/{ms}"), &headers, raw);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    StatusCode::OK
}

async fn before(
    State(r): State<Receiver>,
    Path(action): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> axum::Json<Value> {
    r.keep(format!("/before/{action}"), &headers, raw);
    axum::Json(match action.as_str() {
        "reject" => {
            json!({"action": "reject", "code": "spam_detected", "message": "no links, please"})
        }
        "modify" => {
            json!({"action": "modify", "body": {"type": "text", "text": "rewritten by the tenant"}})
        }
        "bad_modify" => json!({"action": "modify", "body": {"type": "text"}}),
        _ => json!({"action": "allow"}),
    })
}

/// A server whose dispatcher gives up after 3 quick attempts.
async fn server() -> TestServer {
    TestServer::start_with(|s| {
        s.webhook_max_attempts = 3;
        s.webhook_backoff_ms = 50;
        s.webhook_timeout_ms = 300;
    })
    .await
}

/// Sets the app's webhook; returns its secret (when new).
async fn set_hook(
    server: &TestServer,
    app_id: &str,
    url: String,
    events: &[WebhookEvent],
    timeout_ms: u32,
    fail_mode: FailMode,
) -> Option<String> {
    let view = server
        .control()
        .put_webhook(
            &Actor::System,
            app_id,
            WebhookSettings {
                url,
                events: events.to_vec(),
                timeout_ms: Some(timeout_ms),
                fail_mode: Some(fail_mode),
            },
        )
        .await
        .expect("put webhook");
    server.config_applied().await;
    view.secret
}

fn rest_addr(server: &TestServer) -> SocketAddr {
    match &server.logic {
        Some(l) => l.http_addr,
        None => server.app.http_addr,
    }
}

async fn send(
    server: &TestServer,
    addr: SocketAddr,
    secret: &str,
    text: &str,
) -> crate::rest::Resp {
    let _ = server;
    http(
        addr,
        "POST",
        "/v1/messages",
        Some(secret),
        &[],
        Some(&json!({"from": "alice", "to": {"kind": "user", "id": "bob"}, "body": {"type": "text", "text": text}}).to_string()),
    )
    .await
}

fn now_secs() -> i64 {
    confab_model::now_ms() / 1000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhook_requests_are_signed_and_carry_the_event_id_in_header_and_body() {
    let server = server().await;
    let (rx, addr) = Receiver::start().await;
    let secret = set_hook(
        &server,
        &server.app_id,
        format!("http://{addr}/ok"),
        &[WebhookEvent::AfterSend],
        500,
        FailMode::Open,
    )
    .await
    .expect("a new webhook's secret");
    assert!(secret.starts_with("whsec_"));

    let sent = send(&server, rest_addr(&server), &server.secret, "hello").await;
    assert_eq!(sent.status, 201, "{sent:?}");
    let got = rx.wait_for("after_send", 1, WAIT).await;
    assert_eq!(got.len(), 1, "one after_send event");
    let e = &got[0];
    assert!(
        confab_webhooks::sign::verify(&secret, &e.signature, &e.raw, now_secs()),
        "signature {} verifies over the raw body",
        e.signature
    );
    assert!(!confab_webhooks::sign::verify(
        "whsec_wrong",
        &e.signature,
        &e.raw,
        now_secs()
    ));
    assert_eq!(e.body["id"], e.event_id.as_str());
    assert_eq!(e.body["app_id"], server.app_id.as_str());
    assert_eq!(e.body["data"]["message"]["body"]["text"], "hello");
    assert_eq!(e.body["data"]["message"]["msg_id"], sent.body["msg_id"]);

    // The test endpoint sends a signed `test` event and reports on it.
    let test = http(
        rest_addr(&server),
        "POST",
        "/v1/webhooks/test",
        Some(&server.secret),
        &[],
        None,
    )
    .await;
    assert_eq!(test.status, 200, "{test:?}");
    assert_eq!(test.body["delivered"], true);
    assert_eq!(test.body["status_code"], 200);
    let tests = rx.wait_for("test", 1, WAIT).await;
    assert_eq!(tests[0].event_id, test.body["event_id"].as_str().unwrap());
    assert!(confab_webhooks::sign::verify(
        &secret,
        &tests[0].signature,
        &tests[0].raw,
        now_secs()
    ));

    // Rotation: a new secret signs from then on; the old one no longer verifies.
    let rotated = server
        .control()
        .rotate_webhook_secret(&Actor::System, &server.app_id)
        .await
        .unwrap()
        .secret
        .unwrap();
    server.config_applied().await;
    send(
        &server,
        rest_addr(&server),
        &server.secret,
        "after rotation",
    )
    .await;
    let got = rx.wait_for("after_send", 2, WAIT).await;
    let last = &got[1];
    assert!(confab_webhooks::sign::verify(
        &rotated,
        &last.signature,
        &last.raw,
        now_secs()
    ));
    assert!(!confab_webhooks::sign::verify(
        &secret,
        &last.signature,
        &last.raw,
        now_secs()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn before_send_allows_rejects_modifies_and_applies_the_fail_mode_on_timeout() {
    let server = server().await;
    let (rx, addr) = Receiver::start().await;
    let rest = rest_addr(&server);
    let app = server.app_id.clone();
    let hook = |path: &str| format!("http://{addr}{path}");

    set_hook(
        &server,
        &app,
        hook("/before/allow"),
        &[WebhookEvent::BeforeSend],
        500,
        FailMode::Open,
    )
    .await;
    let r = send(&server, rest, &server.secret, "allowed").await;
    assert_eq!(r.status, 201, "{r:?}");
    let asked = rx.of_type("before_send");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].body["data"]["body"]["text"], "allowed");
    assert_eq!(asked[0].body["data"]["from"], "alice");

    // Reject: the client gets rejected_by_webhook with the tenant's code.
    set_hook(
        &server,
        &app,
        hook("/before/reject"),
        &[WebhookEvent::BeforeSend],
        500,
        FailMode::Open,
    )
    .await;
    let r = send(&server, rest, &server.secret, "http://spam").await;
    assert_eq!(r.status, 422, "{r:?}");
    assert_eq!(r.body["error"]["code"], "rejected_by_webhook");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("spam_detected") && message.contains("no links"),
        "{message}"
    );

    // Modify: the tenant's body is what is stored.
    set_hook(
        &server,
        &app,
        hook("/before/modify"),
        &[WebhookEvent::BeforeSend],
        500,
        FailMode::Open,
    )
    .await;
    let r = send(&server, rest, &server.secret, "original").await;
    assert_eq!(r.status, 201, "{r:?}");
    let conv = r.body["conv_id"].as_str().unwrap().to_owned();
    let history = http(
        rest,
        "GET",
        &format!("/v1/conversations/{conv}/messages?limit=1"),
        Some(&server.secret),
        &[],
        None,
    )
    .await;
    assert_eq!(
        history.body["items"][0]["body"]["text"], "rewritten by the tenant",
        "{history:?}"
    );

    // An invalid modification counts as a failed call: fail-closed refuses.
    set_hook(
        &server,
        &app,
        hook("/before/bad_modify"),
        &[WebhookEvent::BeforeSend],
        500,
        FailMode::Closed,
    )
    .await;
    let r = send(&server, rest, &server.secret, "x").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.body["error"]["code"], "webhook_unavailable");

    // Timeout, fail-open: sent after about the timeout.
    set_hook(
        &server,
        &app,
        hook("/slow/2000"),
        &[WebhookEvent::BeforeSend],
        200,
        FailMode::Open,
    )
    .await;
    let started = Instant::now();
    let r = send(&server, rest, &server.secret, "slow but open").await;
    assert_eq!(r.status, 201, "{r:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_millis(1500),
        "{took:?}"
    );

    // Timeout, fail-closed: refused with webhook_unavailable.
    set_hook(
        &server,
        &app,
        hook("/slow/2000"),
        &[WebhookEvent::BeforeSend],
        200,
        FailMode::Closed,
    )
    .await;
    let r = send(&server, rest, &server.secret, "slow and closed").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.body["error"]["code"], "webhook_unavailable");

    // Every call is in the delivery list, newest first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deliveries = server
        .control()
        .webhook_deliveries(&Actor::System, &app, 50)
        .await
        .unwrap();
    let outcomes: Vec<_> = deliveries.iter().map(|d| d.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        [
            "timeout",
            "timeout",
            "invalid_response",
            "modify",
            "reject",
            "allow"
        ],
        "{deliveries:?}"
    );
}

/// An admin session token (the first run's operator).
async fn admin_token(server: &TestServer) -> String {
    let first = server.app.first_run.as_ref().expect("first run");
    let r = http(
        server.app.http_addr,
        "POST",
        "/admin/v1/sessions",
        None,
        &[],
        Some(
            &json!({"username": first.operator_username, "password": first.operator_password})
                .to_string(),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.body["token"].as_str().unwrap().to_owned()
}

async fn admin(server: &TestServer, token: &str, method: &str, path: &str) -> crate::rest::Resp {
    let auth = format!("Bearer {token}");
    http(
        server.app.http_addr,
        method,
        path,
        None,
        &[("Authorization", &auth)],
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_events_are_retried_with_the_same_id_and_dead_lettered_after_the_limit() {
    if distributed_suite() {
        // The admin API runs on the gateway node there; covered embedded.
        return;
    }
    let server = server().await;
    let (rx, addr) = Receiver::start().await;
    let rest = rest_addr(&server);
    let app = server.app_id.clone();

    // Two 500s, then 200: delivered on the third attempt, same id each time.
    set_hook(
        &server,
        &app,
        format!("http://{addr}/fail/2"),
        &[WebhookEvent::AfterSend],
        500,
        FailMode::Open,
    )
    .await;
    send(&server, rest, &server.secret, "retry me").await;
    let got = rx.wait_for("after_send", 3, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got.iter().all(|r| r.event_id == got[0].event_id),
        "one event id on every retry"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.of_type("after_send").len(), 3, "nothing after the 2xx");

    // A receiver slower than the request timeout: 3 timeouts, then a dead letter.
    set_hook(
        &server,
        &app,
        format!("http://{addr}/slow/1000"),
        &[WebhookEvent::AfterSend],
        500,
        FailMode::Open,
    )
    .await;
    let sent = send(&server, rest, &server.secret, "too slow").await;
    let token = admin_token(&server).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let dead = loop {
        let r = admin(
            &server,
            &token,
            "GET",
            &format!("/admin/v1/apps/{app}/webhook/dead-letters"),
        )
        .await;
        assert_eq!(r.status, 200, "{r:?}");
        if let Some(first) = r.body["items"].as_array().and_then(|a| a.first()).cloned() {
            break first;
        }
        assert!(Instant::now() < deadline, "never dead-lettered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(dead["attempts"], 3);
    assert_eq!(
        dead["payload"]["data"]["message"]["msg_id"],
        sent.body["msg_id"]
    );
    let dead_id = dead["event_id"].as_str().unwrap().to_owned();
    let slow_tries: Vec<_> = rx
        .of_type("after_send")
        .into_iter()
        .filter(|r| r.path == "/slow/1000")
        .collect();
    assert_eq!(slow_tries.len(), 3);
    assert!(slow_tries.iter().all(|r| r.event_id == dead_id));

    let deliveries = admin(
        &server,
        &token,
        "GET",
        &format!("/admin/v1/apps/{app}/webhook/deliveries"),
    )
    .await;
    let outcomes: Vec<_> = deliveries.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        outcomes[..6],
        [
            "dead_lettered",
            "timeout",
            "timeout",
            "delivered",
            "failed",
            "failed"
        ],
        "{outcomes:?}"
    );

    // Fixed receiver, redeliver: the same event id arrives once more.
    set_hook(
        &server,
        &app,
        format!("http://{addr}/ok"),
        &[WebhookEvent::AfterSend],
        500,
        FailMode::Open,
    )
    .await;
    let r = admin(
        &server,
        &token,
        "POST",
        &format!("/admin/v1/apps/{app}/webhook/dead-letters/{dead_id}/redeliver"),
    )
    .await;
    assert_eq!(r.status, 202, "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !rx
        .of_type("after_send")
        .iter()
        .any(|r| r.path == "/ok" && r.event_id == dead_id)
    {
        assert!(Instant::now() < deadline, "never redelivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = admin(
        &server,
        &token,
        "GET",
        &format!("/admin/v1/apps/{app}/webhook/dead-letters"),
    )
    .await;
    assert_eq!(r.body["items"], json!([]));
    let r = admin(
        &server,
        &token,
        "POST",
        &format!("/admin/v1/apps/{app}/webhook/dead-letters/{dead_id}/redeliver"),
    )
    .await;
    assert_eq!(r.status, 404, "not a dead letter any more: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_apps_before_send_never_delays_another_apps_sends() {
    let server = server().await;
    let (_rx, addr) = Receiver::start().await;
    let rest = rest_addr(&server);
    let slow_app = server.app_id.clone();
    let tenant = server
        .control()
        .app(&Actor::System, &slow_app)
        .await
        .unwrap()
        .tenant_id;
    let other = server
        .control()
        .create_app(&Actor::System, &tenant, "other", None)
        .await
        .unwrap();
    raise_quotas(server.control(), &other.app_id).await;
    set_hook(
        &server,
        &slow_app,
        format!("http://{addr}/slow/3000"),
        &[WebhookEvent::BeforeSend],
        2000,
        FailMode::Open,
    )
    .await;
    set_hook(
        &server,
        &other.app_id,
        format!("http://{addr}/before/allow"),
        &[WebhookEvent::BeforeSend],
        500,
        FailMode::Closed,
    )
    .await;

    // Fill the slow app's bound (and beyond: those fail open at once).
    let mut slow = Vec::new();
    for i in 0..40 {
        let secret = server.secret.clone();
        slow.push(tokio::spawn(async move {
            let started = Instant::now();
            let r = http(rest, "POST", "/v1/messages", Some(&secret), &[], Some(&json!({"from": format!("u{i}"), "to": {"kind": "user", "id": "bob"}, "body": {"type": "text", "text": "x"}}).to_string())).await;
            (r.status, started.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile the other app's sends go through its own (fast) webhook.
    let mut worst = Duration::ZERO;
    for i in 0..10 {
        let started = Instant::now();
        let r = send(&server, rest, &other.secret, &format!("fast {i}")).await;
        assert_eq!(r.status, 201, "{r:?}");
        worst = worst.max(started.elapsed());
    }
    assert!(
        worst < Duration::from_millis(500),
        "another app's send took {worst:?}"
    );
    let mut results = Vec::new();
    for t in slow {
        results.push(t.await.unwrap());
    }
    assert!(
        results.iter().all(|(status, _)| *status == 201),
        "fail-open: {results:?}"
    );
    let immediate = results
        .iter()
        .filter(|(_, d)| *d < Duration::from_millis(1000))
        .count();
    assert!(
        immediate >= 8,
        "beyond the app's bound the fail mode applies at once: {results:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sessions_login_and_logout_are_user_online_and_user_offline_events() {
    let server = server().await;
    let (rx, addr) = Receiver::start().await;
    set_hook(
        &server,
        &server.app_id,
        format!("http://{addr}/ok"),
        &[WebhookEvent::UserOnline, WebhookEvent::UserOffline],
        500,
        FailMode::Open,
    )
    .await;
    // Over the split-services suite the gateway tells a logic node over
    // gRPC (LogicService/SessionClosed); embedded, in process.
    let carol = server
        .login(
            confab_client::Transport::WsJson,
            "carol",
            "carol-phone",
            "ios",
        )
        .await;
    let online = rx.wait_for("user_online", 1, WAIT).await;
    assert_eq!(online.len(), 1, "one user_online event");
    assert_eq!(online[0].body["data"]["user_id"], "carol");
    assert_eq!(online[0].body["data"]["device_id"], "carol-phone");
    let session_id = online[0].body["data"]["session_id"].clone();
    carol
        .call(confab_proto::Frame {
            op: confab_proto::ops::LOGOUT.into(),
            ..Default::default()
        })
        .await
        .expect("logout");
    let offline = rx.wait_for("user_offline", 1, WAIT).await;
    assert_eq!(offline.len(), 1, "one user_offline event");
    assert_eq!(offline[0].body["data"]["user_id"], "carol");
    assert_eq!(offline[0].body["data"]["session_id"], session_id);
    assert_ne!(offline[0].event_id, online[0].event_id);
}
