//! JSON frames (WebSocket `confab.v1.json` text frames): any bytes decode or
//! fail with an error, never a panic; a decoded frame survives an
//! encode/decode round trip unchanged.
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
        assert_eq!(again, frame);
        let _ = encode(Encoding::Proto, &frame);
    }
});
