//! The TCP transport's framing (`confab_proto::framing::tcp_codec`, what the
//! gateway reads sockets with) over arbitrary bytes arriving in arbitrary
//! chunks: frames come out in order, never larger than the limit, an
//! oversize prefix is an `InvalidData` error, and each frame's payload goes
//! through the protobuf decoder as the gateway's would.
#![no_main]

use bytes::BytesMut;
use confab_proto::{Encoding, decode, framing};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

/// Small, so that the fuzzer reaches the oversize path easily.
const MAX_FRAME: usize = 4096;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size the socket delivers in.
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut codec = framing::tcp_codec(MAX_FRAME);
    let mut buf = BytesMut::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= MAX_FRAME);
                    let _ = decode(Encoding::Proto, &frame);
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
                    // The gateway closes the connection here.
                    return;
                }
            }
        }
        // Never more buffered than one frame and its prefix plus the chunk
        // just read: an announced frame is not buffered past the limit.
        assert!(buf.len() <= MAX_FRAME + framing::LENGTH_BYTES + chunk);
    }
    let _ = codec.decode_eof(&mut buf);
});
