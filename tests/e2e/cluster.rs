//! A distributed cell on loopback: two nodes sharing PostgreSQL and Redis
//! (throwaway servers), delivering to each other over gRPC.

use std::time::Duration;

use confab::startup;
use confab_client::{Client, Transport};
use confab_proto::ops;

use crate::durability::{free_addr, mint_cli};
use crate::helpers::*;

pub(crate) struct Cell {
    pub(crate) a: startup::RunningApp,
    pub(crate) b: startup::RunningApp,
    app_id: String,
    key_id: String,
    pub(crate) secret: String,
    _redis: confab_testkit::RedisServer,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Cell {
    pub(crate) async fn start() -> Self {
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
        let control = &a.control.as_ref().expect("in-process control").control;
        raise_quotas(control, &first.app.app_id).await;
        for node in [&a, &b] {
            wait_config(node.config.as_ref().expect("config"), control).await;
        }
        Self {
            a,
            b,
            app_id: first.app.app_id,
            key_id: first.app.key_id,
            secret: first.app.secret,
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

    pub(crate) async fn login(
        &self,
        on_a: bool,
        user: &str,
        device: &str,
        platform: &str,
    ) -> Client {
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
async fn a_rest_send_and_revoke_on_one_node_reach_the_users_sessions_on_the_other() {
    let cell = Cell::start().await;
    let mut bob = cell.login(false, "bob", "b-phone", "android").await;
    let mut alice = cell.login(false, "alice", "a-phone", "ios").await;
    // Their routes are in Redis once the sessions register.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = crate::rest::http(
        cell.a.http_addr,
        "POST",
        "/v1/messages",
        Some(&cell.secret),
        &[],
        Some(r#"{"from_system":true,"to":{"kind":"user","id":"bob"},"body":{"type":"text","text":"via node a"}}"#),
    )
    .await;
    assert_eq!(sent.status, 201, "{sent:?}");
    let push = bob
        .next_op(ops::MESSAGE, WAIT)
        .await
        .expect("bob on b gets it");
    assert_eq!(push.msg_id, sent.body["msg_id"].as_str().unwrap());
    let revoked = crate::rest::http(
        cell.a.http_addr,
        "POST",
        "/v1/users/alice/revoke",
        Some(&cell.secret),
        &[],
        None,
    )
    .await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    let kicked = alice
        .next_op(ops::KICKED, WAIT)
        .await
        .expect("kicked across nodes");
    assert_eq!(kicked.reason, "tokens revoked");
    assert!(alice.wait_closed(WAIT).await.is_some());
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
    let all = sync_all(&bob, 0, 100).await;
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
        .env(
            "CONFAB_KEK",
            confab::settings::ServeSettings::for_tests(dir.into())
                .kek
                .expect("test KEK"),
        )
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
    raise_quotas(
        &boot.control.as_ref().expect("control").control,
        &first.app.app_id,
    )
    .await;
    drop(boot);
    let mut a = start_node(da.path(), &pg, &redis.url);
    let mut b = start_node(db.path(), &pg, &redis.url);
    let token = |user: &str| {
        let now = now_s();
        mint(
            &first.app.key_id,
            &first.app.secret,
            serde_json::json!({"sub": user, "app": first.app.app_id, "iat": now, "exp": now + 3600}),
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

/// A split cell: two logic nodes and two gateway nodes (separate services
/// talking gRPC), on shared PostgreSQL and Redis.
pub(crate) struct SplitCell {
    pub(crate) logic: Vec<Option<startup::RunningLogic>>,
    pub(crate) gateways: Vec<startup::RunningApp>,
    pub(crate) first: confab_control::model::CreatedApp,
    /// The Redis server or cluster, stopped when the cell is dropped.
    _redis: Box<dyn std::any::Any + Send + Sync>,
    _dir: tempfile::TempDir,
}

impl SplitCell {
    /// On one throwaway Redis server.
    pub(crate) async fn start() -> Self {
        let redis = confab_testkit::redis();
        let url = redis.url.clone();
        Self::start_on(&url, false, Box::new(redis)).await
    }

    /// On a throwaway three-master Redis Cluster (`CONFAB_REDIS_CLUSTER`).
    pub(crate) async fn start_on_redis_cluster() -> Self {
        let cluster = confab_testkit::redis_cluster();
        let urls = cluster.urls.clone();
        Self::start_on(&urls, true, Box::new(cluster)).await
    }

    async fn start_on(
        redis_url: &str,
        redis_cluster: bool,
        redis: Box<dyn std::any::Any + Send + Sync>,
    ) -> Self {
        let pg = confab_testkit::postgres().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = || {
            let mut s = distributed_settings(dir.path(), &pg, redis_url);
            s.redis_cluster = redis_cluster;
            s
        };
        let mut logic = Vec::new();
        for _ in 0..2 {
            let node = startup::build_logic(settings()).await.expect("logic node");
            logic.push(node.spawn());
        }
        let first = logic
            .iter()
            .find_map(|l| l.first_run.clone())
            .expect("one logic node bootstraps")
            .app;
        let control = &logic[0].control.as_ref().expect("control").control;
        raise_quotas(control, &first.app_id).await;
        for node in &logic {
            wait_config(&node.config, control).await;
        }
        let addrs: Vec<String> = logic.iter().map(|l| l.grpc_addr.to_string()).collect();
        let mut gateways = Vec::new();
        for _ in 0..2 {
            let mut settings = settings();
            settings.logic_addrs = addrs.clone();
            gateways.push(
                startup::build_gateway(settings)
                    .await
                    .expect("gateway node")
                    .spawn(),
            );
        }
        let logic = logic.into_iter().map(Some).collect();
        Self {
            logic,
            gateways,
            first,
            _redis: redis,
            _dir: dir,
        }
    }

    fn token(&self, user: &str) -> String {
        let now = now_s();
        mint(
            &self.first.key_id,
            &self.first.secret,
            serde_json::json!({"sub": user, "app": self.first.app_id, "iat": now, "exp": now + 3600}),
        )
    }

    pub(crate) async fn login(
        &self,
        gateway: usize,
        transport: Transport,
        user: &str,
        device: &str,
        platform: &str,
    ) -> Client {
        let g = &self.gateways[gateway];
        let addr = if transport == Transport::Tcp {
            g.tcp_addr
        } else {
            g.http_addr
        };
        let c = Client::connect(transport, addr).await.expect("connect");
        c.login(&self.token(user), device, platform)
            .await
            .expect("login");
        c
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_and_logic_as_separate_services_deliver_across_gateways() {
    let cell = SplitCell::start().await;
    let metrics_at = cell.logic[0].as_ref().expect("running").http_addr;
    let before = scrape_metrics(metrics_at).await;
    let alice = cell
        .login(0, Transport::WsJson, "alice", "a-phone", "ios")
        .await;
    let mut bob = cell
        .login(1, Transport::Tcp, "bob", "b-phone", "android")
        .await;
    let mut alice_web = cell
        .login(1, Transport::WsProto, "alice", "a-web", "web")
        .await;
    for i in 0..20 {
        let sent = alice
            .send_text("bob", &format!("c{i}"), &format!("m{i}"))
            .await
            .expect("send through a logic node");
        let push = bob
            .next_op(ops::MESSAGE, WAIT)
            .await
            .expect("bob gets it on the other gateway");
        assert_eq!(push.msg_id, sent.msg_id);
        assert_eq!(push.seq, sent.seq);
        let echo = alice_web
            .next_op(ops::MESSAGE, WAIT)
            .await
            .expect("alice's other device");
        assert_eq!(echo.msg_id, sent.msg_id);
    }
    // A refused login is refused through the service too.
    let c = Client::connect(Transport::WsJson, cell.gateways[0].http_addr)
        .await
        .expect("connect");
    let err = c
        .login("not-a-token", "d", "web")
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("unauthorized"), "{err}");
    // What an SRE watches for this path: the key series exist and move with
    // the traffic above (20 messages, each to two devices on other gateways).
    let scrape = scrape_metrics(metrics_at).await;
    for (series, at_least) in [
        ("confab_logic_messages_sent_total", 20.0),
        ("confab_gateway_frames_in_total", 20.0),
        ("confab_gateway_frames_out_total", 40.0),
        ("confab_gateway_delivery_latency_seconds_count", 40.0),
        ("confab_logic_store_seconds_count", 20.0),
        ("confab_cluster_delivered_total", 40.0),
    ] {
        let moved = series_sum(&scrape, series) - series_sum(&before, series);
        assert!(
            moved >= at_least,
            "{series} moved by {moved}, expected at least {at_least}"
        );
    }
    // Gauges are process-wide in this test binary and other tests' nodes set
    // them too (a fresh node writes config version 0): only their presence
    // is this test's to check, and the values of gauges it alone moves.
    for series in [
        "confab_config_version",
        "confab_db_pool_connections",
        "confab_gateway_connections",
    ] {
        assert!(
            scrape.lines().any(|l| l.starts_with(series)),
            "{series} is exported"
        );
    }
    for series in ["process_resident_memory_bytes", "process_open_fds"] {
        assert!(series_sum(&scrape, series) > 0.0, "{series} is exported");
    }
    let handled: f64 = scrape
        .lines()
        .filter(|l| {
            l.starts_with("confab_grpc_server_requests_total{")
                && l.contains("method=\"LogicService/Handle\"")
                && l.contains("status=\"ok\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        handled >= 20.0,
        "gRPC Handle calls counted: {handled}\n{scrape}"
    );
    assert!(
        scrape.contains("confab_db_pool_max_connections{backend=\"postgres\",pool=\"main\"}"),
        "PostgreSQL pool gauges exported"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_cell_on_a_redis_cluster_delivers_across_gateways() {
    let cell = SplitCell::start_on_redis_cluster().await;
    let mut alice = cell
        .login(0, Transport::WsJson, "alice", "a-phone", "ios")
        .await;
    let mut bob = cell
        .login(1, Transport::Tcp, "bob", "b-phone", "android")
        .await;
    let mut alice_web = cell
        .login(1, Transport::WsProto, "alice", "a-web", "web")
        .await;
    for i in 0..10 {
        let sent = alice
            .send_text("bob", &format!("a{i}"), &format!("from alice {i}"))
            .await
            .expect("alice sends");
        let push = bob
            .next_op(ops::MESSAGE, WAIT)
            .await
            .expect("bob gets it on the other gateway");
        assert_eq!(push.msg_id, sent.msg_id);
        let echo = alice_web
            .next_op(ops::MESSAGE, WAIT)
            .await
            .expect("alice's other device, on the other gateway");
        assert_eq!(echo.msg_id, sent.msg_id);
        let reply = bob
            .send_text("alice", &format!("b{i}"), &format!("from bob {i}"))
            .await
            .expect("bob replies");
        let got = alice
            .next_op(ops::MESSAGE, WAIT)
            .await
            .expect("alice gets the reply on the first gateway");
        assert_eq!(got.msg_id, reply.msg_id);
        let got = alice_web
            .next_op(ops::MESSAGE, WAIT)
            .await
            .expect("and on her web device");
        assert_eq!(got.msg_id, reply.msg_id);
    }
    // What the cluster holds, read through a cluster client: both users'
    // routes (on different masters' slots or not, the lookups above found
    // them) and bob's inbox ring with all twenty entries — a push that
    // crossed slots would have failed and left the ring empty.
    let target = confab_store::redis_store::RedisTarget::parse(
        &cell
            ._redis
            .downcast_ref::<confab_testkit::RedisCluster>()
            .expect("a cluster")
            .urls,
        true,
    )
    .expect("seeds");
    let conn = confab_store::redis_store::connect(&target)
        .await
        .expect("cluster client");
    let routes = confab_store::redis_store::RedisRouteTable::new(conn.clone(), 60);
    let app = confab_model::AppId::parse(&cell.first.app_id).expect("app");
    use confab_store::RouteTable;
    let alice_routes = routes
        .routes(&app, &confab_model::UserId::parse("alice").expect("user"))
        .await
        .expect("alice's routes");
    assert_eq!(alice_routes.len(), 2, "{alice_routes:?}");
    assert_ne!(
        alice_routes[0].node, alice_routes[1].node,
        "alice is on both gateways"
    );
    let mut conn = conn;
    for user in ["alice", "bob"] {
        let held: usize = redis::cmd("ZCARD")
            .arg(format!("confab:{{{}:{user}}}:inbox", cell.first.app_id))
            .query_async(&mut conn)
            .await
            .expect("zcard");
        assert_eq!(held, 20, "{user}'s ring holds every message");
    }
    // A device that missed everything catches up by sync.
    let late = cell
        .login(0, Transport::WsJson, "bob", "b-tablet", "desktop")
        .await;
    let synced = late.sync(0, 100).await.expect("sync");
    assert_eq!(
        synced
            .messages
            .iter()
            .filter_map(|m| m.inbox_seq)
            .collect::<Vec<_>>(),
        (1..=20).collect::<Vec<u64>>(),
        "bob's whole inbox, gap-free"
    );
}

/// The sum of every sample of `series` (all label sets) in a scrape.
fn series_sum(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| {
            l.strip_prefix(series)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A node's whole /metrics text.
async fn scrape_metrics(http: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(http)
        .await
        .expect("connect to /metrics");
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {http}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request /metrics");
    let mut body = String::new();
    stream
        .read_to_string(&mut body)
        .await
        .expect("read /metrics");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_a_logic_node_fails_over_without_losing_or_duplicating_messages() {
    let mut cell = SplitCell::start().await;
    let alice = cell.login(0, Transport::WsJson, "alice", "a", "ios").await;
    let bob = cell
        .login(1, Transport::WsJson, "bob", "b", "android")
        .await;
    let mut acked = Vec::new();
    for i in 0..30 {
        if i == 10 {
            // One logic node dies mid-conversation.
            if let Some(l) = cell.logic[0].take() {
                l.abort();
            }
        }
        let sent = alice
            .send_text("bob", &format!("c{i}"), &format!("m{i}"))
            .await
            .expect("sends keep working");
        acked.push(sent.msg_id);
    }
    let synced = bob
        .sync(0, 100)
        .await
        .expect("sync through the surviving logic node");
    let got: Vec<String> = synced.messages.iter().map(|m| m.msg_id.clone()).collect();
    assert_eq!(got, acked, "every acknowledged message once, in order");
    assert_eq!(
        synced
            .messages
            .iter()
            .filter_map(|m| m.inbox_seq)
            .collect::<Vec<_>>(),
        (1..=30).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_postgres_is_down_sends_fail_retryably_and_client_retries_lose_nothing() {
    let pg = confab_testkit::PgServer::start();
    let url = pg.database().await;
    let redis = confab_testkit::redis();
    let dir = tempfile::tempdir().expect("tempdir");
    let node = startup::build(distributed_settings(dir.path(), &url, &redis.url))
        .await
        .expect("node")
        .spawn();
    let first = node.first_run.clone().expect("bootstrap");
    let token = |user: &str| {
        let now = now_s();
        mint(
            &first.app.key_id,
            &first.app.secret,
            serde_json::json!({"sub": user, "app": first.app.app_id, "iat": now, "exp": now + 3600}),
        )
    };
    let alice = Client::connect(Transport::WsJson, node.http_addr)
        .await
        .expect("connect");
    alice
        .login(&token("alice"), "a", "ios")
        .await
        .expect("login");
    let bob = Client::connect(Transport::WsJson, node.http_addr)
        .await
        .expect("connect");
    bob.login(&token("bob"), "b", "android")
        .await
        .expect("login");
    for i in 0..5 {
        alice
            .send_text("bob", &format!("c{i}"), &format!("m{i}"))
            .await
            .expect("send");
    }

    pg.crash();
    match alice.send_text("bob", "c5", "m5").await {
        Err(confab_client::ClientError::Refused { code, .. }) => {
            assert_eq!(code, "unavailable", "a retryable code")
        }
        other => panic!("a send while PostgreSQL is down must fail retryably, got {other:?}"),
    }
    pg.resume();
    // The client retries with the same client_msg_id until it is accepted.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let first_ok = loop {
        match alice.send_text("bob", "c5", "m5").await {
            Ok(r) => break r,
            Err(confab_client::ClientError::Refused { code, .. }) if code == "unavailable" => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "PostgreSQL never came back"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("unexpected error while PostgreSQL restarts: {e}"),
        }
    };
    // A further retry (say the reply was lost) is the same message.
    let again = alice.send_text("bob", "c5", "m5").await.expect("retry");
    assert_eq!(
        (again.msg_id.as_str(), again.seq),
        (first_ok.msg_id.as_str(), first_ok.seq)
    );
    for i in 6..10 {
        alice
            .send_text("bob", &format!("c{i}"), &format!("m{i}"))
            .await
            .expect("send after recovery");
    }
    let synced = bob.sync(0, 100).await.expect("sync");
    let texts: Vec<String> = synced.messages.iter().map(|m| text_of(&m.body)).collect();
    assert_eq!(
        texts,
        (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>(),
        "nothing lost, nothing twice, in order"
    );
    assert_eq!(
        synced
            .messages
            .iter()
            .filter_map(|m| m.inbox_seq)
            .collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    drop(redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_redis_under_traffic_loses_nothing_and_sync_stays_gap_free() {
    let mut cell = Cell::start().await;
    let alice = cell.login(true, "alice", "a", "ios").await;
    let bob = cell.login(false, "bob", "b", "android").await;
    let mut acked = Vec::new();
    for i in 0..30 {
        if i == 10 {
            cell._redis.kill();
        }
        if i == 20 {
            cell._redis.restart();
        }
        let sent = alice
            .send_text("bob", &format!("c{i}"), &format!("m{i}"))
            .await
            .expect("sends never depend on Redis");
        acked.push(sent.msg_id);
    }
    // Whatever the ring holds after the restart, sync answers from
    // PostgreSQL where it must: complete, in order, gap-free.
    let synced = bob.sync(0, 100).await.expect("sync");
    assert_eq!(
        synced
            .messages
            .iter()
            .map(|m| m.msg_id.clone())
            .collect::<Vec<_>>(),
        acked
    );
    assert_eq!(
        synced
            .messages
            .iter()
            .filter_map(|m| m.inbox_seq)
            .collect::<Vec<_>>(),
        (1..=30).collect::<Vec<_>>()
    );
    let tail = bob.sync(25, 100).await.expect("sync of the newest");
    assert_eq!(
        tail.messages
            .iter()
            .filter_map(|m| m.inbox_seq)
            .collect::<Vec<_>>(),
        (26..=30).collect::<Vec<_>>()
    );
    // Redis came back empty: the gateways notice within seconds and register
    // their sessions again, so live pushes cross nodes again without the
    // sessions doing anything.
    let mut bob = bob;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut i = 0;
    loop {
        let sent = alice
            .send_text("bob", &format!("live{i}"), "after the restart")
            .await
            .expect("send");
        i += 1;
        match bob.next_op(ops::MESSAGE, Duration::from_millis(500)).await {
            Some(push) if push.msg_id == sent.msg_id => break,
            _ => assert!(
                std::time::Instant::now() < deadline,
                "live pushes never resumed after Redis restarted empty"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_device_reconnecting_to_another_node_kicks_its_old_session() {
    let cell = Cell::start().await;
    let mut old = cell.login(true, "alice", "phone", "ios").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _new = cell.login(false, "alice", "phone", "ios").await;
    assert!(
        old.next_op(ops::KICKED, WAIT).await.is_some(),
        "the old session of the device is kicked across nodes"
    );
}

/// Gray release on split services: two logic releases behind one gateway
/// that follows the control plane's rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gray_rules_route_a_stable_share_of_users_to_the_canary_and_move_them_live() {
    use confab_config::gray::GrayRule;
    use confab_control::service::Actor;
    let pg = confab_testkit::postgres().await;
    let redis = confab_testkit::redis();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut control_settings = distributed_settings(dir.path(), &pg, &redis.url);
    control_settings.grpc_addr = "127.0.0.1:0".parse().expect("addr");
    let control = startup::build_control(control_settings)
        .await
        .expect("control")
        .spawn();
    let first = control.first_run.clone().expect("bootstrap").app;
    let plane = control.plane.control.clone();
    raise_quotas(&plane, &first.app_id).await;

    let mut nodes = Vec::new();
    for release in ["stable", "canary"] {
        let mut s = distributed_settings(dir.path(), &pg, &redis.url);
        s.release = release.into();
        nodes.push(startup::build_logic(s).await.expect("logic").spawn());
    }
    let mut gw = distributed_settings(dir.path(), &pg, &redis.url);
    gw.logic_addrs = nodes.iter().map(|n| n.grpc_addr.to_string()).collect();
    gw.control_addr = Some(format!("http://{}", control.grpc_addr));
    let gateway = startup::build_gateway(gw).await.expect("gateway").spawn();

    let rule = |percent| GrayRule {
        rule_id: "canary-30".into(),
        release: "canary".into(),
        tenant_id: None,
        app_id: Some(first.app_id.clone()),
        percent,
        platforms: vec![],
        min_client_version: None,
        priority: 0,
    };
    plane
        .put_gray_rule(&Actor::System, rule(30))
        .await
        .expect("rule");
    wait_config(gateway.config.as_ref().expect("gateway config"), &plane).await;
    // The gateway learns the nodes' labels on start; give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let token = |user: &str| {
        let now = now_s();
        mint(
            &first.key_id,
            &first.secret,
            serde_json::json!({"sub": user, "app": first.app_id, "iat": now, "exp": now + 3600}),
        )
    };
    let expected_canary = |user: &str| confab_config::gray::bucket(&first.app_id, user) < 3000;
    let served = |i: usize| nodes[i].logic.served();
    let logins = |i: usize| nodes[i].logic.logins_served();

    // 2 000 users log in (8 at a time); each login is served by exactly one
    // node, so the counts tell where they went.
    let users: Vec<String> = (0..2000).map(|i| format!("gray{i}")).collect();
    let want_canary = users.iter().filter(|u| expected_canary(u)).count();
    assert!(
        (500..=700).contains(&want_canary),
        "{want_canary} of 2000 on the canary"
    );
    let (stable0, canary0) = (logins(0), logins(1));
    let addr = gateway.http_addr;
    for chunk in users.chunks(8) {
        let mut logins = Vec::new();
        for user in chunk {
            let t = token(user);
            logins.push(tokio::spawn(async move {
                let c = Client::connect(Transport::WsJson, addr)
                    .await
                    .expect("connect");
                c.login(&t, "d", "web").await.expect("login");
            }));
        }
        for l in logins {
            l.await.expect("join");
        }
    }
    assert_eq!(logins(1) - canary0, want_canary as u64, "canary logins");
    assert_eq!(
        logins(0) - stable0,
        (2000 - want_canary) as u64,
        "stable logins"
    );

    // The same users every time: one canary user's requests stay on the canary...
    let canary_user = users
        .iter()
        .find(|u| expected_canary(u))
        .expect("a canary user");
    let c = Client::connect(Transport::WsJson, addr)
        .await
        .expect("connect");
    c.login(&token(canary_user), "d2", "web")
        .await
        .expect("login");
    // Let the login's catch-up sync (sent by the gateway after the reply) land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = (served(0), served(1));
    for i in 0..5 {
        c.send_text("bob", &format!("g{i}"), "hi")
            .await
            .expect("send");
    }
    assert_eq!((served(0), served(1)), (before.0, before.1 + 5));

    // ...until the rule changes: then they move, on the same connection.
    plane
        .put_gray_rule(&Actor::System, rule(0))
        .await
        .expect("rule to 0%");
    wait_config(gateway.config.as_ref().expect("gateway config"), &plane).await;
    let before = (served(0), served(1));
    for i in 5..10 {
        c.send_text("bob", &format!("g{i}"), "hi")
            .await
            .expect("send after the change");
    }
    assert_eq!(
        (served(0), served(1)),
        (before.0 + 5, before.1),
        "moved to stable live"
    );
    drop(control);
}
