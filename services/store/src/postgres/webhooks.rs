//! The webhook outbox on PostgreSQL. A claim locks the rows it takes with
//! `FOR UPDATE SKIP LOCKED`, so dispatchers on several nodes claim disjoint
//! events without waiting for each other.

use async_trait::async_trait;
use confab_model::AppId;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PgStore;
use crate::webhooks::{
    ATTEMPTS_KEPT_PER_APP, Claimed, NewWebhookEvent, WebhookAttempt, WebhookEvent, WebhookOutbox,
};
use crate::{Result, StoreError};

const EVENT_COLUMNS: &str =
    "id, app_id, event_type, payload, created_at, attempts, next_attempt_at, last_error";

fn event_from_row(row: &PgRow) -> Result<WebhookEvent> {
    let app_id: String = row.try_get("app_id")?;
    Ok(WebhookEvent {
        id: row.try_get("id")?,
        app_id: AppId::parse(&app_id)
            .map_err(|_| StoreError::Corrupt("webhook event has a bad app_id".into()))?,
        event_type: row.try_get("event_type")?,
        payload: row.try_get("payload")?,
        created_at: row.try_get("created_at")?,
        attempts: row.try_get::<i64, _>("attempts")?.max(0) as u32,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
    })
}

fn attempt_from_row(row: &PgRow) -> Result<WebhookAttempt> {
    let app_id: String = row.try_get("app_id")?;
    Ok(WebhookAttempt {
        app_id: AppId::parse(&app_id)
            .map_err(|_| StoreError::Corrupt("webhook attempt has a bad app_id".into()))?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        status_code: row
            .try_get::<Option<i64>, _>("status_code")?
            .and_then(|c| u16::try_from(c).ok()),
        outcome: row.try_get("outcome")?,
        latency_ms: row.try_get::<i64, _>("latency_ms")?.max(0) as u32,
        error: row.try_get("error")?,
        at: row.try_get("at")?,
    })
}

async fn insert_attempt(conn: &mut sqlx::PgConnection, attempt: &WebhookAttempt) -> Result<()> {
    sqlx::query(
        "INSERT INTO webhook_attempts (app_id, event_id, event_type, status_code, outcome, latency_ms, error, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(attempt.app_id.as_str())
    .bind(&attempt.event_id)
    .bind(&attempt.event_type)
    .bind(attempt.status_code.map(i64::from))
    .bind(&attempt.outcome)
    .bind(i64::from(attempt.latency_ms))
    .bind(&attempt.error)
    .bind(attempt.at)
    .execute(&mut *conn)
    .await?;
    // Keep the newest attempts of the app only.
    sqlx::query(
        "DELETE FROM webhook_attempts WHERE app_id = $1 AND seq <= \
         (SELECT seq FROM webhook_attempts WHERE app_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)",
    )
    .bind(attempt.app_id.as_str())
    .bind(ATTEMPTS_KEPT_PER_APP)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl PgStore {
    /// Runs one finishing update (bound to the event id and claim token by
    /// the caller) and records the attempt, in one transaction.
    async fn finish(
        &self,
        update: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
        attempt: &WebhookAttempt,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let changed = update.execute(&mut *tx).await?.rows_affected() > 0;
        insert_attempt(&mut tx, attempt).await?;
        tx.commit().await?;
        Ok(changed)
    }
}

#[async_trait]
impl WebhookOutbox for PgStore {
    async fn enqueue(&self, events: Vec<NewWebhookEvent>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for e in &events {
            sqlx::query(
                "INSERT INTO webhook_events (id, app_id, event_type, payload, created_at, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&e.id)
            .bind(e.app_id.as_str())
            .bind(&e.event_type)
            .bind(&e.payload)
            .bind(e.created_at)
            .bind(e.created_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim(&self, now: i64, lease_ms: i64, max: u32) -> Result<Claimed> {
        let token = ulid::Ulid::new().to_string();
        let rows = sqlx::query(&format!(
            "UPDATE webhook_events SET lease_until = $1 + $2, claim_token = $3 \
             WHERE id IN (SELECT id FROM webhook_events WHERE state = 'pending' \
               AND next_attempt_at <= $1 AND lease_until <= $1 ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING {EVENT_COLUMNS}"
        ))
        .bind(now)
        .bind(lease_ms)
        .bind(&token)
        .bind(i64::from(max))
        .fetch_all(&self.pool)
        .await?;
        let mut events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>>>()?;
        events.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
        Ok(Claimed { token, events })
    }

    async fn complete(&self, token: &str, attempt: WebhookAttempt) -> Result<bool> {
        let q = sqlx::query("DELETE FROM webhook_events WHERE id = $1 AND claim_token = $2")
            .bind(attempt.event_id.clone())
            .bind(token.to_owned());
        self.finish(q, &attempt).await
    }

    async fn retry(
        &self,
        token: &str,
        next_attempt_at: i64,
        attempt: WebhookAttempt,
    ) -> Result<bool> {
        let q = sqlx::query(
            "UPDATE webhook_events SET attempts = attempts + 1, next_attempt_at = $1, lease_until = 0, \
             claim_token = NULL, last_error = $2 WHERE id = $3 AND claim_token = $4",
        )
        .bind(next_attempt_at)
        .bind(attempt.error.clone())
        .bind(attempt.event_id.clone())
        .bind(token.to_owned());
        self.finish(q, &attempt).await
    }

    async fn dead_letter(&self, token: &str, attempt: WebhookAttempt) -> Result<bool> {
        let q = sqlx::query(
            "UPDATE webhook_events SET state = 'dead', attempts = attempts + 1, lease_until = 0, \
             claim_token = NULL, last_error = $1 WHERE id = $2 AND claim_token = $3",
        )
        .bind(attempt.error.clone())
        .bind(attempt.event_id.clone())
        .bind(token.to_owned());
        self.finish(q, &attempt).await
    }

    async fn release(&self, token: &str, event_id: &str, next_attempt_at: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_events SET next_attempt_at = $1, lease_until = 0, claim_token = NULL \
             WHERE id = $2 AND claim_token = $3",
        )
        .bind(next_attempt_at)
        .bind(event_id)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_attempts(&self, attempts: Vec<WebhookAttempt>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for attempt in &attempts {
            insert_attempt(&mut tx, attempt).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn attempts(&self, app: &AppId, limit: u32) -> Result<Vec<WebhookAttempt>> {
        let rows = sqlx::query(
            "SELECT app_id, event_id, event_type, status_code, outcome, latency_ms, error, at \
             FROM webhook_attempts WHERE app_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(app.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    async fn dead_letters(&self, app: &AppId, limit: u32) -> Result<Vec<WebhookEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM webhook_events WHERE app_id = $1 AND state = 'dead' \
             ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(app.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn redeliver(&self, app: &AppId, event_id: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE webhook_events SET state = 'pending', attempts = 0, next_attempt_at = $1, \
             lease_until = 0, claim_token = NULL WHERE app_id = $2 AND id = $3 AND state = 'dead'",
        )
        .bind(now)
        .bind(app.as_str())
        .bind(event_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn pending(&self) -> Result<u64> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_events WHERE state = 'pending'")
                .fetch_one(&self.pool)
                .await?;
        Ok(n.max(0) as u64)
    }
}
