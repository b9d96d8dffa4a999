//! Group commit on PostgreSQL: one transaction per batch of queued appends,
//! one `UNNEST` statement per table.
//!
//! In the transaction, in this order (every node takes locks in the same
//! order, so concurrent nodes cannot deadlock on counters):
//! 1. claim each `(app, sender, client_msg_id)` in `dedupe`; keys already
//!    there are repeats and get the stored original back;
//! 2. advance each conversation's `last_seq` by its number of new messages
//!    (rows locked in sorted order) and assign `seq`s;
//! 3. advance each recipient's inbox head the same way and assign `inbox_seq`s;
//! 4. insert messages, inbox entries and conversation rows; commit.
//!
//! Callers are answered after the commit only.

// Column-oriented batches (one Vec per column, bound as arrays) read best as
// plain tuples of Vecs.
#![allow(clippy::type_complexity)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use confab_model::{StoredMessage, UserId};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Row, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::{MESSAGE_COLUMNS, message_from_row};
use crate::{Appended, NewMessage, Result, StoreError};

pub(super) struct Job {
    pub msg: NewMessage,
    pub reply: oneshot::Sender<Result<Appended>>,
}

const QUEUE: usize = 16 * 1024;
/// Deadlocks and serialization failures are retried this many times.
const RETRIES: usize = 3;

pub(super) fn spawn(pool: PgPool, max_batch: usize) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(run(pool, rx, max_batch));
    tx
}

async fn run(pool: PgPool, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let started = std::time::Instant::now();
        let (msgs, replies): (Vec<NewMessage>, Vec<_>) = std::mem::take(&mut batch)
            .into_iter()
            .map(|j: Job| (j.msg, j.reply))
            .unzip();
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            match commit_batch(&pool, &msgs).await {
                Err(StoreError::Unavailable(e)) if attempt < RETRIES && is_retryable(&e) => {
                    tokio::time::sleep(Duration::from_millis(5 * attempt as u64)).await;
                }
                other => break other,
            }
        };
        match result {
            Ok(results) => {
                for (reply, r) in replies.into_iter().zip(results) {
                    let _ = reply.send(Ok(r));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = msgs.len(), "message batch failed to commit");
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Unavailable(e.to_string())));
                }
            }
        }
        metrics::histogram!("confab_store_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("confab_store_commit_batch_messages").record(msgs.len() as f64);
    }
}

fn is_retryable(message: &str) -> bool {
    message.contains("deadlock") || message.contains("could not serialize")
}

type Key = (String, String, String);

fn key_of(m: &NewMessage) -> Key {
    (
        m.app_id.as_str().to_owned(),
        m.from.as_str().to_owned(),
        m.client_msg_id.clone(),
    )
}

async fn commit_batch(pool: &PgPool, msgs: &[NewMessage]) -> Result<Vec<Appended>> {
    let mut tx = pool.begin().await?;

    // Repeats inside the batch answer as their first occurrence.
    let mut first: HashMap<Key, usize> = HashMap::new();
    let mut unique: Vec<usize> = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        first.entry(key_of(m)).or_insert_with(|| {
            unique.push(i);
            i
        });
    }

    // 1. Claim dedupe keys.
    let claimed = claim_keys(&mut tx, msgs, &unique).await?;
    let repeats: Vec<usize> = unique
        .iter()
        .copied()
        .filter(|i| !claimed.contains(&key_of(&msgs[*i])))
        .collect();
    let originals = find_originals(&mut tx, msgs, &repeats).await?;
    let new: Vec<usize> = unique
        .iter()
        .copied()
        .filter(|i| claimed.contains(&key_of(&msgs[*i])))
        .collect();

    // 2. and 3. Advance counters in sorted key order.
    let mut conv_counts: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut user_counts: BTreeMap<(String, String), i64> = BTreeMap::new();
    for &i in &new {
        let m = &msgs[i];
        *conv_counts
            .entry((m.app_id.as_str().to_owned(), m.conv_id.as_str().to_owned()))
            .or_default() += 1;
        for u in &m.recipients {
            *user_counts
                .entry((m.app_id.as_str().to_owned(), u.as_str().to_owned()))
                .or_default() += 1;
        }
    }
    let mut conv_next = advance(
        &mut tx,
        "conversations",
        "conv_id",
        "last_seq",
        &conv_counts,
    )
    .await?;
    let mut user_next = advance(&mut tx, "inbox_heads", "user_id", "head", &user_counts).await?;

    // Assign in batch order.
    let mut planned: HashMap<usize, (StoredMessage, Vec<(UserId, u64)>)> = HashMap::new();
    for &i in &new {
        let m = &msgs[i];
        let ck = (m.app_id.as_str().to_owned(), m.conv_id.as_str().to_owned());
        let seq = next(&mut conv_next, &ck)?;
        let mut inbox = Vec::with_capacity(m.recipients.len());
        for u in &m.recipients {
            let uk = (m.app_id.as_str().to_owned(), u.as_str().to_owned());
            inbox.push((u.clone(), next(&mut user_next, &uk)?));
        }
        let stored = StoredMessage {
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
        planned.insert(i, (stored, inbox));
    }

    // 4. Insert.
    insert_rows(&mut tx, msgs, &new, &planned).await?;
    tx.commit().await?;

    let mut results = Vec::with_capacity(msgs.len());
    for (i, m) in msgs.iter().enumerate() {
        let f = first[&key_of(m)];
        let r = if f != i {
            let original = match planned.get(&f) {
                Some((s, _)) => s.clone(),
                None => originals
                    .get(&key_of(m))
                    .cloned()
                    .ok_or_else(|| missing(m))?,
            };
            Appended {
                message: original,
                duplicate: true,
                inbox: vec![],
            }
        } else if let Some((s, inbox)) = planned.get(&i) {
            Appended {
                message: s.clone(),
                duplicate: false,
                inbox: inbox.clone(),
            }
        } else {
            let original = originals
                .get(&key_of(m))
                .cloned()
                .ok_or_else(|| missing(m))?;
            Appended {
                message: original,
                duplicate: true,
                inbox: vec![],
            }
        };
        results.push(r);
    }
    Ok(results)
}

fn missing(m: &NewMessage) -> StoreError {
    StoreError::Corrupt(format!(
        "dedupe key of {} / {} has no message",
        m.from, m.client_msg_id
    ))
}

/// Hands out the next value of a counter advanced by [`advance`]: the values
/// run from `last - count + 1` to `last`; the map holds the next one to give.
fn next(
    counters: &mut HashMap<(String, String), (i64, i64)>,
    key: &(String, String),
) -> Result<u64> {
    let (next, last) = counters
        .get_mut(key)
        .ok_or_else(|| StoreError::Corrupt("counter not advanced".into()))?;
    if *next > *last {
        return Err(StoreError::Corrupt("counter over-used".into()));
    }
    let v = *next;
    *next += 1;
    Ok(v as u64)
}

async fn claim_keys(
    tx: &mut Transaction<'_, Postgres>,
    msgs: &[NewMessage],
    idx: &[usize],
) -> Result<HashSet<Key>> {
    if idx.is_empty() {
        return Ok(HashSet::new());
    }
    let (mut apps, mut senders, mut cids, mut ids, mut ats) =
        (vec![], vec![], vec![], vec![], vec![]);
    for &i in idx {
        let m = &msgs[i];
        apps.push(m.app_id.as_str());
        senders.push(m.from.as_str());
        cids.push(m.client_msg_id.as_str());
        ids.push(m.msg_id.as_str());
        ats.push(m.ts);
    }
    let rows = sqlx::query(
        "INSERT INTO dedupe (app_id, sender, client_msg_id, msg_id, created_at) \
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[]) AS t(a, s, c, i, ts) \
         ORDER BY a, s, c ON CONFLICT DO NOTHING RETURNING app_id, sender, client_msg_id",
    )
    .bind(&apps)
    .bind(&senders)
    .bind(&cids)
    .bind(&ids)
    .bind(&ats)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get("app_id")?,
                r.try_get("sender")?,
                r.try_get("client_msg_id")?,
            ))
        })
        .collect()
}

async fn find_originals(
    tx: &mut Transaction<'_, Postgres>,
    msgs: &[NewMessage],
    idx: &[usize],
) -> Result<HashMap<Key, StoredMessage>> {
    if idx.is_empty() {
        return Ok(HashMap::new());
    }
    let apps: Vec<&str> = idx.iter().map(|&i| msgs[i].app_id.as_str()).collect();
    let senders: Vec<&str> = idx.iter().map(|&i| msgs[i].from.as_str()).collect();
    let cids: Vec<&str> = idx
        .iter()
        .map(|&i| msgs[i].client_msg_id.as_str())
        .collect();
    let sql = format!(
        "SELECT d.app_id AS d_app, {MESSAGE_COLUMNS} FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[]) AS k(app_id, sender, client_msg_id) \
         JOIN dedupe d ON d.app_id = k.app_id AND d.sender = k.sender AND d.client_msg_id = k.client_msg_id \
         JOIN messages m ON m.app_id = d.app_id AND m.msg_id = d.msg_id"
    );
    let rows = sqlx::query(&sql)
        .bind(&apps)
        .bind(&senders)
        .bind(&cids)
        .fetch_all(&mut **tx)
        .await?;
    let mut found = HashMap::new();
    for row in &rows {
        let m = message_from_row(row)?;
        let app: String = row.try_get("d_app")?;
        found.insert(
            (app, m.from.as_str().to_owned(), m.client_msg_id.clone()),
            m,
        );
    }
    Ok(found)
}

/// Advances counter rows by the given amounts, locking them in key order;
/// returns, per key, (first value to hand out, last value).
async fn advance(
    tx: &mut Transaction<'_, Postgres>,
    table: &str,
    key_col: &str,
    value_col: &str,
    counts: &BTreeMap<(String, String), i64>,
) -> Result<HashMap<(String, String), (i64, i64)>> {
    if counts.is_empty() {
        return Ok(HashMap::new());
    }
    let apps: Vec<&str> = counts.keys().map(|(a, _)| a.as_str()).collect();
    let keys: Vec<&str> = counts.keys().map(|(_, k)| k.as_str()).collect();
    let ns: Vec<i64> = counts.values().copied().collect();
    let sql = format!(
        "INSERT INTO {table} (app_id, {key_col}, {value_col}) \
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[]) AS t(a, k, n) ORDER BY a, k \
         ON CONFLICT (app_id, {key_col}) DO UPDATE SET {value_col} = {table}.{value_col} + EXCLUDED.{value_col} \
         RETURNING app_id, {key_col} AS k, {value_col} AS v"
    );
    let rows = sqlx::query(&sql)
        .bind(&apps)
        .bind(&keys)
        .bind(&ns)
        .fetch_all(&mut **tx)
        .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in &rows {
        let key: (String, String) = (row.try_get("app_id")?, row.try_get("k")?);
        let last: i64 = row.try_get("v")?;
        let n = counts.get(&key).copied().unwrap_or(0);
        out.insert(key, (last - n + 1, last));
    }
    Ok(out)
}

async fn insert_rows(
    tx: &mut Transaction<'_, Postgres>,
    msgs: &[NewMessage],
    new: &[usize],
    planned: &HashMap<usize, (StoredMessage, Vec<(UserId, u64)>)>,
) -> Result<()> {
    if new.is_empty() {
        return Ok(());
    }
    let mut m_cols: (
        Vec<&str>,
        Vec<&str>,
        Vec<i64>,
        Vec<&str>,
        Vec<&str>,
        Vec<&str>,
        Vec<&str>,
        Vec<&str>,
        Vec<&str>,
        Vec<i64>,
    ) = Default::default();
    let mut inbox: (Vec<&str>, Vec<&str>, Vec<i64>, Vec<&str>, Vec<i64>) = Default::default();
    let mut fanout: Vec<bool> = Vec::with_capacity(new.len());
    let mut sender_entry: Vec<bool> = Vec::with_capacity(new.len());
    // (app, user, conv) -> (last_seq, read_seq, updated_at); sorted for lock order.
    let mut convs: BTreeMap<(&str, &str, &str), (i64, i64, i64)> = BTreeMap::new();
    for &i in new {
        let m = &msgs[i];
        let Some((s, entries)) = planned.get(&i) else {
            continue;
        };
        m_cols.0.push(m.app_id.as_str());
        m_cols.1.push(s.conv_id.as_str());
        m_cols.2.push(s.seq as i64);
        m_cols.3.push(s.msg_id.as_str());
        m_cols.4.push(s.from.as_str());
        m_cols.5.push(s.to.kind.as_str());
        m_cols.6.push(&s.to.id);
        m_cols.7.push(s.client_msg_id.as_str());
        m_cols.8.push(s.body.as_str());
        m_cols.9.push(s.ts);
        fanout.push(m.read_fanout);
        sender_entry.push(m.recipients.contains(&m.from));
        for (user, inbox_seq) in entries {
            inbox.0.push(m.app_id.as_str());
            inbox.1.push(user.as_str());
            inbox.2.push(*inbox_seq as i64);
            inbox.3.push(s.conv_id.as_str());
            inbox.4.push(s.seq as i64);
            let read = if *user == s.from { s.seq as i64 } else { 0 };
            let e = convs
                .entry((m.app_id.as_str(), user.as_str(), s.conv_id.as_str()))
                .or_insert((0, 0, 0));
            e.0 = e.0.max(s.seq as i64);
            e.1 = e.1.max(read);
            e.2 = e.2.max(s.ts);
        }
    }
    sqlx::query(
        "INSERT INTO messages (app_id, conv_id, seq, msg_id, sender, to_kind, to_id, client_msg_id, body, ts, read_fanout, sender_entry) \
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], \
         $8::TEXT[], $9::TEXT[], $10::BIGINT[], $11::BOOLEAN[], $12::BOOLEAN[])",
    )
    .bind(&m_cols.0)
    .bind(&m_cols.1)
    .bind(&m_cols.2)
    .bind(&m_cols.3)
    .bind(&m_cols.4)
    .bind(&m_cols.5)
    .bind(&m_cols.6)
    .bind(&m_cols.7)
    .bind(&m_cols.8)
    .bind(&m_cols.9)
    .bind(&fanout)
    .bind(&sender_entry)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO inbox (app_id, user_id, inbox_seq, conv_id, seq) \
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::BIGINT[])",
    )
    .bind(&inbox.0)
    .bind(&inbox.1)
    .bind(&inbox.2)
    .bind(&inbox.3)
    .bind(&inbox.4)
    .execute(&mut **tx)
    .await?;
    let apps: Vec<&str> = convs.keys().map(|k| k.0).collect();
    let users: Vec<&str> = convs.keys().map(|k| k.1).collect();
    let conv_ids: Vec<&str> = convs.keys().map(|k| k.2).collect();
    let lasts: Vec<i64> = convs.values().map(|v| v.0).collect();
    let reads: Vec<i64> = convs.values().map(|v| v.1).collect();
    let ats: Vec<i64> = convs.values().map(|v| v.2).collect();
    sqlx::query(
        "INSERT INTO user_conversations (app_id, user_id, conv_id, last_seq, read_seq, updated_at) \
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[]) \
         ON CONFLICT (app_id, user_id, conv_id) DO UPDATE SET \
         last_seq = GREATEST(user_conversations.last_seq, EXCLUDED.last_seq), \
         read_seq = GREATEST(user_conversations.read_seq, EXCLUDED.read_seq), \
         updated_at = GREATEST(user_conversations.updated_at, EXCLUDED.updated_at)",
    )
    .bind(&apps)
    .bind(&users)
    .bind(&conv_ids)
    .bind(&lasts)
    .bind(&reads)
    .bind(&ats)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
