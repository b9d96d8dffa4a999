//! Firebase Cloud Messaging, HTTP v1 API.
//!
//! Auth: an OAuth 2.0 access token obtained with the service account's key
//! (JWT bearer grant, RFC 7523: an RS256 JWT with `iss` = client email,
//! `scope` = firebase.messaging, `aud` = token URI, one hour), cached until
//! shortly before it expires. Send: `POST /v1/projects/{project}/messages:send`.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::http::{Body, HttpClient, Reply};
use crate::providers::token::{AuthError, TokenCache};
use crate::providers::{
    Endpoints, by_status, check_path_segment, header, oauth, transport_retry, ttl_secs,
};
use crate::{Outcome, Provider, PushError, PushMessage, Vendor};

const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

#[derive(Deserialize)]
struct ServiceAccount {
    project_id: String,
    client_email: String,
    private_key: String,
    #[serde(default)]
    token_uri: Option<String>,
}

#[derive(Serialize)]
struct GrantClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

pub(crate) struct Fcm {
    client: HttpClient,
    send_url: String,
    oauth_url: String,
    client_email: String,
    audience: String,
    key: EncodingKey,
    token: TokenCache,
}

impl Fcm {
    pub fn new(json: &str, endpoints: &Endpoints, client: HttpClient) -> Result<Fcm, PushError> {
        let v = Vendor::Fcm;
        let sa: ServiceAccount = serde_json::from_str(json)
            .map_err(|e| PushError::creds(v, format!("service account JSON: {e}")))?;
        check_path_segment(v, "project_id", &sa.project_id)?;
        if sa.client_email.is_empty() {
            return Err(PushError::creds(v, "client_email is empty"));
        }
        let key = EncodingKey::from_rsa_pem(sa.private_key.as_bytes())
            .map_err(|e| PushError::creds(v, format!("private_key is not an RSA PEM key: {e}")))?;
        let fcm = Fcm {
            client,
            send_url: format!(
                "{}/v1/projects/{}/messages:send",
                endpoints.fcm, sa.project_id
            ),
            oauth_url: endpoints.fcm_oauth.clone(),
            client_email: sa.client_email,
            audience: sa.token_uri.unwrap_or_else(|| DEFAULT_TOKEN_URI.into()),
            key,
            token: TokenCache::default(),
        };
        fcm.assertion().map_err(|e| PushError::creds(v, e))?;
        Ok(fcm)
    }

    /// The signed JWT the token endpoint exchanges for an access token.
    fn assertion(&self) -> Result<String, String> {
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = GrantClaims {
            iss: &self.client_email,
            scope: SCOPE,
            aud: &self.audience,
            iat,
            exp: iat + 3600,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| format!("signing the grant JWT: {e}"))
    }

    async fn access_token(&self) -> Result<std::sync::Arc<str>, AuthError> {
        self.token
            .get(|| async {
                let assertion = self.assertion().map_err(AuthError::Failed)?;
                oauth::fetch(
                    &self.client,
                    &self.oauth_url,
                    &[
                        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                        ("assertion", &assertion),
                    ],
                    "FCM OAuth",
                )
                .await
            })
            .await
    }

    fn body(message: &PushMessage) -> Vec<u8> {
        let mut android = json!({
            "priority": if message.high_priority { "HIGH" } else { "NORMAL" },
            "notification": {},
        });
        if let Some(c) = &message.collapse_id {
            android["collapse_key"] = c.clone().into();
        }
        if let Some(ttl) = ttl_secs(message.expires_at, 28 * 24 * 3600) {
            android["ttl"] = format!("{ttl}s").into();
        }
        if let Some(tag) = message.thread_id.as_ref().or(message.collapse_id.as_ref()) {
            android["notification"]["tag"] = tag.clone().into();
        }
        if let Some(badge) = message.badge {
            android["notification"]["notification_count"] = badge.into();
        }
        let mut aps = json!({"sound": "default"});
        if let Some(badge) = message.badge {
            aps["badge"] = badge.into();
        }
        if let Some(t) = &message.thread_id {
            aps["thread-id"] = t.clone().into();
        }
        let mut apns_headers =
            json!({"apns-priority": if message.high_priority { "10" } else { "5" }});
        if let Some(c) = &message.collapse_id {
            apns_headers["apns-collapse-id"] = c.clone().into();
        }
        let body = json!({
            "message": {
                "token": message.token,
                "notification": {"title": message.title, "body": message.body},
                "android": android,
                "apns": {"headers": apns_headers, "payload": {"aps": aps}},
                "data": message.data,
            }
        });
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

#[async_trait::async_trait]
impl Provider for Fcm {
    fn vendor(&self) -> Vendor {
        Vendor::Fcm
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
            // 401: the access token was revoked or expired early; fetch a
            // new one once, then give up (the key itself is bad).
            if reply.status == http::StatusCode::UNAUTHORIZED && attempt == 0 {
                self.token.invalidate(&token).await;
                continue;
            }
            return map_reply(&reply);
        }
        Outcome::Failed {
            reason: "FCM: unauthorized with a fresh access token".into(),
        }
    }
}

/// Reply mapping per "FCM error codes" (`google.firebase.fcm.v1.FcmError`).
pub(crate) fn map_reply(reply: &Reply) -> Outcome {
    if reply.status.is_success() {
        return Outcome::Sent;
    }
    let json = reply.json();
    let error = &json["error"];
    let status = error["status"].as_str().unwrap_or("");
    let details = error["details"].as_array().cloned().unwrap_or_default();
    let fcm_code = details
        .iter()
        .find_map(|d| d["errorCode"].as_str())
        .unwrap_or(status)
        .to_string();
    let about_token = details.iter().any(|d| {
        d["fieldViolations"]
            .as_array()
            .is_some_and(|v| v.iter().any(|f| f["field"] == "message.token"))
    }) || error["message"]
        .as_str()
        .is_some_and(|m| m.contains("registration token"));
    let reason = format!(
        "FCM {} {fcm_code}: {}",
        reply.status.as_u16(),
        error["message"].as_str().unwrap_or("")
    );
    match fcm_code.as_str() {
        "UNREGISTERED" => Outcome::DeadToken { reason },
        // The token belongs to another sender: it will never work for us.
        "SENDER_ID_MISMATCH" => Outcome::DeadToken { reason },
        "INVALID_ARGUMENT" if about_token => Outcome::DeadToken { reason },
        _ if reply.status == http::StatusCode::NOT_FOUND => Outcome::DeadToken { reason },
        "QUOTA_EXCEEDED" | "UNAVAILABLE" | "INTERNAL" => Outcome::Retry {
            after: reply.retry_after(),
            reason,
        },
        _ => match by_status(reply, "FCM") {
            Outcome::Failed { .. } => Outcome::Failed { reason },
            other => other,
        },
    }
}
