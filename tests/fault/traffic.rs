//! Users that behave like an SDK: every send carries a client_msg_id and is
//! retried with the same one until it is acknowledged; a lost connection
//! means reconnecting to the other gateway, logging in again and syncing
//! from the last contiguous inbox_seq seen. Group members send to their
//! groups too; second devices only listen; an owner's admin device changes
//! membership mid-run.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confab_client::{Client, ClientError, Transport};
use confab_proto::{Frame, Peer, ops};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A send that got an ok reply.
#[derive(Debug, Clone)]
pub struct Acked {
    pub from: String,
    /// The peer user, or the group id for a group send.
    pub to: String,
    /// Whether `to` is a group.
    pub group: bool,
    pub client_msg_id: String,
    pub msg_id: String,
    pub conv_id: String,
    pub seq: u64,
}

#[derive(Default)]
pub struct Stats {
    pub acked: AtomicU64,
    pub retries: AtomicU64,
    pub reconnects: AtomicU64,
    pub abandoned: AtomicU64,
    pub live_pushes: AtomicU64,
    pub group_acked: AtomicU64,
    /// Group sends refused with `not_found` because the sender had just been
    /// removed (expected) or just added through the other logic node
    /// (documented: up to 2 s of member cache).
    pub group_refused: AtomicU64,
    pub membership_changes: AtomicU64,
}

#[derive(Default)]
pub struct Shared {
    pub acked: Mutex<Vec<Acked>>,
    /// Refusals a client cannot retry (a bad_request under faults is a bug).
    pub unexpected: Mutex<Vec<String>>,
    pub stats: Stats,
    pub stop: AtomicBool,
    /// Group id → the users who may send to it now. The admin takes a user
    /// out before removing them and puts them in after adding them.
    pub may_send: Mutex<HashMap<String, HashSet<String>>>,
}

impl Shared {
    fn can_send(&self, group: &str, user: &str) -> bool {
        self.may_send
            .lock()
            .expect("lock")
            .get(group)
            .is_some_and(|m| m.contains(user))
    }

    fn groups_of(&self, user: &str) -> Vec<String> {
        let mut gs: Vec<String> = self
            .may_send
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, m)| m.contains(user))
            .map(|(g, _)| g.clone())
            .collect();
        // Sorted so that a seeded pick does not depend on hash order.
        gs.sort();
        gs
    }

    pub fn set_may_send(&self, group: &str, user: &str, yes: bool) {
        let mut m = self.may_send.lock().expect("lock");
        let members = m.entry(group.to_owned()).or_default();
        if yes {
            members.insert(user.to_owned());
        } else {
            members.remove(user);
        }
    }
}

/// Codes the protocol documents as "try again" (docs/protocol.md).
fn retryable(code: &str) -> bool {
    matches!(code, "unavailable" | "rate_limited" | "timeout" | "busy")
}

pub struct User {
    pub name: String,
    pub token: String,
    pub device: String,
    platform: &'static str,
    gateways: Vec<SocketAddr>,
    gateway: usize,
    client: Option<Client>,
    seen: BTreeSet<u64>,
    /// Highest inbox_seq with every one before it seen (what an SDK syncs from).
    contiguous: u64,
}

impl User {
    pub fn new(name: String, token: String, gateways: Vec<SocketAddr>, first: usize) -> Self {
        Self {
            device: format!("{name}-dev"),
            platform: "ios",
            name,
            token,
            gateways,
            gateway: first,
            client: None,
            seen: BTreeSet::new(),
            contiguous: 0,
        }
    }

    /// Another device of the same user (a platform of its own, so that the
    /// one-per-platform kick policy keeps both).
    pub fn with_device(mut self, device: String, platform: &'static str) -> Self {
        self.device = device;
        self.platform = platform;
        self
    }

    fn note(&mut self, inbox_seq: u64) {
        self.seen.insert(inbox_seq);
        while self.seen.remove(&(self.contiguous + 1)) {
            self.contiguous += 1;
        }
    }

    /// Connects (to the current gateway), logs in and syncs the gap.
    async fn ensure_connected(&mut self, shared: &Shared) -> bool {
        if self.client.is_some() {
            return true;
        }
        let addr = self.gateways[self.gateway];
        let attempt = async {
            let mut c = Client::connect(Transport::WsJson, addr).await?;
            c.request_timeout = Duration::from_secs(4);
            c.login(&self.token, &self.device, self.platform).await?;
            Ok::<_, ClientError>(c)
        };
        let c = match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(c)) => c,
            _ => {
                self.gateway = (self.gateway + 1) % self.gateways.len();
                return false;
            }
        };
        shared.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        // Catch up from where the live stream was complete.
        let mut since = self.contiguous;
        loop {
            let Ok(page) = c.sync(since, 200).await else {
                return false;
            };
            for m in &page.messages {
                if let Some(s) = m.inbox_seq {
                    self.note(s);
                    since = since.max(s);
                }
            }
            if page.has_more != Some(true) {
                break;
            }
        }
        self.client = Some(c);
        true
    }

    fn drop_connection(&mut self) {
        self.client = None;
        self.gateway = (self.gateway + 1) % self.gateways.len();
    }

    async fn drain_pushes(&mut self, shared: &Shared) {
        let mut got = Vec::new();
        if let Some(c) = self.client.as_mut() {
            while let Some(p) = c.next_push(Duration::ZERO).await {
                // Group events count in the inbox like messages.
                if (p.op == ops::MESSAGE || p.op == ops::EVENT)
                    && let Some(s) = p.inbox_seq
                {
                    got.push(s);
                }
            }
        }
        shared
            .stats
            .live_pushes
            .fetch_add(got.len() as u64, Ordering::Relaxed);
        for s in got {
            self.note(s);
        }
    }

    /// Sends until acknowledged (or 60 s pass: then the send is abandoned,
    /// not acknowledged, and not checked).
    async fn send(&mut self, shared: &Shared, to: &str, group: bool, cmid: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        // When a group send was first refused with not_found while the user
        // may send there (the other node's member cache: up to 2 s).
        let mut refused_since: Option<Instant> = None;
        let mut first = true;
        loop {
            if Instant::now() > deadline {
                shared.stats.abandoned.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if !first {
                shared.stats.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            first = false;
            if !self.ensure_connected(shared).await {
                continue;
            }
            let Some(c) = self.client.as_ref() else {
                continue;
            };
            let body = serde_json::json!({ "type": "text", "text": cmid }).to_string();
            let frame = Frame {
                op: ops::SEND.into(),
                to: Some(Peer {
                    kind: if group { "group" } else { "user" }.into(),
                    id: to.into(),
                }),
                client_msg_id: cmid.into(),
                body,
                ..Default::default()
            };
            match c.call(frame).await {
                Ok(reply) => {
                    shared.acked.lock().expect("lock").push(Acked {
                        from: self.name.clone(),
                        to: to.to_owned(),
                        group,
                        client_msg_id: cmid.to_owned(),
                        msg_id: reply.msg_id.clone(),
                        conv_id: reply.conv_id.clone(),
                        seq: reply.seq.unwrap_or(0),
                    });
                    shared.stats.acked.fetch_add(1, Ordering::Relaxed);
                    if group {
                        shared.stats.group_acked.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
                Err(ClientError::Refused { code, .. }) if retryable(&code) => {}
                Err(ClientError::Refused { code, .. })
                    if group && code == "not_found" && !shared.can_send(to, &self.name) =>
                {
                    // Removed while this send was on its way: not a member
                    // any more, so the refusal is right.
                    shared.stats.group_refused.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(ClientError::Refused { code, .. })
                    if group
                        && code == "not_found"
                        && refused_since.is_none_or(|t| t.elapsed() < Duration::from_secs(5)) =>
                {
                    // Just added: the node that took the send may still hold
                    // the old member list (docs/protocol.md §4.15, 2 s).
                    refused_since.get_or_insert_with(Instant::now);
                    shared.stats.group_refused.fetch_add(1, Ordering::Relaxed);
                }
                Err(ClientError::Refused { code, message }) => {
                    shared
                        .unexpected
                        .lock()
                        .expect("lock")
                        .push(format!("{} sending {cmid}: {code}: {message}", self.name));
                    return;
                }
                // Timeout, closed, i/o: the connection is suspect.
                Err(_) => self.drop_connection(),
            }
        }
    }

    /// A group op (create, add, remove) until it gets an ok reply; `None`
    /// after 60 s. A retry after a lost reply may find the change made
    /// (`conflict` for a create, an empty `user_ids` for add and remove):
    /// the check reads what happened from the group's events, not from here.
    pub async fn group_op(&mut self, shared: &Shared, frame: Frame) -> Option<Frame> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut first = true;
        while Instant::now() < deadline {
            if !first {
                shared.stats.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            first = false;
            if !self.ensure_connected(shared).await {
                continue;
            }
            let Some(c) = self.client.as_ref() else {
                continue;
            };
            match c.call(frame.clone()).await {
                Ok(reply) => return Some(reply),
                Err(ClientError::Refused { code, .. }) if retryable(&code) => {}
                Err(ClientError::Refused { code, .. })
                    if frame.op == ops::GROUP_CREATE && code == "conflict" =>
                {
                    return Some(Frame::default());
                }
                Err(ClientError::Refused { code, message }) => {
                    shared.unexpected.lock().expect("lock").push(format!(
                        "{} {} {}: {code}: {message}",
                        self.name, frame.op, frame.group_id
                    ));
                    return None;
                }
                Err(_) => self.drop_connection(),
            }
        }
        shared.unexpected.lock().expect("lock").push(format!(
            "{} {} {} not acknowledged in 60 s",
            self.name, frame.op, frame.group_id
        ));
        None
    }

    /// Stays connected and reads pushes; a ping a second finds a dead
    /// connection, which means reconnecting and syncing the gap.
    pub async fn listen(&mut self, shared: &Shared) {
        while !shared.stop.load(Ordering::Relaxed) {
            if !self.ensure_connected(shared).await {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            self.drain_pushes(shared).await;
            let alive = match self.client.as_ref() {
                Some(c) => c
                    .call(Frame {
                        op: ops::PING.into(),
                        ..Default::default()
                    })
                    .await
                    .is_ok(),
                None => false,
            };
            if !alive {
                self.drop_connection();
                continue;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// Runs one user until `stop`: a message every `interval` (jittered), to
/// one of the user's groups one time in four, else to a random other user.
pub async fn run_user(
    mut user: User,
    peers: Vec<String>,
    seed: u64,
    interval: Duration,
    shared: Arc<Shared>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut n = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        n += 1;
        let groups = shared.groups_of(&user.name);
        if !groups.is_empty() && rng.random_bool(0.25) {
            let g = &groups[rng.random_range(0..groups.len())];
            let cmid = format!("{}-{g}-{n}", user.name);
            user.send(&shared, g, true, &cmid).await;
            user.drain_pushes(&shared).await;
            let jitter = rng.random_range(0..=interval.as_millis() as u64);
            tokio::time::sleep(interval / 2 + Duration::from_millis(jitter)).await;
            continue;
        }
        let to = loop {
            let p = &peers[rng.random_range(0..peers.len())];
            if *p != user.name {
                break p.clone();
            }
        };
        let cmid = format!("{}-{n}", user.name);
        user.send(&shared, &to, false, &cmid).await;
        user.drain_pushes(&shared).await;
        let jitter = rng.random_range(0..=interval.as_millis() as u64);
        tokio::time::sleep(interval / 2 + Duration::from_millis(jitter)).await;
    }
}
