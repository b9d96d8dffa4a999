//! Storage for the data plane, behind traits sized to their use:
//!
//! - [`MessageStore`]: the roaming store. Appends a message to its conversation
//!   (dedupe, `seq`), and to each recipient's inbox (`inbox_seq`) in the same
//!   durable write; serves history.
//! - [`InboxStore`]: reads a user's inbox in `inbox_seq` order (the sync store).
//! - [`ReadStateStore`]: read cursors and the per-user conversation list.
//! - [`TokenRevocations`]: per-user token revocation.
//! - [`GroupStore`]: groups, members, roles, mutes.
//! - [`ControlStore`]: the control plane's records (tenants, apps, keys, ...).
//! - [`RouteTable`]: where each online device is connected.
//! - [`WebhookOutbox`]: webhook events waiting for delivery, and dead letters.
//! - [`UserStore`]: user profiles (REST `/v1/users`).
//! - [`UsageStore`]: per-app usage per minute and daily active users.
//! - [`DeviceStore`], [`PushQueue`]: push registrations and preferences, and
//!   the durable queue of notifications (offline push).
//!
//! Backends: `sqlite` (embedded, durable) and `memory` (route table). Every
//! backend must pass [`conformance`]. Callers hold `Arc<dyn Trait>` and never
//! know which backend they talk to.

pub mod conformance;
pub mod control;
pub mod groups;
pub mod memory;
mod pool_metrics;
pub mod postgres;
pub mod push;
pub mod redis_store;
pub mod rooms;
pub mod sqlite;
pub mod usage;
pub mod users;
pub mod webhooks;

use std::sync::Arc;

use async_trait::async_trait;
use confab_model::{AppId, ConvId, GroupId, InboxEntry, Peer, StoredMessage, UserId};

pub use control::{ControlRecord, ControlStore, ControlWrite};
pub use groups::{
    GroupLimits, GroupStore, GroupUpdate, JOIN_PENDING, JoinRequest, MemberEvent, NewGroup,
    PendingEvent,
};
pub use push::{
    DeadPushJob, DeviceStore, Dnd, NewPushJob, PushDevice, PushJob, PushQueue, PushTarget,
    QueueStats,
};
pub use rooms::{Room, RoomStore};
pub use usage::{PushOutcome, UsageCounts, UsageDelta, UsageRecorder, UsageStore};
pub use users::{ProfileUpdate, UserProfile, UserStore};
pub use webhooks::WebhookOutbox;

/// The one error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A quota would be exceeded (group size, groups per user).
    #[error("limit reached: {0}")]
    Limit(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A message to append. The caller has validated it and chosen its id.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub app_id: AppId,
    pub conv_id: ConvId,
    pub msg_id: String,
    pub from: UserId,
    pub to: Peer,
    pub body: String,
    pub ts: i64,
    pub client_msg_id: String,
    /// Users whose inbox gets the message, the sender included (so that the
    /// sender's other devices sync it). The sender's read cursor moves to it.
    pub recipients: Vec<UserId>,
    /// Read diffusion (a group above the app's threshold): `recipients` is
    /// the sender alone, and every other member is given an inbox entry for
    /// the message when they pull ([`InboxStore::pull_group_timelines`]).
    pub read_fanout: bool,
}

/// What a retention purge removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purged {
    /// Messages deleted or emptied of their content.
    pub messages: u64,
    /// Users whose inbox lost entries (their cached copies must go too).
    pub users: Vec<UserId>,
}

/// User ids as stored, deduplicated (ids that no longer parse are skipped).
pub(crate) fn distinct_users(mut ids: Vec<String>) -> Vec<UserId> {
    ids.sort_unstable();
    ids.dedup();
    ids.iter().filter_map(|u| UserId::parse(u).ok()).collect()
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub message: StoredMessage,
    /// The (app, sender, client_msg_id) was seen before: `message` is the
    /// original and nothing new was written or should be delivered.
    pub duplicate: bool,
    /// Each recipient's new inbox entry (empty for a duplicate).
    pub inbox: Vec<(UserId, u64)>,
}

/// What one [`InboxStore::pull_group_timelines`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pulled {
    /// Inbox entries added.
    pub entries: u32,
    /// It stopped at its limit: there may be more to pull.
    pub more: bool,
    /// The entries added, in `inbox_seq` order: a sender learns the
    /// `inbox_seq` their own read-fan-out message got.
    pub given: Vec<PulledEntry>,
}

/// One inbox entry a pull added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledEntry {
    pub conv_id: String,
    pub seq: u64,
    pub inbox_seq: u64,
}

#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Durably stores a message and its inbox entries; returns only once both
    /// survive a crash. Concurrent appends may share one commit.
    async fn append(&self, msg: NewMessage) -> Result<Appended>;

    /// A conversation's messages with `seq < before_seq` (all if `None`),
    /// newest first.
    async fn history(
        &self,
        app: &AppId,
        conv: &ConvId,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>>;

    async fn get(&self, app: &AppId, conv: &ConvId, msg_id: &str) -> Result<Option<StoredMessage>>;

    /// Marks a message recalled and drops its content. Returns false if it
    /// does not exist.
    async fn recall(&self, app: &AppId, conv: &ConvId, msg_id: &str) -> Result<bool>;

    /// Deletes up to `max` of the app's messages older than `before_ts` (ms)
    /// and the inbox entries that point at them (history retention). Inbox
    /// heads and conversation seqs never move back: later messages never
    /// reuse an `inbox_seq` or a `seq`.
    async fn purge_older_than(&self, app: &AppId, before_ts: i64, max: u32) -> Result<Purged>;

    /// A message of `app` by its id alone, whatever its conversation (the
    /// REST `GET /v1/messages/{msg_id}`: a backend knows ids, not always
    /// conversations). Another app's id is `None`.
    async fn get_by_id(&self, app: &AppId, msg_id: &str) -> Result<Option<StoredMessage>>;
}

#[async_trait]
pub trait InboxStore: Send + Sync + 'static {
    /// The user's latest `inbox_seq` (0 before the first message).
    async fn head(&self, app: &AppId, user: &UserId) -> Result<u64>;

    /// Inbox entries with `inbox_seq > since`, oldest first, at most `limit`.
    async fn since(
        &self,
        app: &AppId,
        user: &UserId,
        since: u64,
        limit: u32,
    ) -> Result<Vec<InboxEntry>>;

    /// Forgets the user's inbox (a deleted user): every entry and the
    /// user's conversation list with its read cursors. The messages stay in
    /// their conversations and in the other participants' inboxes, and the
    /// head does not move back: a later message gets the next `inbox_seq`,
    /// never a reused one.
    async fn clear_inbox(&self, app: &AppId, user: &UserId) -> Result<()>;

    /// Read diffusion: gives `user` inbox entries (the next `inbox_seq`s,
    /// in `(conv_id, seq)` order) for the messages of the groups they are a
    /// member of now that were stored with `read_fanout`, that they may read
    /// (`seq >= join_seq`) and were not given by an earlier pull. Their
    /// conversation rows move as an append would move them (`last_seq`,
    /// `updated_at`, and `read_seq` past their own messages). A message
    /// whose sender was among its recipients at append (`sender_entry`:
    /// every read-fanout message stored before migration 0014) only moves
    /// the sender's pull cursor past it. Goes through at most `limit`
    /// messages; concurrent pulls of one user never give a message twice.
    async fn pull_group_timelines(&self, app: &AppId, user: &UserId, limit: u32) -> Result<Pulled>;

    /// Read diffusion, for a user who has just left `group` (removed or
    /// quit): gives them inbox entries, as [`Self::pull_group_timelines`]
    /// would, for the group's read-fanout messages after their pull cursor
    /// up to `through_seq` (the `seq` of the event that ended their
    /// membership). A message stored while they were still a member but
    /// not yet pulled stays theirs. The removal left their cursor at or
    /// past the start of that membership ([`GroupStore::remove_members`]);
    /// a user with no cursor for the group gets nothing. At most `limit`
    /// messages, in `seq` order.
    ///
    /// [`GroupStore::remove_members`]: crate::GroupStore::remove_members
    async fn pull_group_through(
        &self,
        app: &AppId,
        user: &UserId,
        group: &GroupId,
        through_seq: u64,
        limit: u32,
    ) -> Result<Pulled>;

    /// Read diffusion: whether some member of `group` now has one of its
    /// read-fanout messages still to pull (a member who joined after the
    /// group's newest such message has none). False for a group that never
    /// had one. A group that shrinks to the threshold keeps fanning out by
    /// read diffusion while this holds, so that no member's inbox gets a
    /// write-diffused entry before the older ones they still have to pull.
    async fn group_has_unpulled(&self, app: &AppId, group: &GroupId) -> Result<bool>;
}

/// One conversation in a user's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationSummary {
    pub conv_id: ConvId,
    pub last_seq: u64,
    pub read_seq: u64,
    pub last_message: Option<StoredMessage>,
}

impl ConversationSummary {
    pub fn unread(&self) -> u64 {
        self.last_seq.saturating_sub(self.read_seq)
    }
}

#[async_trait]
pub trait ReadStateStore: Send + Sync + 'static {
    /// Moves the user's read cursor in `conv` forward to `seq` (capped at the
    /// conversation's last seq; never backwards). `Ok(None)` if the user has
    /// no such conversation; otherwise the cursor after the call and whether
    /// it moved.
    async fn mark_read(
        &self,
        app: &AppId,
        user: &UserId,
        conv: &ConvId,
        seq: u64,
    ) -> Result<Option<(u64, bool)>>;

    /// The user's conversations, most recently active first, and the total
    /// unread count over all of them.
    async fn conversations(
        &self,
        app: &AppId,
        user: &UserId,
        limit: u32,
    ) -> Result<(Vec<ConversationSummary>, u64)>;
}

/// Per-user token revocation: tokens of a user issued before a time stop
/// working (api.md, `POST /v1/users/{user_id}/revoke`).
#[async_trait]
pub trait TokenRevocations: Send + Sync + 'static {
    /// Tokens of `user` issued before `at` (ms) stop working (the time only
    /// moves forward).
    async fn revoke_tokens(&self, app: &AppId, user: &UserId, at: i64) -> Result<()>;
    async fn tokens_revoked_before(&self, app: &AppId, user: &UserId) -> Result<Option<i64>>;
}

/// Where a device is connected: the gateway node and its session there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub device_id: String,
    pub session_id: String,
    pub node: String,
    pub platform: String,
}

/// The session/route table: user → devices → gateway node.
#[async_trait]
pub trait RouteTable: Send + Sync + 'static {
    async fn register(&self, app: &AppId, user: &UserId, route: Route) -> Result<()>;
    /// Removes the route only if it still belongs to `session_id` (a newer
    /// login of the same device may have replaced it).
    async fn unregister(
        &self,
        app: &AppId,
        user: &UserId,
        device_id: &str,
        session_id: &str,
    ) -> Result<()>;
    async fn routes(&self, app: &AppId, user: &UserId) -> Result<Vec<Route>>;

    /// Marks that `node`'s routes are in the table (for a few minutes) and
    /// says whether the mark was still there. `false` means the table lost
    /// them (Redis restarted empty, or the node is new): the node then
    /// re-registers every session it holds, so that live pushes reach them
    /// again at once instead of at each session's next refresh. A table that
    /// cannot lose entries behind the node's back keeps the default.
    async fn mark_node(&self, _node: &str) -> Result<bool> {
        Ok(true)
    }

    /// Room presence (live rooms): `node` holds `members` sessions in `room`
    /// (0 takes the node out). Gateways write it when a room's count on
    /// them changes and re-write it periodically: an entry expires like a
    /// route, so a node that died without cleaning up drops out.
    async fn set_room_presence(
        &self,
        app: &AppId,
        room: &confab_model::RoomId,
        node: &str,
        members: u64,
    ) -> Result<()>;
    /// The nodes that hold members of `room`, each with its count.
    async fn room_presence(
        &self,
        app: &AppId,
        room: &confab_model::RoomId,
    ) -> Result<Vec<(String, u64)>>;
    /// Forgets a closed room's presence on every node.
    async fn clear_room_presence(&self, app: &AppId, room: &confab_model::RoomId) -> Result<()>;
}

/// Every store a data-plane node needs, as trait objects.
#[derive(Clone)]
pub struct Stores {
    pub messages: Arc<dyn MessageStore>,
    pub inbox: Arc<dyn InboxStore>,
    pub reads: Arc<dyn ReadStateStore>,
    pub revocations: Arc<dyn TokenRevocations>,
    pub control: Arc<dyn ControlStore>,
    pub groups: Arc<dyn GroupStore>,
    pub rooms: Arc<dyn RoomStore>,
    /// User profiles (REST `/v1/users`).
    pub users: Arc<dyn UserStore>,
    pub routes: Arc<dyn RouteTable>,
    /// The webhook outbox (asynchronous webhook events).
    pub webhooks: Arc<dyn WebhookOutbox>,
    /// Push registrations and preferences (offline push).
    pub devices: Arc<dyn DeviceStore>,
    /// The durable push queue.
    pub push_queue: Arc<dyn PushQueue>,
    /// Per-app usage (dashboards).
    pub usage: Arc<dyn UsageStore>,
}
