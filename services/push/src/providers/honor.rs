//! Honor Push, server API v1 (Honor's platform keeps the shape and result
//! codes of Huawei Push Kit it split from).
//!
//! Auth: OAuth 2.0 client credentials (client id / client secret) at
//! `iam.developer.honor.com/auth/token`, cached for its `expires_in`.
//! Send: `POST /api/v1/{app_id}/sendMessage` with a bearer token and a
//! `timestamp` header (ms); success is body `code` 200.

use serde_json::json;

use crate::http::{Body, HttpClient};
use crate::providers::huawei::{Mapped, map_reply};
use crate::providers::token::{AuthError, TokenCache};
use crate::providers::{
    Endpoints, check_path_segment, data_json, header, non_empty, now_millis, oauth,
    transport_retry, ttl_secs,
};
use crate::{Outcome, Provider, PushError, PushMessage, Vendor};

pub(crate) struct Honor {
    client: HttpClient,
    send_url: String,
    oauth_url: String,
    client_id: String,
    client_secret: String,
    token: TokenCache,
}

impl Honor {
    pub fn new(
        app_id: &str,
        client_id: &str,
        client_secret: &str,
        endpoints: &Endpoints,
        client: HttpClient,
    ) -> Result<Honor, PushError> {
        check_path_segment(Vendor::Honor, "app_id", app_id)?;
        non_empty(Vendor::Honor, "client_id", client_id)?;
        non_empty(Vendor::Honor, "client_secret", client_secret)?;
        Ok(Honor {
            client,
            send_url: format!("{}/api/v1/{app_id}/sendMessage", endpoints.honor),
            oauth_url: endpoints.honor_oauth.clone(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
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
                        ("client_id", &self.client_id),
                        ("client_secret", &self.client_secret),
                    ],
                    "Honor OAuth",
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
            "clickAction": {"type": 3},
        });
        if let Some(tag) = message.collapse_id.as_ref().or(message.thread_id.as_ref()) {
            notification["tag"] = tag.clone().into();
        }
        let mut android = json!({"notification": notification});
        if let Some(ttl) = ttl_secs(message.expires_at, 15 * 24 * 3600) {
            android["ttl"] = format!("{ttl}s").into();
        }
        let body = json!({
            "data": data_json(message),
            "android": android,
            "token": [message.token],
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Provider for Honor {
    fn vendor(&self) -> Vendor {
        Vendor::Honor
    }

    async fn send(&self, message: &PushMessage) -> Outcome {
        let body = Self::body(message);
        for attempt in 0..2 {
            let token = match self.access_token().await {
                Ok(t) => t,
                Err(e) => return e.into_outcome(),
            };
            let headers = match (
                header("authorization", &format!("Bearer {token}")),
                header("timestamp", &now_millis().to_string()),
            ) {
                (Ok(a), Ok(t)) => [a, t],
                (Err(reason), _) | (_, Err(reason)) => return Outcome::Failed { reason },
            };
            let reply = match self
                .client
                .post(&self.send_url, &headers, Body::Json(body.clone()))
                .await
            {
                Ok(r) => r,
                Err(e) => return transport_retry(e),
            };
            match map_reply(&reply, "Honor", "200") {
                Mapped::AuthExpired if attempt == 0 => self.token.invalidate(&token).await,
                Mapped::AuthExpired => {
                    return Outcome::Failed {
                        reason: "Honor: access token rejected right after being issued".into(),
                    };
                }
                Mapped::Done(o) => return o,
            }
        }
        Outcome::Failed {
            reason: "Honor: authentication retry exhausted".into(),
        }
    }
}
