//! `GET /admin/v1/apps/{app_id}/push-dead-letters`: the push notifications
//! the push worker gave up on (provider errors past the retry limit, and
//! the like), newest first. Same isolation as the other app routes: a
//! tenant admin gets `404` for another tenant's app.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::dto::rfc3339;
use super::extract::{ApiPath, ApiQuery, ApiResult, Auth};
use crate::error::ControlError;

/// `?limit=`: how many, newest first (1 to 200, default 50).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PushDeadLetterQuery {
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
}

/// One notification given up on.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": "01jd8x4k2m3n4p5q6r7s8t9v0w", "user_id": "bob", "device_id": "bob-phone", "vendor": "apns", "payload": {"title": "Alice", "body": "hello"}, "attempts": 8, "reason": "provider answered 500 eight times", "created_at": "2026-11-25T14:00:00.000Z", "failed_at": "2026-11-25T14:20:00.000Z"}))]
pub struct PushDeadLetter {
    /// The job's id (the same over its retries).
    pub id: String,
    pub user_id: String,
    pub device_id: String,
    /// `apns`, `fcm`, `huawei`, `xiaomi`, `oppo`, `vivo` or `honor`.
    pub vendor: String,
    /// The notification as it would have been sent.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Delivery attempts made.
    pub attempts: u32,
    /// Why it was given up on.
    pub reason: String,
    /// When it was queued.
    pub created_at: String,
    /// When it was given up on.
    pub failed_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PushDeadLetterList {
    /// Newest first.
    pub items: Vec<PushDeadLetter>,
}

/// Push notifications given up on, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/apps/{app_id}/push-dead-letters",
    tag = "push",
    operation_id = "list_push_dead_letters",
    params(("app_id" = String, Path, description = "The app's id"), PushDeadLetterQuery),
    responses(
        (status = 200, description = "Dead letters, newest first", body = PushDeadLetterList),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn list_push_dead_letters(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<PushDeadLetterQuery>,
) -> ApiResult<Json<PushDeadLetterList>> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ControlError::bad_request("limit must be 1 to 200").into());
    }
    let dead = state
        .control
        .push_dead_letters(&auth.actor, &app_id, limit)
        .await?;
    Ok(Json(PushDeadLetterList {
        items: dead
            .into_iter()
            .map(|d| PushDeadLetter {
                payload: serde_json::from_str(&d.job.payload).unwrap_or(serde_json::Value::Null),
                id: d.job.id,
                user_id: d.job.user_id.as_str().to_owned(),
                device_id: d.job.device_id,
                vendor: d.job.vendor,
                attempts: d.job.attempts,
                reason: d.reason,
                created_at: rfc3339(d.job.created_at),
                failed_at: rfc3339(d.failed_at),
            })
            .collect(),
    }))
}
