//! Typed settings for `confab serve`: flags, else `CONFAB_*` environment
//! variables, else defaults (clap applies the layers). Validated at start and
//! logged at debug level (no secrets live here).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use confab_gateway::GatewayConfig;
use confab_store::sqlite::Durability;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncMode {
    /// Survives a crash of the process (kill -9). Default.
    Normal,
    /// Also survives an OS crash or power loss (fsync on every commit).
    Full,
}

/// Where a node keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// Embedded: SQLite in the data directory; one node.
    Sqlite,
    /// Distributed: PostgreSQL (roaming store, directory) and Redis (inbox
    /// ring, route table), shared by every node of the cell; nodes deliver
    /// to each other over gRPC.
    Distributed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeSettings {
    /// Embedded data directory (SQLite database and state).
    #[arg(long, env = "CONFAB_DATA_DIR", default_value = "./confab-data")]
    pub data_dir: PathBuf,
    /// REST, console, WebSocket (/v1/connect) and metrics.
    #[arg(long, env = "CONFAB_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// Raw TCP gateway (length-prefixed protobuf frames).
    #[arg(long, env = "CONFAB_TCP_ADDR", default_value = "127.0.0.1:8081")]
    pub tcp_addr: SocketAddr,
    /// How hard a commit tries to reach the disk.
    #[arg(long, env = "CONFAB_SQLITE_SYNC", value_enum, default_value = "normal")]
    pub sqlite_sync: SyncMode,
    /// Largest frame answered with an error rather than a close, in bytes.
    #[arg(long, env = "CONFAB_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,
    /// Seconds without any frame before a connection is closed.
    #[arg(long, env = "CONFAB_IDLE_TIMEOUT_SECS", default_value_t = 90)]
    pub idle_timeout_secs: u64,
    /// Seconds a new connection has to log in.
    #[arg(long, env = "CONFAB_LOGIN_TIMEOUT_SECS", default_value_t = 10)]
    pub login_timeout_secs: u64,
    /// Frames queued per connection before it counts as a slow reader.
    #[arg(long, env = "CONFAB_SEND_QUEUE", default_value_t = 1024)]
    pub send_queue: usize,
    /// Sustained frames per second per connection.
    #[arg(long, env = "CONFAB_FRAMES_PER_SEC", default_value_t = 200)]
    pub frames_per_sec: u32,
    /// Burst of frames per connection above the sustained rate.
    #[arg(long, env = "CONFAB_FRAMES_BURST", default_value_t = 1000)]
    pub frames_burst: u32,
    /// Seconds to drain connections on shutdown.
    #[arg(long, env = "CONFAB_DRAIN_SECS", default_value_t = 5)]
    pub drain_secs: u64,
    #[arg(long, env = "CONFAB_LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
    /// sqlite (embedded) or distributed (PostgreSQL + Redis + gRPC between nodes).
    #[arg(long, env = "CONFAB_STORE", value_enum, default_value = "sqlite")]
    pub store: StoreKind,
    /// PostgreSQL URL (distributed).
    #[arg(long, env = "CONFAB_PG_URL")]
    pub pg_url: Option<String>,
    /// Most PostgreSQL connections this node opens (distributed).
    #[arg(long, env = "CONFAB_PG_MAX_CONNECTIONS", default_value_t = 16)]
    pub pg_max_connections: u32,
    /// Redis URL (distributed). With `CONFAB_REDIS_CLUSTER`, a
    /// comma-separated list of `redis://` seed nodes of a Redis Cluster.
    #[arg(long, env = "CONFAB_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Talk to a Redis Cluster (slot routing, MOVED/ASK, failover) instead of
    /// a single endpoint; `CONFAB_REDIS_URL` then lists seed nodes.
    #[arg(
        long,
        env = "CONFAB_REDIS_CLUSTER",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub redis_cluster: bool,
    /// Inbox entries kept per user in the Redis ring (distributed).
    #[arg(long, env = "CONFAB_RING_CAPACITY", default_value_t = 1000)]
    pub ring_capacity: usize,
    /// Node-to-node gRPC listener (distributed).
    #[arg(long, env = "CONFAB_GRPC_ADDR", default_value = "127.0.0.1:8082")]
    pub grpc_addr: SocketAddr,
    /// Address other nodes use to reach this one; default: the bound gRPC address.
    #[arg(long, env = "CONFAB_ADVERTISE_ADDR")]
    pub advertise_addr: Option<String>,
    /// Shared secret every gRPC call inside the cell carries; calls without it
    /// are refused. Unset: the internal ports are open (keep them private).
    #[arg(long, env = "CONFAB_CELL_SECRET", hide_env_values = true)]
    pub cell_secret: Option<String>,
    /// Logic nodes a gateway sends requests to (`confab gateway`), comma-separated.
    #[arg(long, env = "CONFAB_LOGIC_ADDRS", value_delimiter = ',')]
    pub logic_addrs: Vec<String>,
    /// Key-encryption keys for app secrets at rest: `<id>:<base64 32 bytes>`,
    /// comma-separated, current first. Embedded default: generated into
    /// `<data dir>/kek`. Required where the control plane runs distributed.
    #[arg(long, env = "CONFAB_KEK", hide_env_values = true)]
    pub kek: Option<String>,
    /// The data-plane cell this node serves.
    #[arg(long, env = "CONFAB_CELL", default_value = "default")]
    pub cell: String,
    /// The control plane's gRPC address (`http://host:port`). Unset: this
    /// node reads the control records from its own database.
    #[arg(long, env = "CONFAB_CONTROL_ADDR")]
    pub control_addr: Option<String>,
    /// Serve the web console from this directory instead of the files built
    /// into the binary (console development).
    #[arg(long, env = "CONFAB_CONSOLE_DIR")]
    pub console_dir: Option<PathBuf>,
    /// Open connections one client IP may hold on a gateway (0: no limit; use
    /// only where clients connect directly, not through an L7 proxy).
    #[arg(long, env = "CONFAB_MAX_CONNECTIONS_PER_IP", default_value_t = 0)]
    pub max_connections_per_ip: usize,
    /// Seconds a client has to send each HTTP request's headers (WebSocket
    /// upgrades included) before the connection is closed: a client that
    /// trickles them (slowloris) cannot hold connections open.
    #[arg(long, env = "CONFAB_HTTP_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub http_header_timeout_secs: u64,
    /// How often expired history is purged (each app's retention_days).
    #[arg(long, env = "CONFAB_RETENTION_INTERVAL_SECS", default_value_t = 3600)]
    pub retention_interval_secs: u64,
    /// The release label this logic node announces (gray release).
    #[arg(long, env = "CONFAB_RELEASE", default_value = "stable")]
    pub release: String,
    /// Delivery attempts of an asynchronous webhook event before it is
    /// dead-lettered.
    #[arg(long, env = "CONFAB_WEBHOOK_MAX_ATTEMPTS", default_value_t = 35)]
    pub webhook_max_attempts: u32,
    /// Age (seconds) after which an undelivered webhook event is dead-lettered.
    #[arg(long, env = "CONFAB_WEBHOOK_MAX_AGE_SECS", default_value_t = 86_400)]
    pub webhook_max_age_secs: u64,
    /// The first retry delay (ms) of a webhook event; doubles up to an hour.
    #[arg(long, env = "CONFAB_WEBHOOK_BACKOFF_MS", default_value_t = 1000)]
    pub webhook_backoff_ms: u64,
    /// Time allowed for one asynchronous webhook request (ms).
    #[arg(long, env = "CONFAB_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,
    /// Push sends in flight at once per worker (`confab serve`'s embedded
    /// worker and `confab push`).
    #[arg(long, env = "CONFAB_PUSH_CONCURRENCY", default_value_t = 64)]
    pub push_concurrency: usize,
    /// How often (milliseconds) the per-app usage counters (dashboards) are
    /// written to the store; they are also written at shutdown.
    #[arg(long, env = "CONFAB_USAGE_FLUSH_MS", default_value_t = 10_000)]
    pub usage_flush_ms: u64,
}

impl ServeSettings {
    /// Settings for tests: ephemeral ports and the given data directory.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            http_addr: "127.0.0.1:0".parse().expect("literal address"),
            tcp_addr: "127.0.0.1:0".parse().expect("literal address"),
            sqlite_sync: SyncMode::Normal,
            max_frame_bytes: 64 * 1024,
            idle_timeout_secs: 90,
            login_timeout_secs: 10,
            send_queue: 1024,
            frames_per_sec: 200,
            frames_burst: 1000,
            drain_secs: 2,
            log_format: LogFormat::Pretty,
            store: StoreKind::Sqlite,
            pg_url: None,
            pg_max_connections: 16,
            redis_url: None,
            redis_cluster: false,
            ring_capacity: 1000,
            grpc_addr: "127.0.0.1:0".parse().expect("literal address"),
            advertise_addr: None,
            logic_addrs: Vec::new(),
            cell_secret: None,
            // Every node of a test deployment must share one KEK.
            kek: Some(format!("test:{}", "A".repeat(43) + "=")),
            cell: "default".into(),
            control_addr: None,
            release: "stable".into(),
            retention_interval_secs: 3600,
            console_dir: None,
            max_connections_per_ip: 0,
            http_header_timeout_secs: 10,
            webhook_max_attempts: 35,
            webhook_max_age_secs: 86_400,
            webhook_backoff_ms: 1000,
            webhook_timeout_ms: 10_000,
            push_concurrency: 8,
            usage_flush_ms: 10_000,
        }
    }

    /// How often the usage counters are flushed (at least every 100 ms).
    pub fn usage_flush(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.usage_flush_ms.max(100))
    }

    /// The webhook dispatcher's settings.
    pub fn webhook_dispatch(&self) -> confab_webhooks::DispatchOptions {
        use std::time::Duration;
        let timeout = Duration::from_millis(self.webhook_timeout_ms.max(1));
        confab_webhooks::DispatchOptions {
            max_attempts: self.webhook_max_attempts.max(1),
            max_age: Duration::from_secs(self.webhook_max_age_secs.max(1)),
            backoff_base: Duration::from_millis(self.webhook_backoff_ms.max(1)),
            request_timeout: timeout,
            // A lease outlives the request it covers.
            lease: (timeout * 3).max(Duration::from_secs(30)),
            ..Default::default()
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_frame_bytes >= 1024,
            "max frame size must be at least 1024 bytes"
        );
        anyhow::ensure!(
            self.send_queue >= 8,
            "send queue must hold at least 8 frames"
        );
        anyhow::ensure!(
            self.frames_per_sec >= 1 && self.frames_burst >= 1,
            "frame rate and burst must be positive"
        );
        anyhow::ensure!(
            self.idle_timeout_secs >= 1 && self.login_timeout_secs >= 1,
            "timeouts must be positive"
        );
        self.redis_target()?;
        Ok(())
    }

    /// The Redis to connect to, if a URL is set (checked by `validate`).
    pub fn redis_target(&self) -> anyhow::Result<Option<confab_store::redis_store::RedisTarget>> {
        self.redis_url
            .as_deref()
            .map(|url| {
                confab_store::redis_store::RedisTarget::parse(url, self.redis_cluster)
                    .map_err(|e| anyhow::anyhow!("CONFAB_REDIS_URL: {e}"))
            })
            .transpose()
    }

    /// A copy safe to log: secrets and credentials in URLs replaced.
    pub fn redacted(&self) -> Self {
        // Each URL of a comma-separated list (Redis Cluster seeds) on its own.
        let hide_credentials = |u: &Option<String>| {
            u.as_ref().map(|u| {
                u.split(',')
                    .map(|u| match u.split_once('@') {
                        Some((scheme_and_user, host)) => {
                            let scheme = scheme_and_user.split("://").next().unwrap_or("");
                            format!("{scheme}://<redacted>@{host}")
                        }
                        None => u.to_owned(),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
        };
        Self {
            cell_secret: self.cell_secret.as_ref().map(|_| "<redacted>".to_owned()),
            kek: self.kek.as_ref().map(|_| "<redacted>".to_owned()),
            pg_url: hide_credentials(&self.pg_url),
            redis_url: hide_credentials(&self.redis_url),
            ..self.clone()
        }
    }

    pub fn gateway(&self) -> GatewayConfig {
        GatewayConfig {
            login_timeout: Duration::from_secs(self.login_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            max_frame_bytes: self.max_frame_bytes,
            send_queue: self.send_queue,
            frames_per_sec: self.frames_per_sec,
            frames_burst: self.frames_burst,
            max_connections_per_ip: self.max_connections_per_ip,
            ..GatewayConfig::default()
        }
    }

    pub fn durability(&self) -> Durability {
        match self.sqlite_sync {
            SyncMode::Normal => Durability::Process,
            SyncMode::Full => Durability::Full,
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("confab.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_redis(url: &str, cluster: bool) -> ServeSettings {
        let mut s = ServeSettings::for_tests(PathBuf::from("/nonexistent"));
        s.redis_url = Some(url.to_owned());
        s.redis_cluster = cluster;
        s
    }

    #[test]
    fn several_redis_urls_need_the_cluster_switch() {
        let seeds = "redis://:pw@a:6379,redis://:pw@b:6379";
        let err = with_redis(seeds, false).validate().expect_err("refused");
        assert!(err.to_string().contains("CONFAB_REDIS_CLUSTER"), "{err}");
        assert!(!err.to_string().contains("pw"), "no password in {err}");
        with_redis(seeds, true)
            .validate()
            .expect("a cluster's seeds");
        with_redis("redis://a:6379", false)
            .validate()
            .expect("one endpoint");
    }

    #[test]
    fn every_seed_url_is_redacted() {
        let s = with_redis("redis://:pw1@a:6379,redis://u:pw2@b:6379", true).redacted();
        let url = s.redis_url.expect("url");
        assert!(!url.contains("pw1") && !url.contains("pw2"), "{url}");
        assert!(url.contains("@a:6379") && url.contains("@b:6379"), "{url}");
    }
}
