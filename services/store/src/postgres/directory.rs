//! Tenants, apps, keys and token revocations on PostgreSQL.

use async_trait::async_trait;
use confab_model::{AppId, AppSettings, UserId};
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::PgStore;
use crate::{App, AppKey, Directory, Result, StoreError, Tenant};

fn conflict_or(e: sqlx::Error, what: String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => e.into(),
    }
}

fn tenant_from_row(row: &PgRow) -> Result<Tenant> {
    Ok(Tenant {
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

fn app_from_row(row: &PgRow) -> Result<App> {
    let app_id: String = row.try_get("app_id")?;
    let settings: String = row.try_get("settings")?;
    Ok(App {
        app_id: AppId::parse(&app_id)
            .map_err(|_| StoreError::Corrupt(format!("app id {app_id:?}")))?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        settings: serde_json::from_str(&settings)
            .map_err(|e| StoreError::Corrupt(format!("app settings: {e}")))?,
        created_at: row.try_get("created_at")?,
    })
}

fn key_from_row(row: &PgRow) -> Result<AppKey> {
    let app_id: String = row.try_get("app_id")?;
    Ok(AppKey {
        key_id: row.try_get("key_id")?,
        app_id: AppId::parse(&app_id)
            .map_err(|_| StoreError::Corrupt(format!("app id {app_id:?}")))?,
        secret: row.try_get("secret")?,
        created_at: row.try_get("created_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

fn settings_json(settings: &AppSettings) -> Result<String> {
    serde_json::to_string(settings).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl Directory for PgStore {
    async fn create_tenant(&self, tenant_id: &str, name: &str) -> Result<Tenant> {
        let now = confab_model::now_ms();
        sqlx::query("INSERT INTO tenants (tenant_id, name, created_at) VALUES ($1, $2, $3)")
            .bind(tenant_id)
            .bind(name)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or(e, format!("tenant {name:?}")))?;
        Ok(Tenant {
            tenant_id: tenant_id.to_owned(),
            name: name.to_owned(),
            created_at: now,
        })
    }

    async fn tenant(&self, id_or_name: &str) -> Result<Option<Tenant>> {
        let row = sqlx::query("SELECT tenant_id, name, created_at FROM tenants WHERE tenant_id = $1 OR name = $2 LIMIT 1")
            .bind(id_or_name)
            .bind(id_or_name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    async fn tenants(&self) -> Result<Vec<Tenant>> {
        let rows = sqlx::query(
            "SELECT tenant_id, name, created_at FROM tenants ORDER BY created_at, tenant_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn create_app(&self, app: &App) -> Result<()> {
        sqlx::query("INSERT INTO apps (app_id, tenant_id, name, settings, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(app.app_id.as_str())
            .bind(&app.tenant_id)
            .bind(&app.name)
            .bind(settings_json(&app.settings)?)
            .bind(app.created_at)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or(e, format!("app {}", app.app_id)))?;
        Ok(())
    }

    async fn app(&self, app_id: &AppId) -> Result<Option<App>> {
        let row = sqlx::query(
            "SELECT app_id, tenant_id, name, settings, created_at FROM apps WHERE app_id = $1",
        )
        .bind(app_id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    async fn apps(&self, tenant_id: Option<&str>) -> Result<Vec<App>> {
        let rows = sqlx::query(
            "SELECT app_id, tenant_id, name, settings, created_at FROM apps \
             WHERE $1::TEXT IS NULL OR tenant_id = $1 ORDER BY created_at, app_id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(app_from_row).collect()
    }

    async fn update_settings(&self, app_id: &AppId, settings: &AppSettings) -> Result<()> {
        let done = sqlx::query("UPDATE apps SET settings = $1 WHERE app_id = $2")
            .bind(settings_json(settings)?)
            .bind(app_id.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("app {app_id}")));
        }
        Ok(())
    }

    async fn add_key(&self, key: &AppKey) -> Result<()> {
        sqlx::query("INSERT INTO app_keys (key_id, app_id, secret, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&key.key_id)
            .bind(key.app_id.as_str())
            .bind(&key.secret)
            .bind(key.created_at)
            .bind(key.revoked_at)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_or(e, format!("key {}", key.key_id)))?;
        Ok(())
    }

    async fn key(&self, key_id: &str) -> Result<Option<AppKey>> {
        let row = sqlx::query(
            "SELECT key_id, app_id, secret, created_at, revoked_at FROM app_keys WHERE key_id = $1",
        )
        .bind(key_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn keys(&self, app_id: &AppId) -> Result<Vec<AppKey>> {
        let rows = sqlx::query(
            "SELECT key_id, app_id, secret, created_at, revoked_at FROM app_keys WHERE app_id = $1 ORDER BY created_at, key_id",
        )
        .bind(app_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_key(&self, key_id: &str, at: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE app_keys SET revoked_at = $1 WHERE key_id = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(key_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

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
