//! The embedded backend: one SQLite database file in WAL mode.
//!
//! Appends go through a single writer task ([`writer`]) that batches whatever
//! is queued into one transaction (group commit): durability costs one commit
//! per batch, not per message. Reads use a separate pool of connections, which
//! WAL lets run alongside the writer. `synchronous=NORMAL` (the default here)
//! survives a crash of the process; `Durability::Full` also survives power loss.

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

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use confab_model::{AppId, ConvId, GroupId, InboxEntry, Peer, StoredMessage, UserId};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};

use crate::memory::MemoryRouteTable;
use crate::{
    Appended, InboxStore, MessageStore, NewMessage, Pulled, Purged, Result, StoreError, Stores,
    distinct_users,
};

/// How hard a commit tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Survives a crash of the process (kill -9): WAL, `synchronous=NORMAL`.
    #[default]
    Process,
    /// Also survives an OS crash or power loss: `synchronous=FULL`.
    Full,
}

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub durability: Durability,
    /// Most messages committed in one transaction.
    pub max_batch: usize,
    pub read_connections: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Process,
            max_batch: 512,
            read_connections: 4,
        }
    }
}

/// The SQLite database: implements every durable store trait.
#[derive(Clone)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    appends: mpsc::Sender<writer::Job>,
    fanout: Arc<writer::ReadFanoutApps>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs migrations.
    pub async fn open(path: &Path, options: SqliteOptions) -> Result<Self> {
        let url = format!("sqlite://{}", path.display());
        let connect = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match options.durability {
                Durability::Process => SqliteSynchronous::Normal,
                Durability::Full => SqliteSynchronous::Full,
            })
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // A bigger page cache and memory-mapped reads: the hot pages of
            // the inbox and message indexes stay in memory instead of being
            // copied in by a read() per page.
            .pragma("cache_size", "-65536")
            .pragma("mmap_size", "268435456")
            .pragma("temp_store", "memory")
            // Checkpoints run on their own task (see `checkpointer`), not inside
            // the message writer's commits, where they took a quarter of its time.
            .pragma("wal_autocheckpoint", "0")
            .pragma("journal_size_limit", "67108864");
        // One connection writes messages; a second serves the other (rare)
        // writes; reads have their own pool.
        let write = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(connect.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&write)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migrating {}: {e}", path.display())))?;
        let read_connections = options.read_connections.max(1);
        let read = SqlitePoolOptions::new()
            .max_connections(read_connections)
            .connect_with(connect.read_only(true))
            .await?;
        let conn = write.acquire().await?.detach();
        let fanout = Arc::new(writer::ReadFanoutApps::default());
        let appends = writer::spawn(conn, options.max_batch.max(1), fanout.clone());
        tokio::spawn(checkpointer(write.clone()));
        crate::pool_metrics::spawn_pool_gauges(read.clone(), "sqlite", "read", read_connections);
        crate::pool_metrics::spawn_pool_gauges(write.clone(), "sqlite", "write", 2);
        Ok(Self {
            read,
            write,
            appends,
            fanout,
        })
    }

    /// All the stores of an embedded node: this database plus an in-memory
    /// route table.
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
}

/// Copies committed WAL frames back into the database file every second, on
/// a connection of its own, so that the WAL stays small without ever holding
/// up the writer (a PASSIVE checkpoint never blocks writers or readers).
/// Stops when the store is dropped.
async fn checkpointer(pool: SqlitePool) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        if pool.is_closed() {
            return;
        }
        let started = std::time::Instant::now();
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            Ok(_) => metrics::histogram!("confab_store_checkpoint_seconds")
                .record(started.elapsed().as_secs_f64()),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}

const MESSAGE_COLUMNS: &str = "m.conv_id, m.seq, m.msg_id, m.sender, m.to_kind, m.to_id, m.client_msg_id, m.body, m.ts, m.recalled";

fn message_from_row(row: &SqliteRow) -> Result<StoredMessage> {
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

#[async_trait]
impl MessageStore for SqliteStore {
    async fn append(&self, msg: NewMessage) -> Result<Appended> {
        let (tx, rx) = oneshot::channel();
        self.appends
            .send(writer::Job::Append { msg, reply: tx })
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
        let before = before_seq.map(|s| s as i64).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.app_id = ? AND m.conv_id = ? AND m.seq < ? ORDER BY m.seq DESC LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(app.as_str())
            .bind(conv.as_str())
            .bind(before)
            .bind(limit as i64)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(message_from_row).collect()
    }

    async fn get(&self, app: &AppId, conv: &ConvId, msg_id: &str) -> Result<Option<StoredMessage>> {
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.app_id = ? AND m.msg_id = ? AND m.conv_id = ?"
        );
        let row = sqlx::query(&sql)
            .bind(app.as_str())
            .bind(msg_id)
            .bind(conv.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    async fn get_by_id(&self, app: &AppId, msg_id: &str) -> Result<Option<StoredMessage>> {
        // Served by the unique (app_id, msg_id) index.
        let sql =
            format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.app_id = ? AND m.msg_id = ?");
        let row = sqlx::query(&sql)
            .bind(app.as_str())
            .bind(msg_id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(message_from_row).transpose()
    }

    async fn recall(&self, app: &AppId, conv: &ConvId, msg_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE messages SET recalled = 1, body = ? WHERE app_id = ? AND msg_id = ? AND conv_id = ?",
        )
        .bind(confab_model::RECALLED_BODY)
        .bind(app.as_str())
        .bind(msg_id)
        .bind(conv.as_str())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn purge_older_than(&self, app: &AppId, before_ts: i64, max: u32) -> Result<Purged> {
        // Seqs here are derived from what is stored (the newest message of
        // a conversation, the newest inbox entry of a user), so those rows
        // stay: the newest message of a conversation loses its content
        // instead of its row, and each user keeps their newest inbox entry.
        const OLD: &str = "SELECT conv_id, seq FROM messages m WHERE m.app_id = ?1 AND m.ts < ?2 \
             AND m.seq < (SELECT MAX(seq) FROM messages m2 WHERE m2.app_id = m.app_id AND m2.conv_id = m.conv_id) \
             ORDER BY m.ts, m.conv_id, m.seq LIMIT ?3";
        let mut tx = self.write.begin().await?;
        let users: Vec<String> = sqlx::query_scalar(&format!(
            "DELETE FROM inbox WHERE app_id = ?1 AND (conv_id, seq) IN ({OLD}) \
             AND inbox_seq < (SELECT MAX(inbox_seq) FROM inbox i2 WHERE i2.app_id = inbox.app_id AND i2.user_id = inbox.user_id) \
             RETURNING user_id"
        ))
        .bind(app.as_str())
        .bind(before_ts)
        .bind(max)
        .fetch_all(&mut *tx)
        .await?;
        let deleted = sqlx::query(&format!(
            "DELETE FROM messages WHERE app_id = ?1 AND (conv_id, seq) IN ({OLD})"
        ))
        .bind(app.as_str())
        .bind(before_ts)
        .bind(max)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let blanked = sqlx::query(
            "UPDATE messages SET body = ?3, recalled = 1 WHERE app_id = ?1 AND ts < ?2 AND recalled = 0 \
             AND seq = (SELECT MAX(seq) FROM messages m2 WHERE m2.app_id = messages.app_id AND m2.conv_id = messages.conv_id)",
        )
        .bind(app.as_str())
        .bind(before_ts)
        .bind(confab_model::RECALLED_BODY)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Purged {
            messages: deleted + blanked,
            users: distinct_users(users),
        })
    }
}

#[async_trait]
impl InboxStore for SqliteStore {
    async fn head(&self, app: &AppId, user: &UserId) -> Result<u64> {
        let head: Option<i64> =
            sqlx::query_scalar("SELECT MAX(inbox_seq) FROM inbox WHERE app_id = ? AND user_id = ?")
                .bind(app.as_str())
                .bind(user.as_str())
                .fetch_one(&self.read)
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
             WHERE i.app_id = ? AND i.user_id = ? AND i.inbox_seq > ? ORDER BY i.inbox_seq LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(app.as_str())
            .bind(user.as_str())
            .bind(since.min(i64::MAX as u64) as i64)
            .bind(limit as i64)
            .fetch_all(&self.read)
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
        // The writer derives the next `inbox_seq` from the newest stored
        // entry, so that one row stays as a tombstone that points at no
        // message (sync joins entries with messages and skips it).
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "DELETE FROM inbox WHERE app_id = ?1 AND user_id = ?2 AND inbox_seq < \
             (SELECT MAX(inbox_seq) FROM inbox WHERE app_id = ?1 AND user_id = ?2)",
        )
        .bind(app.as_str())
        .bind(user.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE inbox SET conv_id = '', seq = 0 WHERE app_id = ?1 AND user_id = ?2")
            .bind(app.as_str())
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM user_conversations WHERE app_id = ?1 AND user_id = ?2")
            .bind(app.as_str())
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn pull_group_timelines(&self, app: &AppId, user: &UserId, limit: u32) -> Result<Pulled> {
        // Most apps never store a read-fan-out message (no group above the
        // threshold): then there is nothing to look up at all.
        let any = match self.fanout.get(app) {
            Some(any) => any,
            None => {
                let any = sqlx::query_scalar::<_, i64>(
                    "SELECT 1 FROM messages INDEXED BY messages_read_fanout \
                     WHERE app_id = ? AND read_fanout = 1 LIMIT 1",
                )
                .bind(app.as_str())
                .fetch_optional(&self.read)
                .await?
                .is_some();
                self.fanout.found(app, any);
                self.fanout.get(app).unwrap_or(any)
            }
        };
        if !any {
            return Ok(Pulled::default());
        }
        // Most syncs have nothing to pull: ask the read pool first, so that
        // only a pull with work queues behind the message writer.
        let pending = sqlx::query(writer::PULL_CANDIDATES)
            .bind(app.as_str())
            .bind(user.as_str())
            .bind(1_i64)
            .fetch_optional(&self.read)
            .await?;
        if pending.is_none() || limit == 0 {
            return Ok(Pulled::default());
        }
        let (tx, rx) = oneshot::channel();
        self.appends
            .send(writer::Job::Pull {
                app: app.clone(),
                user: user.clone(),
                scope: writer::PullScope::Member,
                limit,
                reply: tx,
            })
            .await
            .map_err(|_| StoreError::Unavailable("the message writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the message writer has stopped".into()))?
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
        // Rare (once per member leaving a read-diffused group): straight to
        // the writer, which owns the inbox counters.
        let (tx, rx) = oneshot::channel();
        self.appends
            .send(writer::Job::Pull {
                app: app.clone(),
                user: user.clone(),
                scope: writer::PullScope::Leaver {
                    group: group.clone(),
                    through_seq,
                },
                limit,
                reply: tx,
            })
            .await
            .map_err(|_| StoreError::Unavailable("the message writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the message writer has stopped".into()))?
    }

    async fn group_has_unpulled(&self, app: &AppId, group: &GroupId) -> Result<bool> {
        if self.fanout.get(app) == Some(false) {
            return Ok(false);
        }
        // The newest read-fanout message is still to pull for exactly the
        // members who have one to pull: their cursor is below it and they
        // joined before it.
        let top: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(seq) FROM messages INDEXED BY messages_read_fanout \
             WHERE app_id = ? AND conv_id = ? AND read_fanout = 1",
        )
        .bind(app.as_str())
        .bind(ConvId::group(group).as_str())
        .fetch_one(&self.read)
        .await?;
        let Some(top) = top else {
            return Ok(false);
        };
        let pending: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM group_members gm LEFT JOIN group_pull_cursors c \
             ON c.app_id = gm.app_id AND c.user_id = gm.user_id AND c.group_id = gm.group_id \
             WHERE gm.app_id = ?1 AND gm.group_id = ?2 AND gm.join_seq <= ?3 AND COALESCE(c.through_seq, 0) < ?3 LIMIT 1",
        )
        .bind(app.as_str())
        .bind(group.as_str())
        .bind(top)
        .fetch_optional(&self.read)
        .await?;
        Ok(pending.is_some())
    }
}
