//! Support lookups for a tenant admin, answered by the app's cell
//! (`crate::service::support`): a user's devices, revoking a user's tokens,
//! a system message to a user, a conversation's history.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::extract::{ApiPath, ApiQuery, ApiResult, Auth, JsonBody};
use crate::error::ControlError;
use crate::service::support::segment;

/// A device of a user, as the cell knows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SupportDevice {
    pub device_id: String,
    /// Connected now.
    pub online: bool,
    /// The platform of the connected session (absent when offline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Its offline-push registration (token masked), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub push: Option<Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SupportDeviceList {
    /// By device id.
    pub items: Vec<SupportDevice>,
}

/// A user's tokens were revoked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SupportRevoked {
    pub user_id: String,
    /// Tokens of the user issued before this time no longer work (RFC 3339).
    pub revoked_before: String,
}

/// A text the system sends to a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SystemMessage {
    /// 1 to 4000 characters.
    #[schema(example = "Your account was reviewed; you can send messages again.")]
    pub text: String,
}

/// The stored system message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SupportSent {
    pub msg_id: String,
    pub conv_id: String,
    pub seq: u64,
    pub ts: String,
}

/// A message of a conversation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SupportMessage {
    pub conv_id: String,
    pub seq: u64,
    pub msg_id: String,
    pub from: String,
    /// `{"kind": "user"|"group", "id": ...}`
    #[schema(value_type = Object)]
    pub to: Value,
    #[schema(value_type = Object)]
    pub body: Value,
    pub ts: String,
    pub client_msg_id: String,
    pub recalled: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SupportMessagePage {
    /// Newest first.
    pub items: Vec<SupportMessage>,
    /// Pass as `cursor` for older messages; `null` at the start.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// 1 to 100; default 50.
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Reads the cell's answer as `T`; anything else is the cell's fault.
pub(super) fn typed<T: serde::de::DeserializeOwned>(value: Value) -> ApiResult<T> {
    serde_json::from_value(value).map_err(|e| {
        ControlError::new(
            "bad_gateway",
            format!("the cell's answer is not what its /v1 API documents: {e}"),
        )
        .into()
    })
}

/// A user's devices (online or registered for push), from the app's cell.
#[utoipa::path(
    get,
    path = "/admin/v1/apps/{app_id}/support/users/{user_id}/devices",
    tag = "support",
    operation_id = "support_user_devices",
    params(
        ("app_id" = String, Path, description = "The app's id"),
        ("user_id" = String, Path, description = "The user's id"),
    ),
    responses(
        (status = 200, description = "The user's devices (empty: none online or registered)", body = SupportDeviceList),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 409, response = super::Conflict),
        (status = 502, response = super::BadGateway),
        (status = 503, response = super::DataPlaneUnavailable),
    )
)]
pub async fn user_devices(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath((app_id, user_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<SupportDeviceList>> {
    let path = format!("/v1/users/{}/devices", segment(&user_id));
    let v = state
        .control
        .support_call(&auth.actor, &app_id, "GET", &path, None)
        .await?;
    Ok(Json(typed(v)?))
}

/// Revokes every token of the user and kicks its live sessions.
#[utoipa::path(
    post,
    path = "/admin/v1/apps/{app_id}/support/users/{user_id}/revoke",
    tag = "support",
    operation_id = "support_revoke_user",
    params(
        ("app_id" = String, Path, description = "The app's id"),
        ("user_id" = String, Path, description = "The user's id"),
    ),
    responses(
        (status = 200, description = "Revoked; live sessions were kicked", body = SupportRevoked),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 409, response = super::Conflict),
        (status = 502, response = super::BadGateway),
        (status = 503, response = super::DataPlaneUnavailable),
    )
)]
pub async fn revoke_user(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath((app_id, user_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<SupportRevoked>> {
    let path = format!("/v1/users/{}/revoke", segment(&user_id));
    let v = state
        .control
        .support_call(&auth.actor, &app_id, "POST", &path, None)
        .await?;
    Ok(Json(typed(v)?))
}

/// Sends the user a text message from the system (sender `system`).
#[utoipa::path(
    post,
    path = "/admin/v1/apps/{app_id}/support/users/{user_id}/messages",
    tag = "support",
    operation_id = "support_send_system_message",
    params(
        ("app_id" = String, Path, description = "The app's id"),
        ("user_id" = String, Path, description = "The user's id"),
    ),
    request_body = SystemMessage,
    responses(
        (status = 200, description = "Stored and delivered to the user's online devices", body = SupportSent),
        (status = 400, response = super::BadRequest),
        (status = 422, description = "The app's sensitive words block the message (`content_blocked`)", body = super::dto::ErrorBody),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 409, response = super::Conflict),
        (status = 502, response = super::BadGateway),
        (status = 503, response = super::DataPlaneUnavailable),
    )
)]
pub async fn send_system_message(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath((app_id, user_id)): ApiPath<(String, String)>,
    JsonBody(body, _): JsonBody<SystemMessage>,
) -> ApiResult<Json<SupportSent>> {
    let text = body.text.trim();
    if text.is_empty() || text.chars().count() > 4000 {
        return Err(ControlError::bad_request("text must be 1 to 4000 characters").into());
    }
    let request = json!({
        "from_system": true,
        "to": {"kind": "user", "id": user_id},
        "body": {"type": "text", "text": text},
    });
    let v = state
        .control
        .support_call(&auth.actor, &app_id, "POST", "/v1/messages", Some(request))
        .await?;
    Ok(Json(typed(v)?))
}

/// A conversation's history, newest first (`p2p:<a>:<b>`, `group:<id>`).
#[utoipa::path(
    get,
    path = "/admin/v1/apps/{app_id}/support/conversations/{conv_id}/messages",
    tag = "support",
    operation_id = "support_conversation_history",
    params(
        ("app_id" = String, Path, description = "The app's id"),
        ("conv_id" = String, Path, description = "e.g. `p2p:alice:bob` or `group:g1`"),
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "One page, newest first", body = SupportMessagePage),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 409, response = super::Conflict),
        (status = 502, response = super::BadGateway),
        (status = 503, response = super::DataPlaneUnavailable),
    )
)]
pub async fn conversation_history(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath((app_id, conv_id)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<SupportMessagePage>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ControlError::bad_request("limit must be 1 to 100").into());
    }
    let mut path = format!(
        "/v1/conversations/{}/messages?limit={limit}",
        segment(&conv_id)
    );
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
