//! What a push channel is: something that takes one notification for one
//! device token and says what happened to it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A push channel. Wire names (`apns`, `fcm`, ...) are used in the protocol,
/// the REST APIs, metrics labels and the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vendor {
    Apns,
    Fcm,
    Huawei,
    Xiaomi,
    Oppo,
    Vivo,
    Honor,
}

impl Vendor {
    pub const ALL: [Vendor; 7] = [
        Vendor::Apns,
        Vendor::Fcm,
        Vendor::Huawei,
        Vendor::Xiaomi,
        Vendor::Oppo,
        Vendor::Vivo,
        Vendor::Honor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Vendor::Apns => "apns",
            Vendor::Fcm => "fcm",
            Vendor::Huawei => "huawei",
            Vendor::Xiaomi => "xiaomi",
            Vendor::Oppo => "oppo",
            Vendor::Vivo => "vivo",
            Vendor::Honor => "honor",
        }
    }

    pub fn parse(s: &str) -> Option<Vendor> {
        Vendor::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for Vendor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One notification for one device, already rendered from the app's
/// templates. Providers map these fields onto their own payloads (the table
/// is in docs/push.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushMessage {
    /// Stable for the job: a retry or a redelivery after a worker crash
    /// carries the same id (`apns-id`, FCM/vendor message ids where they
    /// have one), so the phone shows it once. A UUID in canonical form.
    pub id: String,
    /// The device's push token.
    pub token: String,
    /// iOS bundle id (`apns-topic`) or Android package name.
    pub bundle: String,
    pub title: String,
    pub body: String,
    /// The user's total unread count, when known.
    pub badge: Option<u32>,
    /// Groups notifications of one conversation (`apns-collapse-id`,
    /// FCM `collapse_key`, vendor equivalents). At most 64 bytes.
    pub collapse_id: Option<String>,
    /// Threads notifications of one conversation (`thread-id`, `tag`).
    pub thread_id: Option<String>,
    /// Small key/value data for the app (conv_id, msg_id, ...).
    pub data: std::collections::BTreeMap<String, String>,
    /// Seconds since the epoch after which the provider may drop it; `None`
    /// = the provider's default.
    pub expires_at: Option<i64>,
    /// Deliver immediately (a chat message) rather than when convenient.
    pub high_priority: bool,
}

/// What a provider said about one send.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Accepted by the provider.
    Sent,
    /// Transient failure (429, 5xx, timeout, connection error): try again,
    /// not before `after` when the provider said so (`Retry-After`).
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// The token will never work again (APNs 410 / `Unregistered` /
    /// `BadDeviceToken`, FCM `UNREGISTERED`, ...): forget the device.
    DeadToken { reason: String },
    /// Permanent failure that retrying will not fix (bad credentials,
    /// invalid payload): dead-letter the job.
    Failed { reason: String },
}

/// A push channel for one app's credentials.
#[async_trait::async_trait]
pub trait Provider: Send + Sync + 'static {
    fn vendor(&self) -> Vendor;
    async fn send(&self, message: &PushMessage) -> Outcome;
}

/// An app's credentials for one vendor, as uploaded through the control
/// plane (stored sealed under the key-encryption key, never returned by the
/// API). Field names follow each vendor's console.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "vendor", rename_all = "snake_case")]
pub enum Credentials {
    /// Token-based auth: the `.p8` key (PEM text), its key id, the team id,
    /// the default topic (bundle id); `sandbox` picks the development host.
    Apns {
        key_p8: String,
        key_id: String,
        team_id: String,
        topic: String,
        #[serde(default)]
        sandbox: bool,
    },
    /// The service-account key file's JSON text (project_id, client_email,
    /// private_key, token_uri).
    Fcm {
        service_account_json: String,
    },
    Huawei {
        app_id: String,
        app_secret: String,
    },
    Xiaomi {
        app_secret: String,
        package: String,
    },
    Oppo {
        app_key: String,
        master_secret: String,
    },
    Vivo {
        app_id: String,
        app_key: String,
        app_secret: String,
    },
    Honor {
        app_id: String,
        client_id: String,
        client_secret: String,
    },
}

impl Credentials {
    pub fn vendor(&self) -> Vendor {
        match self {
            Credentials::Apns { .. } => Vendor::Apns,
            Credentials::Fcm { .. } => Vendor::Fcm,
            Credentials::Huawei { .. } => Vendor::Huawei,
            Credentials::Xiaomi { .. } => Vendor::Xiaomi,
            Credentials::Oppo { .. } => Vendor::Oppo,
            Credentials::Vivo { .. } => Vendor::Vivo,
            Credentials::Honor { .. } => Vendor::Honor,
        }
    }
}

/// Never print secrets, not even in debug logs.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.vendor())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_names_round_trip() {
        for v in Vendor::ALL {
            assert_eq!(Vendor::parse(v.as_str()), Some(v));
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
        }
        assert_eq!(Vendor::parse("blackberry"), None);
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let c = Credentials::Huawei {
            app_id: "1".into(),
            app_secret: "s3cret".into(),
        };
        assert!(!format!("{c:?}").contains("s3cret"));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["vendor"], "huawei");
    }
}
