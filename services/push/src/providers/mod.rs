//! The provider adapters, one module a vendor, all shaped alike:
//! credentials parsed once at build time, an auth token cached until shortly
//! before it expires, a request built from [`PushMessage`], and the reply
//! mapped onto an [`Outcome`]. The field mapping and reply codes of each are
//! tabled in docs/push.md ("Providers").
//!
//! Adapters never retry on their own beyond one re-authentication when the
//! provider says the cached token went stale; backoff is the worker's job.

mod apns;
mod endpoints;
mod fcm;
mod honor;
mod huawei;
mod oauth;
mod oppo;
mod token;
mod vivo;
mod xiaomi;

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderName, HeaderValue};

pub use endpoints::Endpoints;

use crate::http::{HttpClient, Reply};
use crate::{Credentials, Outcome, Provider, PushError, PushMessage, Vendor};

/// Builds the provider for one app's credentials. Fails when the
/// credentials cannot work (an unparsable key, a malformed id) or the
/// endpoints are unusable; never touches the network.
pub fn build_provider(
    creds: &Credentials,
    endpoints: &Endpoints,
) -> Result<Arc<dyn Provider>, PushError> {
    let ca = endpoints.extra_ca_pem.as_deref();
    let timeout = endpoints.timeout;
    let client = || HttpClient::new(ca, timeout);
    let provider: Arc<dyn Provider> =
        match creds {
            Credentials::Apns {
                key_p8,
                key_id,
                team_id,
                topic,
                sandbox,
            } => {
                let base = if *sandbox {
                    &endpoints.apns_sandbox
                } else {
                    &endpoints.apns
                };
                Arc::new(Instrumented(apns::Apns::new(
                    key_p8, key_id, team_id, topic, base, ca, timeout,
                )?))
            }
            Credentials::Fcm {
                service_account_json,
            } => Arc::new(Instrumented(fcm::Fcm::new(
                service_account_json,
                endpoints,
                client()?,
            )?)),
            Credentials::Huawei { app_id, app_secret } => Arc::new(Instrumented(
                huawei::Huawei::new(app_id, app_secret, endpoints, client()?)?,
            )),
            Credentials::Xiaomi {
                app_secret,
                package,
            } => Arc::new(Instrumented(xiaomi::Xiaomi::new(
                app_secret,
                package,
                endpoints,
                client()?,
            )?)),
            Credentials::Oppo {
                app_key,
                master_secret,
            } => Arc::new(Instrumented(oppo::Oppo::new(
                app_key,
                master_secret,
                endpoints,
                client()?,
            )?)),
            Credentials::Vivo {
                app_id,
                app_key,
                app_secret,
            } => Arc::new(Instrumented(vivo::Vivo::new(
                app_id,
                app_key,
                app_secret,
                endpoints,
                client()?,
            )?)),
            Credentials::Honor {
                app_id,
                client_id,
                client_secret,
            } => Arc::new(Instrumented(honor::Honor::new(
                app_id,
                client_id,
                client_secret,
                endpoints,
                client()?,
            )?)),
        };
    Ok(provider)
}

/// Adds what every adapter reports the same way: the latency histogram
/// `confab_push_provider_seconds{vendor}` and a debug line per send.
struct Instrumented<P>(P);

#[async_trait::async_trait]
impl<P: Provider> Provider for Instrumented<P> {
    fn vendor(&self) -> Vendor {
        self.0.vendor()
    }

    async fn send(&self, message: &PushMessage) -> Outcome {
        let vendor = self.0.vendor();
        let started = Instant::now();
        let outcome = self.0.send(message).await;
        let elapsed = started.elapsed();
        metrics::histogram!("confab_push_provider_seconds", "vendor" => vendor.as_str())
            .record(elapsed.as_secs_f64());
        tracing::debug!(%vendor, push_id = %message.id, ?outcome, ?elapsed, "push sent");
        outcome
    }
}

/// Ids that go into URL paths (project ids, app ids) must not be able to
/// change the path.
pub(crate) fn check_path_segment(vendor: Vendor, what: &str, value: &str) -> Result<(), PushError> {
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(PushError::creds(
            vendor,
            format!("{what} must be non-empty and use only letters, digits, '-', '_', '.'"),
        ))
    }
}

pub(crate) fn non_empty(vendor: Vendor, what: &str, value: &str) -> Result<(), PushError> {
    if value.trim().is_empty() {
        Err(PushError::creds(vendor, format!("{what} is empty")))
    } else {
        Ok(())
    }
}

/// A header built from a value that came from outside (a token, a secret):
/// a value with control characters is an error, never a panic.
pub(crate) fn header(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    HeaderValue::from_str(value)
        .map(|v| (HeaderName::from_static(name), v))
        .map_err(|_| format!("{name} is not a valid header value"))
}

/// What a transport failure means: try again later.
pub(crate) fn transport_retry(err: String) -> Outcome {
    Outcome::Retry {
        after: None,
        reason: err,
    }
}

/// The common reading of an HTTP status no vendor-specific code explained:
/// 429 and 5xx are transient (honouring `Retry-After`), the rest permanent.
pub(crate) fn by_status(reply: &Reply, what: &str) -> Outcome {
    let status = reply.status;
    let reason = format!(
        "{what}: HTTP {}: {}",
        status.as_u16(),
        String::from_utf8_lossy(&reply.body[..reply.body.len().min(300)])
    );
    if status == http::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Outcome::Retry {
            after: reply.retry_after(),
            reason,
        }
    } else {
        Outcome::Failed { reason }
    }
}

/// Seconds from now until `expires_at`, at least 1 (0 would mean "now or
/// never" to some vendors), capped at `max`.
pub(crate) fn ttl_secs(expires_at: Option<i64>, max: i64) -> Option<i64> {
    let at = expires_at?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Some((at - now).clamp(1, max))
}

pub(crate) fn now_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

pub(crate) fn data_json(message: &PushMessage) -> String {
    serde_json::to_string(&message.data).unwrap_or_else(|_| "{}".into())
}

/// What a provider's reply means, as the adapter of `vendor` reads it:
/// `None` when the reply says the cached auth token went stale (the adapter
/// re-authenticates once), otherwise the outcome. Pure — it never touches
/// the network — so the fuzz targets (`fuzz/`) can feed it arbitrary
/// provider bytes: a status, a `Retry-After` value and a body. Every reply
/// must map to an outcome; none may panic.
pub fn classify_reply(
    vendor: Vendor,
    status: u16,
    retry_after: Option<&[u8]>,
    body: &[u8],
) -> Option<Outcome> {
    let status = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
    let mut headers = http::HeaderMap::new();
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_bytes(v).ok()) {
        headers.insert(http::header::RETRY_AFTER, value);
    }
    let reply = Reply {
        status,
        headers,
        body: bytes::Bytes::copy_from_slice(body),
    };
    match vendor {
        Vendor::Apns => match apns::map_reply(&reply) {
            apns::Mapped::Done(o) => Some(o),
            apns::Mapped::ExpiredProviderToken => None,
        },
        Vendor::Fcm => Some(fcm::map_reply(&reply)),
        Vendor::Huawei | Vendor::Honor => {
            let (name, success) = if vendor == Vendor::Huawei {
                ("Huawei", "80000000")
            } else {
                ("Honor", "200")
            };
            match huawei::map_reply(&reply, name, success) {
                huawei::Mapped::Done(o) => Some(o),
                huawei::Mapped::AuthExpired => None,
            }
        }
        Vendor::Xiaomi => Some(xiaomi::map_reply(&reply)),
        Vendor::Oppo => Some(oppo::map_reply(&reply, "OPPO")),
        Vendor::Vivo => Some(vivo::map_reply(&reply, "vivo")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_reply_reads_each_vendor_and_survives_garbage() {
        let dead = classify_reply(Vendor::Apns, 410, None, br#"{"reason":"Unregistered"}"#);
        assert!(matches!(dead, Some(Outcome::DeadToken { .. })), "{dead:?}");
        assert_eq!(
            classify_reply(
                Vendor::Apns,
                403,
                None,
                br#"{"reason":"ExpiredProviderToken"}"#
            ),
            None,
            "a stale JWT is for the adapter to refresh"
        );
        let retry = classify_reply(Vendor::Fcm, 503, Some(b"7"), b"<html>busy</html>");
        match retry {
            Some(Outcome::Retry { after, .. }) => {
                assert_eq!(after, Some(std::time::Duration::from_secs(7)))
            }
            other => panic!("expected a retry, got {other:?}"),
        }
        assert_eq!(
            classify_reply(Vendor::Huawei, 200, None, br#"{"code":"80000000"}"#),
            Some(Outcome::Sent)
        );
        // Garbage of every shape maps to some outcome for every vendor: an
        // out-of-range status, a header value that is not one, bytes that
        // are not UTF-8, JSON of the wrong types.
        for vendor in Vendor::ALL {
            for body in [
                &b""[..],
                b"\xff\xfe\x00",
                br#"{"code":[1],"result":{},"error":"x","reason":7}"#,
                br#"{"error":{"details":[{"errorCode":5,"fieldViolations":"no"}]}}"#,
            ] {
                let _ = classify_reply(vendor, 1000, Some(b"\n\x00"), body);
                let _ = classify_reply(vendor, 200, Some(b"Wed, 21 Oct 2015 07:28:00 GMT"), body);
            }
        }
    }
}
