//! Xiaomi MiPush, server API v3.
//!
//! Auth: the app secret itself, as `Authorization: key=<app_secret>` (no
//! token to cache). Send: form `POST /v3/message/regid`; the reply's
//! `result` is `ok` or `error` with a numeric `code`.

use crate::http::{Body, HttpClient, Reply};
use crate::providers::{
    Endpoints, by_status, data_json, header, non_empty, transport_retry, ttl_secs,
};
use crate::{Outcome, Provider, PushError, PushMessage, Vendor};

/// Codes meaning the registration id will never work (invalid / not of
/// this app / unregistered).
const DEAD_CODES: &[i64] = &[20301, 20302];
/// Codes meaning "busy / over the rate or daily quota": try later.
const RETRY_CODES: &[i64] = &[-1, 200001, 200002];

pub(crate) struct Xiaomi {
    client: HttpClient,
    url: String,
    authorization: String,
    package: String,
}

impl Xiaomi {
    pub fn new(
        app_secret: &str,
        package: &str,
        endpoints: &Endpoints,
        client: HttpClient,
    ) -> Result<Xiaomi, PushError> {
        non_empty(Vendor::Xiaomi, "app_secret", app_secret)?;
        non_empty(Vendor::Xiaomi, "package", package)?;
        let authorization = format!("key={app_secret}");
        header("authorization", &authorization).map_err(|e| PushError::creds(Vendor::Xiaomi, e))?;
        Ok(Xiaomi {
            client,
            url: format!("{}/v3/message/regid", endpoints.xiaomi),
            authorization,
            package: package.into(),
        })
    }

    fn form(&self, message: &PushMessage) -> String {
        let package = if message.bundle.is_empty() {
            &self.package
        } else {
            &message.bundle
        };
        let mut form: Vec<(String, String)> = vec![
            ("registration_id".into(), message.token.clone()),
            ("restricted_package_name".into(), package.clone()),
            ("title".into(), message.title.clone()),
            ("description".into(), message.body.clone()),
            ("payload".into(), data_json(message)),
            // 0 = a notification-bar message, not pass-through.
            ("pass_through".into(), "0".into()),
            // -1 = default sound, vibration and light.
            ("notify_type".into(), "-1".into()),
        ];
        if let Some(c) = message.collapse_id.as_ref().or(message.thread_id.as_ref()) {
            // Same notify_id = the newer notification replaces the older.
            form.push(("notify_id".into(), notify_id(c).to_string()));
        }
        if let Some(ttl) = ttl_secs(message.expires_at, 14 * 24 * 3600) {
            form.push(("time_to_live".into(), (ttl * 1000).to_string()));
        }
        // No badge: MIUI derives the launcher count from the notifications
        // shown, and MiPush has no per-message count field.
        for (k, v) in &message.data {
            form.push((format!("extra.{k}"), v.clone()));
        }
        serde_urlencoded::to_string(&form).unwrap_or_default()
    }
}

/// A stable non-negative int from a collapse id (MiPush wants an int).
fn notify_id(collapse: &str) -> u32 {
    // FNV-1a: stable across builds and processes, unlike std's hasher.
    let mut h: u32 = 0x811c_9dc5;
    for b in collapse.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h & 0x7fff_ffff
}

#[async_trait::async_trait]
impl Provider for Xiaomi {
    fn vendor(&self) -> Vendor {
        Vendor::Xiaomi
    }

    async fn send(&self, message: &PushMessage) -> Outcome {
        let headers = match header("authorization", &self.authorization) {
            Ok(h) => [h],
            Err(reason) => return Outcome::Failed { reason },
        };
        match self
            .client
            .post(&self.url, &headers, Body::Form(self.form(message)))
            .await
        {
            Ok(reply) => map_reply(&reply),
            Err(e) => transport_retry(e),
        }
    }
}

pub(crate) fn map_reply(reply: &Reply) -> Outcome {
    let json = reply.json();
    let code = json["code"].as_i64();
    if reply.status.is_success() && json["result"] == "ok" && code.unwrap_or(0) == 0 {
        return Outcome::Sent;
    }
    let reason = format!(
        "Xiaomi HTTP {} code {}: {}",
        reply.status.as_u16(),
        code.map(|c| c.to_string()).unwrap_or_default(),
        json["reason"]
            .as_str()
            .or(json["description"].as_str())
            .unwrap_or("")
    );
    match code {
        Some(c) if DEAD_CODES.contains(&c) => Outcome::DeadToken { reason },
        Some(c) if RETRY_CODES.contains(&c) => Outcome::Retry {
            after: reply.retry_after(),
            reason,
        },
        _ => match by_status(reply, "Xiaomi") {
            Outcome::Retry { after, .. } => Outcome::Retry { after, reason },
            _ => Outcome::Failed { reason },
        },
    }
}
