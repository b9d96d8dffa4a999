//! The usage dashboards through the admin API: an app's usage is its cell's
//! `/v1/usage` (a recording fake here) asked with the app's key, only for
//! the caller's own tenant; a cell's usage is the sum over its apps, for
//! operators only.

mod common;
use common::{Setup, call, fake, setup};

use axum::http::StatusCode;
use confab_control::service::Actor;
use serde_json::{Value, json};

fn series(messages: u64, connections: f64) -> Value {
    json!({
        "from": "2026-11-25T13:00:00.000Z", "to": "2026-11-25T15:00:00.000Z", "step": 3600,
        "points": [
            {"t": "2026-11-25T13:00:00.000Z", "messages": messages, "logins": 1, "errors": 0, "push_sent": 2,
             "push_retried": 0, "push_dead_token": 0, "push_dead_letter": 1, "connections": connections},
            {"t": "2026-11-25T14:00:00.000Z", "messages": 0, "logins": 0, "errors": 1, "push_sent": 0,
             "push_retried": 0, "push_dead_token": 0, "push_dead_letter": 0, "connections": 0.0}
        ],
        "daily_active_users": [{"day": "2026-11-25", "users": 4}],
        "totals": {"messages": messages, "logins": 1, "errors": 1, "push_sent": 2, "push_retried": 0,
                   "push_dead_token": 0, "push_dead_letter": 1, "peak_connections": connections}
    })
}

async fn tenant_admin(s: &Setup) -> String {
    let op = Actor::System;
    let other = s.control.create_tenant(&op, "other").await.unwrap();
    s.control
        .create_account(
            &op,
            "other-admin",
            "other-admin-password",
            confab_control::model::Role::TenantAdmin,
            Some(&other.tenant_id),
        )
        .await
        .unwrap();
    let (token, _, _) = s
        .control
        .login("other-admin", "other-admin-password")
        .await
        .unwrap();
    token
}

#[tokio::test]
async fn app_usage_is_the_cells_v1_usage_asked_with_the_apps_key() {
    let s = setup().await;
    let calls = fake(&s.control, Some((200, series(7, 2.5))));
    let path = format!(
        "/admin/v1/apps/{}/usage?from=2026-11-25T13:00:00%2B08:00&to=2026-11-25T15:00:00Z&step=3600",
        s.app_id
    );
    let (status, body) = call(&s.router, "GET", &path, &s.operator, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["totals"]["messages"], 7);
    assert_eq!(body["points"][0]["connections"], 2.5);
    let calls = calls.lock().unwrap();
    let (secret, method, path, _) = &calls[0];
    assert_eq!(secret, &s.secret, "the app's active key");
    assert_eq!(method, "GET");
    assert_eq!(
        path,
        "/v1/usage?from=2026-11-25T13:00:00%2B08:00&to=2026-11-25T15:00:00Z&step=3600"
    );
}

#[tokio::test]
async fn another_tenants_admin_gets_not_found_for_app_usage_and_forbidden_for_cells() {
    let s = setup().await;
    let calls = fake(&s.control, Some((200, series(7, 2.5))));
    let token = tenant_admin(&s).await;
    let (status, body) = call(
        &s.router,
        "GET",
        &format!("/admin/v1/apps/{}/usage", s.app_id),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = call(
        &s.router,
        "GET",
        "/admin/v1/cells/default/usage",
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        calls.lock().unwrap().is_empty(),
        "nothing was asked of the cell"
    );
}

#[tokio::test]
async fn a_cells_usage_sums_its_apps_and_names_the_ones_it_could_not_read() {
    let s = setup().await;
    let op = Actor::System;
    // A second app with a key, and a third without one (it cannot be asked).
    let second = s
        .control
        .create_app(&op, &tenant_of(&s).await, "second", None)
        .await
        .unwrap();
    let third = s
        .control
        .create_app(&op, &tenant_of(&s).await, "third", None)
        .await
        .unwrap();
    for k in s.control.keys(&op, &third.app_id).await.unwrap() {
        s.control
            .revoke_key(&op, Some(&third.app_id), &k.key_id)
            .await
            .unwrap();
    }
    let calls = fake(&s.control, Some((200, series(5, 1.5))));
    let (status, body) = call(
        &s.router,
        "GET",
        "/admin/v1/cells/default/usage?to=2026-11-25T15:00:00Z",
        &s.operator,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cell_id"], "default");
    assert_eq!(body["apps"], 3, "{body}");
    assert_eq!(body["apps_unread"], 1, "{body}");
    assert_eq!(body["totals"]["messages"], 10, "two apps of 5: {body}");
    assert_eq!(body["points"][0]["connections"], 3.0);
    assert_eq!(body["totals"]["peak_connections"], 3.0);
    assert_eq!(body["daily_active_users"][0]["users"], 8);
    let asked: Vec<String> = calls.lock().unwrap().iter().map(|c| c.0.clone()).collect();
    assert_eq!(asked.len(), 2);
    assert!(asked.contains(&second.secret) && asked.contains(&s.secret));
    assert!(
        calls
            .lock()
            .unwrap()
            .iter()
            .all(|c| c.2 == "/v1/usage?to=2026-11-25T15:00:00Z"),
        "every app asked for the same range"
    );
    let (status, _) = call(
        &s.router,
        "GET",
        "/admin/v1/cells/nope/usage",
        &s.operator,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn tenant_of(s: &Setup) -> String {
    s.control
        .app(&Actor::System, &s.app_id)
        .await
        .unwrap()
        .tenant_id
}
