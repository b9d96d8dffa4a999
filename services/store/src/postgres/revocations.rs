//! Token revocations on PostgreSQL.

use async_trait::async_trait;
use confab_model::{AppId, UserId};

use super::PgStore;
use crate::{Result, TokenRevocations};

#[async_trait]
impl TokenRevocations for PgStore {
    async fn revoke_tokens(&self, app: &AppId, user: &UserId, at: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_tokens (app_id, user_id, revoked_before) VALUES ($1, $2, $3) \
             ON CONFLICT (app_id, user_id) DO UPDATE SET revoked_before = GREATEST(user_tokens.revoked_before, EXCLUDED.revoked_before)",
        )
        .bind(app.as_str())
        .bind(user.as_str())
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn tokens_revoked_before(&self, app: &AppId, user: &UserId) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT revoked_before FROM user_tokens WHERE app_id = $1 AND user_id = $2",
        )
        .bind(app.as_str())
        .bind(user.as_str())
        .fetch_optional(&self.pool)
        .await?)
    }
}
