//! Support lookups through the admin API: answered by the app's cell (a
//! recording fake here), with the app's active key, scoped to the caller's
//! tenant, and honest about the cell's failures.

mod common;
use common::{call, fake, setup};

use axum::http::StatusCode;
use confab_control::service::Actor;
use serde_json::{Value, json};

#[tokio::test]
async fn history_is_asked_of_the_cell_with_the_apps_key() {
    let s = setup().await;
    let page = json!({"items": [{"conv_id": "p2p:alice:bob", "seq": 2, "msg_id": "m2", "from": "alice",
        "to": {"kind": "user", "id": "bob"}, "body": {"type": "text", "text": "hi"}, "ts": "2026-11-25T14:00:00.000Z",
        "client_msg_id": "c2", "recalled": false}], "next_cursor": "MQ=="});
    let calls = fake(&s.control, Some((200, page)));
    let path = format!(
        "/admin/v1/apps/{}/support/conversations/p2p:alice:bob/messages?limit=20&cursor=Mg%3D%3D",
        s.app_id
    );
    let (status, body) = call(&s.router, "GET", &path, &s.operator, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["body"]["text"], "hi");
    assert_eq!(body["next_cursor"], "MQ==");
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    let (secret, method, path, _) = &calls[0];
    assert_eq!(secret, &s.secret, "the app's active key");
    assert_eq!(method, "GET");
    assert_eq!(
        path,
        "/v1/conversations/p2p:alice:bob/messages?limit=20&cursor=Mg%3D%3D"
    );
}

#[tokio::test]
async fn a_system_message_and_a_revoke_are_the_v1_requests() {
    let s = setup().await;
    let calls = fake(
        &s.control,
        Some((
            200,
            json!({"msg_id": "m", "conv_id": "p2p:bob:system", "seq": 1, "ts": "t", "user_id": "bob", "revoked_before": "t"}),
        )),
    );
    let base = format!("/admin/v1/apps/{}/support/users/b%2Fob", s.app_id);
    let (status, body) = call(
        &s.router,
        "POST",
        &format!("{base}/messages"),
        &s.operator,
        Some(json!({"text": " hello "})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["conv_id"], "p2p:bob:system");
    let (status, _) = call(
        &s.router,
        "POST",
        &format!("{base}/revoke"),
        &s.operator,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    {
        let calls = calls.lock().unwrap();
        assert_eq!(calls[0].2, "/v1/messages");
        assert_eq!(
            calls[0].3,
            Some(
                json!({"from_system": true, "to": {"kind": "user", "id": "b/ob"}, "body": {"type": "text", "text": "hello"}})
            )
        );
        assert_eq!(
            (calls[1].1.as_str(), calls[1].2.as_str()),
            ("POST", "/v1/users/b%2Fob/revoke")
        );
    }
    // Bad input never reaches the cell.
    let (status, body) = call(
        &s.router,
        "POST",
        &format!("{base}/messages"),
        &s.operator,
        Some(json!({"text": "  "})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    assert_eq!(
        calls.lock().unwrap().len(),
        2,
        "the blank message was not sent"
    );
}

#[tokio::test]
async fn another_tenants_admin_gets_not_found_and_the_cell_is_never_asked() {
    let s = setup().await;
    let calls = fake(&s.control, Some((200, json!({"items": []}))));
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
    for (method, path) in [
        (
            "GET",
            format!("/admin/v1/apps/{}/support/users/bob/devices", s.app_id),
        ),
        (
            "POST",
            format!("/admin/v1/apps/{}/support/users/bob/revoke", s.app_id),
        ),
        (
            "GET",
            format!(
                "/admin/v1/apps/{}/support/conversations/p2p:a:b/messages",
                s.app_id
            ),
        ),
    ] {
        let (status, body) = call(&s.router, method, &path, &token, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    assert!(
        calls.lock().unwrap().is_empty(),
        "nothing was asked of the cell"
    );
}

#[tokio::test]
async fn the_cells_failures_are_named() {
    let s = setup().await;
    let path = format!("/admin/v1/apps/{}/support/users/bob/devices", s.app_id);
    let code = |r: (StatusCode, Value)| {
        (
            r.0,
            r.1["error"]["code"].as_str().unwrap_or("").to_owned(),
            r.1,
        )
    };

    // No data plane registered and no api_url on the cell.
    let (status, c, body) = code(call(&s.router, "GET", &path, &s.operator, None).await);
    assert_eq!(
        (status, c.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "data_plane_unavailable"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("api_url"),
        "{body}"
    );

    // Unreachable.
    fake(&s.control, None);
    let (status, c, body) = code(call(&s.router, "GET", &path, &s.operator, None).await);
    assert_eq!(
        (status, c.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "data_plane_unavailable"),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{body}"
    );

    // A refusal of the request keeps its code and message.
    fake(
        &s.control,
        Some((
            404,
            json!({"error": {"code": "not_found", "message": "no such conversation"}}),
        )),
    );
    let (status, c, body) = code(call(&s.router, "GET", &path, &s.operator, None).await);
    assert_eq!((status, c.as_str()), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(body["error"]["message"], "no such conversation");

    // A broken answer is the cell's fault: 502.
    fake(&s.control, Some((200, json!({"unexpected": true}))));
    let (status, c, _) = code(call(&s.router, "GET", &path, &s.operator, None).await);
    assert_eq!(
        (status, c.as_str()),
        (StatusCode::BAD_GATEWAY, "bad_gateway")
    );
    fake(&s.control, Some((500, Value::Null)));
    let (status, c, _) = code(call(&s.router, "GET", &path, &s.operator, None).await);
    assert_eq!(
        (status, c.as_str()),
        (StatusCode::BAD_GATEWAY, "bad_gateway")
    );
}

#[tokio::test]
async fn a_cells_api_url_is_used_over_http_when_no_plane_is_in_process() {
    let s = setup().await;
    // Nothing listens here: the HTTP client is tried and says so.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (status, body) = call(
        &s.router,
        "PATCH",
        "/admin/v1/cells/default",
        &s.operator,
        Some(json!({"api_url": format!("http://127.0.0.1:{port}")})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["api_url"], format!("http://127.0.0.1:{port}"));
    let (status, body) = call(
        &s.router,
        "PATCH",
        "/admin/v1/cells/default",
        &s.operator,
        Some(json!({"api_url": "ftp://x"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let path = format!("/admin/v1/apps/{}/support/users/bob/devices", s.app_id);
    let (status, body) = call(&s.router, "GET", &path, &s.operator, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "data_plane_unavailable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{port}")),
        "{body}"
    );
}
