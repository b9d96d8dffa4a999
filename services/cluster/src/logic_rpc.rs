//! The logic layer over gRPC, for deployments where gateways and logic run as
//! separate processes (`confab gateway`, `confab logic`).
//!
//! [`LogicServer`] serves a [`Logic`] on a logic node. [`RemoteLogic`] is what
//! a gateway holds instead of an in-process `Logic`: it spreads requests over
//! the logic nodes (those of the user's gray release first), round-robin, and
//! when a node does not answer, retries the request on the next one. Retrying is safe: a send is deduplicated by its
//! `client_msg_id`, and the other requests are reads or move cursors forward.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use confab_logic::{LoggedIn, Logic, LogicApi, LogicError, Session, error_reply};
use confab_model::{AppId, Platform, UserId};
use confab_proto::Frame;
use confab_proto::ops::code;
use confab_proto::v1::logic_service_client::LogicServiceClient;
use confab_proto::v1::logic_service_server::{LogicService, LogicServiceServer};
use confab_proto::v1::{
    HandleRequest, InfoRequest, LoginReply, LoginRequest, NodeInfo, SessionClosedReply,
    SessionClosedRequest, SessionInfo,
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
        settings: confab_logic::shared_settings::from_json(&info.settings_json)?,
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

    async fn session_closed(
        &self,
        request: tonic::Request<SessionClosedRequest>,
    ) -> Result<tonic::Response<SessionClosedReply>, tonic::Status> {
        let req = request.into_inner();
        let session = req
            .session
            .as_ref()
            .and_then(session_from)
            .ok_or_else(|| tonic::Status::invalid_argument("bad session"))?;
        self.logic.session_closed(&session, &req.reason);
        Ok(tonic::Response::new(SessionClosedReply {}))
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

/// How often a gateway re-resolves the logic addresses and asks each node
/// for its release label.
const DISCOVERY_EVERY: Duration = Duration::from_secs(5);

/// One logic node as a gateway knows it.
#[derive(Clone)]
struct Node {
    /// `host:port` as configured, or the resolved `ip:port`.
    addr: String,
    client: Client,
    /// The release label it reported (None until it answers `Info`).
    release: Option<String>,
}

fn client_for(addr: &str) -> Result<Client, String> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("logic address {addr:?}: {e}"))?
        .connect_timeout(Duration::from_secs(1))
        .timeout(RPC_TIMEOUT);
    Ok(LogicServiceClient::with_interceptor(
        endpoint.connect_lazy(),
        crate::auth::Stamp,
    ))
}

/// The logic layer as a gateway sees it on a split deployment.
///
/// `CONFAB_LOGIC_ADDRS` entries may be DNS names (e.g. a Kubernetes headless
/// Service): they are re-resolved every few seconds, so logic nodes can be
/// added or removed while traffic flows, without restarting gateways.
///
/// With a config ([`RemoteLogic::follow_releases`]), every request goes to a
/// node of the release the gray rules choose for its user — evaluated per
/// request, so a user stays on one release while the rules stand and moves,
/// without losing the connection, when they change. Nodes of the chosen
/// release are tried first, the others after them (availability wins over
/// the split when a release has no live node).
pub struct RemoteLogic {
    /// The configured addresses.
    configured: Vec<String>,
    nodes: std::sync::RwLock<Vec<Node>>,
    next: AtomicUsize,
    config: std::sync::OnceLock<confab_config::ConfigView>,
}

impl RemoteLogic {
    /// `addrs`: the logic nodes' gRPC addresses (host:port). Connections are
    /// made lazily, so a node may start after the gateway.
    pub fn new(addrs: &[String]) -> Result<Self, String> {
        if addrs.is_empty() {
            return Err("no logic node address (CONFAB_LOGIC_ADDRS)".into());
        }
        let mut nodes = Vec::new();
        for a in addrs {
            nodes.push(Node {
                addr: a.clone(),
                client: client_for(a)?,
                release: None,
            });
        }
        Ok(Self {
            configured: addrs.to_vec(),
            nodes: std::sync::RwLock::new(nodes),
            next: AtomicUsize::new(0),
            config: std::sync::OnceLock::new(),
        })
    }

    /// Keeps the node list current (DNS) and the nodes' release labels
    /// known, every few seconds, for as long as the gateway runs.
    pub fn start_discovery(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(remote) = me.upgrade() else { return };
                remote.discover().await;
                drop(remote);
                tokio::time::sleep(DISCOVERY_EVERY).await;
            }
        });
    }

    /// Routes by the gray rules of `config` from now on.
    pub fn follow_releases(&self, config: confab_config::ConfigView) {
        let _ = self.config.set(config);
    }

    /// The addresses requests currently go to.
    pub fn node_addrs(&self) -> Vec<String> {
        self.nodes
            .read()
            .map(|n| n.iter().map(|n| n.addr.clone()).collect())
            .unwrap_or_default()
    }

    /// Re-resolves the configured addresses and asks every node for its
    /// release label.
    pub async fn discover(&self) {
        let mut wanted: Vec<String> = Vec::new();
        for entry in &self.configured {
            match tokio::net::lookup_host(entry.as_str()).await {
                Ok(found) => {
                    let mut found: Vec<String> = found.map(|a| a.to_string()).collect();
                    found.sort();
                    if found.is_empty() {
                        wanted.push(entry.clone());
                    }
                    wanted.extend(found);
                }
                // Unresolvable now: keep trying the name itself.
                Err(_) => wanted.push(entry.clone()),
            }
        }
        let mut seen = std::collections::HashSet::new();
        wanted.retain(|a| seen.insert(a.clone()));
        let current = self.nodes.read().map(|n| n.clone()).unwrap_or_default();
        let mut next = Vec::with_capacity(wanted.len());
        for addr in wanted {
            match current.iter().find(|n| n.addr == addr) {
                Some(known) => next.push(known.clone()),
                None => match client_for(&addr) {
                    Ok(client) => {
                        tracing::info!(logic = %addr, "logic node added");
                        next.push(Node {
                            addr,
                            client,
                            release: None,
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "bad logic address"),
                },
            }
        }
        for node in &mut next {
            node.release = match node.client.clone().info(InfoRequest {}).await {
                Ok(info) => Some(info.into_inner().release),
                Err(e) => {
                    tracing::debug!(logic = %node.addr, error = %e, "no release label");
                    None
                }
            };
        }
        if let Ok(mut nodes) = self.nodes.write() {
            *nodes = next;
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

    /// The nodes in the order to try them for one request: nodes of
    /// `release` first (round-robin among them), then the rest.
    fn rotation(&self, release: Option<&str>) -> Vec<(String, Client)> {
        let nodes = self.nodes.read().map(|n| n.clone()).unwrap_or_default();
        let n = nodes.len();
        if n == 0 {
            return Vec::new();
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let order = (0..n).map(move |i| (start + i) % n);
        let (first, rest): (Vec<usize>, Vec<usize>) = match release {
            Some(release) => order.partition(|i| nodes[*i].release.as_deref() == Some(release)),
            None => (order.collect(), Vec::new()),
        };
        first
            .into_iter()
            .chain(rest)
            .map(|i| (nodes[i].addr.clone(), nodes[i].client.clone()))
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
        for (addr, mut client) in self.rotation(release.as_deref()) {
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
        for (addr, mut client) in self.rotation(release.as_deref()) {
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

    /// Tells a logic node (of the session's release) that the session
    /// ended, on a task of its own: the connection is gone and nobody waits.
    fn session_closed(&self, session: &Session, reason: &str) {
        let release = self.release_for(
            session.app_id.as_str(),
            session.user_id.as_str(),
            session.platform.as_str(),
            &session.client_version,
        );
        let nodes = self.rotation(release.as_deref());
        let req = SessionClosedRequest {
            session: Some(session_info(session)),
            reason: reason.to_owned(),
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            for (addr, mut client) in nodes {
                match client.session_closed(req.clone()).await {
                    Ok(_) => return,
                    Err(status) => {
                        metrics::counter!("confab_cluster_logic_failovers_total").increment(1);
                        tracing::warn!(logic = %addr, error = %status, "logic node failed; trying the next");
                    }
                }
            }
            tracing::warn!("no logic node took the end of a session: its user_offline event is lost");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_are_re_resolved_into_one_node_per_address() {
        let remote = RemoteLogic::new(&["localhost:7".to_owned(), "127.0.0.2:7".to_owned()])
            .expect("addresses");
        assert_eq!(remote.node_addrs(), vec!["localhost:7", "127.0.0.2:7"]);
        remote.discover().await;
        let addrs = remote.node_addrs();
        assert!(addrs.contains(&"127.0.0.1:7".to_owned()), "{addrs:?}");
        assert!(addrs.contains(&"127.0.0.2:7".to_owned()), "{addrs:?}");
        assert!(!addrs.contains(&"localhost:7".to_owned()), "{addrs:?}");
    }
}
