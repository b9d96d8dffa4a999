//! The single message writer: group commit for the SQLite backend.
//!
//! One task owns the write connection. It takes every append that is queued
//! (up to `max_batch`), and in one transaction dedupes them, assigns each
//! conversation's next `seq` and each recipient's next `inbox_seq`, and
//! inserts messages, inbox entries and conversation rows with multi-row
//! statements. Callers are answered only after the commit, so an `Appended`
//! is always durable. Sequence counters are cached in memory (this task is the
//! only writer of those tables) and only updated once a commit succeeded, so a
//! failed batch leaves no gaps.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;

use confab_model::{AppId, ConvId, GroupId, StoredMessage, UserId};
use lru::LruCache;
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::message_from_row;
use crate::{Appended, NewMessage, Pulled, Result, StoreError};

pub(super) enum Job {
    Append {
        msg: NewMessage,
        reply: oneshot::Sender<Result<Appended>>,
    },
    /// Read diffusion: give a user inbox entries for the group messages
    /// they have to pull. Here because this task owns the `inbox_seq`
    /// counters.
    Pull {
        app: AppId,
        user: UserId,
        scope: PullScope,
        limit: u32,
        reply: oneshot::Sender<Result<Pulled>>,
    },
}

/// Which read-fanout messages a pull gives.
pub(super) enum PullScope {
    /// Those of every group the user is a member of ([`PULL_CANDIDATES`]).
    Member,
    /// Those of one group the user has just left, up to a `seq`
    /// ([`LEAVER_CANDIDATES`]).
    Leaver { group: GroupId, through_seq: u64 },
}

/// Bound on queued appends: beyond it, senders wait (back-pressure reaches
/// the connections that send, not memory).
const QUEUE: usize = 16 * 1024;
/// Counters kept in memory; older ones are reloaded from the database.
const COUNTER_CACHE: usize = 1 << 20;
/// Multi-row statements are built in a few fixed sizes only, so that sqlx's
/// prepared-statement cache serves them (planning a new statement text per
/// batch cost more than executing it). 64 rows × 13 columns stays far below
/// SQLite's 32 766 bound parameters.
const CHUNK_SIZES: [usize; 4] = [64, 16, 4, 1];

/// Splits `items` into chunks whose lengths are all in [`CHUNK_SIZES`].
fn fixed_chunks<T>(mut items: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let size = CHUNK_SIZES.into_iter().find(|s| *s <= items.len())?;
        let (head, tail) = items.split_at(size);
        items = tail;
        Some(head)
    })
}

/// The read-fanout group messages a user has to pull, in the order they are
/// given: `?1` app, `?2` user, `?3` limit. One range seek per group of the
/// user on the read-fan-out index. Shared with the read-only pre-check.
/// The join order and indexes are pinned: left to itself (no statistics)
/// SQLite scanned every message of the app for each login and sync, filling
/// the page cache (found by the flood test's memory bound). Pinned, the cost is
/// the user's groups plus the read-fan-out messages still to pull.
pub(super) const PULL_CANDIDATES: &str = "SELECT m.conv_id, m.seq, m.ts, gm.group_id, (m.sender = ?2 AND m.sender_entry = 1) AS own, m.sender = ?2 AS mine \
     FROM group_members gm INDEXED BY group_members_by_user \
     LEFT JOIN group_pull_cursors c ON c.app_id = gm.app_id AND c.user_id = gm.user_id AND c.group_id = gm.group_id \
     CROSS JOIN messages m INDEXED BY messages_read_fanout \
       ON m.app_id = gm.app_id AND m.conv_id = 'group:' || gm.group_id \
     WHERE gm.app_id = ?1 AND gm.user_id = ?2 AND m.read_fanout = 1 \
     AND m.seq >= gm.join_seq AND m.seq > COALESCE(c.through_seq, 0) \
     ORDER BY m.conv_id, m.seq LIMIT ?3";

/// The read-fanout messages of one group a user has just left, to give
/// them: `?1` app, `?2` user, `?3` group, `?4` through seq, `?5` limit. From
/// their pull cursor (the removal left it at or past their joining; no
/// cursor, nothing), in `seq` order; same columns as [`PULL_CANDIDATES`].
pub(super) const LEAVER_CANDIDATES: &str = "SELECT m.conv_id, m.seq, m.ts, c.group_id, (m.sender = ?2 AND m.sender_entry = 1) AS own, m.sender = ?2 AS mine \
     FROM group_pull_cursors c \
     CROSS JOIN messages m INDEXED BY messages_read_fanout \
       ON m.app_id = c.app_id AND m.conv_id = 'group:' || c.group_id \
     WHERE c.app_id = ?1 AND c.user_id = ?2 AND c.group_id = ?3 AND m.read_fanout = 1 \
     AND m.seq > c.through_seq AND m.seq <= ?4 \
     ORDER BY m.seq LIMIT ?5";

pub(super) fn spawn(
    conn: SqliteConnection,
    max_batch: usize,
    fanout: Arc<ReadFanoutApps>,
) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let writer = Writer {
        conn,
        fanout,
        conv_seq: LruCache::new(NonZeroUsize::new(COUNTER_CACHE).unwrap_or(NonZeroUsize::MIN)),
        inbox_seq: LruCache::new(NonZeroUsize::new(COUNTER_CACHE).unwrap_or(NonZeroUsize::MIN)),
    };
    // The writer awaits SQLite (on sqlx's worker thread) about ten times per
    // batch. On the shared runtime each wake-up waited behind thousands of
    // connection tasks, and that queueing, not SQLite, bounded throughput; a
    // thread with its own small runtime keeps the round trips short.
    let spawned = std::thread::Builder::new()
        .name("confab-writer".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(writer.run(rx, max_batch)),
                Err(e) => tracing::error!(error = %e, "cannot start the message writer runtime"),
            }
        });
    if let Err(e) = spawned {
        // The receiver is gone with the closure: appends fail as unavailable.
        tracing::error!(error = %e, "cannot start the message writer thread");
    }
    tx
}

/// Which apps have read-fan-out messages, as far as this process knows: it
/// is the only writer of the database's messages (embedded mode), so an app
/// marked `false` has none and the pull lookup can be skipped — it ran on
/// every login and sync of every user. `true` stays (a purge may have
/// removed them; the lookup then finds nothing, as before).
#[derive(Default)]
pub(super) struct ReadFanoutApps(std::sync::Mutex<HashMap<AppId, bool>>);

impl ReadFanoutApps {
    pub(super) fn get(&self, app: &AppId) -> Option<bool> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(app).copied()
    }

    /// Records what a lookup found, unless the writer marked the app since.
    pub(super) fn found(&self, app: &AppId, any: bool) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(app.clone()).or_insert(any);
    }

    /// The writer is about to store a read-fan-out message of `app`.
    fn mark(&self, app: &AppId) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.get(app) != Some(&true) {
            map.insert(app.clone(), true);
        }
    }
}

struct Writer {
    conn: SqliteConnection,
    fanout: Arc<ReadFanoutApps>,
    conv_seq: LruCache<(AppId, ConvId), u64>,
    inbox_seq: LruCache<(AppId, UserId), u64>,
}

/// A message to insert: the request, the stored form, its inbox entries.
type NewRow<'a> = (&'a NewMessage, &'a StoredMessage, &'a Vec<(UserId, u64)>);

/// Stored messages by (app, sender, client_msg_id).
type Existing = HashMap<(String, String, String), StoredMessage>;

/// A batch's plan and the counters it advances (applied only after commit).
type Plan = (
    Vec<Planned>,
    HashMap<(AppId, ConvId), u64>,
    HashMap<(AppId, UserId), u64>,
);

#[derive(Debug, PartialEq, Eq)]
enum WriteOutcome {
    Committed,
    /// A message's (app, sender, client_msg_id) is already stored; nothing
    /// was written.
    Duplicate,
}

/// What one job of a batch resolved to before the commit.
enum Planned {
    /// Seen before this batch: answer with the stored original.
    Existing(StoredMessage),
    /// Same key as an earlier job in this batch: answer as that job.
    SameAs(usize),
    New {
        message: StoredMessage,
        inbox: Vec<(UserId, u64)>,
    },
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
        let mut batch = Vec::with_capacity(max_batch);
        while rx.recv_many(&mut batch, max_batch).await > 0 {
            let started = std::time::Instant::now();
            let jobs: Vec<Job> = std::mem::take(&mut batch);
            let mut msgs = Vec::with_capacity(jobs.len());
            let mut replies = Vec::with_capacity(jobs.len());
            let mut pulls = Vec::new();
            for job in jobs {
                match job {
                    Job::Append { msg, reply } => {
                        msgs.push(msg);
                        replies.push(reply);
                    }
                    Job::Pull {
                        app,
                        user,
                        scope,
                        limit,
                        reply,
                    } => pulls.push((app, user, scope, limit, reply)),
                }
            }
            let size = msgs.len();
            if size > 0 {
                self.append_batch(msgs, replies, started).await;
            }
            // After the appends: a pull queued with them sees them.
            for (app, user, scope, limit, reply) in pulls {
                let _ = reply.send(self.pull(&app, &user, &scope, limit).await);
            }
        }
    }

    async fn append_batch(
        &mut self,
        msgs: Vec<NewMessage>,
        replies: Vec<oneshot::Sender<Result<Appended>>>,
        started: std::time::Instant,
    ) {
        let size = msgs.len();
        match self.commit_batch(&msgs).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(Ok(result));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = size, "message batch failed to commit");
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Unavailable(e.to_string())));
                }
            }
        }
        metrics::histogram!("confab_store_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("confab_store_commit_batch_messages").record(size as f64);
    }

    async fn commit_batch(&mut self, msgs: &[NewMessage]) -> Result<Vec<Appended>> {
        // Before the commit: a pull lookup racing it then sees the mark.
        for m in msgs.iter().filter(|m| m.read_fanout) {
            self.fanout.mark(&m.app_id);
        }
        // Optimistic first: retries with a known client_msg_id are rare, so the
        // unique index on (app, sender, client_msg_id) does the dedupe inside
        // the insert. If it finds a repeat, the transaction is rolled back
        // (no seq is consumed) and the batch is planned again with the stored
        // originals looked up.
        let plans = self.plan(msgs, &HashMap::new()).await?;
        if self.write(msgs, &plans.0).await? == WriteOutcome::Committed {
            return Ok(self.finish(plans));
        }
        metrics::counter!("confab_store_dedupe_replans_total").increment(1);
        let existing = self.find_existing(msgs).await?;
        let plans = self.plan(msgs, &existing).await?;
        match self.write(msgs, &plans.0).await? {
            WriteOutcome::Committed => Ok(self.finish(plans)),
            WriteOutcome::Duplicate => Err(StoreError::Unavailable(
                "a duplicate appeared while replanning".into(),
            )),
        }
    }

    /// Decides what each job becomes: seq and inbox_seq for new messages.
    async fn plan(&mut self, msgs: &[NewMessage], existing: &Existing) -> Result<Plan> {
        let mut plans = Vec::with_capacity(msgs.len());
        // Counters advanced by this batch; applied to the caches after commit.
        let mut conv_next: HashMap<(AppId, ConvId), u64> = HashMap::new();
        let mut inbox_next: HashMap<(AppId, UserId), u64> = HashMap::new();
        let mut first_with_key: HashMap<(&str, &str, &str), usize> = HashMap::new();

        for (i, m) in msgs.iter().enumerate() {
            let key = (m.app_id.as_str(), m.from.as_str(), m.client_msg_id.as_str());
            if let Some(found) = existing.get(&(
                m.app_id.as_str().to_owned(),
                m.from.as_str().to_owned(),
                m.client_msg_id.clone(),
            )) {
                plans.push(Planned::Existing(found.clone()));
                continue;
            }
            if let Some(&first) = first_with_key.get(&key) {
                plans.push(Planned::SameAs(first));
                continue;
            }
            first_with_key.insert(key, i);

            let conv_key = (m.app_id.clone(), m.conv_id.clone());
            let seq = match conv_next.get(&conv_key) {
                Some(s) => *s + 1,
                None => self.conv_head(&m.app_id, &m.conv_id).await? + 1,
            };
            conv_next.insert(conv_key, seq);

            let mut inbox = Vec::with_capacity(m.recipients.len());
            for user in &m.recipients {
                let key = (m.app_id.clone(), user.clone());
                let next = match inbox_next.get(&key) {
                    Some(s) => *s + 1,
                    None => self.inbox_head(&m.app_id, user).await? + 1,
                };
                inbox_next.insert(key, next);
                inbox.push((user.clone(), next));
            }
            let message = StoredMessage {
                conv_id: m.conv_id.clone(),
                seq,
                msg_id: m.msg_id.clone(),
                from: m.from.clone(),
                to: m.to.clone(),
                body: m.body.clone(),
                ts: m.ts,
                client_msg_id: m.client_msg_id.clone(),
                recalled: false,
            };
            plans.push(Planned::New { message, inbox });
        }

        Ok((plans, conv_next, inbox_next))
    }

    /// Applies a committed plan: advances the counters, builds the answers.
    fn finish(&mut self, (plans, conv_next, inbox_next): Plan) -> Vec<Appended> {
        for (k, v) in conv_next {
            self.conv_seq.put(k, v);
        }
        for (k, v) in inbox_next {
            self.inbox_seq.put(k, v);
        }

        let mut results: Vec<Appended> = Vec::with_capacity(plans.len());
        for plan in plans {
            let appended = match plan {
                Planned::Existing(message) => Appended {
                    message,
                    duplicate: true,
                    inbox: vec![],
                },
                Planned::SameAs(first) => Appended {
                    message: results[first].message.clone(),
                    duplicate: true,
                    inbox: vec![],
                },
                Planned::New { message, inbox } => Appended {
                    message,
                    duplicate: false,
                    inbox,
                },
            };
            results.push(appended);
        }
        results
    }

    /// Messages already stored under the batch's (app, sender, client_msg_id).
    async fn find_existing(
        &mut self,
        msgs: &[NewMessage],
    ) -> Result<HashMap<(String, String, String), StoredMessage>> {
        let mut found = HashMap::new();
        for chunk in fixed_chunks(msgs) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
                "SELECT m.app_id, {} FROM messages m WHERE ",
                super::MESSAGE_COLUMNS
            ));
            for (i, m) in chunk.iter().enumerate() {
                if i > 0 {
                    qb.push(" OR ");
                }
                qb.push("(m.app_id = ")
                    .push_bind(m.app_id.as_str())
                    .push(" AND m.sender = ")
                    .push_bind(m.from.as_str())
                    .push(" AND m.client_msg_id = ")
                    .push_bind(m.client_msg_id.as_str())
                    .push(")");
            }
            for row in qb.build().fetch_all(&mut self.conn).await? {
                let message = message_from_row(&row)?;
                let app: String = row.try_get("app_id")?;
                found.insert(
                    (
                        app,
                        message.from.as_str().to_owned(),
                        message.client_msg_id.clone(),
                    ),
                    message,
                );
            }
        }
        Ok(found)
    }

    async fn conv_head(&mut self, app: &AppId, conv: &ConvId) -> Result<u64> {
        let key = (app.clone(), conv.clone());
        if let Some(v) = self.conv_seq.get(&key) {
            return Ok(*v);
        }
        let head: Option<i64> =
            sqlx::query_scalar("SELECT MAX(seq) FROM messages WHERE app_id = ? AND conv_id = ?")
                .bind(app.as_str())
                .bind(conv.as_str())
                .fetch_one(&mut self.conn)
                .await?;
        let head = head.unwrap_or(0) as u64;
        self.conv_seq.put(key, head);
        Ok(head)
    }

    async fn inbox_head(&mut self, app: &AppId, user: &UserId) -> Result<u64> {
        let key = (app.clone(), user.clone());
        if let Some(v) = self.inbox_seq.get(&key) {
            return Ok(*v);
        }
        let head: Option<i64> =
            sqlx::query_scalar("SELECT MAX(inbox_seq) FROM inbox WHERE app_id = ? AND user_id = ?")
                .bind(app.as_str())
                .bind(user.as_str())
                .fetch_one(&mut self.conn)
                .await?;
        let head = head.unwrap_or(0) as u64;
        self.inbox_seq.put(key, head);
        Ok(head)
    }

    /// Read diffusion: in one transaction, gives `user` the next inbox
    /// entries for the read-fanout messages of their groups after their
    /// pull cursor (and from their joining), moves their conversation rows
    /// and the cursors. The counter cache moves only after the commit.
    async fn pull(
        &mut self,
        app: &AppId,
        user: &UserId,
        scope: &PullScope,
        limit: u32,
    ) -> Result<Pulled> {
        let rows = match scope {
            PullScope::Member => {
                sqlx::query(PULL_CANDIDATES)
                    .bind(app.as_str())
                    .bind(user.as_str())
                    .bind(i64::from(limit))
                    .fetch_all(&mut self.conn)
                    .await?
            }
            PullScope::Leaver { group, through_seq } => {
                sqlx::query(LEAVER_CANDIDATES)
                    .bind(app.as_str())
                    .bind(user.as_str())
                    .bind(group.as_str())
                    .bind((*through_seq).min(i64::MAX as u64) as i64)
                    .bind(i64::from(limit))
                    .fetch_all(&mut self.conn)
                    .await?
            }
        };
        if rows.is_empty() {
            return Ok(Pulled::default());
        }
        let more = rows.len() >= limit as usize;
        let head = self.inbox_head(app, user).await?;
        let mut tx = self.conn.begin().await?;
        // (conv) -> (last seq, newest ts, read seq); (group) -> highest seq
        // pulled. A member has read their own messages (as under write
        // diffusion, where the sender's entry moves their read cursor).
        let mut convs: HashMap<String, (i64, i64, i64)> = HashMap::new();
        let mut cursors: HashMap<String, i64> = HashMap::new();
        let mut inbox_seq = head;
        let mut given = Vec::with_capacity(rows.len());
        for row in &rows {
            let conv: String = row.try_get("conv_id")?;
            let group: String = row.try_get("group_id")?;
            let seq: i64 = row.try_get("seq")?;
            let ts: i64 = row.try_get("ts")?;
            let own: bool = row.try_get("own")?;
            let mine: bool = row.try_get("mine")?;
            let c = cursors.entry(group).or_insert(0);
            *c = (*c).max(seq);
            if own {
                // Their entry came with the append: only the cursor moves.
                continue;
            }
            inbox_seq += 1;
            given.push(crate::PulledEntry {
                conv_id: conv.clone(),
                seq: seq as u64,
                inbox_seq,
            });
            sqlx::query(
                "INSERT INTO inbox (app_id, user_id, inbox_seq, conv_id, seq) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(app.as_str())
            .bind(user.as_str())
            .bind(inbox_seq as i64)
            .bind(&conv)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
            let e = convs.entry(conv).or_insert((0, 0, 0));
            e.0 = e.0.max(seq);
            e.1 = e.1.max(ts);
            if mine {
                e.2 = e.2.max(seq);
            }
        }
        for (conv, (last, ts, read)) in &convs {
            sqlx::query(
                "INSERT INTO user_conversations (app_id, user_id, conv_id, last_seq, read_seq, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (app_id, user_id, conv_id) DO UPDATE SET \
                 last_seq = MAX(last_seq, excluded.last_seq), read_seq = MAX(read_seq, excluded.read_seq), \
                 updated_at = MAX(updated_at, excluded.updated_at)",
            )
            .bind(app.as_str())
            .bind(user.as_str())
            .bind(conv)
            .bind(last)
            .bind(read)
            .bind(ts)
            .execute(&mut *tx)
            .await?;
        }
        for (group, through) in &cursors {
            sqlx::query(
                "INSERT INTO group_pull_cursors (app_id, user_id, group_id, through_seq) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (app_id, user_id, group_id) DO UPDATE SET \
                 through_seq = MAX(through_seq, excluded.through_seq)",
            )
            .bind(app.as_str())
            .bind(user.as_str())
            .bind(group)
            .bind(through)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.inbox_seq.put((app.clone(), user.clone()), inbox_seq);
        Ok(Pulled {
            entries: (inbox_seq - head) as u32,
            more,
            given,
        })
    }

    async fn write(&mut self, msgs: &[NewMessage], plans: &[Planned]) -> Result<WriteOutcome> {
        let new: Vec<NewRow> = msgs
            .iter()
            .zip(plans)
            .filter_map(|(m, p)| match p {
                Planned::New { message, inbox } => Some((m, message, inbox)),
                _ => None,
            })
            .collect();
        if new.is_empty() {
            return Ok(WriteOutcome::Committed);
        }
        let phase = std::time::Instant::now();
        let mut tx = self.conn.begin().await?;

        for chunk in fixed_chunks(&new) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO messages (app_id, conv_id, seq, msg_id, sender, to_kind, to_id, client_msg_id, body, ts, recalled, read_fanout, sender_entry) ",
            );
            qb.push_values(chunk, |mut b, (m, s, _)| {
                b.push_bind(m.app_id.as_str())
                    .push_bind(s.conv_id.as_str())
                    .push_bind(s.seq as i64)
                    .push_bind(s.msg_id.as_str())
                    .push_bind(s.from.as_str())
                    .push_bind(s.to.kind.as_str())
                    .push_bind(&*s.to.id)
                    .push_bind(s.client_msg_id.as_str())
                    .push_bind(s.body.as_str())
                    .push_bind(s.ts)
                    .push_bind(false)
                    .push_bind(m.read_fanout)
                    .push_bind(m.recipients.contains(&m.from));
            });
            qb.push(" ON CONFLICT (app_id, sender, client_msg_id) DO NOTHING RETURNING seq");
            let inserted = qb.build().fetch_all(&mut *tx).await?.len();
            if inserted != chunk.len() {
                tx.rollback().await?;
                return Ok(WriteOutcome::Duplicate);
            }
        }

        // One row per (recipient, message), for both the inbox and the
        // recipient's conversation list.
        struct Delivery<'a> {
            app: &'a str,
            user: &'a str,
            inbox_seq: i64,
            conv: &'a str,
            seq: i64,
            ts: i64,
            /// The sender has read their own message.
            read: i64,
        }
        let deliveries: Vec<Delivery> = new
            .iter()
            .flat_map(|(m, s, inbox)| {
                inbox.iter().map(move |(user, inbox_seq)| Delivery {
                    app: m.app_id.as_str(),
                    user: user.as_str(),
                    inbox_seq: *inbox_seq as i64,
                    conv: s.conv_id.as_str(),
                    seq: s.seq as i64,
                    ts: s.ts,
                    read: if *user == s.from { s.seq as i64 } else { 0 },
                })
            })
            .collect();

        for chunk in fixed_chunks(&deliveries) {
            let mut qb: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO inbox (app_id, user_id, inbox_seq, conv_id, seq) ");
            qb.push_values(chunk, |mut b, d| {
                b.push_bind(d.app)
                    .push_bind(d.user)
                    .push_bind(d.inbox_seq)
                    .push_bind(d.conv)
                    .push_bind(d.seq);
            });
            qb.build().execute(&mut *tx).await?;
        }

        // A conversation may appear several times in one batch for the same
        // user; an upsert statement may not touch a row twice, so fold first.
        let mut conv_rows: HashMap<(&str, &str, &str), (i64, i64, i64)> = HashMap::new();
        for d in &deliveries {
            let e = conv_rows
                .entry((d.app, d.user, d.conv))
                .or_insert((0, 0, 0));
            e.0 = e.0.max(d.seq);
            e.1 = e.1.max(d.read);
            e.2 = e.2.max(d.ts);
        }
        let conv_rows: Vec<_> = conv_rows.into_iter().collect();
        for chunk in fixed_chunks(&conv_rows) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO user_conversations (app_id, user_id, conv_id, last_seq, read_seq, updated_at) ",
            );
            qb.push_values(chunk, |mut b, ((app, user, conv), (last, read, ts))| {
                b.push_bind(*app)
                    .push_bind(*user)
                    .push_bind(*conv)
                    .push_bind(*last)
                    .push_bind(*read)
                    .push_bind(*ts);
            });
            qb.push(
                " ON CONFLICT (app_id, user_id, conv_id) DO UPDATE SET \
                 last_seq = MAX(last_seq, excluded.last_seq), \
                 read_seq = MAX(read_seq, excluded.read_seq), \
                 updated_at = MAX(updated_at, excluded.updated_at)",
            );
            qb.build().execute(&mut *tx).await?;
        }

        metrics::histogram!("confab_store_phase_seconds", "phase" => "insert")
            .record(phase.elapsed().as_secs_f64());
        let phase = std::time::Instant::now();
        tx.commit().await?;
        metrics::histogram!("confab_store_phase_seconds", "phase" => "commit")
            .record(phase.elapsed().as_secs_f64());
        Ok(WriteOutcome::Committed)
    }
}

#[cfg(test)]
mod tests {
    use super::fixed_chunks;

    #[test]
    fn fixed_chunks_cover_everything_in_known_sizes() {
        for n in 0..300 {
            let items: Vec<usize> = (0..n).collect();
            let chunks: Vec<&[usize]> = fixed_chunks(&items).collect();
            assert!(chunks.iter().all(|c| [64, 16, 4, 1].contains(&c.len())));
            assert_eq!(chunks.concat(), items);
        }
    }
}
