//! Real servers for tests.
//!
//! [`postgres`] gives each test its own fresh database on a PostgreSQL cluster
//! that this test process started (once) with `initdb` + `pg_ctl` in a temp
//! directory on a free port — or on the server `CONFAB_TEST_PG_URL` names (a
//! superuser URL; the test creates and uses only databases it made).
//! [`redis`] starts a `redis-server` per call (free port, no persistence) or
//! uses `CONFAB_TEST_REDIS_URL` (then each caller gets its own logical DB
//! number, and the caller must only touch keys it made). [`redis_cluster`]
//! starts a three-master Redis Cluster per call, or uses the one
//! `CONFAB_TEST_REDIS_CLUSTER_URLS` names.
//!
//! Servers this process starts are stopped by a watchdog when the process
//! exits, even if it is killed, so test runs leave nothing behind. If the
//! binaries are missing, these functions panic with what to install: CI must
//! fail, never skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn find_binary(name: &str) -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect())
        .unwrap_or_default();
    if let Ok(dirs) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = dirs
            .filter_map(|d| d.ok())
            .map(|d| d.path().join("bin").join(name))
            .collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("`{name}` not found: install PostgreSQL and Redis (Debian: apt-get install postgresql redis-server), or set CONFAB_TEST_PG_URL / CONFAB_TEST_REDIS_URL")
    })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe extern "C" {
        fn geteuid() -> u32;
    }
    unsafe { geteuid() == 0 }
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root
/// (PostgreSQL refuses to run as root).
fn pg_command(bin: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

/// Starts a detached watchdog that runs `cleanup` (a shell command) once this
/// process has exited.
fn watchdog(cleanup: &str) {
    let script = format!(
        "while kill -0 {} 2>/dev/null; do sleep 0.5; done; {cleanup}",
        std::process::id()
    );
    // setsid: its own session, so that killing this process's group (a test
    // runner timing out) does not take the watchdog with it.
    let _ = Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct PgCluster {
    /// Superuser URL without a database name.
    base_url: String,
    _server: Option<PgServer>,
}

fn start_cluster() -> PgCluster {
    if let Ok(url) = std::env::var("CONFAB_TEST_PG_URL") {
        // The URL names a database (`postgres://user@host:port/db`); tests
        // create their own databases next to it.
        let base = url
            .rsplit_once('/')
            .map(|(b, _)| b.to_owned())
            .unwrap_or(url);
        return PgCluster {
            base_url: base,
            _server: None,
        };
    }
    let server = PgServer::start();
    PgCluster {
        base_url: server.base_url.clone(),
        _server: Some(server),
    }
}

/// A PostgreSQL server of this process's own (initdb + pg_ctl in a temp
/// directory), which a test may crash and resume (fault tests).
pub struct PgServer {
    /// Superuser URL without a database name.
    pub base_url: String,
    pub port: u16,
    pg_ctl: PathBuf,
    data: PathBuf,
    dir: tempfile::TempDir,
}

impl PgServer {
    /// initdb + start on a free port. Stopped by a watchdog when the test
    /// process exits.
    pub fn start() -> Self {
        let initdb = find_binary("initdb");
        let pg_ctl = find_binary("pg_ctl");
        let dir = tempfile::Builder::new()
            .prefix("confab-pg-")
            .tempdir()
            .expect("temp dir");
        let data = dir.path().join("data");
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status();
            assert!(
                ok.is_ok_and(|s| s.success()),
                "chown of the PostgreSQL temp dir failed"
            );
        }
        let out = pg_command(&initdb)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "confab",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let server = Self {
            base_url: format!("postgres://confab@127.0.0.1:{port}"),
            port,
            pg_ctl,
            data,
            dir,
        };
        let runas = if is_root() {
            "runuser -u postgres -- "
        } else {
            ""
        };
        watchdog(&format!(
            "{runas}{} -D {} -m immediate stop; rm -rf {}",
            server.pg_ctl.display(),
            server.data.display(),
            server.dir.path().display()
        ));
        server.resume();
        server
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`: like a crash).
    pub fn crash(&self) {
        let _ = pg_command(&self.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    /// Starts the (stopped) server again on the same port and data.
    pub fn resume(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=128MB",
            self.port,
            self.dir.path().display()
        );
        let out = pg_command(&self.pg_ctl)
            .arg("-D")
            .arg(&self.data)
            .args(["-o", &opts, "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "start"])
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        wait_for_port(self.port, "PostgreSQL");
    }

    /// Creates a fresh database and returns its URL.
    pub async fn database(&self) -> String {
        create_database(&self.base_url).await
    }
}

async fn create_database(base: &str) -> String {
    let name = format!(
        "confab_test_{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    let mut admin = connect_admin(base).await;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    format!("{base}/{name}")
}

/// A fresh, empty database for one test; returns its URL.
pub async fn postgres() -> String {
    static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
    let base = CLUSTER.get_or_init(start_cluster).base_url.clone();
    create_database(&base).await
}

async fn connect_admin(base: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match sqlx::PgConnection::connect(&format!("{base}/postgres")).await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => {
                panic!("cannot connect to PostgreSQL at {base}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A Redis server for one test. Dropping it stops a server we started.
pub struct RedisServer {
    pub url: String,
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Kills the server (SIGKILL) — for fault tests; [`RedisServer::restart`] brings it back.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts a new empty server on the same port (after [`RedisServer::kill`]).
    pub fn restart(&mut self) {
        self.kill();
        self.child = Some(spawn_redis(self.port));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_redis(port: u16) -> Child {
    let bin = find_binary("redis-server");
    let child = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    watchdog(&format!("kill -9 {} 2>/dev/null", child.id()));
    wait_for_port(port, "redis-server");
    child
}

/// A Redis server for one test.
pub fn redis() -> RedisServer {
    if let Ok(url) = std::env::var("CONFAB_TEST_REDIS_URL") {
        static NEXT_DB: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let db = NEXT_DB.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 16;
        // The URL names a server without a database number: `redis://host:port`.
        return RedisServer {
            url: format!("{}/{db}", url.trim_end_matches('/')),
            port: 0,
            child: None,
        };
    }
    let port = free_port();
    let child = spawn_redis(port);
    RedisServer {
        url: format!("redis://127.0.0.1:{port}/"),
        port,
        child: Some(child),
    }
}

/// A throwaway Redis Cluster: three masters, no replicas, every slot
/// assigned. Dropping it stops the servers this process started.
pub struct RedisCluster {
    /// Comma-separated `redis://` seed URLs (`CONFAB_REDIS_URL` with
    /// `CONFAB_REDIS_CLUSTER=true`).
    pub urls: String,
    /// The masters' ports (empty for an external cluster).
    pub ports: Vec<u16>,
    children: Vec<Child>,
    _dir: Option<tempfile::TempDir>,
}

impl RedisCluster {
    /// The seed URLs, one per node.
    pub fn seeds(&self) -> Vec<String> {
        self.urls.split(',').map(str::to_owned).collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Answers of `redis-cli -p <port> <args…>`, or `None` if it could not run.
fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new(find_binary("redis-cli"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A Redis Cluster of three masters for one test (`redis-server
/// --cluster-enabled yes` ×3 on free ports, joined with `redis-cli --cluster
/// create`), ready when every node reports `cluster_state:ok` and knows all
/// three masters. Or the cluster `CONFAB_TEST_REDIS_CLUSTER_URLS` names
/// (comma-separated seeds): shared, so callers must write only keys of their
/// own (the store tests give each store its own key prefix).
pub fn redis_cluster() -> RedisCluster {
    if let Ok(urls) = std::env::var("CONFAB_TEST_REDIS_CLUSTER_URLS") {
        return RedisCluster {
            urls,
            ports: Vec::new(),
            children: Vec::new(),
            _dir: None,
        };
    }
    let bin = find_binary("redis-server");
    // redis-cli ships with redis-server; find it before starting anything.
    find_binary("redis-cli");
    let dir = tempfile::Builder::new()
        .prefix("confab-redis-cluster-")
        .tempdir()
        .expect("temp dir");
    let mut ports = Vec::new();
    let mut children = Vec::new();
    for _ in 0..3 {
        // The cluster bus listens on port + 10000: both must be free.
        let port = loop {
            let p = free_port();
            if p < 55535 && TcpListener::bind(("127.0.0.1", p + 10000)).is_ok() {
                break p;
            }
        };
        let child = Command::new(&bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--cluster-enabled",
                "yes",
                "--cluster-node-timeout",
                "2000",
            ])
            .arg("--cluster-config-file")
            .arg(dir.path().join(format!("nodes-{port}.conf")))
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        watchdog(&format!("kill -9 {} 2>/dev/null", child.id()));
        ports.push(port);
        children.push(child);
    }
    let cluster = RedisCluster {
        urls: ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(","),
        ports: ports.clone(),
        children,
        _dir: Some(dir),
    };
    for &p in &ports {
        wait_for_port(p, "redis-server (cluster node)");
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let out = Command::new(find_binary("redis-cli"))
        .args(["--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli --cluster create");
    assert!(
        out.status.success(),
        "redis-cli --cluster create failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Every node must agree before a client's first CLUSTER SLOTS: until
    // gossip converges a node may still answer with a partial map.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = ports.iter().all(|&p| {
            let info = redis_cli(p, &["cluster", "info"]).unwrap_or_default();
            info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3")
        });
        if ready {
            return cluster;
        }
        assert!(
            Instant::now() < deadline,
            "the Redis Cluster on ports {ports:?} did not reach cluster_state:ok"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
