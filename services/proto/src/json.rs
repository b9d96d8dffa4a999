//! The JSON encoding of [`Frame`]: the serde derives on the generated types plus
//! two rules that the derives cannot express.
//!
//! - `body` is a JSON object on the wire and JSON text inside the struct (so the
//!   protobuf encoding can carry it as a string): see [`body`].
//! - Replies that list things always carry the list, even when it is empty, so
//!   that clients can index `reply["messages"]` without a default.

use bytes::Bytes;
use serde::Deserialize;

use crate::{DecodeError, Frame};

pub(crate) fn decode(bytes: &[u8]) -> Result<Frame, DecodeError> {
    serde_json::from_slice::<Frame>(bytes).map_err(|e| DecodeError {
        rid: recover_rid(bytes),
        message: format!("malformed JSON frame: {e}"),
    })
}

/// Reads just `rid` out of a frame that failed to decode as a whole.
fn recover_rid(bytes: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct RidOnly {
        rid: Option<u64>,
    }
    serde_json::from_slice::<RidOnly>(bytes)
        .ok()
        .and_then(|r| r.rid)
}

pub(crate) fn encode(frame: &Frame) -> Bytes {
    let needs_empty_messages = frame.has_more.is_some() && frame.messages.is_empty();
    let needs_empty_conversations = frame.total_unread.is_some() && frame.conversations.is_empty();
    if !needs_empty_messages && !needs_empty_conversations {
        // Serialising plain structs and strings into a Vec cannot fail.
        return Bytes::from(serde_json::to_vec(frame).unwrap_or_default());
    }
    let mut value = serde_json::to_value(frame).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        if needs_empty_messages {
            map.insert("messages".into(), serde_json::Value::Array(vec![]));
        }
        if needs_empty_conversations {
            map.insert("conversations".into(), serde_json::Value::Array(vec![]));
        }
    }
    Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
}

/// `body`: JSON text in the struct, a JSON value on the wire.
pub mod body {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
        match RawValue::from_string(text.to_owned()) {
            Ok(raw) => raw.serialize(s),
            // Not JSON (cannot come from the server, which validates bodies):
            // send it as a string rather than produce invalid JSON.
            Err(_) => text.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Ok(raw.get().to_owned())
    }
}

/// An optional JSON object field (`Frame.custom`): absent, or an object on
/// the wire and its JSON text inside the struct.
pub mod opt_body {
    use serde::{Deserialize, Deserializer, Serializer};
    use serde_json::value::RawValue;

    pub fn serialize<S: Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match text {
            Some(text) => super::body::serialize(text, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let raw = Option::<Box<RawValue>>::deserialize(d)?;
        Ok(raw.map(|r| r.get().to_owned()))
    }
}

#[cfg(test)]
mod fuzz_found {
    use crate::{Encoding, decode, encode};

    /// Found by the `frame_json` fuzz target: serde also accepts a nested
    /// message in array form (`"group":["bob"]`), which leaves its JSON-text
    /// fields (`custom`) empty rather than JSON. Such a frame must still
    /// encode to valid JSON that decodes, and re-encoding must then be
    /// stable (the server never reads `group` from a client, so the
    /// normalisation of "" is harmless).
    #[test]
    fn a_nested_message_in_array_form_re_encodes_stably() {
        let data = br#"{"op":"group_create","rid":3,"group":["bob"]}"#;
        let frame = decode(Encoding::Json, data).expect("serde accepts the array form");
        assert_eq!(
            frame.group.as_ref().map(|g| g.group_id.as_str()),
            Some("bob")
        );
        let once = encode(Encoding::Json, &frame);
        let again = decode(Encoding::Json, &once).expect("re-encoded JSON decodes");
        let twice = encode(Encoding::Json, &again);
        assert_eq!(
            decode(Encoding::Json, &twice).expect("decodes"),
            again,
            "after one pass, encode/decode is a fixed point"
        );
    }
}
