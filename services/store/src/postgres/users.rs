//! User profiles on PostgreSQL: one row per imported user.

use async_trait::async_trait;
use confab_model::{AppId, UserId};
use sqlx::Row;

use super::PgStore;
use crate::users::{ProfileUpdate, UserProfile, UserStore};
use crate::{Result, StoreError};

fn profile_from_row(row: &sqlx::postgres::PgRow) -> Result<UserProfile> {
    let id: String = row.try_get("user_id")?;
    Ok(UserProfile {
        user_id: UserId::parse(&id)
            .map_err(|e| StoreError::Corrupt(format!("user id {id:?}: {e}")))?,
        nickname: row.try_get("nickname")?,
        avatar_url: row.try_get("avatar_url")?,
        custom: row.try_get("custom")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const COLUMNS: &str = "user_id, nickname, avatar_url, custom, created_at, updated_at";

#[async_trait]
impl UserStore for PgStore {
    async fn import_users(&self, app: &AppId, users: &[UserProfile]) -> Result<Vec<bool>> {
        let mut tx = self.pool.begin().await?;
        let mut created = Vec::with_capacity(users.len());
        for u in users {
            let done = sqlx::query(
                "INSERT INTO users (app_id, user_id, nickname, avatar_url, custom, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (app_id, user_id) DO NOTHING",
            )
            .bind(app.as_str())
            .bind(u.user_id.as_str())
            .bind(&u.nickname)
            .bind(&u.avatar_url)
            .bind(&u.custom)
            .bind(u.created_at)
            .bind(u.updated_at)
            .execute(&mut *tx)
            .await?;
            created.push(done.rows_affected() > 0);
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn user(&self, app: &AppId, user: &UserId) -> Result<Option<UserProfile>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM users WHERE app_id = $1 AND user_id = $2"
        ))
        .bind(app.as_str())
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(profile_from_row).transpose()
    }

    async fn update_user(
        &self,
        app: &AppId,
        user: &UserId,
        update: ProfileUpdate,
        at: i64,
    ) -> Result<Option<UserProfile>> {
        let row = sqlx::query(&format!(
            "UPDATE users SET nickname = COALESCE($3, nickname), avatar_url = COALESCE($4, avatar_url), \
             custom = COALESCE($5, custom), updated_at = $6 \
             WHERE app_id = $1 AND user_id = $2 RETURNING {COLUMNS}"
        ))
        .bind(app.as_str())
        .bind(user.as_str())
        .bind(update.nickname)
        .bind(update.avatar_url)
        .bind(update.custom)
        .bind(at)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(profile_from_row).transpose()
    }

    async fn delete_user(&self, app: &AppId, user: &UserId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM users WHERE app_id = $1 AND user_id = $2")
            .bind(app.as_str())
            .bind(user.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
