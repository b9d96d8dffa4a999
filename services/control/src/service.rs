//! The control plane's operations, with the rules of who may do what.
//!
//! Every operation takes the [`Actor`] making it. A tenant admin sees only
//! its own tenant: anything of another tenant is `not_found` (never
//! `forbidden`, which would confirm it exists); operator-only operations are
//! `forbidden` to tenant admins.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use confab_config::gray::GrayRule;
use confab_config::words::{WordAction, WordRule, normalise_word};
use confab_config::{AppConfig, AppStatus, KeyConfig, Snapshot};
use confab_model::AppSettings;
use confab_store::{ControlRecord, ControlStore, ControlWrite, StoreError};
use rand::Rng;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::error::{ControlError, Result};
use crate::keyring::Keyring;
use crate::model::*;

mod push_dead_letters;
mod webhooks;
pub use webhooks::{WebhookRecord, WebhookSettings, WebhookView, new_webhook_secret};

/// How long a console session lasts.
pub const SESSION_TTL_MS: i64 = 12 * 3600 * 1000;
/// Most words in one list.
pub const MAX_WORDS: usize = 100_000;
const MAX_WORD_CHARS: usize = 64;

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The CLI and first start, working on the data directory or database.
    System,
    Operator {
        account_id: String,
    },
    TenantAdmin {
        account_id: String,
        tenant_id: String,
    },
}

impl Actor {
    fn sees_tenant(&self, tenant_id: &str) -> bool {
        match self {
            Actor::System | Actor::Operator { .. } => true,
            Actor::TenantAdmin { tenant_id: own, .. } => own == tenant_id,
        }
    }

    fn require_operator(&self) -> Result<()> {
        match self {
            Actor::System | Actor::Operator { .. } => Ok(()),
            Actor::TenantAdmin { .. } => {
                Err(ControlError::forbidden("only an operator may do this"))
            }
        }
    }

    /// The tenant a tenant admin is limited to.
    pub fn tenant_scope(&self) -> Option<&str> {
        match self {
            Actor::TenantAdmin { tenant_id, .. } => Some(tenant_id),
            _ => None,
        }
    }
}

/// Which word list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WordScope {
    Global,
    App(String),
}

/// What first start creates and prints once.
#[derive(Debug, Clone, Serialize)]
pub struct Bootstrapped {
    pub app: CreatedApp,
    pub operator_username: String,
    pub operator_password: String,
}

#[path = "push_credentials.rs"]
pub mod push_credentials;
#[path = "push_test.rs"]
pub mod push_test;
#[path = "support.rs"]
pub mod support;
#[path = "usage.rs"]
pub mod usage;

pub struct Control {
    store: Arc<dyn ControlStore>,
    keyring: Arc<Keyring>,
    changed: Arc<Notify>,
    /// The data plane's webhook outbox, for the delivery lists (set where
    /// the control plane shares the data plane's database).
    webhook_outbox: Option<Arc<dyn confab_store::WebhookOutbox>>,
    /// Where the support lookups reach each cell's data.
    data_planes: support::DataPlanes,
    /// The data plane's push queue, for its dead letters (set where the
    /// control plane shares the data plane's database).
    push_queue: Option<Arc<dyn confab_store::PushQueue>>,
    /// Builds providers for test pushes (`None`: from `CONFAB_PUSH_*`).
    push_builder: std::sync::RwLock<Option<confab_push::BuildProvider>>,
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| ControlError::internal(e.to_string()))
}

fn from_record<T: DeserializeOwned>(rec: &ControlRecord) -> Result<T> {
    serde_json::from_str(&rec.doc).map_err(|e| {
        ControlError::internal(format!("stored {} {} is corrupt: {e}", rec.kind, rec.id))
    })
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// A new secret key: `sk_` and 40 hex digits (160 bits).
pub fn new_secret() -> String {
    let bytes: [u8; 20] = rand::rng().random();
    let mut s = String::from("sk_");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn put(kind: &str, id: &str, tenant_id: Option<&str>, doc: String) -> ControlWrite {
    ControlWrite::Put {
        kind: kind.into(),
        id: id.into(),
        tenant_id: tenant_id.map(Into::into),
        doc,
    }
}

fn insert(kind: &str, id: &str, tenant_id: Option<&str>, doc: String) -> ControlWrite {
    ControlWrite::Insert {
        kind: kind.into(),
        id: id.into(),
        tenant_id: tenant_id.map(Into::into),
        doc,
    }
}

fn validate_name(what: &str, name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ControlError::bad_request(format!(
            "{what} name must be 1 to 100 characters"
        )));
    }
    Ok(name.to_owned())
}

fn validate_settings(s: &AppSettings) -> Result<()> {
    let q = &s.quotas;
    let checks: [(&str, bool); 10] = [
        (
            "read_diffusion_threshold must be 0 to 1000000",
            s.read_diffusion_threshold <= 1_000_000,
        ),
        (
            "recall_window_ms must be 0 to 7 days",
            (0..=7 * 86_400_000).contains(&s.recall_window_ms),
        ),
        (
            "max_body_bytes must be 1 to 65536",
            (1..=65_536).contains(&s.max_body_bytes),
        ),
        (
            "retention_days must be 1 to 3650",
            (1..=3650).contains(&s.retention_days),
        ),
        (
            "quotas.max_connections must be at least 1",
            q.max_connections >= 1,
        ),
        (
            "quotas.app_messages_per_sec must be at least 1",
            q.app_messages_per_sec >= 1,
        ),
        (
            "quotas.user_messages_per_sec must be at least 1",
            q.user_messages_per_sec >= 1,
        ),
        (
            "quotas.max_group_size must be 2 to 100000",
            (2..=100_000).contains(&q.max_group_size),
        ),
        (
            "quotas.max_groups_per_user must be at least 1",
            q.max_groups_per_user >= 1,
        ),
        (
            "quotas.rest_requests_per_sec must be at least 1",
            q.rest_requests_per_sec >= 1,
        ),
    ];
    match checks.iter().find(|(_, ok)| !ok) {
        Some((message, _)) => Err(ControlError::bad_request(*message)),
        None => Ok(()),
    }
}

fn validate_word(rule: &WordRule) -> Result<()> {
    if normalise_word(&rule.word).is_empty() || rule.word.chars().count() > MAX_WORD_CHARS {
        return Err(ControlError::bad_request(format!(
            "word {:?} must have 1 to {MAX_WORD_CHARS} characters and at least one letter or digit",
            rule.word
        )));
    }
    Ok(())
}

impl Control {
    pub fn new(store: Arc<dyn ControlStore>, keyring: Arc<Keyring>) -> Self {
        Self {
            store,
            keyring,
            changed: Arc::new(Notify::new()),
            webhook_outbox: None,
            data_planes: support::DataPlanes::default(),
            push_queue: None,
            push_builder: std::sync::RwLock::new(None),
        }
    }

    /// Lets the admin API list push dead letters from this queue.
    pub fn with_push_queue(mut self, queue: Arc<dyn confab_store::PushQueue>) -> Self {
        self.push_queue = Some(queue);
        self
    }

    /// The data plane's webhook outbox, if this control plane reaches it.
    pub fn webhook_outbox(&self) -> Option<&Arc<dyn confab_store::WebhookOutbox>> {
        self.webhook_outbox.as_ref()
    }

    /// Lets the admin API list webhook deliveries and dead letters (and
    /// redeliver) from this outbox.
    pub fn with_webhook_outbox(mut self, outbox: Arc<dyn confab_store::WebhookOutbox>) -> Self {
        self.webhook_outbox = Some(outbox);
        self
    }

    pub fn store(&self) -> &Arc<dyn ControlStore> {
        &self.store
    }

    /// Woken after every write made through this instance (the publisher
    /// also polls, for writes made by other processes).
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    async fn write(&self, ops: Vec<ControlWrite>) -> Result<u64> {
        let version = self.store.write(ops).await?;
        self.changed.notify_waiters();
        Ok(version)
    }

    async fn doc<T: DeserializeOwned>(&self, kind: &str, id: &str) -> Result<Option<T>> {
        match self.store.get(kind, id).await? {
            Some(rec) => Ok(Some(from_record(&rec)?)),
            None => Ok(None),
        }
    }

    async fn docs<T: DeserializeOwned>(&self, kind: &str, tenant: Option<&str>) -> Result<Vec<T>> {
        self.store
            .list(kind, tenant)
            .await?
            .iter()
            .map(from_record)
            .collect()
    }

    // ---- tenants ----

    pub async fn create_tenant(&self, actor: &Actor, name: &str) -> Result<Tenant> {
        actor.require_operator()?;
        let name = validate_name("tenant", name)?;
        let tenant = Tenant {
            tenant_id: new_id("t"),
            name: name.clone(),
            status: Status::Active,
            cell_id: DEFAULT_CELL.into(),
            created_at: confab_model::now_ms(),
        };
        let id = tenant.tenant_id.as_str();
        self.write(vec![
            insert(kind::TENANT, id, Some(id), to_json(&tenant)?),
            insert(kind::TENANT_NAME, &name, None, to_json(&id)?),
        ])
        .await
        .map_err(|e| match e.code {
            "conflict" => ControlError::conflict(format!("a tenant named {name:?} exists")),
            _ => e,
        })?;
        Ok(tenant)
    }

    /// A tenant by id or name, if the actor may see it.
    pub async fn tenant(&self, actor: &Actor, id_or_name: &str) -> Result<Tenant> {
        let not_found = || ControlError::not_found(format!("no tenant {id_or_name:?}"));
        let found = match self.doc::<Tenant>(kind::TENANT, id_or_name).await? {
            Some(t) => Some(t),
            None => match self.doc::<String>(kind::TENANT_NAME, id_or_name).await? {
                Some(id) => self.doc::<Tenant>(kind::TENANT, &id).await?,
                None => None,
            },
        };
        match found {
            Some(t) if actor.sees_tenant(&t.tenant_id) => Ok(t),
            _ => Err(not_found()),
        }
    }

    pub async fn tenants(&self, actor: &Actor) -> Result<Vec<Tenant>> {
        let mut all: Vec<Tenant> = self.docs(kind::TENANT, actor.tenant_scope()).await?;
        all.retain(|t| actor.sees_tenant(&t.tenant_id));
        Ok(all)
    }

    async fn save_tenant(&self, tenant: &Tenant) -> Result<()> {
        self.write(vec![ControlWrite::Update {
            kind: kind::TENANT.into(),
            id: tenant.tenant_id.clone(),
            doc: to_json(tenant)?,
        }])
        .await?;
        Ok(())
    }

    pub async fn rename_tenant(&self, actor: &Actor, id: &str, name: &str) -> Result<Tenant> {
        actor.require_operator()?;
        let mut tenant = self.tenant(actor, id).await?;
        let name = validate_name("tenant", name)?;
        if name == tenant.name {
            return Ok(tenant);
        }
        let old = std::mem::replace(&mut tenant.name, name.clone());
        self.write(vec![
            insert(kind::TENANT_NAME, &name, None, to_json(&tenant.tenant_id)?),
            ControlWrite::Delete {
                kind: kind::TENANT_NAME.into(),
                id: old,
            },
            ControlWrite::Update {
                kind: kind::TENANT.into(),
                id: tenant.tenant_id.clone(),
                doc: to_json(&tenant)?,
            },
        ])
        .await
        .map_err(|e| match e.code {
            "conflict" => ControlError::conflict(format!("a tenant named {name:?} exists")),
            _ => e,
        })?;
        Ok(tenant)
    }

    /// Suspends or resumes a tenant: a suspended tenant's apps refuse logins
    /// and REST calls, and their live sessions are kicked.
    pub async fn set_tenant_status(
        &self,
        actor: &Actor,
        id: &str,
        status: Status,
    ) -> Result<Tenant> {
        actor.require_operator()?;
        let mut tenant = self.tenant(actor, id).await?;
        tenant.status = status;
        self.save_tenant(&tenant).await?;
        Ok(tenant)
    }

    pub async fn assign_cell(&self, actor: &Actor, id: &str, cell_id: &str) -> Result<Tenant> {
        actor.require_operator()?;
        if cell_id != DEFAULT_CELL && self.doc::<Cell>(kind::CELL, cell_id).await?.is_none() {
            return Err(ControlError::not_found(format!("no cell {cell_id:?}")));
        }
        let mut tenant = self.tenant(actor, id).await?;
        tenant.cell_id = cell_id.to_owned();
        self.save_tenant(&tenant).await?;
        Ok(tenant)
    }

    /// Deletes a tenant that has no apps left.
    pub async fn delete_tenant(&self, actor: &Actor, id: &str) -> Result<()> {
        actor.require_operator()?;
        let tenant = self.tenant(actor, id).await?;
        if !self
            .store
            .list(kind::APP, Some(&tenant.tenant_id))
            .await?
            .is_empty()
        {
            return Err(ControlError::conflict("delete the tenant's apps first"));
        }
        let mut ops = vec![
            ControlWrite::Delete {
                kind: kind::TENANT.into(),
                id: tenant.tenant_id.clone(),
            },
            ControlWrite::Delete {
                kind: kind::TENANT_NAME.into(),
                id: tenant.name.clone(),
            },
        ];
        for account in self
            .store
            .list(kind::ACCOUNT, Some(&tenant.tenant_id))
            .await?
        {
            let record: AccountRecord = from_record(&account)?;
            ops.push(ControlWrite::Delete {
                kind: kind::ACCOUNT.into(),
                id: record.account_id,
            });
            ops.push(ControlWrite::Delete {
                kind: kind::ACCOUNT_NAME.into(),
                id: record.username,
            });
        }
        self.write(ops).await?;
        Ok(())
    }

    // ---- apps ----

    pub async fn create_app(
        &self,
        actor: &Actor,
        tenant: &str,
        name: &str,
        settings: Option<AppSettings>,
    ) -> Result<CreatedApp> {
        let tenant = self.tenant(actor, tenant).await?;
        let name = validate_name("app", name)?;
        let settings = settings.unwrap_or_default();
        validate_settings(&settings)?;
        let app = App {
            app_id: new_id("app"),
            tenant_id: tenant.tenant_id.clone(),
            name,
            status: Status::Active,
            settings,
            created_at: confab_model::now_ms(),
        };
        let (key, secret) = self.new_key_record(&app)?;
        self.write(vec![
            insert(kind::APP, &app.app_id, Some(&app.tenant_id), to_json(&app)?),
            insert(kind::KEY, &key.key_id, Some(&app.tenant_id), to_json(&key)?),
        ])
        .await?;
        Ok(CreatedApp {
            tenant_id: app.tenant_id,
            app_id: app.app_id,
            key_id: key.key_id,
            secret,
        })
    }

    pub async fn app(&self, actor: &Actor, app_id: &str) -> Result<App> {
        match self.doc::<App>(kind::APP, app_id).await? {
            Some(app) if actor.sees_tenant(&app.tenant_id) => Ok(app),
            _ => Err(ControlError::not_found(format!("no app {app_id:?}"))),
        }
    }

    /// Apps the actor may see, of one tenant if given.
    pub async fn apps(&self, actor: &Actor, tenant: Option<&str>) -> Result<Vec<App>> {
        let tenant_id = match tenant {
            Some(t) => Some(self.tenant(actor, t).await?.tenant_id),
            None => actor.tenant_scope().map(str::to_owned),
        };
        let mut apps: Vec<App> = self.docs(kind::APP, tenant_id.as_deref()).await?;
        apps.retain(|a| actor.sees_tenant(&a.tenant_id));
        Ok(apps)
    }

    pub async fn update_app(
        &self,
        actor: &Actor,
        app_id: &str,
        name: Option<&str>,
        settings: Option<AppSettings>,
        status: Option<Status>,
    ) -> Result<App> {
        let mut app = self.app(actor, app_id).await?;
        if let Some(name) = name {
            app.name = validate_name("app", name)?;
        }
        if let Some(settings) = settings {
            validate_settings(&settings)?;
            app.settings = settings;
        }
        if let Some(status) = status {
            app.status = status;
        }
        self.write(vec![ControlWrite::Update {
            kind: kind::APP.into(),
            id: app.app_id.clone(),
            doc: to_json(&app)?,
        }])
        .await?;
        Ok(app)
    }

    /// Deletes an app with its keys and word list (its messages stay in the
    /// data plane until retention purges them).
    pub async fn delete_app(&self, actor: &Actor, app_id: &str) -> Result<()> {
        let app = self.app(actor, app_id).await?;
        let mut ops = vec![ControlWrite::Delete {
            kind: kind::APP.into(),
            id: app.app_id.clone(),
        }];
        for key in self.app_keys(&app).await? {
            ops.push(ControlWrite::Delete {
                kind: kind::KEY.into(),
                id: key.key_id,
            });
        }
        ops.extend(self.delete_webhook_op(&app.app_id).await?);
        if self.store.get(kind::WORDS, &app.app_id).await?.is_some() {
            ops.push(ControlWrite::Delete {
                kind: kind::WORDS.into(),
                id: app.app_id.clone(),
            });
        }
        self.write(ops).await?;
        Ok(())
    }

    // ---- keys ----

    fn new_key_record(&self, app: &App) -> Result<(KeyRecord, String)> {
        let secret = new_secret();
        let key = KeyRecord {
            key_id: new_id("key"),
            app_id: app.app_id.clone(),
            tenant_id: app.tenant_id.clone(),
            sealed_secret: self.keyring.seal(&secret)?,
            created_at: confab_model::now_ms(),
            revoked_at: None,
        };
        Ok((key, secret))
    }

    async fn app_keys(&self, app: &App) -> Result<Vec<KeyRecord>> {
        let mut keys: Vec<KeyRecord> = self.docs(kind::KEY, Some(&app.tenant_id)).await?;
        keys.retain(|k| k.app_id == app.app_id);
        keys.sort_by(|a, b| (a.created_at, &a.key_id).cmp(&(b.created_at, &b.key_id)));
        Ok(keys)
    }

    /// Adds a key (rotation: create the new key, move signers to it, then
    /// revoke the old one). An app has at most two active keys.
    pub async fn create_key(&self, actor: &Actor, app_id: &str) -> Result<CreatedKey> {
        let app = self.app(actor, app_id).await?;
        let active = self
            .app_keys(&app)
            .await?
            .iter()
            .filter(|k| k.revoked_at.is_none())
            .count();
        if active >= 2 {
            return Err(ControlError::conflict(
                "an app has at most two active keys: revoke one first",
            ));
        }
        let (key, secret) = self.new_key_record(&app)?;
        self.write(vec![insert(
            kind::KEY,
            &key.key_id,
            Some(&app.tenant_id),
            to_json(&key)?,
        )])
        .await?;
        Ok(CreatedKey {
            app_id: app.app_id,
            key_id: key.key_id,
            secret,
        })
    }

    pub async fn keys(&self, actor: &Actor, app_id: &str) -> Result<Vec<Key>> {
        let app = self.app(actor, app_id).await?;
        Ok(self.app_keys(&app).await?.iter().map(Key::from).collect())
    }

    /// The key record by id, if the actor may see it (`app_id`: the app it
    /// must belong to, when the caller names one).
    async fn key_record(
        &self,
        actor: &Actor,
        app_id: Option<&str>,
        key_id: &str,
    ) -> Result<KeyRecord> {
        match self.doc::<KeyRecord>(kind::KEY, key_id).await? {
            Some(k) if actor.sees_tenant(&k.tenant_id) && app_id.is_none_or(|a| a == k.app_id) => {
                Ok(k)
            }
            _ => Err(ControlError::not_found(format!("no key {key_id:?}"))),
        }
    }

    /// Revokes a key: tokens it signed stop working within seconds.
    pub async fn revoke_key(
        &self,
        actor: &Actor,
        app_id: Option<&str>,
        key_id: &str,
    ) -> Result<Key> {
        let mut key = self.key_record(actor, app_id, key_id).await?;
        if key.revoked_at.is_some() {
            return Err(ControlError::not_found(format!("no active key {key_id:?}")));
        }
        key.revoked_at = Some(confab_model::now_ms());
        self.write(vec![ControlWrite::Update {
            kind: kind::KEY.into(),
            id: key.key_id.clone(),
            doc: to_json(&key)?,
        }])
        .await?;
        Ok(Key::from(&key))
    }

    /// The app's newest active key and its secret (to mint a user token).
    pub async fn signing_key(&self, actor: &Actor, app_id: &str) -> Result<(String, String)> {
        let app = self.app(actor, app_id).await?;
        let key = self
            .app_keys(&app)
            .await?
            .into_iter()
            .rfind(|k| k.revoked_at.is_none())
            .ok_or_else(|| ControlError::not_found(format!("app {app_id} has no active key")))?;
        Ok((key.key_id.clone(), self.keyring.open(&key.sealed_secret)?))
    }

    /// Re-seals every secret with the current KEK; returns how many changed.
    /// Re-seals every stored secret that is not sealed with the current KEK
    /// (app key secrets, webhook signing secrets, push credentials), so
    /// that the old KEK can be dropped. Returns how many were re-sealed.
    pub async fn rewrap_keys(&self, actor: &Actor) -> Result<usize> {
        actor.require_operator()?;
        // Every sealed field of the stored documents: (kind, field).
        const SEALED: [(&str, &str); 3] = [
            (kind::KEY, "sealed_secret"),
            (kind::WEBHOOK, "sealed_secret"),
            (push_credentials::KIND, "sealed"),
        ];
        let mut ops = Vec::new();
        for (record_kind, field) in SEALED {
            for rec in self.store.list(record_kind, None).await? {
                let mut doc: serde_json::Value = from_record(&rec)?;
                let Some(sealed) = doc.get(field).and_then(|v| v.as_str()) else {
                    return Err(ControlError::internal(format!(
                        "stored {} {} has no {field}",
                        rec.kind, rec.id
                    )));
                };
                if Keyring::sealed_with(sealed) == Some(self.keyring.current_id()) {
                    continue;
                }
                let resealed = self.keyring.seal(&self.keyring.open(sealed)?)?;
                doc[field] = serde_json::Value::String(resealed);
                ops.push(ControlWrite::Update {
                    kind: record_kind.into(),
                    id: rec.id.clone(),
                    doc: doc.to_string(),
                });
            }
        }
        let count = ops.len();
        if count > 0 {
            self.write(ops).await?;
        }
        Ok(count)
    }

    // ---- accounts and sessions ----

    pub async fn create_account(
        &self,
        actor: &Actor,
        username: &str,
        password: &str,
        role: Role,
        tenant: Option<&str>,
    ) -> Result<Account> {
        let username = username.trim();
        if username.is_empty()
            || username.len() > 64
            || !username
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
        {
            return Err(ControlError::bad_request(
                "username must be 1 to 64 of letters, digits, . _ @ -",
            ));
        }
        if password.chars().count() < 10 || password.len() > 256 {
            return Err(ControlError::bad_request(
                "password must be 10 to 256 characters",
            ));
        }
        let tenant_id = match (role, tenant) {
            (Role::Operator, None) => {
                actor.require_operator()?;
                None
            }
            (Role::Operator, Some(_)) => {
                return Err(ControlError::bad_request(
                    "an operator belongs to no tenant",
                ));
            }
            (Role::TenantAdmin, Some(t)) => Some(self.tenant(actor, t).await?.tenant_id),
            (Role::TenantAdmin, None) => match actor.tenant_scope() {
                Some(own) => Some(own.to_owned()),
                None => {
                    return Err(ControlError::bad_request(
                        "a tenant admin needs a tenant_id",
                    ));
                }
            },
        };
        let record = AccountRecord {
            account_id: new_id("acct"),
            username: username.to_owned(),
            role,
            tenant_id: tenant_id.clone(),
            password_hash: hash_password(password)?,
            created_at: confab_model::now_ms(),
        };
        self.write(vec![
            insert(
                kind::ACCOUNT,
                &record.account_id,
                tenant_id.as_deref(),
                to_json(&record)?,
            ),
            insert(
                kind::ACCOUNT_NAME,
                username,
                None,
                to_json(&record.account_id)?,
            ),
        ])
        .await
        .map_err(|e| match e.code {
            "conflict" => ControlError::conflict(format!("username {username:?} is taken")),
            _ => e,
        })?;
        Ok(Account::from(&record))
    }

    pub async fn accounts(&self, actor: &Actor) -> Result<Vec<Account>> {
        let records: Vec<AccountRecord> = self.docs(kind::ACCOUNT, actor.tenant_scope()).await?;
        Ok(records
            .iter()
            .filter(|a| match actor.tenant_scope() {
                Some(own) => a.tenant_id.as_deref() == Some(own),
                None => true,
            })
            .map(Account::from)
            .collect())
    }

    /// Checks a username and password; returns a new session token (shown
    /// once; only its hash is stored) and the account.
    pub async fn login(&self, username: &str, password: &str) -> Result<(String, i64, Account)> {
        let refused = || ControlError::unauthorized("wrong username or password");
        let account_id: Option<String> = self.doc(kind::ACCOUNT_NAME, username.trim()).await?;
        let record: Option<AccountRecord> = match &account_id {
            Some(id) => self.doc(kind::ACCOUNT, id).await?,
            None => None,
        };
        let Some(record) = record else {
            // Spend the same time as a real check, so that timing does not
            // tell which usernames exist.
            let _ = verify_password(password, dummy_hash());
            return Err(refused());
        };
        if !verify_password(password, &record.password_hash) {
            return Err(refused());
        }
        if let Some(t) = &record.tenant_id
            && self
                .doc::<Tenant>(kind::TENANT, t)
                .await?
                .is_some_and(|t| t.status == Status::Suspended)
        {
            return Err(ControlError::new("suspended", "this tenant is suspended"));
        }
        let token = format!("cs_{}", &new_secret()[3..]);
        let now = confab_model::now_ms();
        let session = SessionRecord {
            account_id: record.account_id.clone(),
            created_at: now,
            expires_at: now + SESSION_TTL_MS,
        };
        self.store
            .write(vec![insert(
                kind::SESSION,
                &hash_token(&token),
                record.tenant_id.as_deref(),
                to_json(&session)?,
            )])
            .await?;
        Ok((token, session.expires_at, Account::from(&record)))
    }

    /// The actor a console session token speaks for.
    pub async fn authenticate(&self, token: &str) -> Result<(Actor, Account)> {
        let refused = || ControlError::unauthorized("missing, unknown or expired session");
        if !token.starts_with("cs_") || token.len() > 100 {
            return Err(refused());
        }
        let session: SessionRecord = self
            .doc(kind::SESSION, &hash_token(token))
            .await?
            .ok_or_else(refused)?;
        if session.expires_at <= confab_model::now_ms() {
            return Err(refused());
        }
        let record: AccountRecord = self
            .doc(kind::ACCOUNT, &session.account_id)
            .await?
            .ok_or_else(refused)?;
        let actor = match (&record.role, &record.tenant_id) {
            (Role::Operator, _) => Actor::Operator {
                account_id: record.account_id.clone(),
            },
            (Role::TenantAdmin, Some(t)) => Actor::TenantAdmin {
                account_id: record.account_id.clone(),
                tenant_id: t.clone(),
            },
            (Role::TenantAdmin, None) => return Err(refused()),
        };
        Ok((actor, Account::from(&record)))
    }

    pub async fn logout(&self, token: &str) -> Result<()> {
        match self
            .store
            .write(vec![ControlWrite::Delete {
                kind: kind::SESSION.into(),
                id: hash_token(token),
            }])
            .await
        {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    // ---- sensitive words ----

    async fn word_scope_id(
        &self,
        actor: &Actor,
        scope: &WordScope,
    ) -> Result<(String, Option<String>)> {
        match scope {
            WordScope::Global => {
                actor.require_operator()?;
                Ok((GLOBAL_WORDS.to_owned(), None))
            }
            WordScope::App(app_id) => {
                let app = self.app(actor, app_id).await?;
                Ok((app.app_id, Some(app.tenant_id)))
            }
        }
    }

    pub async fn words(&self, actor: &Actor, scope: &WordScope) -> Result<Vec<WordRule>> {
        if *scope == WordScope::Global {
            // Tenant admins may read the global list (they cannot change it).
        } else {
            self.word_scope_id(actor, scope).await?;
        }
        let id = match scope {
            WordScope::Global => GLOBAL_WORDS,
            WordScope::App(app_id) => app_id.as_str(),
        };
        Ok(self
            .doc::<WordList>(kind::WORDS, id)
            .await?
            .unwrap_or_default()
            .words)
    }

    /// Adds words (a word already listed takes the new action) and removes
    /// others, in one change; returns the list after it.
    pub async fn change_words(
        &self,
        actor: &Actor,
        scope: &WordScope,
        add: Vec<WordRule>,
        remove: Vec<String>,
    ) -> Result<Vec<WordRule>> {
        let (id, tenant) = self.word_scope_id(actor, scope).await?;
        for rule in &add {
            validate_word(rule)?;
        }
        let mut list = self
            .doc::<WordList>(kind::WORDS, &id)
            .await?
            .unwrap_or_default();
        let removed: std::collections::HashSet<String> =
            remove.iter().map(|w| normalise_word(w)).collect();
        list.words
            .retain(|w| !removed.contains(&normalise_word(&w.word)));
        for rule in add {
            let key = normalise_word(&rule.word);
            match list
                .words
                .iter_mut()
                .find(|w| normalise_word(&w.word) == key)
            {
                Some(existing) => *existing = rule,
                None => list.words.push(rule),
            }
        }
        if list.words.len() > MAX_WORDS {
            return Err(ControlError::new(
                "quota_exceeded",
                format!("a word list holds at most {MAX_WORDS} words"),
            ));
        }
        self.write(vec![put(
            kind::WORDS,
            &id,
            tenant.as_deref(),
            to_json(&list)?,
        )])
        .await?;
        Ok(list.words)
    }

    /// Bulk import from text: one word per line, optionally followed by a
    /// comma or tab and `block` or `mask` (else `default_action`); blank
    /// lines and lines starting with `#` are skipped.
    pub async fn import_words(
        &self,
        actor: &Actor,
        scope: &WordScope,
        text: &str,
        default_action: WordAction,
    ) -> Result<usize> {
        let mut rules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (word, action) = match line.rsplit_once([',', '\t']) {
                Some((w, a)) => match a.trim() {
                    "block" => (w.trim(), WordAction::Block),
                    "mask" => (w.trim(), WordAction::Mask),
                    other => {
                        return Err(ControlError::bad_request(format!(
                            "line {}: action must be block or mask, not {other:?}",
                            n + 1
                        )));
                    }
                },
                None => (line, default_action),
            };
            let rule = WordRule {
                word: word.to_owned(),
                action,
            };
            validate_word(&rule)
                .map_err(|e| ControlError::bad_request(format!("line {}: {}", n + 1, e.message)))?;
            rules.push(rule);
        }
        let count = rules.len();
        self.change_words(actor, scope, rules, Vec::new()).await?;
        Ok(count)
    }

    // ---- gray rules ----

    pub async fn gray_rules(&self, actor: &Actor) -> Result<Vec<GrayRule>> {
        actor.require_operator()?;
        let mut rules: Vec<GrayRule> = self.docs(kind::GRAY_RULE, None).await?;
        confab_config::gray::sort_rules(&mut rules);
        Ok(rules)
    }

    /// Creates or replaces a rule (by `rule_id`; a new id when empty).
    pub async fn put_gray_rule(&self, actor: &Actor, mut rule: GrayRule) -> Result<GrayRule> {
        actor.require_operator()?;
        if rule.percent > 100 {
            return Err(ControlError::bad_request("percent must be 0 to 100"));
        }
        if rule.release.is_empty()
            || rule.release.len() > 40
            || !rule
                .release
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(ControlError::bad_request(
                "release must be 1 to 40 of letters, digits, . _ -",
            ));
        }
        if rule.rule_id.is_empty() {
            rule.rule_id = new_id("gr");
        }
        self.write(vec![put(
            kind::GRAY_RULE,
            &rule.rule_id,
            None,
            to_json(&rule)?,
        )])
        .await?;
        Ok(rule)
    }

    pub async fn delete_gray_rule(&self, actor: &Actor, rule_id: &str) -> Result<()> {
        actor.require_operator()?;
        self.write(vec![ControlWrite::Delete {
            kind: kind::GRAY_RULE.into(),
            id: rule_id.into(),
        }])
        .await?;
        Ok(())
    }

    // ---- cells ----

    pub async fn create_cell(
        &self,
        actor: &Actor,
        cell_id: &str,
        description: &str,
    ) -> Result<Cell> {
        actor.require_operator()?;
        if cell_id.is_empty()
            || cell_id.len() > 40
            || !cell_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(ControlError::bad_request(
                "cell_id must be 1 to 40 of letters, digits, . _ -",
            ));
        }
        let cell = Cell {
            cell_id: cell_id.to_owned(),
            description: description.to_owned(),
            created_at: confab_model::now_ms(),
            api_url: None,
        };
        self.write(vec![insert(kind::CELL, cell_id, None, to_json(&cell)?)])
            .await?;
        Ok(cell)
    }

    /// Sets (or with `None` clears) where the control plane reaches a cell's
    /// `/v1` API for support lookups. The `default` cell, which exists
    /// without being declared, is stored on its first change.
    pub async fn set_cell_api_url(
        &self,
        actor: &Actor,
        cell_id: &str,
        api_url: Option<&str>,
    ) -> Result<Cell> {
        actor.require_operator()?;
        if let Some(url) = api_url {
            support::validate_api_url(url)?;
        }
        let stored: Option<Cell> = self.doc(kind::CELL, cell_id).await?;
        let (mut cell, exists) = match stored {
            Some(c) => (c, true),
            None if cell_id == DEFAULT_CELL => (
                Cell {
                    cell_id: DEFAULT_CELL.into(),
                    description: "the cell of tenants not assigned elsewhere".into(),
                    created_at: 0,
                    api_url: None,
                },
                false,
            ),
            None => return Err(ControlError::not_found(format!("no cell {cell_id:?}"))),
        };
        cell.api_url = api_url.map(|u| u.trim_end_matches('/').to_owned());
        let doc = to_json(&cell)?;
        let op = if exists {
            ControlWrite::Update {
                kind: kind::CELL.into(),
                id: cell_id.into(),
                doc,
            }
        } else {
            insert(kind::CELL, cell_id, None, doc)
        };
        self.write(vec![op]).await?;
        Ok(cell)
    }

    pub async fn cells(&self, actor: &Actor) -> Result<Vec<Cell>> {
        actor.require_operator()?;
        let mut cells: Vec<Cell> = self.docs(kind::CELL, None).await?;
        if !cells.iter().any(|c| c.cell_id == DEFAULT_CELL) {
            cells.insert(
                0,
                Cell {
                    cell_id: DEFAULT_CELL.into(),
                    description: "the cell of tenants not assigned elsewhere".into(),
                    created_at: 0,
                    api_url: None,
                },
            );
        }
        Ok(cells)
    }

    pub async fn delete_cell(&self, actor: &Actor, cell_id: &str) -> Result<()> {
        actor.require_operator()?;
        let tenants: Vec<Tenant> = self.docs(kind::TENANT, None).await?;
        if tenants.iter().any(|t| t.cell_id == cell_id) {
            return Err(ControlError::conflict(
                "move the cell's tenants elsewhere first",
            ));
        }
        self.write(vec![ControlWrite::Delete {
            kind: kind::CELL.into(),
            id: cell_id.into(),
        }])
        .await?;
        Ok(())
    }

    // ---- what the data plane gets ----

    pub async fn version(&self) -> Result<u64> {
        Ok(self.store.version().await?)
    }

    /// Everything a cell's data plane needs, at the current version.
    pub async fn snapshot(&self, cell_id: &str) -> Result<Snapshot> {
        let version = self.store.version().await?;
        let tenants: Vec<Tenant> = self.docs(kind::TENANT, None).await?;
        let tenants: std::collections::HashMap<String, Tenant> = tenants
            .into_iter()
            .filter(|t| t.cell_id == cell_id)
            .map(|t| (t.tenant_id.clone(), t))
            .collect();
        let mut apps = std::collections::BTreeMap::new();
        for app in self.docs::<App>(kind::APP, None).await? {
            let Some(tenant) = tenants.get(&app.tenant_id) else {
                continue;
            };
            let status = if app.status == Status::Active && tenant.status == Status::Active {
                AppStatus::Active
            } else {
                AppStatus::Suspended
            };
            apps.insert(
                app.app_id.clone(),
                AppConfig {
                    app_id: app.app_id.clone(),
                    tenant_id: app.tenant_id.clone(),
                    name: app.name.clone(),
                    status,
                    settings: app.settings.clone(),
                    keys: Vec::new(),
                    words: Vec::new(),
                    webhook: None,
                },
            );
        }
        for key in self.docs::<KeyRecord>(kind::KEY, None).await? {
            if let Some(app) = apps.get_mut(&key.app_id) {
                app.keys.push(KeyConfig {
                    key_id: key.key_id.clone(),
                    secret: self.keyring.open(&key.sealed_secret)?,
                    created_at: key.created_at,
                    revoked_at: key.revoked_at,
                });
            }
        }
        let mut global_words = Vec::new();
        for rec in self.store.list(kind::WORDS, None).await? {
            let list: WordList = from_record(&rec)?;
            if rec.id == GLOBAL_WORDS {
                global_words = list.words;
            } else if let Some(app) = apps.get_mut(&rec.id) {
                app.words = list.words;
            }
        }
        self.add_webhooks(&mut apps).await?;
        let gray_rules = self.docs(kind::GRAY_RULE, None).await?;
        Ok(Snapshot {
            version,
            cell_id: cell_id.to_owned(),
            apps,
            global_words,
            gray_rules,
        })
    }

    // ---- first start ----

    /// On an empty control store: an operator account `admin` with a random
    /// password, a `default` tenant and its first app. `None` otherwise.
    pub async fn bootstrap(&self) -> Result<Option<Bootstrapped>> {
        if !self.store.list(kind::TENANT, None).await?.is_empty() {
            return Ok(None);
        }
        let actor = Actor::System;
        match self.create_tenant(&actor, "default").await {
            Ok(_) => {}
            // Another node bootstrapped at the same moment.
            Err(e) if e.code == "conflict" => return Ok(None),
            Err(e) => return Err(e),
        }
        let password = new_secret()[3..23].to_owned();
        let operator_username = "admin".to_owned();
        match self
            .create_account(&actor, &operator_username, &password, Role::Operator, None)
            .await
        {
            Ok(_)
            | Err(ControlError {
                code: "conflict", ..
            }) => {}
            Err(e) => return Err(e),
        }
        let app = self.create_app(&actor, "default", "default", None).await?;
        Ok(Some(Bootstrapped {
            app,
            operator_username,
            operator_password: password,
        }))
    }
}

/// A real argon2id hash, checked against when the username does not exist.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not a real password").unwrap_or_default())
}

fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ControlError::internal(format!("hashing a password: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}
