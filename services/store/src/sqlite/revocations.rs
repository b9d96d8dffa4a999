//! Token revocations on SQLite.

use async_trait::async_trait;
use confab_model::{AppId, UserId};

use super::SqliteStore;
use crate::{Result, TokenRevocations};

#[async_trait]
impl TokenRevocations for SqliteStore {
    async fn revoke_tokens(&self, app: &AppId, user: &UserId, at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_tokens (app_id, user_id, revoked_before) VALUES (?, ?, ?) \
             ON CONFLICT (app_id, user_id) DO UPDATE SET revoked_before = MAX(revoked_before, excluded.revoked_before)",
        )
        .bind(app.as_str())
        .bind(user.as_str())
        .bind(at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn tokens_revoked_before(&self, app: &AppId, user: &UserId) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT revoked_before FROM user_tokens WHERE app_id = ? AND user_id = ?",
        )
        .bind(app.as_str())
        .bind(user.as_str())
        .fetch_optional(&self.read)
        .await?)
    }
}
