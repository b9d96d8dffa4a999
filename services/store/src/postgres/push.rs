//! Push devices, preferences and the push queue on PostgreSQL. Claims pick
//! due jobs with `FOR UPDATE SKIP LOCKED`: concurrent workers (on any node)
//! each get different jobs and never wait for each other.

use std::time::Duration;

use async_trait::async_trait;
use confab_model::{AppId, ConvId, UserId};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PgStore;
use crate::push::{
    DeadPushJob, DeviceStore, Dnd, NewPushJob, PushDevice, PushJob, PushQueue, PushTarget,
    QueueStats,
};
use crate::{Result, StoreError};

const DEVICE_COLUMNS: &str =
    "d.user_id, d.device_id, d.vendor, d.token, d.bundle, d.locale, d.background, d.updated_at";
const JOB_COLUMNS: &str =
    "id, app_id, user_id, device_id, vendor, payload, attempts, created_at, last_error";

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("push row has a bad {what}"))
}

fn device_from_row(row: &PgRow) -> Result<PushDevice> {
    let user: String = row.try_get("user_id")?;
    Ok(PushDevice {
        user_id: UserId::parse(&user).map_err(|_| corrupt("user_id"))?,
        device_id: row.try_get("device_id")?,
        vendor: row.try_get("vendor")?,
        token: row.try_get("token")?,
        bundle: row.try_get("bundle")?,
        locale: row.try_get("locale")?,
        background: row.try_get("background")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn dnd_from_row(row: &PgRow) -> Result<Option<Dnd>> {
    let start: Option<i32> = row.try_get("start_min")?;
    let (Some(start), Some(end), Some(tz)) = (
        start,
        row.try_get::<Option<i32>, _>("end_min")?,
        row.try_get::<Option<i32>, _>("tz_offset_min")?,
    ) else {
        return Ok(None);
    };
    Ok(Some(Dnd {
        start_min: u16::try_from(start).map_err(|_| corrupt("dnd start"))?,
        end_min: u16::try_from(end).map_err(|_| corrupt("dnd end"))?,
        tz_offset_min: i16::try_from(tz).map_err(|_| corrupt("dnd offset"))?,
    }))
}

fn job_from_row(row: &PgRow) -> Result<PushJob> {
    let app: String = row.try_get("app_id")?;
    let user: String = row.try_get("user_id")?;
    Ok(PushJob {
        id: row.try_get("id")?,
        app_id: AppId::parse(&app).map_err(|_| corrupt("app_id"))?,
        user_id: UserId::parse(&user).map_err(|_| corrupt("user_id"))?,
        device_id: row.try_get("device_id")?,
        vendor: row.try_get("vendor")?,
        payload: row.try_get("payload")?,
        attempts: i64::from(row.try_get::<i32, _>("attempts")?).clamp(0, u32::MAX as i64) as u32,
        created_at: row.try_get("created_at")?,
        last_error: row.try_get("last_error")?,
    })
}

#[async_trait]
impl DeviceStore for PgStore {
    async fn register_push(&self, app: &AppId, d: PushDevice) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM push_devices WHERE app_id = $1 AND vendor = $2 AND token = $3 \
             AND NOT (user_id = $4 AND device_id = $5)",
        )
        .bind(app.as_str())
        .bind(&d.vendor)
        .bind(&d.token)
        .bind(d.user_id.as_str())
        .bind(&d.device_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO push_devices (app_id, user_id, device_id, vendor, token, bundle, locale, background, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (app_id, user_id, device_id) DO UPDATE SET vendor = excluded.vendor, \
             token = excluded.token, bundle = excluded.bundle, locale = excluded.locale, \
             background = excluded.background, updated_at = excluded.updated_at",
        )
        .bind(app.as_str())
        .bind(d.user_id.as_str())
        .bind(&d.device_id)
        .bind(&d.vendor)
        .bind(&d.token)
        .bind(&d.bundle)
        .bind(&d.locale)
        .bind(d.background)
        .bind(d.updated_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn unregister_push(&self, app: &AppId, user: &UserId, device_id: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM push_devices WHERE app_id = $1 AND user_id = $2 AND device_id = $3",
        )
        .bind(app.as_str())
        .bind(user.as_str())
        .bind(device_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_background(
        &self,
        app: &AppId,
        user: &UserId,
        device_id: &str,
        background: bool,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE push_devices SET background = $1 WHERE app_id = $2 AND user_id = $3 AND device_id = $4",
        )
        .bind(background)
        .bind(app.as_str())
        .bind(user.as_str())
        .bind(device_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn push_devices(&self, app: &AppId, user: &UserId) -> Result<Vec<PushDevice>> {
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS} FROM push_devices d WHERE d.app_id = $1 AND d.user_id = $2 ORDER BY d.device_id"
        ))
        .bind(app.as_str())
        .bind(user.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(device_from_row).collect()
    }

    async fn delete_token(&self, app: &AppId, vendor: &str, token: &str) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM push_devices WHERE app_id = $1 AND vendor = $2 AND token = $3",
        )
        .bind(app.as_str())
        .bind(vendor)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn set_muted(
        &self,
        app: &AppId,
        user: &UserId,
        conv: &ConvId,
        muted: bool,
    ) -> Result<()> {
        let sql = if muted {
            "INSERT INTO push_mutes (app_id, user_id, conv_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM push_mutes WHERE app_id = $1 AND user_id = $2 AND conv_id = $3"
        };
        sqlx::query(sql)
            .bind(app.as_str())
            .bind(user.as_str())
            .bind(conv.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn set_dnd(&self, app: &AppId, user: &UserId, dnd: Option<Dnd>) -> Result<()> {
        match dnd {
            Some(d) => sqlx::query(
                "INSERT INTO push_dnd (app_id, user_id, start_min, end_min, tz_offset_min) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (app_id, user_id) DO UPDATE SET start_min = excluded.start_min, \
                 end_min = excluded.end_min, tz_offset_min = excluded.tz_offset_min",
            )
            .bind(app.as_str())
            .bind(user.as_str())
            .bind(i32::from(d.start_min))
            .bind(i32::from(d.end_min))
            .bind(i32::from(d.tz_offset_min)),
            None => sqlx::query("DELETE FROM push_dnd WHERE app_id = $1 AND user_id = $2")
                .bind(app.as_str())
                .bind(user.as_str()),
        }
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn dnd(&self, app: &AppId, user: &UserId) -> Result<Option<Dnd>> {
        let row = sqlx::query(
            "SELECT start_min, end_min, tz_offset_min FROM push_dnd WHERE app_id = $1 AND user_id = $2",
        )
        .bind(app.as_str())
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => dnd_from_row(&row)?,
            None => None,
        })
    }

    async fn app_has_push_devices(&self, app: &AppId) -> Result<bool> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM push_devices WHERE app_id = $1 LIMIT 1")
                .bind(app.as_str())
                .fetch_optional(&self.pool)
                .await?;
        Ok(found.is_some())
    }

    async fn push_targets(
        &self,
        app: &AppId,
        conv: &ConvId,
        users: &[UserId],
    ) -> Result<Vec<PushTarget>> {
        if users.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<String> = users.iter().map(|u| u.as_str().to_owned()).collect();
        let rows = sqlx::query(&format!(
            "SELECT {DEVICE_COLUMNS}, m.conv_id IS NOT NULL AS muted, n.start_min, n.end_min, n.tz_offset_min \
             FROM push_devices d \
             LEFT JOIN push_mutes m ON m.app_id = d.app_id AND m.user_id = d.user_id AND m.conv_id = $2 \
             LEFT JOIN push_dnd n ON n.app_id = d.app_id AND n.user_id = d.user_id \
             WHERE d.app_id = $1 AND d.user_id = ANY($3) \
             ORDER BY d.user_id, d.device_id"
        ))
        .bind(app.as_str())
        .bind(conv.as_str())
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PushTarget {
                    device: device_from_row(row)?,
                    muted: row.try_get("muted")?,
                    dnd: dnd_from_row(row)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl PushQueue for PgStore {
    async fn enqueue(&self, jobs: Vec<NewPushJob>) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let now = confab_model::now_ms();
        let mut tx = self.pool.begin().await?;
        for j in jobs {
            sqlx::query(
                "INSERT INTO push_jobs (id, app_id, user_id, device_id, vendor, payload, attempts, created_at, due_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&j.id)
            .bind(j.app_id.as_str())
            .bind(j.user_id.as_str())
            .bind(&j.device_id)
            .bind(&j.vendor)
            .bind(&j.payload)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim(&self, max: u32, lease: Duration) -> Result<Vec<PushJob>> {
        let now = confab_model::now_ms();
        let until = now.saturating_add(lease.as_millis().min(i64::MAX as u128) as i64);
        let rows = sqlx::query(&format!(
            "UPDATE push_jobs SET due_at = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM push_jobs WHERE due_at <= $2 ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING {JOB_COLUMNS}"
        ))
        .bind(until)
        .bind(now)
        .bind(i64::from(max))
        .fetch_all(&self.pool)
        .await?;
        let mut jobs = rows.iter().map(job_from_row).collect::<Result<Vec<_>>>()?;
        jobs.sort_by_key(|j| j.created_at);
        Ok(jobs)
    }

    async fn complete(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM push_jobs WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn retry(&self, id: &str, at_ms: i64, reason: &str) -> Result<()> {
        sqlx::query("UPDATE push_jobs SET due_at = $1, last_error = $2 WHERE id = $3")
            .bind(at_ms)
            .bind(reason)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn dead_letter(&self, id: &str, reason: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO push_dead (id, app_id, user_id, device_id, vendor, payload, attempts, created_at, reason, failed_at) \
             SELECT id, app_id, user_id, device_id, vendor, payload, attempts, created_at, $1::TEXT, $2::BIGINT \
             FROM push_jobs WHERE id = $3 ON CONFLICT (id) DO NOTHING",
        )
        .bind(reason)
        .bind(confab_model::now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM push_jobs WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn dead_letters(&self, app: &AppId, limit: u32) -> Result<Vec<DeadPushJob>> {
        let rows = sqlx::query(
            "SELECT id, app_id, user_id, device_id, vendor, payload, attempts, created_at, \
             NULL::TEXT AS last_error, reason, failed_at FROM push_dead WHERE app_id = $1 \
             ORDER BY failed_at DESC, id LIMIT $2",
        )
        .bind(app.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeadPushJob {
                    job: job_from_row(row)?,
                    reason: row.try_get("reason")?,
                    failed_at: row.try_get("failed_at")?,
                })
            })
            .collect()
    }

    async fn stats(&self) -> Result<QueueStats> {
        let row = sqlx::query(
            "SELECT COUNT(*)::BIGINT AS depth, MIN(created_at) AS oldest FROM push_jobs",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(QueueStats {
            depth: row.try_get::<i64, _>("depth")?.max(0) as u64,
            oldest_created_at: row.try_get("oldest")?,
        })
    }
}
