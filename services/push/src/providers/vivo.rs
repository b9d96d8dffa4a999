//! vivo push, server API.
//!
//! Auth: `POST /message/auth` with `appId`, `appKey`, `timestamp` (ms) and
//! `sign` = lower-case hex MD5 of appId + appKey + timestamp + appSecret,
//! answered by an `authToken` valid 24 hours (cached 23). Send:
//! `POST /message/send` (JSON) with the token in the `authToken` header.
//! Replies carry `result` (0 = success). `requestId` is the push's id, so a
//! repeat of the same job is deduplicated by vivo.

use std::time::Duration;

use md5::{Digest, Md5};
use serde_json::json;

use crate::http::{Body, HttpClient, Reply};
use crate::providers::token::{AuthError, TokenCache};
use crate::providers::{
    Endpoints, by_status, header, non_empty, now_millis, transport_retry, ttl_secs,
};
use crate::{Outcome, Provider, PushError, PushMessage, Vendor};

const TOKEN_LIFETIME: Duration = Duration::from_secs(23 * 3600);
/// 10000 = authToken invalid or expired.
const AUTH_EXPIRED: i64 = 10000;
/// 10302 = regId invalid / not of this app.
const DEAD_CODES: &[i64] = &[10302];
/// 10070 total quota exceeded, 10071 / 10072 rate limits, 10073 busy.
const RETRY_CODES: &[i64] = &[10070, 10071, 10072, 10073];

pub(crate) struct Vivo {
    client: HttpClient,
    base: String,
    app_id: String,
    app_key: String,
    app_secret: String,
    token: TokenCache,
}

impl Vivo {
    pub fn new(
        app_id: &str,
        app_key: &str,
        app_secret: &str,
        endpoints: &Endpoints,
        client: HttpClient,
    ) -> Result<Vivo, PushError> {
        non_empty(Vendor::Vivo, "app_id", app_id)?;
        non_empty(Vendor::Vivo, "app_key", app_key)?;
        non_empty(Vendor::Vivo, "app_secret", app_secret)?;
        Ok(Vivo {
            client,
            base: endpoints.vivo.clone(),
            app_id: app_id.into(),
            app_key: app_key.into(),
            app_secret: app_secret.into(),
            token: TokenCache::default(),
        })
    }

    async fn auth_token(&self) -> Result<std::sync::Arc<str>, AuthError> {
        self.token
            .get(|| async {
                let timestamp = now_millis();
                let sign = hex::encode(Md5::digest(
                    format!(
                        "{}{}{timestamp}{}",
                        self.app_id, self.app_key, self.app_secret
                    )
                    .as_bytes(),
                ));
                let body = json!({
                    "appId": self.app_id,
                    "appKey": self.app_key,
                    "timestamp": timestamp as u64,
                    "sign": sign,
                });
                let url = format!("{}/message/auth", self.base);
                let reply = self
                    .client
                    .post(&url, &[], Body::Json(body.to_string().into_bytes()))
                    .await
                    .map_err(|e| AuthError::Retry(transport_retry(format!("vivo auth: {e}"))))?;
                let json = reply.json();
                match json["authToken"].as_str() {
                    Some(t) if json["result"] == 0 && !t.is_empty() => {
                        Ok((t.to_string(), TOKEN_LIFETIME))
                    }
                    _ => Err(match map_reply(&reply, "vivo auth") {
                        o @ Outcome::Retry { .. } => AuthError::Retry(o),
                        o => AuthError::Failed(format!("{o:?}")),
                    }),
                }
            })
            .await
    }

    fn body(message: &PushMessage) -> Vec<u8> {
        let mut body = json!({
            "regId": message.token,
            // 4 = sound and vibration.
            "notifyType": 4,
            "title": message.title,
            "content": message.body,
            // 1 = open the app.
            "skipType": 1,
            "networkType": -1,
            // 1 = system message (instant messages qualify), 0 = operational.
            "classification": if message.high_priority { 1 } else { 0 },
            "requestId": message.id,
            "clientCustomMap": message.data,
        });
        if let Some(ttl) = ttl_secs(message.expires_at, 7 * 24 * 3600) {
            // vivo accepts 60 s .. 7 days.
            body["timeToLive"] = ttl.max(60).into();
        }
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Provider for Vivo {
    fn vendor(&self) -> Vendor {
        Vendor::Vivo
    }

    async fn send(&self, message: &PushMessage) -> Outcome {
        let url = format!("{}/message/send", self.base);
        for attempt in 0..2 {
            let token = match self.auth_token().await {
                Ok(t) => t,
                Err(e) => return e.into_outcome(),
            };
            let headers = match header("authtoken", &token) {
                Ok(h) => [h],
                Err(reason) => return Outcome::Failed { reason },
            };
            let reply = match self
                .client
                .post(&url, &headers, Body::Json(Self::body(message)))
                .await
            {
                Ok(r) => r,
                Err(e) => return transport_retry(e),
            };
            if reply.json()["result"] == AUTH_EXPIRED && attempt == 0 {
                self.token.invalidate(&token).await;
                continue;
            }
            return map_reply(&reply, "vivo");
        }
        Outcome::Failed {
            reason: "vivo: authToken rejected right after being issued".into(),
        }
    }
}

pub(crate) fn map_reply(reply: &Reply, what: &str) -> Outcome {
    let json = reply.json();
    let code = json["result"].as_i64();
    if reply.status.is_success() && code == Some(0) {
        return Outcome::Sent;
    }
    let reason = format!(
        "{what} HTTP {} result {}: {}",
        reply.status.as_u16(),
        code.map(|c| c.to_string()).unwrap_or_default(),
        json["desc"].as_str().unwrap_or("")
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
