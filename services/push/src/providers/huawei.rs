//! Huawei Push Kit, server API v1.
//!
//! Auth: OAuth 2.0 client credentials (app id / app secret) at
//! `oauth-login.cloud.huawei.com/oauth2/v3/token`, cached for its
//! `expires_in` (an hour). Send: `POST /v1/{app_id}/messages:send` with a
//! bearer token; the result is in the body's `code` (`80000000` = success).

use serde_json::json;

use crate::http::{Body, HttpClient, Reply};
use crate::providers::token::{AuthError, TokenCache};
use crate::providers::{
    Endpoints, by_status, check_path_segment, data_json, header, non_empty, oauth, transport_retry,
    ttl_secs,
};
use crate::{Outcome, Provider, PushError, PushMessage, Vendor};

pub(crate) struct Huawei {
    client: HttpClient,
    send_url: String,
    oauth_url: String,
    app_id: String,
    app_secret: String,
    token: TokenCache,
}

impl Huawei {
    pub fn new(
        app_id: &str,
        app_secret: &str,
        endpoints: &Endpoints,
        client: HttpClient,
    ) -> Result<Huawei, PushError> {
        check_path_segment(Vendor::Huawei, "app_id", app_id)?;
        non_empty(Vendor::Huawei, "app_secret", app_secret)?;
        Ok(Huawei {
            client,
            send_url: format!("{}/v1/{app_id}/messages:send", endpoints.huawei),
            oauth_url: endpoints.huawei_oauth.clone(),
            app_id: app_id.into(),
            app_secret: app_secret.into(),
            token: TokenCache::default(),
        })
    }

    async fn access_token(&self) -> Result<std::sync::Arc<str>, AuthError> {
        self.token
            .get(|| async {
                oauth::fetch(
                    &self.client,
                    &self.oauth_url,
                    &[
                        ("grant_type", "client_credentials"),
                        ("client_id", &self.app_id),
                        ("client_secret", &self.app_secret),
                    ],
                    "Huawei OAuth",
                )
                .await
            })
            .await
    }

    fn body(message: &PushMessage) -> Vec<u8> {
        let mut notification = json!({
            "title": message.title,
            "body": message.body,
            // 3 = open the app's launcher activity.
            "click_action": {"type": 3},
        });
        // Same tag = the newer notification replaces the older one.
        if let Some(tag) = message.collapse_id.as_ref().or(message.thread_id.as_ref()) {
            notification["tag"] = tag.clone().into();
        }
        let mut android = json!({
            "urgency": if message.high_priority { "HIGH" } else { "NORMAL" },
            "notification": notification,
        });
        if message.high_priority {
            // Instant messages may use the high-priority IM category.
            android["category"] = "IM".into();
        }
        if let Some(ttl) = ttl_secs(message.expires_at, 15 * 24 * 3600) {
            android["ttl"] = format!("{ttl}s").into();
        }
        let body = json!({
            "validate_only": false,
            "message": {
                "data": data_json(message),
                "android": android,
                "token": [message.token],
            }
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Provider for Huawei {
    fn vendor(&self) -> Vendor {
        Vendor::Huawei
    }

    async fn send(&self, message: &PushMessage) -> Outcome {
        let body = Self::body(message);
        for attempt in 0..2 {
            let token = match self.access_token().await {
                Ok(t) => t,
                Err(e) => return e.into_outcome(),
            };
            let headers = match header("authorization", &format!("Bearer {token}")) {
                Ok(h) => [h],
                Err(reason) => return Outcome::Failed { reason },
            };
            let reply = match self
                .client
                .post(&self.send_url, &headers, Body::Json(body.clone()))
                .await
            {
                Ok(r) => r,
                Err(e) => return transport_retry(e),
            };
            match map_reply(&reply, "Huawei", "80000000") {
                Mapped::AuthExpired if attempt == 0 => self.token.invalidate(&token).await,
                Mapped::AuthExpired => {
                    return Outcome::Failed {
                        reason: "Huawei: access token rejected right after being issued".into(),
                    };
                }
                Mapped::Done(o) => return o,
            }
        }
        unreachable_outcome()
    }
}

pub(crate) enum Mapped {
    Done(Outcome),
    AuthExpired,
}

fn unreachable_outcome() -> Outcome {
    Outcome::Failed {
        reason: "authentication retry exhausted".into(),
    }
}

/// Reply mapping shared by Huawei and Honor (Honor's push API keeps Huawei's
/// result codes): `80100000` (some tokens failed; we send one) and
/// `80300007` (all tokens invalid) mean a dead token, `80200001` /
/// `80200003` (OAuth failed / expired) a stale access token, HTTP 503 flow
/// control, `81000001` an internal error worth retrying.
pub(crate) fn map_reply(reply: &Reply, vendor: &str, success: &str) -> Mapped {
    let json = reply.json();
    let code = match &json["code"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let msg = json["msg"]
        .as_str()
        .or(json["message"].as_str())
        .unwrap_or("");
    let reason = format!("{vendor} HTTP {} code {code}: {msg}", reply.status.as_u16());
    if reply.status.is_success() && code == success {
        return Mapped::Done(Outcome::Sent);
    }
    match code.as_str() {
        "80100000" | "80300007" => Mapped::Done(Outcome::DeadToken { reason }),
        "80200001" | "80200003" => Mapped::AuthExpired,
        "81000001" => Mapped::Done(Outcome::Retry {
            after: reply.retry_after(),
            reason,
        }),
        _ if reply.status == http::StatusCode::UNAUTHORIZED => Mapped::AuthExpired,
        _ => Mapped::Done(match by_status(reply, vendor) {
            Outcome::Failed { .. } => Outcome::Failed { reason },
            Outcome::Retry { after, .. } => Outcome::Retry { after, reason },
            other => other,
        }),
    }
}
