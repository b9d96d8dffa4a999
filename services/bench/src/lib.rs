//! The load generator behind `confab bench`. Real sockets, real logins, real
//! messages: N sender→receiver user pairs over WebSocket (JSON), each sender
//! offering messages at a fixed rate (or as fast as acknowledged, with a window
//! of messages in flight). Reports delivered messages per second, end-to-end
//! latency percentiles (client send → recipient receives), send→ack latency,
//! logins per second, and the server's resident memory per connection (read
//! from its `/metrics`). Prints a progress line each second on stderr.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use confab_client::{Client, Transport};
use confab_proto::ops;
use futures_util_free::join_all;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub mod dist;
pub mod group;
pub mod mixed;
pub mod room;
pub use group::{GroupOptions, GroupResult, group};
pub use mixed::{MixedOptions, MixedResult, mixed};
pub use room::{RoomOptions, RoomResult, room};

/// How the load generator's clients connect.
pub use confab_client::Transport as BenchTransport;

/// Mints a user token for a user id.
pub type Mint = Arc<dyn Fn(&str) -> anyhow::Result<String> + Send + Sync>;

#[derive(Debug, Clone)]
pub struct P2pOptions {
    /// Server HTTP address (host:port).
    pub http: String,
    pub pairs: usize,
    /// Total offered messages per second; 0 = saturate (as fast as acked).
    pub rate: u64,
    pub duration: Duration,
    /// Unacknowledged sends allowed per sender.
    pub window: usize,
    /// Spread connections over 127.0.0.1 ..= 127.0.0.N.
    pub source_ips: u8,
    /// Makes user ids unique per run.
    pub run_id: String,
    /// How clients connect (WebSocket JSON, WebSocket protobuf or TCP).
    pub transport: Transport,
    /// The server's TCP address (for `Transport::Tcp`).
    pub tcp: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        // Recorded in microseconds; reported in milliseconds.
        let ms = |v: u64| v as f64 / 1000.0;
        Self {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct P2pResult {
    pub scenario: &'static str,
    pub transport: String,
    pub pairs: usize,
    pub connections: usize,
    pub offered_rate: u64,
    pub window: usize,
    pub duration_s: f64,
    pub sent: u64,
    pub acked: u64,
    pub send_errors: u64,
    pub delivered: u64,
    pub delivered_per_sec: f64,
    pub delivery_latency_ms: Percentiles,
    pub ack_latency_ms: Percentiles,
    pub login_seconds: f64,
    pub logins_per_sec: f64,
    pub server_rss_before_bytes: Option<u64>,
    pub server_rss_after_login_bytes: Option<u64>,
    pub server_rss_per_connection_bytes: Option<f64>,
}

impl P2pResult {
    pub fn human(&self) -> String {
        let rss = self
            .server_rss_per_connection_bytes
            .map(|b| format!("{:.1} KiB", b / 1024.0))
            .unwrap_or_else(|| "n/a".into());
        format!(
            "p2p over {}: {} pairs ({} connections), offered {}, window {}, {:.1} s\n\
             logins:     {:.0}/s ({} in {:.2} s); server RSS per connection {rss}\n\
             sent:       {} (acked {}, errors {})\n\
             delivered:  {} = {:.0} msgs/s\n\
             e2e latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n\
             ack latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
            self.transport,
            self.pairs,
            self.connections,
            if self.offered_rate == 0 {
                "saturation".to_string()
            } else {
                format!("{} msgs/s", self.offered_rate)
            },
            self.window,
            self.duration_s,
            self.logins_per_sec,
            self.connections,
            self.login_seconds,
            self.sent,
            self.acked,
            self.send_errors,
            self.delivered,
            self.delivered_per_sec,
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
        )
    }
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Prints `t=…s sent=… delivered=… (N <unit>)` on stderr each second until
/// `stop` is set: the progress line of the throughput scenarios.
pub(crate) fn throughput_progress(
    started: Instant,
    sent: Arc<AtomicU64>,
    delivered: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    unit: &'static str,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = 0;
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let d = delivered.load(Ordering::Relaxed);
            eprintln!(
                "t={:>4.1}s sent={} delivered={} ({} {unit})",
                started.elapsed().as_secs_f64(),
                sent.load(Ordering::Relaxed),
                d,
                d - last
            );
            last = d;
        }
    })
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 100 s, 3 significant digits.
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

/// Reads one unlabelled gauge from the server's /metrics.
async fn server_gauge(http: &str, name: &str) -> Option<f64> {
    let mut stream = tokio::net::TcpStream::connect(http).await.ok()?;
    let req = format!("GET /metrics HTTP/1.0\r\nHost: {http}\r\n\r\n");
    stream.write_all(req.as_bytes()).await.ok()?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await.ok()?;
    body.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
}

/// Reads `process_resident_memory_bytes` from the server's /metrics.
pub async fn server_rss(http: &str) -> Option<u64> {
    server_gauge(http, "process_resident_memory_bytes")
        .await
        .map(|v| v as u64)
}

/// The config version the server has applied (`confab_config_version`).
pub async fn config_version(http: &str) -> Option<u64> {
    server_gauge(http, "confab_config_version")
        .await
        .map(|v| v as u64)
}

async fn connect_login(
    transport: Transport,
    addr: SocketAddr,
    source: Option<IpAddr>,
    user: String,
    mint: Mint,
) -> anyhow::Result<Client> {
    let client = Client::connect_from(transport, addr, source).await?;
    let token = mint(&user)?;
    client
        .login(&token, "bench", "other")
        .await
        .with_context(|| format!("login {user}"))?;
    Ok(client)
}

pub async fn p2p(options: P2pOptions, mint: Mint) -> anyhow::Result<P2pResult> {
    let target = if options.transport == Transport::Tcp {
        &options.tcp
    } else {
        &options.http
    };
    let addr: SocketAddr = tokio::net::lookup_host(target.as_str())
        .await?
        .next()
        .with_context(|| format!("resolving {target}"))?;
    let rss_before = server_rss(&options.http).await;
    let transport = options.transport;

    // Log everyone in, a bounded number at a time.
    let login_started = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::with_capacity(options.pairs * 2);
    for i in 0..options.pairs * 2 {
        let role = if i % 2 == 0 { "s" } else { "r" };
        let user = format!("b{}{}{}", options.run_id, role, i / 2);
        let source = (options.source_ips > 1).then(|| {
            IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                0,
                1 + (i % options.source_ips as usize) as u8,
            ))
        });
        let mint = mint.clone();
        let sem = sem.clone();
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
    eprintln!(
        "logged in {} connections in {login_seconds:.2} s",
        clients.len()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = server_rss(&options.http).await;

    let sent = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let delivered = Arc::new(AtomicU64::new(0));
    let stop_sending = Arc::new(AtomicBool::new(false));
    let stop_receiving = Arc::new(AtomicBool::new(false));

    let mut receivers = Vec::new();
    let mut senders = Vec::new();
    let mut iter = clients.into_iter();
    let per_sender_rate = options.rate as f64 / options.pairs.max(1) as f64;
    let mut pair = 0;
    while let (Some(sender), Some(mut receiver)) = (iter.next(), iter.next()) {
        let to = format!("b{}r{}", options.run_id, pair);
        pair += 1;
        let delivered = delivered.clone();
        let stop = stop_receiving.clone();
        receivers.push(tokio::spawn(async move {
            let mut h = histogram();
            while !stop.load(Ordering::Relaxed) {
                let Some(f) = receiver.next_push(Duration::from_millis(200)).await else {
                    continue;
                };
                if f.op != ops::MESSAGE {
                    continue;
                }
                delivered.fetch_add(1, Ordering::Relaxed);
                if let Some(sent_us) = serde_json::from_str::<serde_json::Value>(&f.body)
                    .ok()
                    .and_then(|v| v.get("sent_us").and_then(|s| s.as_u64()))
                {
                    let _ = h.record(now_us().saturating_sub(sent_us).max(1));
                }
            }
            h
        }));
        let (sent, acked, errors, stop) = (
            sent.clone(),
            acked.clone(),
            errors.clone(),
            stop_sending.clone(),
        );
        let window = options.window;
        let (pair_index, pairs) = (pair - 1, options.pairs);
        senders.push(tokio::spawn(async move {
            let sender = Arc::new(sender);
            let mut h = histogram();
            let interval =
                (per_sender_rate > 0.0).then(|| Duration::from_secs_f64(1.0 / per_sender_rate));
            // Stagger the senders over one interval: an offered rate means
            // evenly spread sends, not every sender firing at the same instant.
            let offset = interval
                .map(|iv| iv.mul_f64(pair_index as f64 / pairs as f64))
                .unwrap_or_default();
            let mut next_at = tokio::time::Instant::now() + offset;
            let mut in_flight = tokio::task::JoinSet::new();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if let Some(iv) = interval {
                    // Sleep in short steps so that a slow sender still stops on time.
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
                let body = format!(r#"{{"type":"text","text":"m{n}","sent_us":{}}}"#, now_us());
                let client_msg_id = format!("c{n}");
                sent.fetch_add(1, Ordering::Relaxed);
                let s = sender.clone();
                let to = to.clone();
                in_flight.spawn(async move {
                    let started = Instant::now();
                    s.send_body(&to, &client_msg_id, body)
                        .await
                        .map(|_| started.elapsed())
                });
            }
            while let Some(Ok(r)) = in_flight.join_next().await {
                record_ack(r, &mut h, &acked, &errors);
            }
            (h, sender)
        }));
    }

    let started = Instant::now();
    let progress = throughput_progress(
        started,
        sent.clone(),
        delivered.clone(),
        stop_receiving.clone(),
        "msgs/s",
    );
    tokio::time::sleep(options.duration).await;
    stop_sending.store(true, Ordering::Relaxed);
    let mut ack_h = histogram();
    let mut keep = Vec::new();
    for s in join_all(senders).await {
        let (h, client) = s?;
        ack_h.add(&h)?;
        keep.push(client);
    }
    let send_elapsed = started.elapsed().as_secs_f64();
    // Let in-flight deliveries land.
    let target = acked.load(Ordering::Relaxed);
    let drain_deadline = Instant::now() + Duration::from_secs(5);
    while delivered.load(Ordering::Relaxed) < target && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_receiving.store(true, Ordering::Relaxed);
    let mut lat_h = histogram();
    for r in join_all(receivers).await {
        lat_h.add(&r?)?;
    }
    progress.abort();
    drop(keep);

    let connections = options.pairs * 2;
    let delivered = delivered.load(Ordering::Relaxed);
    Ok(P2pResult {
        scenario: "p2p",
        transport: format!("{:?}", options.transport),
        pairs: options.pairs,
        connections,
        offered_rate: options.rate,
        window: options.window,
        duration_s: send_elapsed,
        sent: sent.load(Ordering::Relaxed),
        acked: acked.load(Ordering::Relaxed),
        send_errors: errors.load(Ordering::Relaxed),
        delivered,
        delivered_per_sec: delivered as f64 / send_elapsed,
        delivery_latency_ms: Percentiles::of(&lat_h),
        ack_latency_ms: Percentiles::of(&ack_h),
        login_seconds,
        logins_per_sec: connections as f64 / login_seconds.max(1e-9),
        server_rss_before_bytes: rss_before,
        server_rss_after_login_bytes: rss_after,
        server_rss_per_connection_bytes: match (rss_before, rss_after) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / connections as f64),
            _ => None,
        },
    })
}

fn record_ack(
    r: Result<Duration, confab_client::ClientError>,
    h: &mut Histogram<u64>,
    acked: &AtomicU64,
    errors: &AtomicU64,
) {
    match r {
        Ok(d) => {
            acked.fetch_add(1, Ordering::Relaxed);
            let _ = h.record((d.as_micros() as u64).max(1));
        }
        Err(_) => {
            errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `join_all` over spawned tasks without pulling in more of futures-util.
mod futures_util_free {
    pub async fn join_all<T>(
        handles: Vec<tokio::task::JoinHandle<T>>,
    ) -> Vec<Result<T, tokio::task::JoinError>> {
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await);
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub http: String,
    /// Messages the recipient misses while offline.
    pub messages: usize,
    /// Connections sending them.
    pub senders: usize,
    pub run_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncResult {
    pub scenario: &'static str,
    pub messages: usize,
    pub fill_seconds: f64,
    pub catch_up_seconds: f64,
    pub pages: usize,
    pub synced: usize,
    pub gap_free: bool,
}

impl SyncResult {
    pub fn human(&self) -> String {
        format!(
            "sync: {} missed messages caught up in {:.3} s ({} pages of up to 500; gap-free: {}); filling took {:.2} s",
            self.synced, self.catch_up_seconds, self.pages, self.gap_free, self.fill_seconds
        )
    }
}

/// `sync`: a recipient misses `messages` while offline, then logs in and
/// catches up with `sync` pages of 500; reports the catch-up time.
pub async fn sync(options: SyncOptions, mint: Mint) -> anyhow::Result<SyncResult> {
    let addr: SocketAddr = tokio::net::lookup_host(&options.http)
        .await?
        .next()
        .with_context(|| format!("resolving {}", options.http))?;
    let recipient = format!("b{}sync", options.run_id);
    let fill_started = Instant::now();
    let per_sender = options.messages.div_ceil(options.senders.max(1));
    let mut tasks = Vec::new();
    for s in 0..options.senders.max(1) {
        let (mint, recipient) = (mint.clone(), recipient.clone());
        let user = format!("b{}s{s}", options.run_id);
        let count = per_sender.min(options.messages.saturating_sub(s * per_sender));
        tasks.push(tokio::spawn(async move {
            let c = connect_login(Transport::WsJson, addr, None, user, mint).await?;
            for i in 0..count {
                c.send_text(&recipient, &format!("c{i}"), &format!("m{i}"))
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in join_all(tasks).await {
        t.context("sender task")??;
    }
    let fill_seconds = fill_started.elapsed().as_secs_f64();
    let client = connect_login(Transport::WsJson, addr, None, recipient, mint).await?;
    let started = Instant::now();
    let (mut since, mut pages, mut synced, mut gap_free) = (0u64, 0usize, 0usize, true);
    loop {
        let page = client.sync(since, 500).await?;
        pages += 1;
        for m in &page.messages {
            let seq = m.inbox_seq.unwrap_or(0);
            gap_free &= seq == since + 1;
            since = seq;
            synced += 1;
        }
        if page.has_more != Some(true) {
            break;
        }
    }
    Ok(SyncResult {
        scenario: "sync",
        messages: options.messages,
        fill_seconds,
        catch_up_seconds: started.elapsed().as_secs_f64(),
        pages,
        synced,
        gap_free,
    })
}

/// `idle` and `login-storm` (connection scenarios).
pub mod connections;
