//! Domain types shared by every layer. Parse, don't validate: an [`AppId`],
//! [`UserId`] or [`Peer`] that exists has been checked once, at the edge.
//! No I/O here, and no knowledge of encodings or storage.

mod body;
mod group;
mod ids;
mod room;
mod settings;

pub use body::{Body, BodyError, EVENT_BODY_TYPE, body_type_label};
pub use group::{GroupInfo, GroupMember, GroupRole, JoinPolicy, event as group_event};
pub use ids::{AppId, ConvId, GroupId, IdError, Peer, PeerKind, Platform, RoomId, UserId};
pub use room::RoomPriority;
pub use settings::{
    AppSettings, DEFAULT_READ_DIFFUSION_THRESHOLD, KickPolicy, PushTemplates, Quotas,
};

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A message as stored in the roaming store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub conv_id: ConvId,
    pub seq: u64,
    pub msg_id: String,
    pub from: UserId,
    pub to: Peer,
    /// JSON object text, already validated.
    pub body: String,
    pub ts: i64,
    pub client_msg_id: String,
    pub recalled: bool,
}

/// One entry of a user's inbox (the sync store): a reference to a message in
/// the order the user received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    pub inbox_seq: u64,
    pub message: StoredMessage,
}

/// Body of a recalled message, as history and sync show it.
pub const RECALLED_BODY: &str = r#"{"type":"recalled"}"#;
