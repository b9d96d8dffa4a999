//! Durability with the real binary: a `send` acknowledged just before the
//! process is killed with SIGKILL is there after the restart and is
//! delivered by sync.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use confab_client::{Client, Transport};

pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

pub struct Server {
    pub child: Child,
    pub http: SocketAddr,
    pub tcp: SocketAddr,
    /// From the first start's banner.
    pub app_id: Option<String>,
}

/// Starts `confab serve` on a data directory and waits until it is ready.
pub fn start(data_dir: &Path, http: SocketAddr, tcp: SocketAddr) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
        .arg("serve")
        .env("CONFAB_DATA_DIR", data_dir)
        .env("CONFAB_HTTP_ADDR", http.to_string())
        .env("CONFAB_TCP_ADDR", tcp.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn confab");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut app_id = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(v) = line.trim().strip_prefix("app id:") {
                app_id = Some(v.trim().to_owned());
                let _ = tx.send(app_id.clone());
            }
        }
        let _ = tx.send(app_id);
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(http).is_err() {
        assert!(Instant::now() < deadline, "confab serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let app_id = rx.recv_timeout(Duration::from_millis(500)).ok().flatten();
    Server {
        child,
        http,
        tcp,
        app_id,
    }
}

/// Runs a `confab` CLI command and returns its stdout (it must succeed).
pub fn cli(data_dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(args)
        .env("CONFAB_DATA_DIR", data_dir)
        .output()
        .expect("run confab");
    assert!(
        out.status.success(),
        "confab {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

pub fn mint_cli(data_dir: &Path, app_id: &str, user: &str) -> String {
    cli(
        data_dir,
        &["token", "mint", "--app", app_id, "--user", user],
    )
    .trim()
    .to_owned()
}

#[tokio::test]
async fn an_acknowledged_send_survives_kill_9_and_is_delivered_by_sync() {
    let data = tempfile::tempdir().expect("tempdir");
    let (http, tcp) = (free_addr(), free_addr());
    let mut server = start(data.path(), http, tcp);
    let app_id = server
        .app_id
        .clone()
        .expect("the first start prints the app id");
    let control = crate::helpers::control_of_data_dir(data.path()).await;
    crate::helpers::raise_quotas(&control, &app_id).await;
    crate::helpers::wait_config_of(http, control.version().await.expect("version")).await;
    let alice = Client::connect(Transport::WsJson, http)
        .await
        .expect("connect");
    alice
        .login(&mint_cli(data.path(), &app_id, "alice"), "a", "ios")
        .await
        .expect("login");

    // Concurrent sends, so several share a commit; kill as soon as the last
    // reply arrives.
    let alice = std::sync::Arc::new(alice);
    let mut sends = Vec::new();
    for i in 0..50 {
        let a = alice.clone();
        sends.push(tokio::spawn(async move {
            a.send_text("bob", &format!("c{i}"), &format!("m{i}")).await
        }));
    }
    let mut acked = Vec::new();
    for s in sends {
        acked.push(s.await.expect("join").expect("send acknowledged").msg_id);
    }
    server.child.kill().expect("kill -9");
    server.child.wait().expect("reap");
    drop(alice);

    let mut server = start(data.path(), http, tcp);
    assert_eq!(
        server.app_id, None,
        "credentials are printed on the first start only"
    );
    let bob = Client::connect(Transport::Tcp, tcp).await.expect("connect");
    bob.login(&mint_cli(data.path(), &app_id, "bob"), "b", "android")
        .await
        .expect("login");
    let synced = bob.sync(0, 500).await.expect("sync");
    let mut got: Vec<String> = synced.messages.iter().map(|m| m.msg_id.clone()).collect();
    got.sort();
    acked.sort();
    assert_eq!(got, acked, "every acknowledged message survived");
    let inbox: Vec<u64> = synced.messages.iter().filter_map(|m| m.inbox_seq).collect();
    assert_eq!(
        inbox,
        (1..=50).collect::<Vec<_>>(),
        "gap-free after the crash"
    );

    // And sending goes on with the next seq, no reuse after the restart.
    let alice = Client::connect(Transport::WsJson, http)
        .await
        .expect("connect");
    alice
        .login(&mint_cli(data.path(), &app_id, "alice"), "a", "ios")
        .await
        .expect("login");
    let next = alice
        .send_text("bob", "after", "after restart")
        .await
        .expect("send");
    assert_eq!(next.seq, Some(51));
    server.child.kill().ok();
    server.child.wait().ok();
}
