//! TCP transport: each frame is a 4-byte big-endian length and one protobuf
//! `Frame` (tokio-util's `LengthDelimitedCodec` does the framing).

use std::sync::Arc;

use confab_proto::Encoding;
use futures_util::StreamExt;
use tokio::net::TcpListener;
use tokio_util::codec::FramedRead;

use crate::Gateway;
use crate::connection::{self, Incoming};
use crate::sink::WireSink;

pub(crate) async fn serve(gw: Arc<Gateway>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = gw.shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "tcp accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = match gw.hub.admit_ip(peer.ip(), gw.config.max_connections_per_ip) {
            Ok(slot) => slot,
            // Over the per-IP limit: closed at once, nothing read.
            Err(()) => continue,
        };
        let _ = stream.set_nodelay(true);
        let gw = gw.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let (read, write) = stream.into_split();
            let codec = confab_proto::framing::tcp_codec(gw.config.max_frame_bytes);
            let reader = FramedRead::with_capacity(read, codec, 512)
                .map(|r| match r {
                    Ok(b) => Incoming::Frame {
                        payload: b.freeze(),
                        binary: true,
                    },
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => Incoming::TooLarge,
                    Err(_) => Incoming::Closed,
                })
                .take_while(|i| std::future::ready(!matches!(i, Incoming::Closed)))
                .boxed();
            // Outgoing frames may be larger than what clients may send (a
            // sync page of big bodies): the writer checks its own limit.
            let sink = WireSink::Tcp {
                socket: write,
                pending: Vec::new(),
            };
            connection::run(gw, reader, sink, Encoding::Proto, "tcp").await;
        });
    }
}
