//! TCP framing (protocol.md): each frame is a 4-byte big-endian length, then
//! that many bytes of one protobuf `Frame`. The gateway, the client and the
//! fuzz target (`fuzz/fuzz_targets/tcp_framing.rs`) all build their codec
//! here, so the bytes the fuzzer feeds go through the exact framing the
//! server reads sockets with.

use tokio_util::codec::LengthDelimitedCodec;

/// Bytes of the length prefix.
pub const LENGTH_BYTES: usize = 4;

/// The codec for one TCP connection. A prefix announcing more than
/// `max_frame_bytes` is an `InvalidData` error: the reader stops there
/// without buffering the frame (the gateway closes with `frame_too_large`).
pub fn tcp_codec(max_frame_bytes: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .big_endian()
        .length_field_length(LENGTH_BYTES)
        .max_frame_length(max_frame_bytes)
        .new_codec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use tokio_util::codec::Decoder;

    #[test]
    fn splits_frames_and_refuses_oversize_prefixes_without_buffering() {
        let mut codec = tcp_codec(8);
        let mut buf = BytesMut::from(&[0, 0, 0, 2, b'h', b'i', 0, 0, 0][..]);
        assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some(&b"hi"[..]));
        assert_eq!(
            codec.decode(&mut buf).unwrap(),
            None,
            "a partial prefix waits"
        );
        let mut big = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3][..]);
        let err = codec.decode(&mut big).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }
}
