//! `confab bench room`: one live room with N members online (spread over
//! source addresses 127.0.0.x), one sender offering messages at a rate.
//! Reports messages/s, deliveries/s, the latency of each delivery, and the
//! time for a message to reach **all** members (p50/p99 over the messages
//! every member received), plus how many deliveries the server shed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use confab_client::Transport;
use confab_proto::{Frame, Peer, ops};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::futures_util_free::join_all;
use crate::{Mint, Percentiles, connect_login, histogram, now_us};

#[derive(Debug, Clone)]
pub struct RoomOptions {
    /// Server HTTP address (host:port): WebSocket, REST and /metrics.
    pub http: String,
    /// The server's TCP address (for `Transport::Tcp`).
    pub tcp: String,
    pub transport: Transport,
    /// Members online in the room (the sender not counted).
    pub members: usize,
    /// Messages per second the sender offers.
    pub rate: u64,
    pub duration: Duration,
    /// `high`, `normal` or `low`.
    pub priority: String,
    pub source_ips: u8,
    /// An app secret key, to create and close the room over REST.
    pub secret: String,
    pub run_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RoomResult {
    pub scenario: &'static str,
    pub transport: String,
    pub members: usize,
    pub priority: String,
    pub offered_rate: u64,
    pub duration_s: f64,
    pub sent: u64,
    pub messages_per_sec: f64,
    pub delivered: u64,
    pub deliveries_per_sec: f64,
    /// Messages that reached every member.
    pub reached_all: u64,
    pub delivery_latency_ms: Percentiles,
    /// Per message: from send to its last member receiving it.
    pub reach_all_ms: Percentiles,
    pub login_seconds: f64,
}

impl RoomResult {
    pub fn human(&self) -> String {
        format!(
            "room over {}: {} members, priority {}, offered {} msgs/s, {:.1} s\n\
             sent:        {} = {:.1} msgs/s\n\
             delivered:   {} = {:.0} deliveries/s; {} of {} messages reached every member\n\
             delivery ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}\n\
             reach-all ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}\n\
             logins:      {} in {:.2} s",
            self.transport,
            self.members,
            self.priority,
            self.offered_rate,
            self.duration_s,
            self.sent,
            self.messages_per_sec,
            self.delivered,
            self.deliveries_per_sec,
            self.reached_all,
            self.sent,
            self.delivery_latency_ms.p50,
            self.delivery_latency_ms.p90,
            self.delivery_latency_ms.p99,
            self.delivery_latency_ms.max,
            self.reach_all_ms.p50,
            self.reach_all_ms.p90,
            self.reach_all_ms.p99,
            self.reach_all_ms.max,
            self.members,
            self.login_seconds,
        )
    }
}

/// One REST call with the app's secret key; the status code.
pub(crate) async fn rest(
    http: &str,
    method: &str,
    path: &str,
    secret: &str,
    body: &str,
) -> anyhow::Result<u16> {
    let mut s = tokio::net::TcpStream::connect(http).await?;
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {http}\r\nAuthorization: Bearer {secret}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no HTTP status in the answer")
}

pub(crate) fn join_frame(room: &str) -> Frame {
    Frame {
        op: ops::ROOM_JOIN.into(),
        room_id: room.into(),
        ..Default::default()
    }
}

pub async fn room(options: RoomOptions, mint: Mint) -> anyhow::Result<RoomResult> {
    let target = if options.transport == Transport::Tcp {
        &options.tcp
    } else {
        &options.http
    };
    let addr: SocketAddr = tokio::net::lookup_host(target.as_str())
        .await?
        .next()
        .with_context(|| format!("resolving {target}"))?;
    let room = format!("bench-{}", options.run_id);
    let status = rest(
        &options.http,
        "POST",
        "/v1/rooms",
        &options.secret,
        &format!(r#"{{"room_id":"{room}"}}"#),
    )
    .await?;
    anyhow::ensure!(status == 201, "creating the room answered {status}");

    let login_started = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::with_capacity(options.members + 1);
    for i in 0..=options.members {
        let user = format!("r{}m{i}", options.run_id);
        let source = (options.source_ips > 1).then(|| {
            IpAddr::V4(Ipv4Addr::new(
                127,
                0,
                0,
                1 + (i % options.source_ips as usize) as u8,
            ))
        });
        let (mint, sem, room) = (mint.clone(), sem.clone(), room.clone());
        let transport = options.transport;
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let c = connect_login(transport, addr, source, user, mint).await?;
            c.call(join_frame(&room)).await.context("room_join")?;
            anyhow::Ok(c)
        }));
    }
    let mut clients = Vec::with_capacity(tasks.len());
    for t in join_all(tasks).await {
        clients.push(t.context("login task")??);
    }
    let login_seconds = login_started.elapsed().as_secs_f64();
    eprintln!(
        "{} members in room {room} after {login_seconds:.2} s",
        options.members
    );
    // Let the gateways' presence settle before measuring.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let capacity = (options.rate.max(1) * options.duration.as_secs().max(1) * 2 + 16) as usize;
    // Per message: members that got it, and the latest arrival (µs after send).
    let got: Arc<Vec<AtomicU64>> = Arc::new((0..capacity).map(|_| AtomicU64::new(0)).collect());
    let last: Arc<Vec<AtomicU64>> = Arc::new((0..capacity).map(|_| AtomicU64::new(0)).collect());
    let delivered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sender = clients.remove(0);
    let mut receivers = Vec::new();
    for mut c in clients {
        let (got, last, delivered, stop) =
            (got.clone(), last.clone(), delivered.clone(), stop.clone());
        receivers.push(tokio::spawn(async move {
            let mut h = histogram();
            while !stop.load(Ordering::Relaxed) {
                let Some(f) = c.next_push(Duration::from_millis(200)).await else {
                    continue;
                };
                if f.op != ops::MESSAGE {
                    continue;
                }
                delivered.fetch_add(1, Ordering::Relaxed);
                let Some((n, sent_us)) = serde_json::from_str::<serde_json::Value>(&f.body)
                    .ok()
                    .and_then(|v| Some((v.get("n")?.as_u64()?, v.get("sent_us")?.as_u64()?)))
                else {
                    continue;
                };
                let took = now_us().saturating_sub(sent_us).max(1);
                let _ = h.record(took);
                if let (Some(g), Some(l)) = (got.get(n as usize), last.get(n as usize)) {
                    g.fetch_add(1, Ordering::Relaxed);
                    l.fetch_max(took, Ordering::Relaxed);
                }
            }
            h
        }));
    }

    let interval = Duration::from_secs_f64(1.0 / options.rate.max(1) as f64);
    let started = Instant::now();
    let mut next_at = tokio::time::Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < options.duration && (sent as usize) < capacity {
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
        if sender.call(frame).await.is_ok() {
            sent += 1;
        }
    }
    let duration_s = started.elapsed().as_secs_f64();
    // Let the last messages arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let mut delivery = histogram();
    for r in join_all(receivers).await {
        delivery.add(r.context("receiver task")?)?;
    }
    let mut reach = histogram();
    let mut reached_all = 0;
    for n in 0..sent as usize {
        if got[n].load(Ordering::Relaxed) as usize >= options.members {
            reached_all += 1;
            let _ = reach.record(last[n].load(Ordering::Relaxed).max(1));
        }
    }
    let _ = rest(
        &options.http,
        "DELETE",
        &format!("/v1/rooms/{room}"),
        &options.secret,
        "",
    )
    .await;
    let delivered = delivered.load(Ordering::Relaxed);
    Ok(RoomResult {
        scenario: "room",
        transport: format!("{:?}", options.transport),
        members: options.members,
        priority: options.priority.clone(),
        offered_rate: options.rate,
        duration_s,
        sent,
        messages_per_sec: sent as f64 / duration_s,
        delivered,
        deliveries_per_sec: delivered as f64 / duration_s,
        reached_all,
        delivery_latency_ms: Percentiles::of(&delivery),
        reach_all_ms: Percentiles::of(&reach),
        login_seconds,
    })
}
