//! `/v1/messages/...` beyond the single send (docs/rest.md): get by id,
//! recall as the app (pushes `recalled` like the wire op, whatever the
//! recall window), and batch send to up to 500 users with per-recipient
//! results and Idempotency-Key. Another app's key sees none of it.

use std::net::SocketAddr;
use std::time::Duration;

use confab_client::Transport;
use confab_control::service::Actor;
use confab_proto::ops;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::rest::{Resp, http};

const WAIT: Duration = Duration::from_secs(5);

struct Api {
    addr: SocketAddr,
    secret: String,
}

impl Api {
    fn of(server: &TestServer) -> Self {
        let addr = match &server.logic {
            Some(logic) => logic.http_addr,
            None => server.addr(Transport::WsJson),
        };
        Self {
            addr,
            secret: server.secret.clone(),
        }
    }
    async fn get(&self, path: &str) -> Resp {
        http(self.addr, "GET", path, Some(&self.secret), &[], None).await
    }
    async fn post(&self, path: &str, body: Value) -> Resp {
        self.post_with(path, &[], body).await
    }
    async fn post_with(&self, path: &str, extra: &[(&str, &str)], body: Value) -> Resp {
        http(
            self.addr,
            "POST",
            path,
            Some(&self.secret),
            extra,
            Some(&body.to_string()),
        )
        .await
    }
}

fn text(t: &str) -> Value {
    json!({"type": "text", "text": t})
}

fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.body["error"]["code"], code, "{r:?}");
    assert!(r.headers.contains_key("x-request-id"), "{r:?}");
}

#[tokio::test]
async fn rest_get_message_by_id_and_recall_it_as_the_app() {
    let server = TestServer::start().await;
    let api = Api::of(&server);
    let mut bob = server.user("bob").await;
    let mut alice = server.user("alice").await;
    let sent = api
        .post(
            "/v1/messages",
            json!({"from": "alice", "to": {"kind": "user", "id": "bob"}, "body": text("hello"), "client_msg_id": "g-1"}),
        )
        .await;
    assert_eq!(sent.status, 201, "{sent:?}");
    let msg_id = sent.body["msg_id"].as_str().unwrap().to_owned();
    let conv = sent.body["conv_id"].as_str().unwrap().to_owned();
    bob.next_op(ops::MESSAGE, WAIT).await.expect("a push");

    // Get: the same shape as a history item.
    let got = api.get(&format!("/v1/messages/{msg_id}")).await;
    assert_eq!(got.status, 200, "{got:?}");
    let history = api.get(&format!("/v1/conversations/{conv}/messages")).await;
    assert_eq!(got.body, history.body["items"][0]);
    assert_eq!(got.body["body"], text("hello"));
    assert_eq!(got.body["from"], "alice");
    assert_eq!(got.body["recalled"], false);
    assert_error(&api.get("/v1/messages/no-such-id").await, 404, "not_found");

    // Recall as the app works past the recall window (the wire op's limit).
    server.update_settings(|s| s.recall_window_ms = 1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = api
        .post(&format!("/v1/messages/{msg_id}/recall"), json!({}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body,
        json!({"msg_id": msg_id, "conv_id": conv, "recalled": true})
    );
    for client in [&mut bob, &mut alice] {
        let push = client.next_op(ops::RECALLED, WAIT).await.expect("recalled");
        assert_eq!(
            (push.msg_id.as_str(), push.conv_id.as_str()),
            (msg_id.as_str(), conv.as_str())
        );
    }
    let got = api.get(&format!("/v1/messages/{msg_id}")).await;
    assert_eq!(got.body["recalled"], true);
    assert!(!got.body.to_string().contains("hello"), "{got:?}");
    // Again: still fine (idempotent).
    let again = api
        .post(&format!("/v1/messages/{msg_id}/recall"), json!({}))
        .await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_error(
        &api.post("/v1/messages/no-such-id/recall", json!({})).await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn rest_batch_send_gives_each_recipient_a_result_and_replays_with_idempotency_key() {
    let server = TestServer::start().await;
    let api = Api::of(&server);
    let mut bob = server.user("bob").await;
    let body = json!({"from": "system", "to_user_ids": ["bob", "carol", "bob", "dave"], "body": text("notice"), "client_msg_id": "n-1"});
    let key = "b4f1c2d3-5a6b-7c8d-9e0f-a1b2c3d4e5f6";
    let r = api
        .post_with(
            "/v1/messages/batch",
            &[("Idempotency-Key", key)],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        (r.body["sent"].as_u64(), r.body["failed"].as_u64()),
        (Some(3), Some(0))
    );
    let items = r.body["items"].as_array().unwrap();
    let users: Vec<&str> = items
        .iter()
        .map(|i| i["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["bob", "carol", "dave"], "in order, duplicates once");
    for i in items {
        assert_eq!(i["seq"], 1, "{i}");
        assert!(i["msg_id"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(
            i["conv_id"],
            format!("p2p:{}:system", i["user_id"].as_str().unwrap()),
            "{i}"
        );
    }
    let push = bob.next_op(ops::MESSAGE, WAIT).await.expect("a push");
    assert_eq!(
        (push.from.as_str(), push.msg_id.as_str()),
        ("system", items[0]["msg_id"].as_str().unwrap())
    );
    let got = api
        .get(&format!(
            "/v1/messages/{}",
            items[1]["msg_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(got.body["body"], text("notice"));
    assert_eq!(got.body["to"], json!({"kind": "user", "id": "carol"}));

    // Idempotency-Key: the first response again; another body is 409.
    let repeat = api
        .post_with(
            "/v1/messages/batch",
            &[("Idempotency-Key", key)],
            body.clone(),
        )
        .await;
    assert_eq!(repeat.body, r.body);
    assert_eq!(
        repeat
            .headers
            .get("idempotent-replayed")
            .map(String::as_str),
        Some("true")
    );
    let mut other = body.clone();
    other["body"] = text("another");
    assert_error(
        &api.post_with("/v1/messages/batch", &[("Idempotency-Key", key)], other)
            .await,
        409,
        "conflict",
    );
    // Without the key, client_msg_id still makes a retry store nothing new.
    let retry = api.post("/v1/messages/batch", body).await;
    assert_eq!(retry.body["items"], r.body["items"]);
    let history = api.get("/v1/conversations/p2p:bob:system/messages").await;
    assert_eq!(history.body["items"].as_array().unwrap().len(), 1);

    // A user as the sender.
    let r = api
        .post(
            "/v1/messages/batch",
            json!({"from": "alice", "to_user_ids": ["bob", "carol"], "body": text("hi")}),
        )
        .await;
    assert_eq!(
        (r.body["sent"].as_u64(), r.body["failed"].as_u64()),
        (Some(2), Some(0)),
        "{r:?}"
    );
    assert_eq!(r.body["items"][0]["conv_id"], "p2p:alice:bob");

    // Documented errors.
    let many: Vec<String> = (0..501).map(|i| format!("u{i}")).collect();
    for bad in [
        json!({"from": "system", "to_user_ids": many, "body": text("x")}),
        json!({"from": "system", "to_user_ids": [], "body": text("x")}),
        json!({"from": "system", "to_user_ids": ["bob"], "body": "plain"}),
        json!({"from": "system", "to_user_ids": ["bob"]}),
        json!({"to_user_ids": ["bob"], "body": text("x")}),
        json!({"from": "", "to_user_ids": ["bob"], "body": text("x")}),
        json!({"from": "alice", "to_user_ids": ["alice"], "body": text("x")}),
        json!({"from": "system", "to_user_ids": ["bob", ""], "body": text("x")}),
        json!({"from": "system", "to_user_ids": ["bob"], "body": text("x"), "colour": 1}),
    ] {
        assert_error(
            &api.post("/v1/messages/batch", bad.clone()).await,
            400,
            "bad_request",
        );
    }
    // Exactly 500 is allowed.
    let five_hundred: Vec<String> = (0..500).map(|i| format!("u{i}")).collect();
    let r = api
        .post(
            "/v1/messages/batch",
            json!({"from": "system", "to_user_ids": five_hundred, "body": text("all")}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["sent"].as_u64()),
        (200, Some(500)),
        "{:?}",
        r.body["items"][0]
    );
}

#[tokio::test]
async fn rest_messages_of_another_app_are_not_found_and_untouched() {
    let server = TestServer::start().await;
    let api = Api::of(&server);
    let sent = api
        .post(
            "/v1/messages",
            json!({"from": "alice", "to": {"kind": "user", "id": "bob"}, "body": text("secret plans")}),
        )
        .await;
    assert_eq!(sent.status, 201);
    let msg_id = sent.body["msg_id"].as_str().unwrap().to_owned();

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
    let foreign = Api {
        addr: api.addr,
        secret: other.secret.clone(),
    };
    for r in [
        foreign.get(&format!("/v1/messages/{msg_id}")).await,
        foreign
            .post(&format!("/v1/messages/{msg_id}/recall"), json!({}))
            .await,
    ] {
        assert_error(&r, 404, "not_found");
        let text = r.body.to_string();
        assert!(
            !text.contains("secret plans") && !text.contains(&server.app_id),
            "{text}"
        );
    }
    // The foreign recall changed nothing; a foreign batch lands in its own app.
    let mine = api.get(&format!("/v1/messages/{msg_id}")).await;
    assert_eq!(
        (mine.body["recalled"].as_bool(), mine.body["body"].clone()),
        (Some(false), text("secret plans"))
    );
    let r = foreign
        .post(
            "/v1/messages/batch",
            json!({"from": "alice", "to_user_ids": ["bob"], "body": text("theirs")}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["items"][0]["seq"], 1, "seq is per app");
    let history = api.get("/v1/conversations/p2p:alice:bob/messages").await;
    assert_eq!(history.body["items"].as_array().unwrap().len(), 1);

    // No key or a wrong one: 401 on each route.
    for (m, p) in [
        ("GET", format!("/v1/messages/{msg_id}")),
        ("POST", format!("/v1/messages/{msg_id}/recall")),
        ("POST", "/v1/messages/batch".to_owned()),
    ] {
        for secret in [None, Some("sk_wrong")] {
            let r = http(api.addr, m, &p, secret, &[], Some("{}")).await;
            assert_error(&r, 401, "unauthorized");
        }
    }
}
