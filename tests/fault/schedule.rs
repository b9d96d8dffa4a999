//! A seeded fault schedule: the same seed gives the same faults at the same
//! times, so a failure reproduces with `CONFAB_FAULT_SEED`.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// kill -9 a gateway process, restart it after the hold.
    KillGateway(usize),
    /// kill -9 a logic process, restart it after the hold.
    KillLogic(usize),
    /// SIGSTOP a logic process, SIGCONT after the hold.
    PauseLogic(usize),
    /// kill -9 Redis, start an empty one on the same port after the hold.
    KillRedis,
    /// PostgreSQL `stop -m immediate` (a crash), start after the hold.
    CrashPostgres,
    /// Every chunk on a process-to-process link waits this many ms.
    DelayLink(usize, u64),
    /// Close every connection on a link (client or inner) and refuse new ones.
    CutLink { client: bool, link: usize },
    /// Hold every byte on a process-to-process link (a partition).
    BlackholeLink(usize),
}

#[derive(Debug, Clone)]
pub struct Step {
    pub at: Duration,
    pub hold: Duration,
    pub fault: Fault,
}

/// Faults from 3 s on, one at a time, ending by `faults_end`: first each
/// kind once in a seeded order, then random kinds while time remains.
pub fn make(seed: u64, faults_end: Duration, inner_links: usize, client_links: usize) -> Vec<Step> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut kinds: Vec<u8> = (0..8).collect();
    kinds.shuffle(&mut rng);
    let mut steps = Vec::new();
    let mut t = Duration::from_secs(3);
    let mut i = 0usize;
    loop {
        let kind = if i < kinds.len() {
            kinds[i]
        } else {
            rng.random_range(0..8)
        };
        i += 1;
        let fault = match kind {
            0 => Fault::KillGateway(rng.random_range(0..2)),
            1 => Fault::KillLogic(rng.random_range(0..2)),
            2 => Fault::PauseLogic(rng.random_range(0..2)),
            3 => Fault::KillRedis,
            4 => Fault::CrashPostgres,
            5 => Fault::DelayLink(rng.random_range(0..inner_links), rng.random_range(20..300)),
            6 => {
                let client = rng.random_bool(0.5);
                let link = if client {
                    rng.random_range(0..client_links)
                } else {
                    rng.random_range(0..inner_links)
                };
                Fault::CutLink { client, link }
            }
            _ => Fault::BlackholeLink(rng.random_range(0..inner_links)),
        };
        let hold = Duration::from_millis(rng.random_range(1000..3500));
        if t + hold > faults_end {
            return steps;
        }
        steps.push(Step { at: t, hold, fault });
        t += hold + Duration::from_millis(rng.random_range(1500..3500));
    }
}
