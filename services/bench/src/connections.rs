//! Connection scenarios: `idle` holds N logged-in connections and reports
//! what each one costs the server (resident memory and file descriptors);
//! `login-storm` logs N distinct users in as fast as the server allows and
//! reports logins per second and login latency.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use confab_client::Transport;
use serde::Serialize;

use super::{Mint, Percentiles, connect_login, histogram, server_rss};

#[derive(Debug, Clone)]
pub struct ConnOptions {
    pub http: String,
    /// How the clients connect (`Tcp` uses `tcp`, or `gateways` as TCP
    /// addresses).
    pub transport: Transport,
    /// The server's TCP address (for `Transport::Tcp` without `gateways`).
    pub tcp: String,
    pub connections: usize,
    /// Logins in flight at once.
    pub concurrency: usize,
    /// Local source addresses to spread connections over (127.0.0.1..=x),
    /// past the ~28 000 ephemeral ports one source address has.
    pub source_ips: u8,
    /// The server's pid: RSS from /proc/<pid>/status and fds from
    /// /proc/<pid>/fd (same machine). Without it RSS comes from /metrics and
    /// fds are not reported.
    pub server_pid: Option<u32>,
    /// How long `idle` holds the connections before measuring.
    pub hold: Duration,
    pub run_id: String,
    /// Gateways to spread the connections over (client `i` uses
    /// `gateways[i % n]`); empty: all go to `http`.
    pub gateways: Vec<String>,
    /// First source address (127.0.0.`source_from`), so that several load
    /// generator processes use addresses of their own.
    pub source_from: u8,
    /// `idle`: written once the logins are done (a barrier for
    /// `scripts/bench-cluster`, which then reads every gateway's /proc).
    pub ready_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdleResult {
    pub scenario: &'static str,
    pub connections: usize,
    pub connected: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub login_seconds: f64,
    pub logins_per_sec: f64,
    pub server_rss_before_bytes: Option<u64>,
    pub server_rss_after_bytes: Option<u64>,
    pub server_rss_per_connection_bytes: Option<f64>,
    pub server_fds_before: Option<u64>,
    pub server_fds_after: Option<u64>,
    pub server_fds_per_connection: Option<f64>,
}

impl IdleResult {
    pub fn human(&self) -> String {
        let opt = |v: Option<f64>, unit: &str| {
            v.map(|v| format!("{v:.1} {unit}"))
                .unwrap_or_else(|| "n/a".into())
        };
        format!(
            "idle: {}/{} connections held ({} failed{}), logged in at {:.0}/s\n\
             server RSS {} -> {} bytes: {} per connection\n\
             server fds {} -> {}: {} per connection",
            self.connected,
            self.connections,
            self.failed,
            self.first_error
                .as_ref()
                .map(|e| format!("; first: {e}"))
                .unwrap_or_default(),
            self.logins_per_sec,
            self.server_rss_before_bytes
                .map_or("n/a".into(), |v| v.to_string()),
            self.server_rss_after_bytes
                .map_or("n/a".into(), |v| v.to_string()),
            opt(self.server_rss_per_connection_bytes, "bytes"),
            self.server_fds_before
                .map_or("n/a".into(), |v| v.to_string()),
            self.server_fds_after
                .map_or("n/a".into(), |v| v.to_string()),
            opt(self.server_fds_per_connection, "fds"),
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LoginStormResult {
    pub scenario: &'static str,
    pub logins: usize,
    pub ok: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub concurrency: usize,
    pub seconds: f64,
    pub logins_per_sec: f64,
    /// Connect + login round trip.
    pub login_latency_ms: Percentiles,
}

impl LoginStormResult {
    pub fn human(&self) -> String {
        let l = &self.login_latency_ms;
        format!(
            "login-storm: {} of {} logins ok ({} failed{}) in {:.2} s = {:.0} logins/s with {} in flight\n\
             connect+login latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            self.ok,
            self.logins,
            self.failed,
            self.first_error
                .as_ref()
                .map(|e| format!("; first: {e}"))
                .unwrap_or_default(),
            self.seconds,
            self.logins_per_sec,
            self.concurrency,
            l.p50,
            l.p90,
            l.p99,
            l.max
        )
    }
}

/// A process's resident memory from /proc (VmRSS, in bytes).
pub fn proc_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// A process's open file descriptors (entries of /proc/<pid>/fd).
pub fn proc_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

async fn rss(options: &ConnOptions) -> Option<u64> {
    match options.server_pid {
        Some(pid) => proc_rss(pid),
        None => server_rss(&options.http).await,
    }
}

fn source(options: &ConnOptions, i: usize) -> Option<IpAddr> {
    let from = options.source_from.max(1);
    (options.source_ips > 1 || from > 1).then(|| {
        let octet = from as usize + i % options.source_ips.max(1) as usize;
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, octet.min(254) as u8))
    })
}

/// The address of each client: `http`, or the gateways in turn.
async fn targets(options: &ConnOptions) -> anyhow::Result<Vec<SocketAddr>> {
    if options.gateways.is_empty() {
        let target = if options.transport == Transport::Tcp {
            &options.tcp
        } else {
            &options.http
        };
        return Ok(vec![resolve(target).await?]);
    }
    let mut out = Vec::with_capacity(options.gateways.len());
    for g in &options.gateways {
        out.push(resolve(g).await?);
    }
    Ok(out)
}

async fn resolve(http: &str) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(http)
        .await?
        .next()
        .with_context(|| format!("resolving {http}"))
}

/// Prints `label: done/total` on stderr each second until `done` reaches `total`.
fn progress(
    label: &'static str,
    done: Arc<AtomicU64>,
    total: usize,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let n = done.load(Ordering::Relaxed);
            eprintln!(
                "[{:>4.0}s] {label}: {n}/{total}",
                started.elapsed().as_secs_f64()
            );
            if n as usize >= total {
                return;
            }
        }
    })
}

/// `idle`: logs in `connections` users and holds them.
pub async fn idle(options: ConnOptions, mint: Mint) -> anyhow::Result<IdleResult> {
    let addrs = targets(&options).await?;
    let rss_before = rss(&options).await;
    let fds_before = options.server_pid.and_then(proc_fds);
    let sem = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let done = Arc::new(AtomicU64::new(0));
    let ticker = progress("idle connections", done.clone(), options.connections);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(options.connections);
    for i in 0..options.connections {
        let user = format!("b{}idle{i}", options.run_id);
        let (mint, sem, done) = (mint.clone(), sem.clone(), done.clone());
        let transport = options.transport;
        let source = source(&options, i);
        let addr = addrs[i % addrs.len()];
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let c = connect_login(transport, addr, source, user, mint).await;
            done.fetch_add(1, Ordering::Relaxed);
            c
        }));
    }
    let (mut clients, mut failed, mut first_error) = (Vec::new(), 0, None);
    for t in tasks {
        match t.await.context("login task")? {
            Ok(c) => clients.push(c),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let login_seconds = started.elapsed().as_secs_f64();
    ticker.abort();
    if let Some(path) = &options.ready_file {
        crate::dist::write_atomic(path, &clients.len().to_string())?;
    }
    eprintln!(
        "holding {} connections for {:.0} s",
        clients.len(),
        options.hold.as_secs_f64()
    );
    tokio::time::sleep(options.hold).await;
    let rss_after = rss(&options).await;
    let fds_after = options.server_pid.and_then(proc_fds);
    let n = clients.len();
    let per = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(b), Some(a)) if n > 0 => Some((a as f64 - b as f64) / n as f64),
        _ => None,
    };
    let result = IdleResult {
        scenario: "idle",
        connections: options.connections,
        connected: n,
        failed,
        first_error,
        login_seconds,
        logins_per_sec: n as f64 / login_seconds.max(1e-9),
        server_rss_before_bytes: rss_before,
        server_rss_after_bytes: rss_after,
        server_rss_per_connection_bytes: per(rss_before, rss_after),
        server_fds_before: fds_before,
        server_fds_after: fds_after,
        server_fds_per_connection: per(fds_before, fds_after),
    };
    drop(clients);
    Ok(result)
}

/// `login-storm`: `connections` distinct users connect and log in,
/// `concurrency` at a time; each connection closes after its login, so the
/// storm is not bounded by file descriptors.
pub async fn login_storm(options: ConnOptions, mint: Mint) -> anyhow::Result<LoginStormResult> {
    let addrs = targets(&options).await?;
    let sem = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let done = Arc::new(AtomicU64::new(0));
    let ticker = progress("logins", done.clone(), options.connections);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(options.connections);
    for i in 0..options.connections {
        let user = format!("b{}storm{i}", options.run_id);
        let (mint, sem, done) = (mint.clone(), sem.clone(), done.clone());
        let transport = options.transport;
        let source = source(&options, i);
        let addr = addrs[i % addrs.len()];
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await?;
            let t0 = Instant::now();
            let c = connect_login(transport, addr, source, user, mint).await;
            let took = t0.elapsed();
            done.fetch_add(1, Ordering::Relaxed);
            c.map(|_| took)
        }));
    }
    let (mut h, mut ok, mut failed, mut first_error) = (histogram(), 0, 0, None);
    for t in tasks {
        match t.await.context("login task")? {
            Ok(took) => {
                ok += 1;
                let _ = h.record((took.as_micros() as u64).max(1));
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    ticker.abort();
    Ok(LoginStormResult {
        scenario: "login-storm",
        logins: options.connections,
        ok,
        failed,
        first_error,
        concurrency: options.concurrency.max(1),
        seconds,
        logins_per_sec: ok as f64 / seconds.max(1e-9),
        login_latency_ms: Percentiles::of(&h),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_readings_of_this_process() {
        let me = std::process::id();
        assert!(proc_rss(me).is_some_and(|b| b > 1024 * 1024), "VmRSS read");
        assert!(proc_fds(me).is_some_and(|n| n >= 3), "fds counted");
        assert_eq!(proc_rss(u32::MAX), None, "no such process");
    }
}
