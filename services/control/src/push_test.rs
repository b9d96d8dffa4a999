//! A test push: one notification to one device token, sent synchronously
//! through the real provider adapter built from the app's stored
//! credentials, so a tenant admin sees at once whether the uploaded
//! credentials work and what the provider says about the token. Nothing is
//! queued, retried or dead-lettered: the outcome is the answer.
//!
//! The providers' endpoints are the process's (`CONFAB_PUSH_*`, the real
//! hosts by default), the same the push worker uses; tests install their
//! own builder ([`Control::set_push_builder`]) pointing at local fakes.

use std::sync::Arc;

use confab_push::{BuildProvider, Outcome, PushMessage, Vendor};
use serde::{Deserialize, Serialize};

use super::{Actor, Control};
use crate::error::{ControlError, Result};

/// What happened to a test push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TestPushStatus {
    /// The provider accepted the notification.
    Accepted,
    /// The provider refused it (a bad token, a payload it does not take...).
    Rejected,
    /// The provider says the token will never work again.
    TokenInvalid,
    /// The credentials cannot work: they do not build a client, or the
    /// provider refused them (HTTP 401/403).
    CredentialsInvalid,
    /// The app has no credentials for this vendor.
    NoCredentials,
    /// The provider could not be reached or asked to try later.
    Unavailable,
}

/// The answer of a test push.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"vendor": "xiaomi", "status": "rejected", "reason": "Xiaomi HTTP 200 code 20301: invalid registration id"}))]
pub struct TestPushOutcome {
    /// `apns`, `fcm`, `huawei`, `xiaomi`, `oppo`, `vivo` or `honor`.
    #[schema(value_type = String, example = "xiaomi")]
    pub vendor: Vendor,
    pub status: TestPushStatus,
    /// What the provider (or the adapter) said; absent when accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Whether a permanent failure is the provider refusing the credentials:
/// the adapters put the HTTP status into the reason.
fn refuses_credentials(reason: &str) -> bool {
    reason.contains("HTTP 401") || reason.contains("HTTP 403")
}

/// Maps a provider's outcome onto what the console shows.
pub fn classify(outcome: Outcome) -> (TestPushStatus, Option<String>) {
    match outcome {
        Outcome::Sent => (TestPushStatus::Accepted, None),
        Outcome::DeadToken { reason } => (TestPushStatus::TokenInvalid, Some(reason)),
        Outcome::Failed { reason } if refuses_credentials(&reason) => {
            (TestPushStatus::CredentialsInvalid, Some(reason))
        }
        Outcome::Failed { reason } => (TestPushStatus::Rejected, Some(reason)),
        Outcome::Retry { reason, .. } => (TestPushStatus::Unavailable, Some(reason)),
    }
}

impl Control {
    /// Builds providers for test pushes with `build` instead of from the
    /// `CONFAB_PUSH_*` endpoints (tests; a server that configures its
    /// endpoints otherwise).
    pub fn set_push_builder(&self, build: BuildProvider) {
        if let Ok(mut slot) = self.push_builder.write() {
            *slot = Some(build);
        }
    }

    fn push_builder(&self) -> Result<BuildProvider> {
        if let Some(b) = self.push_builder.read().ok().and_then(|b| b.clone()) {
            return Ok(b);
        }
        let endpoints = confab_push::Endpoints::from_env().map_err(|e| {
            ControlError::internal(format!("push provider endpoints (CONFAB_PUSH_*): {e}"))
        })?;
        Ok(Arc::new(move |c: &confab_push::Credentials| {
            confab_push::build_provider(c, &endpoints).map_err(|e| e.to_string())
        }))
    }

    /// Sends one test notification to `token` with the app's `vendor`
    /// credentials and says what the provider answered.
    #[tracing::instrument(skip(self, actor, token, title, body))]
    pub async fn test_push(
        &self,
        actor: &Actor,
        app_id: &str,
        vendor: Vendor,
        token: &str,
        title: &str,
        body: &str,
    ) -> Result<TestPushOutcome> {
        let app = self.app(actor, app_id).await?;
        let token = token.trim();
        if token.is_empty() || token.len() > 4096 {
            return Err(ControlError::bad_request(
                "token must be the device's push token (1 to 4096 characters)",
            ));
        }
        let done = |status, reason| {
            Ok(TestPushOutcome {
                vendor,
                status,
                reason,
            })
        };
        let Some(stored) = self.open_push_credentials(&app.app_id, vendor).await? else {
            return done(
                TestPushStatus::NoCredentials,
                Some(format!(
                    "the app has no {vendor} credentials: upload them first"
                )),
            );
        };
        let provider = match (self.push_builder()?)(&stored.credentials) {
            Ok(p) => p,
            Err(why) => return done(TestPushStatus::CredentialsInvalid, Some(why)),
        };
        let message = PushMessage {
            id: uuid_v4(),
            token: token.to_owned(),
            // Empty: the adapters use the credentials' topic / package.
            bundle: String::new(),
            title: title.to_owned(),
            body: body.to_owned(),
            badge: None,
            collapse_id: None,
            thread_id: None,
            data: [("confab_test".to_owned(), "1".to_owned())].into(),
            expires_at: None,
            high_priority: true,
        };
        let (status, reason) = classify(provider.send(&message).await);
        tracing::info!(?status, "test push");
        done(status, reason)
    }
}

/// A random UUID (version 4) in canonical form: providers that dedupe by
/// message id (APNs) want one.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_onto_what_the_console_shows() {
        assert_eq!(classify(Outcome::Sent).0, TestPushStatus::Accepted);
        let failed = |r: &str| {
            classify(Outcome::Failed {
                reason: r.to_owned(),
            })
            .0
        };
        assert_eq!(
            failed("Xiaomi HTTP 401 code : bad key"),
            TestPushStatus::CredentialsInvalid
        );
        assert_eq!(
            failed("FCM: HTTP 403: denied"),
            TestPushStatus::CredentialsInvalid
        );
        assert_eq!(
            failed("Xiaomi HTTP 200 code 10017: bad payload"),
            TestPushStatus::Rejected
        );
        assert_eq!(
            classify(Outcome::DeadToken {
                reason: "gone".into()
            })
            .0,
            TestPushStatus::TokenInvalid
        );
        assert_eq!(
            classify(Outcome::Retry {
                after: None,
                reason: "503".into()
            })
            .0,
            TestPushStatus::Unavailable
        );
    }

    #[test]
    fn message_ids_are_uuids() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, uuid_v4());
    }
}
