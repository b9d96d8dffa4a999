//! JSON frames (WebSocket `confab.v1.json` text frames): any bytes decode or
//! fail with an error, never a panic; a decoded frame re-encodes to JSON
//! that decodes, and after that one pass encode/decode is a fixed point.
//! (Not "unchanged after one pass": serde also accepts nested messages in
//! array form, which leaves their JSON-text fields empty; they come back
//! normalised. See confab-proto's json.rs tests.)
#![no_main]

use confab_proto::{Encoding, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode(Encoding::Json, data) {
        let bytes = encode(Encoding::Json, &frame);
        let again = decode(Encoding::Json, &bytes).unwrap_or_else(|e| {
            panic!(
                "re-encoded JSON does not decode: {e}: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        let bytes2 = encode(Encoding::Json, &again);
        let third = decode(Encoding::Json, &bytes2).unwrap_or_else(|e| {
            panic!(
                "twice re-encoded JSON does not decode: {e}: {}",
                String::from_utf8_lossy(&bytes2)
            )
        });
        assert_eq!(third, again);
        let _ = encode(Encoding::Proto, &frame);
    }
});
