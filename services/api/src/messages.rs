//! `/v1/messages/...` beyond the single send (routes.rs): get one message by
//! id, recall as the app, and batch send to up to 500 users.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use confab_logic::Session;
use confab_model::{Platform, UserId};
use confab_proto::Frame;
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;

use crate::ApiState;
use crate::auth::Caller;
use crate::dto::MessageOut;
use crate::error::{ApiError, ApiPath, ApiResult, JsonBody};
use crate::routes::SYSTEM_USER;

/// Most recipients of one batch send.
pub const MAX_BATCH_USERS: usize = 500;
/// Recipients sent to at once within a batch: enough to overlap the
/// store's group commits, few enough not to crowd out other apps.
const BATCH_CONCURRENCY: usize = 32;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": "system", "to_user_ids": ["alice", "bob"], "body": {"type": "text", "text": "maintenance at 02:00 UTC"}, "client_msg_id": "notice-2026-11-25"}))]
pub struct BatchSend {
    /// The sending user, or `system` to send as the system.
    pub from: String,
    /// 1 to 500 user ids (duplicates are sent to once).
    pub to_user_ids: Vec<String>,
    /// The message body: a JSON object.
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    /// Makes the batch safe to retry: each recipient's message gets the
    /// `client_msg_id` `{client_msg_id}:{user_id}`, so a repeat stores and
    /// delivers nothing new and answers the first messages.
    pub client_msg_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchError {
    pub code: String,
    pub message: String,
}

/// One recipient's outcome: the message, or an error.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchResult {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conv_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<BatchError>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"user_id": "alice", "msg_id": "01JD8X4K2M3N4P5Q6R7S8T9V0W", "seq": 7, "conv_id": "p2p:alice:system"}, {"user_id": "bob", "error": {"code": "rate_limited", "message": "too many messages; retry later"}}], "sent": 1, "failed": 1}))]
pub struct BatchSent {
    /// One per distinct recipient, in the order asked.
    pub items: Vec<BatchResult>,
    pub sent: usize,
    pub failed: usize,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"msg_id": "01JD8X4K2M3N4P5Q6R7S8T9V0W", "conv_id": "p2p:alice:bob", "recalled": true}))]
pub struct Recalled {
    pub msg_id: String,
    pub conv_id: String,
    pub recalled: bool,
}

/// A message by id.
///
/// The stored message, in the shape of history items. A message of another
/// app is `404 not_found`. A recalled message is returned with
/// `recalled: true` and its content cleared.
#[utoipa::path(
    get,
    path = "/v1/messages/{msg_id}",
    tag = "messages",
    operation_id = "get_message",
    params(("msg_id" = String, Path, description = "The message's id")),
    responses(
        (status = 200, description = "The message", body = MessageOut),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn get_message(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(msg_id): ApiPath<String>,
) -> ApiResult<Json<MessageOut>> {
    let m = state
        .logic
        .stores()
        .messages
        .get_by_id(&caller.app_id, &msg_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such message"))?;
    Ok(Json(MessageOut::from(&m)))
}

/// Recall a message.
///
/// As the app: any message of the app, whatever its sender and age (the
/// recall window binds only users' own recalls on the wire). The content is
/// dropped and every participant's sessions get `recalled`, as with the
/// wire op. Recalling a recalled message again succeeds.
#[utoipa::path(
    post,
    path = "/v1/messages/{msg_id}/recall",
    tag = "messages",
    operation_id = "recall_message",
    params(("msg_id" = String, Path, description = "The message's id")),
    responses(
        (status = 200, description = "Recalled", body = Recalled),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn recall_message(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(msg_id): ApiPath<String>,
) -> ApiResult<Json<Recalled>> {
    let span = tracing::info_span!("rest_recall", app = %caller.app_id.as_str(), msg_id = %msg_id);
    let m = state
        .logic
        .recall_as_app(&caller.app_id, &msg_id)
        .instrument(span)
        .await?;
    Ok(Json(Recalled {
        msg_id: m.msg_id,
        conv_id: m.conv_id.as_str().to_owned(),
        recalled: true,
    }))
}

/// Send one message to many users.
///
/// As a user or as `system`, one message per recipient (each in its own
/// single chat), through the same pipeline as `POST /v1/messages`. Every
/// recipient gets a result: the message, or why it failed (a failure of one
/// does not stop the others). Accepts `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/messages/batch",
    tag = "messages",
    operation_id = "batch_send",
    params(("Idempotency-Key" = Option<String>, Header, description = "16 to 255 visible ASCII characters; a repeat returns the first response")),
    request_body = BatchSend,
    responses(
        (status = 200, description = "Each recipient's result", body = BatchSent),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 409, response = crate::Conflict),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn batch_send(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(body, hash): JsonBody<BatchSend>,
) -> ApiResult<Response> {
    let from =
        UserId::parse(&body.from).map_err(|e| ApiError::bad_request(format!("from: {e}")))?;
    let mut to: Vec<UserId> = Vec::with_capacity(body.to_user_ids.len().min(MAX_BATCH_USERS));
    for raw in &body.to_user_ids {
        let u = UserId::parse(raw)
            .map_err(|e| ApiError::bad_request(format!("to_user_ids: {raw:?}: {e}")))?;
        if !to.contains(&u) {
            to.push(u);
        }
        if to.len() > MAX_BATCH_USERS {
            break;
        }
    }
    if to.is_empty() || to.len() > MAX_BATCH_USERS {
        return Err(ApiError::bad_request(format!(
            "to_user_ids must name 1 to {MAX_BATCH_USERS} users"
        )));
    }
    if !body.body.is_object() {
        return Err(ApiError::bad_request("body must be a JSON object"));
    }
    if from.as_str() != SYSTEM_USER && to.contains(&from) {
        return Err(ApiError::bad_request("to_user_ids may not include from"));
    }
    let session = Session {
        app_id: caller.app_id.clone(),
        user_id: from,
        device_id: "rest".into(),
        platform: Platform::Other,
        session_id: format!("rest-{}", ulid::Ulid::new()),
        settings: confab_logic::shared_settings::share(&caller.app_id, caller.app.settings.clone()),
        client_version: String::new(),
    };
    let text = body.body.to_string();
    let client_msg_id = body.client_msg_id.clone().filter(|c| !c.is_empty());
    state
        .idempotency
        .run(
            caller.app_id.as_str(),
            &headers,
            &hash,
            StatusCode::OK,
            async {
                let mut items = Vec::with_capacity(to.len());
                for chunk in to.chunks(BATCH_CONCURRENCY) {
                    let sends = chunk.iter().map(|user| {
                        let frame = Frame {
                            op: confab_proto::ops::SEND.into(),
                            rid: Some(1),
                            to: Some(confab_proto::Peer {
                                kind: "user".into(),
                                id: user.as_str().to_owned(),
                            }),
                            body: text.clone(),
                            client_msg_id: client_msg_id
                                .as_ref()
                                .map(|c| format!("{c}:{}", user.as_str()))
                                .unwrap_or_default(),
                            ..Default::default()
                        };
                        state.logic.handle(&session, frame)
                    });
                    let replies = futures_util::future::join_all(sends).await;
                    for (user, reply) in chunk.iter().zip(replies) {
                        items.push(result_of(user, reply));
                    }
                }
                let failed = items.iter().filter(|r| r.error.is_some()).count();
                Ok(BatchSent {
                    sent: items.len() - failed,
                    failed,
                    items,
                })
            },
        )
        .await
}

fn result_of(user: &UserId, reply: Frame) -> BatchResult {
    let user_id = user.as_str().to_owned();
    if reply.ok == Some(true) {
        BatchResult {
            user_id,
            msg_id: Some(reply.msg_id),
            seq: reply.seq,
            conv_id: Some(reply.conv_id),
            error: None,
        }
    } else {
        let e = reply.error.unwrap_or_default();
        BatchResult {
            user_id,
            msg_id: None,
            seq: None,
            conv_id: None,
            error: Some(BatchError {
                code: e.code,
                message: e.message,
            }),
        }
    }
}
