//! Throughput of one APNs provider against the local APNs fake: many
//! concurrent sends multiplexed over one HTTP/2 connection (TLS, JWT auth,
//! JSON payload, reply mapping: the whole adapter path).
//!
//! Run: `nice cargo bench -p confab-push --bench apns`
//! Knobs: `PUSHES` (default 50 000), `CONCURRENCY` (in-flight sends,
//! default 256).

#[path = "../tests/fake/mod.rs"]
mod fake;

use std::sync::Arc;
use std::time::Instant;

use confab_push::{Credentials, Outcome, build_provider};
use fake::{Fake, TestCa, endpoints, message, reply_with};
use tokio::sync::Semaphore;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // special but we keep the run short there.
    let quick = !std::env::args().any(|a| a == "--bench");
    let pushes = if quick {
        500
    } else {
        env_usize("PUSHES", 50_000)
    };
    let concurrency = env_usize("CONCURRENCY", 256);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let ca = TestCa::new();
        let fake = Fake::start_unrecorded(&ca, |seen| {
            reply_with(
                200,
                &[("apns-id", seen.header("apns-id").unwrap_or(""))],
                serde_json::Value::Null,
            )
        })
        .await;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let creds = Credentials::Apns {
            key_p8: key.serialize_pem(),
            key_id: "ABC123DEFG".into(),
            team_id: "TEAM123456".into(),
            topic: "com.example.chat".into(),
            sandbox: false,
        };
        let provider = build_provider(&creds, &endpoints(&ca, &fake.url)).expect("provider");
        let msg = Arc::new(message(
            "0a0b0c0d0e0f00112233445566778899aabbccddeeff00112233445566778899",
        ));
        // Warm-up: opens the connection and signs the JWT.
        assert_eq!(provider.send(&msg).await, Outcome::Sent);

        let permits = Arc::new(Semaphore::new(concurrency));
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(pushes);
        for _ in 0..pushes {
            let permit = permits.clone().acquire_owned().await.expect("semaphore");
            let (p, m) = (provider.clone(), msg.clone());
            tasks.push(tokio::spawn(async move {
                let outcome = p.send(&m).await;
                drop(permit);
                outcome
            }));
        }
        let mut sent = 0usize;
        for t in tasks {
            if t.await.expect("task") == Outcome::Sent {
                sent += 1;
            }
        }
        let elapsed = started.elapsed();
        let cpu = cpu_seconds()
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        let rate = sent as f64 / elapsed.as_secs_f64();
        println!(
            "apns adapter: {sent}/{pushes} pushes sent in {:.2} s = {rate:.0} pushes/s \
             ({concurrency} in flight, {} TCP connection(s); CPU {} s for adapter + fake)",
            elapsed.as_secs_f64(),
            fake.connections(),
            cpu.map(|c| format!("{c:.2}")).unwrap_or_else(|| "?".into()),
        );
        assert_eq!(sent, pushes, "every push accepted");
        assert_eq!(fake.connections(), 1, "one HTTP/2 connection");
    });
}

/// User + system CPU time of this process (Linux `/proc/self/stat`), to
/// tell the adapter's cost from a busy machine's wall-clock noise.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
