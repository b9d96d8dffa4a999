//! The distributed roaming store on PostgreSQL.
//!
//! Appends are group-committed: a writer task takes every queued append and
//! writes them in one transaction with one `UNNEST` statement per table.
//! Sequence numbers come from counter rows (`conversations`, `inbox_heads`)
//! advanced with `INSERT … ON CONFLICT DO UPDATE … RETURNING` in sorted key
//! order, so several logic nodes can append concurrently without deadlocks,
//! gaps or repeats: a counter row stays locked until its batch commits, so
//! readers never see `inbox_seq` 6 committed before 5.

mod control;
mod groups;
mod push;
mod reads;
mod revocations;
mod rooms;
mod usage;
mod users;
mod webhooks;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confab_model::{AppId, ConvId, GroupId, InboxEntry, Peer, StoredMessage, UserId};
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use tokio::sync::{mpsc, oneshot};

use crate::memory::MemoryRouteTable;
use crate::{
    Appended, InboxStore, MessageStore, NewMessage, Pulled, Purged, Result, StoreError, Stores,
};

#[derive(Debug, Clone)]
pub struct PgOptions {
    pub max_connections: u32,
    /// Most messages committed in one transaction.
    pub max_batch: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            max_batch: 512,
        }
    }
}

/// The PostgreSQL database: implements every durable store trait.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    appends: mpsc::Sender<writer::Job>,
}

impl PgStore {
    /// Connects and runs migrations.
    pub async fn connect(url: &str, options: PgOptions) -> Result<Self> {
        let max_connections = options.max_connections.max(2);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrating PostgreSQL: {e}")))?;
        let appends = writer::spawn(pool.clone(), options.max_batch.max(1));
        crate::pool_metrics::spawn_pool_gauges(pool.clone(), "postgres", "main", max_connections);
        Ok(Self { pool, appends })
    }

    /// The stores of a node with PostgreSQL alone (in-memory route table).
    pub fn into_stores(self) -> Stores {
        let me = Arc::new(self);
        Stores {
            messages: me.clone(),
            inbox: me.clone(),
            reads: me.clone(),
            revocations: me.clone(),
            groups: me.clone(),
            rooms: me.clone(),
            users: me.clone(),
            webhooks: me.clone(),
            devices: me.clone(),
            push_queue: me.clone(),
            usage: me.clone(),
            control: me,
            routes: Arc::new(MemoryRouteTable::new()),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

pub(crate) const MESSAGE_COLUMNS: &str = "m.conv_id, m.seq, m.msg_id, m.sender, m.to_kind, m.to_id, m.client_msg_id, m.body, m.ts, m.recalled";

pub(crate) fn message_from_row(row: &PgRow) -> Result<StoredMessage> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("message row has a bad {what}"));
    let conv_id: String = row.try_get("conv_id")?;
    let sender: String = row.try_get("sender")?;
    let to_kind: String = row.try_get("to_kind")?;
    let to_id: String = row.try_get("to_id")?;
    let recalled: bool = row.try_get("recalled")?;
    Ok(StoredMessage {
        conv_id: ConvId::parse(&conv_id).map_err(|_| corrupt("conv_id"))?,
        seq: row.try_get::<i64, _>("seq")? as u64,
        msg_id: row.try_get("msg_id")?,
        from: UserId::parse(&sender).map_err(|_| corrupt("sender"))?,
        to: Peer::parse(&to_kind, &to_id).map_err(|_| corrupt("recipient"))?,
        body: if recalled {
            confab_model::RECALLED_BODY.to_owned()
        } else {
            row.try_get("body")?
        },
        ts: row.try_get("ts")?,
        client_msg_id: row.try_get("client_msg_id")?,
        recalled,
    })
}

fn clamp(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

#[async_trait]
impl MessageStore for PgStore {
    async fn append(&self, msg: NewMessage) -> Result<Appended> {
        let (tx, rx) = oneshot::channel();
        self.appends
            .send(writer::Job { msg, reply: tx })
            .await
            .map_err(|_| StoreError::Unavailable("the message writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the message writer has stopped".into()))?
    }

    async fn history(
        &self,
        app: &AppId,
        conv: &ConvId,
        before_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredMessage>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.app_id = $1 AND m.conv_id = $2 AND m.seq < $3 \
             ORDER BY m.seq DESC LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(app.as_str())
            .bind(conv.as_str())
            .bind(before_seq.map(clamp).unwrap_or(i64::MAX))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(message_from_row).collect()
    }

    async fn get(&self, app: &AppId, conv: &ConvId, msg_id: &str) -> Result<Option<StoredMessage>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.app_id = $1 AND m.msg_id = $2 AND m.conv_id = $3"
        );
        let row = sqlx::query(&sql)
            .bind(app.as_str())
            .bind(msg_id)
            .bind(conv.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    async fn get_by_id(&self, app: &AppId, msg_id: &str) -> Result<Option<StoredMessage>> {
        // Served by the (app_id, msg_id) index.
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.app_id = $1 AND m.msg_id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(app.as_str())
            .bind(msg_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    async fn recall(&self, app: &AppId, conv: &ConvId, msg_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE messages SET recalled = TRUE, body = $1 WHERE app_id = $2 AND msg_id = $3 AND conv_id = $4",
        )
        .bind(confab_model::RECALLED_BODY)
        .bind(app.as_str())
        .bind(msg_id)
        .bind(conv.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
    async fn purge_older_than(&self, app: &AppId, before_ts: i64, max: u32) -> Result<Purged> {
        // Seq and inbox counters live in their own tables, so every old row
        // can go. One statement: the inbox entries go with their messages.
        let (deleted, users): (i64, Vec<String>) = sqlx::query_as(
            "WITH gone AS ( \
               DELETE FROM messages WHERE app_id = $1 AND (conv_id, seq) IN ( \
                 SELECT conv_id, seq FROM messages WHERE app_id = $1 AND ts < $2 ORDER BY ts LIMIT $3) \
               RETURNING conv_id, seq), \
             inbox_gone AS ( \
               DELETE FROM inbox i USING gone WHERE i.app_id = $1 AND i.conv_id = gone.conv_id AND i.seq = gone.seq \
               RETURNING i.user_id) \
             SELECT (SELECT COUNT(*) FROM gone), \
                    COALESCE((SELECT ARRAY_AGG(DISTINCT user_id) FROM inbox_gone), ARRAY[]::TEXT[])",
        )
        .bind(app.as_str())
        .bind(before_ts)
        .bind(i64::from(max))
        .fetch_one(&self.pool)
        .await?;
        // Dedupe keys are kept 24 h (protocol.md); older ones of purged
        // messages go too.
        sqlx::query("DELETE FROM dedupe WHERE app_id = $1 AND created_at < LEAST($2, $3)")
            .bind(app.as_str())
            .bind(before_ts)
            .bind(confab_model::now_ms() - 24 * 3600 * 1000)
            .execute(&self.pool)
            .await?;
        Ok(Purged {
            messages: deleted as u64,
            users: crate::distinct_users(users),
        })
    }
}

#[async_trait]
impl InboxStore for PgStore {
    async fn head(&self, app: &AppId, user: &UserId) -> Result<u64> {
        let head: Option<i64> =
            sqlx::query_scalar("SELECT head FROM inbox_heads WHERE app_id = $1 AND user_id = $2")
                .bind(app.as_str())
                .bind(user.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(head.unwrap_or(0) as u64)
    }

    async fn since(
        &self,
        app: &AppId,
        user: &UserId,
        since: u64,
        limit: u32,
    ) -> Result<Vec<InboxEntry>> {
        let sql = format!(
            "SELECT i.inbox_seq, {MESSAGE_COLUMNS} FROM inbox i \
             JOIN messages m ON m.app_id = i.app_id AND m.conv_id = i.conv_id AND m.seq = i.seq \
             WHERE i.app_id = $1 AND i.user_id = $2 AND i.inbox_seq > $3 ORDER BY i.inbox_seq LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(app.as_str())
            .bind(user.as_str())
            .bind(clamp(since))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(InboxEntry {
                    inbox_seq: row.try_get::<i64, _>("inbox_seq")? as u64,
                    message: message_from_row(row)?,
                })
            })
            .collect()
    }

    async fn clear_inbox(&self, app: &AppId, user: &UserId) -> Result<()> {
        // The head lives in `inbox_heads`, which stays: seqs never repeat.
        let mut tx = self.pool.begin().await?;
        for table in ["inbox", "user_conversations"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE app_id = $1 AND user_id = $2"
            ))
            .bind(app.as_str())
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn pull_group_timelines(&self, app: &AppId, user: &UserId, limit: u32) -> Result<Pulled> {
        // Read-only first: most syncs have nothing to pull and take no lock.
        let pending = sqlx::query(PULL_CANDIDATES)
            .bind(app.as_str())
            .bind(user.as_str())
            .bind(1_i64)
            .fetch_optional(&self.pool)
            .await?;
        if pending.is_none() || limit == 0 {
            return Ok(Pulled::default());
        }
        let mut tx = self.pool.begin().await?;
        // Lock the user's inbox head before choosing: a concurrent pull of
        // the same user waits here and then sees this one's cursors, so no
        // message is given twice. (Appends lock heads in sorted order and
        // then conversation rows; this takes one head, then the same user's
        // conversation rows: no cycle.)
        let head: i64 = sqlx::query_scalar(
            "INSERT INTO inbox_heads (app_id, user_id, head) VALUES ($1, $2, 0) \
             ON CONFLICT (app_id, user_id) DO UPDATE SET head = inbox_heads.head RETURNING head",
        )
        .bind(app.as_str())
        .bind(user.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let rows = sqlx::query(PULL_CANDIDATES)
            .bind(app.as_str())
            .bind(user.as_str())
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        give_pulled(tx, app, user, head, rows, limit).await
    }

    async fn pull_group_through(
        &self,
        app: &AppId,
        user: &UserId,
        group: &GroupId,
        through_seq: u64,
        limit: u32,
    ) -> Result<Pulled> {
        if limit == 0 {
            return Ok(Pulled::default());
        }
        let mut tx = self.pool.begin().await?;
        // The same head lock as a member's pull: the two never give one
        // message twice.
        let head: i64 = sqlx::query_scalar(
            "INSERT INTO inbox_heads (app_id, user_id, head) VALUES ($1, $2, 0) \
             ON CONFLICT (app_id, user_id) DO UPDATE SET head = inbox_heads.head RETURNING head",
        )
        .bind(app.as_str())
        .bind(user.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let rows = sqlx::query(LEAVER_CANDIDATES)
            .bind(app.as_str())
            .bind(user.as_str())
            .bind(group.as_str())
            .bind(through_seq.min(i64::MAX as u64) as i64)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
        give_pulled(tx, app, user, head, rows, limit).await
    }

    async fn group_has_unpulled(&self, app: &AppId, group: &GroupId) -> Result<bool> {
        // The newest read-fanout message is still to pull for exactly the
        // members who have one to pull: their cursor is below it and they
        // joined before it.
        let top: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(seq) FROM messages WHERE app_id = $1 AND conv_id = $2 AND read_fanout",
        )
        .bind(app.as_str())
        .bind(ConvId::group(group).as_str())
        .fetch_one(&self.pool)
        .await?;
        let Some(top) = top else {
            return Ok(false);
        };
        let pending: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM group_members gm LEFT JOIN group_pull_cursors c \
             ON c.app_id = gm.app_id AND c.user_id = gm.user_id AND c.group_id = gm.group_id \
             WHERE gm.app_id = $1 AND gm.group_id = $2 AND gm.join_seq <= $3 AND COALESCE(c.through_seq, 0) < $3 LIMIT 1",
        )
        .bind(app.as_str())
        .bind(group.as_str())
        .bind(top)
        .fetch_optional(&self.pool)
        .await?;
        Ok(pending.is_some())
    }
}

/// The rest of a pull once its candidate rows are chosen (under the user's
/// inbox head lock, `head` its value): inbox entries, conversation rows and
/// pull cursors, in one transaction.
async fn give_pulled(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    app: &AppId,
    user: &UserId,
    head: i64,
    rows: Vec<sqlx::postgres::PgRow>,
    limit: u32,
) -> Result<Pulled> {
    if rows.is_empty() {
        tx.commit().await?;
        return Ok(Pulled::default());
    }
    let more = rows.len() >= limit as usize;
    let mut convs: Vec<String> = Vec::with_capacity(rows.len());
    let mut seqs: Vec<i64> = Vec::with_capacity(rows.len());
    let mut inbox_seqs: Vec<i64> = Vec::with_capacity(rows.len());
    // (conv) -> (last seq, newest ts, read seq): a member has read their
    // own messages, as under write diffusion.
    let mut last: std::collections::BTreeMap<String, (i64, i64, i64)> = Default::default();
    let mut cursors: std::collections::BTreeMap<String, i64> = Default::default();
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
            continue;
        }
        let e = last.entry(conv.clone()).or_insert((0, 0, 0));
        e.0 = e.0.max(seq);
        e.1 = e.1.max(ts);
        if mine {
            e.2 = e.2.max(seq);
        }
        inbox_seqs.push(head + 1 + convs.len() as i64);
        convs.push(conv);
        seqs.push(seq);
    }
    let n = convs.len() as i64;
    sqlx::query("UPDATE inbox_heads SET head = head + $3 WHERE app_id = $1 AND user_id = $2")
        .bind(app.as_str())
        .bind(user.as_str())
        .bind(n)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO inbox (app_id, user_id, inbox_seq, conv_id, seq) \
         SELECT $1, $2, * FROM UNNEST($3::BIGINT[], $4::TEXT[], $5::BIGINT[])",
    )
    .bind(app.as_str())
    .bind(user.as_str())
    .bind(&inbox_seqs)
    .bind(&convs)
    .bind(&seqs)
    .execute(&mut *tx)
    .await?;
    let conv_ids: Vec<&str> = last.keys().map(String::as_str).collect();
    let lasts: Vec<i64> = last.values().map(|v| v.0).collect();
    let ats: Vec<i64> = last.values().map(|v| v.1).collect();
    let reads: Vec<i64> = last.values().map(|v| v.2).collect();
    sqlx::query(
        "INSERT INTO user_conversations (app_id, user_id, conv_id, last_seq, read_seq, updated_at) \
         SELECT $1, $2, c, l, r, t FROM UNNEST($3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[]) AS x(c, l, t, r) \
         ON CONFLICT (app_id, user_id, conv_id) DO UPDATE SET \
         last_seq = GREATEST(user_conversations.last_seq, EXCLUDED.last_seq), \
         read_seq = GREATEST(user_conversations.read_seq, EXCLUDED.read_seq), \
         updated_at = GREATEST(user_conversations.updated_at, EXCLUDED.updated_at)",
    )
    .bind(app.as_str())
    .bind(user.as_str())
    .bind(&conv_ids)
    .bind(&lasts)
    .bind(&ats)
    .bind(&reads)
    .execute(&mut *tx)
    .await?;
    let groups: Vec<&str> = cursors.keys().map(String::as_str).collect();
    let throughs: Vec<i64> = cursors.values().copied().collect();
    sqlx::query(
        "INSERT INTO group_pull_cursors (app_id, user_id, group_id, through_seq) \
         SELECT $1, $2, g, t FROM UNNEST($3::TEXT[], $4::BIGINT[]) AS x(g, t) \
         ON CONFLICT (app_id, user_id, group_id) DO UPDATE SET \
         through_seq = GREATEST(group_pull_cursors.through_seq, EXCLUDED.through_seq)",
    )
    .bind(app.as_str())
    .bind(user.as_str())
    .bind(&groups)
    .bind(&throughs)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let given = convs
        .into_iter()
        .zip(seqs)
        .zip(inbox_seqs)
        .map(|((conv_id, seq), inbox_seq)| crate::PulledEntry {
            conv_id,
            seq: seq as u64,
            inbox_seq: inbox_seq as u64,
        })
        .collect();
    Ok(Pulled {
        entries: n as u32,
        more,
        given,
    })
}

/// The read-fanout messages of one group a user has just left:
/// `$1` app, `$2` user, `$3` group, `$4` through seq, `$5` limit. From their
/// pull cursor (no cursor, nothing), in `seq` order; the columns of
/// [`PULL_CANDIDATES`].
const LEAVER_CANDIDATES: &str = "SELECT m.conv_id, m.seq, m.ts, c.group_id, (m.sender = $2 AND m.sender_entry) AS own, m.sender = $2 AS mine \
     FROM group_pull_cursors c \
     JOIN messages m ON m.app_id = c.app_id AND m.conv_id = 'group:' || c.group_id \
     WHERE c.app_id = $1 AND c.user_id = $2 AND c.group_id = $3 AND m.read_fanout \
     AND m.seq > c.through_seq AND m.seq <= $4 \
     ORDER BY m.seq LIMIT $5";

/// The read-fanout group messages a user has to pull, in the order they are
/// given: `$1` app, `$2` user, `$3` limit.
const PULL_CANDIDATES: &str = "SELECT m.conv_id, m.seq, m.ts, gm.group_id, (m.sender = $2 AND m.sender_entry) AS own, m.sender = $2 AS mine FROM group_members gm \
     JOIN messages m ON m.app_id = gm.app_id AND m.conv_id = 'group:' || gm.group_id \
     LEFT JOIN group_pull_cursors c ON c.app_id = gm.app_id AND c.user_id = gm.user_id AND c.group_id = gm.group_id \
     WHERE gm.app_id = $1 AND gm.user_id = $2 AND m.read_fanout \
     AND m.seq >= gm.join_seq AND m.seq > COALESCE(c.through_seq, 0) \
     ORDER BY m.conv_id, m.seq LIMIT $3";
