//! Usage on SQLite: minute buckets added into with `ON CONFLICT DO UPDATE`,
//! active users inserted with `ON CONFLICT DO NOTHING`, one transaction per
//! flush.

use async_trait::async_trait;
use confab_model::{AppId, UserId};
use sqlx::Row;

use super::SqliteStore;
use crate::Result;
use crate::usage::{UsageCounts, UsageDelta, UsageStore};

#[async_trait]
impl UsageStore for SqliteStore {
    async fn add_usage(&self, deltas: &[UsageDelta]) -> Result<()> {
        let mut tx = self.write.begin().await?;
        for d in deltas {
            let c = &d.counts;
            sqlx::query(
                "INSERT INTO usage_minutes (app_id, minute, messages, logins, errors, push_sent, \
                 push_retried, push_dead_token, push_dead_letter, connection_seconds) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 ON CONFLICT (app_id, minute) DO UPDATE SET \
                 messages = usage_minutes.messages + excluded.messages, logins = usage_minutes.logins + excluded.logins, \
                 errors = usage_minutes.errors + excluded.errors, push_sent = usage_minutes.push_sent + excluded.push_sent, \
                 push_retried = usage_minutes.push_retried + excluded.push_retried, \
                 push_dead_token = usage_minutes.push_dead_token + excluded.push_dead_token, \
                 push_dead_letter = usage_minutes.push_dead_letter + excluded.push_dead_letter, \
                 connection_seconds = usage_minutes.connection_seconds + excluded.connection_seconds",
            )
            .bind(d.app_id.as_str())
            .bind(d.minute)
            .bind(c.messages as i64)
            .bind(c.logins as i64)
            .bind(c.errors as i64)
            .bind(c.push_sent as i64)
            .bind(c.push_retried as i64)
            .bind(c.push_dead_token as i64)
            .bind(c.push_dead_letter as i64)
            .bind(c.connection_seconds as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn mark_active(&self, day: i64, users: &[(AppId, UserId)]) -> Result<()> {
        let mut tx = self.write.begin().await?;
        for (app, user) in users {
            sqlx::query(
                "INSERT INTO usage_active_users (app_id, day, user_id) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(app.as_str())
            .bind(day)
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn usage_minutes(
        &self,
        app: &AppId,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, UsageCounts)>> {
        let rows = sqlx::query(
            "SELECT minute, messages, logins, errors, push_sent, push_retried, push_dead_token, \
             push_dead_letter, connection_seconds FROM usage_minutes \
             WHERE app_id = ?1 AND minute >= ?2 AND minute < ?3 ORDER BY minute",
        )
        .bind(app.as_str())
        .bind(from)
        .bind(to)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let n = |c: &str| r.try_get::<i64, _>(c).map(|v| v.max(0) as u64);
                Ok((
                    r.try_get::<i64, _>("minute")?,
                    UsageCounts {
                        messages: n("messages")?,
                        logins: n("logins")?,
                        errors: n("errors")?,
                        push_sent: n("push_sent")?,
                        push_retried: n("push_retried")?,
                        push_dead_token: n("push_dead_token")?,
                        push_dead_letter: n("push_dead_letter")?,
                        connection_seconds: n("connection_seconds")?,
                    },
                ))
            })
            .collect()
    }

    async fn daily_active_users(
        &self,
        app: &AppId,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(i64, u64)>> {
        let rows = sqlx::query(
            "SELECT day, COUNT(*) AS n FROM usage_active_users \
             WHERE app_id = ?1 AND day >= ?2 AND day < ?3 GROUP BY day ORDER BY day",
        )
        .bind(app.as_str())
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("day")?, r.try_get::<i64, _>("n")?.max(0) as u64)))
            .collect()
    }

    async fn purge_usage(&self, minute: i64, day: i64) -> Result<()> {
        sqlx::query("DELETE FROM usage_minutes WHERE minute < ?1")
            .bind(minute)
            .execute(&self.write)
            .await?;
        sqlx::query("DELETE FROM usage_active_users WHERE day < ?1")
            .bind(day)
            .execute(&self.write)
            .await?;
        Ok(())
    }
}
