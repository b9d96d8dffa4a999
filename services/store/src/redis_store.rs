//! Redis backends: the route table and the inbox ring (the fast sync store).
//!
//! Keys carry the app and user in a hash tag, `confab:{<app>:<user>}:…`, so
//! that every key of one user lives in one Redis Cluster slot; a room's keys
//! share `{room:<app>:<room>}` and a node's mark `{<node>}`. Commands that
//! name several keys only ever name keys of one tag, and writes for several
//! users go through [`SlotBatch`] (one pipeline per slot), so a Redis
//! Cluster never answers `CROSSSLOT` (docs/operations.md, "Redis Cluster").
//!
//! The ring keeps each user's most recent inbox entries (a sorted set scored
//! by `inbox_seq`, capped at `capacity`). It is a cache in front of the
//! roaming store, never the only copy: entries are pushed after the durable
//! commit, and a sync is served from the ring only when the ring holds the
//! exact run `since+1, since+2, …` up to the user's inbox head in PostgreSQL
//! (or the page limit); anything else (fallen off, Redis
//! restarted, a push lost while Redis was down, concurrent pushes not landed
//! yet) is served from the roaming store, with the same response.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confab_model::{AppId, ConvId, GroupId, InboxEntry, Peer, RoomId, StoredMessage, UserId};
use serde_json::json;

mod conn;
pub use conn::{DEFAULT_PREFIX, RedisConn, RedisTarget, SlotBatch};

use crate::{
    Appended, InboxStore, MessageStore, NewMessage, Pulled, Purged, Result, Route, RouteTable,
    StoreError,
};

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

/// A room's presence keys (one hash slot): nodes by expiry, and counts.
fn room_keys(prefix: &str, app: &AppId, room: &RoomId) -> (String, String) {
    let tag = format!("{prefix}:{{room:{}:{}}}", app.as_str(), room.as_str());
    (format!("{tag}:nodes"), format!("{tag}:counts"))
}

/// A user's key (`routes`, `inbox`): all of them in the user's slot.
fn user_key(prefix: &str, app: &AppId, user: &UserId, what: &str) -> String {
    format!("{prefix}:{{{}:{}}}:{what}", app.as_str(), user.as_str())
}

/// A node's "my routes are registered" mark.
fn node_key(prefix: &str, node: &str) -> String {
    format!("{prefix}:node:{{{node}}}:routes")
}

/// Longest wait for Redis on the message path: past it the ring is skipped
/// (sends) or bypassed (syncs), so a Redis outage costs at most this much.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// Connects to a single endpoint or a cluster (the connection reconnects by
/// itself after Redis restarts or a cluster fails over).
pub async fn connect(target: &RedisTarget) -> Result<RedisConn> {
    RedisConn::connect(target, REDIS_TIMEOUT).await
}

/// Runs a Redis operation with [`REDIS_TIMEOUT`].
async fn bounded<T>(op: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(REDIS_TIMEOUT, op)
        .await
        .unwrap_or_else(|_| Err(StoreError::Unavailable("redis: timed out".into())))
}

/// The route table in Redis: a hash per user, device → `session\tnode\tplatform`.
/// The key expires a fixed time after the last write of any of the user's
/// routes: gateways re-write active sessions' routes every minute, so only
/// routes of a node that died without unregistering go away.
#[derive(Clone)]
pub struct RedisRouteTable {
    conn: RedisConn,
    ttl_secs: u64,
}

impl RedisRouteTable {
    pub fn new(conn: RedisConn, ttl_secs: u64) -> Self {
        Self { conn, ttl_secs }
    }
}

/// Writes a device's route unless it holds a newer session (session ids are
/// ULIDs: later logins sort greater), and refreshes the key's expiry.
const REGISTER_SCRIPT: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  local current = string.match(v, '^([^\t]*)')
  if current and current > ARGV[2] then
    return 0
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1";

const UNREGISTER_SCRIPT: &str = r"
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.sub(v, 1, #ARGV[2] + 1) == ARGV[2] .. '\t' then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0";

#[async_trait]
impl RouteTable for RedisRouteTable {
    async fn register(&self, app: &AppId, user: &UserId, route: Route) -> Result<()> {
        let value = format!("{}\t{}\t{}", route.session_id, route.node, route.platform);
        let mut conn = self.conn.clone();
        redis::Script::new(REGISTER_SCRIPT)
            .key(user_key(self.conn.prefix(), app, user, "routes"))
            .arg(&route.device_id)
            .arg(&route.session_id)
            .arg(value)
            .arg(self.ttl_secs)
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn mark_node(&self, node: &str) -> Result<bool> {
        let mut conn = self.conn.clone();
        // SET ... GET answers the previous value: nil when the mark was gone.
        let previous: Option<String> = redis::cmd("SET")
            .arg(node_key(self.conn.prefix(), node))
            .arg(1)
            .arg("EX")
            .arg(self.ttl_secs)
            .arg("GET")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(previous.is_some())
    }

    async fn unregister(
        &self,
        app: &AppId,
        user: &UserId,
        device_id: &str,
        session_id: &str,
    ) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::Script::new(UNREGISTER_SCRIPT)
            .key(user_key(self.conn.prefix(), app, user, "routes"))
            .arg(device_id)
            .arg(session_id)
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn routes(&self, app: &AppId, user: &UserId) -> Result<Vec<Route>> {
        let mut conn = self.conn.clone();
        let map: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(user_key(self.conn.prefix(), app, user, "routes"))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let mut routes: Vec<Route> = map
            .into_iter()
            .filter_map(|(device_id, v)| {
                let mut parts = v.splitn(3, '\t');
                Some(Route {
                    device_id,
                    session_id: parts.next()?.to_owned(),
                    node: parts.next()?.to_owned(),
                    platform: parts.next()?.to_owned(),
                })
            })
            .collect();
        routes.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        Ok(routes)
    }

    async fn set_room_presence(
        &self,
        app: &AppId,
        room: &RoomId,
        node: &str,
        members: u64,
    ) -> Result<()> {
        let (nodes, counts) = room_keys(self.conn.prefix(), app, room);
        // Both keys share the room's tag: one pipeline (one slot).
        let mut batch = self.conn.batch();
        if members == 0 {
            batch.on(&nodes).cmd("ZREM").arg(&nodes).arg(node).ignore();
            batch
                .on(&counts)
                .cmd("HDEL")
                .arg(&counts)
                .arg(node)
                .ignore();
        } else {
            // The score is when the entry expires: readers skip entries past
            // it, so a dead node's entry goes even while others refresh the key.
            let ttl_ms = self.ttl_secs.saturating_mul(1000);
            let until = confab_model::now_ms().saturating_add(ttl_ms as i64);
            batch
                .on(&nodes)
                .cmd("ZADD")
                .arg(&nodes)
                .arg(until)
                .arg(node)
                .ignore();
            batch
                .on(&counts)
                .cmd("HSET")
                .arg(&counts)
                .arg(node)
                .arg(members)
                .ignore();
            batch
                .on(&nodes)
                .cmd("ZREMRANGEBYSCORE")
                .arg(&nodes)
                .arg("-inf")
                .arg(confab_model::now_ms())
                .ignore();
            for key in [&nodes, &counts] {
                batch.on(key).cmd("PEXPIRE").arg(key).arg(ttl_ms).ignore();
            }
        }
        batch.run().await
    }

    async fn room_presence(&self, app: &AppId, room: &RoomId) -> Result<Vec<(String, u64)>> {
        // Two keys of one tag (one slot): one pipeline even on a cluster.
        let (nodes, counts) = room_keys(self.conn.prefix(), app, room);
        let mut conn = self.conn.clone();
        let (live, all): (Vec<String>, HashMap<String, u64>) = redis::pipe()
            .cmd("ZRANGEBYSCORE")
            .arg(&nodes)
            .arg(confab_model::now_ms())
            .arg("+inf")
            .cmd("HGETALL")
            .arg(&counts)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let mut found: Vec<(String, u64)> = live
            .into_iter()
            .map(|n| {
                let c = all.get(&n).copied().unwrap_or(0);
                (n, c)
            })
            .collect();
        found.sort();
        Ok(found)
    }

    async fn clear_room_presence(&self, app: &AppId, room: &RoomId) -> Result<()> {
        let (nodes, counts) = room_keys(self.conn.prefix(), app, room);
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(&nodes)
            .arg(&counts)
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }
}

/// The inbox ring.
#[derive(Clone)]
pub struct RedisRing {
    conn: RedisConn,
    capacity: usize,
}

impl RedisRing {
    pub fn new(conn: RedisConn, capacity: usize) -> Self {
        Self {
            conn,
            capacity: capacity.max(1),
        }
    }

    /// Adds the message to every recipient's ring: one pipeline on a single
    /// endpoint, one per slot on a cluster (a group's members are spread
    /// over every master).
    async fn push(&self, app: &AppId, appended: &Appended) -> Result<()> {
        let mut batch = self.conn.batch();
        let member = encode(&appended.message);
        for (user, inbox_seq) in &appended.inbox {
            let key = user_key(self.conn.prefix(), app, user, "inbox");
            let entry = format!("{inbox_seq}\n{member}");
            let pipe = batch.on(&key);
            pipe.zadd(&key, entry, *inbox_seq as f64).ignore();
            pipe.cmd("ZREMRANGEBYRANK")
                .arg(&key)
                .arg(0)
                .arg(-(self.capacity as i64) - 1)
                .ignore();
        }
        batch.run().await
    }

    /// The run of entries after `since`, if the ring can serve it exactly.
    async fn range(
        &self,
        app: &AppId,
        user: &UserId,
        since: u64,
        limit: u32,
    ) -> Result<Option<Vec<InboxEntry>>> {
        let key = user_key(self.conn.prefix(), app, user, "inbox");
        let mut conn = self.conn.clone();
        let (entries, newest): (Vec<String>, Vec<(String, f64)>) = redis::pipe()
            .cmd("ZRANGEBYSCORE")
            .arg(&key)
            .arg(format!("({since}"))
            .arg("+inf")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .cmd("ZRANGE")
            .arg(&key)
            .arg(-1)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if entries.is_empty() {
            // Nothing newer in a non-empty ring: the device is up to date.
            return Ok(match newest.first() {
                Some((_, score)) if *score as u64 <= since => Some(vec![]),
                _ => None,
            });
        }
        let mut out = Vec::with_capacity(entries.len());
        for (i, raw) in entries.iter().enumerate() {
            let Some(entry) = decode(raw) else {
                return Ok(None);
            };
            if entry.inbox_seq != since + 1 + i as u64 {
                return Ok(None);
            }
            out.push(entry);
        }
        Ok(Some(out))
    }

    /// Drops users' rings (after a recall changed a message they may hold).
    async fn invalidate(&self, app: &AppId, users: &[UserId]) -> Result<()> {
        let mut batch = self.conn.batch();
        for u in users {
            let key = user_key(self.conn.prefix(), app, u, "inbox");
            batch.on(&key).del(&key).ignore();
        }
        batch.run().await
    }
}

fn encode(m: &StoredMessage) -> String {
    json!({
        "conv_id": m.conv_id.as_str(),
        "seq": m.seq,
        "msg_id": m.msg_id,
        "from": m.from.as_str(),
        "to_kind": m.to.kind.as_str(),
        "to_id": &*m.to.id,
        "body": m.body,
        "ts": m.ts,
        "client_msg_id": m.client_msg_id,
        "recalled": m.recalled,
    })
    .to_string()
}

fn decode(raw: &str) -> Option<InboxEntry> {
    let (seq, json) = raw.split_once('\n')?;
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(InboxEntry {
        inbox_seq: seq.parse().ok()?,
        message: StoredMessage {
            conv_id: ConvId::parse(v["conv_id"].as_str()?).ok()?,
            seq: v["seq"].as_u64()?,
            msg_id: v["msg_id"].as_str()?.to_owned(),
            from: UserId::parse(v["from"].as_str()?).ok()?,
            to: Peer::parse(v["to_kind"].as_str()?, v["to_id"].as_str()?).ok()?,
            body: v["body"].as_str()?.to_owned(),
            ts: v["ts"].as_i64()?,
            client_msg_id: v["client_msg_id"].as_str()?.to_owned(),
            recalled: v["recalled"].as_bool()?,
        },
    })
}

/// A message store that also pushes each new message to its recipients'
/// rings. Redis being down never fails a send: the ring is only a cache.
pub struct RingedMessages {
    pub inner: Arc<dyn MessageStore>,
    pub ring: RedisRing,
    /// A group recall must drop its members' rings, which hold the
    /// message's content (write diffusion put it in each member's inbox).
    pub groups: Arc<dyn crate::GroupStore>,
}

impl RingedMessages {
    /// Everyone whose ring may hold a message of `conv`: both participants
    /// of a single chat, every member of a group.
    async fn holders(&self, app: &AppId, conv: &ConvId) -> Result<Vec<UserId>> {
        if let Some(group) = conv.group_id() {
            let mut users = Vec::new();
            let mut after: Option<UserId> = None;
            loop {
                let page = self
                    .groups
                    .members(app, &group, after.as_ref(), 1000)
                    .await?;
                let full = page.len() == 1000;
                after = page.last().map(|m| m.user_id.clone());
                users.extend(page.into_iter().map(|m| m.user_id));
                if !full {
                    return Ok(users);
                }
            }
        }
        Ok(conv
            .p2p_members()
            .map(|(a, b)| {
                [a, b]
                    .into_iter()
                    .filter_map(|u| UserId::parse(u).ok())
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[async_trait]
impl MessageStore for RingedMessages {
    async fn append(&self, msg: NewMessage) -> Result<Appended> {
        let app = msg.app_id.clone();
        let appended = self.inner.append(msg).await?;
        if !appended.duplicate
            && let Err(e) = bounded(self.ring.push(&app, &appended)).await
        {
            metrics::counter!("confab_store_ring_push_failures_total").increment(1);
            tracing::warn!(error = %e, "inbox ring push failed; sync falls back to the roaming store");
        }
        Ok(appended)
    }

    async fn history(
        &self,
        app: &AppId,
        conv: &ConvId,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        self.inner.history(app, conv, before, limit).await
    }

    async fn get(&self, app: &AppId, conv: &ConvId, msg_id: &str) -> Result<Option<StoredMessage>> {
        self.inner.get(app, conv, msg_id).await
    }

    async fn get_by_id(&self, app: &AppId, msg_id: &str) -> Result<Option<StoredMessage>> {
        // Messages live in the roaming store; the rings only cache inboxes.
        self.inner.get_by_id(app, msg_id).await
    }

    async fn purge_older_than(&self, app: &AppId, before_ts: i64, max: u32) -> Result<Purged> {
        // The rings hold copies of the purged entries: clear them after the
        // purge (a failure fails the purge, and the next run clears them).
        let purged = self.inner.purge_older_than(app, before_ts, max).await?;
        bounded(self.ring.invalidate(app, &purged.users)).await?;
        Ok(purged)
    }

    async fn recall(&self, app: &AppId, conv: &ConvId, msg_id: &str) -> Result<bool> {
        let users = self.holders(app, conv).await?;
        // Clear the rings before and after the update: a stale ring would
        // show recalled content, so a failure here fails the recall (the
        // client retries, and a retry runs this again).
        bounded(self.ring.invalidate(app, &users)).await?;
        let done = self.inner.recall(app, conv, msg_id).await?;
        bounded(self.ring.invalidate(app, &users)).await?;
        Ok(done)
    }
}

/// Sync from the ring when it can serve the run exactly, else from the
/// roaming store.
pub struct RingedInbox {
    pub inner: Arc<dyn InboxStore>,
    pub ring: RedisRing,
}

#[async_trait]
impl InboxStore for RingedInbox {
    async fn head(&self, app: &AppId, user: &UserId) -> Result<u64> {
        self.inner.head(app, user).await
    }

    async fn since(
        &self,
        app: &AppId,
        user: &UserId,
        since: u64,
        limit: u32,
    ) -> Result<Vec<InboxEntry>> {
        let ring = bounded(self.ring.range(app, user, since, limit)).await;
        // The ring may lack the newest entries (a push that timed out or has
        // not landed yet): serve it only if it reaches what PostgreSQL has.
        let complete = match &ring {
            Ok(Some(entries)) => {
                let head = self.inner.head(app, user).await?;
                let reached = entries.last().map(|e| e.inbox_seq).unwrap_or(since);
                reached >= head.min(since.saturating_add(limit as u64))
            }
            _ => false,
        };
        match ring {
            Ok(Some(entries)) if complete => {
                metrics::counter!("confab_store_sync_served_total", "from" => "ring").increment(1);
                Ok(entries)
            }
            _ => {
                metrics::counter!("confab_store_sync_served_total", "from" => "fallback")
                    .increment(1);
                self.inner.since(app, user, since, limit).await
            }
        }
    }

    async fn clear_inbox(&self, app: &AppId, user: &UserId) -> Result<()> {
        // The ring holds copies of the entries: drop it before (a failure
        // fails the call, which the caller retries) and after (a push that
        // raced the delete).
        let users = [user.clone()];
        bounded(self.ring.invalidate(app, &users)).await?;
        self.inner.clear_inbox(app, user).await?;
        bounded(self.ring.invalidate(app, &users)).await
    }

    async fn pull_group_timelines(&self, app: &AppId, user: &UserId, limit: u32) -> Result<Pulled> {
        let pulled = self.inner.pull_group_timelines(app, user, limit).await?;
        if pulled.entries > 0 {
            // The pulled entries are in PostgreSQL only: the ring would
            // now miss a run (sync already falls back on a gap), so drop it
            // and let later appends refill it. A failure here costs only
            // ring hits, never correctness.
            if let Err(e) = bounded(self.ring.invalidate(app, std::slice::from_ref(user))).await {
                tracing::warn!(error = %e, "could not drop an inbox ring after a pull");
            }
        }
        Ok(pulled)
    }

    async fn pull_group_through(
        &self,
        app: &AppId,
        user: &UserId,
        group: &GroupId,
        through_seq: u64,
        limit: u32,
    ) -> Result<Pulled> {
        let pulled = self
            .inner
            .pull_group_through(app, user, group, through_seq, limit)
            .await?;
        if pulled.entries > 0 {
            // As after any pull: the ring would miss these entries.
            if let Err(e) = bounded(self.ring.invalidate(app, std::slice::from_ref(user))).await {
                tracing::warn!(error = %e, "could not drop an inbox ring after a pull");
            }
        }
        Ok(pulled)
    }

    async fn group_has_unpulled(&self, app: &AppId, group: &GroupId) -> Result<bool> {
        self.inner.group_has_unpulled(app, group).await
    }
}

/// The stores of a distributed node: PostgreSQL for everything durable,
/// Redis for the inbox ring in front of it and for the route table.
pub async fn distributed(
    pg: crate::postgres::PgStore,
    redis: &RedisTarget,
    ring_capacity: usize,
    route_ttl_secs: u64,
) -> Result<crate::Stores> {
    Ok(distributed_on(
        pg,
        connect(redis).await?,
        ring_capacity,
        route_ttl_secs,
    ))
}

/// [`distributed`] on a connection the caller made (tests give each store
/// its own key prefix on one shared cluster).
pub fn distributed_on(
    pg: crate::postgres::PgStore,
    conn: RedisConn,
    ring_capacity: usize,
    route_ttl_secs: u64,
) -> crate::Stores {
    let ring = RedisRing::new(conn.clone(), ring_capacity);
    let pg = Arc::new(pg);
    crate::Stores {
        messages: Arc::new(RingedMessages {
            inner: pg.clone(),
            ring: ring.clone(),
            groups: pg.clone(),
        }),
        inbox: Arc::new(RingedInbox {
            inner: pg.clone(),
            ring,
        }),
        reads: pg.clone(),
        revocations: pg.clone(),
        groups: pg.clone(),
        rooms: pg.clone(),
        users: pg.clone(),
        webhooks: pg.clone(),
        devices: pg.clone(),
        push_queue: pg.clone(),
        usage: pg.clone(),
        control: pg,
        routes: Arc::new(RedisRouteTable::new(conn, route_ttl_secs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::cluster_routing::get_slot;

    fn slot(key: &str) -> u16 {
        get_slot(key.as_bytes())
    }

    #[test]
    fn a_users_keys_share_one_slot_and_users_spread_over_slots() {
        let app = AppId::parse("app1").expect("app");
        let mut slots = std::collections::BTreeSet::new();
        for i in 0..64 {
            let user = UserId::parse(&format!("u{i}")).expect("user");
            let routes = user_key(DEFAULT_PREFIX, &app, &user, "routes");
            let inbox = user_key(DEFAULT_PREFIX, &app, &user, "inbox");
            assert_eq!(slot(&routes), slot(&inbox), "{routes} / {inbox}");
            // The prefix is outside the tag: it never moves a user's slot.
            assert_eq!(slot(&routes), slot(&user_key("t1", &app, &user, "routes")));
            slots.insert(slot(&routes));
        }
        assert!(slots.len() > 32, "users hash to many slots: {slots:?}");
    }

    #[test]
    fn a_rooms_two_keys_share_one_slot() {
        let app = AppId::parse("app1").expect("app");
        for i in 0..64 {
            let room = RoomId::parse(&format!("r{i}")).expect("room");
            let (nodes, counts) = room_keys(DEFAULT_PREFIX, &app, &room);
            assert_eq!(slot(&nodes), slot(&counts), "{nodes} / {counts}");
        }
    }

    #[test]
    fn the_key_layout_is_the_one_before_cluster_support() {
        // Routes are ephemeral, but an upgrade in place keeps them readable.
        let app = AppId::parse("app1").expect("app");
        let user = UserId::parse("bob").expect("user");
        assert_eq!(
            user_key(DEFAULT_PREFIX, &app, &user, "inbox"),
            "confab:{app1:bob}:inbox"
        );
        assert_eq!(
            node_key(DEFAULT_PREFIX, "10.0.0.1:7001"),
            "confab:node:{10.0.0.1:7001}:routes"
        );
    }

    #[test]
    fn the_target_needs_the_cluster_switch_for_several_urls() {
        assert_eq!(
            RedisTarget::parse("redis://a:6379", false),
            Ok(RedisTarget::Single("redis://a:6379".into()))
        );
        assert_eq!(
            RedisTarget::parse("redis://a:1, redis://b:2,", true),
            Ok(RedisTarget::Cluster(vec![
                "redis://a:1".into(),
                "redis://b:2".into()
            ]))
        );
        let err = RedisTarget::parse("redis://a:1,redis://b:2", false).expect_err("refused");
        assert!(err.contains("CONFAB_REDIS_CLUSTER"), "{err}");
        let err = RedisTarget::parse("a:1", true).expect_err("refused");
        assert!(err.contains("redis://"), "{err}");
        assert!(
            !err.contains("a:1"),
            "no URL (it may hold a password): {err}"
        );
        assert!(RedisTarget::parse(" , ", true).is_err());
    }
}
