//! The logic layer: what each request means.
//!
//! The gateway parses frames and owns sockets; it calls [`Logic::login`] for
//! the first frame of a connection and [`Logic::handle`] for every later one,
//! and implements [`Delivery`] so that logic can push frames to online devices.
//! Logic owns the send pipeline (validate → dedupe → `seq` → store durably →
//! inbox → reply → deliver), sync, history, read state, conversations, recall,
//! typing and groups. It never touches a socket and never blocks on a slow device.

mod app_groups;
mod app_recall;
pub mod auth;
mod error;
mod groups;
mod handlers;
pub mod push;
pub mod quota;
pub mod retention;
pub mod rooms;
pub mod shared_settings;
pub mod webhooks;

use std::sync::Arc;

use confab_config::{AppStatus, ConfigView};
use confab_model::{AppId, AppSettings, Platform, UserId};
use confab_proto::Frame;
use confab_store::Stores;

pub use app_groups::APP_ACTOR;
pub use error::{LogicError, Result};
pub use groups::{run_event_sweep, settle_stale_events};

/// How logic reaches online devices. Implemented by the gateway (in-process
/// in embedded mode). Must not block: a device that cannot take a frame now is
/// the gateway's problem (it disconnects slow readers).
pub trait Delivery: Send + Sync + 'static {
    /// Hands `frame` to every online session of `user`, except `except_session`.
    fn deliver(&self, app: &AppId, user: &UserId, frame: Arc<Frame>, except_session: Option<&str>);

    /// A session logged in here: kick the user's sessions on *other* nodes
    /// that the app's kick policy says it replaces. Sessions on this node are
    /// the gateway's own business; a single node has nothing to do.
    /// `previous` is the user's route list read before this session's own
    /// route was written (which may replace the same device's older route).
    fn kick_elsewhere(
        &self,
        _app: &AppId,
        _user: &UserId,
        _new: &NewSession<'_>,
        _previous: Vec<confab_store::Route>,
    ) {
    }

    /// Sends every live session of `user` (on any node) a `kicked` frame
    /// with `reason` and closes it (token revocation). The default does
    /// nothing (a node without devices).
    fn kick_user(&self, _app: &AppId, _user: &UserId, _reason: &str) {}

    /// Hands a live room's `frame` to the room's members on every node,
    /// except `except_session`: one hand-off per node (the gateway fans out
    /// to its own members, shedding by the frame's priority under load).
    /// The default does nothing (a node without devices).
    fn deliver_room(
        &self,
        _app: &AppId,
        _room: &confab_model::RoomId,
        _frame: Arc<Frame>,
        _except_session: Option<&str>,
    ) {
    }

    /// A room was closed: every member on every node gets `frame` and is
    /// taken out of the room.
    fn close_room(&self, _app: &AppId, _room: &confab_model::RoomId, _frame: Arc<Frame>) {}
}

/// What a kick decision needs to know about a new session.
#[derive(Debug, Clone, Copy)]
pub struct NewSession<'a> {
    pub session_id: &'a str,
    pub device_id: &'a str,
    pub platform: Platform,
    pub policy: confab_model::KickPolicy,
}

impl NewSession<'_> {
    /// Why an existing session of the same user on (device, platform) must go,
    /// if it must.
    pub fn replaces(&self, device_id: &str, platform: &str) -> Option<&'static str> {
        use confab_model::KickPolicy;
        if device_id == self.device_id {
            return Some("the same device logged in again");
        }
        match self.policy {
            KickPolicy::OnePerPlatform if platform == self.platform.as_str() => {
                Some("logged in on another device of the same platform")
            }
            KickPolicy::OneInAll => Some("logged in on another device"),
            _ => None,
        }
    }
}

/// What a gateway needs from the logic layer: in-process ([`Logic`]) in
/// embedded mode, over gRPC on a split deployment (`confab_cluster::RemoteLogic`).
#[async_trait::async_trait]
pub trait LogicApi: Send + Sync + 'static {
    /// Checks a `login` frame; see [`Logic::login`].
    async fn login(&self, frame: &Frame, session_id: String) -> Result<LoggedIn>;
    /// Handles one request of a logged-in session; see [`Logic::handle`].
    async fn handle(&self, session: &Session, frame: Frame) -> Frame;
    /// A session ended (logout or disconnect). The default does nothing.
    fn session_closed(&self, _session: &Session, _reason: &str) {}
}

#[async_trait::async_trait]
impl LogicApi for Logic {
    async fn login(&self, frame: &Frame, session_id: String) -> Result<LoggedIn> {
        Logic::login(self, frame, session_id).await
    }
    async fn handle(&self, session: &Session, frame: Frame) -> Frame {
        Logic::handle(self, session, frame).await
    }
    fn session_closed(&self, session: &Session, reason: &str) {
        Logic::session_closed(self, session, reason)
    }
}

/// One logged-in connection, as logic sees it.
#[derive(Debug, Clone)]
pub struct Session {
    pub app_id: AppId,
    pub user_id: UserId,
    pub device_id: String,
    pub platform: Platform,
    pub session_id: String,
    /// Shared: every session of an app on a node points at one copy
    /// (sessions are held per connection, by the hundred thousand).
    pub settings: Arc<AppSettings>,
    /// The client app's version from login (may be empty).
    pub client_version: String,
}

/// The successful result of a login.
#[derive(Debug, Clone)]
pub struct LoggedIn {
    pub session: Session,
    pub reply: Frame,
}

pub struct Logic {
    stores: Stores,
    tokens: auth::TokenVerifier,
    delivery: Arc<dyn Delivery>,
    config: ConfigView,
    rates: quota::MessageRates,
    /// Group member lists for the hot path (per process; see groups.rs).
    groups: groups::GroupCache,
    /// Open rooms for the hot path (per process; see rooms.rs).
    rooms: rooms::RoomCache,
    /// The release label this node announces (gray release).
    release: String,
    /// Requests served (logins and others), for the release share.
    served: std::sync::atomic::AtomicU64,
    logins: std::sync::atomic::AtomicU64,
    /// The tenant's webhooks (before_send, and the events emitted).
    webhooks: Arc<confab_webhooks::Webhooks>,
    /// Push decisions running on their own tasks (see push.rs).
    push_in_flight: push::InFlight,
    /// Which apps have push devices at all (see push.rs).
    push_apps: Arc<push::AppDeviceFlags>,
    /// Per-app usage counters (dashboards), flushed by the node's startup.
    usage: Arc<confab_store::UsageRecorder>,
}

impl Logic {
    pub fn new(stores: Stores, delivery: Arc<dyn Delivery>, config: ConfigView) -> Self {
        let webhooks = Arc::new(confab_webhooks::Webhooks::new(
            stores.webhooks.clone(),
            confab_webhooks::WebhookOptions::default(),
        ));
        Self {
            tokens: auth::TokenVerifier::new(config.clone(), stores.revocations.clone()),
            delivery,
            config,
            rates: quota::MessageRates::default(),
            groups: groups::GroupCache::default(),
            rooms: rooms::RoomCache::default(),
            release: confab_config::gray::STABLE_RELEASE.to_owned(),
            served: std::sync::atomic::AtomicU64::new(0),
            logins: std::sync::atomic::AtomicU64::new(0),
            webhooks,
            push_in_flight: push::InFlight::default(),
            push_apps: Arc::default(),
            usage: Arc::new(confab_store::UsageRecorder::new(stores.usage.clone())),
            stores,
        }
    }

    /// Uses this webhook machinery (shared with the dispatcher, or with
    /// test settings).
    pub fn with_webhooks(mut self, webhooks: Arc<confab_webhooks::Webhooks>) -> Self {
        self.webhooks = webhooks;
        self
    }

    pub fn webhooks(&self) -> &Arc<confab_webhooks::Webhooks> {
        &self.webhooks
    }

    /// A session ended (logout or disconnect): emits `user_offline`.
    pub fn session_closed(&self, session: &Session, reason: &str) {
        webhooks::user_offline(self, session, reason);
    }

    /// Sets the release label this node announces.
    pub fn with_release(mut self, release: impl Into<String>) -> Self {
        self.release = release.into();
        self
    }

    pub fn release(&self) -> &str {
        &self.release
    }

    /// Requests this node has served (logins and others).
    pub fn served(&self) -> u64 {
        self.served.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Logins this node has handled.
    pub fn logins_served(&self) -> u64 {
        self.logins.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn count_served(&self) {
        self.served
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!("confab_logic_requests_total", "release" => self.release.clone())
            .increment(1);
    }

    /// Push decisions still running (they run after the send replied).
    pub fn push_decisions_in_flight(&self) -> usize {
        self.push_in_flight.get()
    }

    pub fn stores(&self) -> &Stores {
        &self.stores
    }

    /// This node's usage counters (the startup flushes them and gives them
    /// the gateway's connection counts; the push worker adds outcomes).
    pub fn usage(&self) -> &Arc<confab_store::UsageRecorder> {
        &self.usage
    }

    pub fn delivery(&self) -> &Arc<dyn Delivery> {
        &self.delivery
    }

    pub fn config(&self) -> &ConfigView {
        &self.config
    }

    /// An active app's settings as of now (changes apply as soon as the
    /// control plane's update reaches this node). Copies the settings only:
    /// this runs on every send, and an app's keys and word list can be long.
    pub fn app_settings(&self, app: &AppId) -> Result<AppSettings> {
        let config = self.config.current();
        let found = config
            .app(app.as_str())
            .ok_or_else(|| LogicError::unauthorized(format!("app {app} is not served here")))?;
        if found.status == AppStatus::Suspended {
            return Err(LogicError::new(
                confab_proto::ops::code::SUSPENDED,
                "this app is suspended; contact the app's operator",
            ));
        }
        Ok(found.settings.clone())
    }

    /// Checks a `login` frame. The caller registers the session and sends the
    /// reply; on error it replies `unauthorized` and closes.
    pub async fn login(&self, frame: &Frame, session_id: String) -> Result<LoggedIn> {
        self.count_served();
        self.logins
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let logged_in = handlers::login(self, frame, session_id).await?;
        self.usage
            .login(&logged_in.session.app_id, &logged_in.session.user_id);
        webhooks::user_online(self, &logged_in.session);
        Ok(logged_in)
    }

    /// Handles one request of a logged-in session and returns its reply
    /// (`ok:true` with results, or `ok:false` with an error).
    pub async fn handle(&self, session: &Session, frame: Frame) -> Frame {
        self.count_served();
        let rid = frame.rid;
        let op = frame.op.clone();
        let result = handlers::dispatch(self, session, frame).await;
        match result {
            Ok(mut reply) => {
                reply.op = confab_proto::ops::REPLY.into();
                reply.rid = rid;
                reply.ok = Some(true);
                reply
            }
            Err(e) => {
                metrics::counter!("confab_logic_errors_total", "op" => op_label(&op), "code" => e.code).increment(1);
                self.usage.error(&session.app_id);
                let mut reply = error_reply(rid, e.code, e.message);
                reply.retry_after_ms = e.retry_after_ms;
                reply
            }
        }
    }
}

/// An `ok:false` reply.
pub fn error_reply(rid: Option<u64>, code: &str, message: impl Into<String>) -> Frame {
    Frame {
        op: confab_proto::ops::REPLY.into(),
        rid,
        ok: Some(false),
        error: Some(confab_proto::WireError {
            code: code.to_owned(),
            message: message.into(),
        }),
        ..Default::default()
    }
}

/// A bounded label for metrics: known ops by name, anything else as "unknown".
pub fn op_label(op: &str) -> &'static str {
    use confab_proto::ops::*;
    [
        LOGIN,
        PING,
        LOGOUT,
        SEND,
        ACK,
        SYNC,
        HISTORY,
        READ,
        CONVERSATIONS,
        RECALL,
        TYPING,
        GROUP_CREATE,
        GROUP_INFO,
        GROUP_UPDATE,
        GROUP_JOIN,
        GROUP_QUIT,
        GROUP_ADD,
        GROUP_REMOVE,
        GROUP_MEMBERS,
        GROUP_ROLE,
        GROUP_TRANSFER,
        GROUP_MUTE,
        GROUP_DISMISS,
        GROUP_REQUESTS,
        GROUP_REQUEST_DECIDE,
        ROOM_JOIN,
        ROOM_LEAVE,
        PUSH_REGISTER,
        PUSH_UNREGISTER,
        APP_STATE,
        CONV_MUTE,
        PUSH_SETTINGS,
    ]
    .into_iter()
    .find(|k| *k == op)
    .unwrap_or("unknown")
}
