//! Session lifecycle: kick policy, logout, heartbeats, idle close, graceful
//! shutdown.

use confab_client::Transport;
use confab_proto::{Frame, ops};

use crate::helpers::*;

#[tokio::test]
async fn a_new_login_on_the_same_platform_kicks_the_older_one_with_a_reason() {
    let server = TestServer::start().await;
    let mut old_phone = server
        .login(Transport::WsJson, "alice", "phone-1", "ios")
        .await;
    let mut desktop = server
        .login(Transport::Tcp, "alice", "desk", "desktop")
        .await;
    let _new_phone = server
        .login(Transport::WsProto, "alice", "phone-2", "ios")
        .await;
    let kicked = old_phone
        .next_op(ops::KICKED, WAIT)
        .await
        .expect("the old phone is told");
    assert!(!kicked.reason.is_empty());
    assert!(old_phone.wait_closed(WAIT).await.is_some(), "and closed");
    // Another platform is untouched and still receives.
    let bob = server.user("bob").await;
    bob.send_text("alice", "c1", "still there?")
        .await
        .expect("send");
    assert!(desktop.next_op(ops::MESSAGE, WAIT).await.is_some());
}

#[tokio::test]
async fn kick_policy_one_in_all_kicks_every_other_device() {
    let server = TestServer::start().await;
    server
        .update_settings(|s| s.kick_policy = confab_model::KickPolicy::OneInAll)
        .await;
    let mut desktop = server
        .login(Transport::WsJson, "alice", "desk", "desktop")
        .await;
    let _phone = server
        .login(Transport::WsJson, "alice", "phone", "ios")
        .await;
    assert!(desktop.next_op(ops::KICKED, WAIT).await.is_some());
}

#[tokio::test]
async fn ping_is_answered_and_logout_closes_the_connection() {
    let server = TestServer::start().await;
    let mut c = server.user("alice").await;
    let pong = c
        .call(Frame {
            op: ops::PING.into(),
            ..Default::default()
        })
        .await
        .expect("ping");
    assert!(pong.server_time.is_some());
    c.call(Frame {
        op: ops::LOGOUT.into(),
        ..Default::default()
    })
    .await
    .expect("logout");
    assert!(c.wait_closed(WAIT).await.is_some());
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let server = TestServer::start_with(|s| s.idle_timeout_secs = 1).await;
    let mut c = server.user("alice").await;
    let reason = c.wait_closed(WAIT).await.expect("closed");
    assert!(reason.contains("idle"), "reason: {reason}");
}

#[tokio::test]
async fn shutdown_tells_clients_to_reconnect() {
    let server = TestServer::start().await;
    let mut json = server.user("alice").await;
    let mut tcp = server.login(Transport::Tcp, "bob", "b", "ios").await;
    let TestServer {
        app, dir, redis, ..
    } = server;
    let stopping = tokio::spawn(app.shutdown());
    for c in [&mut json, &mut tcp] {
        let goaway = c
            .next_op(ops::GOAWAY, WAIT)
            .await
            .expect("goaway before the close");
        assert!(goaway.retry_after_ms.is_some());
        assert!(c.wait_closed(WAIT).await.is_some());
    }
    stopping.await.expect("join").expect("clean shutdown");
    drop((dir, redis));
}
