//! `POST /v1/webhooks/test`: a signed `test` event to the app's webhook URL,
//! sent now, with what came of it — so that a tenant can check its receiver
//! (reachability, signature check, latency) without sending a message.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ApiState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};

/// How long the test waits for the receiver.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What the test request came to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookTestResult {
    /// The test event's id (`Confab-Event-Id`, and `id` in the body).
    #[schema(example = "01JD8X4K2M3N4P5Q6R7S8T9V0W")]
    pub event_id: String,
    /// Whether the receiver answered 2xx.
    pub delivered: bool,
    /// The receiver's HTTP status, if it answered.
    #[schema(example = 200)]
    pub status_code: Option<u16>,
    #[schema(example = 37)]
    pub latency_ms: u32,
    /// Why it failed (timeout, connection refused, HTTP status).
    pub error: Option<String>,
}

/// Send a test event to the app's webhook.
///
/// POSTs `{"id","type":"test","app_id","created_at","data":{...}}`, signed
/// like every webhook request (`Confab-Signature`), to the app's configured
/// URL and waits (up to 10 s) for the answer. A receiver that fails is not
/// an error of this request: the result says what happened.
#[utoipa::path(
    post,
    path = "/v1/webhooks/test",
    tag = "webhooks",
    operation_id = "test_webhook",
    responses(
        (status = 200, description = "The request was made; `delivered` says whether the receiver answered 2xx", body = WebhookTestResult),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn test_webhook(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<WebhookTestResult>> {
    let Some(hook) = caller.app.webhook.as_ref() else {
        return Err(ApiError::not_found(
            "this app has no webhook; configure one in the console or with PUT /admin/v1/apps/{app_id}/webhook",
        ));
    };
    let result = state
        .logic
        .webhooks()
        .test(&caller.app_id, hook, TEST_TIMEOUT)
        .await;
    Ok(Json(WebhookTestResult {
        event_id: result.event_id,
        delivered: result.response.outcome == confab_webhooks::Outcome::Ok,
        status_code: result.response.status,
        latency_ms: result.response.latency_ms(),
        error: result.response.error,
    }))
}
