//! Per-app push credentials (APNs key, FCM service account, the Android
//! vendors' app secrets): validated on upload, stored sealed with the
//! keyring like key secrets, never returned — the API shows the vendor, when
//! they were uploaded and a fingerprint to compare with the file at hand.
//!
//! A submodule of `service` so that it shares `Control`'s store and keyring.
//! Also implements [`CredentialSource`] for the push worker, which opens
//! them (only in processes that hold the KEK: `confab serve`, `confab push`).

use async_trait::async_trait;
use confab_model::AppId;
use confab_push::{CredentialSource, Credentials, StoredCredentials, Vendor, WorkerError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Actor, Control, to_json};
use crate::error::{ControlError, Result};

pub(crate) const KIND: &str = "push_credentials";

/// What is stored: the credentials' JSON, sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PushCredentialRecord {
    app_id: String,
    tenant_id: String,
    vendor: Vendor,
    sealed: String,
    fingerprint: String,
    updated_at: i64,
}

/// Uploaded credentials as the API shows them (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PushCredentialStatus {
    pub app_id: String,
    /// `apns`, `fcm`, `huawei`, `xiaomi`, `oppo`, `vivo` or `honor`.
    #[schema(value_type = String, example = "apns")]
    pub vendor: Vendor,
    /// First 16 hex digits of SHA-256 over the uploaded JSON: changes when
    /// the credentials do.
    #[schema(example = "9f2c4e1a7b3d5c60")]
    pub fingerprint: String,
    /// Milliseconds since the epoch of the upload.
    pub updated_at: i64,
}

impl From<&PushCredentialRecord> for PushCredentialStatus {
    fn from(r: &PushCredentialRecord) -> Self {
        Self {
            app_id: r.app_id.clone(),
            vendor: r.vendor,
            fingerprint: r.fingerprint.clone(),
            updated_at: r.updated_at,
        }
    }
}

fn record_id(app_id: &str, vendor: Vendor) -> String {
    format!("{app_id}/{vendor}")
}

/// Parses a vendor path segment.
pub fn parse_vendor(raw: &str) -> Result<Vendor> {
    Vendor::parse(raw).ok_or_else(|| {
        ControlError::bad_request(format!(
            "unknown push vendor {raw:?}: one of apns, fcm, huawei, xiaomi, oppo, vivo, honor"
        ))
    })
}

fn require(field: &str, value: &str) -> Result<()> {
    if value.trim().is_empty() {
        return Err(ControlError::bad_request(format!("{field} is required")));
    }
    if value.len() > 16 * 1024 {
        return Err(ControlError::bad_request(format!("{field} is too long")));
    }
    Ok(())
}

/// Checks what can be checked without talking to the vendor: every field is
/// there and has the shape the vendor's console gives out.
pub fn validate(c: &Credentials) -> Result<()> {
    match c {
        Credentials::Apns {
            key_p8,
            key_id,
            team_id,
            topic,
            ..
        } => {
            require("key_p8", key_p8)?;
            if !key_p8.contains("-----BEGIN PRIVATE KEY-----") {
                return Err(ControlError::bad_request(
                    "key_p8 must be the text of the .p8 file (-----BEGIN PRIVATE KEY----- ...)",
                ));
            }
            for (field, v) in [("key_id", key_id), ("team_id", team_id)] {
                if v.len() != 10 || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(ControlError::bad_request(format!(
                        "{field} must be the 10-character id from the Apple developer account"
                    )));
                }
            }
            require("topic", topic)
        }
        Credentials::Fcm {
            service_account_json,
        } => {
            require("service_account_json", service_account_json)?;
            let v: serde_json::Value =
                serde_json::from_str(service_account_json).map_err(|_| {
                    ControlError::bad_request(
                        "service_account_json must be the key file's JSON text",
                    )
                })?;
            for field in ["project_id", "client_email", "private_key"] {
                if v.get(field)
                    .and_then(|f| f.as_str())
                    .is_none_or(str::is_empty)
                {
                    return Err(ControlError::bad_request(format!(
                        "service_account_json has no {field}: upload the service account's key file"
                    )));
                }
            }
            Ok(())
        }
        Credentials::Huawei { app_id, app_secret } => {
            require("app_id", app_id)?;
            require("app_secret", app_secret)
        }
        Credentials::Xiaomi {
            app_secret,
            package,
        } => {
            require("app_secret", app_secret)?;
            require("package", package)
        }
        Credentials::Oppo {
            app_key,
            master_secret,
        } => {
            require("app_key", app_key)?;
            require("master_secret", master_secret)
        }
        Credentials::Vivo {
            app_id,
            app_key,
            app_secret,
        } => {
            require("app_id", app_id)?;
            require("app_key", app_key)?;
            require("app_secret", app_secret)
        }
        Credentials::Honor {
            app_id,
            client_id,
            client_secret,
        } => {
            require("app_id", app_id)?;
            require("client_id", client_id)?;
            require("client_secret", client_secret)
        }
    }
}

impl Control {
    /// Stores (or replaces) the app's credentials for `vendor`.
    pub async fn put_push_credentials(
        &self,
        actor: &Actor,
        app_id: &str,
        vendor: Vendor,
        credentials: Credentials,
    ) -> Result<PushCredentialStatus> {
        let app = self.app(actor, app_id).await?;
        if credentials.vendor() != vendor {
            return Err(ControlError::bad_request(format!(
                "the body is {} credentials but the path says {vendor}",
                credentials.vendor()
            )));
        }
        validate(&credentials)?;
        let json = to_json(&credentials)?;
        let digest = Sha256::digest(json.as_bytes());
        let fingerprint: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let record = PushCredentialRecord {
            app_id: app.app_id.clone(),
            tenant_id: app.tenant_id.clone(),
            vendor,
            sealed: self.keyring.seal(&json)?,
            fingerprint,
            updated_at: confab_model::now_ms(),
        };
        let id = record_id(&app.app_id, vendor);
        self.write(vec![super::put(
            KIND,
            &id,
            Some(&app.tenant_id),
            to_json(&record)?,
        )])
        .await?;
        Ok(PushCredentialStatus::from(&record))
    }

    /// The app's uploaded credentials, by vendor (no secrets).
    pub async fn push_credentials(
        &self,
        actor: &Actor,
        app_id: &str,
    ) -> Result<Vec<PushCredentialStatus>> {
        let app = self.app(actor, app_id).await?;
        let mut records: Vec<PushCredentialRecord> = self.docs(KIND, Some(&app.tenant_id)).await?;
        records.retain(|r| r.app_id == app.app_id);
        records.sort_by_key(|r| Vendor::ALL.iter().position(|v| *v == r.vendor));
        Ok(records.iter().map(PushCredentialStatus::from).collect())
    }

    pub async fn delete_push_credentials(
        &self,
        actor: &Actor,
        app_id: &str,
        vendor: Vendor,
    ) -> Result<()> {
        let app = self.app(actor, app_id).await?;
        let id = record_id(&app.app_id, vendor);
        // Idempotent: deleting what is not there is done already.
        if self.store.get(KIND, &id).await?.is_none() {
            return Ok(());
        }
        self.write(vec![confab_store::ControlWrite::Delete {
            kind: KIND.into(),
            id,
        }])
        .await?;
        Ok(())
    }

    /// Opens the app's credentials for `vendor` (for the push worker; no
    /// actor: only processes holding the KEK can call it usefully).
    pub async fn open_push_credentials(
        &self,
        app_id: &str,
        vendor: Vendor,
    ) -> Result<Option<StoredCredentials>> {
        let Some(record) = self
            .doc::<PushCredentialRecord>(KIND, &record_id(app_id, vendor))
            .await?
        else {
            return Ok(None);
        };
        let json = self.keyring.open(&record.sealed)?;
        let credentials: Credentials = serde_json::from_str(&json).map_err(|e| {
            ControlError::internal(format!("stored push credentials are corrupt: {e}"))
        })?;
        Ok(Some(StoredCredentials {
            credentials,
            fingerprint: record.fingerprint,
        }))
    }
}

#[async_trait]
impl CredentialSource for Control {
    async fn credentials(
        &self,
        app: &AppId,
        vendor: Vendor,
    ) -> std::result::Result<Option<StoredCredentials>, WorkerError> {
        self.open_push_credentials(app.as_str(), vendor)
            .await
            .map_err(|e| WorkerError::Credentials(e.to_string()))
    }
}
