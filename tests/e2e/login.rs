//! Session start: login succeeds on every transport and every bad token is
//! refused with `unauthorized` and a closed connection.

use confab_client::Transport;
use confab_proto::{Frame, ops};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn login_succeeds_on_every_transport_and_reports_the_inbox_head() {
    let server = TestServer::start().await;
    for transport in ALL_TRANSPORTS {
        let c = server.connect(transport).await;
        let reply = c
            .login(&server.token("alice"), "phone", "ios")
            .await
            .expect("login");
        assert_eq!(reply.user_id, "alice", "{transport:?}");
        assert!(!reply.session_id.is_empty());
        assert_eq!(reply.inbox_seq, Some(0), "a new user's inbox is empty");
        assert!(reply.server_time.unwrap_or(0) > 1_600_000_000_000);
    }
}

async fn assert_refused(server: &TestServer, token: String, why: &str) {
    let mut c = server.connect(Transport::WsJson).await;
    let reply = c
        .request(Frame {
            op: ops::LOGIN.into(),
            token,
            device_id: "d1".into(),
            platform: "web".into(),
            ..Default::default()
        })
        .await
        .expect("a reply");
    assert_eq!(reply.ok, Some(false), "{why}");
    assert_eq!(error_code(&reply), "unauthorized", "{why}");
    assert!(
        c.wait_closed(WAIT).await.is_some(),
        "{why}: connection must be closed"
    );
}

#[tokio::test]
async fn every_bad_token_is_refused_and_the_connection_closed() {
    let server = TestServer::start().await;
    let now = now_s();
    let claims = json!({"sub": "alice", "app": server.app_id, "iat": now, "exp": now + 600});

    assert_refused(
        &server,
        mint(&server.key_id, "not-the-secret", claims.clone()),
        "bad signature",
    )
    .await;
    assert_refused(
        &server,
        mint(
            &server.key_id,
            &server.secret,
            json!({"sub": "alice", "app": server.app_id, "iat": now - 7200, "exp": now - 3600}),
        ),
        "expired",
    )
    .await;
    assert_refused(
        &server,
        mint("key_unknown", &server.secret, claims.clone()),
        "unknown kid",
    )
    .await;
    assert_refused(
        &server,
        mint(
            &server.key_id,
            &server.secret,
            json!({"sub": "alice", "app": server.app_id, "iat": now}),
        ),
        "missing exp",
    )
    .await;
    assert_refused(
        &server,
        mint(
            &server.key_id,
            &server.secret,
            json!({"sub": "alice", "app": server.app_id, "iat": now, "exp": now + 60 * 86400}),
        ),
        "exp more than 30 days ahead",
    )
    .await;
    assert_refused(&server, "not.a.jwt".into(), "garbage").await;
    assert_refused(&server, String::new(), "empty").await;
}

#[tokio::test]
async fn a_token_of_another_app_cannot_log_in_as_this_app() {
    let server = TestServer::start().await;
    let other = server
        .control()
        .create_app(
            &confab_control::service::Actor::System,
            "default",
            "other",
            None,
        )
        .await
        .expect("second app");
    server.config_applied().await;
    let now = now_s();
    // Signed with the other app's key but claiming this app.
    assert_refused(
        &server,
        mint(
            &other.key_id,
            &other.secret,
            json!({"sub": "alice", "app": server.app_id, "iat": now, "exp": now + 600}),
        ),
        "other app's key",
    )
    .await;
    // This app's kid, signed with the other app's secret.
    assert_refused(
        &server,
        mint(
            &server.key_id,
            &other.secret,
            json!({"sub": "alice", "app": server.app_id, "iat": now, "exp": now + 600}),
        ),
        "other app's secret",
    )
    .await;
    // The other app's own token works, and only sees the other app's data.
    let mut bob_other = server.connect(Transport::WsJson).await;
    bob_other
        .login(
            &mint(
                &other.key_id,
                &other.secret,
                json!({"sub": "bob", "app": other.app_id, "iat": now, "exp": now + 600}),
            ),
            "d",
            "web",
        )
        .await
        .expect("login to the other app");
    let alice = server.user("alice").await;
    alice
        .send_text("bob", "c1", "for bob in the default app")
        .await
        .expect("send");
    assert!(
        bob_other.next_op(ops::MESSAGE, QUIET).await.is_none(),
        "same user id in another app gets nothing"
    );
    let synced = bob_other.sync(0, 100).await.expect("sync");
    assert!(
        synced.messages.is_empty(),
        "another app's inbox is separate"
    );
}

#[tokio::test]
async fn revoked_key_and_revoked_user_tokens_stop_working() {
    let server = TestServer::start().await;
    let dir = server.stores().revocations.clone();
    let app_id = confab_model::AppId::parse(&server.app_id).expect("app id");
    let user = confab_model::UserId::parse("alice").expect("user");
    let token = server.token("alice");
    dir.revoke_tokens(&app_id, &user, confab_model::now_ms() + 1000)
        .await
        .expect("revoke tokens");
    assert_refused(&server, token, "token issued before revocation").await;

    server
        .control()
        .revoke_key(
            &confab_control::service::Actor::System,
            None,
            &server.key_id,
        )
        .await
        .expect("revoke key");
    server.config_applied().await;
    assert_refused(&server, server.token("carol"), "revoked key").await;
}

#[tokio::test]
async fn the_first_frame_must_be_login() {
    let server = TestServer::start().await;
    let mut c = server.connect(Transport::WsJson).await;
    let reply = c
        .request(Frame {
            op: ops::SYNC.into(),
            ..Default::default()
        })
        .await
        .expect("reply");
    assert_eq!(error_code(&reply), "not_logged_in");
    assert!(c.wait_closed(WAIT).await.is_some());
}

#[tokio::test]
async fn a_connection_that_never_logs_in_is_closed() {
    let server = TestServer::start_with(|s| s.login_timeout_secs = 1).await;
    let mut c = server.connect(Transport::WsJson).await;
    let reason = c
        .wait_closed(WAIT)
        .await
        .expect("closed within the login deadline");
    assert!(reason.contains("login timeout"), "reason: {reason}");
}
