//! Tenant, app and key administration shared by the first start of
//! `confab serve` and the admin CLI. (The control plane's REST API will call
//! the same functions.)

use confab_model::{AppId, AppSettings, UserId};
use confab_store::{App, AppKey, Directory, StoreError, Tenant};
use serde::Serialize;

use crate::auth;
use crate::error::{LogicError, Result};

/// What `confab admin app create` prints: the secret appears here only.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedApp {
    pub tenant_id: String,
    pub app_id: String,
    pub key_id: String,
    pub secret: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CreatedKey {
    pub app_id: String,
    pub key_id: String,
    pub secret: String,
}

pub async fn create_tenant(dir: &dyn Directory, name: &str) -> Result<Tenant> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(LogicError::bad_request(
            "tenant name must be 1 to 100 characters",
        ));
    }
    dir.create_tenant(&auth::new_id("t"), name)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => LogicError::new(
                confab_proto::ops::code::CONFLICT,
                format!("a tenant named {name:?} exists"),
            ),
            other => other.into(),
        })
}

/// Creates an app under a tenant (by id or name) with its first key.
pub async fn create_app(
    dir: &dyn Directory,
    tenant: &str,
    name: &str,
    settings: AppSettings,
) -> Result<CreatedApp> {
    let tenant = dir
        .tenant(tenant)
        .await?
        .ok_or_else(|| LogicError::not_found(format!("no tenant {tenant:?}")))?;
    let app_id = AppId::parse(&auth::new_id("app"))
        .map_err(|e| LogicError::new("internal", e.to_string()))?;
    let app = App {
        app_id: app_id.clone(),
        tenant_id: tenant.tenant_id.clone(),
        name: name.to_owned(),
        settings,
        created_at: confab_model::now_ms(),
    };
    dir.create_app(&app).await?;
    let key = create_key(dir, &app_id).await?;
    Ok(CreatedApp {
        tenant_id: tenant.tenant_id,
        app_id: app_id.to_string(),
        key_id: key.key_id,
        secret: key.secret,
    })
}

/// Adds a key to an app (rotation: create the new key, switch, then revoke
/// the old one with [`revoke_key`]).
pub async fn create_key(dir: &dyn Directory, app_id: &AppId) -> Result<CreatedKey> {
    if dir.app(app_id).await?.is_none() {
        return Err(LogicError::not_found(format!("no app {app_id}")));
    }
    let key = AppKey {
        key_id: auth::new_id("key"),
        app_id: app_id.clone(),
        secret: auth::new_secret(),
        created_at: confab_model::now_ms(),
        revoked_at: None,
    };
    dir.add_key(&key).await?;
    Ok(CreatedKey {
        app_id: app_id.to_string(),
        key_id: key.key_id,
        secret: key.secret,
    })
}

pub async fn revoke_key(dir: &dyn Directory, key_id: &str) -> Result<()> {
    if dir.revoke_key(key_id, confab_model::now_ms()).await? {
        Ok(())
    } else {
        Err(LogicError::not_found(format!("no active key {key_id:?}")))
    }
}

/// Mints a user token with the app's newest active key.
pub async fn mint_token(
    dir: &dyn Directory,
    app_id: &AppId,
    user: &UserId,
    ttl_secs: i64,
) -> Result<String> {
    let key = dir
        .keys(app_id)
        .await?
        .into_iter()
        .filter(|k| k.revoked_at.is_none())
        .max_by_key(|k| k.created_at)
        .ok_or_else(|| LogicError::not_found(format!("app {app_id} has no active key")))?;
    auth::mint(&key, user, ttl_secs)
}

/// On an empty directory, creates the `default` tenant and its first app, and
/// returns them (the caller prints them once). Returns `None` otherwise.
pub async fn bootstrap(dir: &dyn Directory) -> Result<Option<CreatedApp>> {
    if !dir.tenants().await?.is_empty() {
        return Ok(None);
    }
    match dir.create_tenant(&auth::new_id("t"), "default").await {
        Ok(_) => {}
        // Another node of the cell bootstrapped at the same moment.
        Err(StoreError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    Ok(Some(
        create_app(dir, "default", "default", AppSettings::default()).await?,
    ))
}
