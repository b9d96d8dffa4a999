//! Apple Push Notification service, provider API with token-based auth.
//!
//! One HTTP/2 connection to `api.push.apple.com` (or the sandbox) carries
//! every request (`POST /3/device/<token>`), authenticated by an ES256 JWT
//! signed with the app's `.p8` key. Apple rejects a token older than an
//! hour and throttles one refreshed more often than every 20 minutes
//! (`TooManyProviderTokenUpdates`), so the JWT is reused for 50 minutes and
//! never replaced within 20, even when APNs calls it expired.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::http::{Body, H2Connection, Reply};
use crate::providers::{header, non_empty, transport_retry};
use crate::{Outcome, Provider, PushError, PushMessage, Vendor};

/// Reuse a JWT this long (Apple: "no more than once every 20 minutes and
/// no less than once every 60 minutes").
const JWT_REUSE: Duration = Duration::from_secs(50 * 60);
/// Never sign a new JWT sooner than this after the last one.
const JWT_MIN_AGE: Duration = Duration::from_secs(20 * 60);

pub(crate) struct Apns {
    conn: H2Connection,
    key: EncodingKey,
    key_id: String,
    team_id: String,
    topic: String,
    jwt: Mutex<Option<Jwt>>,
}

#[derive(Clone)]
struct Jwt {
    value: String,
    issued: Instant,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: u64,
}

impl Apns {
    pub fn new(
        key_p8: &str,
        key_id: &str,
        team_id: &str,
        topic: &str,
        base: &str,
        extra_ca_pem: Option<&str>,
        timeout: Duration,
    ) -> Result<Apns, PushError> {
        let v = Vendor::Apns;
        non_empty(v, "key_id", key_id)?;
        non_empty(v, "team_id", team_id)?;
        non_empty(v, "topic", topic)?;
        let key = EncodingKey::from_ec_pem(key_p8.as_bytes()).map_err(|e| {
            PushError::creds(v, format!("key_p8 is not a PKCS#8 EC P-256 PEM key: {e}"))
        })?;
        let apns = Apns {
            conn: H2Connection::new(base, extra_ca_pem, timeout)?,
            key,
            key_id: key_id.to_string(),
            team_id: team_id.to_string(),
            topic: topic.to_string(),
            jwt: Mutex::new(None),
        };
        // Sign once now: a key that parses but cannot sign (wrong curve)
        // is caught at upload, not at the first push.
        apns.sign().map_err(|e| PushError::creds(v, e))?;
        Ok(apns)
    }

    fn sign(&self) -> Result<String, String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        header.typ = None;
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let claims = Claims {
            iss: &self.team_id,
            iat,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("signing the JWT: {e}"))
    }

    /// The JWT to send: the cached one while younger than [`JWT_REUSE`].
    fn current_jwt(&self, now: Instant) -> Result<String, String> {
        let mut slot = self.jwt.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(j) = slot
            .as_ref()
            .filter(|j| now.duration_since(j.issued) < JWT_REUSE)
        {
            return Ok(j.value.clone());
        }
        let value = self.sign()?;
        *slot = Some(Jwt {
            value: value.clone(),
            issued: now,
        });
        Ok(value)
    }

    /// APNs called `used` expired. Replaces it if it is at least 20 minutes
    /// old; otherwise keeps it and says how long until it may be replaced.
    fn expire_jwt(&self, used: &str, now: Instant) -> Result<(), Duration> {
        let mut slot = self.jwt.lock().unwrap_or_else(|p| p.into_inner());
        match slot.as_ref() {
            Some(j) if j.value == used => {
                let age = now.duration_since(j.issued);
                if age < JWT_MIN_AGE {
                    return Err(JWT_MIN_AGE - age);
                }
                *slot = None;
                Ok(())
            }
            // Already replaced by a concurrent send.
            _ => Ok(()),
        }
    }

    fn payload(message: &PushMessage) -> Vec<u8> {
        let mut aps = Map::new();
        aps.insert(
            "alert".into(),
            json!({"title": message.title, "body": message.body}),
        );
        if let Some(badge) = message.badge {
            aps.insert("badge".into(), badge.into());
        }
        aps.insert("sound".into(), "default".into());
        if let Some(thread) = &message.thread_id {
            aps.insert("thread-id".into(), thread.clone().into());
        }
        let mut root = Map::new();
        // Custom keys sit beside `aps`, which they must not replace.
        for (k, v) in &message.data {
            if k != "aps" {
                root.insert(k.clone(), Value::String(v.clone()));
            }
        }
        root.insert("aps".into(), Value::Object(aps));
        serde_json::to_vec(&Value::Object(root)).unwrap_or_default()
    }

    async fn post(&self, message: &PushMessage, jwt: &str) -> Result<Reply, String> {
        let mut headers = vec![
            header("authorization", &format!("bearer {jwt}"))?,
            header(
                "apns-topic",
                if message.bundle.is_empty() {
                    &self.topic
                } else {
                    &message.bundle
                },
            )?,
            header("apns-push-type", "alert")?,
            header(
                "apns-priority",
                if message.high_priority { "10" } else { "5" },
            )?,
        ];
        if is_canonical_uuid(&message.id) {
            headers.push(header("apns-id", &message.id)?);
        }
        if let Some(at) = message.expires_at {
            headers.push(header("apns-expiration", &at.max(0).to_string())?);
        }
        if let Some(c) = &message.collapse_id {
            headers.push(header("apns-collapse-id", c)?);
        }
        let path = format!("/3/device/{}", message.token);
        self.conn
            .post(&path, &headers, Body::Json(Self::payload(message)))
            .await
    }
}

#[async_trait::async_trait]
impl Provider for Apns {
    fn vendor(&self) -> Vendor {
        Vendor::Apns
    }

    async fn send(&self, message: &PushMessage) -> Outcome {
        // Device tokens are hex; anything else would at best be rejected
        // and at worst rewrite the request path.
        if message.token.is_empty() || !message.token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Outcome::DeadToken {
                reason: "malformed APNs device token (not hex)".into(),
            };
        }
        let mut refreshed = false;
        loop {
            let jwt = match self.current_jwt(Instant::now()) {
                Ok(j) => j,
                Err(reason) => return Outcome::Failed { reason },
            };
            let reply = match self.post(message, &jwt).await {
                Ok(r) => r,
                Err(e) => return transport_retry(e),
            };
            match map_reply(&reply) {
                Mapped::ExpiredProviderToken if !refreshed => {
                    match self.expire_jwt(&jwt, Instant::now()) {
                        Ok(()) => refreshed = true,
                        Err(wait) => {
                            return Outcome::Retry {
                                after: Some(wait),
                                reason: "APNs: ExpiredProviderToken (JWT younger than 20 min kept)"
                                    .into(),
                            };
                        }
                    }
                }
                Mapped::ExpiredProviderToken => {
                    return Outcome::Retry {
                        after: reply.retry_after(),
                        reason: "APNs: ExpiredProviderToken after a fresh JWT".into(),
                    };
                }
                Mapped::Done(outcome) => return outcome,
            }
        }
    }
}

pub(crate) enum Mapped {
    Done(Outcome),
    ExpiredProviderToken,
}

/// Reply mapping per Apple's "Handling notification responses from APNs".
pub(crate) fn map_reply(reply: &Reply) -> Mapped {
    let status = reply.status.as_u16();
    if status == 200 {
        return Mapped::Done(Outcome::Sent);
    }
    let json = reply.json();
    let apns_reason = json["reason"].as_str().unwrap_or("").to_string();
    let reason = format!("APNs {status} {apns_reason}");
    let outcome = match (status, apns_reason.as_str()) {
        (410, _) => Outcome::DeadToken { reason },
        (400, "BadDeviceToken" | "DeviceTokenNotForTopic") => Outcome::DeadToken { reason },
        (403, "ExpiredProviderToken") => return Mapped::ExpiredProviderToken,
        (429, _) | (500..=599, _) => Outcome::Retry {
            after: reply.retry_after(),
            reason,
        },
        // 400 payload/header errors, 403 bad credentials
        // (InvalidProviderToken, MissingProviderToken), 404/405/413: a
        // retry would get the same answer.
        _ => Outcome::Failed { reason },
    };
    Mapped::Done(outcome)
}

/// `apns-id` must be a canonical UUID (8-4-4-4-12 hex) or APNs rejects the
/// push with `BadMessageId`; an id in another form is left out rather than
/// losing the push.
fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A throwaway P-256 key generated for this test only (not a credential).
    fn key_pem() -> String {
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .unwrap()
            .serialize_pem()
    }

    fn apns() -> Apns {
        Apns::new(
            &key_pem(),
            "KEY1234567",
            "TEAM123456",
            "com.example.app",
            "https://127.0.0.1:1",
            None,
            Duration::from_secs(1),
        )
        .unwrap()
    }

    #[test]
    fn jwt_is_reused_for_50_minutes_then_replaced() {
        let a = apns();
        let t0 = Instant::now();
        let first = a.current_jwt(t0).unwrap();
        assert_eq!(
            a.current_jwt(t0 + Duration::from_secs(49 * 60)).unwrap(),
            first
        );
        // Shift the issue time back instead of waiting 50 minutes.
        a.jwt.lock().unwrap().as_mut().unwrap().issued = t0 - Duration::from_secs(51 * 60);
        assert_ne!(a.current_jwt(t0).unwrap(), first);
    }

    #[test]
    fn expired_provider_token_is_not_replaced_within_20_minutes() {
        let a = apns();
        let t0 = Instant::now();
        let first = a.current_jwt(t0).unwrap();
        let wait = a
            .expire_jwt(&first, t0 + Duration::from_secs(5 * 60))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(15 * 60));
        assert_eq!(
            a.current_jwt(t0 + Duration::from_secs(5 * 60)).unwrap(),
            first
        );
        // Once 20 minutes old it may be replaced.
        a.jwt.lock().unwrap().as_mut().unwrap().issued = t0 - Duration::from_secs(21 * 60);
        a.expire_jwt(&first, t0).unwrap();
        assert_ne!(a.current_jwt(t0).unwrap(), first);
    }

    #[test]
    fn unparsable_key_is_a_credentials_error() {
        let err = Apns::new(
            "not a key",
            "K",
            "T",
            "com.example",
            "https://127.0.0.1:1",
            None,
            Duration::from_secs(1),
        )
        .err()
        .unwrap();
        assert!(
            matches!(
                err,
                PushError::Credentials {
                    vendor: Vendor::Apns,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn apns_id_only_when_canonical_uuid() {
        assert!(is_canonical_uuid("123e4567-e89b-12d3-a456-426614174000"));
        assert!(!is_canonical_uuid("01HZX3KQ5V8Y6W2N4M7P9R0S1T"));
    }
}
