//! The data-plane REST API `/v1` (docs/rest.md) against a real server over
//! real HTTP: secret-key auth, app scoping, rate limits, idempotency, and
//! that REST and the wire protocol meet (a REST send reaches a live
//! WebSocket session; a revoke kicks one).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use confab_client::{ClientError, Transport};
use confab_control::model::Status;
use confab_control::service::Actor;
use confab_proto::ops;
use serde_json::{Value, json};

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub(crate) struct Resp {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

impl Resp {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// One HTTP/1.0 request (the connection closes after the answer).
pub(crate) async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    secret: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<&str>,
) -> Resp {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: x\r\n");
    if let Some(s) = secret {
        req.push_str(&format!("Authorization: Bearer {s}\r\n"));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty()
        && !extra
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, payload) = text.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = serde_json::from_str(payload).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
    }
}

struct Rest {
    addr: SocketAddr,
    secret: String,
}

impl Rest {
    async fn get(&self, path: &str) -> Resp {
        http(self.addr, "GET", path, Some(&self.secret), &[], None).await
    }
    async fn post(&self, path: &str, body: Value) -> Resp {
        http(
            self.addr,
            "POST",
            path,
            Some(&self.secret),
            &[],
            Some(&body.to_string()),
        )
        .await
    }
    async fn post_idem(&self, path: &str, key: &str, body: Value) -> Resp {
        http(
            self.addr,
            "POST",
            path,
            Some(&self.secret),
            &[("Idempotency-Key", key)],
            Some(&body.to_string()),
        )
        .await
    }
}

/// The REST API runs where logic runs (on the split suite: the logic node).
fn rest_of(server: &TestServer) -> Option<Rest> {
    let addr = match &server.logic {
        Some(logic) => logic.http_addr,
        None => server.addr(Transport::WsJson),
    };
    Some(Rest {
        addr,
        secret: server.secret.clone(),
    })
}

fn text(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.code(), code, "{r:?}");
    let rid = r.header("x-request-id").expect("x-request-id");
    assert_eq!(r.body["error"]["request_id"], rid, "{r:?}");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn rest_send_reaches_a_live_session_and_its_sync_and_history_pages_stably() {
    let server = TestServer::start().await;
    let Some(api) = rest_of(&server) else { return };
    let mut bob = server.user("bob").await;

    let sent = api
        .post(
            "/v1/messages",
            json!({"from": "alice", "to": {"kind": "user", "id": "bob"}, "body": text("hi bob"), "client_msg_id": "c-1"}),
        )
        .await;
    assert_eq!(sent.status, 201, "{sent:?}");
    assert!(sent.header("x-request-id").is_some());
    let msg_id = sent.body["msg_id"].as_str().unwrap().to_owned();
    let conv = sent.body["conv_id"].as_str().unwrap().to_owned();
    assert_eq!(sent.body["seq"], 1);
    assert_eq!(sent.body["client_msg_id"], "c-1");
    assert!(sent.body["ts"].as_str().unwrap().ends_with('Z'));
    let push = bob.next_op(ops::MESSAGE, WAIT).await.expect("a push");
    let m = push;
    assert_eq!(
        (m.msg_id.as_str(), m.from.as_str()),
        (msg_id.as_str(), "alice")
    );
    assert!(
        sync_all(&bob, 0, 100)
            .await
            .iter()
            .any(|m| m.msg_id == msg_id)
    );
    // The same client_msg_id is the same message (the wire send's dedupe).
    let again = api
        .post(
            "/v1/messages",
            json!({"from": "alice", "to": {"kind": "user", "id": "bob"}, "body": text("hi bob"), "client_msg_id": "c-1"}),
        )
        .await;
    assert_eq!(again.body["msg_id"], msg_id.as_str());

    // As the system.
    let sys = api
        .post(
            "/v1/messages",
            json!({"from_system": true, "to": {"kind": "user", "id": "bob"}, "body": text("maintenance at 9")}),
        )
        .await;
    assert_eq!(sys.status, 201, "{sys:?}");
    let push = bob.next_op(ops::MESSAGE, WAIT).await.expect("a push");
    assert_eq!(push.from, "system");

    // Documented errors.
    for (body, code) in [
        (
            json!({"to": {"kind": "user", "id": "bob"}, "body": text("x")}),
            "bad_request",
        ),
        (
            json!({"from": "system", "to": {"kind": "user", "id": "bob"}, "body": text("x")}),
            "bad_request",
        ),
        (
            json!({"from": "a", "from_system": true, "to": {"kind": "user", "id": "bob"}, "body": text("x")}),
            "bad_request",
        ),
        (
            json!({"from": "alice", "to": {"kind": "user", "id": "bob"}, "body": "plain"}),
            "bad_request",
        ),
        (
            json!({"from": "alice", "to": {"kind": "planet", "id": "bob"}, "body": text("x")}),
            "bad_request",
        ),
        (
            json!({"from": "alice", "to": {"kind": "user", "id": "bob"}, "body": text("x"), "colour": 1}),
            "bad_request",
        ),
    ] {
        let r = api.post("/v1/messages", body.clone()).await;
        assert_error(&r, 400, code);
    }
    let r = http(
        api.addr,
        "POST",
        "/v1/messages",
        Some(&api.secret),
        &[("Content-Type", "text/plain")],
        Some("{}"),
    )
    .await;
    assert_error(&r, 400, "bad_request");
    let r = http(
        api.addr,
        "POST",
        "/v1/messages",
        Some(&api.secret),
        &[],
        Some("{nope"),
    )
    .await;
    assert_error(&r, 400, "bad_request");
    let huge = format!(
        r#"{{"from":"alice","to":{{"kind":"user","id":"bob"}},"body":{{"text":"{}"}}}}"#,
        "x".repeat(1024 * 1024)
    );
    let r = http(
        api.addr,
        "POST",
        "/v1/messages",
        Some(&api.secret),
        &[],
        Some(&huge),
    )
    .await;
    assert_error(&r, 413, "payload_too_large");
    let big = json!({"from": "alice", "to": {"kind": "user", "id": "bob"}, "body": text(&"y".repeat(64 * 1024))});
    assert_error(&api.post("/v1/messages", big).await, 400, "quota_exceeded");
    let r = api.get("/v1/nothing/here").await;
    assert_error(&r, 404, "not_found");

    // History: newest first, paged by cursor, stable while messages arrive.
    for i in 0..5 {
        let r = api
            .post("/v1/messages", json!({"from": "alice", "to": {"kind": "user", "id": "bob"}, "body": text(&format!("m{i}"))}))
            .await;
        assert_eq!(r.status, 201);
    }
    let path = format!("/v1/conversations/{conv}/messages?limit=3");
    let first = api.get(&path).await;
    assert_eq!(first.status, 200, "{first:?}");
    let seqs = |r: &Resp| -> Vec<u64> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(seqs(&first), vec![6, 5, 4]);
    assert_eq!(first.body["items"][0]["body"]["text"], "m4");
    // A new message arrives between pages: the next page is unaffected.
    api.post(
        "/v1/messages",
        json!({"from": "bob", "to": {"kind": "user", "id": "alice"}, "body": text("late")}),
    )
    .await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = api.get(&format!("{path}&cursor={cursor}")).await;
    assert_eq!(seqs(&second), vec![3, 2, 1]);
    assert!(second.body["next_cursor"].is_null(), "{second:?}");
    let before = api
        .get(&format!("/v1/conversations/{conv}/messages?before_seq=3"))
        .await;
    assert_eq!(seqs(&before), vec![2, 1]);
    assert_error(
        &api.get(&format!("{path}&cursor=!!")).await,
        400,
        "bad_request",
    );
    assert_error(
        &api.get(&format!("/v1/conversations/{conv}/messages?limit=0"))
            .await,
        400,
        "bad_request",
    );
    assert_error(
        &api.get("/v1/conversations/p2p:nobody:none/messages").await,
        404,
        "not_found",
    );
    assert_error(
        &api.get("/v1/conversations/garbage/messages").await,
        404,
        "not_found",
    );

    // Conversations with unread counts.
    let convs = api.get("/v1/users/bob/conversations").await;
    assert_eq!(convs.status, 200, "{convs:?}");
    let items = convs.body["items"].as_array().unwrap();
    let with_alice = items
        .iter()
        .find(|c| c["conv_id"] == conv.as_str())
        .expect("the conversation");
    assert_eq!(with_alice["last_seq"], 7);
    // Bob's own send moved his read cursor.
    assert_eq!(
        (
            with_alice["read_seq"].as_u64(),
            with_alice["unread"].as_u64()
        ),
        (Some(7), Some(0))
    );
    assert_eq!(with_alice["last_message"]["body"]["text"], "late");
    let with_system = items
        .iter()
        .find(|c| c["unread"] == 1)
        .expect("the system's conversation");
    assert_eq!(with_system["last_message"]["from"], "system");
    assert_eq!(convs.body["total_unread"], 1);
    let alices = api.get("/v1/users/alice/conversations").await;
    assert_eq!(alices.body["items"][0]["unread"], 1, "{alices:?}");
    assert!(convs.body["next_cursor"].is_null());
    assert_error(
        &api.get("/v1/users/bob/conversations?limit=1000").await,
        400,
        "bad_request",
    );

    // Online status.
    let online = api.get("/v1/users/online?user_ids=bob,carol,bob").await;
    assert_eq!(online.status, 200, "{online:?}");
    assert_eq!(online.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(online.body["items"][0]["user_id"], "bob");
    assert_eq!(online.body["items"][0]["online"], true);
    assert_eq!(
        online.body["items"][0]["devices"][0]["device_id"],
        "bob-web"
    );
    assert_eq!(online.body["items"][1]["online"], false);
    assert_error(
        &api.get("/v1/users/online?user_ids=").await,
        400,
        "bad_request",
    );
    let many: Vec<String> = (0..501).map(|i| format!("u{i}")).collect();
    assert_error(
        &api.get(&format!("/v1/users/online?user_ids={}", many.join(",")))
            .await,
        400,
        "bad_request",
    );

    // The document is served.
    let doc = http(api.addr, "GET", "/v1/openapi.json", None, &[], None).await;
    assert_eq!(doc.status, 200);
    assert!(doc.body["paths"]["/v1/messages"].is_object());
}

#[tokio::test]
async fn rest_tokens_mint_and_revoke_kicks_live_sessions() {
    let server = TestServer::start().await;
    let Some(api) = rest_of(&server) else { return };
    let minted = api
        .post("/v1/users/alice/tokens", json!({"ttl_secs": 600}))
        .await;
    assert_eq!(minted.status, 201, "{minted:?}");
    assert_eq!(minted.body["user_id"], "alice");
    assert!(minted.body["expires_at"].as_str().unwrap().ends_with('Z'));
    let token = minted.body["token"].as_str().unwrap().to_owned();
    // An empty body takes the defaults.
    let default = http(
        api.addr,
        "POST",
        "/v1/users/alice/tokens",
        Some(&api.secret),
        &[],
        None,
    )
    .await;
    assert_eq!(default.status, 201, "{default:?}");
    assert_error(
        &api.post("/v1/users/alice/tokens", json!({"ttl_secs": 0}))
            .await,
        400,
        "bad_request",
    );
    assert_error(
        &api.post("/v1/users/alice/tokens", json!({"ttl_secs": 99_999_999}))
            .await,
        400,
        "bad_request",
    );
    assert_error(
        &api.post("/v1/users/alice/tokens", json!({"ttl": 5})).await,
        400,
        "bad_request",
    );

    let mut alice = server.connect(Transport::WsJson).await;
    alice
        .login(&token, "alice-phone", "ios")
        .await
        .expect("the minted token logs in");
    // The route is written as the session registers (in Redis on a
    // distributed cell, just after the login reply).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let online = api.get("/v1/users/online?user_ids=alice").await;
        if online.body["items"][0]["online"] == true {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{online:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Tokens minted in the revocation's second count as before it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let revoked = api.post("/v1/users/alice/revoke", json!({})).await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    assert_eq!(revoked.body["user_id"], "alice");
    let kicked = alice.next_op(ops::KICKED, WAIT).await.expect("kicked");
    assert_eq!(kicked.reason, "tokens revoked");
    assert!(alice.wait_closed(WAIT).await.is_some());
    let again = server.connect(Transport::WsJson).await;
    match again.login(&token, "alice-phone", "ios").await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "unauthorized"),
        other => panic!("the old token still works: {other:?}"),
    }
    // A token minted after the revocation works.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = api.post("/v1/users/alice/tokens", json!({})).await;
    let c = server.connect(Transport::WsJson).await;
    c.login(fresh.body["token"].as_str().unwrap(), "alice-phone", "ios")
        .await
        .expect("a new token logs in");
    assert_error(
        &api.post("/v1/users/%20/revoke", json!({})).await,
        400,
        "bad_request",
    );
}

#[tokio::test]
async fn rest_idempotency_key_replays_the_first_response_and_refuses_another_body() {
    let server = TestServer::start().await;
    let Some(api) = rest_of(&server) else { return };
    let send = json!({"from": "alice", "to": {"kind": "user", "id": "bob"}, "body": text("once")});
    let key = "4f1c2d3e-5a6b-7c8d-9e0f-a1b2c3d4e5f6";
    let first = api.post_idem("/v1/messages", key, send.clone()).await;
    assert_eq!(first.status, 201, "{first:?}");
    assert!(first.header("idempotent-replayed").is_none());
    let repeat = api.post_idem("/v1/messages", key, send.clone()).await;
    assert_eq!(repeat.status, 201);
    assert_eq!(repeat.body, first.body);
    assert_eq!(repeat.header("idempotent-replayed"), Some("true"));
    let other =
        json!({"from": "alice", "to": {"kind": "user", "id": "bob"}, "body": text("twice")});
    assert_error(
        &api.post_idem("/v1/messages", key, other).await,
        409,
        "conflict",
    );
    let history = api
        .get(&format!(
            "/v1/conversations/{}/messages",
            first.body["conv_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        history.body["items"].as_array().unwrap().len(),
        1,
        "stored once"
    );
    assert_error(
        &api.post_idem("/v1/messages", "short", send).await,
        400,
        "bad_request",
    );

    let tkey = "0b9c8d7e-6f5a-4b3c-2d1e-0f9a8b7c6d5e";
    let t1 = api
        .post_idem("/v1/users/alice/tokens", tkey, json!({"ttl_secs": 60}))
        .await;
    let t2 = api
        .post_idem("/v1/users/alice/tokens", tkey, json!({"ttl_secs": 60}))
        .await;
    assert_eq!(t1.status, 201);
    assert_eq!(t1.body["token"], t2.body["token"]);
    assert_error(
        &api.post_idem("/v1/users/bob/tokens", tkey, json!({"ttl_secs": 60}))
            .await,
        409,
        "conflict",
    );
}

#[tokio::test]
async fn rest_rate_limit_answers_429_with_retry_after_and_ratelimit_headers() {
    let server = TestServer::start().await;
    let Some(api) = rest_of(&server) else { return };
    let ok = api.get("/v1/users/online?user_ids=a").await;
    assert_eq!(ok.header("ratelimit-limit"), Some("200"));
    assert!(ok.header("ratelimit-remaining").is_some());
    server
        .update_settings(|s| s.quotas.rest_requests_per_sec = 2)
        .await;
    let mut limited = None;
    for _ in 0..6 {
        let r = api.get("/v1/users/online?user_ids=a").await;
        assert_eq!(r.header("ratelimit-limit"), Some("2"), "{r:?}");
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, 200);
    }
    let r = limited.expect("a 429 within 6 quick requests at 2/s");
    assert_error(&r, 429, "rate_limited");
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    let secs: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&secs), "{secs}");
    tokio::time::sleep(Duration::from_secs(secs)).await;
    assert_eq!(api.get("/v1/users/online?user_ids=a").await.status, 200);
}

#[tokio::test]
async fn rest_refuses_bad_keys_suspended_apps_and_a_foreign_app_sees_nothing() {
    let server = TestServer::start().await;
    let Some(api) = rest_of(&server) else { return };
    let _bob = server.user("bob").await;
    let sent = api
        .post("/v1/messages", json!({"from": "alice", "to": {"kind": "user", "id": "bob"}, "body": text("secret plans")}))
        .await;
    assert_eq!(sent.status, 201);
    let conv = sent.body["conv_id"].as_str().unwrap().to_owned();

    // Every route, as (method, path, body).
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("POST", "/v1/users/bob/tokens".into(), Some(json!({}))),
        ("POST", "/v1/users/carol/revoke".into(), Some(json!({}))),
        (
            "POST",
            "/v1/messages".into(),
            Some(json!({"from": "carol", "to": {"kind": "user", "id": "dave"}, "body": text("x")})),
        ),
        ("GET", format!("/v1/conversations/{conv}/messages"), None),
        ("GET", "/v1/users/bob/conversations".into(), None),
        ("GET", "/v1/users/online?user_ids=bob,alice".into(), None),
    ];
    let call = |secret: Option<String>, (m, p, b): (&'static str, String, Option<Value>)| {
        let addr = api.addr;
        async move {
            let body = b.map(|b| b.to_string());
            http(addr, m, &p, secret.as_deref(), &[], body.as_deref()).await
        }
    };
    for route in &routes {
        let r = call(None, route.clone()).await;
        assert_error(&r, 401, "unauthorized");
        assert!(r.header("www-authenticate").is_some());
        let r = call(Some("sk_wrong".into()), route.clone()).await;
        assert_error(&r, 401, "unauthorized");
        let r = call(Some(server.key_id.clone()), route.clone()).await;
        assert_error(&r, 401, "unauthorized");
    }

    // Another tenant's app: its own key works, but nothing of this app shows.
    let me = Actor::System;
    let tenant = server
        .control()
        .create_tenant(&me, "other")
        .await
        .expect("tenant");
    let other = server
        .control()
        .create_app(&me, &tenant.tenant_id, "other-app", None)
        .await
        .expect("app");
    server.config_applied().await;
    for route in &routes {
        let r = call(Some(other.secret.clone()), route.clone()).await;
        let text = r.body.to_string();
        assert!(!text.contains(&server.app_id), "{route:?}: {text}");
        assert!(!text.contains("secret plans"), "{route:?}: {text}");
        assert!(
            !text.contains(sent.body["msg_id"].as_str().unwrap()),
            "{route:?}: {text}"
        );
        match route.1.as_str() {
            p if p.starts_with("/v1/conversations/") => assert_error(&r, 404, "not_found"),
            "/v1/users/bob/conversations" => {
                assert_eq!(r.status, 200);
                assert_eq!(r.body["items"], json!([]));
            }
            p if p.starts_with("/v1/users/online") => {
                assert_eq!(r.status, 200);
                assert_eq!(r.body["items"][0]["online"], false, "{r:?}");
            }
            _ => assert!(r.status < 300, "{route:?}: {r:?}"),
        }
    }
    // The foreign app's send did not land in this app's conversation.
    let history = api.get(&format!("/v1/conversations/{conv}/messages")).await;
    assert_eq!(history.body["items"].as_array().unwrap().len(), 1);

    // A rotated key works at once; the old one stops working once revoked.
    let rotated = server
        .control()
        .create_key(&me, &server.app_id)
        .await
        .expect("new key");
    server
        .control()
        .revoke_key(&me, Some(&server.app_id), &server.key_id)
        .await
        .expect("revoke the old key");
    server.config_applied().await;
    let old = api.get("/v1/users/online?user_ids=bob").await;
    assert_error(&old, 401, "unauthorized");
    let new = http(
        api.addr,
        "GET",
        "/v1/users/online?user_ids=bob",
        Some(&rotated.secret),
        &[],
        None,
    )
    .await;
    assert_eq!(new.status, 200, "{new:?}");
    let api = Rest {
        addr: api.addr,
        secret: rotated.secret.clone(),
    };

    // A suspended app gets 403 suspended on every route.
    server
        .control()
        .set_tenant_status(&me, "default", Status::Suspended)
        .await
        .expect("suspend");
    server.config_applied().await;
    for route in &routes {
        let r = call(Some(api.secret.clone()), route.clone()).await;
        assert_error(&r, 403, "suspended");
    }
}
