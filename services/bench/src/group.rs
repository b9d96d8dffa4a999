//! `confab bench group`: one group of N members, every member online, S of
//! them sending group messages at a total rate (or as fast as acknowledged,
//! with a window of sends in flight). Every message fans out to the N − 1
//! other members (write diffusion below the app's threshold), so the figure
//! that matters is **deliveries per second** (pushes received by members),
//! with the latency of each delivery (client send → member receives).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use confab_client::{Client, Transport};
use confab_proto::{Frame, Peer, ops};
use serde::Serialize;

use crate::futures_util_free::join_all;
use crate::{Mint, Percentiles, connect_login, histogram, now_us, record_ack};

/// Most users one `group_create` / `group_add` may name (the server's limit).
const USERS_PER_REQUEST: usize = 500;

#[derive(Debug, Clone)]
pub struct GroupOptions {
    /// Server HTTP address (host:port): WebSocket and /metrics.
    pub http: String,
    /// The server's TCP address (for `Transport::Tcp`).
    pub tcp: String,
    pub transport: Transport,
    /// Members of the group, the senders included (all online).
    pub members: usize,
    /// How many of the members send.
    pub senders: usize,
    /// Total messages per second offered; 0 = as fast as acknowledged.
    pub rate: u64,
    /// Unacknowledged sends allowed per sender (saturation runs).
    pub window: usize,
    pub duration: Duration,
    pub source_ips: u8,
    pub run_id: String,
    /// Read diffusion: the least time between two pulls of the group by
    /// one receiver (`Client::notice_pull_interval`).
    pub notice_pull_interval: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupResult {
    pub scenario: &'static str,
    pub transport: String,
    pub members: usize,
    pub senders: usize,
    pub offered_rate: u64,
    pub window: usize,
    /// Receivers' least milliseconds between two notice pulls (read
    /// diffusion; 0 = at once).
    pub notice_pull_ms: u64,
    /// `history` calls the receivers made for notices (read diffusion).
    pub notice_pulls: u64,
    pub duration_s: f64,
    pub sent: u64,
    pub acked: u64,
    pub send_errors: u64,
    pub messages_per_sec: f64,
    /// Pushes of the benchmark's messages received by the members that do
    /// not send (the senders' own pushes are not counted).
    pub delivered: u64,
    /// Acknowledged messages × non-sending members: what full fan-out gives.
    pub expected_deliveries: u64,
    pub deliveries_per_sec: f64,
    pub delivery_latency_ms: Percentiles,
    pub ack_latency_ms: Percentiles,
    pub login_seconds: f64,
    pub setup_seconds: f64,
}

impl GroupResult {
    pub fn human(&self) -> String {
        format!(
            "group over {}: {} members online, {} senders, offered {}, window {}, {:.1} s\n\
             sent:        {} (acked {}, errors {}) = {:.1} msgs/s\n\
             delivered:   {} of {} expected = {:.0} deliveries/s\n\
             delivery ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n\
             ack ms:      p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n\
             logins:      {} in {:.2} s; group set up in {:.2} s\n\
             notices:     {} history pulls by the receivers (at most one per {} ms each)",
            self.transport,
            self.members,
            self.senders,
            if self.offered_rate == 0 {
                "saturation".to_string()
            } else {
                format!("{} msgs/s", self.offered_rate)
            },
            self.window,
            self.duration_s,
            self.sent,
            self.acked,
            self.send_errors,
            self.messages_per_sec,
            self.delivered,
            self.expected_deliveries,
            self.deliveries_per_sec,
            self.delivery_latency_ms.p50,
            self.delivery_latency_ms.p90,
            self.delivery_latency_ms.p99,
            self.delivery_latency_ms.p999,
            self.delivery_latency_ms.max,
            self.ack_latency_ms.p50,
            self.ack_latency_ms.p90,
            self.ack_latency_ms.p99,
            self.ack_latency_ms.p999,
            self.ack_latency_ms.max,
            self.members,
            self.login_seconds,
            self.setup_seconds,
            self.notice_pulls,
            self.notice_pull_ms,
        )
    }
}

fn group_frame(op: &str, group: &str, users: &[String]) -> Frame {
    Frame {
        op: op.into(),
        group_id: group.into(),
        user_ids: users.to_vec(),
        ..Default::default()
    }
}

/// Creates the group with `owner` and adds `others` in batches the server
/// accepts.
async fn set_up_group(owner: &Client, group: &str, others: &[String]) -> anyhow::Result<()> {
    let mut chunks = others.chunks(USERS_PER_REQUEST);
    owner
        .call(group_frame(
            ops::GROUP_CREATE,
            group,
            chunks.next().unwrap_or(&[]),
        ))
        .await
        .context("group_create")?;
    for chunk in chunks {
        owner
            .call(group_frame(ops::GROUP_ADD, group, chunk))
            .await
            .context("group_add")?;
    }
    Ok(())
}

pub async fn group(options: GroupOptions, mint: Mint) -> anyhow::Result<GroupResult> {
    anyhow::ensure!(
        options.members >= 2,
        "a group benchmark needs 2 members or more"
    );
    let senders_n = options.senders.clamp(1, options.members - 1);
    let target = if options.transport == Transport::Tcp {
        &options.tcp
    } else {
        &options.http
    };
    let addr: SocketAddr = tokio::net::lookup_host(target.as_str())
        .await?
        .next()
        .with_context(|| format!("resolving {target}"))?;
    let users: Vec<String> = (0..options.members)
        .map(|i| format!("g{}m{i}", options.run_id))
        .collect();
    let group_id = format!("bench{}", options.run_id);

    let login_started = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::with_capacity(options.members);
    for (i, user) in users.iter().enumerate() {
        let source = (options.source_ips > 1).then(|| {
            IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                0,
                1 + (i % options.source_ips as usize) as u8,
            ))
        });
        let (mint, sem, user) = (mint.clone(), sem.clone(), user.clone());
        let transport = options.transport;
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await?;
            connect_login(transport, addr, source, user, mint).await
        }));
    }
    let mut clients = Vec::with_capacity(tasks.len());
    for t in join_all(tasks).await {
        clients.push(t.context("login task")??);
    }
    let login_seconds = login_started.elapsed().as_secs_f64();
    let setup_started = Instant::now();
    set_up_group(&clients[0], &group_id, &users[1..]).await?;
    let setup_seconds = setup_started.elapsed().as_secs_f64();
    eprintln!(
        "{} members logged in after {login_seconds:.2} s; group {group_id} set up in {setup_seconds:.2} s",
        options.members
    );

    let sent = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    let stop_sending = Arc::new(AtomicBool::new(false));
    let stop_receiving = Arc::new(AtomicBool::new(false));

    // The first `senders` clients send; the others receive and count. A
    // sender's own pushes (the other senders' messages) are not counted:
    // its handle is shared with its in-flight sends.
    let mut clients = clients.into_iter();
    let sending: Vec<Arc<Client>> = clients.by_ref().take(senders_n).map(Arc::new).collect();
    let mut receivers = Vec::with_capacity(options.members - senders_n);
    for mut c in clients {
        // A group above the app's read_diffusion_threshold sends notices;
        // the receiver pulls the messages as an SDK would, and a delivery
        // counts when the message is in hand.
        c.pull_group_notifies = true;
        c.notice_pull_interval = options.notice_pull_interval;
        let (delivered, stop) = (delivered.clone(), stop_receiving.clone());
        receivers.push(tokio::spawn(async move {
            let mut h = histogram();
            while !stop.load(Ordering::Relaxed) {
                let Some(f) = c.next_push(Duration::from_millis(200)).await else {
                    continue;
                };
                if f.op != ops::MESSAGE {
                    continue;
                }
                let Some(sent_us) = serde_json::from_str::<serde_json::Value>(&f.body)
                    .ok()
                    .and_then(|v| v.get("sent_us").and_then(|s| s.as_u64()))
                else {
                    continue;
                };
                delivered.fetch_add(1, Ordering::Relaxed);
                let _ = h.record(now_us().saturating_sub(sent_us).max(1));
            }
            (h, c.notice_pulls())
        }));
    }

    let per_sender_rate = options.rate as f64 / senders_n as f64;
    let mut senders = Vec::with_capacity(senders_n);
    for (index, sender) in sending.into_iter().enumerate() {
        let (sent, acked, errors, stop) = (
            sent.clone(),
            acked.clone(),
            errors.clone(),
            stop_sending.clone(),
        );
        let window = options.window.max(1);
        let group_id = group_id.clone();
        senders.push(tokio::spawn(async move {
            let mut h = histogram();
            let interval =
                (per_sender_rate > 0.0).then(|| Duration::from_secs_f64(1.0 / per_sender_rate));
            let offset = interval
                .map(|iv| iv.mul_f64(index as f64 / senders_n as f64))
                .unwrap_or_default();
            let mut next_at = tokio::time::Instant::now() + offset;
            let mut in_flight = tokio::task::JoinSet::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Some(iv) = interval {
                    while tokio::time::Instant::now() < next_at && !stop.load(Ordering::Relaxed) {
                        let step = next_at.saturating_duration_since(tokio::time::Instant::now());
                        tokio::time::sleep(step.min(Duration::from_millis(100))).await;
                    }
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    next_at += iv;
                }
                while in_flight.len() >= window {
                    if let Some(Ok(r)) = in_flight.join_next().await {
                        record_ack(r, &mut h, &acked, &errors);
                    }
                }
                n += 1;
                sent.fetch_add(1, Ordering::Relaxed);
                let frame = Frame {
                    op: ops::SEND.into(),
                    to: Some(Peer {
                        kind: "group".into(),
                        id: group_id.clone(),
                    }),
                    client_msg_id: format!("g{index}c{n}"),
                    body: format!(r#"{{"type":"text","text":"m{n}","sent_us":{}}}"#, now_us()),
                    ..Default::default()
                };
                let s = sender.clone();
                in_flight.spawn(async move {
                    let started = Instant::now();
                    s.call(frame).await.map(|_| started.elapsed())
                });
            }
            while let Some(Ok(r)) = in_flight.join_next().await {
                record_ack(r, &mut h, &acked, &errors);
            }
            (h, sender)
        }));
    }

    let started = Instant::now();
    let progress = crate::throughput_progress(
        started,
        sent.clone(),
        delivered.clone(),
        stop_receiving.clone(),
        "deliveries/s",
    );
    tokio::time::sleep(options.duration).await;
    stop_sending.store(true, Ordering::Relaxed);
    let mut ack_h = histogram();
    let mut keep = Vec::new();
    for s in join_all(senders).await {
        let (h, client) = s.context("sender task")?;
        ack_h.add(&h)?;
        keep.push(client);
    }
    let duration_s = started.elapsed().as_secs_f64();
    // Each acknowledged message is owed to every counting (non-sending)
    // member.
    let expected = acked.load(Ordering::Relaxed) * (options.members - senders_n) as u64;
    let drain_deadline = Instant::now() + Duration::from_secs(10);
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Deliveries that land in the drain still count over the sending time:
    // they are the fan-out of messages sent inside it.
    stop_receiving.store(true, Ordering::Relaxed);
    let mut lat_h = histogram();
    let mut notice_pulls = 0;
    for r in join_all(receivers).await {
        let (h, pulls) = r.context("receiver task")?;
        lat_h.add(&h)?;
        notice_pulls += pulls;
    }
    progress.abort();
    drop(keep);
    let sent = sent.load(Ordering::Relaxed);
    let delivered = delivered.load(Ordering::Relaxed);
    Ok(GroupResult {
        scenario: "group",
        transport: format!("{:?}", options.transport),
        members: options.members,
        senders: senders_n,
        offered_rate: options.rate,
        window: options.window.max(1),
        notice_pull_ms: options.notice_pull_interval.as_millis() as u64,
        notice_pulls,
        duration_s,
        sent,
        acked: acked.load(Ordering::Relaxed),
        send_errors: errors.load(Ordering::Relaxed),
        messages_per_sec: sent as f64 / duration_s,
        delivered,
        expected_deliveries: expected,
        deliveries_per_sec: delivered as f64 / duration_s,
        delivery_latency_ms: Percentiles::of(&lat_h),
        ack_latency_ms: Percentiles::of(&ack_h),
        login_seconds,
        setup_seconds,
    })
}
