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
#[serde(default)]
pub struct AppSettings {
    pub kick_policy: KickPolicy,
    /// How long after sending a user may recall a message.
    pub recall_window_ms: i64,
    /// Largest message body, in bytes of JSON text (api.md default 12 KiB).
    pub max_body_bytes: usize,
    /// History retention (api.md default 30 days).
    pub retention_days: u32,
    /// Rate and size limits (api.md, "Quotas").
    pub quotas: Quotas,
    /// How offline push notifications read (docs/push.md).
    pub push: PushTemplates,
    /// Groups with more members than this fan out by read diffusion (the
    /// message is stored once; members pull it), smaller ones by write
    /// diffusion (one inbox entry per member). docs/protocol.md §4.15.
    pub read_diffusion_threshold: u32,
}

/// The default [`AppSettings::read_diffusion_threshold`] (issue 5: groups
/// above 500 members).
pub const DEFAULT_READ_DIFFUSION_THRESHOLD: u32 = 500;

/// The app's push notification templates. `{sender}` is the sender's user
/// id, `{group}` the group's name (or id when it has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PushTemplates {
    /// Title of a single-chat notification.
    pub title: String,
    /// Title of a group notification.
    pub group_title: String,
    /// Never put message content in a notification: the body is
    /// `hidden_body` instead (privacy setting of the app).
    pub hide_content: bool,
    pub hidden_body: String,
    /// Body of a notification for a non-text message, by body type
    /// (`image`, `file`, ...); types not listed use `other`.
    pub placeholders: std::collections::BTreeMap<String, String>,
    /// Body for a body type without a placeholder.
    pub other: String,
}

impl Default for PushTemplates {
    fn default() -> Self {
        let placeholders = [
            ("image", "[image]"),
            ("file", "[file]"),
            ("audio", "[voice message]"),
            ("video", "[video]"),
            ("location", "[location]"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Self {
            title: "{sender}".into(),
            group_title: "{sender} in {group}".into(),
            hide_content: false,
            hidden_body: "You have a new message".into(),
            placeholders,
            other: "[message]".into(),
        }
    }
}

/// Per-app limits enforced by the data plane (api.md defaults). Every one is
/// changeable by an operator through the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Quotas {
    /// Concurrent connections of the app on one cell.
    pub max_connections: u32,
    /// Messages per second sent by all users of the app.
    pub app_messages_per_sec: u32,
    /// Messages per second sent by one user.
    pub user_messages_per_sec: u32,
    /// Members of one group (large groups up to 100 000).
    pub max_group_size: u32,
    /// Groups one user may be in.
    pub max_groups_per_user: u32,
    /// Server REST API requests per second.
    pub rest_requests_per_sec: u32,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            app_messages_per_sec: 1_000,
            user_messages_per_sec: 20,
            max_group_size: 500,
            max_groups_per_user: 500,
            rest_requests_per_sec: 200,
        }
    }
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            kick_policy: KickPolicy::OnePerPlatform,
            recall_window_ms: 2 * 60 * 1000,
            max_body_bytes: 12 * 1024,
            retention_days: 30,
            quotas: Quotas::default(),
            push: PushTemplates::default(),
            read_diffusion_threshold: DEFAULT_READ_DIFFUSION_THRESHOLD,
        }
    }
}
