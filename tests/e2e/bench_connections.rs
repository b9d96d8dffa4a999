//! `confab bench idle` and `confab bench login-storm` against the real
//! binary: they hold/log in what they say, and read the server's RSS and
//! file descriptors from /proc.

use crate::durability::{cli, free_addr, start};

fn bench_json(data: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let out = cli(data, args);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bench JSON: {e}: {out}"))
}

#[tokio::test]
async fn idle_and_login_storm_report_what_the_server_pays_per_connection() {
    let data = tempfile::tempdir().expect("tempdir");
    let (http, tcp) = (free_addr(), free_addr());
    let mut server = start(data.path(), http, tcp);
    let pid = server.child.id().to_string();
    let http = http.to_string();

    let idle = bench_json(
        data.path(),
        &[
            "bench",
            "idle",
            "--json",
            "--http",
            &http,
            "--connections",
            "200",
            "--source-ips",
            "2",
            "--server-pid",
            &pid,
            "--hold",
            "1",
        ],
    );
    assert_eq!(idle["scenario"], "idle");
    assert_eq!(idle["connected"], 200, "{idle}");
    assert_eq!(idle["failed"], 0, "{idle}");
    // One socket per connection on the server, give or take its own churn.
    let fds = idle["server_fds_per_connection"]
        .as_f64()
        .expect("fds per connection");
    assert!((0.9..=1.2).contains(&fds), "{idle}");
    assert!(
        idle["server_rss_after_bytes"].as_u64().expect("rss") > 0,
        "{idle}"
    );
    assert!(
        idle["server_rss_per_connection_bytes"].is_number(),
        "{idle}"
    );

    let storm = bench_json(
        data.path(),
        &[
            "bench",
            "login-storm",
            "--json",
            "--http",
            &http,
            "--connections",
            "300",
            "--concurrency",
            "32",
        ],
    );
    assert_eq!(storm["scenario"], "login-storm");
    assert_eq!(storm["ok"], 300, "{storm}");
    assert!(
        storm["logins_per_sec"].as_f64().expect("rate") > 0.0,
        "{storm}"
    );
    assert!(
        storm["login_latency_ms"]["p99"].as_f64().expect("p99") > 0.0,
        "{storm}"
    );

    server.child.kill().expect("stop server");
    server.child.wait().expect("reap");
}
