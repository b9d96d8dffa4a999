//! An app's webhook settings as the data plane holds them (the secret in
//! clear, like app keys: the snapshot is only ever stored encrypted).
//!
//! The control plane owns and validates them (`confab-control`); the logic
//! layer reads them on every send (`before_send`) and when it emits an
//! asynchronous event.

use serde::{Deserialize, Serialize};

/// The events an app can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEvent {
    /// Synchronous: allow, reject or modify a message before it is stored.
    BeforeSend,
    /// A message was stored.
    AfterSend,
    /// A session logged in.
    UserOnline,
    /// A session logged out or disconnected.
    UserOffline,
    /// A group event was stored (created, joined, left, ...).
    GroupEvent,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 5] = [
        Self::BeforeSend,
        Self::AfterSend,
        Self::UserOnline,
        Self::UserOffline,
        Self::GroupEvent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BeforeSend => "before_send",
            Self::AfterSend => "after_send",
            Self::UserOnline => "user_online",
            Self::UserOffline => "user_offline",
            Self::GroupEvent => "group_event",
        }
    }
}

/// What `before_send` does when the tenant's endpoint does not answer in
/// time, fails, or its app's concurrency bound is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// The message is sent as if the webhook had allowed it.
    #[default]
    Open,
    /// The message is refused (`webhook_unavailable`).
    Closed,
}

/// Default `before_send` timeout (api.md).
pub const DEFAULT_TIMEOUT_MS: u32 = 500;
/// Bounds of the `before_send` timeout.
pub const MIN_TIMEOUT_MS: u32 = 50;
pub const MAX_TIMEOUT_MS: u32 = 5000;

/// One app's webhook.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookConfig {
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub timeout_ms: u32,
    pub fail_mode: FailMode,
    /// The signing secret (`whsec_...`).
    pub secret: String,
}

impl WebhookConfig {
    pub fn subscribes(&self, event: WebhookEvent) -> bool {
        self.events.contains(&event)
    }
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("events", &self.events)
            .field("timeout_ms", &self.timeout_ms)
            .field("fail_mode", &self.fail_mode)
            .field("secret", &"<redacted>")
            .finish()
    }
}
