//! An app's webhook: settings, the signing secret (generated here, shown
//! once, stored sealed with the keyring like app key secrets), and the
//! delivery records the admin API lists (read from the data plane's webhook
//! outbox when this control plane has one).
//!
//! The data plane gets the settings and the opened secret in its config
//! snapshot ([`confab_config::AppConfig::webhook`]); delivering is not this
//! module's business (`confab-webhooks`).

use confab_config::AppConfig;
use confab_config::webhook::{
    DEFAULT_TIMEOUT_MS, FailMode, MAX_TIMEOUT_MS, MIN_TIMEOUT_MS, WebhookConfig, WebhookEvent,
};
use confab_model::AppId;
use confab_store::ControlWrite;
use confab_store::webhooks::{WebhookAttempt, WebhookEvent as OutboxEvent};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{Actor, Control, from_record, put, to_json};
use crate::error::{ControlError, Result};
use crate::model::kind;

/// Longest webhook URL.
pub const MAX_URL_LEN: usize = 2048;
/// Most deliveries or dead letters listed at once.
pub const MAX_LISTED: u32 = 200;

/// A stored webhook (id: the app id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRecord {
    pub app_id: String,
    pub tenant_id: String,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub timeout_ms: u32,
    pub fail_mode: FailMode,
    pub sealed_secret: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What an admin sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub url: String,
    pub events: Vec<WebhookEvent>,
    pub timeout_ms: Option<u32>,
    pub fail_mode: Option<FailMode>,
}

/// A webhook and, right after creation or rotation only, its secret.
#[derive(Debug, Clone)]
pub struct WebhookView {
    pub record: WebhookRecord,
    pub secret: Option<String>,
}

/// A new signing secret: `whsec_` and 64 hex digits (256 bits).
pub fn new_webhook_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    let mut s = String::from("whsec_");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// An absolute http(s) URL with a host, no spaces or control characters.
pub fn validate_url(url: &str) -> Result<String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| ControlError::bad_request("url must start with https:// or http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.starts_with(':') || host.contains('@') {
        return Err(ControlError::bad_request(
            "url must name a host (and no user info)",
        ));
    }
    if url.len() > MAX_URL_LEN || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ControlError::bad_request(format!(
            "url must be at most {MAX_URL_LEN} characters without spaces"
        )));
    }
    Ok(url.to_owned())
}

fn validate(settings: &WebhookSettings) -> Result<(String, Vec<WebhookEvent>, u32)> {
    let url = validate_url(&settings.url)?;
    if settings.events.is_empty() {
        return Err(ControlError::bad_request(
            "events must name at least one of before_send, after_send, user_online, user_offline, group_event",
        ));
    }
    // Stable order, no repeats.
    let events: Vec<WebhookEvent> = WebhookEvent::ALL
        .into_iter()
        .filter(|e| settings.events.contains(e))
        .collect();
    let timeout_ms = settings.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if !(MIN_TIMEOUT_MS..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(ControlError::bad_request(format!(
            "timeout_ms must be {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS}"
        )));
    }
    Ok((url, events, timeout_ms))
}

impl Control {
    async fn webhook_record(&self, app_id: &str) -> Result<Option<WebhookRecord>> {
        self.doc::<WebhookRecord>(kind::WEBHOOK, app_id).await
    }

    /// The app's webhook (`not_found` if it has none).
    pub async fn webhook(&self, actor: &Actor, app_id: &str) -> Result<WebhookRecord> {
        let app = self.app(actor, app_id).await?;
        self.webhook_record(&app.app_id)
            .await?
            .ok_or_else(|| ControlError::not_found(format!("app {app_id} has no webhook")))
    }

    /// Creates or replaces the app's webhook settings. A new webhook gets a
    /// secret, returned this once; a replaced one keeps its secret.
    pub async fn put_webhook(
        &self,
        actor: &Actor,
        app_id: &str,
        settings: WebhookSettings,
    ) -> Result<WebhookView> {
        let app = self.app(actor, app_id).await?;
        let (url, events, timeout_ms) = validate(&settings)?;
        let now = confab_model::now_ms();
        let existing = self.webhook_record(&app.app_id).await?;
        let (record, secret) = match existing {
            Some(mut rec) => {
                rec.url = url;
                rec.events = events;
                rec.timeout_ms = timeout_ms;
                rec.fail_mode = settings.fail_mode.unwrap_or(rec.fail_mode);
                rec.updated_at = now;
                (rec, None)
            }
            None => {
                let secret = new_webhook_secret();
                let rec = WebhookRecord {
                    app_id: app.app_id.clone(),
                    tenant_id: app.tenant_id.clone(),
                    url,
                    events,
                    timeout_ms,
                    fail_mode: settings.fail_mode.unwrap_or_default(),
                    sealed_secret: self.keyring.seal(&secret)?,
                    created_at: now,
                    updated_at: now,
                };
                (rec, Some(secret))
            }
        };
        self.write(vec![put(
            kind::WEBHOOK,
            &record.app_id,
            Some(&record.tenant_id),
            to_json(&record)?,
        )])
        .await?;
        Ok(WebhookView { record, secret })
    }

    /// Replaces the signing secret; the new one is returned this once and
    /// signs every request from the moment the data plane has it (seconds).
    pub async fn rotate_webhook_secret(&self, actor: &Actor, app_id: &str) -> Result<WebhookView> {
        let mut record = self.webhook(actor, app_id).await?;
        let secret = new_webhook_secret();
        record.sealed_secret = self.keyring.seal(&secret)?;
        record.updated_at = confab_model::now_ms();
        self.write(vec![ControlWrite::Update {
            kind: kind::WEBHOOK.into(),
            id: record.app_id.clone(),
            doc: to_json(&record)?,
        }])
        .await?;
        Ok(WebhookView {
            record,
            secret: Some(secret),
        })
    }

    pub async fn delete_webhook(&self, actor: &Actor, app_id: &str) -> Result<()> {
        let record = self.webhook(actor, app_id).await?;
        self.write(vec![ControlWrite::Delete {
            kind: kind::WEBHOOK.into(),
            id: record.app_id,
        }])
        .await?;
        Ok(())
    }

    /// The delete operation for the app's webhook, if it has one (deleting
    /// the app deletes it too).
    pub(super) async fn delete_webhook_op(&self, app_id: &str) -> Result<Option<ControlWrite>> {
        Ok(self
            .store
            .get(kind::WEBHOOK, app_id)
            .await?
            .map(|_| ControlWrite::Delete {
                kind: kind::WEBHOOK.into(),
                id: app_id.to_owned(),
            }))
    }

    /// Puts each app's webhook, secret opened, into the snapshot's apps.
    pub(super) async fn add_webhooks(
        &self,
        apps: &mut std::collections::BTreeMap<String, AppConfig>,
    ) -> Result<()> {
        for rec in self.store.list(kind::WEBHOOK, None).await? {
            let hook: WebhookRecord = from_record(&rec)?;
            if let Some(app) = apps.get_mut(&hook.app_id) {
                app.webhook = Some(WebhookConfig {
                    url: hook.url,
                    events: hook.events,
                    timeout_ms: hook.timeout_ms,
                    fail_mode: hook.fail_mode,
                    secret: self.keyring.open(&hook.sealed_secret)?,
                });
            }
        }
        Ok(())
    }

    fn outbox(&self) -> Result<&std::sync::Arc<dyn confab_store::WebhookOutbox>> {
        self.webhook_outbox.as_ref().ok_or_else(|| {
            ControlError::new(
                "unavailable",
                "this control plane does not reach the webhook outbox of the data plane",
            )
        })
    }

    pub(super) async fn visible_app(&self, actor: &Actor, app_id: &str) -> Result<AppId> {
        let app = self.app(actor, app_id).await?;
        AppId::parse(&app.app_id).map_err(|e| ControlError::internal(e.to_string()))
    }

    /// The app's newest delivery attempts, newest first.
    pub async fn webhook_deliveries(
        &self,
        actor: &Actor,
        app_id: &str,
        limit: u32,
    ) -> Result<Vec<WebhookAttempt>> {
        let app = self.visible_app(actor, app_id).await?;
        Ok(self
            .outbox()?
            .attempts(&app, limit.clamp(1, MAX_LISTED))
            .await?)
    }

    /// The app's dead letters, newest first.
    pub async fn webhook_dead_letters(
        &self,
        actor: &Actor,
        app_id: &str,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>> {
        let app = self.visible_app(actor, app_id).await?;
        Ok(self
            .outbox()?
            .dead_letters(&app, limit.clamp(1, MAX_LISTED))
            .await?)
    }

    /// Puts a dead letter back in the outbox (same event id, attempts reset).
    pub async fn redeliver_webhook(
        &self,
        actor: &Actor,
        app_id: &str,
        event_id: &str,
    ) -> Result<()> {
        let app = self.visible_app(actor, app_id).await?;
        if self
            .outbox()?
            .redeliver(&app, event_id, confab_model::now_ms())
            .await?
        {
            Ok(())
        } else {
            Err(ControlError::not_found(format!(
                "app {app_id} has no dead letter {event_id:?}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert_eq!(
            validate_url(" https://hooks.example.com/confab ").unwrap(),
            "https://hooks.example.com/confab"
        );
        assert!(validate_url("http://127.0.0.1:9000/x?y=1").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "https:///path",
            "http://user:pw@host/",
            "https://a b",
            "hooks.example.com",
        ] {
            assert!(validate_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_long_and_distinct() {
        let (a, b) = (new_webhook_secret(), new_webhook_secret());
        assert!(a.starts_with("whsec_") && a.len() == 6 + 64);
        assert_ne!(a, b);
    }
}
