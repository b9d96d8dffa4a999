//! `Idempotency-Key` on `POST /v1/messages` and `POST /v1/users/{id}/tokens`:
//! a repeat by the same app with the same key and the same request (method,
//! path, body) gets the first response (same status and body, and
//! `idempotent-replayed: true`); the same key with another request is a
//! `409 conflict`, as is a repeat while the first is still running. Only
//! successes are kept (after an error the key may be retried), for 24 hours,
//! in this process's memory: behind a load balancer, route by app (or rely
//! on `client_msg_id`, which the message store dedupes durably).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use serde::Serialize;

use crate::error::{ApiError, ApiResult, RequestHash};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// How long a response is kept for repeats.
pub const KEEP: Duration = Duration::from_secs(24 * 3600);
const SWEEP_EVERY: u64 = 1024;

struct Record {
    request_hash: String,
    /// `None` while the first request runs.
    done: Option<(StatusCode, Vec<u8>)>,
    created: Instant,
}

/// The kept responses of one router.
#[derive(Default)]
pub struct Keeper {
    records: DashMap<(String, String), Record>,
    inserted: AtomicU64,
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get(HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    if !(16..=255).contains(&key.len()) || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 16 to 255 visible ASCII characters (a random UUID is best)",
        ));
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

impl Keeper {
    /// Runs `create` once per (app, `Idempotency-Key`) (or simply runs it
    /// when the request has none) and answers `status` with its JSON.
    pub async fn run<T, F>(
        &self,
        app_id: &str,
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
        let id = (app_id.to_owned(), key);
        {
            let mut entry = self.records.entry(id.clone()).or_insert_with(|| Record {
                request_hash: String::new(),
                done: None,
                created: Instant::now(),
            });
            let fresh = entry.request_hash.is_empty() || entry.created.elapsed() > KEEP;
            if fresh {
                *entry = Record {
                    request_hash: request.0.clone(),
                    done: None,
                    created: Instant::now(),
                };
            } else if entry.request_hash != request.0 {
                return Err(ApiError::conflict(
                    "this Idempotency-Key was used with a different request",
                ));
            } else {
                return match &entry.done {
                    Some((status, body)) => Ok(json_response(*status, body.clone(), true)),
                    None => Err(ApiError::conflict(
                        "a request with this Idempotency-Key is still running",
                    )),
                };
            }
        }
        if self.inserted.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.records
                .retain(|_, r| r.done.is_none() || r.created.elapsed() <= KEEP);
        }
        let value = match create.await {
            Ok(value) => value,
            Err(e) => {
                self.records.remove(&id);
                return Err(e);
            }
        };
        let body = serde_json::to_vec(&value).map_err(|e| ApiError::internal(e.to_string()))?;
        if let Some(mut r) = self.records.get_mut(&id) {
            r.done = Some((status, body.clone()));
        }
        Ok(json_response(status, body, false))
    }
}
