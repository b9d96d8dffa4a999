//! Floods against the real binary, and the server's memory after each.
//!
//! The server is a child process (`confab serve` from this build), so
//! `/proc/<pid>/status` gives its own RSS and `/proc/<pid>/fd` its own
//! descriptors, not the test's. Every flood goes beyond a documented limit
//! (protocol.md, "Limits"): it must be refused or closed with the documented
//! code, and afterwards the server's RSS must stay under a fixed bound above
//! its warmed-up baseline and its descriptors must come back down — what a
//! flood costs is bounded by the limits, not by how long it lasts.
//!
//! Connections that must not count against each other's per-IP limit come
//! from different loopback source addresses (127.0.0.2, 127.0.0.3, …).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use confab_client::{Client, ClientError, Transport};
use confab_proto::{Encoding, Frame, ops};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::durability::free_addr;
use crate::helpers::{WAIT, error_code, mint, now_s};

/// Limits the server runs with in this test.
const PER_IP: usize = 32;
const APP_CONNECTIONS: u32 = 10;
/// Also the HTTP header timeout.
const LOGIN_TIMEOUT_SECS: u64 = 3;
const MAX_FRAME: usize = 16 * 1024;
const SEND_QUEUE: usize = 64;
/// What one flood may leave behind in the server's RSS, over the baseline
/// measured after warm-up (logins, sends, syncs). The limits bound a flood
/// to a few MiB (a slow reader's queue: 8 MiB; per-IP connections: a few
/// KiB each); the rest is allocator slack and SQLite's page cache.
const RSS_SLACK_KIB: u64 = 48 * 1024;

struct Server {
    child: Child,
    http: SocketAddr,
    tcp: SocketAddr,
    app_id: String,
    key_id: String,
    secret: String,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start() -> Server {
        let data = tempfile::tempdir().expect("tempdir");
        let (http, tcp) = (free_addr(), free_addr());
        let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
            .arg("serve")
            .env("CONFAB_DATA_DIR", data.path())
            .env("CONFAB_HTTP_ADDR", http.to_string())
            .env("CONFAB_TCP_ADDR", tcp.to_string())
            .env("CONFAB_MAX_CONNECTIONS_PER_IP", PER_IP.to_string())
            .env("CONFAB_LOGIN_TIMEOUT_SECS", LOGIN_TIMEOUT_SECS.to_string())
            .env(
                "CONFAB_HTTP_HEADER_TIMEOUT_SECS",
                LOGIN_TIMEOUT_SECS.to_string(),
            )
            .env("CONFAB_MAX_FRAME_BYTES", MAX_FRAME.to_string())
            .env("CONFAB_SEND_QUEUE", SEND_QUEUE.to_string())
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn confab");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut found = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                for key in ["app id:", "key id:", "secret key:"] {
                    if let Some(v) = line.trim().strip_prefix(key) {
                        found.push(v.trim().to_owned());
                    }
                }
                if found.len() == 3 {
                    let _ = tx.send(std::mem::take(&mut found));
                }
            }
        });
        let creds = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the first start prints the app's credentials");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(http).is_err() {
            assert!(Instant::now() < deadline, "confab serve did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            http,
            tcp,
            app_id: creds[0].clone(),
            key_id: creds[1].clone(),
            secret: creds[2].clone(),
            _data: data,
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

    async fn login(&self, user: &str) -> Result<Client, ClientError> {
        let c = Client::connect(Transport::WsJson, self.http).await?;
        c.login(&self.token(user), &format!("{user}-web"), "web")
            .await?;
        Ok(c)
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server process is alive");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/<pid>/status"))
    }

    fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .expect("the server's fds")
            .count()
    }

    /// After a flood: the server is alive, its RSS is under the bound, and
    /// the flood's descriptors are closed (polled: closes are asynchronous).
    async fn check_bounded(&self, flood: &str, baseline: &Baseline) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let fds = self.fds();
            if fds <= baseline.fds + 8 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "after {flood}: {fds} fds open, baseline {}",
                baseline.fds
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let rss = self.rss_kib();
        let peak = self.status_kib("VmHWM:");
        eprintln!(
            "after {flood}: RSS {rss} KiB (baseline {} KiB, peak so far {peak} KiB), fds {}",
            baseline.rss_kib,
            self.fds()
        );
        assert!(
            rss <= baseline.rss_kib + RSS_SLACK_KIB,
            "after {flood}: RSS {rss} KiB exceeds the baseline {} KiB + {RSS_SLACK_KIB} KiB",
            baseline.rss_kib
        );
        // And it still serves.
        let c = self.login("bystander").await.expect("bystander login");
        let pong = c
            .call(Frame {
                op: ops::PING.into(),
                ..Default::default()
            })
            .await
            .expect("ping after the flood");
        assert_eq!(pong.ok, Some(true));
        leave(c).await;
    }
}

/// Logs a client out and waits until the server closed it: a dropped
/// `Client` keeps its socket (its reader task holds it) until the server's
/// idle timeout, and would keep its place in the app's connection quota.
async fn leave(mut c: Client) {
    let _ = c
        .request(Frame {
            op: ops::LOGOUT.into(),
            ..Default::default()
        })
        .await;
    let _ = c.wait_closed(WAIT).await;
}

struct Baseline {
    rss_kib: u64,
    fds: usize,
}

/// Sets the app's connection quota (message rates lifted: the floods send
/// bursts from one user) and waits until the server applied it.
async fn set_max_connections(server: &Server, max: u32) {
    let control = crate::helpers::control_of_data_dir(server._data.path()).await;
    let me = confab_control::service::Actor::System;
    let mut settings = control
        .app(&me, &server.app_id)
        .await
        .expect("app")
        .settings;
    settings.quotas.max_connections = max;
    settings.quotas.user_messages_per_sec = 1_000_000;
    settings.quotas.app_messages_per_sec = 1_000_000;
    control
        .update_app(&me, &server.app_id, None, Some(settings), None)
        .await
        .expect("quotas");
    crate::helpers::wait_config_of(server.http, control.version().await.expect("version")).await;
}

async fn connect_from(source: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::from(source), 0))?;
    socket.connect(to).await
}

/// True when the server closed the socket (EOF or reset) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // Bytes (an error frame, an HTTP status) before the close.
            Ok(Ok(_)) => continue,
        }
    }
}

fn tcp_frame(frame: &Frame) -> Vec<u8> {
    let body = confab_proto::encode(Encoding::Proto, frame);
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

fn ws_upgrade_request(host: SocketAddr) -> String {
    format!(
        "GET /v1/connect HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: confab.v1.json\r\n\r\n"
    )
}

#[tokio::test]
async fn floods_are_refused_and_the_servers_memory_stays_bounded() {
    let server = Server::start();
    set_max_connections(&server, APP_CONNECTIONS).await;

    // Warm up every path the floods use, then take the baseline.
    {
        let a = server.login("warm-a").await.expect("login");
        let _b = server.login("warm-b").await.expect("login");
        for i in 0..50 {
            a.send_text("warm-b", &format!("w{i}"), "warm")
                .await
                .expect("send");
        }
        a.sync(0, 100).await.expect("sync");
        leave(a).await;
        leave(_b).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = Baseline {
        rss_kib: server.rss_kib(),
        fds: server.fds(),
    };
    eprintln!(
        "baseline: RSS {} KiB, fds {}",
        baseline.rss_kib, baseline.fds
    );

    // 1. Connections from one IP beyond the per-IP limit: the TCP ones over
    //    it are closed unread, a WebSocket upgrade over it gets HTTP 429.
    {
        let mut held = Vec::new();
        for _ in 0..200 {
            held.push(
                connect_from([127, 0, 0, 2], server.tcp)
                    .await
                    .expect("connect"),
            );
        }
        // Well inside the login deadline: only the ones over the limit are
        // closed.
        let closed = futures_util::future::join_all(
            held.iter_mut()
                .map(|s| closed_within(s, Duration::from_millis(1500))),
        )
        .await;
        let closed = closed.iter().filter(|c| **c).count();
        assert_eq!(
            closed,
            200 - PER_IP,
            "every connection over the per-IP limit of {PER_IP} is closed at once, the others wait for their login"
        );
        // While the 32 admitted connections wait for their login (the server
        // has accepted all 200 by now: it closed the others), an upgrade
        // from the same address is refused.
        let mut ws = connect_from([127, 0, 0, 2], server.http)
            .await
            .expect("connect");
        ws.write_all(ws_upgrade_request(server.http).as_bytes())
            .await
            .expect("write");
        let mut head = [0u8; 12];
        ws.read_exact(&mut head).await.expect("an HTTP status");
        assert_eq!(&head, b"HTTP/1.1 429", "an upgrade over the per-IP limit");
    }
    server.check_bounded("the per-IP flood", &baseline).await;

    // 2. Logins beyond the app's connection quota: quota_exceeded.
    {
        let mut ok = Vec::new();
        let mut refused = 0;
        for i in 0..(APP_CONNECTIONS + 5) {
            match server.login(&format!("crowd{i}")).await {
                Ok(c) => ok.push(c),
                Err(ClientError::Refused { code, .. }) => {
                    assert_eq!(code, "quota_exceeded");
                    refused += 1;
                }
                Err(e) => panic!("login {i}: {e}"),
            }
        }
        // The previous check's bystander may hold its place for a moment
        // after its close, hence "at least 9".
        assert!(
            (APP_CONNECTIONS as usize - 1..=APP_CONNECTIONS as usize).contains(&ok.len()),
            "{} logged in with a quota of {APP_CONNECTIONS}",
            ok.len()
        );
        assert_eq!(ok.len() + refused, APP_CONNECTIONS as usize + 5);
        for c in ok {
            leave(c).await;
        }
    }
    // The quota back up, so the crowd's places do not matter below.
    set_max_connections(&server, 1_000_000).await;
    server.check_bounded("the per-app flood", &baseline).await;

    // 3. Frames per second over the per-connection limit: rate_limited,
    //    then closed while the flood goes on.
    {
        let mut c = server.login("flooder").await.expect("login");
        let ping = confab_proto::encode(
            Encoding::Json,
            &Frame {
                op: ops::PING.into(),
                rid: Some(1),
                ..Default::default()
            },
        );
        let mut limited = false;
        // Rounds of 20, read between them: fewer than the send queue (64),
        // so the flooder is refused for its rate, not cut as a slow reader.
        'flood: for _ in 0..2000 {
            for _ in 0..20 {
                if c.send_raw(ping.clone(), false).await.is_err() {
                    break 'flood;
                }
            }
            while let Some(f) = c.next_push(Duration::from_millis(20)).await {
                limited |= f.ok == Some(false) && error_code(&f) == "rate_limited";
            }
            if c.close_reason().is_some() {
                break;
            }
        }
        let _ = c.wait_closed(Duration::from_secs(2)).await;
        assert!(limited, "excess frames are answered rate_limited");
        assert!(c.close_reason().is_some(), "a sustained flood is closed");
    }
    server.check_bounded("the frame flood", &baseline).await;

    // 4. A slow reader: logs in over raw TCP and never reads while messages
    //    pour in; it is disconnected, and nothing piles up for it.
    {
        let mut raw = connect_from([127, 0, 0, 3], server.tcp)
            .await
            .expect("connect");
        raw.write_all(&tcp_frame(&Frame {
            op: ops::LOGIN.into(),
            rid: Some(1),
            token: server.token("sloth"),
            device_id: "d".into(),
            platform: "ios".into(),
            ..Default::default()
        }))
        .await
        .expect("login");
        // The login reply proves the session is up before the flood starts.
        let mut len = [0u8; 4];
        raw.read_exact(&mut len).await.expect("login reply");
        let mut reply = vec![0u8; u32::from_be_bytes(len) as usize];
        raw.read_exact(&mut reply).await.expect("login reply");
        let reply = confab_proto::decode(Encoding::Proto, &reply).expect("a frame");
        assert_eq!(reply.ok, Some(true), "{reply:?}");
        // Four senders, each within its own frame rate (defaults: 200/s,
        // bursts of 1 000), 1 600 messages of 8 KB in all.
        let body = format!(r#"{{"type":"text","text":"{}"}}"#, "y".repeat(8000));
        let mut senders = Vec::new();
        for s in 0..4 {
            let sender = server.login(&format!("pourer{s}")).await.expect("login");
            let body = body.clone();
            senders.push(tokio::spawn(async move {
                for i in 0..400 {
                    sender
                        .send_body("sloth", &format!("c{s}-{i}"), body.clone())
                        .await
                        .expect("sends never block on a slow recipient");
                }
            }));
        }
        for s in senders {
            s.await.expect("sender");
        }
        let mut closed = false;
        for _ in 0..100 {
            if raw.write_all(&[0, 0, 0, 2, 8, 1]).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(closed, "the slow reader was disconnected");
    }
    server.check_bounded("the slow reader", &baseline).await;

    // 5. Slowloris: bytes trickled before login, on TCP (a login frame) and
    //    on HTTP (the upgrade request's headers). Each connection is closed
    //    by the login deadline / the header read timeout, however slowly it
    //    keeps trickling.
    {
        let login = tcp_frame(&Frame {
            op: ops::LOGIN.into(),
            rid: Some(1),
            token: server.token("loris"),
            device_id: "d".into(),
            platform: "ios".into(),
            ..Default::default()
        });
        let upgrade = ws_upgrade_request(server.http).into_bytes();
        let mut tasks = Vec::new();
        for i in 0..PER_IP {
            let (to, bytes) = if i % 2 == 0 {
                (server.tcp, login.clone())
            } else {
                (server.http, upgrade.clone())
            };
            tasks.push(tokio::spawn(async move {
                let mut s = connect_from([127, 0, 0, 4], to).await.expect("connect");
                let started = Instant::now();
                // One byte every 200 ms: never a whole login or header block
                // within the deadline.
                for b in bytes.iter().take(bytes.len() - 1) {
                    if s.write_all(&[*b]).await.is_err() {
                        return started.elapsed();
                    }
                    if closed_within(&mut s, Duration::from_millis(200)).await {
                        return started.elapsed();
                    }
                }
                panic!("{to}: the whole request was trickled without a close")
            }));
        }
        for t in tasks {
            let took = t.await.expect("trickler");
            assert!(
                took < Duration::from_secs(LOGIN_TIMEOUT_SECS + 8),
                "a trickling connection was held {took:?}"
            );
        }
    }
    server.check_bounded("the slowloris flood", &baseline).await;

    // 6. Oversize frames and deeply nested JSON.
    {
        // Over the limit but under the hard limit: frame_too_large, the
        // session goes on.
        let mut c = server.login("big").await.expect("login");
        let big = format!(
            r#"{{"op":"ping","rid":1,"pad":"{}"}}"#,
            "x".repeat(MAX_FRAME + 1)
        );
        c.send_raw(big.into(), false).await.expect("send");
        let f = c.next_op(ops::REPLY, WAIT).await.expect("a reply");
        assert_eq!(error_code(&f), "frame_too_large");
        // Nested 7 000 deep in an unknown field, 5 000 in a body, within the
        // frame limit: refused or skipped, never a crash.
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        for rid in 2..40u64 {
            let frame = if rid % 2 == 0 {
                format!(r#"{{"op":"ping","rid":{rid},"x":{}}}"#, deep(7_000))
            } else {
                format!(
                    r#"{{"op":"send","rid":{rid},"to":{{"kind":"user","id":"bob"}},"client_msg_id":"d{rid}","body":{{"type":"custom","data":{}}}}}"#,
                    // Within max_body_bytes (12 KiB): refused for its depth.
                    deep(5_000)
                )
            };
            c.send_raw(frame.into(), false).await.expect("send");
            let f = c.next_op(ops::REPLY, WAIT).await.expect("a reply");
            assert_eq!(f.rid, Some(rid));
            if rid % 2 == 1 {
                assert_eq!(error_code(&f), "bad_request", "a body nested 5 000 deep");
            }
        }
        // Far over the hard limit: closed unread.
        let huge = format!(r#"{{"op":"ping","pad":"{}"}}"#, "x".repeat(MAX_FRAME * 8));
        let _ = c.send_raw(huge.into(), false).await;
        assert!(c.wait_closed(WAIT).await.is_some());
        // TCP: a length prefix announcing 1 GiB is refused before any of it
        // is buffered.
        let mut raw = connect_from([127, 0, 0, 5], server.tcp)
            .await
            .expect("connect");
        raw.write_all(&(1u32 << 30).to_be_bytes())
            .await
            .expect("write");
        let _ = raw.write_all(&[0u8; 4096]).await;
        assert!(closed_within(&mut raw, WAIT).await, "a 1 GiB prefix");
    }
    server
        .check_bounded("oversize and nested frames", &baseline)
        .await;
}
