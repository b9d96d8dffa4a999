//! `confab bench mixed`: a realistic mix of traffic over many apps at an
//! offered rate — 1:1 sends, group sends, syncs, read receipts and fresh
//! logins — and `--sweep`, which repeats it over a list of offered rates,
//! writes one result file per rate and an SVG chart of p50/p99 latency
//! against offered load (`chart_svg`).
//!
//! Open loop: operations are scheduled at the offered rate whatever the
//! server's speed, each on a task of its own, and latency runs from the
//! *scheduled* start, so a server that falls behind shows it in the
//! percentiles instead of slowing the generator down (no coordinated
//! omission). Operations the generator could not even start (over
//! `max_in_flight`) are counted as `skipped`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use confab_client::{Client, Transport};
use confab_proto::{Frame, Peer, ops};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::futures_util_free::join_all;
use crate::{Mint, Percentiles, connect_login, histogram, now_us};

/// One operation of the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A 1:1 text message to another user of the same app.
    P2p,
    /// A text message to the app's group.
    Group,
    /// A `sync` page of 50.
    Sync,
    /// A `read` of the last 1:1 message the user received.
    Read,
    /// A new connection: WebSocket upgrade, login, close.
    Login,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::P2p, Op::Group, Op::Sync, Op::Read, Op::Login];

    fn name(self) -> &'static str {
        match self {
            Op::P2p => "p2p",
            Op::Group => "group",
            Op::Sync => "sync",
            Op::Read => "read",
            Op::Login => "login",
        }
    }
}

/// The mix, in parts per hundred: a chat app's day is mostly sends, with
/// catch-up syncs and read receipts, and some reconnects.
pub const DEFAULT_MIX: [(Op, u32); 5] = [
    (Op::P2p, 50),
    (Op::Group, 15),
    (Op::Sync, 15),
    (Op::Read, 15),
    (Op::Login, 5),
];

#[derive(Clone)]
pub struct MixedOptions {
    /// Server HTTP address (WebSocket and /metrics).
    pub http: String,
    /// One token minter per app; the traffic is spread evenly over them.
    pub apps: Vec<Mint>,
    /// Users online per app (one connection each).
    pub users_per_app: usize,
    /// Members of each app's group (at most `users_per_app`).
    pub group_size: usize,
    /// Operations per second offered, all apps together.
    pub rate: u64,
    pub duration: Duration,
    /// Operations running at once before new ones are skipped.
    pub max_in_flight: usize,
    pub run_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpStats {
    pub count: u64,
    pub errors: u64,
    pub latency_ms: Percentiles,
}

#[derive(Debug, Clone, Serialize)]
pub struct MixedResult {
    pub scenario: &'static str,
    pub apps: usize,
    pub users_per_app: usize,
    pub group_size: usize,
    pub connections: usize,
    pub offered_rate: u64,
    pub duration_s: f64,
    /// Operations completed (ok or not) per second.
    pub achieved_rate: f64,
    pub completed: u64,
    pub errors: u64,
    pub skipped: u64,
    /// Every operation's latency, from its scheduled start to its reply.
    pub latency_ms: Percentiles,
    pub ops: BTreeMap<&'static str, OpStats>,
    /// Message pushes received (1:1 and group fan-out).
    pub deliveries: u64,
    /// Sender's clock at send → recipient decoded the push.
    pub delivery_latency_ms: Percentiles,
    pub server_rss_bytes: Option<u64>,
}

impl MixedResult {
    pub fn human(&self) -> String {
        let mut s = format!(
            "mixed: {} apps × {} users (groups of {}), offered {} ops/s, {:.1} s\n\
             completed:  {} = {:.0} ops/s ({} errors, {} skipped)\n\
             latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}\n\
             deliveries: {} (e2e ms: p50 {:.2}  p99 {:.2})\n",
            self.apps,
            self.users_per_app,
            self.group_size,
            self.offered_rate,
            self.duration_s,
            self.completed,
            self.achieved_rate,
            self.errors,
            self.skipped,
            self.latency_ms.p50,
            self.latency_ms.p90,
            self.latency_ms.p99,
            self.latency_ms.max,
            self.deliveries,
            self.delivery_latency_ms.p50,
            self.delivery_latency_ms.p99,
        );
        for (name, op) in &self.ops {
            s.push_str(&format!(
                "  {name:<6} {:>8} ops ({} errors)  p50 {:.2}  p99 {:.2} ms\n",
                op.count, op.errors, op.latency_ms.p50, op.latency_ms.p99
            ));
        }
        s.trim_end().to_owned()
    }
}

/// One app's online users and what the mix needs to know about them.
struct AppState {
    index: usize,
    mint: Mint,
    users: Vec<Arc<Client>>,
    group_id: String,
    /// Per user: the last 1:1 message received (conv_id, seq), for `read`.
    last_received: Vec<Mutex<Option<(String, u64)>>>,
}

fn user_name(run: &str, app: usize, user: usize) -> String {
    format!("m{run}a{app}u{user}")
}

/// xorshift64*: the mix needs cheap, reproducible picks, not cryptography.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[derive(Default)]
struct Recorder {
    all: Option<Histogram<u64>>,
    per_op: BTreeMap<Op, (u64, u64, Histogram<u64>)>,
}

impl Recorder {
    fn record(&mut self, op: Op, latency_us: u64, ok: bool) {
        let all = self.all.get_or_insert_with(histogram);
        let _ = all.record(latency_us.max(1));
        let entry = self.per_op.entry(op).or_insert_with(|| (0, 0, histogram()));
        entry.0 += 1;
        if !ok {
            entry.1 += 1;
        }
        let _ = entry.2.record(latency_us.max(1));
    }
}

pub async fn mixed(options: MixedOptions) -> anyhow::Result<MixedResult> {
    anyhow::ensure!(!options.apps.is_empty(), "at least one app");
    anyhow::ensure!(options.users_per_app >= 2, "at least 2 users per app");
    let addr: SocketAddr = tokio::net::lookup_host(options.http.as_str())
        .await?
        .next()
        .with_context(|| format!("resolving {}", options.http))?;
    let run = options.run_id.clone();
    let group_size = options.group_size.clamp(2, options.users_per_app);

    // Log everyone in, and drain their pushes (counting deliveries).
    let deliveries = Arc::new(AtomicU64::new(0));
    let delivery_h = Arc::new(Mutex::new(histogram()));
    let mut apps = Vec::new();
    for (a, mint) in options.apps.iter().enumerate() {
        let mut logins = Vec::new();
        for u in 0..options.users_per_app {
            let (mint, user) = (mint.clone(), user_name(&run, a, u));
            logins.push(tokio::spawn(async move {
                connect_login(Transport::WsJson, addr, None, user, mint).await
            }));
        }
        let mut users = Vec::new();
        let last_received: Vec<Mutex<Option<(String, u64)>>> = (0..options.users_per_app)
            .map(|_| Mutex::new(None))
            .collect();
        for t in join_all(logins).await {
            users.push(t.context("login task")??);
        }
        let state_users: Vec<Arc<Client>> = users
            .into_iter()
            .map(|mut c| {
                let mut pushes = c.take_pushes();
                let (deliveries, h) = (deliveries.clone(), delivery_h.clone());
                tokio::spawn(async move {
                    while let Some(f) = pushes.recv().await {
                        if f.op != ops::MESSAGE {
                            continue;
                        }
                        deliveries.fetch_add(1, Ordering::Relaxed);
                        if let Some(sent) = serde_json::from_str::<serde_json::Value>(&f.body)
                            .ok()
                            .and_then(|v| v["sent_us"].as_u64())
                        {
                            let _ = h
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .record(now_us().saturating_sub(sent).max(1));
                        }
                    }
                });
                Arc::new(c)
            })
            .collect();
        let group_id = format!("m{run}g{a}");
        state_users[0]
            .call(Frame {
                op: ops::GROUP_CREATE.into(),
                group_id: group_id.clone(),
                name: Some(format!("mixed {a}")),
                user_ids: (1..group_size).map(|u| user_name(&run, a, u)).collect(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("creating group {group_id}"))?;
        apps.push(Arc::new(AppState {
            index: a,
            mint: mint.clone(),
            users: state_users,
            group_id,
            last_received,
        }));
    }
    let connections = apps.len() * options.users_per_app;
    eprintln!(
        "mixed: {connections} connections in {} apps, groups of {group_size}",
        apps.len()
    );

    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let in_flight = Arc::new(AtomicU64::new(0));
    let completed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut skipped = 0u64;
    let mix_total: u32 = DEFAULT_MIX.iter().map(|(_, w)| w).sum();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ now_us());
    let interval = Duration::from_secs_f64(1.0 / options.rate.max(1) as f64);
    let started = Instant::now();
    let end = tokio::time::Instant::now() + options.duration;
    let mut next_at = tokio::time::Instant::now();
    let mut n = 0u64;
    let mut last_progress = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    while next_at < end {
        tokio::time::sleep_until(next_at).await;
        // Start every operation whose time has come (a late wake-up starts
        // several, each keeping its scheduled time).
        let now = tokio::time::Instant::now();
        while next_at <= now && next_at < end {
            let scheduled = next_at;
            next_at += interval;
            n += 1;
            if in_flight.load(Ordering::Relaxed) >= options.max_in_flight as u64 {
                skipped += 1;
                continue;
            }
            let mut pick = rng.below(mix_total as usize) as u32;
            let op = DEFAULT_MIX
                .iter()
                .find(|(_, w)| {
                    if pick < *w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .map(|(op, _)| *op)
                .unwrap_or(Op::P2p);
            let app = apps[rng.below(apps.len())].clone();
            let mut user = rng.below(app.users.len());
            if op == Op::Group {
                // Only members may send to the group (users 0..group_size).
                user %= group_size;
            }
            let peer = (user + 1 + rng.below(app.users.len() - 1)) % app.users.len();
            let (recorder, in_flight, completed, errors) = (
                recorder.clone(),
                in_flight.clone(),
                completed.clone(),
                errors.clone(),
            );
            let (run, addr, id) = (run.clone(), addr, n);
            in_flight.fetch_add(1, Ordering::Relaxed);
            tasks.spawn(async move {
                let ok = run_op(op, &app, user, peer, &run, addr, id).await;
                let latency = scheduled.elapsed().as_micros() as u64;
                in_flight.fetch_sub(1, Ordering::Relaxed);
                completed.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                recorder
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .record(op, latency, ok);
            });
        }
        // Reap finished tasks without waiting.
        while tasks.try_join_next().is_some() {}
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            eprintln!(
                "t={:>4.1}s scheduled={n} completed={} errors={} in_flight={} skipped={skipped}",
                started.elapsed().as_secs_f64(),
                completed.load(Ordering::Relaxed),
                errors.load(Ordering::Relaxed),
                in_flight.load(Ordering::Relaxed),
            );
        }
    }
    let send_elapsed = started.elapsed().as_secs_f64();
    // Let what is in flight finish (each op has the client's request timeout).
    while tasks.join_next().await.is_some() {}
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server_rss_bytes = crate::server_rss(&options.http).await;

    let recorder = std::mem::take(&mut *recorder.lock().unwrap_or_else(|p| p.into_inner()));
    let all = recorder.all.unwrap_or_else(histogram);
    let ops = recorder
        .per_op
        .iter()
        .map(|(op, (count, errors, h))| {
            (
                op.name(),
                OpStats {
                    count: *count,
                    errors: *errors,
                    latency_ms: Percentiles::of(h),
                },
            )
        })
        .collect();
    let completed = completed.load(Ordering::Relaxed);
    let delivery_h = delivery_h.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(MixedResult {
        scenario: "mixed",
        apps: apps.len(),
        users_per_app: options.users_per_app,
        group_size,
        connections,
        offered_rate: options.rate,
        duration_s: send_elapsed,
        achieved_rate: completed as f64 / send_elapsed.max(1e-9),
        completed,
        errors: errors.load(Ordering::Relaxed),
        skipped,
        latency_ms: Percentiles::of(&all),
        ops,
        deliveries: deliveries.load(Ordering::Relaxed),
        delivery_latency_ms: Percentiles::of(&delivery_h),
        server_rss_bytes,
    })
}

/// Runs one operation; true when the server said ok.
async fn run_op(
    op: Op,
    app: &AppState,
    user: usize,
    peer: usize,
    run: &str,
    addr: SocketAddr,
    id: u64,
) -> bool {
    let client = &app.users[user];
    let body = |kind: &str| {
        format!(
            r#"{{"type":"text","text":"{kind} {id}","sent_us":{}}}"#,
            now_us()
        )
    };
    match op {
        Op::P2p => {
            let to = user_name(run, app.index, peer);
            match client.send_body(&to, &format!("x{id}"), body("p2p")).await {
                Ok(reply) => {
                    if let Some(seq) = reply.seq {
                        *app.last_received[peer]
                            .lock()
                            .unwrap_or_else(|p| p.into_inner()) = Some((reply.conv_id, seq));
                    }
                    true
                }
                Err(_) => false,
            }
        }
        Op::Group => client
            .call(Frame {
                op: ops::SEND.into(),
                to: Some(Peer {
                    kind: "group".into(),
                    id: app.group_id.clone(),
                }),
                client_msg_id: format!("x{id}"),
                body: body("group"),
                ..Default::default()
            })
            .await
            .is_ok(),
        Op::Sync => client.sync(0, 50).await.is_ok(),
        Op::Read => {
            let last = app.last_received[user]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let Some((conv_id, seq)) = last else {
                // Nothing received yet: a sync stands in for the read.
                return client.sync(0, 1).await.is_ok();
            };
            client
                .call(Frame {
                    op: ops::READ.into(),
                    conv_id,
                    seq: Some(seq),
                    ..Default::default()
                })
                .await
                .is_ok()
        }
        Op::Login => {
            // Its own user and platform, so the session never kicks one of
            // the online users (kick policy: one session per platform).
            let user = format!("m{run}a{}l{}", app.index, id % 64);
            match Client::connect(Transport::WsJson, addr).await {
                Ok(c) => match (app.mint)(&user) {
                    Ok(token) => c.login(&token, "mixed-login", "web").await.is_ok(),
                    Err(_) => false,
                },
                Err(_) => false,
            }
        }
    }
}

/// One point of a sweep: an offered rate and what came of it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SweepPoint {
    pub offered_rate: u64,
    pub achieved_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub skipped: u64,
}

impl From<&MixedResult> for SweepPoint {
    fn from(r: &MixedResult) -> Self {
        SweepPoint {
            offered_rate: r.offered_rate,
            achieved_rate: r.achieved_rate,
            p50_ms: r.latency_ms.p50,
            p99_ms: r.latency_ms.p99,
            errors: r.errors,
            skipped: r.skipped,
        }
    }
}

/// An SVG line chart of p50 and p99 latency (log scale) against offered
/// load, with the achieved rate printed at each point. Self-contained (no
/// fonts or scripts to fetch), so it renders the same on GitHub and in a
/// browser, and the same points always give the same bytes.
pub fn chart_svg(points: &[SweepPoint], title: &str) -> String {
    const W: f64 = 720.0;
    const H: f64 = 420.0;
    const L: f64 = 70.0;
    const R: f64 = 20.0;
    const T: f64 = 40.0;
    const B: f64 = 60.0;
    let mut pts = points.to_vec();
    pts.sort_by_key(|p| p.offered_rate);
    let max_x = pts.iter().map(|p| p.offered_rate).max().unwrap_or(1).max(1) as f64;
    let lat = |v: f64| v.max(0.1);
    let max_y = pts.iter().map(|p| lat(p.p99_ms)).fold(1.0f64, f64::max);
    // Decades from 0.1 ms up to the first power of ten over the worst p99.
    let (y_lo, y_hi) = (-1.0f64, max_y.log10().ceil().max(0.0) + 0.0001);
    let x = |v: f64| L + (v / max_x) * (W - L - R);
    let y = |ms: f64| T + (1.0 - (lat(ms).log10() - y_lo) / (y_hi - y_lo)) * (H - T - B);
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
"##,
        W / 2.0,
        xml_escape(title)
    );
    // Y grid: one line a decade.
    let mut d = y_lo as i32;
    while f64::from(d) <= y_hi {
        let v = 10f64.powi(d);
        let yy = y(v);
        s.push_str(&format!(
            r##"<line x1="{L}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>
"##,
            W - R,
            L - 6.0,
            yy + 4.0,
            if v < 1.0 { format!("{v}") } else { format!("{v:.0}") }
        ));
        d += 1;
    }
    // X ticks at each offered rate.
    for p in &pts {
        let xx = x(p.offered_rate as f64);
        s.push_str(&format!(
            r##"<line x1="{xx:.1}" y1="{}" x2="{xx:.1}" y2="{}" stroke="#999"/><text x="{xx:.1}" y="{}" text-anchor="middle">{}</text>
"##,
            H - B,
            H - B + 5.0,
            H - B + 18.0,
            p.offered_rate
        ));
    }
    s.push_str(&format!(
        r##"<line x1="{L}" y1="{}" x2="{}" y2="{}" stroke="black"/><line x1="{L}" y1="{T}" x2="{L}" y2="{}" stroke="black"/>
<text x="{}" y="{}" text-anchor="middle">offered load (operations/s, all apps)</text>
<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">latency (ms, log scale)</text>
"##,
        H - B,
        W - R,
        H - B,
        H - B,
        (L + W - R) / 2.0,
        H - 18.0,
        (T + H - B) / 2.0,
        (T + H - B) / 2.0
    ));
    for (name, color, get) in [
        (
            "p50",
            "#1f77b4",
            (|p: &SweepPoint| p.p50_ms) as fn(&SweepPoint) -> f64,
        ),
        ("p99", "#d62728", |p: &SweepPoint| p.p99_ms),
    ] {
        let line: Vec<String> = pts
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.offered_rate as f64), y(get(p))))
            .collect();
        s.push_str(&format!(
            r##"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>
"##,
            line.join(" ")
        ));
        for p in &pts {
            s.push_str(&format!(
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"><title>{name} {:.2} ms at {} ops/s offered ({:.0} achieved)</title></circle>
"##,
                x(p.offered_rate as f64),
                y(get(p)),
                get(p),
                p.offered_rate,
                p.achieved_rate
            ));
        }
    }
    s.push_str(&format!(
        r##"<rect x="{}" y="{}" width="12" height="3" fill="#1f77b4"/><text x="{}" y="{}">p50</text>
<rect x="{}" y="{}" width="12" height="3" fill="#d62728"/><text x="{}" y="{}">p99</text>
</svg>
"##,
        L + 12.0,
        T + 8.0,
        L + 30.0,
        T + 13.0,
        L + 12.0,
        T + 26.0,
        L + 30.0,
        T + 31.0
    ));
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_has_both_lines_and_every_point() {
        let points = [
            SweepPoint {
                offered_rate: 4000,
                achieved_rate: 3900.0,
                p50_ms: 8.0,
                p99_ms: 120.0,
                errors: 0,
                skipped: 0,
            },
            SweepPoint {
                offered_rate: 500,
                achieved_rate: 500.0,
                p50_ms: 1.2,
                p99_ms: 4.5,
                errors: 0,
                skipped: 0,
            },
        ];
        let svg = chart_svg(&points, "a <test>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 4);
        assert!(svg.contains("a &lt;test&gt;"));
        // Sorted by offered load: the 500 point is left of the 4000 one.
        let first = svg.find("at 500 ops/s").expect("500 point");
        let second = svg.find("at 4000 ops/s").expect("4000 point");
        assert!(first < second);
    }

    #[test]
    fn the_mix_adds_up_to_one_hundred_and_names_every_op() {
        assert_eq!(DEFAULT_MIX.iter().map(|(_, w)| w).sum::<u32>(), 100);
        for op in Op::ALL {
            assert!(DEFAULT_MIX.iter().any(|(o, _)| *o == op), "{op:?}");
        }
    }
}
