//! `Idempotency-Key` on creates: a repeat by the same account with the same
//! key and the same request (method, path, body) gets the first response
//! (same status and body, and `idempotent-replayed: true`); the same key with
//! another request is a `409 conflict`, as is a repeat while the first is
//! still running. Records are kept in the control store (kind
//! `idempotency`, id = SHA-256 of account and key) for 24 hours.
//!
//! A first response can hold a secret (a new app's or key's), so the stored
//! body is sealed (AES-256-GCM) with a key derived from the account and the
//! `Idempotency-Key`, which is itself never stored: only a client that holds
//! the key can have the response again. The stored request hash is keyed the
//! same way (a request can hold a password). Keys must therefore be random:
//! 16 to 255 visible ASCII characters, a UUID is best.
//!
//! Only successes are kept: after an error the same key may be retried.

use std::future::Future;
use std::sync::atomic::Ordering;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use confab_store::{ControlWrite, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ApiState;
use super::extract::{ApiError, ApiResult, Auth, RequestHash, hex};
use crate::error::ControlError;
use crate::model::kind;
use crate::service::Control;

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a response is kept for repeats.
pub const KEEP_MS: i64 = 24 * 3600 * 1000;
/// How long a request that never finished (a crash) holds its key.
const PENDING_MS: i64 = 60 * 1000;
/// Expired records are swept after every this many kept responses.
const SWEEP_EVERY: u64 = 256;

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// Keyed hash of the request.
    request_hash: String,
    /// 0 while the first request runs.
    status: u16,
    /// The sealed JSON body of the first response.
    #[serde(default)]
    body: String,
    created_at: i64,
}

impl Record {
    fn live(&self, now: i64) -> bool {
        let keep = if self.status == 0 {
            PENDING_MS
        } else {
            KEEP_MS
        };
        now - self.created_at < keep
    }
}

struct Sealer {
    cipher: Aes256Gcm,
    mac_key: [u8; 32],
}

impl Sealer {
    fn new(account_id: &str, key: &str) -> Self {
        let derive = |label: &[u8]| -> [u8; 32] {
            Sha256::new()
                .chain_update(label)
                .chain_update([0u8])
                .chain_update(account_id.as_bytes())
                .chain_update([0u8])
                .chain_update(key.as_bytes())
                .finalize()
                .into()
        };
        let enc = derive(b"confab idempotency body v1");
        Self {
            cipher: Aes256Gcm::new_from_slice(&enc).expect("a 32-byte key"),
            mac_key: derive(b"confab idempotency request v1"),
        }
    }

    fn request_hash(&self, request: &RequestHash) -> String {
        hex(&Sha256::new()
            .chain_update(self.mac_key)
            .chain_update(request.0.as_bytes())
            .finalize())
    }

    fn seal(&self, plain: &[u8]) -> ApiResult<String> {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .map_err(|_| ControlError::internal("sealing an idempotent response failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(B64.encode(out))
    }

    fn open(&self, sealed: &str) -> Option<Vec<u8>> {
        let bytes = B64.decode(sealed).ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, ct) = bytes.split_at(12);
        self.cipher.decrypt(Nonce::from_slice(nonce), ct).ok()
    }
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    if !(16..=255).contains(&key.len()) || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError(ControlError::bad_request(
            "Idempotency-Key must be 16 to 255 visible ASCII characters (a random UUID is best)",
        )));
    }
    Ok(Some(key.to_owned()))
}

fn json_response(status: StatusCode, body: Vec<u8>, replayed: bool) -> Response {
    let mut response = (
        status,
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    response
}

/// The answer to a repeat: the first response, or a conflict.
fn repeat(record: &Record, request_hash: &str, sealer: &Sealer) -> ApiResult<Response> {
    if record.request_hash != request_hash {
        return Err(ApiError(ControlError::conflict(
            "this Idempotency-Key was used with a different request",
        )));
    }
    if record.status == 0 {
        return Err(ApiError(ControlError::conflict(
            "a request with this Idempotency-Key is still running",
        )));
    }
    let body = sealer
        .open(&record.body)
        .ok_or_else(|| ControlError::internal("a stored idempotent response does not open"))?;
    let status = StatusCode::from_u16(record.status)
        .map_err(|_| ControlError::internal("a stored idempotent response is corrupt"))?;
    Ok(json_response(status, body, true))
}

async fn delete(state: &ApiState, id: &str) -> ApiResult<()> {
    match state
        .control
        .store()
        .write(vec![ControlWrite::Delete {
            kind: kind::IDEMPOTENCY.into(),
            id: id.into(),
        }])
        .await
    {
        Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn load(state: &ApiState, id: &str) -> ApiResult<Option<Record>> {
    Ok(state
        .control
        .store()
        .get(kind::IDEMPOTENCY, id)
        .await?
        // A record that does not parse is treated as expired.
        .and_then(|rec| serde_json::from_str(&rec.doc).ok()))
}

/// Runs a create once per `Idempotency-Key` (or simply runs it when the
/// request has none) and answers `status` with its JSON.
pub async fn run<T, F>(
    state: &ApiState,
    auth: &Auth,
    headers: &HeaderMap,
    request: &RequestHash,
    status: StatusCode,
    create: F,
) -> ApiResult<Response>
where
    T: Serialize,
    F: Future<Output = ApiResult<T>>,
{
    let Some(key) = idempotency_key(headers)? else {
        return Ok((status, Json(create.await?)).into_response());
    };
    let sealer = Sealer::new(&auth.account.account_id, &key);
    let request_hash = sealer.request_hash(request);
    let id = hex(&Sha256::new()
        .chain_update(auth.account.account_id.as_bytes())
        .chain_update([0u8])
        .chain_update(key.as_bytes())
        .finalize());
    let now = confab_model::now_ms();
    if let Some(rec) = state.control.store().get(kind::IDEMPOTENCY, &id).await? {
        match serde_json::from_str::<Record>(&rec.doc) {
            Ok(record) if record.live(now) => return repeat(&record, &request_hash, &sealer),
            // Expired, or unreadable (treated as expired).
            _ => delete(state, &id).await?,
        }
    }
    let pending = Record {
        request_hash: request_hash.clone(),
        status: 0,
        body: String::new(),
        created_at: now,
    };
    let doc = serde_json::to_string(&pending).map_err(|e| ControlError::internal(e.to_string()))?;
    match state
        .control
        .store()
        .write(vec![ControlWrite::Insert {
            kind: kind::IDEMPOTENCY.into(),
            id: id.clone(),
            tenant_id: None,
            doc,
        }])
        .await
    {
        Ok(_) => {}
        // The same key at the same moment.
        Err(StoreError::Conflict(_)) => {
            return match load(state, &id).await? {
                Some(record) => repeat(&record, &request_hash, &sealer),
                None => Err(ApiError(ControlError::conflict(
                    "a request with this Idempotency-Key is still running",
                ))),
            };
        }
        Err(e) => return Err(e.into()),
    }
    let value = match create.await {
        Ok(value) => value,
        Err(e) => {
            if let Err(cleanup) = delete(state, &id).await {
                tracing::warn!(error = %cleanup.0, "could not drop an idempotency record");
            }
            return Err(e);
        }
    };
    let body = serde_json::to_vec(&value).map_err(|e| ControlError::internal(e.to_string()))?;
    let done = Record {
        request_hash,
        status: status.as_u16(),
        body: sealer.seal(&body)?,
        created_at: now,
    };
    let doc = serde_json::to_string(&done).map_err(|e| ControlError::internal(e.to_string()))?;
    if let Err(e) = state
        .control
        .store()
        .write(vec![ControlWrite::Update {
            kind: kind::IDEMPOTENCY.into(),
            id,
            doc,
        }])
        .await
    {
        // The create happened: answer it; a repeat will find no record
        // once the pending one expires.
        tracing::warn!(error = %e, "could not keep an idempotent response");
    } else if state.kept.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
        let control = state.control.clone();
        tokio::spawn(async move {
            if let Err(e) = sweep(&control).await {
                tracing::warn!(error = %e, "could not sweep expired idempotency records");
            }
        });
    }
    Ok(json_response(status, body, false))
}

/// Deletes expired idempotency records; returns how many.
pub async fn sweep(control: &Control) -> crate::Result<usize> {
    let now = confab_model::now_ms();
    let expired: Vec<ControlWrite> = control
        .store()
        .list(kind::IDEMPOTENCY, None)
        .await?
        .into_iter()
        .filter(|rec| serde_json::from_str::<Record>(&rec.doc).map_or(true, |r| !r.live(now)))
        .map(|rec| ControlWrite::Delete {
            kind: kind::IDEMPOTENCY.into(),
            id: rec.id,
        })
        .collect();
    let count = expired.len();
    if count > 0 {
        control.store().write(expired).await?;
    }
    Ok(count)
}
