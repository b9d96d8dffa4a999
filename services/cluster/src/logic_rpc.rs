//! The logic layer over gRPC, for deployments where gateways and logic run as
//! separate processes (`confab gateway`, `confab logic`).
//!
//! [`LogicServer`] serves a [`Logic`] on a logic node. [`RemoteLogic`] is what
//! a gateway holds instead of an in-process `Logic`: it spreads requests over
//! the logic nodes round-robin and, when a node does not answer, retries the
//! request on the next one. Retrying is safe: a send is deduplicated by its
//! `client_msg_id`, and the other requests are reads or move cursors forward.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use confab_logic::{LoggedIn, Logic, LogicApi, LogicError, Session, error_reply};
use confab_model::{AppId, AppSettings, Platform, UserId};
use confab_proto::Frame;
use confab_proto::ops::code;
use confab_proto::v1::logic_service_client::LogicServiceClient;
use confab_proto::v1::logic_service_server::{LogicService, LogicServiceServer};
use confab_proto::v1::{
    HandleRequest, InfoRequest, LoginReply, LoginRequest, NodeInfo, SessionInfo,
};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

const RPC_TIMEOUT: Duration = Duration::from_secs(10);

fn session_info(s: &Session) -> SessionInfo {
    SessionInfo {
        app_id: s.app_id.to_string(),
        user_id: s.user_id.to_string(),
        device_id: s.device_id.clone(),
        platform: s.platform.as_str().to_owned(),
        session_id: s.session_id.clone(),
        settings_json: serde_json::to_string(&s.settings).unwrap_or_default(),
        client_version: s.client_version.clone(),
    }
}

fn session_from(info: &SessionInfo) -> Option<Session> {
    Some(Session {
        app_id: AppId::parse(&info.app_id).ok()?,
        user_id: UserId::parse(&info.user_id).ok()?,
        device_id: info.device_id.clone(),
        platform: Platform::parse(&info.platform).ok()?,
        session_id: info.session_id.clone(),
        settings: serde_json::from_str::<AppSettings>(&info.settings_json).ok()?,
        client_version: info.client_version.clone(),
    })
}

/// Serves a logic node's [`Logic`] to gateways.
pub struct LogicServer {
    logic: Arc<Logic>,
}

impl LogicServer {
    pub fn server(
        logic: Arc<Logic>,
    ) -> InterceptedService<LogicServiceServer<Self>, crate::auth::Check> {
        LogicServiceServer::with_interceptor(Self { logic }, crate::auth::Check)
    }
}

#[tonic::async_trait]
impl LogicService for LogicServer {
    async fn login(
        &self,
        request: tonic::Request<LoginRequest>,
    ) -> Result<tonic::Response<LoginReply>, tonic::Status> {
        let req = request.into_inner();
        let frame = req.frame.unwrap_or_default();
        let reply = match self.logic.login(&frame, req.session_id).await {
            Ok(ok) => LoginReply {
                reply: Some(ok.reply),
                session: Some(session_info(&ok.session)),
            },
            Err(e) => LoginReply {
                reply: Some(error_reply(frame.rid, e.code, e.message)),
                session: None,
            },
        };
        Ok(tonic::Response::new(reply))
    }

    async fn handle(
        &self,
        request: tonic::Request<HandleRequest>,
    ) -> Result<tonic::Response<Frame>, tonic::Status> {
        let req = request.into_inner();
        let session = req
            .session
            .as_ref()
            .and_then(session_from)
            .ok_or_else(|| tonic::Status::invalid_argument("bad session"))?;
        let frame = req.frame.unwrap_or_default();
        Ok(tonic::Response::new(
            self.logic.handle(&session, frame).await,
        ))
    }

    async fn info(
        &self,
        _request: tonic::Request<InfoRequest>,
    ) -> Result<tonic::Response<NodeInfo>, tonic::Status> {
        Ok(tonic::Response::new(NodeInfo {
            release: self.logic.release().to_owned(),
        }))
    }
}

type Client = LogicServiceClient<InterceptedService<Channel, crate::auth::Stamp>>;

/// How often a gateway asks each logic node for its release label.
const LABEL_REFRESH: Duration = Duration::from_secs(5);

/// The logic layer as a gateway sees it on a split deployment.
///
/// With a config ([`RemoteLogic::follow_releases`]), every request goes to a
/// node of the release the gray rules choose for its user — evaluated per
/// request, so a user stays on one release while the rules stand and moves,
/// without losing the connection, when they change. Nodes of the chosen
/// release are tried first, the others after them (availability wins over
/// the split when a release has no live node).
pub struct RemoteLogic {
    clients: Vec<(String, Client)>,
    next: AtomicUsize,
    /// Each node's release label, as last reported (index as `clients`).
    labels: std::sync::RwLock<Vec<Option<String>>>,
    config: std::sync::OnceLock<confab_config::ConfigView>,
}

impl RemoteLogic {
    /// `addrs`: the logic nodes' gRPC addresses (host:port). Connections are
    /// made lazily, so a node may start after the gateway.
    pub fn new(addrs: &[String]) -> Result<Self, String> {
        if addrs.is_empty() {
            return Err("no logic node address (CONFAB_LOGIC_ADDRS)".into());
        }
        let mut clients = Vec::new();
        for a in addrs {
            let endpoint = Endpoint::from_shared(format!("http://{a}"))
                .map_err(|e| format!("logic address {a:?}: {e}"))?
                .connect_timeout(Duration::from_secs(1))
                .timeout(RPC_TIMEOUT);
            clients.push((
                a.clone(),
                LogicServiceClient::with_interceptor(endpoint.connect_lazy(), crate::auth::Stamp),
            ));
        }
        let labels = std::sync::RwLock::new(vec![None; clients.len()]);
        Ok(Self {
            clients,
            next: AtomicUsize::new(0),
            labels,
            config: std::sync::OnceLock::new(),
        })
    }

    /// Routes by the gray rules of `config` from now on, and keeps the
    /// nodes' release labels current.
    pub fn follow_releases(self: &Arc<Self>, config: confab_config::ConfigView) {
        let _ = self.config.set(config);
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(remote) = me.upgrade() else { return };
                remote.refresh_labels().await;
                drop(remote);
                tokio::time::sleep(LABEL_REFRESH).await;
            }
        });
    }

    /// Asks every node for its release label.
    pub async fn refresh_labels(&self) {
        for (i, (addr, client)) in self.clients.iter().enumerate() {
            let label = match client.clone().info(InfoRequest {}).await {
                Ok(info) => Some(info.into_inner().release),
                Err(e) => {
                    tracing::debug!(logic = %addr, error = %e, "no release label");
                    None
                }
            };
            if let Ok(mut labels) = self.labels.write() {
                labels[i] = label;
            }
        }
    }

    /// The release the rules choose for a user (None: no rules to follow).
    fn release_for(&self, app: &str, user: &str, platform: &str, version: &str) -> Option<String> {
        let config = self.config.get()?.current();
        let tenant = config
            .app(app)
            .map(|a| a.tenant_id.clone())
            .unwrap_or_default();
        let who = confab_config::gray::Subject {
            tenant_id: &tenant,
            app_id: app,
            user_id: user,
            platform,
            client_version: (!version.is_empty()).then_some(version),
        };
        Some(config.release_for(&who).to_owned())
    }

    /// The clients in the order to try them for one request: nodes of
    /// `release` first (round-robin among them), then the rest.
    fn rotation(&self, release: Option<&str>) -> Vec<&(String, Client)> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.clients.len();
        let order = (0..n).map(move |i| (start + i) % n);
        let Some(release) = release else {
            return order.map(|i| &self.clients[i]).collect();
        };
        let labels = self.labels.read().map(|l| l.clone()).unwrap_or_default();
        let preferred = |i: &usize| labels.get(*i).and_then(|l| l.as_deref()) == Some(release);
        let (first, rest): (Vec<usize>, Vec<usize>) = order.partition(preferred);
        first
            .into_iter()
            .chain(rest)
            .map(|i| &self.clients[i])
            .collect()
    }
}

/// The `app` and `sub` claims of a token, read without checking it: only to
/// pick a node (the logic node checks the token).
fn unverified_claims(token: &str) -> Option<(String, String)> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some((
        claims.get("app")?.as_str()?.to_owned(),
        claims.get("sub")?.as_str()?.to_owned(),
    ))
}

/// The stable code of a reply from another process, as a `&'static str`.
fn known_code(c: &str) -> &'static str {
    [
        code::BAD_FRAME,
        code::BAD_REQUEST,
        code::UNKNOWN_OP,
        code::FRAME_TOO_LARGE,
        code::UNAUTHORIZED,
        code::NOT_LOGGED_IN,
        code::ALREADY_LOGGED_IN,
        code::NOT_FOUND,
        code::FORBIDDEN,
        code::RECALL_WINDOW_PASSED,
        code::CONTENT_BLOCKED,
        code::QUOTA_EXCEEDED,
        code::RATE_LIMITED,
        code::UNAVAILABLE,
        code::INTERNAL,
        code::UNSUPPORTED,
        code::CONFLICT,
        code::SUSPENDED,
        code::MUTED,
    ]
    .into_iter()
    .find(|k| *k == c)
    .unwrap_or(code::INTERNAL)
}

#[async_trait]
impl LogicApi for RemoteLogic {
    async fn login(&self, frame: &Frame, session_id: String) -> Result<LoggedIn, LogicError> {
        let release = unverified_claims(&frame.token).and_then(|(app, user)| {
            self.release_for(&app, &user, &frame.platform, &frame.client_version)
        });
        for (addr, client) in self.rotation(release.as_deref()) {
            let mut client = client.clone();
            let req = LoginRequest {
                frame: Some(frame.clone()),
                session_id: session_id.clone(),
            };
            match client.login(req).await {
                Ok(resp) => {
                    let resp = resp.into_inner();
                    let reply = resp.reply.unwrap_or_default();
                    return match resp.session.as_ref().and_then(session_from) {
                        Some(session) if reply.ok == Some(true) => Ok(LoggedIn { session, reply }),
                        _ => {
                            let e = reply.error.unwrap_or_default();
                            Err(LogicError::new(known_code(&e.code), e.message))
                        }
                    };
                }
                Err(status) => {
                    metrics::counter!("confab_cluster_logic_failovers_total").increment(1);
                    tracing::warn!(logic = %addr, error = %status, "logic node failed; trying the next");
                }
            }
        }
        Err(LogicError::new(
            code::UNAVAILABLE,
            "no logic node is reachable; retry",
        ))
    }

    async fn handle(&self, session: &Session, frame: Frame) -> Frame {
        let rid = frame.rid;
        let info = session_info(session);
        let release = self.release_for(
            session.app_id.as_str(),
            session.user_id.as_str(),
            session.platform.as_str(),
            &session.client_version,
        );
        for (addr, client) in self.rotation(release.as_deref()) {
            let mut client = client.clone();
            let req = HandleRequest {
                session: Some(info.clone()),
                frame: Some(frame.clone()),
            };
            match client.handle(req).await {
                Ok(resp) => return resp.into_inner(),
                Err(status) => {
                    metrics::counter!("confab_cluster_logic_failovers_total").increment(1);
                    tracing::warn!(logic = %addr, error = %status, "logic node failed; trying the next");
                }
            }
        }
        error_reply(rid, code::UNAVAILABLE, "no logic node is reachable; retry")
    }
}
