//! WebSocket transport: `GET /v1/connect` with subprotocol `confab.v1.json`
//! (text frames, the default) or `confab.v1.proto` (binary frames).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use confab_proto::{Encoding, SUBPROTOCOL_JSON, SUBPROTOCOL_PROTO};
use futures_util::StreamExt;

use crate::Gateway;
use crate::connection::{self, Incoming};
use crate::sink::WireSink;

/// Frames up to this many times the configured limit are read and answered
/// with `frame_too_large`; larger ones close the connection unread.
const HARD_LIMIT_FACTOR: usize = 4;

pub(crate) fn router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/connect", get(upgrade))
        .with_state(gw)
}

/// The client's IP, when the server runs with connect info.
struct PeerIp(Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(PeerIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

async fn upgrade(
    State(gw): State<Arc<Gateway>>,
    PeerIp(ip): PeerIp,
    ws: WebSocketUpgrade,
) -> Response {
    if gw.is_shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "server is shutting down").into_response();
    }
    let slot = match ip.map(|ip| gw.hub.admit_ip(ip, gw.config.max_connections_per_ip)) {
        Some(Err(())) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "too many connections from this address",
            )
                .into_response();
        }
        Some(Ok(slot)) => slot,
        None => None,
    };
    let hard = gw.config.max_frame_bytes * HARD_LIMIT_FACTOR;
    let ws = ws
        .protocols([SUBPROTOCOL_JSON, SUBPROTOCOL_PROTO])
        .read_buffer_size(gw.config.ws_read_buffer)
        .write_buffer_size(0)
        .max_write_buffer_size(crate::MAX_OUTGOING_FRAME_BYTES * 2)
        .max_message_size(hard)
        .max_frame_size(hard);
    let encoding = match ws.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some(SUBPROTOCOL_PROTO) => Encoding::Proto,
        _ => Encoding::Json,
    };
    ws.on_upgrade(move |socket| async move {
        let _slot = slot;
        serve(gw, socket, encoding).await
    })
}

async fn serve(gw: Arc<Gateway>, socket: WebSocket, encoding: Encoding) {
    let (sink, stream) = socket.split();
    let reader = stream
        .map(|msg| match msg {
            Ok(Message::Text(t)) => Incoming::Frame {
                payload: t.into(),
                binary: false,
            },
            Ok(Message::Binary(b)) => Incoming::Frame {
                payload: b,
                binary: true,
            },
            Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => Incoming::Activity,
            Ok(Message::Close(_)) => Incoming::Closed,
            Err(e) => {
                tracing::debug!(error = %e, "websocket read error");
                if e.to_string().contains("too long") || e.to_string().contains("too big") {
                    Incoming::TooLarge
                } else {
                    Incoming::Closed
                }
            }
        })
        // End the stream after a close or an error.
        .take_while(|i| std::future::ready(!matches!(i, Incoming::Closed)))
        .boxed();
    connection::run(gw, reader, WireSink::Ws(sink), encoding, "ws").await;
}
