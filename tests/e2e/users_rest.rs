//! `/v1/users` (docs/rest.md): profiles created one by one or imported in
//! bulk (existing users reported, never overwritten), read, updated and
//! deleted — deletion kicks the user's sessions, revokes its tokens and
//! clears its inbox while the peers keep their messages. Another app's key
//! sees none of it.

use std::net::SocketAddr;
use std::time::Duration;

use confab_client::{ClientError, Transport};
use confab_control::service::Actor;
use confab_proto::ops;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::rest::{Resp, http};

const WAIT: Duration = Duration::from_secs(5);

pub(crate) struct Api {
    pub addr: SocketAddr,
    pub secret: String,
}

impl Api {
    pub fn of(server: &TestServer) -> Self {
        let addr = match &server.logic {
            Some(logic) => logic.http_addr,
            None => server.addr(Transport::WsJson),
        };
        Self {
            addr,
            secret: server.secret.clone(),
        }
    }
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        let body = body.map(|b| b.to_string());
        http(
            self.addr,
            method,
            path,
            Some(&self.secret),
            &[],
            body.as_deref(),
        )
        .await
    }
    pub async fn get(&self, path: &str) -> Resp {
        self.call("GET", path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.call("POST", path, Some(body)).await
    }
    pub async fn post_idem(&self, path: &str, key: &str, body: Value) -> Resp {
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

pub(crate) fn assert_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.body["error"]["code"], code, "{r:?}");
    assert!(
        r.body["error"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{r:?}"
    );
}

#[tokio::test]
async fn rest_users_create_import_get_update_and_delete() {
    let server = TestServer::start().await;
    let api = Api::of(&server);
    let created = api
        .post(
            "/v1/users",
            json!({"user_id": "alice", "nickname": "Alice", "custom": {"tier": "gold"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["user_id"], "alice");
    assert_eq!(created.body["avatar_url"], "");
    assert_eq!(created.body["custom"], json!({"tier": "gold"}));
    assert!(created.body["created_at"].as_str().unwrap().ends_with('Z'));

    // Creating again is a conflict and changes nothing.
    let again = api
        .post(
            "/v1/users",
            json!({"user_id": "alice", "nickname": "Mallory"}),
        )
        .await;
    assert_error(&again, 409, "user_exists");
    // With an Idempotency-Key, a repeat replays the first answer.
    let key = "create-carol-0001";
    let first = api
        .post_idem("/v1/users", key, json!({"user_id": "carol"}))
        .await;
    assert_eq!(first.status, 201, "{first:?}");
    let replay = api
        .post_idem("/v1/users", key, json!({"user_id": "carol"}))
        .await;
    assert_eq!(replay.status, 201, "{replay:?}");
    assert_eq!(replay.body, first.body);
    assert_eq!(
        replay
            .headers
            .get("idempotent-replayed")
            .map(String::as_str),
        Some("true")
    );
    assert_error(
        &api.post_idem("/v1/users", key, json!({"user_id": "dave"}))
            .await,
        409,
        "conflict",
    );

    // Import: per-user results; existing users are reported, not overwritten.
    let imported = api
        .post(
            "/v1/users/import",
            json!({"users": [
                {"user_id": "alice", "nickname": "Overwritten?"},
                {"user_id": "bob", "nickname": "Bob"},
                {"user_id": "bad id"},
                {"user_id": "bob", "nickname": "Bob twice"},
                {"user_id": "erin", "custom": {"x": "y".repeat(5000)}},
            ]}),
        )
        .await;
    assert_eq!(imported.status, 200, "{imported:?}");
    let statuses: Vec<&str> = imported.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["exists", "created", "invalid", "exists", "invalid"]
    );
    assert_eq!(imported.body["items"][2]["error"]["code"], "bad_request");
    assert_eq!(
        (
            &imported.body["created"],
            &imported.body["existing"],
            &imported.body["invalid"]
        ),
        (&json!(1), &json!(2), &json!(2))
    );
    let alice = api.get("/v1/users/alice").await;
    assert_eq!(alice.status, 200, "{alice:?}");
    assert_eq!(alice.body["nickname"], "Alice", "never overwritten");
    assert_eq!(api.get("/v1/users/bob").await.body["nickname"], "Bob");

    // Import limits.
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"user_id": format!("u{i}")}))
        .collect();
    assert_error(
        &api.post("/v1/users/import", json!({"users": many})).await,
        400,
        "bad_request",
    );
    assert_error(
        &api.post("/v1/users/import", json!({"users": []})).await,
        400,
        "bad_request",
    );

    // Update: only the given fields; custom replaces the object.
    let updated = api
        .call(
            "PATCH",
            "/v1/users/alice",
            Some(json!({"avatar_url": "https://cdn.example.com/a.png", "custom": {"tier": "platinum"}})),
        )
        .await;
    assert_eq!(updated.status, 200, "{updated:?}");
    assert_eq!(updated.body["nickname"], "Alice");
    assert_eq!(updated.body["avatar_url"], "https://cdn.example.com/a.png");
    assert_eq!(updated.body["custom"], json!({"tier": "platinum"}));
    assert_error(
        &api.call("PATCH", "/v1/users/alice", Some(json!({}))).await,
        400,
        "bad_request",
    );
    assert_error(
        &api.call(
            "PATCH",
            "/v1/users/alice",
            Some(json!({"nickname": "x".repeat(129)})),
        )
        .await,
        400,
        "bad_request",
    );
    assert_error(
        &api.call("PATCH", "/v1/users/alice", Some(json!({"custom": [1]})))
            .await,
        400,
        "bad_request",
    );
    assert_error(
        &api.call("PATCH", "/v1/users/nobody", Some(json!({"nickname": "N"})))
            .await,
        404,
        "user_not_found",
    );

    // Errors of the other routes.
    assert_error(&api.get("/v1/users/nobody").await, 404, "user_not_found");
    assert_error(&api.get("/v1/users/system").await, 400, "bad_request");
    assert_error(
        &api.post("/v1/users", json!({"user_id": "system"})).await,
        400,
        "bad_request",
    );
    assert_error(
        &api.post("/v1/users", json!({"user_id": "zed", "colour": 1}))
            .await,
        400,
        "bad_request",
    );
    assert_error(
        &api.call("DELETE", "/v1/users/nobody", None).await,
        404,
        "user_not_found",
    );

    // A user never imported logs in all the same (and has no profile).
    let never = server.user("frank").await;
    drop(never);
    assert_error(&api.get("/v1/users/frank").await, 404, "user_not_found");

    // Another app's key sees none of it and changes none of it.
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
    assert_error(&foreign.get("/v1/users/alice").await, 404, "user_not_found");
    assert_error(
        &foreign
            .call(
                "PATCH",
                "/v1/users/alice",
                Some(json!({"nickname": "pwned"})),
            )
            .await,
        404,
        "user_not_found",
    );
    assert_error(
        &foreign.call("DELETE", "/v1/users/alice", None).await,
        404,
        "user_not_found",
    );
    // Its own alice is its own.
    let theirs = foreign
        .post(
            "/v1/users",
            json!({"user_id": "alice", "nickname": "Their Alice"}),
        )
        .await;
    assert_eq!(theirs.status, 201, "{theirs:?}");
    assert_eq!(api.get("/v1/users/alice").await.body["nickname"], "Alice");

    let deleted = api.call("DELETE", "/v1/users/alice", None).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    assert_error(&api.get("/v1/users/alice").await, 404, "user_not_found");
    assert_eq!(
        foreign.get("/v1/users/alice").await.body["nickname"],
        "Their Alice"
    );
}

#[tokio::test]
async fn deleting_a_user_kicks_its_sessions_revokes_its_tokens_and_clears_its_inbox() {
    let server = TestServer::start().await;
    let api = Api::of(&server);
    assert_eq!(
        api.post("/v1/users", json!({"user_id": "bob"}))
            .await
            .status,
        201
    );
    let alice = server.user("alice").await;
    let mut bob = server.user("bob").await;
    alice
        .send_text("bob", "c1", "hello bob")
        .await
        .expect("send");
    bob.next_op(ops::MESSAGE, WAIT).await.expect("delivered");
    let before = api.get("/v1/users/bob/conversations").await;
    assert_eq!(before.body["items"].as_array().unwrap().len(), 1);

    // A token issued before the deletion (minting one after it, in the
    // same second, would be a new token: it may or may not count as before).
    let old_token = server.token("bob");
    let deleted = api.call("DELETE", "/v1/users/bob", None).await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    let kicked = bob.next_op(ops::KICKED, WAIT).await.expect("kicked");
    assert_eq!(kicked.reason, "user deleted");
    assert!(bob.wait_closed(WAIT).await.is_some());
    // The old token no longer logs in.
    let again = server.connect(Transport::WsJson).await;
    match again.login(&old_token, "bob-phone", "ios").await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "unauthorized"),
        other => panic!("the deleted user's token still works: {other:?}"),
    }
    // Bob's inbox and conversation list are gone; alice keeps hers, and
    // the conversation keeps its history.
    let after = api.get("/v1/users/bob/conversations").await;
    assert_eq!(after.body["items"], json!([]), "{after:?}");
    assert_eq!(
        api.get("/v1/users/alice/conversations").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let history = api.get("/v1/conversations/p2p:alice:bob/messages").await;
    assert_eq!(history.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        alice.sync(0, 100).await.expect("sync").messages.len(),
        1,
        "the peer's inbox is untouched"
    );

    // A token minted after the deletion logs in to an empty inbox, and new
    // messages get fresh inbox positions.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = api.post("/v1/users/bob/tokens", json!({})).await;
    assert_eq!(fresh.status, 201, "{fresh:?}");
    let bob = server.connect(Transport::WsJson).await;
    let login = bob
        .login(fresh.body["token"].as_str().unwrap(), "bob-phone", "ios")
        .await
        .expect("a new token logs in");
    let head = login.inbox_seq.unwrap_or_default();
    assert!(
        bob.sync(0, 100).await.expect("sync").messages.is_empty(),
        "the inbox was cleared"
    );
    let sent = alice
        .send_text("bob", "c2", "welcome back")
        .await
        .expect("send");
    assert_eq!(sent.ok, Some(true), "{sent:?}");
    let synced = bob.sync(head, 100).await.expect("sync");
    assert_eq!(synced.messages.len(), 1);
    assert_eq!(synced.messages[0].inbox_seq, Some(head + 1));
}
