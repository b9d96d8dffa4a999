//! A Rust client for the Confab wire protocol: connect over WebSocket (JSON or
//! protobuf) or TCP, log in, send requests and await their replies by `rid`,
//! receive pushes with repeats dropped by `msg_id` (the protocol delivers at
//! least once; clients show exactly once). The tests and the load generator
//! use it; it is also the reference for SDK authors.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use confab_proto::{Encoding, Frame, Peer, SUBPROTOCOL_JSON, SUBPROTOCOL_PROTO, ops};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message as WsMessage, http::HeaderValue};
use tokio_util::codec::{FramedRead, FramedWrite, LengthDelimitedCodec};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting: {0}")]
    Connect(String),
    #[error("connection closed{}", .0.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Closed(Option<String>),
    #[error("timed out waiting for the reply")]
    Timeout,
    #[error("server refused: {code}: {message}")]
    Refused { code: String, message: String },
    #[error("i/o: {0}")]
    Io(String),
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    WsJson,
    WsProto,
    Tcp,
}

impl Transport {
    pub fn encoding(self) -> Encoding {
        match self {
            Transport::WsJson => Encoding::Json,
            _ => Encoding::Proto,
        }
    }
}

type WsStream = WebSocketStream<TcpStream>;

enum Writer {
    Ws(SplitSink<WsStream, WsMessage>),
    Tcp(FramedWrite<tokio::net::tcp::OwnedWriteHalf, LengthDelimitedCodec>),
}

struct Shared {
    pending: std::sync::Mutex<HashMap<u64, oneshot::Sender<Frame>>>,
    close_reason: std::sync::Mutex<Option<String>>,
    /// Ids of group messages this connection sent: a pull for a notice
    /// skips them, as the server skips the sending connection's push.
    sent_to_groups: std::sync::Mutex<HashSet<String>>,
}

/// One connection.
pub struct Client {
    transport: Transport,
    writer: Mutex<Writer>,
    shared: Arc<Shared>,
    pushes: mpsc::UnboundedReceiver<Frame>,
    next_rid: AtomicU64,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
    pub request_timeout: Duration,
    /// The reader task owns the socket's read half: aborting it on drop closes
    /// the connection (the write half alone would keep it open until the
    /// server's idle timeout).
    reader: tokio::task::AbortHandle,
    /// Read diffusion (docs/protocol.md §4.15): when set, [`Client::next_push`]
    /// answers a `group_notify` by pulling the conversation with `history`
    /// and yields the new messages as `message` pushes (without
    /// `inbox_seq`; a later `sync` gives them again with one, and the
    /// `msg_id` dedupe drops the repeats), so a caller sees a large group
    /// as it sees a small one.
    pub pull_group_notifies: bool,
    /// Messages pulled for a `group_notify`, not yet handed out.
    pulled: VecDeque<Frame>,
    /// Highest `seq` handed out per read-diffused conversation: a notice
    /// pulls what lies after it (only the notified message the first time).
    notified_upto: HashMap<String, u64>,
    /// A push read past a run of notices (see [`Client::coalesce_notices`]),
    /// handed out next.
    peeked: Option<Frame>,
    /// `history` calls made to pull notified messages.
    notice_pulls: u64,
    /// Read diffusion: the least time between two pulls of one conversation
    /// for its notices (zero: pull at once). A busy group's notices that
    /// come in the meantime are folded into the next pull, as an SDK
    /// debounces them: fewer `history` calls, each message a little later.
    pub notice_pull_interval: Duration,
    /// When each conversation was last pulled for a notice.
    last_notice_pull: HashMap<String, tokio::time::Instant>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Most messages one `history` call of a notice's pull asks for (the
/// server's maximum), and most calls per notice: a client that fell
/// further behind catches up with `sync`.
const NOTIFY_PULL: u32 = 100;
const NOTIFY_PAGES: u64 = 10;

const SEEN_CAPACITY: usize = 100_000;

impl Client {
    /// Connects to a gateway: `addr` is the HTTP address for WebSocket
    /// transports and the TCP address for `Transport::Tcp`.
    pub async fn connect(transport: Transport, addr: SocketAddr) -> Result<Self> {
        Self::connect_from(transport, addr, None).await
    }

    /// Connects from a chosen local address (load tests spread connections
    /// over 127.0.0.x to pass the ephemeral-port limit of one source address).
    pub async fn connect_from(
        transport: Transport,
        addr: SocketAddr,
        source: Option<IpAddr>,
    ) -> Result<Self> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(|e| ClientError::Connect(e.to_string()))?;
        if let Some(ip) = source {
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(|e| ClientError::Connect(format!("bind {ip}: {e}")))?;
        }
        let stream = socket
            .connect(addr)
            .await
            .map_err(|e| ClientError::Connect(format!("{addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let shared = Arc::new(Shared {
            pending: Default::default(),
            close_reason: Default::default(),
            sent_to_groups: Default::default(),
        });
        let (push_tx, pushes) = mpsc::unbounded_channel();
        let (writer, reader) = match transport {
            Transport::Tcp => {
                let (r, w) = stream.into_split();
                let codec = || confab_proto::framing::tcp_codec(16 << 20);
                let reader = FramedRead::new(r, codec());
                let task = tokio::spawn(read_tcp(reader, shared.clone(), push_tx));
                (
                    Writer::Tcp(FramedWrite::new(w, codec())),
                    task.abort_handle(),
                )
            }
            Transport::WsJson | Transport::WsProto => {
                let mut request = format!("ws://{addr}/v1/connect")
                    .into_client_request()
                    .map_err(|e| ClientError::Connect(e.to_string()))?;
                let proto = if transport == Transport::WsJson {
                    SUBPROTOCOL_JSON
                } else {
                    SUBPROTOCOL_PROTO
                };
                request
                    .headers_mut()
                    .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(proto));
                let mut config = WebSocketConfig::default();
                config.max_message_size = Some(16 << 20);
                let (ws, _resp) =
                    tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                        .await
                        .map_err(|e| ClientError::Connect(e.to_string()))?;
                let (w, r) = ws.split();
                let task = tokio::spawn(read_ws(r, transport.encoding(), shared.clone(), push_tx));
                (Writer::Ws(w), task.abort_handle())
            }
        };
        Ok(Self {
            transport,
            writer: Mutex::new(writer),
            shared,
            pushes,
            next_rid: AtomicU64::new(1),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            request_timeout: Duration::from_secs(10),
            reader,
            pull_group_notifies: false,
            pulled: VecDeque::new(),
            notified_upto: HashMap::new(),
            peeked: None,
            notice_pulls: 0,
            notice_pull_interval: Duration::ZERO,
            last_notice_pull: HashMap::new(),
        })
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Sends a frame as is (no rid assigned, no reply awaited).
    pub async fn send_frame(&self, frame: &Frame) -> Result<()> {
        let bytes = confab_proto::encode(self.transport.encoding(), frame);
        self.send_raw(bytes, self.transport != Transport::WsJson)
            .await
    }

    /// Sends raw bytes as one frame (tests of malformed input). On WebSocket,
    /// `binary` picks a binary or a text frame (text must be valid UTF-8 here:
    /// use [`Client::send_ws_message`] for anything else).
    pub async fn send_raw(&self, bytes: Bytes, binary: bool) -> Result<()> {
        let mut w = self.writer.lock().await;
        let r = match &mut *w {
            Writer::Tcp(s) => s
                .send(bytes)
                .await
                .map_err(|e| ClientError::Io(e.to_string())),
            Writer::Ws(s) => {
                let msg = if binary {
                    WsMessage::Binary(bytes)
                } else {
                    WsMessage::Text(
                        String::from_utf8(bytes.to_vec())
                            .map_err(|e| ClientError::Io(e.to_string()))?
                            .into(),
                    )
                };
                s.send(msg)
                    .await
                    .map_err(|e| ClientError::Io(e.to_string()))
            }
        };
        r.map_err(|e| self.closed_or(e))
    }

    /// Sends any WebSocket message (tests only).
    pub async fn send_ws_message(&self, msg: WsMessage) -> Result<()> {
        let mut w = self.writer.lock().await;
        match &mut *w {
            Writer::Ws(s) => s
                .send(msg)
                .await
                .map_err(|e| ClientError::Io(e.to_string())),
            Writer::Tcp(_) => Err(ClientError::Io("not a WebSocket connection".into())),
        }
    }

    fn closed_or(&self, e: ClientError) -> ClientError {
        match self
            .shared
            .close_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            Some(r) => ClientError::Closed(Some(r)),
            None => e,
        }
    }

    /// Sends a request with a fresh `rid` and waits for its reply (`ok` or not).
    pub async fn request(&self, mut frame: Frame) -> Result<Frame> {
        let rid = self.next_rid.fetch_add(1, Ordering::Relaxed);
        frame.rid = Some(rid);
        let (tx, rx) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(rid, tx);
        if let Err(e) = self.send_frame(&frame).await {
            self.shared
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&rid);
            return Err(e);
        }
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(ClientError::Closed(self.close_reason())),
            Err(_) => {
                self.shared
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&rid);
                Err(ClientError::Timeout)
            }
        }
    }

    /// Like [`Client::request`] but turns `ok:false` into an error.
    pub async fn call(&self, frame: Frame) -> Result<Frame> {
        let group_send =
            frame.op == ops::SEND && frame.to.as_ref().is_some_and(|p| p.kind == "group");
        let reply = self.request(frame).await?;
        if group_send && reply.ok == Some(true) && !reply.msg_id.is_empty() {
            let mut sent = self
                .shared
                .sent_to_groups
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if sent.len() >= SEEN_CAPACITY {
                sent.clear();
            }
            sent.insert(reply.msg_id.clone());
        }
        if reply.ok == Some(true) {
            Ok(reply)
        } else {
            let e = reply.error.unwrap_or_default();
            Err(ClientError::Refused {
                code: e.code,
                message: e.message,
            })
        }
    }

    pub async fn login(&self, token: &str, device_id: &str, platform: &str) -> Result<Frame> {
        self.call(Frame {
            op: ops::LOGIN.into(),
            token: token.into(),
            device_id: device_id.into(),
            platform: platform.into(),
            ..Default::default()
        })
        .await
    }

    /// Sends a text message to a user.
    pub async fn send_text(&self, to_user: &str, client_msg_id: &str, text: &str) -> Result<Frame> {
        let body = serde_json::json!({ "type": "text", "text": text }).to_string();
        self.send_body(to_user, client_msg_id, body).await
    }

    pub async fn send_body(
        &self,
        to_user: &str,
        client_msg_id: &str,
        body: String,
    ) -> Result<Frame> {
        self.call(Frame {
            op: ops::SEND.into(),
            to: Some(Peer {
                kind: "user".into(),
                id: to_user.into(),
            }),
            client_msg_id: client_msg_id.into(),
            body,
            ..Default::default()
        })
        .await
    }

    pub async fn sync(&self, since: u64, limit: u32) -> Result<Frame> {
        self.call(Frame {
            op: ops::SYNC.into(),
            since: Some(since),
            limit: Some(limit),
            ..Default::default()
        })
        .await
    }

    /// Hands the pushes to the caller (a task that drains them while the
    /// client is shared behind an `Arc`, as the load generator does); after
    /// this, [`Client::next_push`] sees none.
    pub fn take_pushes(&mut self) -> mpsc::UnboundedReceiver<Frame> {
        let (_, closed) = mpsc::unbounded_channel();
        std::mem::replace(&mut self.pushes, closed)
    }

    /// The next push (no `rid`), skipping `message` pushes already seen by
    /// `msg_id`. `None` on timeout or when the connection is closed and drained.
    pub async fn next_push(&mut self, timeout: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let frame = match self.pulled.pop_front().or_else(|| self.peeked.take()) {
                Some(f) => f,
                None => tokio::time::timeout_at(deadline, self.pushes.recv())
                    .await
                    .ok()??,
            };
            if frame.op == ops::GROUP_NOTIFY && self.pull_group_notifies {
                let known = self.notified_upto.get(&frame.conv_id).copied();
                if known.is_some_and(|k| k >= frame.seq.unwrap_or(0)) {
                    // Pulled already (an earlier notice's pull reached it).
                    continue;
                }
                if let Some(due) = self
                    .last_notice_pull
                    .get(&frame.conv_id)
                    .map(|last| *last + self.notice_pull_interval)
                    .filter(|due| *due > tokio::time::Instant::now())
                {
                    // Debounce: the notice waits in front of everything else
                    // (also if the caller gives up on this call), and the
                    // notices that come meanwhile join its pull.
                    self.pulled.push_front(frame);
                    tokio::time::sleep_until(due.min(deadline)).await;
                    if due > deadline {
                        return None;
                    }
                    continue;
                }
                let (frame, first_seq) = self.coalesce_notices(frame);
                if known.is_none() {
                    // A conversation first seen with a burst: pull from the
                    // burst's first message, not only its last.
                    self.notified_upto
                        .insert(frame.conv_id.clone(), first_seq.saturating_sub(1));
                }
                match self.pull_notified(&frame).await {
                    Ok(messages) => self.pulled.extend(messages),
                    // The caller sees the notice itself and may sync.
                    Err(_) => return Some(frame),
                }
                continue;
            }
            if frame.op == ops::MESSAGE && !frame.msg_id.is_empty() && !self.remember(&frame.msg_id)
            {
                continue;
            }
            if self.pull_group_notifies
                && let Some(seq) = frame.seq
                && frame.conv_id.starts_with("group:")
            {
                // Events and write-diffused messages count as seen: a later
                // notice pulls only what came after them.
                let upto = self.notified_upto.entry(frame.conv_id.clone()).or_default();
                *upto = (*upto).max(seq);
            }
            return Some(frame);
        }
    }

    /// A busy read-diffused group sends a notice per message: the notices
    /// of the same conversation already queued right behind `notice` are
    /// folded into it (the highest `seq` wins), so that one `history` call
    /// pulls them all. The first other push read is kept for next, which
    /// keeps the order of everything else.
    /// Returns the folded notice (the highest `seq`) and the lowest `seq`
    /// folded into it.
    fn coalesce_notices(&mut self, mut notice: Frame) -> (Frame, u64) {
        let mut first = notice.seq.unwrap_or(0);
        if self.peeked.is_some() {
            return (notice, first);
        }
        while let Ok(next) = self.pushes.try_recv() {
            if next.op == ops::GROUP_NOTIFY && next.conv_id == notice.conv_id {
                let seq = next.seq.unwrap_or(0);
                first = first.min(seq);
                notice.seq = notice.seq.max(Some(seq));
                continue;
            }
            self.peeked = Some(next);
            break;
        }
        (notice, first)
    }

    /// The messages after the last one handed out of the conversation up
    /// to a `group_notify`'s `seq` (at most [`NOTIFY_PULL`] × [`NOTIFY_PAGES`]; only the
    /// notified one for a conversation not seen yet), oldest first, as
    /// `message` pushes.
    pub async fn pull_notified(&mut self, notify: &Frame) -> Result<Vec<Frame>> {
        let seq = notify.seq.unwrap_or(0);
        let known = self.notified_upto.get(&notify.conv_id).copied();
        let mut want = match known {
            Some(k) if k >= seq => return Ok(vec![]),
            Some(k) => (seq - k).min(u64::from(NOTIFY_PULL) * NOTIFY_PAGES),
            None => 1,
        };
        // Newest page first (history goes backwards from `before_seq`).
        let mut pages = Vec::new();
        let mut before = seq.saturating_add(1);
        while want > 0 {
            let limit = want.min(u64::from(NOTIFY_PULL)) as u32;
            self.notice_pulls += 1;
            if !self.notice_pull_interval.is_zero() {
                if self.last_notice_pull.len() > SEEN_CAPACITY {
                    self.last_notice_pull.clear();
                }
                self.last_notice_pull
                    .insert(notify.conv_id.clone(), tokio::time::Instant::now());
            }
            let reply = self
                .call(Frame {
                    op: ops::HISTORY.into(),
                    conv_id: notify.conv_id.clone(),
                    before_seq: Some(before),
                    limit: Some(limit),
                    ..Default::default()
                })
                .await?;
            // A page may hold fewer than asked (the reply's size budget,
            // recalled or purged messages): `has_more` says whether to go on.
            let got = reply.messages.len() as u64;
            let more = reply.has_more == Some(true);
            before = reply.messages.last().map(|m| m.seq).unwrap_or(0);
            pages.push(reply.messages);
            want = want.saturating_sub(got);
            if !more || got == 0 || before <= 1 {
                break;
            }
        }
        self.notified_upto.insert(notify.conv_id.clone(), seq);
        let sent = self
            .shared
            .sent_to_groups
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Ok(pages
            .into_iter()
            .rev()
            .flat_map(|page| page.into_iter().rev())
            .filter(|m| !sent.contains(&m.msg_id))
            .map(|m| {
                confab_proto::message_push(confab_proto::Message {
                    inbox_seq: None,
                    ..m
                })
            })
            .collect())
    }

    /// How many `history` calls this client made to pull notified messages
    /// (a burst of notices costs one).
    pub fn notice_pulls(&self) -> u64 {
        self.notice_pulls
    }

    /// The next push of the given op, skipping others.
    pub async fn next_op(&mut self, op: &str, timeout: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let f = self.next_push(left).await?;
            if f.op == op {
                return Some(f);
            }
        }
    }

    /// Records a msg_id as shown; false if it was already.
    pub fn remember(&mut self, msg_id: &str) -> bool {
        if !self.seen.insert(msg_id.to_owned()) {
            return false;
        }
        self.seen_order.push_back(msg_id.to_owned());
        if self.seen_order.len() > SEEN_CAPACITY
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }

    /// Why the server closed the connection, once it has.
    pub fn close_reason(&self) -> Option<String> {
        self.shared
            .close_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits until the server closes the connection; returns the reason.
    pub async fn wait_closed(&mut self, timeout: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.pushes.recv()).await {
                Ok(Some(_)) => continue,
                Ok(None) => return Some(self.close_reason().unwrap_or_default()),
                Err(_) => return None,
            }
        }
    }
}

fn dispatch(frame: Frame, shared: &Shared, pushes: &mpsc::UnboundedSender<Frame>) {
    if frame.op == ops::REPLY
        && let Some(rid) = frame.rid
        && let Some(tx) = shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&rid)
    {
        let _ = tx.send(frame);
        return;
    }
    // Pushes, and replies nobody waits for (errors without a rid).
    let _ = pushes.send(frame);
}

fn set_closed(shared: &Shared, reason: String) {
    let mut r = shared
        .close_reason
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if r.is_none() {
        *r = Some(reason);
    }
    shared
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
}

async fn read_ws(
    mut r: SplitStream<WsStream>,
    encoding: Encoding,
    shared: Arc<Shared>,
    pushes: mpsc::UnboundedSender<Frame>,
) {
    let reason = loop {
        match r.next().await {
            Some(Ok(WsMessage::Text(t))) => match confab_proto::decode(encoding, t.as_bytes()) {
                Ok(f) => dispatch(f, &shared, &pushes),
                Err(e) => break format!("undecodable frame from server: {e}"),
            },
            Some(Ok(WsMessage::Binary(b))) => match confab_proto::decode(encoding, &b) {
                Ok(f) => dispatch(f, &shared, &pushes),
                Err(e) => break format!("undecodable frame from server: {e}"),
            },
            Some(Ok(WsMessage::Close(c))) => {
                break c
                    .map(|c| c.reason.to_string())
                    .unwrap_or_else(|| "closed".into());
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => break e.to_string(),
            None => break "closed".into(),
        }
    };
    set_closed(&shared, reason);
}

async fn read_tcp(
    mut r: FramedRead<tokio::net::tcp::OwnedReadHalf, LengthDelimitedCodec>,
    shared: Arc<Shared>,
    pushes: mpsc::UnboundedSender<Frame>,
) {
    let reason = loop {
        match r.next().await {
            Some(Ok(b)) => match confab_proto::decode(Encoding::Proto, &b) {
                Ok(f) => dispatch(f, &shared, &pushes),
                Err(e) => break format!("undecodable frame from server: {e}"),
            },
            Some(Err(e)) => break e.to_string(),
            None => break "closed".into(),
        }
    };
    set_closed(&shared, reason);
}
