//! Offline push end to end: a registered device that is offline gets a job
//! in the durable queue, which the server's embedded push worker settles.
//! This binary has no provider adapters wired yet, so without credentials
//! the worker dead-letters the job with its reason: that is the observable
//! end of the path here.

use std::time::Duration;

use confab_client::Transport;
use confab_model::{AppId, UserId};
use confab_proto::{Frame, ops};

use crate::helpers::*;

fn register() -> Frame {
    Frame {
        op: ops::PUSH_REGISTER.into(),
        vendor: Some("apns".into()),
        push_token: Some("e2e-token".into()),
        bundle: Some("com.example.chat".into()),
        locale: Some("en-US".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn offline_device_gets_a_job_that_the_worker_settles() {
    let server = TestServer::start().await;
    if server.logic.is_some() {
        // Split services: logic nodes run no push worker (`confab push` does).
        return;
    }
    let app = AppId::parse(&server.app_id).expect("app");
    let bob_id = UserId::parse("bob").expect("user");
    {
        let bob = server.login(Transport::Tcp, "bob", "b-phone", "ios").await;
        let reply = bob.call(register()).await.expect("push_register");
        assert_eq!(reply.ok, Some(true), "{:?}", reply.error);
    }
    // Bob's connection is gone: wait for his route to go.
    for _ in 0..100 {
        let routes = server
            .stores()
            .routes
            .routes(&app, &bob_id)
            .await
            .expect("routes");
        if routes.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alice = server.user("alice").await;
    alice
        .send_text("bob", "push-1", "are you there?")
        .await
        .expect("send");
    let mut dead = vec![];
    for _ in 0..200 {
        dead = server
            .stores()
            .push_queue
            .dead_letters(&app, 10)
            .await
            .expect("dead letters");
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead.len(), 1, "the worker settled the job");
    assert_eq!(dead[0].job.vendor, "apns");
    assert_eq!(dead[0].job.device_id, "b-phone");
    assert!(
        dead[0].reason.contains("no apns credentials uploaded"),
        "{}",
        dead[0].reason
    );
    let payload: serde_json::Value = serde_json::from_str(&dead[0].job.payload).expect("payload");
    assert_eq!(payload["token"], "e2e-token");
    assert_eq!(payload["title"], "alice");
    assert_eq!(payload["body"], "are you there?");
    assert_eq!(payload["badge"], 1);
}

#[tokio::test]
async fn a_device_that_logged_out_gets_no_push() {
    let server = TestServer::start().await;
    let app = AppId::parse(&server.app_id).expect("app");
    let bob = server
        .login(Transport::WsJson, "bob", "b-phone", "ios")
        .await;
    let reply = bob.call(register()).await.expect("push_register");
    assert_eq!(reply.ok, Some(true));
    let out = bob
        .call(Frame {
            op: ops::LOGOUT.into(),
            ..Default::default()
        })
        .await
        .expect("logout");
    assert_eq!(out.ok, Some(true));
    let bob_id = UserId::parse("bob").expect("user");
    assert!(
        server
            .stores()
            .devices
            .push_devices(&app, &bob_id)
            .await
            .expect("devices")
            .is_empty(),
        "logout forgot the registration"
    );
}
