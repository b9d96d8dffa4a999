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

fn split_suite() -> bool {
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
        Self {
            app_id: first.app_id,
            key_id: first.key_id,
            secret: first.secret,
            app,
            dir,
            redis,
            logic,
        }
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
