//! The write half of a connection and its writer task. Frames queued for the
//! connection are encoded and written in batches: everything queued is fed
//! to the socket's buffer and flushed once, so that a burst of frames for one
//! device costs one write syscall instead of one per frame.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket};
use bytes::Bytes;
use confab_proto::{Encoding, ops};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::hub::Outbound;

/// Most frames written per flush.
const BATCH: usize = 64;
/// Batch capacity kept between writes (more is freed after a burst).
const BATCH_KEPT: usize = 4;
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) enum WireSink {
    Ws(SplitSink<WebSocket, WsMessage>),
    /// Frames are length-prefixed into `pending` and written with one
    /// `write_all` per batch; the buffer is released after each flush so an
    /// idle TCP connection holds no write buffer.
    Tcp {
        socket: OwnedWriteHalf,
        pending: Vec<u8>,
    },
}

impl WireSink {
    async fn feed(&mut self, encoding: Encoding, bytes: Bytes) -> io::Result<()> {
        match self {
            WireSink::Ws(s) => {
                let msg = match encoding {
                    Encoding::Json => {
                        WsMessage::Text(Utf8Bytes::try_from(bytes).map_err(io::Error::other)?)
                    }
                    Encoding::Proto => WsMessage::Binary(bytes),
                };
                s.feed(msg).await.map_err(io::Error::other)
            }
            WireSink::Tcp { pending, .. } => {
                if bytes.len() > crate::MAX_OUTGOING_FRAME_BYTES {
                    return Err(io::Error::other("outgoing frame over the limit"));
                }
                pending.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                pending.extend_from_slice(&bytes);
                Ok(())
            }
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        match self {
            WireSink::Ws(s) => s.flush().await.map_err(io::Error::other),
            WireSink::Tcp { socket, pending } => {
                let written = socket.write_all(pending).await;
                *pending = Vec::new();
                written
            }
        }
    }

    async fn close(&mut self, reason: &'static str) {
        match self {
            WireSink::Ws(s) => {
                let frame = CloseFrame {
                    code: 1000,
                    reason: Utf8Bytes::from_static(reason),
                };
                let _ = s.send(WsMessage::Close(Some(frame))).await;
                let _ = s.close().await;
            }
            WireSink::Tcp { socket, pending } => {
                let _ = socket.write_all(pending).await;
                let _ = socket.shutdown().await;
            }
        }
    }
}

/// Runs until the queue closes, a `Close` is written, the socket fails, or
/// `cancel` fires (slow reader, kick, shutdown, reader gone).
pub(crate) async fn write_loop(
    mut sink: WireSink,
    mut rx: mpsc::Receiver<Outbound>,
    encoding: Encoding,
    cancel: CancellationToken,
    queued: Arc<AtomicUsize>,
    transport: &'static str,
) {
    // However the writer ends — its queue closed, a close written, a socket
    // error, cancelled, or a panic — the connection ends with it: a reader
    // left running would keep a WebSocket open with nobody writing to it.
    let _end_connection = cancel.clone().drop_guard();
    // Grown on demand and given back after a burst: an idle connection
    // holds no batch (BATCH slots would be 2 KiB on every connection).
    let mut batch = Vec::new();
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            _ = cancel.cancelled() => break,
        };
        if n == 0 {
            break;
        }
        let mut close_reason = None;
        let write = async {
            for out in batch.drain(..) {
                let (frame, encoded) = match out {
                    Outbound::Frame(f) => (f, None),
                    Outbound::Shared(shared) => {
                        (shared.frame.clone(), Some(shared.bytes(encoding)))
                    }
                    Outbound::Close(close) => {
                        let (f, reason) = *close;
                        close_reason = Some(reason);
                        match f {
                            Some(f) => (f, None),
                            None => break,
                        }
                    }
                };
                if frame.op == ops::MESSAGE
                    && let Some(ts) = frame.ts
                {
                    let latency_ms = (confab_model::now_ms() - ts).max(0) as f64;
                    metrics::histogram!("confab_gateway_delivery_latency_seconds")
                        .record(latency_ms / 1000.0);
                }
                let bytes = encoded.unwrap_or_else(|| confab_proto::encode(encoding, &frame));
                sink.feed(encoding, bytes).await?;
                let cost = crate::hub::frame_cost(&frame);
                let _ = queued.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v.saturating_sub(cost))
                });
                metrics::counter!("confab_gateway_frames_out_total", "transport" => transport)
                    .increment(1);
                if close_reason.is_some() {
                    break;
                }
            }
            sink.flush().await
        };
        let written = tokio::select! {
            r = write => r,
            _ = cancel.cancelled() => break,
        };
        batch.clear();
        if batch.capacity() > BATCH_KEPT {
            batch = Vec::new();
        }
        if written.is_err() {
            break;
        }
        if let Some(reason) = close_reason {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close(reason)).await;
            break;
        }
    }
    // Whatever ended the writer ends the connection (`_end_connection`).
}
