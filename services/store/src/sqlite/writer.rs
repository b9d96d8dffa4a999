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

use confab_model::{AppId, ConvId, StoredMessage, UserId};
use lru::LruCache;
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use super::message_from_row;
use crate::{Appended, NewMessage, Result, StoreError};

pub(super) struct Job {
    pub msg: NewMessage,
    pub reply: oneshot::Sender<Result<Appended>>,
}

/// Bound on queued appends: beyond it, senders wait (back-pressure reaches
/// the connections that send, not memory).
const QUEUE: usize = 16 * 1024;
/// Counters kept in memory; older ones are reloaded from the database.
const COUNTER_CACHE: usize = 1 << 20;
/// SQLite's limit on bound parameters per statement is 32 766.
const MAX_PARAMS: usize = 30_000;

pub(super) fn spawn(conn: SqliteConnection, max_batch: usize) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let writer = Writer {
        conn,
        conv_seq: LruCache::new(NonZeroUsize::new(COUNTER_CACHE).unwrap_or(NonZeroUsize::MIN)),
        inbox_seq: LruCache::new(NonZeroUsize::new(COUNTER_CACHE).unwrap_or(NonZeroUsize::MIN)),
    };
    tokio::spawn(writer.run(rx, max_batch));
    tx
}

struct Writer {
    conn: SqliteConnection,
    conv_seq: LruCache<(AppId, ConvId), u64>,
    inbox_seq: LruCache<(AppId, UserId), u64>,
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
            let size = batch.len();
            let jobs: Vec<Job> = std::mem::take(&mut batch);
            let (msgs, replies): (Vec<NewMessage>, Vec<_>) =
                jobs.into_iter().map(|j| (j.msg, j.reply)).unzip();
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
            metrics::histogram!("confab_store_commit_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::histogram!("confab_store_commit_batch_messages").record(size as f64);
        }
    }

    async fn commit_batch(&mut self, msgs: &[NewMessage]) -> Result<Vec<Appended>> {
        let existing = self.find_existing(msgs).await?;
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

        self.write(msgs, &plans).await?;

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
        Ok(results)
    }

    /// Messages already stored under the batch's (app, sender, client_msg_id).
    async fn find_existing(
        &mut self,
        msgs: &[NewMessage],
    ) -> Result<HashMap<(String, String, String), StoredMessage>> {
        let mut found = HashMap::new();
        for chunk in msgs.chunks(MAX_PARAMS / 3) {
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

    async fn write(&mut self, msgs: &[NewMessage], plans: &[Planned]) -> Result<()> {
        let new: Vec<(&NewMessage, &StoredMessage, &Vec<(UserId, u64)>)> = msgs
            .iter()
            .zip(plans)
            .filter_map(|(m, p)| match p {
                Planned::New { message, inbox } => Some((m, message, inbox)),
                _ => None,
            })
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let mut tx = self.conn.begin().await?;

        for chunk in new.chunks(MAX_PARAMS / 11) {
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO messages (app_id, conv_id, seq, msg_id, sender, to_kind, to_id, client_msg_id, body, ts, recalled) ",
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
                    .push_bind(false);
            });
            qb.build().execute(&mut *tx).await?;
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

        for chunk in deliveries.chunks(MAX_PARAMS / 5) {
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
        for chunk in conv_rows.chunks(MAX_PARAMS / 6) {
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

        tx.commit().await?;
        Ok(())
    }
}
