//! Distributed runs: one benchmark spread over several load-generator
//! processes and several gateways (`scripts/bench-cluster`). One process
//! can hold at most ~20 000 connections here (the open-file cap) and one
//! source address ~28 000 (ephemeral ports), so a 100 000-member room needs
//! several processes, each on its own 127.0.0.x addresses.
//!
//! Each process runs a *part* ([`room_part`]): it logs its members in over
//! its gateways, joins them to one room (created by whichever part comes
//! first), writes a ready file, and waits for the start time the script
//! writes once every part is ready (a file barrier: the processes share the
//! box's clock, so one wall-clock start and the `sent_us` in each message
//! make their latencies comparable). The part with `send` also sends. Each
//! part writes its raw counts — the delivery-latency histogram as
//! (value, count) pairs and, per message, how many of its members got it and
//! the latest arrival — and [`merge_room`] adds them up: a message reached
//! the whole room when the parts' counts sum to every member, at the latest
//! arrival over all parts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use confab_client::Transport;
use confab_proto::{Frame, Peer, ops};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::futures_util_free::join_all;
use crate::room::{join_frame, rest};
use crate::{Mint, Percentiles, connect_login, histogram, now_us};

/// Where a process's clients connect from and to.
#[derive(Debug, Clone)]
pub struct Spread {
    /// Gateway addresses (host:port); client `i` uses `gateways[i % n]`.
    pub gateways: Vec<String>,
    /// First source address: 127.0.0.`source_from`.
    pub source_from: u8,
    /// Source addresses 127.0.0.`source_from` ..= `source_from + source_ips - 1`
    /// (1 = only `source_from`, bound explicitly unless it is 1).
    pub source_ips: u8,
}

impl Spread {
    /// The source address of client `i` (None: let the kernel pick 127.0.0.1).
    pub fn source(&self, i: usize) -> Option<IpAddr> {
        let n = self.source_ips.max(1) as usize;
        let octet = self.source_from.max(1) as usize + i % n;
        (self.source_from > 1 || n > 1)
            .then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, octet.min(254) as u8)))
    }

    /// Resolves every gateway once.
    pub async fn resolve(&self) -> anyhow::Result<Vec<SocketAddr>> {
        anyhow::ensure!(!self.gateways.is_empty(), "no gateway to connect to");
        let mut out = Vec::with_capacity(self.gateways.len());
        for g in &self.gateways {
            out.push(
                tokio::net::lookup_host(g.as_str())
                    .await?
                    .next()
                    .with_context(|| format!("resolving {g}"))?,
            );
        }
        Ok(out)
    }
}

/// Writes `text` to `path` atomically (a reader polling for the file never
/// sees it half-written).
pub fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Waits until `path` holds a start time (Unix milliseconds) and returns it.
pub async fn wait_start(path: &Path, timeout: Duration) -> anyhow::Result<u64> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Ok(ms) = text.trim().parse::<u64>()
        {
            return Ok(ms);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no start time in {} after {:?}",
            path.display(),
            timeout
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Debug, Clone)]
pub struct RoomPartOptions {
    pub spread: Spread,
    /// Where REST calls go (a logic node or a combined node: host:port).
    pub rest: String,
    /// An app secret key, for creating the room.
    pub secret: String,
    pub room_id: String,
    /// Members this process holds (the sender not counted).
    pub members: usize,
    /// Whether this process also sends (one extra connection).
    pub send: bool,
    pub rate: u64,
    pub duration: Duration,
    pub priority: String,
    /// Seconds to keep receiving after the last send.
    pub drain: Duration,
    pub concurrency: usize,
    pub transport: Transport,
    /// Written (empty) once every member has joined.
    pub ready_file: Option<PathBuf>,
    /// Holds the start time; without it the part starts right after joining.
    pub start_file: Option<PathBuf>,
    pub run_id: String,
}

/// What one process saw: raw counts, merged by [`merge_room`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RoomPart {
    pub scenario: String,
    pub run_id: String,
    pub room_id: String,
    pub priority: String,
    /// Members of this part that joined (the sender not counted).
    pub members: usize,
    pub join_failed: usize,
    pub first_error: Option<String>,
    pub login_seconds: f64,
    /// Messages this part sent (0 unless it is the sender).
    pub sent: u64,
    pub send_seconds: f64,
    pub delivered: u64,
    /// Delivery latency (µs) as (value, count) pairs.
    pub delivery_us: Vec<(u64, u64)>,
    /// Per message number: members of this part that got it.
    pub got: Vec<u64>,
    /// Per message number: the latest arrival in this part (µs after send).
    pub last_us: Vec<u64>,
}

/// Capacity of the per-message arrays: every part must agree on it.
/// What a room member reads from a benchmark message's body.
#[derive(Deserialize)]
struct Stamp {
    n: u64,
    sent_us: u64,
}

/// How long one member may take to connect, log in and join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

fn message_slots(rate: u64, duration: Duration) -> usize {
    (rate.max(1) * duration.as_secs().max(1) * 2 + 16) as usize
}

pub async fn room_part(options: RoomPartOptions, mint: Mint) -> anyhow::Result<RoomPart> {
    let gateways = options.spread.resolve().await?;
    let room = options.room_id.clone();
    // Every part tries to create the room; the first gets 201, the others 409.
    let status = rest(
        &options.rest,
        "POST",
        "/v1/rooms",
        &options.secret,
        &format!(r#"{{"room_id":"{room}"}}"#),
    )
    .await?;
    anyhow::ensure!(
        status == 201 || status == 409,
        "creating the room answered {status}"
    );

    let login_started = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let total = options.members + usize::from(options.send);
    // Progress while members join (a stall shows which part and how far).
    let joined = Arc::new(AtomicU64::new(0));
    let progress = {
        let (joined, run_id) = (joined.clone(), options.run_id.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!(
                    "part {run_id}: {}/{total} joined after {:.0} s",
                    joined.load(Ordering::Relaxed),
                    login_started.elapsed().as_secs_f64()
                );
            }
        })
    };
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let user = format!("r{}m{i}", options.run_id);
        let source = options.spread.source(i);
        let addr = gateways[i % gateways.len()];
        let (mint, sem, room, joined) = (mint.clone(), sem.clone(), room.clone(), joined.clone());
        let transport = options.transport;
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await?;
            // A member that cannot join in time counts as failed instead of
            // holding its permit (and the whole part) forever.
            let c = tokio::time::timeout(JOIN_TIMEOUT, async {
                let c = connect_login(transport, addr, source, user, mint).await?;
                c.call(join_frame(&room)).await.context("room_join")?;
                anyhow::Ok(c)
            })
            .await
            .with_context(|| {
                format!("login and room_join via {addr} took over {JOIN_TIMEOUT:?}")
            })??;
            joined.fetch_add(1, Ordering::Relaxed);
            anyhow::Ok(c)
        }));
    }
    let (mut clients, mut join_failed, mut first_error) = (Vec::new(), 0, None);
    let mut sender = None;
    for (i, t) in join_all(tasks).await.into_iter().enumerate() {
        match t.context("login task")? {
            Ok(c) if options.send && i == 0 => sender = Some(c),
            Ok(c) => clients.push(c),
            Err(e) if options.send && i == 0 => return Err(e.context("the sender's login")),
            Err(e) => {
                join_failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    progress.abort();
    let login_seconds = login_started.elapsed().as_secs_f64();
    eprintln!(
        "part {}: {} members in room {room} after {login_seconds:.2} s ({join_failed} failed{})",
        options.run_id,
        clients.len(),
        first_error
            .as_deref()
            .map(|e| format!("; first: {e}"))
            .unwrap_or_default()
    );
    if let Some(path) = &options.ready_file {
        write_atomic(path, &clients.len().to_string())?;
    }
    let start_ms = match &options.start_file {
        Some(path) => wait_start(path, Duration::from_secs(1800)).await?,
        None => now_us() / 1000 + 1000,
    };
    let start_us = start_ms * 1000;
    let end_us = start_us + (options.duration + options.drain).as_micros() as u64;

    let slots = message_slots(options.rate, options.duration);
    let got: Arc<Vec<AtomicU64>> = Arc::new((0..slots).map(|_| AtomicU64::new(0)).collect());
    let last: Arc<Vec<AtomicU64>> = Arc::new((0..slots).map(|_| AtomicU64::new(0)).collect());
    let delivered = Arc::new(AtomicU64::new(0));
    // One histogram per process behind a lock: one per member would cost
    // tens of KiB each, a lot at 15 000 members.
    let hist = Arc::new(Mutex::new(histogram()));
    let members = clients.len();
    let mut receivers = Vec::with_capacity(members);
    for mut c in clients {
        let (got, last, delivered, hist) =
            (got.clone(), last.clone(), delivered.clone(), hist.clone());
        receivers.push(tokio::spawn(async move {
            // Wait for pushes until the end time, with no polling timer: a
            // 200 ms poll per member would wake 15 000 tasks 5 times a second.
            loop {
                let left = end_us.saturating_sub(now_us());
                if left == 0 {
                    break;
                }
                let Some(f) = c.next_push(Duration::from_micros(left)).await else {
                    break;
                };
                if f.op != ops::MESSAGE {
                    continue;
                }
                delivered.fetch_add(1, Ordering::Relaxed);
                // Two fields read, the rest skipped: at 100 000 members the
                // load generator's parsing is a cost on the server's cores.
                let Ok(Stamp { n, sent_us }) = serde_json::from_str::<Stamp>(&f.body) else {
                    continue;
                };
                let took = now_us().saturating_sub(sent_us).max(1);
                if let Ok(mut h) = hist.lock() {
                    let _ = h.record(took);
                }
                if let (Some(g), Some(l)) = (got.get(n as usize), last.get(n as usize)) {
                    g.fetch_add(1, Ordering::Relaxed);
                    l.fetch_max(took, Ordering::Relaxed);
                }
            }
            c
        }));
    }

    let (mut sent, mut send_seconds) = (0u64, 0.0);
    if let Some(sender) = sender {
        let wait = start_us.saturating_sub(now_us());
        tokio::time::sleep(Duration::from_micros(wait)).await;
        let interval = Duration::from_secs_f64(1.0 / options.rate.max(1) as f64);
        let started = Instant::now();
        let mut next_at = tokio::time::Instant::now();
        while started.elapsed() < options.duration && (sent as usize) < slots {
            tokio::time::sleep_until(next_at).await;
            next_at += interval;
            let frame = Frame {
                op: ops::SEND.into(),
                to: Some(Peer {
                    kind: "room".into(),
                    id: room.clone(),
                }),
                priority: options.priority.clone(),
                body: format!(
                    r#"{{"type":"text","text":"m{sent}","n":{sent},"sent_us":{}}}"#,
                    now_us()
                ),
                ..Default::default()
            };
            match sender.call(frame).await {
                Ok(_) => sent += 1,
                Err(e) => eprintln!("room send failed: {e}"),
            }
            eprintln!(
                "t={:>4.1}s sent={sent} delivered here={}",
                started.elapsed().as_secs_f64(),
                delivered.load(Ordering::Relaxed)
            );
        }
        send_seconds = started.elapsed().as_secs_f64();
        // Keep the sender connected until the parts stop receiving.
        let wait = end_us.saturating_sub(now_us());
        tokio::time::sleep(Duration::from_micros(wait)).await;
        drop(sender);
    }
    let mut keep = Vec::with_capacity(members);
    for r in join_all(receivers).await {
        keep.push(r.context("receiver task")?);
    }
    drop(keep);
    let h = hist
        .lock()
        .map_err(|_| anyhow::anyhow!("histogram lock poisoned"))?
        .clone();
    Ok(RoomPart {
        scenario: "room-part".into(),
        run_id: options.run_id,
        room_id: room,
        priority: options.priority,
        members,
        join_failed,
        first_error,
        login_seconds,
        sent,
        send_seconds,
        delivered: delivered.load(Ordering::Relaxed),
        delivery_us: pairs_of(&h),
        got: got.iter().map(|g| g.load(Ordering::Relaxed)).collect(),
        last_us: last.iter().map(|l| l.load(Ordering::Relaxed)).collect(),
    })
}

/// A histogram as (value, count) pairs, for a result file.
pub fn pairs_of(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// The room, merged over every part.
#[derive(Debug, Clone, Serialize)]
pub struct DistRoomResult {
    pub scenario: &'static str,
    pub processes: usize,
    pub priority: String,
    /// Members that joined, over all parts (the sender not counted).
    pub members: usize,
    pub join_failed: usize,
    pub sent: u64,
    pub send_seconds: f64,
    pub delivered: u64,
    /// sent × members: what every message reaching everyone would give.
    pub expected: u64,
    /// Messages that reached every member.
    pub reached_all: u64,
    /// Per delivery: send → that member received it (all parts' samples).
    pub delivery_latency_ms: Percentiles,
    /// Per message that reached everyone: send → its last member got it.
    pub reach_all_ms: Percentiles,
    /// The slowest part's login + join time.
    pub login_seconds: f64,
}

impl DistRoomResult {
    pub fn human(&self) -> String {
        let d = &self.delivery_latency_ms;
        let r = &self.reach_all_ms;
        format!(
            "room over {} processes: {} members ({} failed to join), priority {}\n\
             sent:         {} in {:.1} s\n\
             delivered:    {} of {} ({:.2} %); {} of {} messages reached every member\n\
             delivery ms:  p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}\n\
             reach-all ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}\n\
             logins:       slowest part {:.1} s",
            self.processes,
            self.members,
            self.join_failed,
            self.priority,
            self.sent,
            self.send_seconds,
            self.delivered,
            self.expected,
            100.0 * self.delivered as f64 / self.expected.max(1) as f64,
            self.reached_all,
            self.sent,
            d.p50,
            d.p90,
            d.p99,
            d.max,
            r.p50,
            r.p90,
            r.p99,
            r.max,
            self.login_seconds,
        )
    }
}

/// Adds the parts of one room run up.
pub fn merge_room(parts: &[RoomPart]) -> anyhow::Result<DistRoomResult> {
    anyhow::ensure!(!parts.is_empty(), "no room part to merge");
    let room = &parts[0].room_id;
    anyhow::ensure!(
        parts.iter().all(|p| &p.room_id == room),
        "the parts are of different rooms"
    );
    let members: usize = parts.iter().map(|p| p.members).sum();
    let sent: u64 = parts.iter().map(|p| p.sent).sum();
    let mut delivery = histogram();
    for p in parts {
        for &(v, n) in &p.delivery_us {
            delivery.record_n(v.max(1), n)?;
        }
    }
    let mut reach = histogram();
    let mut reached_all = 0;
    for n in 0..sent as usize {
        let got: u64 = parts.iter().filter_map(|p| p.got.get(n)).sum();
        if members > 0 && got >= members as u64 {
            reached_all += 1;
            let last = parts
                .iter()
                .filter_map(|p| p.last_us.get(n))
                .max()
                .copied()
                .unwrap_or(1);
            reach.record(last.max(1))?;
        }
    }
    Ok(DistRoomResult {
        scenario: "room",
        processes: parts.len(),
        priority: parts[0].priority.clone(),
        members,
        join_failed: parts.iter().map(|p| p.join_failed).sum(),
        sent,
        send_seconds: parts.iter().map(|p| p.send_seconds).fold(0.0, f64::max),
        delivered: parts.iter().map(|p| p.delivered).sum(),
        expected: sent * members as u64,
        reached_all,
        delivery_latency_ms: Percentiles::of(&delivery),
        reach_all_ms: Percentiles::of(&reach),
        login_seconds: parts.iter().map(|p| p.login_seconds).fold(0.0, f64::max),
    })
}

/// `idle` results of several processes, added up.
#[derive(Debug, Clone, Serialize)]
pub struct DistIdleResult {
    pub scenario: &'static str,
    pub processes: usize,
    pub connections: usize,
    pub connected: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    /// The slowest process's login time.
    pub login_seconds: f64,
    pub logins_per_sec: f64,
}

/// Adds up `idle` result files (JSON values as written by `--out`).
pub fn merge_idle(parts: &[serde_json::Value]) -> anyhow::Result<DistIdleResult> {
    anyhow::ensure!(!parts.is_empty(), "no idle result to merge");
    let num = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(0.0);
    let connected: usize = parts.iter().map(|p| num(p, "connected") as usize).sum();
    let login_seconds = parts
        .iter()
        .map(|p| num(p, "login_seconds"))
        .fold(0.0, f64::max);
    Ok(DistIdleResult {
        scenario: "idle",
        processes: parts.len(),
        connections: parts.iter().map(|p| num(p, "connections") as usize).sum(),
        connected,
        failed: parts.iter().map(|p| num(p, "failed") as usize).sum(),
        first_error: parts
            .iter()
            .find_map(|p| p.get("first_error").and_then(|e| e.as_str()))
            .map(str::to_owned),
        login_seconds,
        logins_per_sec: connected as f64 / login_seconds.max(1e-9),
    })
}

/// Merges result files of one distributed run: room parts or idle results.
/// Returns the merged JSON and its human summary.
pub fn merge_files(paths: &[PathBuf]) -> anyhow::Result<(serde_json::Value, String)> {
    let mut values = Vec::with_capacity(paths.len());
    for p in paths {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?;
        values.push(v);
    }
    let scenario = values
        .first()
        .and_then(|v| v.get("scenario"))
        .and_then(|s| s.as_str())
        .unwrap_or_default()
        .to_owned();
    match scenario.as_str() {
        "room-part" => {
            let parts = values
                .into_iter()
                .map(serde_json::from_value)
                .collect::<Result<Vec<RoomPart>, _>>()
                .context("a room part file")?;
            let r = merge_room(&parts)?;
            Ok((serde_json::to_value(&r)?, r.human()))
        }
        "idle" => {
            let r = merge_idle(&values)?;
            let human = format!(
                "idle over {} processes: {}/{} connections held ({} failed{}), slowest login phase {:.1} s ({:.0} logins/s)",
                r.processes,
                r.connected,
                r.connections,
                r.failed,
                r.first_error
                    .as_ref()
                    .map(|e| format!("; first: {e}"))
                    .unwrap_or_default(),
                r.login_seconds,
                r.logins_per_sec
            );
            Ok((serde_json::to_value(&r)?, human))
        }
        other => anyhow::bail!("cannot merge results of scenario {other:?} (room parts or idle)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(members: usize, sent: u64, got: Vec<u64>, last_us: Vec<u64>) -> RoomPart {
        let mut h = histogram();
        for (n, l) in got.iter().zip(&last_us) {
            // Every delivery of message n in this part at its latest time.
            let _ = h.record_n((*l).max(1), *n);
        }
        RoomPart {
            scenario: "room-part".into(),
            run_id: "p".into(),
            room_id: "r".into(),
            priority: "high".into(),
            members,
            join_failed: 0,
            first_error: None,
            login_seconds: members as f64 / 1000.0,
            sent,
            send_seconds: if sent > 0 { 2.0 } else { 0.0 },
            delivered: got.iter().sum(),
            delivery_us: pairs_of(&h),
            got,
            last_us,
        }
    }

    #[test]
    fn a_message_reaches_the_room_only_when_every_part_got_it_all() {
        // Two parts of 3 and 2 members; the sender is in the first part.
        // Message 0 reached all 5 (last arrival 900 ms, in part b);
        // message 1 missed one member of part b.
        let a = part(3, 2, vec![3, 3, 0], vec![400_000, 300_000, 0]);
        let b = part(2, 0, vec![2, 1, 0], vec![900_000, 200_000, 0]);
        let r = merge_room(&[a, b]).expect("merge");
        assert_eq!(r.members, 5);
        assert_eq!(r.sent, 2);
        assert_eq!(r.expected, 10);
        assert_eq!(r.delivered, 9);
        assert_eq!(r.reached_all, 1, "message 1 missed a member of part b");
        // Reach-all is the latest arrival over all parts, not part a's.
        assert!(
            (r.reach_all_ms.max - 900.0).abs() < 1.0,
            "{}",
            r.reach_all_ms.max
        );
        assert_eq!(r.processes, 2);
        assert!((r.login_seconds - 0.003).abs() < 1e-9, "slowest part");
    }

    #[test]
    fn latency_samples_of_all_parts_count_in_the_percentiles() {
        // 99 fast deliveries in one part, one slow in another: the merged
        // max is the slow one and the median the fast one.
        let a = part(99, 1, vec![99], vec![10_000]);
        let b = part(1, 0, vec![1], vec![2_000_000]);
        let r = merge_room(&[a, b]).expect("merge");
        assert!((r.delivery_latency_ms.p50 - 10.0).abs() < 0.1);
        assert!((r.delivery_latency_ms.max - 2000.0).abs() < 2.0);
        assert_eq!(r.reached_all, 1);
    }

    #[test]
    fn parts_of_different_rooms_are_refused() {
        let a = part(1, 1, vec![1], vec![1]);
        let mut b = part(1, 0, vec![1], vec![1]);
        b.room_id = "other".into();
        assert!(merge_room(&[a, b]).is_err());
        assert!(merge_room(&[]).is_err());
    }

    #[test]
    fn room_parts_survive_their_result_file() {
        let dir = tempdir("parts");
        let a = part(2, 1, vec![2], vec![5_000]);
        let b = part(3, 0, vec![3], vec![7_000]);
        let paths = [dir.join("a.json"), dir.join("b.json")];
        for (p, v) in paths.iter().zip([&a, &b]) {
            std::fs::write(p, serde_json::to_string(v).expect("json")).expect("write");
        }
        let (value, human) = merge_files(&paths).expect("merge files");
        assert_eq!(value["members"], 5);
        assert_eq!(value["reached_all"], 1);
        assert!(human.contains("5 members"), "{human}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn idle_results_add_up() {
        let dir = tempdir("idle");
        let paths = [dir.join("a.json"), dir.join("b.json")];
        std::fs::write(
            &paths[0],
            r#"{"scenario":"idle","connections":100,"connected":100,"failed":0,"first_error":null,"login_seconds":2.0}"#,
        )
        .expect("write");
        std::fs::write(
            &paths[1],
            r#"{"scenario":"idle","connections":100,"connected":90,"failed":10,"first_error":"refused","login_seconds":4.0}"#,
        )
        .expect("write");
        let (value, human) = merge_files(&paths).expect("merge files");
        assert_eq!(value["connected"], 190);
        assert_eq!(value["failed"], 10);
        assert_eq!(value["first_error"], "refused");
        assert!((value["logins_per_sec"].as_f64().expect("rate") - 47.5).abs() < 1e-9);
        assert!(human.contains("190/200"), "{human}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_start_barrier_waits_for_a_complete_time() {
        let dir = tempdir("start");
        let path = dir.join("start");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // No file yet: times out rather than starting.
        assert!(
            rt.block_on(wait_start(&path, Duration::from_millis(120)))
                .is_err()
        );
        write_atomic(&path, "1234567\n").expect("write");
        assert_eq!(
            rt.block_on(wait_start(&path, Duration::from_secs(1)))
                .expect("start"),
            1_234_567
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sources_stay_in_the_process_range() {
        let s = Spread {
            gateways: vec!["127.0.0.1:1".into()],
            source_from: 5,
            source_ips: 2,
        };
        let ips: Vec<_> = (0..4).map(|i| s.source(i)).collect();
        let want = |o| Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, o)));
        assert_eq!(ips, vec![want(5), want(6), want(5), want(6)]);
        let default = Spread {
            gateways: vec![],
            source_from: 1,
            source_ips: 1,
        };
        assert_eq!(default.source(3), None, "kernel's choice");
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "confab-bench-dist-{name}-{}-{}",
            std::process::id(),
            now_us()
        ));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }
}
