//! Test harness: a fresh server per test (own data directory, port 0), token
//! minting with any JWT library, and logged-in clients.

use std::net::SocketAddr;
use std::time::Duration;

use confab::settings::ServeSettings;
use confab::startup::{self, RunningApp};
use confab_client::{Client, Transport};
use serde_json::json;

pub const WAIT: Duration = Duration::from_secs(5);
pub const QUIET: Duration = Duration::from_millis(300);
pub const ALL_TRANSPORTS: [Transport; 3] = [Transport::WsJson, Transport::WsProto, Transport::Tcp];

pub struct TestServer {
    pub app: RunningApp,
    pub app_id: String,
    pub key_id: String,
    pub secret: String,
    pub dir: tempfile::TempDir,
    /// The Redis server of a distributed test server.
    pub redis: Option<confab_testkit::RedisServer>,
    /// The logic node behind `app` when the suite runs on split services.
    pub logic: Option<startup::RunningLogic>,
}

/// Which deployment the suite runs on: `CONFAB_E2E_STORE=distributed` runs
/// every end-to-end test on PostgreSQL + Redis (throwaway servers), and
/// `CONFAB_E2E_STORE=split` on a `confab logic` node behind a
/// `confab gateway` node (every request over gRPC) on the same.
pub fn distributed_suite() -> bool {
    std::env::var("CONFAB_E2E_STORE").is_ok_and(|v| v == "distributed" || v == "split")
}

pub fn split_suite() -> bool {
    std::env::var("CONFAB_E2E_STORE").is_ok_and(|v| v == "split")
}

/// Settings for a node of a distributed cell on the given servers.
pub fn distributed_settings(dir: &std::path::Path, pg_url: &str, redis_url: &str) -> ServeSettings {
    let mut settings = ServeSettings::for_tests(dir.to_path_buf());
    settings.store = confab::settings::StoreKind::Distributed;
    settings.pg_url = Some(pg_url.to_owned());
    settings.redis_url = Some(redis_url.to_owned());
    settings
}

/// Lifts the app's message-rate and connection quotas far above what a test
/// sends (api.md's defaults — 20 messages per second per user — are what the
/// quota tests check; the other tests send bursts from one user).
pub async fn raise_quotas(control: &confab_control::service::Control, app_id: &str) {
    let me = confab_control::service::Actor::System;
    let mut settings = control.app(&me, app_id).await.expect("app").settings;
    settings.quotas.user_messages_per_sec = 1_000_000;
    settings.quotas.app_messages_per_sec = 1_000_000;
    settings.quotas.max_connections = 1_000_000;
    control
        .update_app(&me, app_id, None, Some(settings), None)
        .await
        .expect("raise quotas");
}

/// Waits until a data-plane node's config has caught up with `control`.
pub async fn wait_config(
    view: &confab_config::ConfigView,
    control: &confab_control::service::Control,
) {
    let want = control.version().await.expect("control version");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while view.current().version() < want {
        assert!(
            std::time::Instant::now() < deadline,
            "config version {want} never applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A control plane on an embedded server's data directory (as the CLI opens
/// it, also while the server runs).
pub async fn control_of_data_dir(dir: &std::path::Path) -> confab_control::service::Control {
    let mut settings = ServeSettings::for_tests(dir.to_path_buf());
    settings.kek = None;
    let stores = startup::open_stores(&settings).await.expect("stores");
    confab_control::service::Control::new(
        stores.control,
        std::sync::Arc::new(startup::keyring(&settings).expect("keyring")),
    )
}

/// A node's `confab_config_version` gauge, read from its /metrics.
pub async fn config_version_of(http: SocketAddr) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(http).await else {
        return 0;
    };
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {http}\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return 0;
    }
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body).await;
    body.lines()
        .find_map(|l| l.strip_prefix("confab_config_version "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0)
}

/// Waits until a server process applied the control version `want`.
pub async fn wait_config_of(http: SocketAddr, want: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while config_version_of(http).await < want {
        assert!(
            std::time::Instant::now() < deadline,
            "config version {want} never applied at {http}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut ServeSettings)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut settings, redis) = if distributed_suite() {
            let pg = confab_testkit::postgres().await;
            let redis = confab_testkit::redis();
            (
                distributed_settings(dir.path(), &pg, &redis.url),
                Some(redis),
            )
        } else {
            (ServeSettings::for_tests(dir.path().to_path_buf()), None)
        };
        tweak(&mut settings);
        let mut logic = None;
        let app = if split_suite() {
            let node = startup::build_logic(settings.clone())
                .await
                .expect("logic node")
                .spawn();
            settings.logic_addrs = vec![node.grpc_addr.to_string()];
            logic = Some(node);
            startup::build_gateway(settings)
                .await
                .expect("gateway node")
                .spawn()
        } else {
            startup::build(settings)
                .await
                .expect("build server")
                .spawn()
        };
        let first = app
            .first_run
            .clone()
            .or_else(|| logic.as_ref().and_then(|l| l.first_run.clone()))
            .expect("first start creates the default app");
        let server = Self {
            app_id: first.app.app_id,
            key_id: first.app.key_id,
            secret: first.app.secret,
            app,
            dir,
            redis,
            logic,
        };
        raise_quotas(server.control(), &server.app_id).await;
        server.config_applied().await;
        server
    }

    /// The server's stores (the logic node's on split services).
    pub fn stores(&self) -> &confab_store::Stores {
        match &self.logic {
            Some(l) => &l.stores,
            None => self
                .app
                .stores
                .as_ref()
                .expect("an all-in-one server has stores"),
        }
    }

    /// The in-process control plane (the logic node's on split services).
    pub fn control(&self) -> &confab_control::service::Control {
        let plane = match &self.logic {
            Some(l) => l.control.as_ref(),
            None => self.app.control.as_ref(),
        };
        &plane
            .expect("the server runs its control plane in-process")
            .control
    }

    /// Waits until every change made through [`Self::control`] so far has
    /// reached the data plane's config.
    pub async fn config_applied(&self) {
        let want = self.control().version().await.expect("control version");
        let view = match &self.logic {
            Some(l) => l.config.clone(),
            None => self
                .app
                .config
                .clone()
                .expect("a server with logic has a config"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while view.current().version() < want {
            assert!(
                std::time::Instant::now() < deadline,
                "config version {want} never applied"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Changes the app's settings through the control plane and waits until
    /// the data plane applies them.
    pub async fn update_settings(&self, change: impl FnOnce(&mut confab_model::AppSettings)) {
        let me = confab_control::service::Actor::System;
        let control = self.control();
        let mut settings = control.app(&me, &self.app_id).await.expect("app").settings;
        change(&mut settings);
        control
            .update_app(&me, &self.app_id, None, Some(settings), None)
            .await
            .expect("update settings");
        self.config_applied().await;
    }

    pub fn addr(&self, transport: Transport) -> SocketAddr {
        match transport {
            Transport::Tcp => self.app.tcp_addr,
            _ => self.app.http_addr,
        }
    }

    /// A token for `user`, minted the way a tenant backend would: any JWT
    /// library, the app's key id and secret.
    pub fn token(&self, user: &str) -> String {
        let now = now_s();
        mint(
            &self.key_id,
            &self.secret,
            json!({"sub": user, "app": self.app_id, "iat": now, "exp": now + 3600}),
        )
    }

    pub async fn connect(&self, transport: Transport) -> Client {
        Client::connect(transport, self.addr(transport))
            .await
            .expect("connect")
    }

    pub async fn login(
        &self,
        transport: Transport,
        user: &str,
        device: &str,
        platform: &str,
    ) -> Client {
        let c = self.connect(transport).await;
        c.login(&self.token(user), device, platform)
            .await
            .expect("login");
        c
    }

    /// Logged in over WebSocket JSON as `user` on a web device.
    pub async fn user(&self, user: &str) -> Client {
        self.login(Transport::WsJson, user, &format!("{user}-web"), "web")
            .await
    }
}

pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

pub fn mint(kid: &str, secret: &str, claims: serde_json::Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode jwt")
}

/// The text of a message frame's body.
pub fn text_of(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).expect("body is JSON")["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

pub fn error_code(reply: &confab_proto::Frame) -> &str {
    reply.error.as_ref().map(|e| e.code.as_str()).unwrap_or("")
}

/// Every inbox entry after `since`, following `has_more` with pages of `limit`.
pub async fn sync_all(c: &Client, since: u64, limit: u32) -> Vec<confab_proto::Message> {
    let (mut all, mut since) = (Vec::new(), since);
    loop {
        let page = c.sync(since, limit).await.expect("a sync page");
        since = page
            .messages
            .last()
            .and_then(|m| m.inbox_seq)
            .unwrap_or(since);
        all.extend(page.messages);
        if page.has_more != Some(true) {
            return all;
        }
    }
}
