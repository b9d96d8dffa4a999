//! Users that behave like an SDK: every send carries a client_msg_id and is
//! retried with the same one until it is acknowledged; a lost connection
//! means reconnecting to the other gateway, logging in again and syncing
//! from the last contiguous inbox_seq seen.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confab_client::{Client, ClientError, Transport};
use confab_proto::ops;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A send that got an ok reply.
#[derive(Debug, Clone)]
pub struct Acked {
    pub from: String,
    pub to: String,
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
}

pub struct Shared {
    pub acked: Mutex<Vec<Acked>>,
    /// Refusals a client cannot retry (a bad_request under faults is a bug).
    pub unexpected: Mutex<Vec<String>>,
    pub stats: Stats,
    pub stop: AtomicBool,
}

/// Codes the protocol documents as "try again" (docs/protocol.md).
fn retryable(code: &str) -> bool {
    matches!(code, "unavailable" | "rate_limited" | "timeout" | "busy")
}

pub struct User {
    pub name: String,
    pub token: String,
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
            name,
            token,
            gateways,
            gateway: first,
            client: None,
            seen: BTreeSet::new(),
            contiguous: 0,
        }
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
            c.login(&self.token, &format!("{}-dev", self.name), "ios")
                .await?;
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
                if p.op == ops::MESSAGE
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
    async fn send(&mut self, shared: &Shared, to: &str, cmid: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
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
            match c.send_text(to, cmid, cmid).await {
                Ok(reply) => {
                    shared.acked.lock().expect("lock").push(Acked {
                        from: self.name.clone(),
                        to: to.to_owned(),
                        client_msg_id: cmid.to_owned(),
                        msg_id: reply.msg_id.clone(),
                        conv_id: reply.conv_id.clone(),
                        seq: reply.seq.unwrap_or(0),
                    });
                    shared.stats.acked.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(ClientError::Refused { code, .. }) if retryable(&code) => {}
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
}

/// Runs one user until `stop`: a message to a random other user every
/// `interval` (jittered).
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
        let to = loop {
            let p = &peers[rng.random_range(0..peers.len())];
            if *p != user.name {
                break p.clone();
            }
        };
        n += 1;
        let cmid = format!("{}-{n}", user.name);
        user.send(&shared, &to, &cmid).await;
        user.drain_pushes(&shared).await;
        let jitter = rng.random_range(0..=interval.as_millis() as u64);
        tokio::time::sleep(interval / 2 + Duration::from_millis(jitter)).await;
    }
}
