//! OPPO PUSH (HeyTap), server API v1.
//!
//! Auth: `POST /server/v1/auth` with `app_key`, `timestamp` (ms) and
//! `sign` = hex SHA-256 of app_key + timestamp + master_secret, answered by
//! an `auth_token` valid 24 hours (cached 23). Send: form
//! `POST /server/v1/message/notification/unicast` with the token in the
//! `auth_token` header and the notification as the `message` JSON field.
//! Every reply carries `code` (0 = success).

use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::http::{Body, HttpClient, Reply};
use crate::providers::token::{AuthError, TokenCache};
use crate::providers::{
    Endpoints, by_status, data_json, header, non_empty, now_millis, transport_retry, ttl_secs,
};
use crate::{Outcome, Provider, PushError, PushMessage, Vendor};

const TOKEN_LIFETIME: Duration = Duration::from_secs(23 * 3600);
/// 11 = Invalid AuthToken.
const AUTH_EXPIRED: i64 = 11;
/// 10000 = invalid registration id.
const DEAD_CODES: &[i64] = &[10000];
/// -1 service unavailable, -2 / -3 flow control, 33 daily quota exceeded.
const RETRY_CODES: &[i64] = &[-1, -2, -3, 33];

pub(crate) struct Oppo {
    client: HttpClient,
    base: String,
    app_key: String,
    master_secret: String,
    token: TokenCache,
}

impl Oppo {
    pub fn new(
        app_key: &str,
        master_secret: &str,
        endpoints: &Endpoints,
        client: HttpClient,
    ) -> Result<Oppo, PushError> {
        non_empty(Vendor::Oppo, "app_key", app_key)?;
        non_empty(Vendor::Oppo, "master_secret", master_secret)?;
        Ok(Oppo {
            client,
            base: endpoints.oppo.clone(),
            app_key: app_key.into(),
            master_secret: master_secret.into(),
            token: TokenCache::default(),
        })
    }

    async fn auth_token(&self) -> Result<std::sync::Arc<str>, AuthError> {
        self.token
            .get(|| async {
                let timestamp = now_millis().to_string();
                let sign = hex::encode(Sha256::digest(
                    format!("{}{timestamp}{}", self.app_key, self.master_secret).as_bytes(),
                ));
                let form = serde_urlencoded::to_string([
                    ("app_key", self.app_key.as_str()),
                    ("timestamp", &timestamp),
                    ("sign", &sign),
                ])
                .unwrap_or_default();
                let url = format!("{}/server/v1/auth", self.base);
                let reply = self
                    .client
                    .post(&url, &[], Body::Form(form))
                    .await
                    .map_err(|e| AuthError::Retry(transport_retry(format!("OPPO auth: {e}"))))?;
                let json = reply.json();
                match json["data"]["auth_token"].as_str() {
                    Some(t) if json["code"] == 0 && !t.is_empty() => {
                        Ok((t.to_string(), TOKEN_LIFETIME))
                    }
                    _ => Err(match map_reply(&reply, "OPPO auth") {
                        o @ Outcome::Retry { .. } => AuthError::Retry(o),
                        o => AuthError::Failed(format!("{o:?}")),
                    }),
                }
            })
            .await
    }

    fn form(message: &PushMessage) -> String {
        let mut notification = json!({
            "title": message.title,
            "content": message.body,
            // 0 = open the app's launcher activity.
            "click_action_type": 0,
            "action_parameters": data_json(message),
            "off_line": true,
        });
        if let Some(ttl) = ttl_secs(message.expires_at, 10 * 24 * 3600) {
            notification["off_line_ttl"] = ttl.into();
        }
        let body = json!({
            // 2 = target_value is a registration id.
            "target_type": 2,
            "target_value": message.token,
            "notification": notification,
        });
        serde_urlencoded::to_string([("message", body.to_string())]).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Provider for Oppo {
    fn vendor(&self) -> Vendor {
        Vendor::Oppo
    }

    async fn send(&self, message: &PushMessage) -> Outcome {
        let url = format!("{}/server/v1/message/notification/unicast", self.base);
        for attempt in 0..2 {
            let token = match self.auth_token().await {
                Ok(t) => t,
                Err(e) => return e.into_outcome(),
            };
            let headers = match header("auth_token", &token) {
                Ok(h) => [h],
                Err(reason) => return Outcome::Failed { reason },
            };
            let reply = match self
                .client
                .post(&url, &headers, Body::Form(Self::form(message)))
                .await
            {
                Ok(r) => r,
                Err(e) => return transport_retry(e),
            };
            if reply.json()["code"] == AUTH_EXPIRED && attempt == 0 {
                self.token.invalidate(&token).await;
                continue;
            }
            return map_reply(&reply, "OPPO");
        }
        Outcome::Failed {
            reason: "OPPO: auth_token rejected right after being issued".into(),
        }
    }
}

pub(crate) fn map_reply(reply: &Reply, what: &str) -> Outcome {
    let json = reply.json();
    let code = json["code"].as_i64();
    if reply.status.is_success() && code == Some(0) {
        return Outcome::Sent;
    }
    let reason = format!(
        "{what} HTTP {} code {}: {}",
        reply.status.as_u16(),
        code.map(|c| c.to_string()).unwrap_or_default(),
        json["message"].as_str().unwrap_or("")
    );
    match code {
        Some(c) if DEAD_CODES.contains(&c) => Outcome::DeadToken { reason },
        Some(c) if RETRY_CODES.contains(&c) => Outcome::Retry {
            after: reply.retry_after(),
            reason,
        },
        _ => match by_status(reply, what) {
            Outcome::Retry { after, .. } => Outcome::Retry { after, reason },
            _ => Outcome::Failed { reason },
        },
    }
}
