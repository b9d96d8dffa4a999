//! Where the providers live. Defaults are the vendors' production hosts;
//! every one can be overridden (tests point them at local fakes, an
//! operator at a regional host or an egress proxy).

use std::time::Duration;

use crate::PushError;

/// Base URLs of the providers' APIs (scheme + host [+ port], no trailing
/// path), the extra CA to trust and the per-request timeout.
#[derive(Clone)]
pub struct Endpoints {
    /// APNs production (`CONFAB_PUSH_APNS_URL`).
    pub apns: String,
    /// APNs development, for credentials marked `sandbox`
    /// (`CONFAB_PUSH_APNS_SANDBOX_URL`).
    pub apns_sandbox: String,
    /// FCM HTTP v1 (`CONFAB_PUSH_FCM_URL`).
    pub fcm: String,
    /// Google's OAuth2 token endpoint (`CONFAB_PUSH_FCM_OAUTH_URL`). The
    /// service account's `token_uri` is only used as the JWT audience: the
    /// grant goes here, so an uploaded key file cannot point the server at
    /// an arbitrary URL.
    pub fcm_oauth: String,
    /// Huawei Push Kit (`CONFAB_PUSH_HUAWEI_URL`).
    pub huawei: String,
    /// Huawei OAuth 2.0 token endpoint, full URL (`CONFAB_PUSH_HUAWEI_OAUTH_URL`).
    pub huawei_oauth: String,
    /// Xiaomi MiPush (`CONFAB_PUSH_XIAOMI_URL`).
    pub xiaomi: String,
    /// OPPO PUSH (`CONFAB_PUSH_OPPO_URL`).
    pub oppo: String,
    /// vivo push (`CONFAB_PUSH_VIVO_URL`).
    pub vivo: String,
    /// Honor Push (`CONFAB_PUSH_HONOR_URL`).
    pub honor: String,
    /// Honor OAuth token endpoint, full URL (`CONFAB_PUSH_HONOR_OAUTH_URL`).
    pub honor_oauth: String,
    /// One or more extra root CAs (PEM) trusted besides the public web
    /// roots (`CONFAB_PUSH_CA_FILE` names the file).
    pub extra_ca_pem: Option<String>,
    /// Whole-request timeout, connection included
    /// (`CONFAB_PUSH_TIMEOUT_MS`, default 10 000).
    pub timeout: Duration,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            apns: "https://api.push.apple.com".into(),
            apns_sandbox: "https://api.sandbox.push.apple.com".into(),
            fcm: "https://fcm.googleapis.com".into(),
            fcm_oauth: "https://oauth2.googleapis.com/token".into(),
            huawei: "https://push-api.cloud.huawei.com".into(),
            huawei_oauth: "https://oauth-login.cloud.huawei.com/oauth2/v3/token".into(),
            xiaomi: "https://api.xmpush.xiaomi.com".into(),
            oppo: "https://api.push.oppomobile.com".into(),
            vivo: "https://api-push.vivo.com.cn".into(),
            honor: "https://push-api.cloud.honor.com".into(),
            honor_oauth: "https://iam.developer.honor.com/auth/token".into(),
            extra_ca_pem: None,
            timeout: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("apns", &self.apns)
            .field("apns_sandbox", &self.apns_sandbox)
            .field("fcm", &self.fcm)
            .field("fcm_oauth", &self.fcm_oauth)
            .field("huawei", &self.huawei)
            .field("huawei_oauth", &self.huawei_oauth)
            .field("xiaomi", &self.xiaomi)
            .field("oppo", &self.oppo)
            .field("vivo", &self.vivo)
            .field("honor", &self.honor)
            .field("honor_oauth", &self.honor_oauth)
            .field("extra_ca_pem", &self.extra_ca_pem.as_ref().map(|_| "<set>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Endpoints {
    /// Defaults overridden by `CONFAB_PUSH_*` environment variables.
    pub fn from_env() -> Result<Endpoints, PushError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// As [`from_env`](Self::from_env), reading variables through `get`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Endpoints, PushError> {
        let mut e = Endpoints::default();
        let urls: [(&str, &mut String); 11] = [
            ("CONFAB_PUSH_APNS_URL", &mut e.apns),
            ("CONFAB_PUSH_APNS_SANDBOX_URL", &mut e.apns_sandbox),
            ("CONFAB_PUSH_FCM_URL", &mut e.fcm),
            ("CONFAB_PUSH_FCM_OAUTH_URL", &mut e.fcm_oauth),
            ("CONFAB_PUSH_HUAWEI_URL", &mut e.huawei),
            ("CONFAB_PUSH_HUAWEI_OAUTH_URL", &mut e.huawei_oauth),
            ("CONFAB_PUSH_XIAOMI_URL", &mut e.xiaomi),
            ("CONFAB_PUSH_OPPO_URL", &mut e.oppo),
            ("CONFAB_PUSH_VIVO_URL", &mut e.vivo),
            ("CONFAB_PUSH_HONOR_URL", &mut e.honor),
            ("CONFAB_PUSH_HONOR_OAUTH_URL", &mut e.honor_oauth),
        ];
        for (var, slot) in urls {
            if let Some(v) = get(var).filter(|v| !v.trim().is_empty()) {
                let v = v.trim().trim_end_matches('/').to_string();
                if !v.starts_with("https://") {
                    return Err(PushError::Config(format!(
                        "{var}={v}: must be an https URL"
                    )));
                }
                v.parse::<http::Uri>()
                    .map_err(|err| PushError::Config(format!("{var}={v}: {err}")))?;
                *slot = v;
            }
        }
        if let Some(path) = get("CONFAB_PUSH_CA_FILE").filter(|v| !v.trim().is_empty()) {
            let pem = std::fs::read_to_string(path.trim())
                .map_err(|err| PushError::Config(format!("CONFAB_PUSH_CA_FILE={path}: {err}")))?;
            e.extra_ca_pem = Some(pem);
        }
        if let Some(ms) = get("CONFAB_PUSH_TIMEOUT_MS").filter(|v| !v.trim().is_empty()) {
            let ms: u64 = ms.trim().parse().map_err(|_| {
                PushError::Config(format!(
                    "CONFAB_PUSH_TIMEOUT_MS={ms}: not a number of milliseconds"
                ))
            })?;
            if ms == 0 {
                return Err(PushError::Config(
                    "CONFAB_PUSH_TIMEOUT_MS must be > 0".into(),
                ));
            }
            e.timeout = Duration::from_millis(ms);
        }
        // Fails early on an unusable CA file rather than at the first push.
        crate::http::tls_config(e.extra_ca_pem.as_deref(), &[])?;
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_defaults_and_rejects_plain_http() {
        let e = Endpoints::from_lookup(|k| match k {
            "CONFAB_PUSH_APNS_URL" => Some("https://127.0.0.1:8443/".into()),
            "CONFAB_PUSH_TIMEOUT_MS" => Some("2500".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(e.apns, "https://127.0.0.1:8443");
        assert_eq!(e.fcm, "https://fcm.googleapis.com");
        assert_eq!(e.timeout, Duration::from_millis(2500));

        let err = Endpoints::from_lookup(|k| {
            (k == "CONFAB_PUSH_FCM_URL").then(|| "http://fcm.local".to_string())
        })
        .unwrap_err();
        assert!(err.to_string().contains("CONFAB_PUSH_FCM_URL"), "{err}");

        let err = Endpoints::from_lookup(|k| {
            (k == "CONFAB_PUSH_CA_FILE").then(|| "/nonexistent/ca.pem".to_string())
        })
        .unwrap_err();
        assert!(err.to_string().contains("CONFAB_PUSH_CA_FILE"), "{err}");
    }
}
