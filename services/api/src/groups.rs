//! `/v1/groups`: groups managed by the app's backend — create, get, update,
//! dismiss, members (list, add, remove), roles and mutes.
//!
//! Every handler calls [`Logic::group_as_app`](confab_logic::Logic), the
//! same functions as the wire's `group_*` ops acting with the owner's rights
//! (without being a member): each change is stored, recorded as an `event`
//! message in the group's conversation (`actor: "system"`), pushed to the
//! members online and sent to the app's webhook. A group of another app, or
//! a dismissed one, is `404 not_found`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use confab_proto::{Frame, ops};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::ApiState;
use crate::auth::Caller;
use crate::dto::rfc3339;
use crate::error::{ApiError, ApiPath, ApiQuery, ApiResult, JsonBody};

/// Longest mute: ten years.
pub const MAX_MUTE_SECS: i64 = 10 * 365 * 24 * 3600;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"group_id": "team-42", "owner": "alice", "members": ["bob", "carol"], "name": "Team 42", "join_policy": "approval", "custom": {"project": "apollo"}}))]
pub struct CreateGroup {
    /// 1 to 64 characters of `A-Z a-z 0-9 _ . @ -`; a new id when absent.
    /// An id is never reused, a dismissed group's included.
    pub group_id: Option<String>,
    /// The owner's user id.
    pub owner: String,
    /// Initial members besides the owner (at most 500).
    #[serde(default)]
    pub members: Vec<String>,
    /// At most 128 bytes.
    pub name: Option<String>,
    /// At most 1 024 bytes.
    pub avatar: Option<String>,
    /// At most 4 096 bytes.
    pub announcement: Option<String>,
    /// The app's own data: a JSON object of at most 4 096 bytes.
    #[schema(value_type = Option<Object>)]
    pub custom: Option<serde_json::Map<String, serde_json::Value>>,
    /// `open`, `approval` (the default) or `invite_only`.
    pub join_policy: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Team 42 (archive)", "announcement": "read-only from Monday"}))]
pub struct UpdateGroup {
    pub name: Option<String>,
    pub avatar: Option<String>,
    pub announcement: Option<String>,
    /// Replaces the stored object as a whole.
    #[schema(value_type = Option<Object>)]
    pub custom: Option<serde_json::Map<String, serde_json::Value>>,
    pub join_policy: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"group_id": "team-42", "name": "Team 42", "avatar": "", "announcement": "", "custom": {"project": "apollo"}, "join_policy": "approval", "owner": "alice", "mute_all": false, "member_count": 3, "created_at": "2026-11-25T14:00:00.000Z"}))]
pub struct GroupOut {
    pub group_id: String,
    pub name: String,
    pub avatar: String,
    pub announcement: String,
    #[schema(value_type = Object)]
    pub custom: serde_json::Value,
    pub join_policy: String,
    pub owner: String,
    /// Only the owner and admins may send while set.
    pub mute_all: bool,
    pub member_count: u64,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"user_id": "bob", "role": "member", "muted_until": null, "joined_at": "2026-11-25T14:00:00.000Z"}))]
pub struct MemberOut {
    pub user_id: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
    /// Until when the member may not send (absent or `null`: not muted).
    pub muted_until: Option<String>,
    pub joined_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"user_id": "alice", "role": "owner", "muted_until": null, "joined_at": "2026-11-25T14:00:00.000Z"}], "next_cursor": "YWxpY2U"}))]
pub struct MemberPage {
    /// By user id.
    pub items: Vec<MemberOut>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MembersQuery {
    /// 1 to 500; default 100.
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_ids": ["dave", "erin"]}))]
pub struct AddMembers {
    /// 1 to 500 user ids; current members are skipped.
    pub user_ids: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"group_id": "team-42", "added": ["dave"]}))]
pub struct MembersAdded {
    pub group_id: String,
    /// The users that were not members before (the others were skipped).
    pub added: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "admin"}))]
pub struct SetRole {
    /// `admin` or `member`.
    pub role: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"duration_s": 3600}))]
pub struct MuteMember {
    /// Seconds, 0 to 315 360 000 (ten years); 0 lifts the mute.
    pub duration_s: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"mute_all": true}))]
pub struct MuteGroup {
    /// `true`: only the owner and admins may send; `false` lifts it.
    pub mute_all: bool,
}

fn group_out(g: &confab_proto::Group) -> GroupOut {
    GroupOut {
        group_id: g.group_id.clone(),
        name: g.name.clone(),
        avatar: g.avatar.clone(),
        announcement: g.announcement.clone(),
        custom: serde_json::from_str(&g.custom)
            .unwrap_or_else(|_| serde_json::Value::Object(Default::default())),
        join_policy: g.join_policy.clone(),
        owner: g.owner.clone(),
        mute_all: g.mute_all,
        member_count: g.member_count,
        created_at: rfc3339(g.created_at),
    }
}

fn member_out(m: &confab_proto::GroupMember) -> MemberOut {
    MemberOut {
        user_id: m.user_id.clone(),
        role: m.role.clone(),
        muted_until: (m.muted_until > confab_model::now_ms()).then(|| rfc3339(m.muted_until)),
        joined_at: rfc3339(m.joined_at),
    }
}

fn custom_text(v: Option<serde_json::Map<String, serde_json::Value>>) -> Option<String> {
    v.map(|m| serde_json::Value::Object(m).to_string())
}

async fn run(state: &ApiState, caller: &Caller, frame: Frame) -> ApiResult<Frame> {
    Ok(state.logic.group_as_app(&caller.app_id, frame).await?)
}

/// The group as it is now.
async fn current(state: &ApiState, caller: &Caller, group_id: &str) -> ApiResult<GroupOut> {
    let reply = run(
        state,
        caller,
        Frame {
            op: ops::GROUP_INFO.into(),
            group_id: group_id.to_owned(),
            ..Default::default()
        },
    )
    .await?;
    reply
        .group
        .as_ref()
        .map(group_out)
        .ok_or_else(|| ApiError::internal("group_info answered without the group"))
}

/// Create a group.
///
/// With its owner and initial members. Members get a `group_created` event
/// (`actor: "system"`). Accepts `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/groups",
    tag = "groups",
    operation_id = "create_group",
    params(("Idempotency-Key" = Option<String>, Header, description = "16 to 255 visible ASCII characters; a repeat returns the first response")),
    request_body = CreateGroup,
    responses(
        (status = 201, description = "The group", body = GroupOut),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 409, description = "The group id was used before in this app, or the Idempotency-Key was used with another request", body = crate::ErrorBody,
            example = json!({"error": {"code": "conflict", "message": "already exists: group team-42", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn create_group(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(body, hash): JsonBody<CreateGroup>,
) -> ApiResult<Response> {
    let members: Vec<String> = body
        .members
        .into_iter()
        .filter(|m| *m != body.owner)
        .collect();
    let frame = Frame {
        op: ops::GROUP_CREATE.into(),
        group_id: body.group_id.unwrap_or_default(),
        user_id: body.owner,
        user_ids: members,
        name: body.name,
        avatar: body.avatar,
        announcement: body.announcement,
        custom: custom_text(body.custom),
        join_policy: body.join_policy,
        ..Default::default()
    };
    if frame.user_id.is_empty() {
        return Err(ApiError::bad_request("owner is required"));
    }
    state
        .idempotency
        .run(
            caller.app_id.as_str(),
            &headers,
            &hash,
            StatusCode::CREATED,
            async {
                let reply = run(&state, &caller, frame).await?;
                reply
                    .group
                    .as_ref()
                    .map(group_out)
                    .ok_or_else(|| ApiError::internal("group_create answered without the group"))
            },
        )
        .await
}

/// A group.
#[utoipa::path(
    get,
    path = "/v1/groups/{group_id}",
    tag = "groups",
    operation_id = "get_group",
    params(("group_id" = String, Path, description = "The group's id")),
    responses(
        (status = 200, description = "The group", body = GroupOut),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn get_group(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(group_id): ApiPath<String>,
) -> ApiResult<Json<GroupOut>> {
    Ok(Json(current(&state, &caller, &group_id).await?))
}

/// Update a group.
///
/// Changes only the fields given (`custom` replaces the stored object);
/// members get a `group_updated` event.
#[utoipa::path(
    patch,
    path = "/v1/groups/{group_id}",
    tag = "groups",
    operation_id = "update_group",
    params(("group_id" = String, Path, description = "The group's id")),
    request_body = UpdateGroup,
    responses(
        (status = 200, description = "The group after the change", body = GroupOut),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn update_group(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(group_id): ApiPath<String>,
    JsonBody(body, _hash): JsonBody<UpdateGroup>,
) -> ApiResult<Json<GroupOut>> {
    let reply = run(
        &state,
        &caller,
        Frame {
            op: ops::GROUP_UPDATE.into(),
            group_id,
            name: body.name,
            avatar: body.avatar,
            announcement: body.announcement,
            custom: custom_text(body.custom),
            join_policy: body.join_policy,
            ..Default::default()
        },
    )
    .await?;
    reply
        .group
        .as_ref()
        .map(|g| Json(group_out(g)))
        .ok_or_else(|| ApiError::internal("group_update answered without the group"))
}

/// Dismiss a group.
///
/// Every member gets a `group_dismissed` event and leaves; the history
/// stays readable in the members' inboxes. The id is never used again.
/// (A group above the read-diffusion threshold: what a member had not
/// pulled yet — see docs/protocol.md §4.15 — is not given to them.)
#[utoipa::path(
    delete,
    path = "/v1/groups/{group_id}",
    tag = "groups",
    operation_id = "dismiss_group",
    params(("group_id" = String, Path, description = "The group's id")),
    responses(
        (status = 204, description = "Dismissed"),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn dismiss_group(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(group_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    run(
        &state,
        &caller,
        Frame {
            op: ops::GROUP_DISMISS.into(),
            group_id,
            ..Default::default()
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A group's members.
///
/// By user id, paged: pass `next_cursor` as `cursor` for the next page.
/// Pages are stable while members join or leave (a page starts after the
/// last user id of the one before).
#[utoipa::path(
    get,
    path = "/v1/groups/{group_id}/members",
    tag = "groups",
    operation_id = "list_group_members",
    params(("group_id" = String, Path, description = "The group's id"), MembersQuery),
    responses(
        (status = 200, description = "One page", body = MemberPage),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn list_members(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(group_id): ApiPath<String>,
    ApiQuery(q): ApiQuery<MembersQuery>,
) -> ApiResult<Json<MemberPage>> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request("limit must be 1 to 500"));
    }
    let cursor = match q.cursor.as_deref() {
        None | Some("") => String::new(),
        Some(c) => B64
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|u| confab_model::UserId::parse(u).is_ok())
            .ok_or_else(|| ApiError::bad_request("cursor is not one this API gave"))?,
    };
    let reply = run(
        &state,
        &caller,
        Frame {
            op: ops::GROUP_MEMBERS.into(),
            group_id,
            limit: Some(limit),
            cursor,
            ..Default::default()
        },
    )
    .await?;
    Ok(Json(MemberPage {
        items: reply.group_members.iter().map(member_out).collect(),
        next_cursor: (reply.has_more == Some(true) && !reply.cursor.is_empty())
            .then(|| B64.encode(&reply.cursor)),
    }))
}

/// Add members.
///
/// Users already in the group are skipped; the others get a `group_joined`
/// event with everyone else. Over the app's group size or groups-per-user
/// quota nothing is added (`400 quota_exceeded`). Accepts `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/groups/{group_id}/members",
    tag = "groups",
    operation_id = "add_group_members",
    params(("group_id" = String, Path, description = "The group's id"), ("Idempotency-Key" = Option<String>, Header, description = "16 to 255 visible ASCII characters; a repeat returns the first response")),
    request_body = AddMembers,
    responses(
        (status = 200, description = "Who was added", body = MembersAdded),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 409, response = crate::Conflict),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn add_members(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(group_id): ApiPath<String>,
    headers: HeaderMap,
    JsonBody(body, hash): JsonBody<AddMembers>,
) -> ApiResult<Response> {
    let frame = Frame {
        op: ops::GROUP_ADD.into(),
        group_id: group_id.clone(),
        user_ids: body.user_ids,
        ..Default::default()
    };
    state
        .idempotency
        .run(
            caller.app_id.as_str(),
            &headers,
            &hash,
            StatusCode::OK,
            async {
                let reply = run(&state, &caller, frame).await?;
                Ok(MembersAdded {
                    group_id,
                    added: reply.user_ids,
                })
            },
        )
        .await
}

/// Remove a member.
///
/// The member (and everyone else) gets a `group_removed` event. The owner
/// cannot be removed (`403 forbidden`); a user who is not a member is
/// `404 not_found`.
#[utoipa::path(
    delete,
    path = "/v1/groups/{group_id}/members/{user_id}",
    tag = "groups",
    operation_id = "remove_group_member",
    params(("group_id" = String, Path, description = "The group's id"), ("user_id" = String, Path, description = "The member's user id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn remove_member(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath((group_id, user_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let reply = run(
        &state,
        &caller,
        Frame {
            op: ops::GROUP_REMOVE.into(),
            group_id,
            user_ids: vec![user_id],
            ..Default::default()
        },
    )
    .await?;
    if reply.user_ids.is_empty() {
        return Err(ApiError::not_found("no such member"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Set a member's role.
///
/// `admin` or `member`; members get a `group_role` event. The owner's role
/// does not change here (`400 bad_request`).
#[utoipa::path(
    put,
    path = "/v1/groups/{group_id}/members/{user_id}/role",
    tag = "groups",
    operation_id = "set_group_member_role",
    params(("group_id" = String, Path, description = "The group's id"), ("user_id" = String, Path, description = "The member's user id")),
    request_body = SetRole,
    responses(
        (status = 200, description = "The member after the change", body = MemberOut),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn set_role(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath((group_id, user_id)): ApiPath<(String, String)>,
    JsonBody(body, _hash): JsonBody<SetRole>,
) -> ApiResult<Json<MemberOut>> {
    run(
        &state,
        &caller,
        Frame {
            op: ops::GROUP_ROLE.into(),
            group_id: group_id.clone(),
            user_id: user_id.clone(),
            role: Some(body.role),
            ..Default::default()
        },
    )
    .await?;
    member(&state, &caller, &group_id, &user_id).await.map(Json)
}

/// One member as stored now.
async fn member(
    state: &ApiState,
    caller: &Caller,
    group_id: &str,
    user_id: &str,
) -> ApiResult<MemberOut> {
    let group = confab_model::GroupId::parse(group_id)
        .map_err(|e| ApiError::bad_request(format!("group_id: {e}")))?;
    let user = confab_model::UserId::parse(user_id)
        .map_err(|e| ApiError::bad_request(format!("user_id: {e}")))?;
    let m = state
        .logic
        .stores()
        .groups
        .member(&caller.app_id, &group, &user)
        .await?
        .ok_or_else(|| ApiError::not_found("no such member"))?;
    Ok(MemberOut {
        user_id: m.user_id.as_str().to_owned(),
        role: m.role.as_str().to_owned(),
        muted_until: (m.muted_until > confab_model::now_ms()).then(|| rfc3339(m.muted_until)),
        joined_at: rfc3339(m.joined_at),
    })
}

/// Mute a member.
///
/// For `duration_s` seconds (0 lifts the mute): the member's sends to the
/// group are refused with `muted` until then. Members get a `group_muted`
/// (or `group_unmuted`) event. The owner cannot be muted (`403 forbidden`).
#[utoipa::path(
    post,
    path = "/v1/groups/{group_id}/members/{user_id}/mute",
    tag = "groups",
    operation_id = "mute_group_member",
    params(("group_id" = String, Path, description = "The group's id"), ("user_id" = String, Path, description = "The member's user id")),
    request_body = MuteMember,
    responses(
        (status = 200, description = "The member after the change", body = MemberOut),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn mute_member(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath((group_id, user_id)): ApiPath<(String, String)>,
    JsonBody(body, _hash): JsonBody<MuteMember>,
) -> ApiResult<Json<MemberOut>> {
    if !(0..=MAX_MUTE_SECS).contains(&body.duration_s) {
        return Err(ApiError::bad_request(format!(
            "duration_s must be 0 to {MAX_MUTE_SECS}"
        )));
    }
    run(
        &state,
        &caller,
        Frame {
            op: ops::GROUP_MUTE.into(),
            group_id: group_id.clone(),
            user_id: user_id.clone(),
            duration_ms: Some(body.duration_s * 1000),
            ..Default::default()
        },
    )
    .await?;
    member(&state, &caller, &group_id, &user_id).await.map(Json)
}

/// Mute or unmute the whole group.
///
/// While muted only the owner and admins may send (and the app, sending as the system). Members
/// get a `group_muted` (or `group_unmuted`) event.
#[utoipa::path(
    post,
    path = "/v1/groups/{group_id}/mute",
    tag = "groups",
    operation_id = "mute_group",
    params(("group_id" = String, Path, description = "The group's id")),
    request_body = MuteGroup,
    responses(
        (status = 200, description = "The group after the change", body = GroupOut),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn mute_group(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(group_id): ApiPath<String>,
    JsonBody(body, _hash): JsonBody<MuteGroup>,
) -> ApiResult<Json<GroupOut>> {
    run(
        &state,
        &caller,
        Frame {
            op: ops::GROUP_MUTE.into(),
            group_id: group_id.clone(),
            mute_all: Some(body.mute_all),
            ..Default::default()
        },
    )
    .await?;
    Ok(Json(current(&state, &caller, &group_id).await?))
}
