//! The webhook outbox: asynchronous webhook events (after_send, user
//! online/offline, group events), stored durably before anyone tries to
//! deliver them, then claimed with a lease by a dispatcher on any node.
//!
//! An event is `pending` until it is delivered (then removed) or gives up
//! (then `dead`, listed as a dead letter until redelivered). A claim is a
//! lease: a dispatcher that dies mid-delivery loses its claim when the lease
//! expires and another node takes the event again (at-least-once; the event
//! keeps its id, so receivers dedupe). Every finish (`complete`, `retry`,
//! `dead_letter`, `release`) names the claim token it holds and does nothing
//! if the lease was taken over since. Every delivery attempt (asynchronous or
//! not) is recorded for the admin API's delivery list, which keeps only the
//! newest attempts per app.
//!
//! This module must not know how events are sent or when to give up: that
//! is the dispatcher's business (`confab-webhooks`).

use async_trait::async_trait;
use confab_model::AppId;

use crate::Result;

/// Attempts kept per app for the delivery list.
pub const ATTEMPTS_KEPT_PER_APP: i64 = 1000;

/// An event to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhookEvent {
    /// Unique (a ULID); the receiver's dedupe key.
    pub id: String,
    pub app_id: AppId,
    /// `after_send`, `user_online`, ...
    pub event_type: String,
    /// The JSON document POSTed (already holds `id`).
    pub payload: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// A stored event (pending or dead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: String,
    pub app_id: AppId,
    pub event_type: String,
    pub payload: String,
    pub created_at: i64,
    /// Failed attempts so far.
    pub attempts: u32,
    /// When the next attempt is due (ms).
    pub next_attempt_at: i64,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// A batch of events claimed by one dispatcher; `token` proves the lease.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub token: String,
    pub events: Vec<WebhookEvent>,
}

/// One delivery attempt, as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    pub app_id: AppId,
    pub event_id: String,
    pub event_type: String,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<u16>,
    /// `delivered`, `failed`, `timeout`, `dead_lettered`, ...
    pub outcome: String,
    pub latency_ms: u32,
    pub error: Option<String>,
    /// When the attempt finished (ms).
    pub at: i64,
}

#[async_trait]
pub trait WebhookOutbox: Send + Sync + 'static {
    /// Stores events as pending, due now. An id seen before is ignored.
    async fn enqueue(&self, events: Vec<NewWebhookEvent>) -> Result<()>;

    /// Claims up to `max` pending events due at `now` whose lease (if any)
    /// has expired, oldest due first, leasing them until `now + lease_ms`.
    /// Two concurrent claims never return the same event.
    async fn claim(&self, now: i64, lease_ms: i64, max: u32) -> Result<Claimed>;

    /// Delivered: removes the event and records the attempt. `false` if the
    /// lease was lost (nothing changed except the attempt record).
    async fn complete(&self, token: &str, attempt: WebhookAttempt) -> Result<bool>;

    /// Failed, try again at `next_attempt_at`: counts the attempt, ends the
    /// lease and records the attempt.
    async fn retry(
        &self,
        token: &str,
        next_attempt_at: i64,
        attempt: WebhookAttempt,
    ) -> Result<bool>;

    /// Gave up: the event becomes a dead letter; records the attempt.
    async fn dead_letter(&self, token: &str, attempt: WebhookAttempt) -> Result<bool>;

    /// Gives a claimed event back without an attempt (e.g. its app's
    /// concurrency bound was full), due again at `next_attempt_at`.
    async fn release(&self, token: &str, event_id: &str, next_attempt_at: i64) -> Result<bool>;

    /// Records attempts that are not of an outbox event (before_send, test).
    async fn record_attempts(&self, attempts: Vec<WebhookAttempt>) -> Result<()>;

    /// The app's newest attempts, newest first.
    async fn attempts(&self, app: &AppId, limit: u32) -> Result<Vec<WebhookAttempt>>;

    /// The app's dead letters, newest first.
    async fn dead_letters(&self, app: &AppId, limit: u32) -> Result<Vec<WebhookEvent>>;

    /// Moves a dead letter of the app back to pending (same id, attempts
    /// reset, due at `now`). `false` if the app has no such dead letter.
    async fn redeliver(&self, app: &AppId, event_id: &str, now: i64) -> Result<bool>;

    /// Pending events of every app (the outbox depth metric).
    async fn pending(&self) -> Result<u64>;
}
