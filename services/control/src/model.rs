//! The control plane's records, as stored (JSON documents in the control
//! store) and as the admin API shows them.

use confab_config::gray::GrayRule;
use confab_config::words::WordRule;
use confab_model::AppSettings;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Record kinds in the control store.
pub mod kind {
    pub const TENANT: &str = "tenant";
    pub const TENANT_NAME: &str = "tenant_name";
    pub const APP: &str = "app";
    pub const KEY: &str = "key";
    pub const ACCOUNT: &str = "account";
    pub const ACCOUNT_NAME: &str = "account_name";
    pub const SESSION: &str = "session";
    pub const WORDS: &str = "words";
    pub const GRAY_RULE: &str = "gray_rule";
    pub const CELL: &str = "cell";
    pub const IDEMPOTENCY: &str = "idempotency";
    /// An app's webhook (id: the app id).
    pub const WEBHOOK: &str = "webhook";
}

/// The word list id of the global list (app lists use the app id).
pub const GLOBAL_WORDS: &str = "global";
/// The cell every tenant is in until assigned elsewhere; embedded mode's only cell.
pub const DEFAULT_CELL: &str = "default";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Active,
    Suspended,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    #[schema(example = "t_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub tenant_id: String,
    #[schema(example = "acme")]
    pub name: String,
    pub status: Status,
    /// The data-plane cell that serves the tenant.
    #[schema(example = "default")]
    pub cell_id: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct App {
    #[schema(example = "app_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub app_id: String,
    pub tenant_id: String,
    #[schema(example = "chat")]
    pub name: String,
    pub status: Status,
    #[schema(value_type = Object)]
    pub settings: AppSettings,
    pub created_at: i64,
}

/// A stored key: the secret is sealed with the KEK, never shown again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: String,
    pub app_id: String,
    pub tenant_id: String,
    pub sealed_secret: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A key as the API lists it (no secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Key {
    #[schema(example = "key_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub key_id: String,
    pub app_id: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl From<&KeyRecord> for Key {
    fn from(k: &KeyRecord) -> Self {
        Self {
            key_id: k.key_id.clone(),
            app_id: k.app_id.clone(),
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A new key: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    pub app_id: String,
    pub key_id: String,
    #[schema(example = "sk_2f1c0a9e8d7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a")]
    pub secret: String,
}

/// What creating an app returns (its first key's secret is shown once).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedApp {
    pub tenant_id: String,
    pub app_id: String,
    pub key_id: String,
    pub secret: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages tenants, cells, global words and gray rules, and every tenant.
    Operator,
    /// Manages only its own tenant's apps.
    TenantAdmin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    pub account_id: String,
    pub username: String,
    pub role: Role,
    pub tenant_id: Option<String>,
    /// argon2id, PHC string format.
    pub password_hash: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Account {
    pub account_id: String,
    pub username: String,
    pub role: Role,
    pub tenant_id: Option<String>,
    pub created_at: i64,
}

impl From<&AccountRecord> for Account {
    fn from(a: &AccountRecord) -> Self {
        Self {
            account_id: a.account_id.clone(),
            username: a.username.clone(),
            role: a.role,
            tenant_id: a.tenant_id.clone(),
            created_at: a.created_at,
        }
    }
}

/// A console session (stored under the SHA-256 of its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub account_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A word list: the global one or an app's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct WordList {
    pub words: Vec<WordRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Cell {
    #[schema(example = "cn-east-1")]
    pub cell_id: String,
    pub description: String,
    pub created_at: i64,
    /// The base URL of the cell's `/v1` API as the control plane reaches it
    /// (support lookups); unset for a cell served in the control plane's
    /// own process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "https://cell-1.internal:8080")]
    pub api_url: Option<String>,
}

/// Gray rules are stored as `confab_config::gray::GrayRule`.
pub type GrayRuleRecord = GrayRule;
