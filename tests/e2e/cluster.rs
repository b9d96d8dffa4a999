//! A distributed cell on loopback: two nodes sharing PostgreSQL and Redis
//! (throwaway servers), delivering to each other over gRPC.

use std::time::Duration;

use confab::startup;
use confab_client::{Client, Transport};
use confab_proto::ops;

use crate::durability::{free_addr, mint_cli};
use crate::helpers::*;

struct Cell {
    a: startup::RunningApp,
    b: startup::RunningApp,
    app_id: String,
    key_id: String,
    secret: String,
    _redis: confab_testkit::RedisServer,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Cell {
    async fn start() -> Self {
        let pg = confab_testkit::postgres().await;
        let redis = confab_testkit::redis();
        let (da, db) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        let a = startup::build(distributed_settings(da.path(), &pg, &redis.url))
            .await
            .expect("node a")
            .spawn();
        let b = startup::build(distributed_settings(db.path(), &pg, &redis.url))
            .await
            .expect("node b")
            .spawn();
        let first = a
            .first_run
            .clone()
            .expect("the first node bootstraps the cell");
        assert!(
            b.first_run.is_none(),
            "the second node finds the cell bootstrapped"
        );
        Self {
            a,
            b,
            app_id: first.app_id,
            key_id: first.key_id,
            secret: first.secret,
            _redis: redis,
            _dirs: (da, db),
        }
    }

    fn token(&self, user: &str) -> String {
        let now = now_s();
        mint(
            &self.key_id,
            &self.secret,
            serde_json::json!({"sub": user, "app": self.app_id, "iat": now, "exp": now + 3600}),
        )
    }

    async fn login(&self, on_a: bool, user: &str, device: &str, platform: &str) -> Client {
        let node = if on_a { &self.a } else { &self.b };
        let c = Client::connect(Transport::WsJson, node.http_addr)
            .await
            .expect("connect");
        c.login(&self.token(user), device, platform)
            .await
            .expect("login");
        c
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_crosses_nodes_to_every_device_of_both_users() {
    let cell = Cell::start().await;
    let alice = cell.login(true, "alice", "a-phone", "ios").await;
    let mut alice_web = cell.login(false, "alice", "a-web", "web").await;
    let mut bob = cell.login(false, "bob", "b-phone", "android").await;
    let mut bob_desk = cell.login(true, "bob", "b-desk", "desktop").await;
    let sent = alice
        .send_text("bob", "c1", "across nodes")
        .await
        .expect("send");
    for (who, c) in [
        ("bob on b", &mut bob),
        ("bob on a", &mut bob_desk),
        ("alice's web on b", &mut alice_web),
    ] {
        let push = c
            .next_op(ops::MESSAGE, WAIT)
            .await
            .unwrap_or_else(|| panic!("{who} gets it"));
        assert_eq!(push.msg_id, sent.msg_id, "{who}");
    }
    // Read receipts cross nodes too.
    let read = confab_proto::Frame {
        op: ops::READ.into(),
        conv_id: "p2p:alice:bob".into(),
        seq: sent.seq,
        ..Default::default()
    };
    bob.call(read).await.expect("read");
    let mut alice = alice;
    assert!(
        alice.next_op(ops::RECEIPT, WAIT).await.is_some(),
        "receipt from the other node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_on_one_node_kicks_the_same_platform_on_the_other() {
    let cell = Cell::start().await;
    let mut old = cell.login(true, "alice", "phone-1", "ios").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _new = cell.login(false, "alice", "phone-2", "ios").await;
    let kicked = old
        .next_op(ops::KICKED, WAIT)
        .await
        .expect("kicked across nodes");
    assert!(!kicked.reason.is_empty());
    assert!(old.wait_closed(WAIT).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_on_both_nodes_keep_the_recipients_inbox_gap_free() {
    let cell = Cell::start().await;
    let mut tasks = Vec::new();
    for s in 0..6 {
        let c = cell.login(s % 2 == 0, &format!("s{s}"), "d", "web").await;
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                c.send_text("bob", &format!("{s}-{i}"), &format!("{s}-{i}"))
                    .await
                    .expect("send");
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender");
    }
    let bob = cell.login(false, "bob", "b", "ios").await;
    let mut all = Vec::new();
    let mut since = 0;
    loop {
        let page = bob.sync(since, 100).await.expect("sync");
        all.extend(page.messages.clone());
        since = page
            .messages
            .last()
            .and_then(|m| m.inbox_seq)
            .unwrap_or(since);
        if page.has_more != Some(true) {
            break;
        }
    }
    assert_eq!(
        all.iter().filter_map(|m| m.inbox_seq).collect::<Vec<_>>(),
        (1..=300).collect::<Vec<_>>()
    );
    for s in 0..6 {
        let seqs: Vec<u64> = all
            .iter()
            .filter(|m| m.from == format!("s{s}"))
            .map(|m| m.seq)
            .collect();
        assert_eq!(seqs, (1..=50).collect::<Vec<_>>(), "order of s{s}");
    }
}

/// Starts `confab serve` as a distributed node process.
fn start_node(dir: &std::path::Path, pg: &str, redis: &str) -> crate::durability::Server {
    let (http, tcp, grpc) = (free_addr(), free_addr(), free_addr());
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .arg("serve")
        .env("CONFAB_DATA_DIR", dir)
        .env("CONFAB_HTTP_ADDR", http.to_string())
        .env("CONFAB_TCP_ADDR", tcp.to_string())
        .env("CONFAB_GRPC_ADDR", grpc.to_string())
        .env("CONFAB_STORE", "distributed")
        .env("CONFAB_PG_URL", pg)
        .env("CONFAB_REDIS_URL", redis)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn a node");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(http).is_err() {
        assert!(std::time::Instant::now() < deadline, "node did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    crate::durability::Server {
        child,
        http,
        tcp,
        app_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_node_with_sigkill_loses_no_acknowledged_message() {
    let pg = confab_testkit::postgres().await;
    let redis = confab_testkit::redis();
    // Bootstrap the cell's app through the CLI-independent path: a first node.
    let (da, db) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let boot = startup::build(distributed_settings(da.path(), &pg, &redis.url))
        .await
        .expect("bootstrap");
    let first = boot.first_run.clone().expect("bootstrap creates the app");
    drop(boot);
    let mut a = start_node(da.path(), &pg, &redis.url);
    let mut b = start_node(db.path(), &pg, &redis.url);
    let token = |user: &str| {
        let now = now_s();
        mint(
            &first.key_id,
            &first.secret,
            serde_json::json!({"sub": user, "app": first.app_id, "iat": now, "exp": now + 3600}),
        )
    };
    let alice = std::sync::Arc::new(
        Client::connect(Transport::WsJson, a.http)
            .await
            .expect("connect"),
    );
    alice
        .login(&token("alice"), "a", "ios")
        .await
        .expect("login");
    let mut bob = Client::connect(Transport::Tcp, b.tcp)
        .await
        .expect("connect");
    bob.login(&token("bob"), "b", "android")
        .await
        .expect("login");

    let mut sends = Vec::new();
    for i in 0..100 {
        let a = alice.clone();
        sends.push(tokio::spawn(async move {
            a.send_text("bob", &format!("c{i}"), &format!("m{i}")).await
        }));
    }
    let mut acked = Vec::new();
    for s in sends {
        acked.push(s.await.expect("join").expect("acknowledged").msg_id);
    }
    a.child.kill().expect("kill -9 node a");
    a.child.wait().expect("reap");

    // Alice reconnects to the surviving node and goes on.
    let alice = Client::connect(Transport::WsJson, b.http)
        .await
        .expect("reconnect to node b");
    alice
        .login(&token("alice"), "a", "ios")
        .await
        .expect("login");
    let after = alice
        .send_text("bob", "after", "after the crash")
        .await
        .expect("send after the crash");
    acked.push(after.msg_id.clone());

    // Bob: live pushes plus a sync from his last inbox_seq give every
    // acknowledged message exactly once, gap-free.
    let mut seen = std::collections::HashSet::new();
    let mut last = 0;
    while let Some(p) = bob.next_op(ops::MESSAGE, Duration::from_millis(500)).await {
        seen.insert(p.msg_id.clone());
        last = last.max(p.inbox_seq.unwrap_or(0));
    }
    let synced = bob.sync(0, 500).await.expect("sync");
    let inbox: Vec<u64> = synced.messages.iter().filter_map(|m| m.inbox_seq).collect();
    assert_eq!(
        inbox,
        (1..=101).collect::<Vec<_>>(),
        "gap-free inbox after the crash"
    );
    let mut stored: Vec<String> = synced.messages.iter().map(|m| m.msg_id.clone()).collect();
    stored.sort();
    acked.sort();
    assert_eq!(stored, acked, "every acknowledged message, once");
    assert!(
        seen.contains(&after.msg_id),
        "live delivery continues on the surviving node"
    );
    b.child.kill().ok();
    b.child.wait().ok();
    let _ = (mint_cli, last);
}
