//! One connection's session, whatever the transport: the login deadline, then
//! a read loop that checks each frame (size, encoding, rate), hands it to the
//! logic layer and queues the reply. Replies and pushes share one bounded
//! queue drained by the writer task (see `sink.rs`), so a client sees them in
//! the order they were produced.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use bytes::Bytes;
use confab_logic::{Session, error_reply};
use confab_proto::ops::{self, code};
use confab_proto::{Encoding, Frame};
use confab_store::Route;
use futures_util::{Stream, StreamExt};
use governor::{Quota, RateLimiter};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Gateway;
use crate::hub::{Outbound, SessionHandle};
use crate::sink::{WireSink, write_loop};

/// What the transport read from the socket.
pub(crate) enum Incoming {
    /// A frame's payload; `binary` is false for WebSocket text frames.
    Frame {
        payload: Bytes,
        binary: bool,
    },
    /// The transport rejected the frame as larger than its hard limit.
    TooLarge,
    /// Transport-level traffic (WebSocket ping/pong) that counts as activity.
    Activity,
    Closed,
}

pub(crate) async fn run<R>(
    gw: Arc<Gateway>,
    reader: R,
    sink: WireSink,
    encoding: Encoding,
    transport: &'static str,
) where
    R: Stream<Item = Incoming> + Unpin + Send,
{
    let span = tracing::info_span!(
        "conn",
        transport,
        app = tracing::field::Empty,
        user = tracing::field::Empty,
        session = tracing::field::Empty
    );
    let cancel = CancellationToken::new();
    let (tx, rx) = mpsc::channel(gw.config.send_queue);
    let conn_id = gw.hub.open(tx.clone(), cancel.clone());
    metrics::gauge!("confab_gateway_connections", "transport" => transport).increment(1.0);
    let queued = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn(
        write_loop(
            sink,
            rx,
            encoding,
            cancel.clone(),
            queued.clone(),
            transport,
        )
        .instrument(span.clone()),
    );
    let mut conn = Conn {
        gw: gw.clone(),
        tx,
        queued,
        cancel: cancel.clone(),
        encoding,
        transport,
        session: None,
        handle: None,
        app_slot: None,
        route_refreshed: std::time::Instant::now(),
    };
    conn.serve(reader).instrument(span).await;
    if let Some(s) = conn.session.take() {
        gw.hub.rooms.leave(&s.app_id, &s.user_id, &s.session_id);
        gw.logic.session_closed(&s, "disconnected");
        gw.hub.unregister(&s.app_id, &s.user_id, &s.session_id);
        // Boxed, like every store or logic call of a connection: an idle
        // connection's task then holds only its small loop state, not
        // the largest future it will ever await (kilobytes each, times
        // every connection of the gateway).
        let _ = Box::pin(
            gw.routes
                .unregister(&s.app_id, &s.user_id, &s.device_id, &s.session_id),
        )
        .await;
    }
    // Let the writer finish what is queued (a final error or close frame):
    // with every sender gone (ours, the hub's) its queue ends after that.
    gw.hub.close(conn_id);
    drop(conn);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), writer).await;
    cancel.cancel();
    metrics::gauge!("confab_gateway_connections", "transport" => transport).decrement(1.0);
}

struct Conn {
    gw: Arc<Gateway>,
    tx: mpsc::Sender<Outbound>,
    /// Bytes queued for the writer (replies and pushes).
    queued: Arc<AtomicUsize>,
    cancel: CancellationToken,
    encoding: Encoding,
    transport: &'static str,
    session: Option<Session>,
    /// This connection in the hub (room joins hold it too).
    handle: Option<SessionHandle>,
    /// Held while logged in: the connection's place in its app's quota.
    app_slot: Option<crate::hub::AppSlot>,
    route_refreshed: std::time::Instant,
}

/// How often an active session re-writes its route (which also refreshes the
/// route key's expiry).
const ROUTE_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

enum Step {
    Continue,
    Close,
}

impl Conn {
    /// Queues a frame for this connection. A full queue means the client is
    /// not reading: disconnect rather than buffer.
    fn queue(&self, out: Outbound) {
        if crate::hub::enqueue(&self.tx, &self.queued, out).is_err() {
            metrics::counter!("confab_gateway_slow_consumer_disconnects_total").increment(1);
            self.cancel.cancel();
        }
    }

    fn reply(&self, frame: Frame) {
        self.queue(Outbound::Frame(Arc::new(frame)));
    }

    fn close_with(&self, frame: Option<Frame>, reason: &'static str) {
        self.queue(Outbound::close(frame.map(Arc::new), reason));
    }

    async fn serve<R: Stream<Item = Incoming> + Unpin>(&mut self, mut reader: R) {
        let cfg = self.gw.config.clone();
        // Login phase.
        let first = tokio::select! {
            r = tokio::time::timeout(cfg.login_timeout, next_frame(&mut reader)) => r,
            _ = self.cancel.cancelled() => return,
        };
        let payload = match first {
            Err(_) => {
                metrics::counter!("confab_gateway_logins_total", "result" => "timeout")
                    .increment(1);
                self.close_with(None, "login timeout");
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(()))) => {
                metrics::counter!("confab_gateway_logins_total", "result" => "bad_frame")
                    .increment(1);
                self.close_with(
                    Some(error_reply(
                        None,
                        code::FRAME_TOO_LARGE,
                        "frame exceeds the size limit",
                    )),
                    "bad login frame",
                );
                return;
            }
            Ok(Some(Ok(p))) => p,
        };
        // Boxed: see `run` (the login holds a logic call).
        if !Box::pin(self.login(payload)).await {
            return;
        }

        let rate =
            Quota::per_second(NonZeroU32::new(cfg.frames_per_sec).unwrap_or(NonZeroU32::MIN))
                .allow_burst(NonZeroU32::new(cfg.frames_burst).unwrap_or(NonZeroU32::MIN));
        let limiter = RateLimiter::direct_with_clock(rate, self.gw.clock.clone());
        // Refusals since the last calm second: a client that keeps exceeding
        // its rate (even if some frames get through as tokens refill) is a
        // flood and is closed; one that stops for a second starts afresh.
        let mut refused_recently = 0u32;
        let mut last_refusal = std::time::Instant::now();
        loop {
            let next = tokio::select! {
                r = tokio::time::timeout(cfg.idle_timeout, reader.next()) => r,
                _ = self.cancel.cancelled() => return,
            };
            let incoming = match next {
                Err(_) => {
                    self.close_with(None, "idle timeout");
                    return;
                }
                Ok(None) | Ok(Some(Incoming::Closed)) => return,
                Ok(Some(Incoming::Activity)) => continue,
                Ok(Some(Incoming::TooLarge)) => {
                    self.close_with(
                        Some(error_reply(
                            None,
                            code::FRAME_TOO_LARGE,
                            "frame exceeds the hard size limit",
                        )),
                        "frame too large",
                    );
                    return;
                }
                Ok(Some(Incoming::Frame { payload, binary })) => (payload, binary),
            };
            metrics::counter!("confab_gateway_frames_in_total", "transport" => self.transport)
                .increment(1);
            if limiter.check().is_err() {
                if last_refusal.elapsed() > std::time::Duration::from_secs(1) {
                    refused_recently = 0;
                }
                last_refusal = std::time::Instant::now();
                refused_recently += 1;
                metrics::counter!("confab_gateway_rate_limited_total").increment(1);
                if refused_recently >= cfg.flood_close_after {
                    self.close_with(
                        Some(error_reply(
                            None,
                            code::RATE_LIMITED,
                            "too many frames; closing",
                        )),
                        "flood",
                    );
                    return;
                }
                let rid = confab_proto::decode(self.encoding, &incoming.0)
                    .ok()
                    .and_then(|f| f.rid);
                self.reply(error_reply(
                    rid,
                    code::RATE_LIMITED,
                    "too many frames per second on this connection",
                ));
                continue;
            }
            // Boxed: see `run`.
            match Box::pin(self.handle(incoming.0, incoming.1)).await {
                Step::Continue => {}
                Step::Close => return,
            }
            if self.route_refreshed.elapsed() >= ROUTE_REFRESH {
                Box::pin(self.refresh_route()).await;
            }
        }
    }

    /// Keeps this session's route alive while the client is active (it
    /// expires a few minutes after the last refresh, so routes of a node that
    /// died do not linger).
    async fn refresh_route(&mut self) {
        if self.route_refreshed.elapsed() < ROUTE_REFRESH {
            return;
        }
        self.route_refreshed = std::time::Instant::now();
        if let Some(s) = &self.session {
            let route = Route {
                device_id: s.device_id.clone(),
                session_id: s.session_id.clone(),
                node: self.gw.node.clone(),
                platform: s.platform.as_str().to_owned(),
            };
            if let Err(e) = self.gw.routes.register(&s.app_id, &s.user_id, route).await {
                tracing::warn!(error = %e, "route refresh failed");
            }
        }
    }

    /// Checks a frame's envelope: size, encoding, decoding.
    fn parse(&self, payload: &[u8], binary: bool) -> Result<Frame, Box<Frame>> {
        if payload.len() > self.gw.config.max_frame_bytes {
            return Err(Box::new(error_reply(
                None,
                code::FRAME_TOO_LARGE,
                format!(
                    "frame is {} bytes; the limit is {}",
                    payload.len(),
                    self.gw.config.max_frame_bytes
                ),
            )));
        }
        let expected_binary = self.encoding == Encoding::Proto;
        if binary != expected_binary {
            let msg = if binary {
                "binary frame on a JSON session (subprotocol confab.v1.json): send text frames"
            } else {
                "text frame on a protobuf session (subprotocol confab.v1.proto): send binary frames"
            };
            return Err(Box::new(error_reply(None, code::BAD_FRAME, msg)));
        }
        confab_proto::decode(self.encoding, payload)
            .map_err(|e| Box::new(error_reply(e.rid, code::BAD_FRAME, e.message)))
    }

    async fn login(&mut self, (payload, binary): (Bytes, bool)) -> bool {
        let frame = match self.parse(&payload, binary) {
            Ok(f) => f,
            Err(err) => {
                metrics::counter!("confab_gateway_logins_total", "result" => "bad_frame")
                    .increment(1);
                self.close_with(Some(*err), "bad login frame");
                return false;
            }
        };
        let session_id = new_session_id();
        match self.gw.logic.login(&frame, session_id).await {
            Err(e) => {
                metrics::counter!("confab_gateway_logins_total", "result" => e.code).increment(1);
                tracing::info!(code = e.code, reason = %e.message, "login refused");
                self.close_with(
                    Some(error_reply(frame.rid, e.code, e.message)),
                    "login refused",
                );
                false
            }
            Ok(ok) => {
                let s = ok.session;
                let max = s.settings.quotas.max_connections;
                let Some(slot) = self.gw.hub.admit(&s.app_id, max) else {
                    metrics::counter!("confab_gateway_logins_total", "result" => code::QUOTA_EXCEEDED).increment(1);
                    metrics::counter!("confab_quota_rejections_total", "quota" => "max_connections").increment(1);
                    self.close_with(
                        Some(error_reply(
                            frame.rid,
                            code::QUOTA_EXCEEDED,
                            format!("the app has reached its limit of {max} connections"),
                        )),
                        "connection quota",
                    );
                    return false;
                };
                self.app_slot = Some(slot);
                let span = tracing::Span::current();
                span.record("app", s.app_id.as_str());
                span.record("user", s.user_id.as_str());
                span.record("session", s.session_id.as_str());
                let handle = SessionHandle {
                    session_id: Arc::from(s.session_id.as_str()),
                    device_id: Arc::from(s.device_id.as_str()),
                    platform: s.platform,
                    tx: self.tx.clone(),
                    queued: self.queued.clone(),
                    cancel: self.cancel.clone(),
                };
                // Reply first: pushes registered below come after it.
                let login_head = ok.reply.inbox_seq.unwrap_or(0);
                self.reply(ok.reply);
                self.handle = Some(handle.clone());
                self.gw
                    .hub
                    .register(&s.app_id, &s.user_id, handle, s.settings.kick_policy);
                let previous = self
                    .gw
                    .routes
                    .routes(&s.app_id, &s.user_id)
                    .await
                    .unwrap_or_default();
                self.gw.kicks.kick_elsewhere(
                    &s.app_id,
                    &s.user_id,
                    &confab_logic::NewSession {
                        session_id: &s.session_id,
                        device_id: &s.device_id,
                        platform: s.platform,
                        policy: s.settings.kick_policy,
                    },
                    previous,
                );
                let route = Route {
                    device_id: s.device_id.clone(),
                    session_id: s.session_id.clone(),
                    node: self.gw.node.clone(),
                    platform: s.platform.as_str().to_owned(),
                };
                if let Err(e) = self.gw.routes.register(&s.app_id, &s.user_id, route).await {
                    tracing::warn!(error = %e, "route table update failed");
                }
                metrics::counter!("confab_gateway_logins_total", "result" => "ok").increment(1);
                self.catch_up(&s, login_head).await;
                self.session = Some(s);
                true
            }
        }
    }

    /// Closes the window between the inbox head read by login and this
    /// session joining the hub: a message committed in it was neither counted
    /// in the login reply nor pushed. Pushes whatever arrived after the head
    /// (a repeat of a push is harmless: clients drop repeats by `msg_id`).
    async fn catch_up(&self, s: &Session, login_head: u64) {
        let sync = Frame {
            op: ops::SYNC.into(),
            since: Some(login_head),
            limit: Some(100),
            ..Default::default()
        };
        let reply = self.gw.logic.handle(s, sync).await;
        for m in reply.messages {
            self.queue(Outbound::Frame(Arc::new(confab_proto::message_push(m))));
        }
    }

    async fn handle(&mut self, payload: Bytes, binary: bool) -> Step {
        let frame = match self.parse(&payload, binary) {
            Ok(f) => f,
            Err(err) => {
                let code = err
                    .error
                    .as_ref()
                    .map(|e| e.code.as_str())
                    .unwrap_or_default();
                metrics::counter!("confab_gateway_frame_errors_total", "code" => envelope_code_label(code)).increment(1);
                self.reply(*err);
                return Step::Continue;
            }
        };
        let Some(session) = self.session.as_ref() else {
            return Step::Close;
        };
        match frame.op.as_str() {
            ops::PING => {
                let reply = Frame {
                    op: ops::REPLY.into(),
                    rid: frame.rid,
                    ok: Some(true),
                    server_time: Some(confab_model::now_ms()),
                    ..Default::default()
                };
                self.reply(reply);
                Step::Continue
            }
            ops::LOGOUT => {
                // Logic forgets the device for offline push (protocol.md);
                // the logout itself succeeds whatever it says.
                let rid = frame.rid;
                let forgot = self.gw.logic.handle(session, frame).await;
                if forgot.ok != Some(true) {
                    tracing::warn!(error = ?forgot.error, "logout could not forget the push registration");
                }
                let reply = Frame {
                    op: ops::REPLY.into(),
                    rid,
                    ok: Some(true),
                    ..Default::default()
                };
                self.close_with(Some(reply), "logout");
                Step::Close
            }
            _ => {
                if self.gw.is_shutting_down() {
                    self.reply(error_reply(
                        frame.rid,
                        code::UNAVAILABLE,
                        "server is shutting down; reconnect",
                    ));
                    return Step::Continue;
                }
                if frame.op == ops::ROOM_JOIN {
                    let reply = self.gw.logic.handle(session, frame).await;
                    self.joined_room(&reply).await;
                    self.reply(reply);
                    return Step::Continue;
                }
                if frame.op == ops::ROOM_LEAVE {
                    let left = self.gw.hub.rooms.leave(
                        &session.app_id,
                        &session.user_id,
                        &session.session_id,
                    );
                    self.reply(Frame {
                        op: ops::REPLY.into(),
                        rid: frame.rid,
                        ok: Some(true),
                        room_id: left.map(|r| r.as_str().to_owned()).unwrap_or_default(),
                        ..Default::default()
                    });
                    return Step::Continue;
                }
                if let Some(to) = frame.to.as_ref().filter(|to| to.kind == "room") {
                    // Room membership lives here: only a member may send.
                    let member = self
                        .gw
                        .hub
                        .rooms
                        .room_of(&session.app_id, &session.user_id, &session.session_id)
                        .is_some_and(|r| r.as_str() == to.id);
                    if !member {
                        self.reply(error_reply(
                            frame.rid,
                            code::FORBIDDEN,
                            "join the room (room_join) before sending to it",
                        ));
                        return Step::Continue;
                    }
                }
                let reply = self.gw.logic.handle(session, frame).await;
                self.reply(reply);
                Step::Continue
            }
        }
    }
}

impl Conn {
    /// After logic accepted a `room_join`: puts this session in the room
    /// here. The first member of a room on this node is written to the room
    /// presence before the reply, so that a message sent right after it
    /// reaches this node.
    async fn joined_room(&self, reply: &Frame) {
        let (Some(s), Some(handle)) = (self.session.as_ref(), self.handle.as_ref()) else {
            return;
        };
        if reply.ok != Some(true) {
            return;
        }
        let Ok(room) = confab_model::RoomId::parse(&reply.room_id) else {
            return;
        };
        let joined = self
            .gw
            .hub
            .rooms
            .join(&s.app_id, &s.user_id, &room, handle.clone());
        if joined.count == 1
            && let Err(e) = self
                .gw
                .routes
                .set_room_presence(&s.app_id, &room, &self.gw.node, 1)
                .await
        {
            tracing::warn!(error = %e, room = %room, "room presence write failed");
        }
    }
}

/// The first data frame: `Some(Err(()))` if it was over the transport's
/// hard limit, `None` if the connection ended first.
async fn next_frame<R: Stream<Item = Incoming> + Unpin>(
    reader: &mut R,
) -> Option<Result<(Bytes, bool), ()>> {
    loop {
        match reader.next().await? {
            Incoming::Frame { payload, binary } => return Some(Ok((payload, binary))),
            Incoming::Activity => continue,
            Incoming::TooLarge => return Some(Err(())),
            Incoming::Closed => return None,
        }
    }
}

/// Bounded metrics label for the envelope errors this module produces.
fn envelope_code_label(code: &str) -> &'static str {
    match code {
        code::FRAME_TOO_LARGE => code::FRAME_TOO_LARGE,
        code::BAD_FRAME => code::BAD_FRAME,
        _ => "other",
    }
}

/// Session ids are ULIDs from one monotonic generator, so that on this node a
/// later login always has a greater id (the hub lets the newer session win).
fn new_session_id() -> String {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut g = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
    let generator = g.get_or_insert_with(ulid::Generator::new);
    // Overflow needs 2^80 ids in one millisecond; fall back to a plain ULID.
    generator
        .generate()
        .unwrap_or_else(|_| ulid::Ulid::new())
        .to_string()
}
