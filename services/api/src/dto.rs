//! Request and response bodies of `/v1`.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A timestamp (ms since the epoch) as RFC 3339 (UTC, milliseconds).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ttl_secs": 86400}))]
pub struct MintToken {
    /// Lifetime in seconds, 1 to 2 592 000 (30 days); default 86 400.
    pub ttl_secs: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"user_id": "alice", "token": "eyJhbGciOiJIUzI1NiIsImtpZCI6ImtleV8wMWpkOHg0azJtIn0.eyJzdWIiOiJhbGljZSJ9.c2ln", "key_id": "key_01jd8x4k2m3n4p5q6r7s8t9v0w", "expires_at": "2026-11-26T14:00:00.000Z"}))]
pub struct Token {
    pub user_id: String,
    /// The user token (HS256 JWT) for the gateway's `login`.
    pub token: String,
    /// The secret key that signed it.
    pub key_id: String,
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"user_id": "alice", "revoked_before": "2026-11-25T14:00:00.000Z"}))]
pub struct Revoked {
    pub user_id: String,
    /// Tokens of the user issued before this time no longer work.
    pub revoked_before: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "user", "id": "bob"}))]
pub struct PeerRef {
    /// `user`, `group` or `room`.
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"from": "alice", "to": {"kind": "user", "id": "bob"}, "body": {"type": "text", "text": "hello"}, "client_msg_id": "order-4711-shipped"}))]
pub struct SendMessage {
    /// The sending user (not with `from_system`).
    pub from: Option<String>,
    /// Send as the system (user id `system`, reserved) instead of a user.
    #[serde(default)]
    pub from_system: bool,
    pub to: PeerRef,
    /// The message body: a JSON object (`{"type":"text","text":...}` and the like).
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    /// The sender's id for this message: a repeat with the same id is not
    /// stored or delivered again (the first message is returned).
    pub client_msg_id: Option<String>,
    /// To a room only: `high`, `normal` (the default) or `low` (protocol.md
    /// §4.16: under overload low, then normal, room messages are shed).
    pub priority: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"msg_id": "01JD8X4K2M3N4P5Q6R7S8T9V0W", "conv_id": "p2p:alice:bob", "seq": 42, "ts": "2026-11-25T14:00:00.000Z", "client_msg_id": "order-4711-shipped", "masked": false, "inbox_seq": 108}))]
pub struct Sent {
    pub msg_id: String,
    pub conv_id: String,
    /// The message's position in its conversation (absent for a room
    /// message: rooms store nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub ts: String,
    pub client_msg_id: String,
    /// Whether sensitive words were masked.
    pub masked: bool,
    /// The sender's inbox position of the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbox_seq: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"conv_id": "p2p:alice:bob", "seq": 42, "msg_id": "01JD8X4K2M3N4P5Q6R7S8T9V0W", "from": "alice", "to": {"kind": "user", "id": "bob"}, "body": {"type": "text", "text": "hello"}, "ts": "2026-11-25T14:00:00.000Z", "client_msg_id": "c1", "recalled": false}))]
pub struct MessageOut {
    pub conv_id: String,
    pub seq: u64,
    pub msg_id: String,
    pub from: String,
    pub to: PeerRef,
    #[schema(value_type = Object)]
    pub body: serde_json::Value,
    pub ts: String,
    pub client_msg_id: String,
    pub recalled: bool,
}

impl From<&confab_model::StoredMessage> for MessageOut {
    fn from(m: &confab_model::StoredMessage) -> Self {
        Self {
            conv_id: m.conv_id.as_str().to_owned(),
            seq: m.seq,
            msg_id: m.msg_id.clone(),
            from: m.from.as_str().to_owned(),
            to: PeerRef {
                kind: m.to.kind.as_str().to_owned(),
                id: m.to.id.to_string(),
            },
            body: serde_json::from_str(&m.body)
                .unwrap_or_else(|_| serde_json::Value::Object(Default::default())),
            ts: rfc3339(m.ts),
            client_msg_id: m.client_msg_id.clone(),
            recalled: m.recalled,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// 1 to 100; default 50.
    pub limit: Option<u32>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Only messages with a smaller `seq` (ignored with `cursor`).
    pub before_seq: Option<u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    /// Newest first.
    pub items: Vec<MessageOut>,
    /// Pass as `cursor` for older messages; `null` at the start of the conversation.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConversationsQuery {
    /// 1 to 100; default 100.
    pub limit: Option<u32>,
    /// Not used yet: every answer is one page (`next_cursor` is `null`).
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationOut {
    pub conv_id: String,
    /// The conversation's latest `seq`.
    pub last_seq: u64,
    /// The user's read cursor.
    pub read_seq: u64,
    pub unread: u64,
    pub last_message: Option<MessageOut>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"conv_id": "p2p:alice:bob", "last_seq": 42, "read_seq": 40, "unread": 2, "last_message": null}], "total_unread": 2, "next_cursor": null}))]
pub struct ConversationPage {
    /// Most recently active first.
    pub items: Vec<ConversationOut>,
    /// Unread messages over all the user's conversations.
    pub total_unread: u64,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OnlineQuery {
    /// Comma-separated user ids, 1 to 500.
    pub user_ids: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceOut {
    pub device_id: String,
    pub platform: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Presence {
    pub user_id: String,
    pub online: bool,
    /// The user's connected devices.
    pub devices: Vec<DeviceOut>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"user_id": "alice", "online": true, "devices": [{"device_id": "alice-phone", "platform": "ios"}]}, {"user_id": "bob", "online": false, "devices": []}]}))]
pub struct OnlinePage {
    /// In the order asked (duplicates removed).
    pub items: Vec<Presence>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
