//! Usage counters end to end: traffic over the wire moves `GET /v1/usage`
//! (and the console's `GET /admin/v1/apps/{id}/usage`), another app never
//! sees it, and bad ranges are refused.

use std::time::Duration;

use confab_client::Transport;
use confab_control::service::Actor;
use serde_json::Value;

use crate::helpers::*;
use crate::rest::http;

/// Flushes every 200 ms so that a test sees its traffic at once.
async fn server() -> TestServer {
    TestServer::start_with(|s| s.usage_flush_ms = 200).await
}

async fn usage(server: &TestServer, secret: &str, query: &str) -> (u16, Value) {
    // The REST API runs where logic runs (on the split suite: the logic node).
    let addr = server
        .logic
        .as_ref()
        .map_or(server.app.http_addr, |l| l.http_addr);
    let r = http(
        addr,
        "GET",
        &format!("/v1/usage{query}"),
        Some(secret),
        &[],
        None,
    )
    .await;
    (r.status, r.body)
}

/// Polls until the app's totals show at least `messages` messages.
async fn wait_messages(server: &TestServer, secret: &str, messages: u64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = usage(server, secret, "?step=60").await;
        assert_eq!(status, 200, "{body}");
        if body["totals"]["messages"].as_u64().unwrap_or(0) >= messages {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "usage never showed {messages} messages: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_logins_and_active_users_show_up_in_usage_of_their_app_only() {
    let server = server().await;
    let (status, before) = usage(&server, &server.secret, "?step=60").await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["totals"]["messages"], 0);
    let points = before["points"].as_array().map_or(0, Vec::len);
    assert!(
        (1440..=1441).contains(&points),
        "24 hours of minutes: {points}"
    );

    let alice = server.login(Transport::WsJson, "alice", "a1", "web").await;
    let _bob = server.login(Transport::Tcp, "bob", "b1", "ios").await;
    for i in 0..3 {
        alice
            .send_text("bob", &format!("c{i}"), "hello")
            .await
            .expect("send");
    }
    let after = wait_messages(&server, &server.secret, 3).await;
    assert_eq!(after["totals"]["messages"], 3, "{after}");
    assert!(
        after["totals"]["logins"].as_u64().unwrap_or(0) >= 2,
        "{after}"
    );
    let today = after["daily_active_users"]
        .as_array()
        .and_then(|d| d.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(today["users"], 2, "alice and bob: {after}");

    // Another tenant's app sees none of it.
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
    let (status, theirs) = usage(&server, &other.secret, "?step=60").await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(theirs["totals"]["messages"], 0, "{theirs}");
    assert_eq!(theirs["totals"]["logins"], 0, "{theirs}");
    assert_eq!(
        theirs["daily_active_users"]
            .as_array()
            .and_then(|d| d.last())
            .map(|d| d["users"].clone()),
        Some(0.into())
    );

    // The console reads the same numbers through the control plane: in
    // process here; on split services it reaches the cell at its `api_url`,
    // which this suite does not set (services/control/tests/usage.rs covers
    // that path against a fake cell).
    if split_suite() {
        return;
    }
    let via_control = server
        .control()
        .app_usage(&me, &server.app_id, "step=3600")
        .await
        .expect("admin usage");
    assert_eq!(via_control["totals"]["messages"], 3, "{via_control}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_usage_ranges_are_refused() {
    let server = server().await;
    for query in [
        "?from=2026-11-25T15:00:00Z&to=2026-11-25T14:00:00Z",
        "?from=yesterday",
        "?step=90",
        "?step=0",
        "?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&step=86400",
        "?from=2026-11-01T00:00:00Z&to=2026-11-25T00:00:00Z&step=60",
        "?unknown=1",
    ] {
        let (status, body) = usage(&server, &server.secret, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{query}: {body}");
    }
    let (status, body) = usage(
        &server,
        &server.secret,
        "?from=2026-11-25T14:00:00Z&to=2026-11-25T16:00:00Z&step=3600",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let times: Vec<&str> = body["points"]
        .as_array()
        .map(|p| p.iter().filter_map(|p| p["t"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        times,
        vec!["2026-11-25T14:00:00.000Z", "2026-11-25T15:00:00.000Z"]
    );
}
