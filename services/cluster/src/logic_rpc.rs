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
use confab_proto::v1::{HandleRequest, LoginReply, LoginRequest, SessionInfo};
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
}

/// The logic layer as a gateway sees it on a split deployment.
pub struct RemoteLogic {
    clients: Vec<(
        String,
        LogicServiceClient<InterceptedService<Channel, crate::auth::Stamp>>,
    )>,
    next: AtomicUsize,
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
        Ok(Self {
            clients,
            next: AtomicUsize::new(0),
        })
    }

    /// The clients in the order to try them for one request.
    fn rotation(
        &self,
    ) -> impl Iterator<
        Item = &(
            String,
            LogicServiceClient<InterceptedService<Channel, crate::auth::Stamp>>,
        ),
    > {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.clients.len();
        (0..n).map(move |i| &self.clients[(start + i) % n])
    }
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
    ]
    .into_iter()
    .find(|k| *k == c)
    .unwrap_or(code::INTERNAL)
}

#[async_trait]
impl LogicApi for RemoteLogic {
    async fn login(&self, frame: &Frame, session_id: String) -> Result<LoggedIn, LogicError> {
        for (addr, client) in self.rotation() {
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
        for (addr, client) in self.rotation() {
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
