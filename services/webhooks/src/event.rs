//! The JSON documents Confab POSTs: every one is
//! `{"id","type","app_id","created_at","data":{...}}`, `id` a ULID that stays
//! the same on every retry (and in the `Confab-Event-Id` header).

use confab_model::{Peer, StoredMessage};
use serde_json::{Value, json};

/// `type` of the test event (`POST /v1/webhooks/test`).
pub const TEST: &str = "test";

/// A new event id.
pub fn new_id() -> String {
    ulid::Ulid::new().to_string()
}

/// The whole document.
pub fn envelope(id: &str, event_type: &str, app_id: &str, created_at: i64, data: Value) -> String {
    json!({
        "id": id,
        "type": event_type,
        "app_id": app_id,
        "created_at": created_at,
        "data": data,
    })
    .to_string()
}

pub fn peer(p: &Peer) -> Value {
    json!({"kind": p.kind.as_str(), "id": p.id.as_ref()})
}

/// A body as JSON (stored bodies are JSON object text).
pub fn body_value(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()))
}

/// A stored message.
pub fn message(m: &StoredMessage) -> Value {
    json!({
        "msg_id": m.msg_id,
        "conv_id": m.conv_id.as_str(),
        "seq": m.seq,
        "from": m.from.as_str(),
        "to": peer(&m.to),
        "body": body_value(&m.body),
        "ts": m.ts,
        "client_msg_id": m.client_msg_id,
    })
}
