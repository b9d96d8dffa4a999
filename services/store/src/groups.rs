//! Groups and their members ([`GroupStore`]). Every key leads with `app_id`.
//!
//! Limits (group size, groups per user) are enforced inside the same
//! transaction that adds members, so two concurrent adds cannot both slip
//! under a limit on the same group.

use async_trait::async_trait;
use confab_model::{AppId, GroupId, GroupInfo, GroupMember, GroupRole, JoinPolicy, UserId};

use crate::Result;

/// A group to create: `owner` becomes its owner, `members` plain members.
#[derive(Debug, Clone)]
pub struct NewGroup {
    pub app_id: AppId,
    pub group_id: GroupId,
    pub owner: UserId,
    pub name: String,
    pub avatar: String,
    pub announcement: String,
    pub custom: String,
    pub join_policy: JoinPolicy,
    /// Without the owner; repeats are ignored.
    pub members: Vec<UserId>,
    /// First `seq` members may read (1 for a new conversation).
    pub join_seq: u64,
    pub created_at: i64,
    pub limits: GroupLimits,
}

/// The `join_seq` of a member added before their `joined` event is stored:
/// they may read nothing of the group until [`GroupStore::start_membership`]
/// sets it to that event's `seq`. A membership starts at its event, not at
/// the head the adder saw: a send that takes a `seq` between the two is not
/// the new member's (under read diffusion they would pull it).
pub const JOIN_PENDING: u64 = i64::MAX as u64;

/// Quotas checked when members are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLimits {
    /// Most members of one group, the owner included.
    pub max_members: u64,
    /// Most groups one user may be in.
    pub max_groups_per_user: u64,
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupUpdate {
    pub name: Option<String>,
    pub avatar: Option<String>,
    pub announcement: Option<String>,
    pub custom: Option<String>,
    pub join_policy: Option<JoinPolicy>,
    pub mute_all: Option<bool>,
}

impl GroupUpdate {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A stored request to join an approval group. One per (group, user): a
/// repeated request replaces the earlier one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub user_id: UserId,
    /// When it was (last) sent, ms.
    pub requested_at: i64,
    /// When it lapses unless decided, ms. Lapsed requests are never listed
    /// or taken.
    pub expires_at: i64,
}

/// The event a membership change owes the group's conversation (joined,
/// left, removed, dismissed). The store keeps it as a pending row written in
/// the change's own transaction, so a crash between the change and the
/// event's append cannot lose the event: whoever next finds the row (the
/// request's retry, or logic's sweep) appends it — idempotently, `id` is the
/// event message's `client_msg_id` — and clears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEvent {
    /// Unique per change (a ULID); the event's `client_msg_id`.
    pub id: String,
    /// The event kind (`confab_model::group_event`).
    pub kind: String,
    /// Who made the change: the event's sender.
    pub actor: UserId,
    /// When the change was made, ms.
    pub at: i64,
}

/// A stored [`MemberEvent`] whose message is not yet known to be appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    pub app_id: AppId,
    pub group_id: GroupId,
    pub event: MemberEvent,
    /// The users the change affected: added, removed, or (dismissal) every
    /// member the group had.
    pub users: Vec<UserId>,
}

#[async_trait]
pub trait GroupStore: Send + Sync + 'static {
    /// Creates a group with its owner and initial members. `Conflict` if the
    /// id was ever used in the app (dismissed groups included); `Limit` if a
    /// quota would be exceeded (nothing is written then).
    async fn create_group(&self, group: NewGroup) -> Result<GroupInfo>;

    /// A group, dismissed or not; `None` if it never existed.
    async fn group(&self, app: &AppId, group: &GroupId) -> Result<Option<GroupInfo>>;

    /// Changes a live group's fields; `NotFound` if it does not exist or was
    /// dismissed.
    async fn update_group(
        &self,
        app: &AppId,
        group: &GroupId,
        update: GroupUpdate,
    ) -> Result<GroupInfo>;

    /// Adds members (role member). Users already in the group are skipped;
    /// returns the ones actually added and, if any were, stores `event` as
    /// pending for them in the same transaction. `Limit` (nothing written)
    /// if the group or one of the users would go over `limits`; `NotFound`
    /// for a group that does not exist or was dismissed.
    async fn add_members(
        &self,
        app: &AppId,
        group: &GroupId,
        users: &[UserId],
        join_seq: u64,
        limits: GroupLimits,
        event: &MemberEvent,
    ) -> Result<Vec<UserId>>;

    /// Sets the `join_seq` of those of `users` whose membership is still
    /// [`JOIN_PENDING`] to `seq` (their `joined` event's). Others, and users
    /// no longer members, are left as they are, so a repeat (a retry, the
    /// sweep) changes nothing.
    async fn start_membership(
        &self,
        app: &AppId,
        group: &GroupId,
        users: &[UserId],
        seq: u64,
    ) -> Result<()>;

    /// Removes members; returns the ones that were members and, if any
    /// were, stores `event` as pending for them in the same transaction.
    /// The owner is never removed here (transfer or dismiss instead).
    async fn remove_members(
        &self,
        app: &AppId,
        group: &GroupId,
        users: &[UserId],
        event: &MemberEvent,
    ) -> Result<Vec<UserId>>;

    /// The group's pending membership events, oldest first.
    async fn pending_events(&self, app: &AppId, group: &GroupId) -> Result<Vec<PendingEvent>>;

    /// Pending membership events of any app made before `before` (ms),
    /// oldest first, at most `limit`: what a crash left behind.
    async fn stale_pending_events(&self, before: i64, limit: u32) -> Result<Vec<PendingEvent>>;

    /// Forgets a pending event once its message is stored. Clearing an
    /// event that is not pending is not an error.
    async fn clear_pending_event(&self, app: &AppId, group: &GroupId, id: &str) -> Result<()>;

    async fn member(
        &self,
        app: &AppId,
        group: &GroupId,
        user: &UserId,
    ) -> Result<Option<GroupMember>>;

    /// Members ordered by user id, starting after `after`, at most `limit`.
    async fn members(
        &self,
        app: &AppId,
        group: &GroupId,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<GroupMember>>;

    /// Sets a member's role to admin or member (not owner: see
    /// [`Self::transfer_owner`]). Returns false if `user` is not a member.
    async fn set_role(
        &self,
        app: &AppId,
        group: &GroupId,
        user: &UserId,
        role: GroupRole,
    ) -> Result<bool>;

    /// Makes `to` (a member) the owner and the current owner a plain member.
    /// `NotFound` if the group is gone or `to` is not a member.
    async fn transfer_owner(&self, app: &AppId, group: &GroupId, to: &UserId) -> Result<()>;

    /// Mutes a member until `until` (ms; 0 lifts it). False if not a member.
    async fn mute_member(
        &self,
        app: &AppId,
        group: &GroupId,
        user: &UserId,
        until: i64,
    ) -> Result<bool>;

    /// Dismisses a group: drops every member, keeps the record (so the id
    /// is never reused) and stores `event` as pending for every member it
    /// had, in one transaction. Returns false (nothing written) if it was
    /// already dismissed or never existed.
    async fn dismiss(&self, app: &AppId, group: &GroupId, event: &MemberEvent) -> Result<bool>;

    /// How many groups `user` is a member of.
    async fn group_count(&self, app: &AppId, user: &UserId) -> Result<u64>;

    /// The groups `user` is a member of, by id, after `after`, at most `limit`.
    async fn groups_of(
        &self,
        app: &AppId,
        user: &UserId,
        after: Option<&GroupId>,
        limit: u32,
    ) -> Result<Vec<GroupId>>;

    /// Stores a join request, replacing any earlier one of the same user
    /// (a re-sent request starts a new expiry).
    async fn put_join_request(
        &self,
        app: &AppId,
        group: &GroupId,
        request: &JoinRequest,
    ) -> Result<()>;

    /// Join requests not lapsed at `now`, ordered by user id, after `after`,
    /// at most `limit`.
    async fn join_requests(
        &self,
        app: &AppId,
        group: &GroupId,
        after: Option<&UserId>,
        limit: u32,
        now: i64,
    ) -> Result<Vec<JoinRequest>>;

    /// Deletes `user`'s request (lapsed or not) and returns it if it had
    /// not lapsed at `now`: a decision acts on a live request only, and
    /// exactly once when two admins decide at the same time.
    async fn take_join_request(
        &self,
        app: &AppId,
        group: &GroupId,
        user: &UserId,
        now: i64,
    ) -> Result<Option<JoinRequest>>;

    /// Records that the group message at `seq` mentions `users` (repeats
    /// ignored) and, with `all`, every member (@all).
    async fn add_mentions(
        &self,
        app: &AppId,
        group: &GroupId,
        seq: u64,
        users: &[UserId],
        all: bool,
    ) -> Result<()>;

    /// How many messages of the group with `seq > after_seq` mention `user`
    /// by id or with @all.
    async fn unread_mentions(
        &self,
        app: &AppId,
        group: &GroupId,
        user: &UserId,
        after_seq: u64,
    ) -> Result<u64>;
}

/// A pending event's users as stored (a JSON array of ids).
pub(crate) fn encode_users(users: &[UserId]) -> String {
    serde_json::Value::from(users.iter().map(UserId::as_str).collect::<Vec<_>>()).to_string()
}

pub(crate) fn decode_users(text: &str) -> Result<Vec<UserId>> {
    let bad = || crate::StoreError::Corrupt("a pending group event has bad users".into());
    let ids: Vec<String> = serde_json::from_str(text).map_err(|_| bad())?;
    ids.iter()
        .map(|id| UserId::parse(id).map_err(|_| bad()))
        .collect()
}

/// A pending event from its stored columns.
pub(crate) fn pending_event(
    app_id: &str,
    group_id: &str,
    id: String,
    kind: String,
    actor: &str,
    users: &str,
    at: i64,
) -> Result<PendingEvent> {
    let bad =
        |what: &str| crate::StoreError::Corrupt(format!("a pending group event has a bad {what}"));
    Ok(PendingEvent {
        app_id: AppId::parse(app_id).map_err(|_| bad("app_id"))?,
        group_id: GroupId::parse(group_id).map_err(|_| bad("group_id"))?,
        event: MemberEvent {
            id,
            kind,
            actor: UserId::parse(actor).map_err(|_| bad("actor"))?,
            at,
        },
        users: decode_users(users)?,
    })
}
