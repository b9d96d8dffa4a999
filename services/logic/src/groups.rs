//! Groups: the `group_*` ops, group sends (write diffusion) and the member
//! cache that the hot path reads.
//!
//! Every change is made in the store first, then recorded as an `event`
//! message in the group's conversation (one `seq`; one inbox entry per
//! member, or under read diffusion pulled like the group's messages) so
//! that offline members see it on sync, and pushed to online members as
//! `{"op":"event"}` frames.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use confab_model::{
    AppId, ConvId, GroupId, GroupInfo, GroupMember, GroupRole, JoinPolicy, Peer, PeerKind,
    StoredMessage, UserId, group_event,
};
use confab_proto::ops::{self, code};
use confab_proto::{
    Frame, Group as WireGroup, GroupJoinRequest as WireJoinRequest, GroupMember as WireMember,
};
use confab_store::{
    GroupLimits, GroupUpdate, JOIN_PENDING, JoinRequest, MemberEvent, NewGroup, NewMessage,
    PendingEvent,
};

use crate::error::{LogicError, Result};
use crate::handlers::wire_message;
use crate::{Logic, Session};

const MAX_NAME: usize = 128;
const MAX_AVATAR: usize = 1024;
const MAX_ANNOUNCEMENT: usize = 4096;
const MAX_CUSTOM: usize = 4096;
/// Most users one `group_create`, `group_add` or `group_remove` may name.
const MAX_USERS_PER_REQUEST: usize = 500;
const MEMBERS_DEFAULT: u32 = 100;
const MEMBERS_MAX: u32 = 500;
/// Most users one group message may mention by id.
pub(crate) const MAX_MENTIONS: usize = 100;
/// How long a join request waits for an admin before it lapses. A user who
/// asks again replaces the request and starts a new wait.
const JOIN_REQUEST_TTL_MS: i64 = 7 * 24 * 3600 * 1000;
/// Member lists are cached per process. A change made through this process
/// invalidates its entry at once; the TTL bounds how long another logic node
/// (which cannot invalidate ours) may act on an old list.
const CACHE_TTL: Duration = Duration::from_secs(2);
/// Page size when loading a whole member list into the cache.
const LOAD_PAGE: u32 = 1000;

/// A group and its members as the hot path sees them.
pub(crate) struct CachedGroup {
    pub info: GroupInfo,
    pub members: HashMap<UserId, GroupMember>,
    loaded: Instant,
    /// Whether a member still had read-fanout messages of the group to pull,
    /// asked once per load when the group is at or below the threshold
    /// (see [`read_diffused`]).
    unpulled: std::sync::OnceLock<bool>,
}

impl CachedGroup {
    pub fn member(&self, user: &UserId) -> Option<&GroupMember> {
        self.members.get(user)
    }
}

/// Member lists by (app, group), loaded on a miss or after [`CACHE_TTL`].
#[derive(Default)]
pub(crate) struct GroupCache {
    entries: Mutex<HashMap<(AppId, GroupId), Arc<CachedGroup>>>,
}

impl GroupCache {
    fn get(&self, key: &(AppId, GroupId)) -> Option<Arc<CachedGroup>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|g| g.loaded.elapsed() < CACHE_TTL)
            .cloned()
    }

    fn put(&self, key: (AppId, GroupId), group: Arc<CachedGroup>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        // Drop expired entries now and then so that the map does not keep
        // every group ever touched.
        if entries.len() > 10_000 {
            entries.retain(|_, g| g.loaded.elapsed() < CACHE_TTL);
        }
        entries.insert(key, group);
    }

    pub fn invalidate(&self, app: &AppId, group: &GroupId) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&(app.clone(), group.clone()));
    }
}

fn no_such_group() -> LogicError {
    // Same answer for a group that does not exist and one the caller is not
    // in: membership of other groups is not revealed.
    LogicError::not_found("no such group")
}

/// The group and its members, from the cache or the store. `not_found` for
/// a group that does not exist or was dismissed.
pub(crate) async fn load(logic: &Logic, app: &AppId, group: &GroupId) -> Result<Arc<CachedGroup>> {
    let key = (app.clone(), group.clone());
    if let Some(g) = logic.groups.get(&key) {
        return Ok(g);
    }
    let store = &logic.stores.groups;
    let info = match store.group(app, group).await? {
        Some(info) if !info.dismissed => info,
        _ => return Err(no_such_group()),
    };
    let mut members = HashMap::with_capacity(info.member_count as usize);
    let mut after: Option<UserId> = None;
    loop {
        let page = store.members(app, group, after.as_ref(), LOAD_PAGE).await?;
        let full = page.len() == LOAD_PAGE as usize;
        after = page.last().map(|m| m.user_id.clone());
        members.extend(page.into_iter().map(|m| (m.user_id.clone(), m)));
        if !full {
            break;
        }
    }
    let cached = Arc::new(CachedGroup {
        info,
        members,
        loaded: Instant::now(),
        unpulled: std::sync::OnceLock::new(),
    });
    logic.groups.put(key, cached.clone());
    Ok(cached)
}

/// The caller's membership of `group`, or `not_found`.
pub(crate) async fn membership(
    logic: &Logic,
    s: &Session,
    group: &GroupId,
) -> Result<(Arc<CachedGroup>, GroupMember)> {
    let g = load(logic, &s.app_id, group).await?;
    if s.is_app() {
        return Ok((g, crate::app_groups::app_membership(s)));
    }
    let mut me = g.member(&s.user_id).cloned().ok_or_else(no_such_group)?;
    if me.join_seq == JOIN_PENDING {
        // Cached between the add and its `joined` event (on another node
        // the cache may be 2 s old): the store knows where it started.
        me = logic
            .stores
            .groups
            .member(&s.app_id, group, &s.user_id)
            .await?
            .ok_or_else(no_such_group)?;
    }
    Ok((g, me))
}

/// Who gets a message sent to `group` by `s` now, and how.
pub(crate) struct Fanout {
    /// Every member (the sender included when a member).
    pub members: Vec<UserId>,
    /// Read diffusion: the group has more members than the app's
    /// `read_diffusion_threshold`, or a member still has to pull some of
    /// its read-fanout messages (see `read_diffused`). The message is
    /// stored once with no inbox entry; the other members get a
    /// `group_notify`, and everyone (the sender right after the send) pulls it
    /// (`InboxStore::pull_group_timelines`). Decided per message, so a
    /// group crosses the threshold between two seqs, and the store's
    /// per-message flag says which messages are still to be pulled.
    pub read: bool,
}

/// Who gets a message sent to `group` by `s` now: every member, if the
/// sender may speak.
pub(crate) async fn send_recipients(
    logic: &Logic,
    s: &Session,
    group: &GroupId,
    read_diffusion_threshold: u32,
) -> Result<Fanout> {
    let (g, me) = membership(logic, s, group).await?;
    if me.join_seq == JOIN_PENDING {
        // Their membership starts at the `joined` event still being stored
        // (milliseconds): a message before it could never be theirs to read.
        return Err(no_such_group());
    }
    let now = confab_model::now_ms();
    if me.muted_at(now) {
        return Err(LogicError::new(
            code::MUTED,
            format!("you are muted in this group until {}", me.muted_until),
        ));
    }
    if g.info.mute_all && !me.role.manages() {
        return Err(LogicError::new(
            code::MUTED,
            "the whole group is muted; only its owner and admins may send",
        ));
    }
    let read = read_diffused(logic, &s.app_id, &g, read_diffusion_threshold).await?;
    // Every member, those whose `joined` event is not stored yet included:
    // the recipients are fixed before the message takes its seq, which may
    // come after that event (a message before it is one extra entry for
    // them; leaving them out could lose one after it).
    Ok(Fanout {
        members: members_of(&g),
        read,
    })
}

/// Whether the group's next message or event fans out by read diffusion:
/// above the threshold, and also at or below it while a member still has
/// read-fanout messages of the group to pull — a write-diffused entry
/// would come before those in their inbox. So a group that shrinks goes
/// back to write diffusion once every member has pulled (any `sync`,
/// `conversations`, `read` or `login`). The store is asked once per cache
/// load (one index probe for a group that never used read diffusion): a
/// `false` may be stale for as long as the member cache (2 s) if another
/// logic node, on its own cached list, still stored a read-fanout message
/// meanwhile — the same window as for member lists (protocol.md §4.15).
async fn read_diffused(
    logic: &Logic,
    app: &AppId,
    g: &CachedGroup,
    threshold: u32,
) -> Result<bool> {
    if g.members.len() > threshold as usize {
        return Ok(true);
    }
    if let Some(unpulled) = g.unpulled.get() {
        return Ok(*unpulled);
    }
    let unpulled = logic
        .stores
        .inbox
        .group_has_unpulled(app, &g.info.group_id)
        .await?;
    Ok(*g.unpulled.get_or_init(|| unpulled))
}

/// Most entries one pull gives a user (a `sync` reply then says `has_more`).
pub(crate) const PULL_MAX: u32 = 500;

/// Read diffusion: gives the user inbox entries for what their
/// read-diffused groups hold for them (a no-op read when nothing does), so
/// that `sync`, `conversations`, `read` and the login head see the same as
/// under write diffusion. Returns whether the pull was cut at [`PULL_MAX`].
pub(crate) async fn pull(logic: &Logic, app: &AppId, user: &UserId) -> Result<bool> {
    Ok(pull_page(logic, app, user).await?.more)
}

/// One pull of at most [`PULL_MAX`] entries, counted.
async fn pull_page(logic: &Logic, app: &AppId, user: &UserId) -> Result<confab_store::Pulled> {
    let pulled = logic
        .stores
        .inbox
        .pull_group_timelines(app, user, PULL_MAX)
        .await?;
    if pulled.entries > 0 {
        metrics::counter!("confab_logic_group_pulled_total").increment(u64::from(pulled.entries));
    }
    Ok(pulled)
}

/// Most pull pages [`pull_own`] goes through looking for one message.
const PULL_OWN_PAGES: usize = 40;

/// Read diffusion: pulls `user`'s groups until the entry of their own
/// read-fan-out message `m` is given (in `seq` order with the group's other
/// messages), and returns its `inbox_seq`. `None` when another pull of the
/// same user (a sync racing the send) gave it first: the entry is there
/// all the same, only this reply goes without its number.
pub(crate) async fn pull_own(
    logic: &Logic,
    app: &AppId,
    user: &UserId,
    m: &StoredMessage,
) -> Result<Option<u64>> {
    for _ in 0..PULL_OWN_PAGES {
        let pulled = pull_page(logic, app, user).await?;
        if let Some(e) = pulled
            .given
            .iter()
            .find(|e| e.conv_id == m.conv_id.as_str() && e.seq == m.seq)
        {
            return Ok(Some(e.inbox_seq));
        }
        if !pulled.more {
            return Ok(None);
        }
    }
    Ok(None)
}

/// Read diffusion: gives `user`, who has just left `group`, what it held
/// for them through `through_seq` (the event of their leaving), and returns
/// that event's `inbox_seq` (`None` if an earlier try gave it).
async fn pull_through(
    logic: &Logic,
    app: &AppId,
    user: &UserId,
    group: &GroupId,
    through_seq: u64,
) -> Result<Option<u64>> {
    let mut found = None;
    loop {
        let pulled = logic
            .stores
            .inbox
            .pull_group_through(app, user, group, through_seq, PULL_MAX)
            .await?;
        if pulled.entries > 0 {
            metrics::counter!("confab_logic_group_pulled_total")
                .increment(u64::from(pulled.entries));
        }
        if let Some(e) = pulled.given.iter().find(|e| e.seq == through_seq) {
            found = Some(e.inbox_seq);
        }
        if !pulled.more {
            return Ok(found);
        }
    }
}

/// The `group_notify` push of a read-diffused group message: one frame,
/// shared by every member's delivery.
pub(crate) fn notify_push(m: &StoredMessage) -> Frame {
    Frame {
        op: ops::GROUP_NOTIFY.into(),
        group_id: m.to.id.to_string(),
        conv_id: m.conv_id.as_str().to_owned(),
        seq: Some(m.seq),
        ..Default::default()
    }
}

fn parse_group_id(id: &str) -> Result<GroupId> {
    if id.is_empty() {
        return Err(LogicError::bad_request("group_id is required"));
    }
    GroupId::parse(id).map_err(|e| LogicError::bad_request(format!("group_id: {e}")))
}

fn parse_user(id: &str, what: &str) -> Result<UserId> {
    if id.is_empty() {
        return Err(LogicError::bad_request(format!("{what} is required")));
    }
    UserId::parse(id).map_err(|e| LogicError::bad_request(format!("{what}: {e}")))
}

fn parse_users(ids: &[String]) -> Result<Vec<UserId>> {
    if ids.len() > MAX_USERS_PER_REQUEST {
        return Err(LogicError::bad_request(format!(
            "user_ids names more than {MAX_USERS_PER_REQUEST} users"
        )));
    }
    ids.iter().map(|id| parse_user(id, "user_ids")).collect()
}

fn check_text(value: Option<String>, what: &str, max: usize) -> Result<Option<String>> {
    match value {
        Some(v) if v.len() > max => Err(LogicError::bad_request(format!(
            "{what} is longer than {max} bytes"
        ))),
        Some(v) if v.chars().any(|c| c.is_control() && c != '\n') => Err(LogicError::bad_request(
            format!("{what} must not contain control characters"),
        )),
        other => Ok(other),
    }
}

fn check_custom(value: Option<String>) -> Result<Option<String>> {
    let Some(text) = value else {
        return Ok(None);
    };
    if text.len() > MAX_CUSTOM {
        return Err(LogicError::bad_request(format!(
            "custom is longer than {MAX_CUSTOM} bytes"
        )));
    }
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(_)) => Ok(Some(text)),
        _ => Err(LogicError::bad_request("custom must be a JSON object")),
    }
}

fn parse_policy(value: Option<&str>) -> Result<Option<JoinPolicy>> {
    value
        .map(|p| {
            JoinPolicy::parse(p).map_err(|_| {
                LogicError::bad_request("join_policy must be one of open, approval, invite_only")
            })
        })
        .transpose()
}

fn limits(logic: &Logic, app: &AppId) -> Result<GroupLimits> {
    let quotas = logic.app_settings(app)?.quotas;
    Ok(GroupLimits {
        max_members: u64::from(quotas.max_group_size),
        max_groups_per_user: u64::from(quotas.max_groups_per_user),
    })
}

/// Maps a store limit to the quota metric as well as the error.
fn quota<T>(r: std::result::Result<T, confab_store::StoreError>) -> Result<T> {
    r.map_err(|e| {
        if matches!(e, confab_store::StoreError::Limit(_)) {
            metrics::counter!("confab_quota_rejections_total", "quota" => "groups").increment(1);
        }
        LogicError::from(e)
    })
}

fn wire_group(g: &GroupInfo) -> WireGroup {
    WireGroup {
        group_id: g.group_id.as_str().to_owned(),
        name: g.name.clone(),
        avatar: g.avatar.clone(),
        announcement: g.announcement.clone(),
        custom: g.custom.clone(),
        join_policy: g.join_policy.as_str().to_owned(),
        owner: g.owner.as_str().to_owned(),
        mute_all: g.mute_all,
        member_count: g.member_count,
        created_at: g.created_at,
    }
}

fn wire_member(m: &GroupMember) -> WireMember {
    WireMember {
        user_id: m.user_id.as_str().to_owned(),
        role: m.role.as_str().to_owned(),
        muted_until: m.muted_until,
        joined_at: m.joined_at,
    }
}

/// A group event to store, for [`append_event`].
struct NewEvent<'a> {
    kind: &'a str,
    fields: serde_json::Map<String, serde_json::Value>,
    recipients: Vec<UserId>,
    /// Dedupes the event: a retry or the sweep stores it once.
    client_msg_id: String,
    /// The users a `joined` event makes members: their membership (what
    /// they may read and pull) starts at the event's `seq`.
    joining: &'a [UserId],
}

/// Who an event is from: the actor, and the session that made the change
/// (which gets the reply instead of the push), if it is still there.
struct EventOrigin<'a> {
    app: &'a AppId,
    actor: &'a UserId,
    session: Option<&'a str>,
}

impl<'a> From<&'a Session> for EventOrigin<'a> {
    fn from(s: &'a Session) -> Self {
        Self {
            app: &s.app_id,
            actor: &s.user_id,
            session: Some(&s.session_id),
        }
    }
}

/// Stores an event in the group's conversation for `recipients` and pushes
/// it to their online devices (not to the session that caused it, which
/// gets the reply). Returns the stored event and the actor's inbox_seq.
async fn record_event(
    logic: &Logic,
    s: &Session,
    group: &GroupId,
    kind: &str,
    fields: serde_json::Map<String, serde_json::Value>,
    recipients: Vec<UserId>,
) -> Result<(StoredMessage, Option<u64>)> {
    // Fresh each time: such an event is never a duplicate of another.
    let id = ulid::Ulid::new().to_string();
    append_event(
        logic,
        &s.into(),
        group,
        NewEvent {
            kind,
            fields,
            recipients,
            client_msg_id: id,
            joining: &[],
        },
    )
    .await
}

/// [`record_event`] with a given `client_msg_id`: appending the same
/// membership event twice (a retry, the sweep) stores and pushes it once.
///
/// In a read-diffused group (more members than the app's threshold) the
/// event is stored once, like the group's messages: members get its inbox
/// entry when they pull, so that every member's inbox holds the group in
/// `seq` order; their online devices still get the `event` push at once
/// (without `inbox_seq`). Recipients who are no longer members (the removed,
/// the quitter, a dismissed group's) cannot pull and get their entry now.
async fn append_event(
    logic: &Logic,
    origin: &EventOrigin<'_>,
    group: &GroupId,
    event: NewEvent<'_>,
) -> Result<(StoredMessage, Option<u64>)> {
    let NewEvent {
        kind,
        mut fields,
        recipients,
        client_msg_id,
        joining,
    } = event;
    fields.insert("type".into(), confab_model::EVENT_BODY_TYPE.into());
    fields.insert("event".into(), kind.into());
    fields.insert("actor".into(), origin.actor.as_str().into());
    fields.insert("group_id".into(), group.as_str().into());
    let threshold = logic.app_settings(origin.app)?.read_diffusion_threshold;
    // Callers that changed the membership loaded it afresh (see
    // `event_recipients`); a dismissed group has no members left.
    let current = match load(logic, origin.app, group).await {
        Ok(g) => Some(g),
        Err(e) if e.code == code::NOT_FOUND => None,
        Err(e) => return Err(e),
    };
    // A dismissed group's event is stored once and pulled through by each
    // former member (below), like a removal's under read diffusion: what
    // they had still to pull comes first, whatever the group's mode was.
    let read = match &current {
        Some(g) => read_diffused(logic, origin.app, g, threshold).await?,
        None => true,
    };
    let (direct, pulling): (Vec<UserId>, Vec<UserId>) = match &current {
        Some(g) if read => recipients.into_iter().partition(|u| g.member(u).is_none()),
        _ => (recipients, vec![]),
    };
    // Read diffusion: the recipients who are no longer members (the
    // removed, the quitter) get no entry at append. They pull the group
    // through this event instead, so that what they had still to pull when
    // they left (stored before the event, while they were members) comes
    // first, in seq order.
    let ends_membership = matches!(
        kind,
        group_event::LEFT | group_event::REMOVED | group_event::DISMISSED
    );
    let (direct, leaving) = if read && ends_membership {
        (vec![], direct)
    } else {
        // Other events reach non-members directly (say, a `joined` event
        // settled late for a user removed since): no pull for them.
        (direct, vec![])
    };
    let appended = logic
        .stores
        .messages
        .append(NewMessage {
            app_id: origin.app.clone(),
            conv_id: ConvId::group(group),
            msg_id: ulid::Ulid::new().to_string(),
            from: origin.actor.clone(),
            to: Peer {
                kind: PeerKind::Group,
                id: Arc::from(group.as_str()),
            },
            body: serde_json::Value::Object(fields).to_string(),
            ts: confab_model::now_ms(),
            client_msg_id,
            recipients: direct,
            read_fanout: read,
        })
        .await?;
    let m = appended.message;
    // On a repeat too, as for `joining` below: a pull gives nothing twice.
    let mut left_entries = Vec::with_capacity(leaving.len());
    for user in &leaving {
        if let Some(inbox_seq) = pull_through(logic, origin.app, user, group, m.seq).await? {
            left_entries.push((user.clone(), inbox_seq));
        }
    }
    if !joining.is_empty() {
        // Before any pull (the actor's below included), and on a repeat too:
        // the try that stored the event may have died before this. On an
        // error the event stays pending, and its settling comes back here.
        logic
            .stores
            .groups
            .start_membership(origin.app, group, joining, m.seq)
            .await?;
        logic.groups.invalidate(origin.app, group);
    }
    if appended.duplicate {
        return Ok((m, None));
    }
    metrics::counter!("confab_logic_group_events_total", "event" => event_label(kind)).increment(1);
    crate::webhooks::group_event(logic, origin.app, origin.actor, &m, kind);
    let mut own = None;
    let mut entries = appended.inbox;
    entries.extend(left_entries);
    if pulling.contains(origin.actor) {
        // The actor's entry comes from their pull (in seq order); the reply
        // and their other devices carry its inbox_seq as under write
        // diffusion.
        match pull_own(logic, origin.app, origin.actor, &m).await {
            Ok(Some(inbox_seq)) => entries.push((origin.actor.clone(), inbox_seq)),
            Ok(None) => {}
            // The event is stored: its pushes go out all the same (a retry
            // or the sweep would find it stored and push nothing).
            Err(e) => {
                tracing::warn!(error = %e, "the actor's pull after a read-diffused event failed")
            }
        }
    }
    for (user, inbox_seq) in &entries {
        if user == origin.actor {
            own = Some(*inbox_seq);
        }
        let push = Arc::new(event_push(&m, Some(*inbox_seq), kind));
        let except = origin.session.filter(|_| user == origin.actor);
        logic.delivery.deliver(origin.app, user, push, except);
    }
    if !pulling.is_empty() {
        // The direct recipients are no members, so of these only the actor
        // (when their pull numbered the event above) has had their push.
        let push = Arc::new(event_push(&m, None, kind));
        for user in pulling
            .iter()
            .filter(|u| own.is_none() || *u != origin.actor)
        {
            let except = origin.session.filter(|_| user == origin.actor);
            logic
                .delivery
                .deliver(origin.app, user, push.clone(), except);
        }
    }
    Ok((m, own))
}

/// A membership change's event, before the change: the store keeps it
/// pending in the change's own transaction (see [`MemberEvent`]).
fn member_event(s: &Session, kind: &str) -> MemberEvent {
    MemberEvent {
        id: ulid::Ulid::new().to_string(),
        kind: kind.to_owned(),
        actor: s.user_id.clone(),
        at: confab_model::now_ms(),
    }
}

/// Appends a membership change's pending event (once, whoever calls) and
/// clears it. Its recipients are the group's current members plus the users
/// the change affected (the removed must learn of their removal; a dismissed
/// group's event goes to the members it had).
async fn settle(logic: &Logic, pending: &PendingEvent) -> Result<(StoredMessage, Option<u64>)> {
    let (app, group) = (&pending.app_id, &pending.group_id);
    let kind = pending.event.kind.as_str();
    let recipients = event_recipients(logic, app, group, kind, &pending.users).await?;
    let fields = if kind == group_event::DISMISSED {
        serde_json::Map::new()
    } else {
        fields(&[("users", users_json(&pending.users))])
    };
    let origin = EventOrigin {
        app,
        actor: &pending.event.actor,
        session: None,
    };
    let stored = append_event(
        logic,
        &origin,
        group,
        NewEvent {
            kind,
            fields,
            recipients,
            client_msg_id: pending.event.id.clone(),
            joining: if kind == group_event::JOINED {
                &pending.users
            } else {
                &[]
            },
        },
    )
    .await?;
    clear(logic, app, group, &pending.event.id).await;
    Ok(stored)
}

/// Who gets a membership event: the group's members now (read from the
/// store after the change, not an older cached list) plus the users the
/// change affected — the removed learn of their removal; a dismissed group
/// has no members left, so its event goes to the `affected` it had.
async fn event_recipients(
    logic: &Logic,
    app: &AppId,
    group: &GroupId,
    kind: &str,
    affected: &[UserId],
) -> Result<Vec<UserId>> {
    logic.groups.invalidate(app, group);
    let mut recipients: Vec<UserId> = match load(logic, app, group).await {
        Ok(g) if kind != group_event::DISMISSED => members_of(&g),
        Ok(_) => vec![],
        Err(e) if e.code == code::NOT_FOUND => vec![],
        Err(e) => return Err(e),
    };
    let mut seen: std::collections::HashSet<UserId> = recipients.iter().cloned().collect();
    for user in affected {
        if seen.insert(user.clone()) {
            recipients.push(user.clone());
        }
    }
    Ok(recipients)
}

/// Forgets a pending event whose message is stored. A failure only costs a
/// repeat: the next settle finds the message by its id and stores nothing.
async fn clear(logic: &Logic, app: &AppId, group: &GroupId, id: &str) {
    if let Err(e) = logic
        .stores
        .groups
        .clear_pending_event(app, group, id)
        .await
    {
        tracing::warn!(app = %app, group = %group, error = %e, "clearing a stored group event failed; the sweep retries");
    }
}

/// Settles the group's pending membership events: a retried change finds
/// nothing left to change, but the first try may have died before storing
/// its event.
async fn settle_group(logic: &Logic, app: &AppId, group: &GroupId) -> Result<()> {
    for pending in logic.stores.groups.pending_events(app, group).await? {
        settle(logic, &pending).await?;
    }
    Ok(())
}

/// Settles membership events left pending for longer than `older_than` by
/// a request that died (a crashed node or store) and was never retried.
/// Returns how many were settled.
pub async fn settle_stale_events(logic: &Logic, older_than: Duration) -> Result<usize> {
    let now = confab_model::now_ms();
    let before = now - older_than.as_millis() as i64;
    let stale = logic
        .stores
        .groups
        .stale_pending_events(before, 100)
        .await?;
    let mut settled = 0;
    for pending in &stale {
        let (app, group) = (&pending.app_id, &pending.group_id);
        if pending.event.at < now - GIVE_UP_AFTER_MS {
            // Past this, the message store may have forgotten the id it
            // dedupes on: appending could store the event twice.
            tracing::error!(app = %app, group = %group, kind = %pending.event.kind, id = %pending.event.id, "a membership event stayed pending for over an hour; giving it up");
            if pending.event.kind == group_event::JOINED {
                // Without their event, the members it added would stay
                // pending (reading and receiving nothing) for good: they
                // start after the conversation's last message instead.
                if let Err(e) = start_without_event(logic, app, group, &pending.users).await {
                    tracing::warn!(app = %app, group = %group, error = %e, "starting the memberships of a given-up joined event failed; retrying next run");
                    continue;
                }
            }
            clear(logic, app, group, &pending.event.id).await;
            continue;
        }
        // One row failing (its group's store call, say) holds up no other.
        match settle(logic, pending).await {
            Ok(_) => {
                settled += 1;
                tracing::info!(app = %app, group = %group, kind = %pending.event.kind, "stored a membership event a failed request left pending");
            }
            Err(e) => {
                tracing::warn!(app = %app, group = %group, error = %e, "settling a pending membership event failed; retrying next run");
            }
        }
    }
    Ok(settled)
}

/// Starts the memberships of `users` after the conversation's last message
/// (for a `joined` event that will never be stored).
async fn start_without_event(
    logic: &Logic,
    app: &AppId,
    group: &GroupId,
    users: &[UserId],
) -> Result<()> {
    let last = logic
        .stores
        .messages
        .history(app, &ConvId::group(group), None, 1)
        .await?;
    let next = last.first().map_or(1, |m| m.seq + 1);
    logic
        .stores
        .groups
        .start_membership(app, group, users, next)
        .await?;
    logic.groups.invalidate(app, group);
    Ok(())
}

/// How long a membership event may stay pending before the sweep gives it
/// up (an hour: well inside the message store's dedupe window, which is the
/// app's retention of at least a day).
const GIVE_UP_AFTER_MS: i64 = 3_600_000;

/// Runs [`settle_stale_events`] every `every`, for as long as the process runs.
pub async fn run_event_sweep(logic: Arc<Logic>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        // Older than a few periods: a live request settles its own event
        // within milliseconds; settling it here too would only be a repeat.
        if let Err(e) = settle_stale_events(&logic, every * 3).await {
            tracing::warn!(error = %e, "settling pending group events failed; retrying next run");
        }
    }
}

/// The `event` push: the stored event as a `message` push would carry it,
/// plus its kind in `event`.
fn event_push(m: &StoredMessage, inbox_seq: Option<u64>, kind: &str) -> Frame {
    let w = wire_message(m, inbox_seq);
    Frame {
        op: ops::EVENT.into(),
        event: kind.to_owned(),
        inbox_seq: w.inbox_seq,
        conv_id: w.conv_id,
        seq: Some(w.seq),
        msg_id: w.msg_id,
        from: w.from,
        to: w.to,
        body: w.body,
        ts: Some(w.ts),
        client_msg_id: w.client_msg_id,
        group_id: m.to.id.to_string(),
        ..Default::default()
    }
}

fn event_label(kind: &str) -> &'static str {
    use group_event::*;
    [
        CREATED,
        JOINED,
        LEFT,
        REMOVED,
        MUTED,
        UNMUTED,
        ROLE,
        TRANSFERRED,
        UPDATED,
        DISMISSED,
    ]
    .into_iter()
    .find(|k| *k == kind)
    .unwrap_or("other")
}

fn users_json(users: &[UserId]) -> serde_json::Value {
    users.iter().map(|u| u.as_str()).collect::<Vec<_>>().into()
}

fn fields(pairs: &[(&str, serde_json::Value)]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// A reply that tells the actor where the event landed.
fn event_reply(group: &GroupId, event: &StoredMessage, own_inbox: Option<u64>) -> Frame {
    Frame {
        group_id: group.as_str().to_owned(),
        conv_id: event.conv_id.as_str().to_owned(),
        seq: Some(event.seq),
        msg_id: event.msg_id.clone(),
        inbox_seq: own_inbox,
        ..Default::default()
    }
}

fn require_manager(me: &GroupMember) -> Result<()> {
    if me.role.manages() {
        Ok(())
    } else {
        Err(LogicError::forbidden(
            "only the group's owner and admins may do this",
        ))
    }
}

fn require_owner(me: &GroupMember) -> Result<()> {
    if me.role == GroupRole::Owner {
        Ok(())
    } else {
        Err(LogicError::forbidden("only the group's owner may do this"))
    }
}

fn members_of(g: &CachedGroup) -> Vec<UserId> {
    g.members.keys().cloned().collect()
}

pub(crate) async fn create(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let group = if frame.group_id.is_empty() {
        // ULIDs use only characters group ids allow.
        GroupId::parse(&ulid::Ulid::new().to_string())
            .map_err(|e| LogicError::bad_request(e.to_string()))?
    } else {
        parse_group_id(&frame.group_id)?
    };
    let members = parse_users(&frame.user_ids)?;
    // The app (REST) names the owner; a user creates groups it owns.
    let owner = if s.is_app() {
        parse_user(&frame.user_id, "owner")?
    } else {
        s.user_id.clone()
    };
    let join_policy = parse_policy(frame.join_policy.as_deref())?.unwrap_or_default();
    let limits = limits(logic, &s.app_id)?;
    let created_at = confab_model::now_ms();
    let info = quota(
        logic
            .stores
            .groups
            .create_group(NewGroup {
                app_id: s.app_id.clone(),
                group_id: group.clone(),
                owner: owner.clone(),
                name: check_text(frame.name, "name", MAX_NAME)?.unwrap_or_default(),
                avatar: check_text(frame.avatar, "avatar", MAX_AVATAR)?.unwrap_or_default(),
                announcement: check_text(frame.announcement, "announcement", MAX_ANNOUNCEMENT)?
                    .unwrap_or_default(),
                custom: check_custom(frame.custom)?.unwrap_or_else(|| "{}".into()),
                join_policy,
                members,
                // A new id has no conversation yet: members read from the start.
                join_seq: 1,
                created_at,
                limits,
            })
            .await,
    )?;
    logic.groups.invalidate(&s.app_id, &group);
    let g = load(logic, &s.app_id, &group).await?;
    let mut others: Vec<UserId> = members_of(&g).into_iter().filter(|u| *u != owner).collect();
    others.sort();
    let (event, own) = record_event(
        logic,
        s,
        &group,
        group_event::CREATED,
        fields(&[
            ("users", users_json(&others)),
            ("name", info.name.clone().into()),
        ]),
        members_of(&g),
    )
    .await?;
    Ok(Frame {
        group: Some(wire_group(&info)),
        ..event_reply(&group, &event, own)
    })
}

pub(crate) async fn info(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let group = parse_group_id(&frame.group_id)?;
    // Read through the store, not the cache: a detail view should be exact.
    logic.groups.invalidate(&s.app_id, &group);
    let (g, me) = membership(logic, s, &group).await?;
    Ok(Frame {
        group_id: group.as_str().to_owned(),
        group: Some(wire_group(&g.info)),
        role: Some(me.role.as_str().to_owned()),
        ..Default::default()
    })
}

pub(crate) async fn update(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let group = parse_group_id(&frame.group_id)?;
    let (g, me) = membership(logic, s, &group).await?;
    require_manager(&me)?;
    let change = GroupUpdate {
        name: check_text(frame.name, "name", MAX_NAME)?,
        avatar: check_text(frame.avatar, "avatar", MAX_AVATAR)?,
        announcement: check_text(frame.announcement, "announcement", MAX_ANNOUNCEMENT)?,
        custom: check_custom(frame.custom)?,
        join_policy: parse_policy(frame.join_policy.as_deref())?,
        mute_all: None,
    };
    if change.is_empty() {
        return Err(LogicError::bad_request(
            "nothing to change: give name, avatar, announcement, custom or join_policy",
        ));
    }
    let mut changed = serde_json::Map::new();
    if let Some(v) = &change.name {
        changed.insert("name".into(), v.clone().into());
    }
    if let Some(v) = &change.avatar {
        changed.insert("avatar".into(), v.clone().into());
    }
    if let Some(v) = &change.announcement {
        changed.insert("announcement".into(), v.clone().into());
    }
    if let Some(v) = &change.custom {
        changed.insert(
            "custom".into(),
            serde_json::from_str(v).unwrap_or(serde_json::Value::Null),
        );
    }
    if let Some(v) = change.join_policy {
        changed.insert("join_policy".into(), v.as_str().into());
    }
    let info = logic
        .stores
        .groups
        .update_group(&s.app_id, &group, change)
        .await?;
    logic.groups.invalidate(&s.app_id, &group);
    let (event, own) = record_event(
        logic,
        s,
        &group,
        group_event::UPDATED,
        changed,
        members_of(&g),
    )
    .await?;
    Ok(Frame {
        group: Some(wire_group(&info)),
        ..event_reply(&group, &event, own)
    })
}

pub(crate) async fn join(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let group = parse_group_id(&frame.group_id)?;
    let g = load(logic, &s.app_id, &group).await?;
    if g.member(&s.user_id).is_some() {
        return Ok(Frame {
            group_id: group.as_str().to_owned(),
            pending: Some(false),
            ..Default::default()
        });
    }
    match g.info.join_policy {
        JoinPolicy::InviteOnly => Err(LogicError::forbidden(
            "this group is invite-only: ask an admin to add you",
        )),
        JoinPolicy::Approval => {
            // Stored (replacing an earlier request of the user) until an
            // admin decides with group_request_decide or it lapses; online
            // owners and admins are told at once.
            let now = confab_model::now_ms();
            logic
                .stores
                .groups
                .put_join_request(
                    &s.app_id,
                    &group,
                    &JoinRequest {
                        user_id: s.user_id.clone(),
                        requested_at: now,
                        expires_at: now.saturating_add(JOIN_REQUEST_TTL_MS),
                    },
                )
                .await?;
            let push = Arc::new(Frame {
                op: ops::EVENT.into(),
                event: group_event::JOIN_REQUESTED.into(),
                group_id: group.as_str().to_owned(),
                conv_id: ConvId::group(&group).as_str().to_owned(),
                user_id: s.user_id.as_str().to_owned(),
                ts: Some(now),
                ..Default::default()
            });
            for m in g.members.values().filter(|m| m.role.manages()) {
                logic
                    .delivery
                    .deliver(&s.app_id, &m.user_id, push.clone(), None);
            }
            Ok(Frame {
                group_id: group.as_str().to_owned(),
                pending: Some(true),
                ..Default::default()
            })
        }
        JoinPolicy::Open => {
            let mut reply = add_users(logic, s, &group, vec![s.user_id.clone()]).await?;
            reply.pending = Some(false);
            Ok(reply)
        }
    }
}

/// Adds `users`, then records one `joined` event for all of them.
async fn add_users(
    logic: &Logic,
    s: &Session,
    group: &GroupId,
    users: Vec<UserId>,
) -> Result<Frame> {
    let limits = limits(logic, &s.app_id)?;
    let pending = member_event(s, group_event::JOINED);
    // The new members read from their `joined` event on: `append_event`
    // sets their join_seq to its seq.
    let added = quota(
        logic
            .stores
            .groups
            .add_members(&s.app_id, group, &users, JOIN_PENDING, limits, &pending)
            .await,
    )?;
    logic.groups.invalidate(&s.app_id, group);
    if added.is_empty() {
        settle_group(logic, &s.app_id, group).await?;
        return Ok(Frame {
            group_id: group.as_str().to_owned(),
            ..Default::default()
        });
    }
    let g = load(logic, &s.app_id, group).await?;
    let (event, own) = append_event(
        logic,
        &s.into(),
        group,
        NewEvent {
            kind: group_event::JOINED,
            fields: fields(&[("users", users_json(&added))]),
            recipients: members_of(&g),
            client_msg_id: pending.id.clone(),
            joining: &added,
        },
    )
    .await?;
    clear(logic, &s.app_id, group, &pending.id).await;
    Ok(Frame {
        user_ids: added.iter().map(|u| u.as_str().to_owned()).collect(),
        ..event_reply(group, &event, own)
    })
}

pub(crate) async fn add(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let group = parse_group_id(&frame.group_id)?;
    let users = parse_users(&frame.user_ids)?;
    if users.is_empty() {
        return Err(LogicError::bad_request("user_ids is required"));
    }
    let (_, me) = membership(logic, s, &group).await?;
    require_manager(&me)?;
    add_users(logic, s, &group, users).await
}

pub(crate) async fn quit(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let group = parse_group_id(&frame.group_id)?;
    let (g, me) = membership(logic, s, &group).await?;
    if me.role == GroupRole::Owner {
        return Err(LogicError::forbidden(
            "the owner cannot quit: transfer ownership or dismiss the group",
        ));
    }
    remove_users(logic, s, &g, vec![s.user_id.clone()], group_event::LEFT).await
}

/// Removes `users`, then records the event for everyone who was a member
/// before, the removed included (so that their devices learn of it).
async fn remove_users(
    logic: &Logic,
    s: &Session,
    g: &CachedGroup,
    users: Vec<UserId>,
    kind: &str,
) -> Result<Frame> {
    let group = &g.info.group_id;
    // Read diffusion: what the group held for a leaving member until now
    // becomes theirs first (under write diffusion it is already in their
    // inbox); after the removal they can pull nothing more.
    for user in users.iter().filter(|u| g.member(u).is_some()) {
        while pull(logic, &s.app_id, user).await? {}
    }
    let pending = member_event(s, kind);
    let removed = logic
        .stores
        .groups
        .remove_members(&s.app_id, group, &users, &pending)
        .await?;
    // At once: the removed must stop receiving with the next message.
    logic.groups.invalidate(&s.app_id, group);
    if removed.is_empty() {
        settle_group(logic, &s.app_id, group).await?;
        return Ok(Frame {
            group_id: group.as_str().to_owned(),
            ..Default::default()
        });
    }
    let recipients = event_recipients(logic, &s.app_id, group, kind, &removed).await?;
    let (event, own) = append_event(
        logic,
        &s.into(),
        group,
        NewEvent {
            kind,
            fields: fields(&[("users", users_json(&removed))]),
            recipients,
            client_msg_id: pending.id.clone(),
            joining: &[],
        },
    )
    .await?;
    clear(logic, &s.app_id, group, &pending.id).await;
    Ok(Frame {
        user_ids: removed.iter().map(|u| u.as_str().to_owned()).collect(),
        ..event_reply(group, &event, own)
    })
}

pub(crate) async fn remove(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let group = parse_group_id(&frame.group_id)?;
    let users = parse_users(&frame.user_ids)?;
    if users.is_empty() {
        return Err(LogicError::bad_request("user_ids is required"));
    }
    let (g, me) = membership(logic, s, &group).await?;
    require_manager(&me)?;
    for user in &users {
        if *user == s.user_id {
            return Err(LogicError::bad_request(
                "use group_quit to leave a group yourself",
            ));
        }
        // Rights go down only: the owner removes admins and members, an
        // admin removes members.
        if let Some(target) = g.member(user)
            && target.role >= me.role
        {
            return Err(LogicError::forbidden(format!(
                "a group {} cannot remove a group {}",
                me.role.as_str(),
                target.role.as_str()
            )));
        }
    }
    remove_users(logic, s, &g, users, group_event::REMOVED).await
}

pub(crate) async fn members(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let group = parse_group_id(&frame.group_id)?;
    membership(logic, s, &group).await?;
    let limit = frame
        .limit
        .filter(|l| *l > 0)
        .unwrap_or(MEMBERS_DEFAULT)
        .min(MEMBERS_MAX);
    let after = if frame.cursor.is_empty() {
        None
    } else {
        Some(parse_user(&frame.cursor, "cursor")?)
    };
    let mut page = logic
        .stores
        .groups
        .members(&s.app_id, &group, after.as_ref(), limit + 1)
        .await?;
    let has_more = page.len() > limit as usize;
    page.truncate(limit as usize);
    Ok(Frame {
        group_id: group.as_str().to_owned(),
        cursor: if has_more {
            page.last()
                .map(|m| m.user_id.as_str().to_owned())
                .unwrap_or_default()
        } else {
            String::new()
        },
        group_members: page.iter().map(wire_member).collect(),
        has_more: Some(has_more),
        ..Default::default()
    })
}

pub(crate) async fn role(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let group = parse_group_id(&frame.group_id)?;
    let target = parse_user(&frame.user_id, "user_id")?;
    let role = match frame.role.as_deref().map(GroupRole::parse) {
        Some(Ok(r)) if r != GroupRole::Owner => r,
        Some(Ok(_)) => {
            return Err(LogicError::bad_request(
                "use group_transfer to make someone the owner",
            ));
        }
        _ => return Err(LogicError::bad_request("role must be admin or member")),
    };
    let (g, me) = membership(logic, s, &group).await?;
    require_owner(&me)?;
    if target == s.user_id {
        return Err(LogicError::bad_request(
            "the owner's role changes only by group_transfer",
        ));
    }
    match g.member(&target) {
        None => return Err(LogicError::not_found("no such member")),
        // Only the app (which is not a member) can name the owner here.
        Some(m) if m.role == GroupRole::Owner => {
            return Err(LogicError::bad_request(
                "the owner's role changes only by a transfer",
            ));
        }
        Some(_) => {}
    }
    logic
        .stores
        .groups
        .set_role(&s.app_id, &group, &target, role)
        .await?;
    logic.groups.invalidate(&s.app_id, &group);
    let (event, own) = record_event(
        logic,
        s,
        &group,
        group_event::ROLE,
        fields(&[
            ("user", target.as_str().into()),
            ("role", role.as_str().into()),
        ]),
        members_of(&g),
    )
    .await?;
    Ok(event_reply(&group, &event, own))
}

pub(crate) async fn transfer(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let group = parse_group_id(&frame.group_id)?;
    let target = parse_user(&frame.user_id, "user_id")?;
    let (g, me) = membership(logic, s, &group).await?;
    require_owner(&me)?;
    if target == s.user_id {
        return Err(LogicError::bad_request("you already own this group"));
    }
    if g.member(&target).is_none() {
        return Err(LogicError::not_found("no such member"));
    }
    logic
        .stores
        .groups
        .transfer_owner(&s.app_id, &group, &target)
        .await?;
    logic.groups.invalidate(&s.app_id, &group);
    let (event, own) = record_event(
        logic,
        s,
        &group,
        group_event::TRANSFERRED,
        fields(&[
            ("from_owner", s.user_id.as_str().into()),
            ("owner", target.as_str().into()),
        ]),
        members_of(&g),
    )
    .await?;
    Ok(event_reply(&group, &event, own))
}

pub(crate) async fn mute(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let group = parse_group_id(&frame.group_id)?;
    let (g, me) = membership(logic, s, &group).await?;
    require_manager(&me)?;
    let (kind, event_fields) = match (frame.mute_all, frame.user_id.is_empty()) {
        (Some(all), true) => {
            logic
                .stores
                .groups
                .update_group(
                    &s.app_id,
                    &group,
                    GroupUpdate {
                        mute_all: Some(all),
                        ..Default::default()
                    },
                )
                .await?;
            let kind = if all {
                group_event::MUTED
            } else {
                group_event::UNMUTED
            };
            (kind, fields(&[("all", true.into())]))
        }
        (None, false) => {
            let target = parse_user(&frame.user_id, "user_id")?;
            let duration = frame
                .duration_ms
                .ok_or_else(|| LogicError::bad_request("duration_ms is required (0 unmutes)"))?;
            if duration < 0 {
                return Err(LogicError::bad_request("duration_ms must not be negative"));
            }
            let member = g
                .member(&target)
                .ok_or_else(|| LogicError::not_found("no such member"))?;
            if member.role >= me.role {
                return Err(LogicError::forbidden(format!(
                    "a group {} cannot mute a group {}",
                    me.role.as_str(),
                    member.role.as_str()
                )));
            }
            let until = if duration == 0 {
                0
            } else {
                confab_model::now_ms().saturating_add(duration)
            };
            logic
                .stores
                .groups
                .mute_member(&s.app_id, &group, &target, until)
                .await?;
            let kind = if until == 0 {
                group_event::UNMUTED
            } else {
                group_event::MUTED
            };
            (
                kind,
                fields(&[("user", target.as_str().into()), ("until", until.into())]),
            )
        }
        _ => {
            return Err(LogicError::bad_request(
                "give either user_id with duration_ms, or mute_all",
            ));
        }
    };
    logic.groups.invalidate(&s.app_id, &group);
    let (event, own) = record_event(logic, s, &group, kind, event_fields, members_of(&g)).await?;
    Ok(event_reply(&group, &event, own))
}

pub(crate) async fn dismiss(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let group = parse_group_id(&frame.group_id)?;
    let (g, me) = membership(logic, s, &group).await?;
    require_owner(&me)?;
    let pending = member_event(s, group_event::DISMISSED);
    let dismissed = logic
        .stores
        .groups
        .dismiss(&s.app_id, &group, &pending)
        .await?;
    logic.groups.invalidate(&s.app_id, &group);
    if !dismissed {
        // Dismissed meanwhile (another request): that one records its event.
        return Err(no_such_group());
    }
    // Every member the store dropped (the cached list may be a little old
    // when another node changed the group): kept on the pending row.
    let former = logic
        .stores
        .groups
        .pending_events(&s.app_id, &group)
        .await?
        .into_iter()
        .find(|p| p.event.id == pending.id)
        .map_or_else(|| members_of(&g), |p| p.users);
    let (event, own) = append_event(
        logic,
        &s.into(),
        &group,
        NewEvent {
            kind: group_event::DISMISSED,
            fields: serde_json::Map::new(),
            recipients: former,
            client_msg_id: pending.id.clone(),
            joining: &[],
        },
    )
    .await?;
    clear(logic, &s.app_id, &group, &pending.id).await;
    Ok(event_reply(&group, &event, own))
}

/// `group_requests`: the pending (not lapsed) join requests, paged by user
/// id. Owner and admins only.
pub(crate) async fn requests(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let group = parse_group_id(&frame.group_id)?;
    let (g, me) = membership(logic, s, &group).await?;
    require_manager(&me)?;
    let limit = frame
        .limit
        .filter(|l| *l > 0)
        .unwrap_or(MEMBERS_DEFAULT)
        .min(MEMBERS_MAX);
    let after = if frame.cursor.is_empty() {
        None
    } else {
        Some(parse_user(&frame.cursor, "cursor")?)
    };
    let mut page = logic
        .stores
        .groups
        .join_requests(
            &s.app_id,
            &group,
            after.as_ref(),
            limit + 1,
            confab_model::now_ms(),
        )
        .await?;
    let has_more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let cursor = if has_more {
        page.last()
            .map(|r| r.user_id.as_str().to_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    // Someone added meanwhile by group_add has nothing left to ask for.
    page.retain(|r| g.member(&r.user_id).is_none());
    Ok(Frame {
        group_id: group.as_str().to_owned(),
        cursor,
        group_requests: page
            .iter()
            .map(|r| WireJoinRequest {
                user_id: r.user_id.as_str().to_owned(),
                requested_at: r.requested_at,
                expires_at: r.expires_at,
            })
            .collect(),
        has_more: Some(has_more),
        ..Default::default()
    })
}

/// `group_request_decide`: approves (adds the requester: the stored `joined`
/// event tells everyone, the requester included) or rejects (the requester's
/// online devices get a `join_rejected` push) a pending request. Owner and
/// admins only; a request that is not pending (never made, lapsed, already
/// decided) is `not_found`.
pub(crate) async fn request_decide(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let group = parse_group_id(&frame.group_id)?;
    let target = parse_user(&frame.user_id, "user_id")?;
    let approve = frame
        .approve
        .ok_or_else(|| LogicError::bad_request("approve (true or false) is required"))?;
    let (_, me) = membership(logic, s, &group).await?;
    require_manager(&me)?;
    let now = confab_model::now_ms();
    let request = logic
        .stores
        .groups
        .take_join_request(&s.app_id, &group, &target, now)
        .await?
        .ok_or_else(|| LogicError::not_found("no such join request"))?;
    if !approve {
        let push = Arc::new(Frame {
            op: ops::EVENT.into(),
            event: group_event::JOIN_REJECTED.into(),
            group_id: group.as_str().to_owned(),
            conv_id: ConvId::group(&group).as_str().to_owned(),
            user_id: target.as_str().to_owned(),
            from: s.user_id.as_str().to_owned(),
            ts: Some(now),
            ..Default::default()
        });
        logic.delivery.deliver(&s.app_id, &target, push, None);
        return Ok(Frame {
            group_id: group.as_str().to_owned(),
            user_id: target.as_str().to_owned(),
            approve: Some(false),
            ..Default::default()
        });
    }
    match add_users(logic, s, &group, vec![target.clone()]).await {
        Ok(reply) => Ok(Frame {
            user_id: target.as_str().to_owned(),
            approve: Some(true),
            ..reply
        }),
        Err(e) => {
            // Not added (a quota, storage): the request stays pending so that
            // it can be decided again.
            if let Err(put) = logic
                .stores
                .groups
                .put_join_request(&s.app_id, &group, &request)
                .await
            {
                tracing::warn!(error = %put, "could not restore a join request");
            }
            Err(e)
        }
    }
}

/// Who a group message mentions, checked against the sender's rights.
#[derive(Debug, Default)]
pub(crate) struct Mentions {
    pub users: Vec<UserId>,
    pub all: bool,
}

impl Mentions {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && !self.all
    }
}

/// Parses a group send's `mentions` and `mention_all`: ids must be valid
/// (`bad_request`), at most [`MAX_MENTIONS`]; users who are not members are
/// left out (a mention is only a notice to members); @all is for the owner
/// and admins (`forbidden`).
pub(crate) async fn mentions(
    logic: &Logic,
    s: &Session,
    group: &GroupId,
    ids: &[String],
    all: bool,
) -> Result<Mentions> {
    if ids.is_empty() && !all {
        return Ok(Mentions::default());
    }
    if ids.len() > MAX_MENTIONS {
        return Err(LogicError::bad_request(format!(
            "mentions names more than {MAX_MENTIONS} users"
        )));
    }
    let mut users = ids
        .iter()
        .map(|id| parse_user(id, "mentions"))
        .collect::<Result<Vec<_>>>()?;
    let (g, me) = membership(logic, s, group).await?;
    if all && !me.role.manages() {
        return Err(LogicError::forbidden(
            "only the group's owner and admins may mention everyone",
        ));
    }
    users.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    users.dedup();
    users.retain(|u| g.member(u).is_some());
    Ok(Mentions { users, all })
}
