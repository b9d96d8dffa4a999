//! The console's group pages through the admin API: answered by the app's
//! cell (a recording fake here) as `/v1/groups` requests with the app's
//! key, scoped to the caller's tenant.

mod common;
use common::{call, fake, setup};

use axum::http::StatusCode;
use confab_control::service::Actor;
use serde_json::{Value, json};

fn group() -> Value {
    json!({"group_id": "team 42", "name": "Team 42", "avatar": "", "announcement": "", "custom": {},
        "join_policy": "approval", "owner": "alice", "mute_all": true, "member_count": 3,
        "created_at": "2026-11-25T14:00:00.000Z"})
}

#[tokio::test]
async fn a_group_and_its_mute_are_v1_requests_with_the_apps_key() {
    let s = setup().await;
    let calls = fake(&s.control, Some((200, group())));
    let base = format!("/admin/v1/apps/{}/groups/team%2042", s.app_id);
    let (status, body) = call(&s.router, "GET", &base, &s.operator, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["owner"], "alice");
    assert_eq!(body["member_count"], 3);
    let (status, body) = call(
        &s.router,
        "POST",
        &format!("{base}/mute"),
        &s.operator,
        Some(json!({"mute_all": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mute_all"], true);
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].0, s.secret, "the app's active key");
    assert_eq!(
        (calls[0].1.as_str(), calls[0].2.as_str()),
        ("GET", "/v1/groups/team%2042")
    );
    assert_eq!(
        (calls[1].1.as_str(), calls[1].2.as_str()),
        ("POST", "/v1/groups/team%2042/mute")
    );
    assert_eq!(calls[1].3, Some(json!({"mute_all": true})));
}

#[tokio::test]
async fn members_are_paged_and_a_member_is_muted() {
    let s = setup().await;
    let page = json!({"items": [{"user_id": "bob", "role": "member", "muted_until": null,
        "joined_at": "2026-11-25T14:00:00.000Z"}], "next_cursor": "Ym9i"});
    let calls = fake(&s.control, Some((200, page)));
    let base = format!("/admin/v1/apps/{}/groups/g1", s.app_id);
    let (status, body) = call(
        &s.router,
        "GET",
        &format!("{base}/members?limit=1&cursor=YWxpY2U"),
        &s.operator,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["user_id"], "bob");
    assert_eq!(body["next_cursor"], "Ym9i");
    let (status, body) = call(
        &s.router,
        "GET",
        &format!("{base}/members?limit=501"),
        &s.operator,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let muted = json!({"user_id": "bob", "role": "member", "muted_until": "2026-11-25T15:00:00.000Z",
        "joined_at": "2026-11-25T14:00:00.000Z"});
    let calls2 = fake(&s.control, Some((200, muted)));
    let (status, body) = call(
        &s.router,
        "POST",
        &format!("{base}/members/bob/mute"),
        &s.operator,
        Some(json!({"duration_s": 3600})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["muted_until"], "2026-11-25T15:00:00.000Z");
    let (status, _) = call(
        &s.router,
        "POST",
        &format!("{base}/members/bob/mute"),
        &s.operator,
        Some(json!({"duration_s": -1})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 1, "the bad limit never reached the cell");
    assert_eq!(calls[0].2, "/v1/groups/g1/members?limit=1&cursor=YWxpY2U");
    let calls2 = calls2.lock().unwrap();
    assert_eq!(calls2.len(), 1, "the bad duration never reached the cell");
    assert_eq!(calls2[0].2, "/v1/groups/g1/members/bob/mute");
    assert_eq!(calls2[0].3, Some(json!({"duration_s": 3600})));
}

#[tokio::test]
async fn dismissal_is_a_delete_and_the_cells_refusals_keep_their_meaning() {
    let s = setup().await;
    let calls = fake(&s.control, Some((204, Value::Null)));
    let path = format!("/admin/v1/apps/{}/groups/g1", s.app_id);
    let (status, _) = call(&s.router, "DELETE", &path, &s.operator, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(calls.lock().unwrap()[0].1, "DELETE");

    fake(
        &s.control,
        Some((
            404,
            json!({"error": {"code": "not_found", "message": "no group g1"}}),
        )),
    );
    let (status, body) = call(&s.router, "GET", &path, &s.operator, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["message"], "no group g1");

    // Muting the owner: the cell's 403 stays a refusal, not a gateway error.
    fake(
        &s.control,
        Some((
            403,
            json!({"error": {"code": "forbidden", "message": "the owner cannot be muted"}}),
        )),
    );
    let (status, body) = call(
        &s.router,
        "POST",
        &format!("{path}/members/alice/mute"),
        &s.operator,
        Some(json!({"duration_s": 60})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["message"], "the owner cannot be muted");
}

#[tokio::test]
async fn another_tenants_admin_gets_not_found_and_the_cell_is_never_asked() {
    let s = setup().await;
    let calls = fake(&s.control, Some((200, group())));
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
    let base = format!("/admin/v1/apps/{}/groups/g1", s.app_id);
    for (method, path, body) in [
        ("GET", base.clone(), None),
        ("DELETE", base.clone(), None),
        ("GET", format!("{base}/members"), None),
        (
            "POST",
            format!("{base}/members/bob/mute"),
            Some(json!({"duration_s": 60})),
        ),
        (
            "POST",
            format!("{base}/mute"),
            Some(json!({"mute_all": true})),
        ),
    ] {
        let (status, answer) = call(&s.router, method, &path, &token, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], "not_found");
    }
    assert!(
        calls.lock().unwrap().is_empty(),
        "nothing was asked of the cell"
    );
}
