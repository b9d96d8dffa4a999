//! Errors as api.md wants them (`{"error":{"code","message","request_id"}}`
//! with the right status), and extractors whose rejections are such errors.
//!
//! A handler's error becomes a response whose status is set and whose body
//! is written by [`render_errors`], which knows the request id; it also turns
//! any other error response of the router (405, 413, an unknown route) into
//! the same JSON shape.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use confab_logic::LogicError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// Largest request body.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Every error response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "not_found", "message": "no such conversation", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code: `bad_request`, `unauthorized`, `suspended`,
    /// `forbidden`, `not_found`, `user_not_found`, `conflict`, `user_exists`, `content_blocked`,
    /// `quota_exceeded`, `rate_limited`, `payload_too_large`, `unavailable`, ...
    pub code: String,
    pub message: String,
    pub request_id: String,
}

/// An error of a handler, an extractor or a middleware.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    /// For `rate_limited`: seconds until a retry may succeed.
    pub retry_after_secs: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            retry_after_secs: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new("bad_request", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new("unauthorized", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("not_found", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new("conflict", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("internal", message)
    }
}

/// Milliseconds to whole seconds, at least 1.
pub fn secs_ceil(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

impl From<LogicError> for ApiError {
    fn from(e: LogicError) -> Self {
        Self {
            code: e.code.to_owned(),
            message: e.message,
            retry_after_secs: e.retry_after_ms.map(|ms| secs_ceil(u64::from(ms))),
        }
    }
}

impl From<confab_store::StoreError> for ApiError {
    fn from(e: confab_store::StoreError) -> Self {
        LogicError::from(e).into()
    }
}

/// The HTTP status of an error code.
pub fn status_of(code: &str) -> StatusCode {
    match code {
        // The wire-only codes (a frame or session problem) cannot come out of
        // a REST call today; they are mapped so that a new path that lets one
        // through answers 4xx, not 500 (`every_code_but_internal_is_not_a_500`).
        "bad_request" | "quota_exceeded" | "unsupported" | "bad_frame" | "unknown_op"
        | "not_logged_in" | "already_logged_in" => StatusCode::BAD_REQUEST,
        "unauthorized" => StatusCode::UNAUTHORIZED,
        "forbidden" | "suspended" | "muted" => StatusCode::FORBIDDEN,
        "not_found" | "user_not_found" => StatusCode::NOT_FOUND,
        "method_not_allowed" => StatusCode::METHOD_NOT_ALLOWED,
        "conflict" | "user_exists" => StatusCode::CONFLICT,
        "payload_too_large" | "frame_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "content_blocked" | "rejected_by_webhook" | "recall_window_passed" => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
        "unavailable" | "webhook_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Carried from a handler's response to [`render_errors`].
#[derive(Debug, Clone)]
struct PendingError(ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = status_of(&self.code).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response.extensions_mut().insert(PendingError(self));
        response
    }
}

fn error_for_status(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::not_found("no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            "method_not_allowed",
            "this endpoint does not take that method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        StatusCode::UNAUTHORIZED => ApiError::unauthorized("missing or unknown secret key"),
        s if s.is_client_error() => {
            ApiError::bad_request(s.canonical_reason().unwrap_or("bad request").to_lowercase())
        }
        _ => ApiError::internal("internal error"),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        "payload_too_large",
        format!("the request body is larger than {} KiB", BODY_LIMIT / 1024),
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let mime = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

/// Middleware: writes every error response's body as
/// `{"error":{"code","message","request_id"}}`.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    let error = match response.extensions_mut().remove::<PendingError>() {
        Some(PendingError(e)) => e,
        None => {
            let status = response.status();
            if !(status.is_client_error() || status.is_server_error())
                || is_json(response.headers())
            {
                return response;
            }
            error_for_status(status)
        }
    };
    let status = response.status();
    let message = if status.is_server_error() {
        tracing::error!(%request_id, %method, %path, code = %error.code, message = %error.message, "REST API error");
        match error.code.as_str() {
            "unavailable" => "storage is temporarily unavailable; retry".to_owned(),
            _ => format!(
                "internal error; the server log has the details under request id {request_id}"
            ),
        }
    } else {
        error.message
    };
    let body = ErrorBody {
        error: ErrorDetail {
            code: error.code,
            message,
            request_id,
        },
    };
    let json = serde_json::to_vec(&body).unwrap_or_default();
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if status == StatusCode::UNAUTHORIZED {
        parts.headers.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"confab\""),
        );
    }
    Response::from_parts(parts, Body::from(json))
}

/// SHA-256 (hex) of the request's method, path and body: what an
/// `Idempotency-Key` repeat must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHash(pub String);

impl RequestHash {
    pub fn of(method: &str, path: &str, body: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(method.as_bytes())
            .chain_update([0u8])
            .chain_update(path.as_bytes())
            .chain_update([0u8])
            .chain_update(body)
            .finalize();
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// A JSON body (`Content-Type: application/json`; unknown fields refused;
/// an empty body is `{}`), with the [`RequestHash`] of the request.
pub struct JsonBody<T>(pub T, pub RequestHash);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(request.headers());
        let method = request.method().as_str().to_owned();
        let path = request.uri().path().to_owned();
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                ApiError::bad_request(format!("could not read the body: {}", e.body_text()))
            }
        })?;
        let text: &[u8] = if bytes.is_empty() {
            b"{}"
        } else if !json {
            return Err(ApiError::bad_request(
                "expected a JSON body with Content-Type: application/json",
            ));
        } else {
            &bytes
        };
        let value = serde_json::from_slice(text)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
        Ok(Self(value, RequestHash::of(&method, &path, &bytes)))
    }
}

/// Path parameters, each checked to be 1 to 200 characters without control
/// characters.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = axum::extract::Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        for (name, value) in &raw.0 {
            if value.is_empty()
                || value.chars().count() > 200
                || value.chars().any(char::is_control)
            {
                return Err(ApiError::bad_request(format!(
                    "path parameter {name} must be 1 to 200 characters without control characters"
                )));
            }
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// Query parameters.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_but_internal_is_not_a_500() {
        for code in confab_proto::ops::code::ALL {
            let status = status_of(code);
            if *code == confab_proto::ops::code::INTERNAL {
                assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            } else {
                assert!(
                    status.is_client_error() || status == StatusCode::SERVICE_UNAVAILABLE,
                    "{code} maps to {status}"
                );
            }
        }
    }

    #[test]
    fn codes_have_their_statuses() {
        assert_eq!(status_of("bad_request"), StatusCode::BAD_REQUEST);
        assert_eq!(status_of("suspended"), StatusCode::FORBIDDEN);
        assert_eq!(status_of("rate_limited"), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            status_of("content_blocked"),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(status_of("whatever"), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(secs_ceil(1), 1);
        assert_eq!(secs_ceil(1001), 2);
        assert_eq!(secs_ceil(0), 1);
    }
}
