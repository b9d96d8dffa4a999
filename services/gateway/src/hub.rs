//! The sessions of this node: who is online on which connection. Implements
//! [`Delivery`] for the logic layer: a frame for a user is offered to each of
//! the user's connections without waiting; a connection whose queue is full
//! is a slow reader and is disconnected (it will sync on reconnect), so that
//! one stuck phone never holds memory or slows anyone else.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use confab_logic::Delivery;
use confab_model::{AppId, KickPolicy, Platform, UserId};

use confab_proto::{Frame, ops};
use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a connection's writer task is asked to do.
#[derive(Debug)]
pub(crate) enum Outbound {
    Frame(Arc<Frame>),
    /// A frame queued for many connections at once (a live room message):
    /// encoded once per encoding, not once per connection.
    Shared(Arc<SharedFrame>),
    /// Send the frame (if any), then close with the reason. Boxed: closes
    /// are rare, and a 16-byte `Outbound` halves the block of queue slots
    /// every connection's channel allocates up front.
    Close(Box<(Option<Arc<Frame>>, &'static str)>),
}

impl Outbound {
    pub(crate) fn close(frame: Option<Arc<Frame>>, reason: &'static str) -> Self {
        Self::Close(Box::new((frame, reason)))
    }
}

/// A frame with its encodings, made by the first writer that needs each.
#[derive(Debug)]
pub(crate) struct SharedFrame {
    pub frame: Arc<Frame>,
    json: std::sync::OnceLock<bytes::Bytes>,
    proto: std::sync::OnceLock<bytes::Bytes>,
}

impl SharedFrame {
    pub fn new(frame: Arc<Frame>) -> Arc<Self> {
        Arc::new(Self {
            frame,
            json: std::sync::OnceLock::new(),
            proto: std::sync::OnceLock::new(),
        })
    }

    pub fn bytes(&self, encoding: confab_proto::Encoding) -> bytes::Bytes {
        let cell = match encoding {
            confab_proto::Encoding::Json => &self.json,
            confab_proto::Encoding::Proto => &self.proto,
        };
        cell.get_or_init(|| confab_proto::encode(encoding, &self.frame))
            .clone()
    }
}

/// Bytes of queued frames a connection may hold before it counts as a slow
/// reader (frames are also bounded in number by the queue itself).
pub(crate) const MAX_QUEUED_BYTES: usize = 8 * 1024 * 1024;

/// The approximate memory a queued frame holds (its bodies dominate).
pub(crate) fn frame_cost(f: &Frame) -> usize {
    128 + f.body.len()
        + f.messages.iter().map(|m| 128 + m.body.len()).sum::<usize>()
        + f.conversations
            .iter()
            .map(|c| 128 + c.last_message.as_ref().map(|m| m.body.len()).unwrap_or(0))
            .sum::<usize>()
}

fn out_cost(out: &Outbound) -> usize {
    match out {
        Outbound::Frame(f) => frame_cost(f),
        Outbound::Shared(f) => frame_cost(&f.frame),
        Outbound::Close(c) => c.0.as_deref().map(frame_cost).unwrap_or(0),
    }
}

/// Queues `out` on a connection, counting its bytes; `false` if the queue is
/// full in frames or bytes (the caller then disconnects the slow reader).
pub(crate) fn enqueue(
    tx: &mpsc::Sender<Outbound>,
    queued: &AtomicUsize,
    out: Outbound,
) -> Result<(), bool> {
    let cost = out_cost(&out);
    if queued.fetch_add(cost, Ordering::Relaxed) + cost > MAX_QUEUED_BYTES {
        queued.fetch_sub(cost, Ordering::Relaxed);
        return Err(true);
    }
    match tx.try_send(out) {
        Ok(()) => Ok(()),
        Err(e) => {
            queued.fetch_sub(cost, Ordering::Relaxed);
            Err(matches!(e, mpsc::error::TrySendError::Full(_)))
        }
    }
}

/// A logged-in session of this node, as the route table knows it.
#[derive(Debug, Clone)]
pub struct LocalSession {
    pub app: AppId,
    pub user: UserId,
    pub device_id: Arc<str>,
    pub session_id: Arc<str>,
    pub platform: Platform,
}

/// A handle on one logged-in connection.
#[derive(Clone)]
pub(crate) struct SessionHandle {
    pub session_id: Arc<str>,
    pub device_id: Arc<str>,
    pub platform: Platform,
    pub tx: mpsc::Sender<Outbound>,
    /// Bytes queued on the connection (see [`enqueue`]).
    pub queued: Arc<AtomicUsize>,
    pub cancel: CancellationToken,
}

impl SessionHandle {
    /// Queues a frame, or disconnects the session if its queue is full.
    pub(crate) fn offer(&self, out: Outbound) -> bool {
        match enqueue(&self.tx, &self.queued, out) {
            Ok(()) => true,
            Err(true) => {
                metrics::counter!("confab_gateway_slow_consumer_disconnects_total").increment(1);
                tracing::warn!(session = %self.session_id, "send queue full: disconnecting slow reader");
                self.cancel.cancel();
                false
            }
            // The writer is gone: the connection is ending (or should be).
            Err(false) => {
                self.cancel.cancel();
                false
            }
        }
    }
}

#[derive(Default)]
pub struct Hub {
    sessions: DashMap<(AppId, UserId), Vec<SessionHandle>>,
    /// Every open connection, logged in or not.
    connections: AtomicUsize,
    /// Every connection's cancel token, for shutdown.
    all: DashMap<usize, (mpsc::Sender<Outbound>, CancellationToken)>,
    next_id: AtomicUsize,
    /// Logged-in connections per app (the `max_connections` quota).
    per_app: Arc<DashMap<AppId, usize>>,
    /// Open connections per client IP.
    per_ip: Arc<DashMap<std::net::IpAddr, usize>>,
    /// Live room members on this node (rooms.rs).
    pub(crate) rooms: crate::rooms::RoomTable,
}

/// One open connection's place in its IP's limit; given back when dropped.
pub(crate) struct IpSlot {
    per_ip: Arc<DashMap<std::net::IpAddr, usize>>,
    ip: std::net::IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        self.per_ip.remove_if_mut(&self.ip, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }
}

/// One logged-in connection's place in its app's connection quota; given
/// back when dropped.
pub(crate) struct AppSlot {
    per_app: Arc<DashMap<AppId, usize>>,
    app: AppId,
}

impl Drop for AppSlot {
    fn drop(&mut self) {
        self.per_app.remove_if_mut(&self.app, |_, n| {
            *n = n.saturating_sub(1);
            *n == 0
        });
    }
}

impl Hub {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Number of users with at least one session here.
    /// Every logged-in session here.
    pub fn sessions(&self) -> Vec<LocalSession> {
        let mut out = Vec::with_capacity(self.connection_count());
        for entry in self.sessions.iter() {
            let (app, user) = entry.key();
            for h in entry.value() {
                out.push(LocalSession {
                    app: app.clone(),
                    user: user.clone(),
                    device_id: h.device_id.clone(),
                    session_id: h.session_id.clone(),
                    platform: h.platform,
                });
            }
        }
        out
    }

    pub fn online_users(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn open(&self, tx: mpsc::Sender<Outbound>, cancel: CancellationToken) -> usize {
        self.connections.fetch_add(1, Ordering::Relaxed);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.all.insert(id, (tx, cancel));
        id
    }

    pub(crate) fn close(&self, id: usize) {
        self.all.remove(&id);
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// Registers a logged-in session and kicks the ones the app's policy says
    /// it replaces. A reconnect of the same device always replaces the old one.
    pub(crate) fn register(
        &self,
        app: &AppId,
        user: &UserId,
        handle: SessionHandle,
        policy: KickPolicy,
    ) {
        let mut kicked = Vec::new();
        {
            let mut entry = self
                .sessions
                .entry((app.clone(), user.clone()))
                .or_default();
            let new = confab_logic::NewSession {
                session_id: &handle.session_id,
                device_id: &handle.device_id,
                platform: handle.platform,
                policy,
            };
            // Logins can finish out of order (the older connection's token
            // check may complete last): session ids are ULIDs, so the newer
            // session wins whatever order they register in.
            let newer_exists = entry.iter().any(|old| {
                new.replaces(&old.device_id, old.platform.as_str())
                    .is_some()
                    && *old.session_id > *handle.session_id
            });
            if newer_exists {
                kicked.push((
                    handle.clone(),
                    "a newer login of this user replaced this one",
                ));
            } else {
                entry.retain(
                    |old| match new.replaces(&old.device_id, old.platform.as_str()) {
                        Some(r) => {
                            kicked.push((old.clone(), r));
                            false
                        }
                        None => true,
                    },
                );
                entry.push(handle);
            }
        }
        for (old, reason) in kicked {
            metrics::counter!("confab_gateway_kicks_total").increment(1);
            let frame = Frame {
                op: ops::KICKED.into(),
                reason: reason.into(),
                ..Default::default()
            };
            if !old.offer(Outbound::close(Some(Arc::new(frame)), "kicked")) {
                old.cancel.cancel();
            }
        }
    }

    /// Sends `frame` to one session and closes it (a kick from another node).
    pub fn kick_session(&self, app: &AppId, user: &UserId, session_id: &str, frame: Arc<Frame>) {
        let mut kicked = None;
        self.sessions
            .remove_if_mut(&(app.clone(), user.clone()), |_, list| {
                if let Some(pos) = list.iter().position(|h| &*h.session_id == session_id) {
                    kicked = Some(list.remove(pos));
                }
                list.is_empty()
            });
        if let Some(h) = kicked {
            metrics::counter!("confab_gateway_kicks_total").increment(1);
            if !h.offer(Outbound::close(Some(frame), "kicked")) {
                h.cancel.cancel();
            }
        }
    }

    /// Takes a place in the IP's connection limit (`max` 0: no limit; `None`
    /// when the IP already holds `max` connections here).
    pub(crate) fn admit_ip(&self, ip: std::net::IpAddr, max: usize) -> Result<Option<IpSlot>, ()> {
        if max == 0 {
            return Ok(None);
        }
        let mut n = self.per_ip.entry(ip).or_insert(0);
        if *n >= max {
            metrics::counter!("confab_gateway_refused_connections_total", "reason" => "per_ip")
                .increment(1);
            return Err(());
        }
        *n += 1;
        Ok(Some(IpSlot {
            per_ip: self.per_ip.clone(),
            ip,
        }))
    }

    /// Takes a place in the app's connection quota, or `None` when the app
    /// already has `max` logged-in connections on this node.
    pub(crate) fn admit(&self, app: &AppId, max: u32) -> Option<AppSlot> {
        let mut n = self.per_app.entry(app.clone()).or_insert(0);
        if *n >= max as usize {
            return None;
        }
        *n += 1;
        Some(AppSlot {
            per_app: self.per_app.clone(),
            app: app.clone(),
        })
    }

    /// Logged-in connections of every app with any on this node (the usage
    /// dashboards sample it).
    pub fn app_connection_counts(&self) -> Vec<(AppId, u64)> {
        self.per_app
            .iter()
            .map(|e| (e.key().clone(), *e.value() as u64))
            .collect()
    }

    /// Logged-in connections of an app on this node.
    pub fn app_connections(&self, app: &AppId) -> usize {
        self.per_app.get(app).map(|n| *n).unwrap_or(0)
    }

    /// Kicks every session of the apps `gone` says (suspended, deleted or
    /// moved to another cell); returns how many were kicked.
    pub fn kick_apps(&self, gone: impl Fn(&AppId) -> bool, reason: &str) -> usize {
        let frame = Arc::new(Frame {
            op: ops::KICKED.into(),
            reason: reason.into(),
            ..Default::default()
        });
        let keys: Vec<(AppId, UserId)> = self
            .sessions
            .iter()
            .filter(|e| gone(&e.key().0))
            .map(|e| e.key().clone())
            .collect();
        let mut kicked = 0;
        for key in keys {
            if let Some((_, list)) = self.sessions.remove(&key) {
                for h in list {
                    kicked += 1;
                    metrics::counter!("confab_gateway_kicks_total").increment(1);
                    if !h.offer(Outbound::close(Some(frame.clone()), "kicked")) {
                        h.cancel.cancel();
                    }
                }
            }
        }
        kicked
    }

    pub(crate) fn unregister(&self, app: &AppId, user: &UserId, session_id: &str) {
        let key = (app.clone(), user.clone());
        self.sessions.remove_if_mut(&key, |_, list| {
            list.retain(|h| &*h.session_id != session_id);
            list.is_empty()
        });
    }

    /// Sends `goaway` to every connection and closes it; returns how many.
    pub(crate) fn goaway_all(&self, retry_after_ms: u32) -> usize {
        let frame = Arc::new(Frame {
            op: ops::GOAWAY.into(),
            reason: "server_shutdown".into(),
            retry_after_ms: Some(retry_after_ms),
            ..Default::default()
        });
        let mut n = 0;
        for entry in self.all.iter() {
            let (tx, cancel) = entry.value();
            if tx
                .try_send(Outbound::close(Some(frame.clone()), "server shutting down"))
                .is_err()
            {
                cancel.cancel();
            }
            n += 1;
        }
        n
    }

    /// Cancels every connection still open.
    pub(crate) fn close_all(&self) {
        for entry in self.all.iter() {
            entry.value().1.cancel();
        }
    }
}

impl Delivery for Hub {
    fn deliver(&self, app: &AppId, user: &UserId, frame: Arc<Frame>, except_session: Option<&str>) {
        let Some(list) = self.sessions.get(&(app.clone(), user.clone())) else {
            return;
        };
        for h in list.iter() {
            if except_session.is_some_and(|s| s == &*h.session_id) {
                continue;
            }
            h.offer(Outbound::Frame(frame.clone()));
        }
    }

    fn kick_user(&self, app: &AppId, user: &UserId, reason: &str) {
        let Some((_, list)) = self.sessions.remove(&(app.clone(), user.clone())) else {
            return;
        };
        let frame = Arc::new(Frame {
            op: ops::KICKED.into(),
            reason: reason.into(),
            ..Default::default()
        });
        for h in list {
            metrics::counter!("confab_gateway_kicks_total").increment(1);
            if !h.offer(Outbound::close(Some(frame.clone()), "kicked")) {
                h.cancel.cancel();
            }
        }
    }

    fn deliver_room(
        &self,
        app: &AppId,
        room: &confab_model::RoomId,
        frame: Arc<Frame>,
        except_session: Option<&str>,
    ) {
        self.rooms.fan_out(app, room, frame, except_session);
    }

    fn close_room(&self, app: &AppId, room: &confab_model::RoomId, frame: Arc<Frame>) {
        self.rooms.close(app, room, frame);
    }
}
