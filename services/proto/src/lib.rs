//! Confab wire protocol v1.
//!
//! Owns the frame types (generated from `proto/confab/v1/frame.proto`, the source
//! of truth) and the two encodings of the same frames: JSON (WebSocket
//! subprotocol `confab.v1.json`) and protobuf (`confab.v1.proto` and TCP). It does
//! no I/O: the gateway and the client frame bytes over sockets and call
//! [`decode`] / [`encode`] here.

pub mod framing;
pub mod json;
pub mod ops;

/// Generated protobuf types.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/confab.v1.rs"));
}

pub use v1::{
    Conversation, Error as WireError, Frame, Group, GroupJoinRequest, GroupMember, Message, Peer,
};

use bytes::Bytes;
use prost::Message as _;

/// WebSocket subprotocol names.
pub const SUBPROTOCOL_JSON: &str = "confab.v1.json";
pub const SUBPROTOCOL_PROTO: &str = "confab.v1.proto";

/// How frames are serialised on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// One JSON object per WebSocket text frame.
    Json,
    /// One protobuf `Frame` per WebSocket binary frame or length-prefixed TCP frame.
    Proto,
}

/// Why a frame could not be decoded. Carries the request id when it could still
/// be recovered, so that the error reply can name the request it answers.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    pub rid: Option<u64>,
    pub message: String,
}

/// Decodes one frame's bytes.
pub fn decode(encoding: Encoding, bytes: &[u8]) -> Result<Frame, DecodeError> {
    match encoding {
        Encoding::Json => json::decode(bytes),
        Encoding::Proto => Frame::decode(bytes).map_err(|e| DecodeError {
            rid: None,
            message: format!("malformed protobuf frame: {e}"),
        }),
    }
}

/// Encodes one frame.
pub fn encode(encoding: Encoding, frame: &Frame) -> Bytes {
    match encoding {
        Encoding::Json => json::encode(frame),
        Encoding::Proto => Bytes::from(frame.encode_to_vec()),
    }
}

/// The `message` push carrying a stored message (the same fields as a `sync`
/// item, flat in the frame).
pub fn message_push(m: Message) -> Frame {
    Frame {
        op: ops::MESSAGE.into(),
        inbox_seq: m.inbox_seq,
        conv_id: m.conv_id,
        seq: Some(m.seq),
        msg_id: m.msg_id,
        from: m.from,
        to: m.to,
        body: m.body,
        ts: Some(m.ts),
        client_msg_id: m.client_msg_id,
        recalled: m.recalled.then_some(true),
        ..Default::default()
    }
}

/// Appends one encoded frame to `buf` (for the TCP transport: the caller adds
/// the length prefix).
pub fn encode_proto_into(frame: &Frame, buf: &mut Vec<u8>) {
    // Encoding into a Vec cannot run out of capacity.
    let _ = frame.encode(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_message_push() -> Frame {
        Frame {
            op: ops::MESSAGE.into(),
            inbox_seq: Some(7),
            conv_id: "p2p:alice:bob".into(),
            seq: Some(3),
            msg_id: "01J".into(),
            from: "alice".into(),
            to: Some(Peer {
                kind: "user".into(),
                id: "bob".into(),
            }),
            body: r#"{"type":"text","text":"hi"}"#.into(),
            ts: Some(1_700_000_000_000),
            client_msg_id: "c1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn json_and_protobuf_round_trip_to_the_same_frame() {
        let frame = sample_message_push();
        for enc in [Encoding::Json, Encoding::Proto] {
            let bytes = encode(enc, &frame);
            assert_eq!(decode(enc, &bytes).unwrap(), frame, "{enc:?}");
        }
    }

    #[test]
    fn json_body_is_an_object_not_a_string() {
        let bytes = encode(Encoding::Json, &sample_message_push());
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["body"]["text"], "hi");
        assert_eq!(v["to"]["kind"], "user");
        assert!(v.get("rid").is_none(), "pushes carry no rid");
        assert!(v.get("token").is_none(), "unset fields are left out");
    }

    #[test]
    fn group_custom_fields_are_objects_in_json_and_text_in_protobuf() {
        let json = br#"{"op":"group_create","rid":3,"group_id":"g1","name":"","custom":{"topic":"rust"},"user_ids":["bob"]}"#;
        let frame = decode(Encoding::Json, json).expect("decodes");
        assert_eq!(frame.custom.as_deref(), Some(r#"{"topic":"rust"}"#));
        assert_eq!(
            frame.name.as_deref(),
            Some(""),
            "an empty name is kept: it clears"
        );
        assert_eq!(frame.announcement, None);
        let back = encode(Encoding::Json, &frame);
        let value: serde_json::Value = serde_json::from_slice(&back).expect("json");
        assert_eq!(value["custom"]["topic"], "rust");
        assert!(value.get("announcement").is_none());
        let proto = decode(Encoding::Proto, &encode(Encoding::Proto, &frame)).expect("proto");
        assert_eq!(proto, frame);
        let reply = Frame {
            group: Some(Group {
                group_id: "g1".into(),
                custom: r#"{"a":1}"#.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let value: serde_json::Value =
            serde_json::from_slice(&encode(Encoding::Json, &reply)).expect("json");
        assert_eq!(value["group"]["custom"]["a"], 1);
    }

    #[test]
    fn json_sync_reply_always_lists_messages() {
        let reply = Frame {
            op: ops::REPLY.into(),
            rid: Some(1),
            ok: Some(true),
            has_more: Some(false),
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::from_slice(&encode(Encoding::Json, &reply)).unwrap();
        assert_eq!(v["messages"], serde_json::json!([]));
        assert_eq!(v["ok"], true);
        assert_eq!(v["rid"], 1);
    }

    #[test]
    fn malformed_json_keeps_the_rid_when_it_can() {
        let err = decode(
            Encoding::Json,
            br#"{"op":"send","rid":9,"to":"not-an-object"}"#,
        )
        .unwrap_err();
        assert_eq!(err.rid, Some(9));
        let err = decode(Encoding::Json, b"{not json").unwrap_err();
        assert_eq!(err.rid, None);
    }

    #[test]
    fn garbage_protobuf_is_an_error_not_a_panic() {
        assert!(decode(Encoding::Proto, &[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
