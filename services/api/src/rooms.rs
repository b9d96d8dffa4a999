//! `/v1/rooms`: live chat rooms — create, look up (with the number of
//! members online), close. Joining, leaving and sending happen on the wire
//! protocol (`room_join`, `room_leave`, `send` to `{"kind":"room"}`);
//! nothing said in a room is stored.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ApiState;
use crate::auth::Caller;
use crate::dto::rfc3339;
use crate::error::{ApiPath, ApiResult, JsonBody};

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"room_id": "launch-party", "name": "Launch party"}))]
pub struct CreateRoom {
    /// 1 to 64 characters of `A-Z a-z 0-9 _ . @ -`; a new id when absent.
    pub room_id: Option<String>,
    /// At most 128 characters.
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"room_id": "launch-party", "name": "Launch party", "created_at": "2026-11-25T14:00:00.000Z", "online_count": 1234}))]
pub struct RoomOut {
    pub room_id: String,
    pub name: String,
    pub created_at: String,
    /// Members online in the room over every node (as the gateways last
    /// reported it: up to a second behind). 0 on create.
    pub online_count: u64,
}

fn room_out(room: confab_store::Room, online_count: u64) -> RoomOut {
    RoomOut {
        room_id: room.room_id.as_str().to_owned(),
        name: room.name,
        created_at: rfc3339(room.created_at),
        online_count,
    }
}

/// Create a live room.
///
/// Only the room's existence is stored; members join and leave it over the
/// wire protocol, and its messages reach only the members online.
#[utoipa::path(
    post,
    path = "/v1/rooms",
    tag = "rooms",
    operation_id = "create_room",
    request_body(content = CreateRoom, description = "Optional; an empty body makes a room with a new id"),
    responses(
        (status = 201, description = "The room", body = RoomOut),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 409, response = crate::Conflict),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn create_room(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    JsonBody(body, _hash): JsonBody<CreateRoom>,
) -> ApiResult<(StatusCode, Json<RoomOut>)> {
    let room = confab_logic::rooms::create(
        &state.logic,
        &caller.app_id,
        body.room_id.as_deref(),
        &body.name,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(room_out(room, 0))))
}

/// A live room and its online count.
#[utoipa::path(
    get,
    path = "/v1/rooms/{room_id}",
    tag = "rooms",
    operation_id = "get_room",
    params(("room_id" = String, Path, description = "The room's id")),
    responses(
        (status = 200, description = "The room", body = RoomOut),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn get_room(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(room_id): ApiPath<String>,
) -> ApiResult<Json<RoomOut>> {
    let (room, online) = confab_logic::rooms::info(&state.logic, &caller.app_id, &room_id).await?;
    Ok(Json(room_out(room, online)))
}

/// Close a live room.
///
/// The room stops existing: every member online gets an `event` push with
/// `event: "room_closed"` and is taken out of it; sends to it fail with
/// `not_found`. Its id may be used again.
#[utoipa::path(
    delete,
    path = "/v1/rooms/{room_id}",
    tag = "rooms",
    operation_id = "close_room",
    params(("room_id" = String, Path, description = "The room's id")),
    responses(
        (status = 204, description = "Closed"),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn close_room(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(room_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    confab_logic::rooms::close(&state.logic, &caller.app_id, &room_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
