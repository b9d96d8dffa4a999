//! A distributed cell on loopback as real processes: PostgreSQL and Redis
//! (testkit, throwaway), two `confab logic` and two `confab gateway`
//! processes, with every link a client or a process uses going through a
//! [`Proxy`] the schedule controls:
//!
//! - client → gateway `g` (WebSocket): `client-gw{g}`
//! - gateway `g` → logic `l` (gRPC, `CONFAB_LOGIC_ADDRS`): `gw{g}-logic{l}`
//! - logic → gateway `g` (gRPC deliveries, `CONFAB_ADVERTISE_ADDR`): `logic-gw{g}`

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::proxy::Proxy;

pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

/// One `confab` process we can kill, pause and restart on the same ports.
pub struct Node {
    pub name: String,
    role: &'static str,
    env: Vec<(String, String)>,
    pub http: SocketAddr,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("node log");
        let child = Command::new(env!("CARGO_BIN_EXE_confab"))
            .arg(self.role)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.name));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(self.http).is_err() {
            assert!(
                Instant::now() < deadline,
                "{} did not start (log: {})",
                self.name,
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// kill -9 and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`): a process that hangs — a GC
    /// pause, a stuck disk — without its sockets closing.
    pub fn pause(&self, stop: bool) {
        if let Some(c) = &self.child {
            let sig = if stop { "-STOP" } else { "-CONT" };
            let ok = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status();
            assert!(ok.is_ok_and(|s| s.success()), "kill {sig} {}", self.name);
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // A paused process would ignore SIGKILL only until continued; kill
        // works on stopped processes, so this always ends it.
        self.kill();
    }
}

pub struct Cell {
    pub pg: confab_testkit::PgServer,
    pub redis: confab_testkit::RedisServer,
    pub logic: Vec<Node>,
    pub gateways: Vec<Node>,
    /// client → gateway proxies, by gateway.
    pub client_links: Vec<Proxy>,
    /// Every process-to-process proxy.
    pub inner_links: Vec<Proxy>,
    pub app_id: String,
    pub key_id: String,
    pub secret: String,
    pub dir: tempfile::TempDir,
}

fn common_env(dir: &Path, pg: &str, redis: &str, kek: &str) -> Vec<(String, String)> {
    [
        ("CONFAB_DATA_DIR", dir.display().to_string()),
        ("CONFAB_STORE", "distributed".into()),
        ("CONFAB_PG_URL", pg.into()),
        ("CONFAB_REDIS_URL", redis.into()),
        ("CONFAB_KEK", kek.into()),
        ("CONFAB_DRAIN_SECS", "1".into()),
        ("CONFAB_FRAMES_PER_SEC", "100000".into()),
        ("CONFAB_FRAMES_BURST", "100000".into()),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

impl Cell {
    pub async fn start() -> Self {
        let pg = tokio::task::block_in_place(confab_testkit::PgServer::start);
        let pg_url = pg.database().await;
        let redis = tokio::task::block_in_place(confab_testkit::redis);
        let dir = tempfile::Builder::new()
            .prefix("confab-fault-")
            .tempdir()
            .expect("tempdir");

        // Bootstrap the cell (schema, default app) in-process, lift the
        // app's quotas far above the traffic, then hand over to processes.
        let boot_dir = dir.path().join("boot");
        std::fs::create_dir_all(&boot_dir).expect("boot dir");
        let mut settings = confab::settings::ServeSettings::for_tests(boot_dir.clone());
        settings.store = confab::settings::StoreKind::Distributed;
        settings.pg_url = Some(pg_url.clone());
        settings.redis_url = Some(redis.url.clone());
        let kek = settings.kek.clone().expect("test KEK");
        let boot = confab::startup::build_logic(settings)
            .await
            .expect("bootstrap logic node");
        let first = boot
            .first_run
            .clone()
            .expect("bootstrap creates the app")
            .app;
        {
            let control = &boot.control.as_ref().expect("control").control;
            let me = confab_control::service::Actor::System;
            let mut s = control.app(&me, &first.app_id).await.expect("app").settings;
            s.quotas.user_messages_per_sec = 1_000_000;
            s.quotas.app_messages_per_sec = 1_000_000;
            s.quotas.max_connections = 1_000_000;
            // The suite's groups have 5, 10 and 15 members (g0 goes up to 6,
            // g1 down to 8, g2 down to 13): the two larger ones always fan
            // out by read diffusion, the small one by write diffusion, so
            // the checks cover both, and their inbox order. None crosses
            // the threshold (the shrinking case has a documented gap).
            s.read_diffusion_threshold = 7;
            control
                .update_app(&me, &first.app_id, None, Some(s), None)
                .await
                .expect("raise quotas");
        }
        drop(boot);

        let mut logic = Vec::new();
        for l in 0..2 {
            let d = dir.path().join(format!("logic{l}"));
            std::fs::create_dir_all(&d).expect("dir");
            let (http, grpc) = (free_addr(), free_addr());
            let mut env = common_env(&d, &pg_url, &redis.url, &kek);
            env.push(("CONFAB_HTTP_ADDR".into(), http.to_string()));
            env.push(("CONFAB_TCP_ADDR".into(), free_addr().to_string()));
            env.push(("CONFAB_GRPC_ADDR".into(), grpc.to_string()));
            logic.push((
                Node {
                    name: format!("logic{l}"),
                    role: "logic",
                    env,
                    http,
                    log: dir.path().join(format!("logic{l}.log")),
                    child: None,
                },
                grpc,
            ));
        }
        let mut inner_links = Vec::new();
        let mut client_links = Vec::new();
        let mut gateways = Vec::new();
        for g in 0..2 {
            let d = dir.path().join(format!("gw{g}"));
            std::fs::create_dir_all(&d).expect("dir");
            let (http, grpc) = (free_addr(), free_addr());
            let mut addrs = Vec::new();
            for (l, (_, logic_grpc)) in logic.iter().enumerate() {
                let p = Proxy::start(format!("gw{g}-logic{l}"), *logic_grpc).await;
                addrs.push(p.addr.to_string());
                inner_links.push(p);
            }
            let back = Proxy::start(format!("logic-gw{g}"), grpc).await;
            let mut env = common_env(&d, &pg_url, &redis.url, &kek);
            env.push(("CONFAB_HTTP_ADDR".into(), http.to_string()));
            env.push(("CONFAB_TCP_ADDR".into(), free_addr().to_string()));
            env.push(("CONFAB_GRPC_ADDR".into(), grpc.to_string()));
            env.push(("CONFAB_ADVERTISE_ADDR".into(), back.addr.to_string()));
            env.push(("CONFAB_LOGIC_ADDRS".into(), addrs.join(",")));
            inner_links.push(back);
            client_links.push(Proxy::start(format!("client-gw{g}"), http).await);
            gateways.push(Node {
                name: format!("gw{g}"),
                role: "gateway",
                env,
                http,
                log: dir.path().join(format!("gw{g}.log")),
                child: None,
            });
        }
        let mut logic: Vec<Node> = logic.into_iter().map(|(n, _)| n).collect();
        tokio::task::block_in_place(|| {
            for n in logic.iter_mut().chain(gateways.iter_mut()) {
                n.spawn();
            }
        });
        Self {
            pg,
            redis,
            logic,
            gateways,
            client_links,
            inner_links,
            app_id: first.app_id,
            key_id: first.key_id,
            secret: first.secret,
            dir,
        }
    }

    pub fn token(&self, user: &str) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(self.key_id.clone());
        jsonwebtoken::encode(
            &header,
            &serde_json::json!({"sub": user, "app": self.app_id, "iat": now, "exp": now + 3600}),
            &jsonwebtoken::EncodingKey::from_secret(self.secret.as_bytes()),
        )
        .expect("encode jwt")
    }

    /// The last lines of every process's log, for a failure report.
    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for n in self.logic.iter().chain(self.gateways.iter()) {
            let text = std::fs::read_to_string(&n.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(15)..];
            out.push_str(&format!(
                "--- {} ({})\n{}\n",
                n.name,
                n.log.display(),
                tail.join("\n")
            ));
        }
        out
    }
}
