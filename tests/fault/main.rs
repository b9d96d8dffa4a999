//! Fault injection (issues 3 and 11): a distributed cell of real processes
//! on loopback, SDK-like traffic the whole time, and a seeded schedule of
//! kills, pauses, crashes and link faults. Afterwards every acknowledged
//! message is checked on every recipient's device. docs/testing.md says how
//! to run it longer and how to replay a seed.

mod check;
mod deploy;
mod proxy;
mod schedule;
mod traffic;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use confab_client::{Client, Transport};
use schedule::Fault;

use crate::proxy::Mode;

const USERS: usize = 12;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Applies a fault, holds it, heals it.
async fn inject(cell: &mut deploy::Cell, fault: Fault, hold: Duration) {
    use tokio::task::block_in_place;
    match fault {
        Fault::KillGateway(g) => {
            cell.gateways[g].kill();
            tokio::time::sleep(hold).await;
            block_in_place(|| cell.gateways[g].restart());
        }
        Fault::KillLogic(l) => {
            cell.logic[l].kill();
            tokio::time::sleep(hold).await;
            block_in_place(|| cell.logic[l].restart());
        }
        Fault::PauseLogic(l) => {
            cell.logic[l].pause(true);
            tokio::time::sleep(hold).await;
            cell.logic[l].pause(false);
        }
        Fault::KillRedis => {
            cell.redis.kill();
            tokio::time::sleep(hold).await;
            block_in_place(|| cell.redis.restart());
        }
        Fault::CrashPostgres => {
            block_in_place(|| cell.pg.crash());
            tokio::time::sleep(hold).await;
            block_in_place(|| cell.pg.resume());
        }
        Fault::DelayLink(i, ms) => {
            cell.inner_links[i].set(Mode::Delay(ms));
            tokio::time::sleep(hold).await;
            cell.inner_links[i].set(Mode::Pass);
        }
        Fault::CutLink { client, link } => {
            let p = if client {
                &cell.client_links[link]
            } else {
                &cell.inner_links[link]
            };
            p.set(Mode::Cut);
            tokio::time::sleep(hold).await;
            p.set(Mode::Pass);
        }
        Fault::BlackholeLink(i) => {
            cell.inner_links[i].set(Mode::Blackhole);
            tokio::time::sleep(hold).await;
            cell.inner_links[i].set(Mode::Pass);
        }
    }
}

fn describe(cell: &deploy::Cell, fault: Fault) -> String {
    match fault {
        Fault::DelayLink(i, ms) => format!("delay {ms} ms on {}", cell.inner_links[i].name),
        Fault::CutLink { client: true, link } => format!("cut {}", cell.client_links[link].name),
        Fault::CutLink {
            client: false,
            link,
        } => format!("cut {}", cell.inner_links[link].name),
        Fault::BlackholeLink(i) => format!("blackhole {}", cell.inner_links[i].name),
        other => format!("{other:?}"),
    }
}

/// Every inbox entry of a device from 0, retrying while the cell settles.
async fn final_inbox(
    addr: std::net::SocketAddr,
    token: &str,
    device: &str,
) -> Vec<confab_proto::Message> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async {
            let c = Client::connect(Transport::WsJson, addr).await?;
            c.login(token, device, "ios").await?;
            let (mut all, mut since) = (Vec::new(), 0);
            loop {
                let page = c.sync(since, 200).await?;
                since = page
                    .messages
                    .last()
                    .and_then(|m| m.inbox_seq)
                    .unwrap_or(since);
                all.extend(page.messages);
                if page.has_more != Some(true) {
                    return Ok::<_, confab_client::ClientError>(all);
                }
            }
        };
        match attempt.await {
            Ok(all) => return all,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "final sync of {device} failed: {e}"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_message_survives_a_seeded_fault_schedule() {
    let seed = env_u64("CONFAB_FAULT_SEED").unwrap_or_else(rand::random);
    let secs = env_u64("CONFAB_FAULT_SECS").unwrap_or(60).max(15);
    println!("fault schedule: CONFAB_FAULT_SEED={seed} CONFAB_FAULT_SECS={secs}");
    eprintln!("fault schedule: CONFAB_FAULT_SEED={seed} CONFAB_FAULT_SECS={secs}");

    let mut cell = deploy::Cell::start().await;
    println!("process logs under {}", cell.dir.path().display());
    let steps = schedule::make(
        seed,
        Duration::from_secs(secs - 6),
        cell.inner_links.len(),
        cell.client_links.len(),
    );

    let shared = Arc::new(traffic::Shared {
        acked: Default::default(),
        unexpected: Default::default(),
        stats: Default::default(),
        stop: Default::default(),
    });
    let names: Vec<String> = (0..USERS).map(|i| format!("u{i}")).collect();
    let gateways: Vec<_> = cell.client_links.iter().map(|p| p.addr).collect();
    let mut users = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let user = traffic::User::new(name.clone(), cell.token(name), gateways.clone(), i % 2);
        users.push(tokio::spawn(traffic::run_user(
            user,
            names.clone(),
            seed ^ (i as u64 + 1),
            Duration::from_millis(60),
            shared.clone(),
        )));
    }

    let start = Instant::now();
    for step in &steps {
        tokio::time::sleep_until((start + step.at).into()).await;
        println!(
            "[{:>5.1}s] {} for {:.1}s (acked so far: {})",
            start.elapsed().as_secs_f64(),
            describe(&cell, step.fault),
            step.hold.as_secs_f64(),
            shared.stats.acked.load(Ordering::Relaxed)
        );
        inject(&mut cell, step.fault, step.hold).await;
    }
    tokio::time::sleep_until((start + Duration::from_secs(secs)).into()).await;
    shared.stop.store(true, Ordering::Relaxed);
    for u in users {
        u.await.expect("user task");
    }
    let st = &shared.stats;
    println!(
        "traffic: {} acknowledged, {} retries, {} (re)connects, {} live pushes, {} abandoned after 60 s of retries",
        st.acked.load(Ordering::Relaxed),
        st.retries.load(Ordering::Relaxed),
        st.reconnects.load(Ordering::Relaxed),
        st.live_pushes.load(Ordering::Relaxed),
        st.abandoned.load(Ordering::Relaxed),
    );

    // The verdict, device by device.
    let acked = shared.acked.lock().expect("lock").clone();
    let mut problems: Vec<String> = shared.unexpected.lock().expect("lock").clone();
    let mut checked = 0usize;
    for (i, name) in names.iter().enumerate() {
        let inbox = final_inbox(gateways[i % 2], &cell.token(name), &format!("{name}-dev")).await;
        let mine: Vec<&traffic::Acked> = acked.iter().filter(|a| a.to == *name).collect();
        checked += mine.len();
        problems.extend(check::check_inbox(name, &inbox, &mine));
    }
    assert_eq!(
        checked,
        acked.len(),
        "every acknowledged message was checked"
    );
    println!("checked {checked} acknowledged messages on {USERS} devices");
    assert!(
        acked.len() >= 100,
        "too little traffic to judge ({} acknowledged); seed {seed}\n{}",
        acked.len(),
        cell.log_tails()
    );
    let logs = cell.log_tails();
    if std::env::var_os("CONFAB_FAULT_KEEP").is_some() {
        println!("kept process logs: {}", cell.dir.keep().display());
    }
    if !problems.is_empty() {
        let total = problems.len();
        problems.truncate(60);
        panic!(
            "seed {seed} (CONFAB_FAULT_SEED={seed} CONFAB_FAULT_SECS={secs}): {total} problems:\n{}\n{}",
            problems.join("\n"),
            logs
        );
    }
}
