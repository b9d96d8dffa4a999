//! An app's webhook: settings, secret rotation, recent deliveries, dead
//! letters and their redelivery. Same isolation as the other app routes: a
//! tenant admin gets `404` for another tenant's app.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use confab_config::webhook::{FailMode as DomainFailMode, WebhookEvent as DomainEvent};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::dto::rfc3339;
use super::extract::{ApiPath, ApiQuery, ApiResult, Auth, JsonBody};
use crate::service::{WebhookRecord, WebhookSettings, WebhookView};

/// An event a webhook can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEventName {
    /// Synchronous: allow, reject or modify each message before it is stored.
    BeforeSend,
    AfterSend,
    UserOnline,
    UserOffline,
    GroupEvent,
}

impl From<WebhookEventName> for DomainEvent {
    fn from(e: WebhookEventName) -> Self {
        match e {
            WebhookEventName::BeforeSend => Self::BeforeSend,
            WebhookEventName::AfterSend => Self::AfterSend,
            WebhookEventName::UserOnline => Self::UserOnline,
            WebhookEventName::UserOffline => Self::UserOffline,
            WebhookEventName::GroupEvent => Self::GroupEvent,
        }
    }
}

impl From<DomainEvent> for WebhookEventName {
    fn from(e: DomainEvent) -> Self {
        match e {
            DomainEvent::BeforeSend => Self::BeforeSend,
            DomainEvent::AfterSend => Self::AfterSend,
            DomainEvent::UserOnline => Self::UserOnline,
            DomainEvent::UserOffline => Self::UserOffline,
            DomainEvent::GroupEvent => Self::GroupEvent,
        }
    }
}

/// What `before_send` does when the endpoint times out, fails or is busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFailMode {
    /// The message is sent.
    Open,
    /// The message is refused with `webhook_unavailable`.
    Closed,
}

impl From<WebhookFailMode> for DomainFailMode {
    fn from(m: WebhookFailMode) -> Self {
        match m {
            WebhookFailMode::Open => Self::Open,
            WebhookFailMode::Closed => Self::Closed,
        }
    }
}

impl From<DomainFailMode> for WebhookFailMode {
    fn from(m: DomainFailMode) -> Self {
        match m {
            DomainFailMode::Open => Self::Open,
            DomainFailMode::Closed => Self::Closed,
        }
    }
}

/// `PUT /admin/v1/apps/{app_id}/webhook`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutWebhook {
    /// Where Confab POSTs (`https://` or `http://`).
    #[schema(example = "https://hooks.example.com/confab")]
    pub url: String,
    /// At least one.
    #[schema(example = json!(["before_send", "after_send"]))]
    pub events: Vec<WebhookEventName>,
    /// `before_send` timeout in ms, 50 to 5000 (default 500).
    #[schema(minimum = 50, maximum = 5000, example = 500)]
    pub timeout_ms: Option<u32>,
    /// Default `open` (or the current mode, on a replace).
    pub fail_mode: Option<WebhookFailMode>,
}

/// An app's webhook. `secret` only right after creation or rotation.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    #[schema(example = "app_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub app_id: String,
    #[schema(example = "https://hooks.example.com/confab")]
    pub url: String,
    pub events: Vec<WebhookEventName>,
    #[schema(example = 500)]
    pub timeout_ms: u32,
    pub fail_mode: WebhookFailMode,
    /// The signing secret: shown once, when created or rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "whsec_5f0c9e2d7b1a4c3e8f6d2b9a0c7e1f4d3b8a6c5e2f9d0b7a1c4e3f8d6b2a9c0e")]
    pub secret: Option<String>,
    #[schema(example = "2024-05-01T12:00:00.000Z")]
    pub created_at: String,
    #[schema(example = "2024-05-01T12:00:00.000Z")]
    pub updated_at: String,
}

impl Webhook {
    fn new(record: WebhookRecord, secret: Option<String>) -> Self {
        Self {
            app_id: record.app_id,
            url: record.url,
            events: record.events.into_iter().map(Into::into).collect(),
            timeout_ms: record.timeout_ms,
            fail_mode: record.fail_mode.into(),
            secret,
            created_at: rfc3339(record.created_at),
            updated_at: rfc3339(record.updated_at),
        }
    }
}

impl From<WebhookView> for Webhook {
    fn from(v: WebhookView) -> Self {
        Self::new(v.record, v.secret)
    }
}

/// `?limit=`: how many, newest first (1 to 200, default 50).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
}

impl ListQuery {
    fn limit(&self) -> u32 {
        self.limit.unwrap_or(50)
    }
}

/// One delivery attempt.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookDelivery {
    /// The event's id (the same on every retry).
    #[schema(example = "01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub event_id: String,
    #[schema(example = "after_send")]
    pub event_type: String,
    /// `delivered`, `failed`, `timeout`, `dead_lettered`, `allow`, `reject`,
    /// `modify`, `busy`, `invalid_response`.
    #[schema(example = "delivered")]
    pub outcome: String,
    /// The receiver's HTTP status, if it answered.
    #[schema(example = 200)]
    pub status_code: Option<u16>,
    #[schema(example = 42)]
    pub latency_ms: u32,
    pub error: Option<String>,
    #[schema(example = "2024-05-01T12:00:00.000Z")]
    pub at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookDeliveryList {
    pub items: Vec<WebhookDelivery>,
}

/// An event that was given up on.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetter {
    #[schema(example = "01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub event_id: String,
    #[schema(example = "after_send")]
    pub event_type: String,
    /// The JSON body that was POSTed.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub attempts: u32,
    pub last_error: Option<String>,
    #[schema(example = "2024-05-01T12:00:00.000Z")]
    pub created_at: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeadLetterList {
    pub items: Vec<DeadLetter>,
}

/// The app's webhook (without its secret).
#[utoipa::path(
    get,
    path = "/admin/v1/apps/{app_id}/webhook",
    tag = "webhooks",
    operation_id = "get_webhook",
    params(("app_id" = String, Path, description = "The app's id")),
    responses(
        (status = 200, description = "The webhook", body = Webhook),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn get_webhook(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult<Json<Webhook>> {
    let record = state.control.webhook(&auth.actor, &app_id).await?;
    Ok(Json(Webhook::new(record, None)))
}

/// Creates or replaces the app's webhook. Creating generates the signing
/// secret, returned in this response only; replacing keeps it.
#[utoipa::path(
    put,
    path = "/admin/v1/apps/{app_id}/webhook",
    tag = "webhooks",
    operation_id = "put_webhook",
    params(("app_id" = String, Path, description = "The app's id")),
    request_body = PutWebhook,
    responses(
        (status = 200, description = "The webhook (with `secret` when it was created)", body = Webhook),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn put_webhook(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
    JsonBody(body, _): JsonBody<PutWebhook>,
) -> ApiResult<Json<Webhook>> {
    let settings = WebhookSettings {
        url: body.url,
        events: body.events.into_iter().map(Into::into).collect(),
        timeout_ms: body.timeout_ms,
        fail_mode: body.fail_mode.map(Into::into),
    };
    let view = state
        .control
        .put_webhook(&auth.actor, &app_id, settings)
        .await?;
    Ok(Json(view.into()))
}

/// Removes the app's webhook: no more requests from the moment the data
/// plane has the change (pending events are dropped when due).
#[utoipa::path(
    delete,
    path = "/admin/v1/apps/{app_id}/webhook",
    tag = "webhooks",
    operation_id = "delete_webhook",
    params(("app_id" = String, Path, description = "The app's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn delete_webhook(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.control.delete_webhook(&auth.actor, &app_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the signing secret; the new one is in this response only and
/// signs every request within seconds.
#[utoipa::path(
    post,
    path = "/admin/v1/apps/{app_id}/webhook/rotate-secret",
    tag = "webhooks",
    operation_id = "rotate_webhook_secret",
    params(("app_id" = String, Path, description = "The app's id")),
    responses(
        (status = 200, description = "The webhook with its new `secret`", body = Webhook),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn rotate_webhook_secret(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult<Json<Webhook>> {
    let view = state
        .control
        .rotate_webhook_secret(&auth.actor, &app_id)
        .await?;
    Ok(Json(view.into()))
}

/// The app's most recent delivery attempts (asynchronous events, before_send
/// calls and tests), newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/apps/{app_id}/webhook/deliveries",
    tag = "webhooks",
    operation_id = "list_webhook_deliveries",
    params(("app_id" = String, Path, description = "The app's id"), ListQuery),
    responses(
        (status = 200, description = "Attempts, newest first", body = WebhookDeliveryList),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn list_deliveries(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<WebhookDeliveryList>> {
    let attempts = state
        .control
        .webhook_deliveries(&auth.actor, &app_id, query.limit())
        .await?;
    Ok(Json(WebhookDeliveryList {
        items: attempts
            .into_iter()
            .map(|a| WebhookDelivery {
                event_id: a.event_id,
                event_type: a.event_type,
                outcome: a.outcome,
                status_code: a.status_code,
                latency_ms: a.latency_ms,
                error: a.error,
                at: rfc3339(a.at),
            })
            .collect(),
    }))
}

/// Events given up on after the retry limit, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/apps/{app_id}/webhook/dead-letters",
    tag = "webhooks",
    operation_id = "list_webhook_dead_letters",
    params(("app_id" = String, Path, description = "The app's id"), ListQuery),
    responses(
        (status = 200, description = "Dead letters, newest first", body = DeadLetterList),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn list_dead_letters(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<DeadLetterList>> {
    let events = state
        .control
        .webhook_dead_letters(&auth.actor, &app_id, query.limit())
        .await?;
    Ok(Json(DeadLetterList {
        items: events
            .into_iter()
            .map(|e| DeadLetter {
                payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
                event_id: e.id,
                event_type: e.event_type,
                attempts: e.attempts,
                last_error: e.last_error,
                created_at: rfc3339(e.created_at),
            })
            .collect(),
    }))
}

/// Puts a dead letter back in the outbox: delivered again with the same
/// event id (receivers dedupe on it), retries starting over.
#[utoipa::path(
    post,
    path = "/admin/v1/apps/{app_id}/webhook/dead-letters/{event_id}/redeliver",
    tag = "webhooks",
    operation_id = "redeliver_webhook_dead_letter",
    params(
        ("app_id" = String, Path, description = "The app's id"),
        ("event_id" = String, Path, description = "The dead letter's event id"),
    ),
    responses(
        (status = 202, description = "Queued for delivery"),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn redeliver_dead_letter(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath((app_id, event_id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state
        .control
        .redeliver_webhook(&auth.actor, &app_id, &event_id)
        .await?;
    Ok(StatusCode::ACCEPTED)
}
