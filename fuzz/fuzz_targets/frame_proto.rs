//! Protobuf frames (WebSocket `confab.v1.proto` binary frames and TCP frame
//! payloads): any bytes decode or fail with an error, never a panic; a
//! decoded frame survives an encode/decode round trip unchanged.
#![no_main]

use confab_proto::{Encoding, decode, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = decode(Encoding::Proto, data) {
        let again = decode(Encoding::Proto, &encode(Encoding::Proto, &frame))
            .expect("a frame the server encoded must decode");
        assert_eq!(again, frame);
        // The same frame must also encode as JSON (a push to a JSON session).
        let _ = encode(Encoding::Json, &frame);
    }
});
