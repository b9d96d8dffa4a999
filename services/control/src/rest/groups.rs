//! A tenant admin's view of an app's groups, answered by the app's cell
//! (`crate::service::support`, the same path as the support lookups): a
//! group by id, its members page by page, muting a member or the whole
//! group, dismissing it. The cell acts as the app (the owner's rights), so
//! every change is recorded in the group's conversation and sent to the
//! members and the app's webhook exactly as a `/v1/groups` call would be.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::extract::{ApiPath, ApiQuery, ApiResult, Auth, JsonBody};
use super::support::typed;
use crate::error::ControlError;
use crate::service::support::segment;

/// Longest mute: ten years (the cell's limit too).
const MAX_MUTE_SECS: i64 = 10 * 365 * 24 * 3600;

/// A group as the cell knows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"group_id": "team-42", "name": "Team 42", "avatar": "", "announcement": "", "custom": {}, "join_policy": "approval", "owner": "alice", "mute_all": false, "member_count": 3, "created_at": "2026-11-25T14:00:00.000Z"}))]
pub struct AdminGroup {
    pub group_id: String,
    pub name: String,
    pub avatar: String,
    pub announcement: String,
    #[schema(value_type = Object)]
    pub custom: Value,
    /// `open`, `approval` or `invite_only`.
    pub join_policy: String,
    pub owner: String,
    /// Only the owner and admins may send while set.
    pub mute_all: bool,
    pub member_count: u64,
    pub created_at: String,
}

/// A member of a group.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminGroupMember {
    pub user_id: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// Until when the member may not send (`null`: not muted).
    #[serde(default)]
    pub muted_until: Option<String>,
    pub joined_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdminGroupMemberPage {
    /// By user id.
    pub items: Vec<AdminGroupMember>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GroupMembersQuery {
    /// 1 to 500; default 50.
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"duration_s": 3600}))]
pub struct AdminMuteMember {
    /// Seconds, 0 to 315 360 000 (ten years); 0 lifts the mute.
    pub duration_s: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"mute_all": true}))]
pub struct AdminMuteGroup {
    /// `true`: only the owner and admins may send; `false` lifts it.
    pub mute_all: bool,
}

fn group_path(group_id: &str) -> String {
    format!("/v1/groups/{}", segment(group_id))
}

/// A group by id.
#[utoipa::path(
    get,
    path = "/admin/v1/apps/{app_id}/groups/{group_id}",
    tag = "groups",
    operation_id = "admin_get_group",
    params(
        ("app_id" = String, Path, description = "The app's id"),
        ("group_id" = String, Path, description = "The group's id"),
    ),
    responses(
        (status = 200, description = "The group", body = AdminGroup),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 409, response = super::Conflict),
        (status = 502, response = super::BadGateway),
        (status = 503, response = super::DataPlaneUnavailable),
    )
)]
pub async fn get_group(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath((app_id, group_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<AdminGroup>> {
    let v = state
        .control
        .support_call(&auth.actor, &app_id, "GET", &group_path(&group_id), None)
        .await?;
    Ok(Json(typed(v)?))
}

/// Dismisses the group: every member gets a `group_dismissed` event and
/// leaves; the id is never used again.
#[utoipa::path(
    delete,
    path = "/admin/v1/apps/{app_id}/groups/{group_id}",
    tag = "groups",
    operation_id = "admin_dismiss_group",
    params(
        ("app_id" = String, Path, description = "The app's id"),
        ("group_id" = String, Path, description = "The group's id"),
    ),
    responses(
        (status = 204, description = "Dismissed"),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 409, response = super::Conflict),
        (status = 502, response = super::BadGateway),
        (status = 503, response = super::DataPlaneUnavailable),
    )
)]
pub async fn dismiss_group(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath((app_id, group_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .control
        .support_call(&auth.actor, &app_id, "DELETE", &group_path(&group_id), None)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A group's members by user id, paged.
#[utoipa::path(
    get,
    path = "/admin/v1/apps/{app_id}/groups/{group_id}/members",
    tag = "groups",
    operation_id = "admin_list_group_members",
    params(
        ("app_id" = String, Path, description = "The app's id"),
        ("group_id" = String, Path, description = "The group's id"),
        GroupMembersQuery,
    ),
    responses(
        (status = 200, description = "One page", body = AdminGroupMemberPage),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 409, response = super::Conflict),
        (status = 502, response = super::BadGateway),
        (status = 503, response = super::DataPlaneUnavailable),
    )
)]
pub async fn list_members(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath((app_id, group_id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<GroupMembersQuery>,
) -> ApiResult<Json<AdminGroupMemberPage>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ControlError::bad_request("limit must be 1 to 500").into());
    }
    let mut path = format!("{}/members?limit={limit}", group_path(&group_id));
    if let Some(c) = q.cursor.as_deref().filter(|c| !c.is_empty()) {
        path.push_str("&cursor=");
        path.push_str(&segment(c));
    }
    let v = state
        .control
        .support_call(&auth.actor, &app_id, "GET", &path, None)
        .await?;
    Ok(Json(typed(v)?))
}

/// Mutes a member for `duration_s` seconds (0 lifts the mute).
#[utoipa::path(
    post,
    path = "/admin/v1/apps/{app_id}/groups/{group_id}/members/{user_id}/mute",
    tag = "groups",
    operation_id = "admin_mute_group_member",
    params(
        ("app_id" = String, Path, description = "The app's id"),
        ("group_id" = String, Path, description = "The group's id"),
        ("user_id" = String, Path, description = "The member's user id"),
    ),
    request_body = AdminMuteMember,
    responses(
        (status = 200, description = "The member after the change", body = AdminGroupMember),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 409, response = super::Conflict),
        (status = 502, response = super::BadGateway),
        (status = 503, response = super::DataPlaneUnavailable),
    )
)]
pub async fn mute_member(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath((app_id, group_id, user_id)): ApiPath<(String, String, String)>,
    JsonBody(body, _): JsonBody<AdminMuteMember>,
) -> ApiResult<Json<AdminGroupMember>> {
    if !(0..=MAX_MUTE_SECS).contains(&body.duration_s) {
        return Err(
            ControlError::bad_request(format!("duration_s must be 0 to {MAX_MUTE_SECS}")).into(),
        );
    }
    let path = format!(
        "{}/members/{}/mute",
        group_path(&group_id),
        segment(&user_id)
    );
    let v = state
        .control
        .support_call(
            &auth.actor,
            &app_id,
            "POST",
            &path,
            Some(json!({"duration_s": body.duration_s})),
        )
        .await?;
    Ok(Json(typed(v)?))
}

/// Mutes (or unmutes) the whole group: while muted only the owner and
/// admins may send.
#[utoipa::path(
    post,
    path = "/admin/v1/apps/{app_id}/groups/{group_id}/mute",
    tag = "groups",
    operation_id = "admin_mute_group",
    params(
        ("app_id" = String, Path, description = "The app's id"),
        ("group_id" = String, Path, description = "The group's id"),
    ),
    request_body = AdminMuteGroup,
    responses(
        (status = 200, description = "The group after the change", body = AdminGroup),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 409, response = super::Conflict),
        (status = 502, response = super::BadGateway),
        (status = 503, response = super::DataPlaneUnavailable),
    )
)]
pub async fn mute_group(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath((app_id, group_id)): ApiPath<(String, String)>,
    JsonBody(body, _): JsonBody<AdminMuteGroup>,
) -> ApiResult<Json<AdminGroup>> {
    let path = format!("{}/mute", group_path(&group_id));
    let v = state
        .control
        .support_call(
            &auth.actor,
            &app_id,
            "POST",
            &path,
            Some(json!({"mute_all": body.mute_all})),
        )
        .await?;
    Ok(Json(typed(v)?))
}
