//! Per-app settings that the data plane applies. Stored with the app; the
//! control plane (a later issue) will stream them, and the quotas in api.md
//! extend them.

use serde::{Deserialize, Serialize};

/// What a new login does to the user's older sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KickPolicy {
    /// One session per platform: a new phone login kicks the old phone.
    #[default]
    OnePerPlatform,
    /// One session in all: any new login kicks every other session.
    OneInAll,
    /// No kicking.
    Unlimited,
}

impl KickPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "one_per_platform" => Some(Self::OnePerPlatform),
            "one_in_all" => Some(Self::OneInAll),
            "unlimited" => Some(Self::Unlimited),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnePerPlatform => "one_per_platform",
            Self::OneInAll => "one_in_all",
            Self::Unlimited => "unlimited",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSettings {
    pub kick_policy: KickPolicy,
    /// How long after sending a user may recall a message.
    pub recall_window_ms: i64,
    /// Largest message body, in bytes of JSON text (api.md default 12 KiB).
    pub max_body_bytes: usize,
    /// History retention (api.md default 30 days).
    pub retention_days: u32,
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            kick_policy: KickPolicy::OnePerPlatform,
            recall_window_ms: 2 * 60 * 1000,
            max_body_bytes: 12 * 1024,
            retention_days: 30,
        }
    }
}
