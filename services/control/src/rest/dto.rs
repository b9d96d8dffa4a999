//! What the admin REST API reads and writes: its own types (with OpenAPI
//! schemas), mapped from and to the domain types. Timestamps are RFC 3339
//! strings in UTC with milliseconds (api.md); the domain keeps milliseconds
//! since the epoch.

use confab_config::gray::GrayRule as DomainGrayRule;
use confab_config::words::{WordAction as DomainWordAction, WordRule as DomainWordRule};
use confab_model::{
    AppSettings as DomainSettings, KickPolicy as DomainKickPolicy, Quotas as DomainQuotas,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ControlError;
use crate::model::{self, Role, Status};

/// Milliseconds since the epoch as RFC 3339 (`2024-05-01T12:00:00.000Z`).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

// ---- errors ----

/// Every error response: `{"error":{"code","message","request_id"}}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "no app \"app_01hx...\"", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code: `bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `method_not_allowed`, `conflict`, `payload_too_large`,
    /// `suspended`, `quota_exceeded`, `internal`, `unavailable`.
    #[schema(example = "not_found")]
    pub code: String,
    /// For a human; never another tenant's data.
    pub message: String,
    /// Equal to the response's `x-request-id` header (and in the server log).
    #[schema(example = "01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub request_id: String,
}

// ---- pagination ----

/// `?limit=&cursor=`: at most `limit` items (default 50, 1 to 200) after
/// `cursor` (the `next_cursor` of the previous page; opaque).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /admin/v1/apps`: the page and, optionally, one tenant.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppsQuery {
    /// Only this tenant's apps (id or name).
    pub tenant_id: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl AppsQuery {
    pub fn page(&self) -> PageQuery {
        PageQuery {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

macro_rules! list_type {
    ($(#[$doc:meta])* $name:ident, $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, Serialize, Deserialize, ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            /// Pass as `cursor` for the next page; `null` on the last page.
            pub next_cursor: Option<String>,
        }
    };
}

list_type!(
    /// A page of tenants.
    TenantList,
    Tenant
);
list_type!(
    /// A page of apps.
    AppList,
    App
);
list_type!(
    /// A page of an app's keys (never a secret).
    KeyList,
    Key
);
list_type!(
    /// A page of console accounts.
    AccountList,
    Account
);
list_type!(
    /// A page of a word list, by word.
    WordList,
    WordRule
);
list_type!(
    /// A page of gray rules, in the order they are checked.
    GrayRuleList,
    GrayRule
);
list_type!(
    /// A page of cells.
    CellList,
    Cell
);

// ---- sessions and accounts ----

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    #[schema(example = "admin")]
    pub username: String,
    #[schema(example = "correct horse battery staple")]
    pub password: String,
    /// For a browser: the session goes into an HttpOnly, SameSite=Strict
    /// cookie (`confab_session`, Path=/admin/, Secure over HTTPS) and the
    /// answer carries no `token`, so no page script can ever read it. Unsafe
    /// requests authenticated by that cookie must send `X-CSRF-Token`.
    #[serde(default)]
    pub cookie: bool,
}

/// A new console session. An API client sends the token as
/// `Authorization: Bearer cs_...`; a browser that asked for the cookie gets
/// no token here (it is in the HttpOnly cookie).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Session {
    /// Absent when the session was put in the cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "cs_9f86d081884c7d659a2feaa0c55ad015a3bf4f1b")]
    pub token: Option<String>,
    pub expires_at: String,
    pub account: Account,
    /// Send it as `X-CSRF-Token` with every unsafe request authenticated by
    /// the session cookie (not needed with the bearer header).
    #[schema(example = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8")]
    pub csrf_token: String,
}

/// The session a request is made with.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CurrentSession {
    pub account: Account,
    /// The session's CSRF token (see `Session.csrf_token`).
    pub csrf_token: String,
    /// Whether this request was authenticated by the session cookie.
    pub cookie: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Account {
    #[schema(example = "acct_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub account_id: String,
    #[schema(example = "alice")]
    pub username: String,
    pub role: Role,
    /// The tenant of a tenant admin; `null` for an operator.
    pub tenant_id: Option<String>,
    #[schema(example = "2024-05-01T12:00:00.000Z")]
    pub created_at: String,
}

impl From<model::Account> for Account {
    fn from(a: model::Account) -> Self {
        Self {
            account_id: a.account_id,
            username: a.username,
            role: a.role,
            tenant_id: a.tenant_id,
            created_at: rfc3339(a.created_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    #[schema(example = "alice")]
    pub username: String,
    /// 10 to 256 characters.
    pub password: String,
    pub role: Role,
    /// Required for a tenant admin created by an operator; omitted for an
    /// operator (and by a tenant admin, whose own tenant it is).
    pub tenant_id: Option<String>,
}

// ---- tenants ----

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    #[schema(example = "t_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub tenant_id: String,
    #[schema(example = "acme")]
    pub name: String,
    pub status: Status,
    /// The data-plane cell that serves the tenant.
    #[schema(example = "default")]
    pub cell_id: String,
    #[schema(example = "2024-05-01T12:00:00.000Z")]
    pub created_at: String,
}

impl From<model::Tenant> for Tenant {
    fn from(t: model::Tenant) -> Self {
        Self {
            tenant_id: t.tenant_id,
            name: t.name,
            status: t.status,
            cell_id: t.cell_id,
            created_at: rfc3339(t.created_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// 1 to 100 characters, unique.
    #[schema(example = "acme")]
    pub name: String,
    /// The cell to serve it (default: `default`).
    pub cell_id: Option<String>,
}

/// Any of the fields; each given one is changed (operator only).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTenant {
    pub name: Option<String>,
    /// `suspended` refuses the tenant's logins and REST calls and kicks its
    /// live sessions; `active` resumes it.
    pub status: Option<Status>,
    /// Moves the tenant to another cell.
    pub cell_id: Option<String>,
}

// ---- apps and settings ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KickPolicy {
    /// One session per platform: a new phone login kicks the old phone.
    OnePerPlatform,
    /// One session in all: any new login kicks every other session.
    OneInAll,
    /// No kicking.
    Unlimited,
}

impl From<DomainKickPolicy> for KickPolicy {
    fn from(k: DomainKickPolicy) -> Self {
        match k {
            DomainKickPolicy::OnePerPlatform => Self::OnePerPlatform,
            DomainKickPolicy::OneInAll => Self::OneInAll,
            DomainKickPolicy::Unlimited => Self::Unlimited,
        }
    }
}

impl From<KickPolicy> for DomainKickPolicy {
    fn from(k: KickPolicy) -> Self {
        match k {
            KickPolicy::OnePerPlatform => Self::OnePerPlatform,
            KickPolicy::OneInAll => Self::OneInAll,
            KickPolicy::Unlimited => Self::Unlimited,
        }
    }
}

/// Per-app limits enforced by the data plane (api.md "Quotas"; an operator
/// changes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Concurrent connections of the app on one cell.
    #[schema(example = 10000, minimum = 1)]
    pub max_connections: u32,
    /// Messages per second sent by all users of the app.
    #[schema(example = 1000, minimum = 1)]
    pub app_messages_per_sec: u32,
    /// Messages per second sent by one user.
    #[schema(example = 20, minimum = 1)]
    pub user_messages_per_sec: u32,
    /// Members of one group (large groups up to 100 000).
    #[schema(example = 500, minimum = 2, maximum = 100000)]
    pub max_group_size: u32,
    /// Groups one user may be in.
    #[schema(example = 500, minimum = 1)]
    pub max_groups_per_user: u32,
    /// Server REST API requests per second.
    #[schema(example = 200, minimum = 1)]
    pub rest_requests_per_sec: u32,
}

impl From<DomainQuotas> for Quotas {
    fn from(q: DomainQuotas) -> Self {
        Self {
            max_connections: q.max_connections,
            app_messages_per_sec: q.app_messages_per_sec,
            user_messages_per_sec: q.user_messages_per_sec,
            max_group_size: q.max_group_size,
            max_groups_per_user: q.max_groups_per_user,
            rest_requests_per_sec: q.rest_requests_per_sec,
        }
    }
}

impl From<Quotas> for DomainQuotas {
    fn from(q: Quotas) -> Self {
        Self {
            max_connections: q.max_connections,
            app_messages_per_sec: q.app_messages_per_sec,
            user_messages_per_sec: q.user_messages_per_sec,
            max_group_size: q.max_group_size,
            max_groups_per_user: q.max_groups_per_user,
            rest_requests_per_sec: q.rest_requests_per_sec,
        }
    }
}

/// An app's settings, as the data plane applies them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppSettings {
    pub kick_policy: KickPolicy,
    /// How long after sending a user may recall a message (default 2 min).
    #[schema(example = 120000)]
    pub recall_window_ms: i64,
    /// Largest message body, in bytes of JSON text (default 12 KiB).
    #[schema(example = 12288)]
    pub max_body_bytes: u64,
    /// History retention in days (default 30).
    #[schema(example = 30)]
    pub retention_days: u32,
    pub quotas: Quotas,
    /// What offline-push notifications say (docs/push.md).
    pub push: PushTemplates,
    /// Groups with more members than this fan out by read diffusion: each
    /// message is stored once and members pull it (default 500; 0 makes
    /// every group read-diffused). docs/protocol.md §4.15.
    #[serde(default = "default_read_diffusion_threshold")]
    #[schema(example = 500)]
    pub read_diffusion_threshold: u32,
}

fn default_read_diffusion_threshold() -> u32 {
    confab_model::DEFAULT_READ_DIFFUSION_THRESHOLD
}

impl From<DomainSettings> for AppSettings {
    fn from(s: DomainSettings) -> Self {
        Self {
            kick_policy: s.kick_policy.into(),
            recall_window_ms: s.recall_window_ms,
            max_body_bytes: s.max_body_bytes as u64,
            retention_days: s.retention_days,
            quotas: s.quotas.into(),
            push: s.push.into(),
            read_diffusion_threshold: s.read_diffusion_threshold,
        }
    }
}

/// What an app's offline-push notifications say. In `title` and
/// `group_title`, `{sender}` is the sender's user id and `{group}` the
/// group's name (or id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PushTemplates {
    /// Title of a single-chat notification (at most 200 characters).
    #[schema(example = "{sender}")]
    pub title: String,
    /// Title of a group notification (at most 200 characters).
    #[schema(example = "{sender} in {group}")]
    pub group_title: String,
    /// Never put message content in a notification: the body is
    /// `hidden_body` instead.
    pub hide_content: bool,
    #[schema(example = "New message")]
    pub hidden_body: String,
    /// Body of a notification for a non-text message, by body type
    /// (`image`, `file`, ...; at most 32 types).
    pub placeholders: std::collections::BTreeMap<String, String>,
    /// Body for a body type without a placeholder.
    #[schema(example = "[message]")]
    pub other: String,
}

impl From<confab_model::PushTemplates> for PushTemplates {
    fn from(t: confab_model::PushTemplates) -> Self {
        Self {
            title: t.title,
            group_title: t.group_title,
            hide_content: t.hide_content,
            hidden_body: t.hidden_body,
            placeholders: t.placeholders,
            other: t.other,
        }
    }
}

impl PushTemplates {
    fn validate(self) -> Result<confab_model::PushTemplates, ControlError> {
        const MAX_TEXT: usize = 200;
        let texts = [
            ("title", &self.title),
            ("group_title", &self.group_title),
            ("hidden_body", &self.hidden_body),
            ("other", &self.other),
        ];
        for (name, text) in texts {
            if text.chars().count() > MAX_TEXT {
                return Err(ControlError::bad_request(format!(
                    "push.{name} must be at most {MAX_TEXT} characters"
                )));
            }
        }
        if self.placeholders.len() > 32 {
            return Err(ControlError::bad_request(
                "push.placeholders may list at most 32 body types",
            ));
        }
        for (kind, text) in &self.placeholders {
            if kind.is_empty() || kind.len() > 32 || text.chars().count() > MAX_TEXT {
                return Err(ControlError::bad_request(format!(
                    "push.placeholders: body types are 1 to 32 bytes and texts at most {MAX_TEXT} characters ({kind:?})"
                )));
            }
        }
        Ok(confab_model::PushTemplates {
            title: self.title,
            group_title: self.group_title,
            hide_content: self.hide_content,
            hidden_body: self.hidden_body,
            placeholders: self.placeholders,
            other: self.other,
        })
    }
}

/// Changes to an app's settings: each field given replaces the current value
/// (a full [`AppSettings`] object works too). Only `kick_policy` and `push`
/// are for tenant admins; the others are quotas (api.md), which only an
/// operator changes.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppSettingsPatch {
    pub kick_policy: Option<KickPolicy>,
    /// 0 to 7 days.
    pub recall_window_ms: Option<i64>,
    /// 1 to 65536.
    pub max_body_bytes: Option<u64>,
    /// 1 to 3650.
    pub retention_days: Option<u32>,
    pub quotas: Option<QuotasPatch>,
    /// Replaces the app's push templates as a whole.
    pub push: Option<PushTemplates>,
    /// 0 to 1 000 000 members.
    pub read_diffusion_threshold: Option<u32>,
}

/// Changes to quotas: each field given replaces the current value.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotasPatch {
    pub max_connections: Option<u32>,
    pub app_messages_per_sec: Option<u32>,
    pub user_messages_per_sec: Option<u32>,
    pub max_group_size: Option<u32>,
    pub max_groups_per_user: Option<u32>,
    pub rest_requests_per_sec: Option<u32>,
}

impl AppSettingsPatch {
    /// `base` with the given fields replaced.
    pub fn apply(&self, base: &DomainSettings) -> Result<DomainSettings, ControlError> {
        let mut s = base.clone();
        if let Some(k) = self.kick_policy {
            s.kick_policy = k.into();
        }
        if let Some(v) = self.recall_window_ms {
            s.recall_window_ms = v;
        }
        if let Some(v) = self.max_body_bytes {
            s.max_body_bytes = usize::try_from(v)
                .map_err(|_| ControlError::bad_request("max_body_bytes must be 1 to 65536"))?;
        }
        if let Some(v) = self.retention_days {
            s.retention_days = v;
        }
        if let Some(v) = self.read_diffusion_threshold {
            s.read_diffusion_threshold = v;
        }
        if let Some(t) = &self.push {
            s.push = t.clone().validate()?;
        }
        if let Some(q) = self.quotas {
            let t = &mut s.quotas;
            let fields = [
                (q.max_connections, &mut t.max_connections),
                (q.app_messages_per_sec, &mut t.app_messages_per_sec),
                (q.user_messages_per_sec, &mut t.user_messages_per_sec),
                (q.max_group_size, &mut t.max_group_size),
                (q.max_groups_per_user, &mut t.max_groups_per_user),
                (q.rest_requests_per_sec, &mut t.rest_requests_per_sec),
            ];
            for (given, field) in fields {
                if let Some(v) = given {
                    *field = v;
                }
            }
        }
        Ok(s)
    }
}

/// Whether two settings differ in anything only an operator may change.
pub fn quotas_differ(a: &DomainSettings, b: &DomainSettings) -> bool {
    a.quotas != b.quotas
        || a.recall_window_ms != b.recall_window_ms
        || a.max_body_bytes != b.max_body_bytes
        || a.retention_days != b.retention_days
        || a.read_diffusion_threshold != b.read_diffusion_threshold
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct App {
    #[schema(example = "app_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub app_id: String,
    #[schema(example = "t_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub tenant_id: String,
    #[schema(example = "chat")]
    pub name: String,
    pub status: Status,
    pub settings: AppSettings,
    #[schema(example = "2024-05-01T12:00:00.000Z")]
    pub created_at: String,
}

impl From<model::App> for App {
    fn from(a: model::App) -> Self {
        Self {
            app_id: a.app_id,
            tenant_id: a.tenant_id,
            name: a.name,
            status: a.status,
            settings: a.settings.into(),
            created_at: rfc3339(a.created_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApp {
    /// The owning tenant (id or name).
    #[schema(example = "t_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub tenant_id: String,
    #[schema(example = "chat")]
    pub name: String,
    /// Over the defaults (quotas only by an operator).
    pub settings: Option<AppSettingsPatch>,
}

/// A new app and its first key: the only time the secret is shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedApp {
    #[schema(example = "t_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub tenant_id: String,
    #[schema(example = "app_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub app_id: String,
    #[schema(example = "key_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub key_id: String,
    #[schema(example = "sk_2f1c0a9e8d7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a")]
    pub secret: String,
}

impl From<model::CreatedApp> for CreatedApp {
    fn from(a: model::CreatedApp) -> Self {
        Self {
            tenant_id: a.tenant_id,
            app_id: a.app_id,
            key_id: a.key_id,
            secret: a.secret,
        }
    }
}

/// Any of the fields; each given one is changed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchApp {
    pub name: Option<String>,
    pub settings: Option<AppSettingsPatch>,
    /// `suspended` refuses the app's logins and REST calls and kicks its
    /// live sessions.
    pub status: Option<Status>,
}

// ---- keys ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Revoked,
}

/// A secret key as listed: never the secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Key {
    #[schema(example = "key_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub key_id: String,
    #[schema(example = "app_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub app_id: String,
    pub status: KeyStatus,
    #[schema(example = "2024-05-01T12:00:00.000Z")]
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<model::Key> for Key {
    fn from(k: model::Key) -> Self {
        Self {
            key_id: k.key_id,
            app_id: k.app_id,
            status: if k.revoked_at.is_some() {
                KeyStatus::Revoked
            } else {
                KeyStatus::Active
            },
            created_at: rfc3339(k.created_at),
            revoked_at: k.revoked_at.map(rfc3339),
        }
    }
}

/// A new key: the only time its secret is shown.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    #[schema(example = "app_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub app_id: String,
    #[schema(example = "key_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub key_id: String,
    #[schema(example = "sk_2f1c0a9e8d7b6c5a4f3e2d1c0b9a8f7e6d5c4b3a")]
    pub secret: String,
}

impl From<model::CreatedKey> for CreatedKey {
    fn from(k: model::CreatedKey) -> Self {
        Self {
            app_id: k.app_id,
            key_id: k.key_id,
            secret: k.secret,
        }
    }
}

// ---- words ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WordAction {
    /// The message is refused with `content_blocked`.
    Block,
    /// The message is delivered with the word replaced by `*`.
    Mask,
}

impl From<DomainWordAction> for WordAction {
    fn from(a: DomainWordAction) -> Self {
        match a {
            DomainWordAction::Block => Self::Block,
            DomainWordAction::Mask => Self::Mask,
        }
    }
}

impl From<WordAction> for DomainWordAction {
    fn from(a: WordAction) -> Self {
        match a {
            WordAction::Block => Self::Block,
            WordAction::Mask => Self::Mask,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WordRule {
    /// 1 to 64 characters; matched over normalised text (case, full and half
    /// width, characters inserted between letters).
    #[schema(example = "spam")]
    pub word: String,
    pub action: WordAction,
}

impl From<DomainWordRule> for WordRule {
    fn from(w: DomainWordRule) -> Self {
        Self {
            word: w.word,
            action: w.action.into(),
        }
    }
}

impl From<WordRule> for DomainWordRule {
    fn from(w: WordRule) -> Self {
        Self {
            word: w.word,
            action: w.action.into(),
        }
    }
}

/// One change of a word list: `add` (a listed word takes the new action),
/// then `remove`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WordsChange {
    #[serde(default)]
    pub add: Vec<WordRule>,
    #[serde(default)]
    #[schema(example = json!(["oldword"]))]
    pub remove: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WordsChanged {
    /// Words in the list after the change.
    pub count: usize,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The action of lines that name none (default `block`).
    pub default_action: Option<WordAction>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WordsImported {
    /// Lines imported.
    pub imported: usize,
    /// Words in the list after the import.
    pub count: usize,
}

// ---- gray rules ----

/// A gray-release rule: which logic release serves matching users.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GrayRule {
    #[schema(example = "gr_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub rule_id: String,
    /// Release label a matching user goes to (logic nodes announce theirs).
    #[schema(example = "canary")]
    pub release: String,
    /// Only this tenant's apps (any if `null`).
    pub tenant_id: Option<String>,
    /// Only this app (any if `null`).
    pub app_id: Option<String>,
    /// Share of matching users moved, 0 to 100 (by a stable hash of app and user).
    #[schema(example = 30, maximum = 100)]
    pub percent: u8,
    /// Only clients on these platforms (any if empty).
    #[schema(example = json!(["ios", "android"]))]
    pub platforms: Vec<String>,
    /// Only clients at this version or later (dotted numbers).
    #[schema(example = "2.3.0")]
    pub min_client_version: Option<String>,
    /// Rules are checked lowest first; the first match decides.
    pub priority: i32,
}

impl From<DomainGrayRule> for GrayRule {
    fn from(r: DomainGrayRule) -> Self {
        Self {
            rule_id: r.rule_id,
            release: r.release,
            tenant_id: r.tenant_id,
            app_id: r.app_id,
            percent: r.percent,
            platforms: r.platforms,
            min_client_version: r.min_client_version,
            priority: r.priority,
        }
    }
}

/// A gray rule as written (the id comes from the path or is made).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrayRuleInput {
    /// 1 to 40 of letters, digits, `.`, `_`, `-`.
    #[schema(example = "canary")]
    pub release: String,
    /// Only this tenant's apps (id or name).
    pub tenant_id: Option<String>,
    /// Only this app.
    pub app_id: Option<String>,
    #[schema(example = 30, maximum = 100)]
    pub percent: u8,
    #[serde(default)]
    pub platforms: Vec<String>,
    pub min_client_version: Option<String>,
    #[serde(default)]
    pub priority: i32,
}

impl GrayRuleInput {
    pub fn into_rule(self, rule_id: String) -> DomainGrayRule {
        DomainGrayRule {
            rule_id,
            release: self.release,
            tenant_id: self.tenant_id,
            app_id: self.app_id,
            percent: self.percent,
            platforms: self.platforms,
            min_client_version: self.min_client_version,
            priority: self.priority,
        }
    }
}

/// What share of an app's users a rule would move, estimated over synthetic
/// user ids `u0`, `u1`, … `u{sample-1}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrayPreview {
    pub rule: GrayRuleInput,
    #[schema(example = "app_01jd8x4k2m3n4p5q6r7s8t9v0w")]
    pub app_id: String,
    /// The app's tenant (default: the app's, when the app exists).
    pub tenant_id: Option<String>,
    /// The users' platform (default: one the rule accepts).
    pub platform: Option<String>,
    /// The users' client version (default: one the rule accepts).
    pub client_version: Option<String>,
    /// How many synthetic users, 1 to 100000 (default 10000).
    #[schema(example = 10000, minimum = 1, maximum = 100000)]
    pub sample: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GrayPreviewResult {
    /// Synthetic users the rule matches.
    #[schema(example = 2987)]
    pub matched: u32,
    /// Synthetic users checked.
    #[schema(example = 10000)]
    pub total: u32,
    /// `matched / total`, 0 to 1.
    #[schema(example = 0.2987)]
    pub share: f64,
}

// ---- cells and config ----

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Cell {
    #[schema(example = "cn-east-1")]
    pub cell_id: String,
    pub description: String,
    #[schema(example = "2024-05-01T12:00:00.000Z")]
    pub created_at: String,
    /// Where the control plane reaches the cell's `/v1` API (support
    /// lookups); `null` for a cell served in the control plane's process.
    #[schema(example = "https://cell-1.internal:8080")]
    pub api_url: Option<String>,
}

impl From<model::Cell> for Cell {
    fn from(c: model::Cell) -> Self {
        Self {
            cell_id: c.cell_id,
            description: c.description,
            created_at: rfc3339(c.created_at),
            api_url: c.api_url,
        }
    }
}

/// Changes a cell.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchCell {
    /// The base URL of the cell's `/v1` API (http or https, no query), or
    /// `null` to clear it.
    #[schema(example = "https://cell-1.internal:8080")]
    pub api_url: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCell {
    /// 1 to 40 of letters, digits, `.`, `_`, `-`.
    #[schema(example = "cn-east-1")]
    pub cell_id: String,
    #[serde(default)]
    pub description: String,
}

/// The control store's config version: it moves forward with every change
/// (data-plane nodes follow it).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigVersion {
    #[schema(example = 42)]
    pub version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(4_102_444_800_000), "2100-01-01T00:00:00.000Z");
    }
}
