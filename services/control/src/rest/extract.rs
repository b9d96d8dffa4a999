//! Errors as api.md wants them, and extractors whose rejections are such
//! errors (never axum's plain-text ones).
//!
//! A handler's error becomes a response whose status is set and whose body
//! is written by [`render_errors`], the innermost middleware, which knows the
//! request id; it also turns any other error response of the router (a 405, a
//! 413, an unknown route) into the same JSON shape.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::ApiState;
use super::dto::{ErrorBody, ErrorDetail};
use crate::error::ControlError;
use crate::model::Account;
use crate::service::Actor;

/// The cookie a browser console may send instead of the bearer header.
pub const SESSION_COOKIE: &str = "confab_session";
/// Largest request body.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// An error of a handler or extractor.
#[derive(Debug)]
pub struct ApiError(pub ControlError);

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        Self(e)
    }
}

impl From<confab_store::StoreError> for ApiError {
    fn from(e: confab_store::StoreError) -> Self {
        Self(e.into())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The HTTP status of an error code.
pub fn status_of(code: &str) -> StatusCode {
    match code {
        "bad_request" | "quota_exceeded" => StatusCode::BAD_REQUEST,
        "unauthorized" => StatusCode::UNAUTHORIZED,
        "forbidden" | "suspended" => StatusCode::FORBIDDEN,
        "not_found" => StatusCode::NOT_FOUND,
        "method_not_allowed" => StatusCode::METHOD_NOT_ALLOWED,
        "conflict" => StatusCode::CONFLICT,
        "payload_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Carried from a handler's response to [`render_errors`].
#[derive(Debug, Clone)]
struct PendingError(ControlError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = status_of(self.0.code).into_response();
        response.extensions_mut().insert(PendingError(self.0));
        response
    }
}

fn error_for_status(status: StatusCode) -> ControlError {
    match status {
        StatusCode::NOT_FOUND => ControlError::not_found("no such endpoint"),
        StatusCode::METHOD_NOT_ALLOWED => ControlError::new(
            "method_not_allowed",
            "this endpoint does not take that method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        StatusCode::UNAUTHORIZED => {
            ControlError::unauthorized("missing, unknown or expired session")
        }
        StatusCode::FORBIDDEN => ControlError::forbidden("forbidden"),
        StatusCode::SERVICE_UNAVAILABLE => ControlError::new("unavailable", "try again later"),
        s if s.is_client_error() => {
            ControlError::bad_request(s.canonical_reason().unwrap_or("bad request").to_lowercase())
        }
        _ => ControlError::internal("internal error"),
    }
}

fn too_large() -> ControlError {
    ControlError::new(
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
        tracing::error!(%request_id, %method, %path, code = error.code, message = %error.message, "admin API error");
        match error.code {
            "unavailable" => "the control store is unavailable; try again later".to_owned(),
            _ => format!(
                "internal error; the server log has the details under request id {request_id}"
            ),
        }
    } else {
        error.message
    };
    let body = ErrorBody {
        error: ErrorDetail {
            code: error.code.to_owned(),
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
            HeaderValue::from_static("Bearer realm=\"confab-admin\""),
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
        Self(hex(&digest))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestHash {
    type Rejection = ApiError;

    /// For a create without a body.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts.method.as_str(), parts.uri.path(), b""))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn body_bytes<S: Send + Sync>(request: Request, state: &S) -> ApiResult<Bytes> {
    Bytes::from_request(request, state)
        .await
        .map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError(too_large())
            } else {
                ApiError(ControlError::bad_request(format!(
                    "could not read the body: {}",
                    e.body_text()
                )))
            }
        })
}

/// A JSON body (`Content-Type: application/json`; unknown fields refused),
/// with the [`RequestHash`] of the request.
pub struct JsonBody<T>(pub T, pub RequestHash);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError(ControlError::bad_request(
                "expected a JSON body with Content-Type: application/json",
            )));
        }
        let method = request.method().as_str().to_owned();
        let path = request.uri().path().to_owned();
        let bytes = body_bytes(request, state).await?;
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError(ControlError::bad_request(format!("invalid JSON body: {e}"))))?;
        Ok(Self(value, RequestHash::of(&method, &path, &bytes)))
    }
}

/// A `text/plain` UTF-8 body.
pub struct TextBody(pub String);

impl<S: Send + Sync> FromRequest<S> for TextBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let plain = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("text/plain")
            });
        if !plain {
            return Err(ApiError(ControlError::bad_request(
                "expected a text body with Content-Type: text/plain",
            )));
        }
        let bytes = body_bytes(request, state).await?;
        String::from_utf8(bytes.to_vec())
            .map(Self)
            .map_err(|_| ApiError(ControlError::bad_request("the body is not UTF-8 text")))
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
            .map_err(|e| ApiError(ControlError::bad_request(e.body_text())))?;
        for (name, value) in &raw.0 {
            if value.is_empty()
                || value.chars().count() > 200
                || value.chars().any(char::is_control)
            {
                return Err(ApiError(ControlError::bad_request(format!(
                    "path parameter {name} must be 1 to 200 characters without control characters"
                ))));
            }
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|e| ApiError(ControlError::bad_request(e.body_text())))
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
            .map_err(|e| ApiError(ControlError::bad_request(e.body_text())))
    }
}

/// The console session of the request: `Authorization: Bearer cs_...` or
/// the `confab_session` cookie.
#[derive(Debug, Clone)]
pub struct Auth {
    pub actor: Actor,
    pub account: Account,
    pub token: String,
}

impl Auth {
    /// Refuses tenant admins (for operator-only operations checked here
    /// rather than in the service).
    pub fn require_operator(&self) -> ApiResult<()> {
        match self.actor {
            Actor::TenantAdmin { .. } => Err(ApiError(ControlError::forbidden(
                "only an operator may do this",
            ))),
            _ => Ok(()),
        }
    }
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.trim().split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_owned());
    }
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_owned())
}

impl FromRequestParts<ApiState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let token = session_token(&parts.headers).ok_or_else(|| {
            ControlError::unauthorized("sign in: Authorization: Bearer cs_... is missing")
        })?;
        let (actor, account) = state.control.authenticate(&token).await?;
        Ok(Self {
            actor,
            account,
            token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_token_in_the_header_or_the_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(session_token(&h), None);
        h.insert(COOKIE, HeaderValue::from_static("a=b; confab_session=cs_x"));
        assert_eq!(session_token(&h).as_deref(), Some("cs_x"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer cs_y"));
        assert_eq!(session_token(&h).as_deref(), Some("cs_y"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(session_token(&h), None);
    }

    #[test]
    fn codes_have_their_statuses() {
        assert_eq!(status_of("bad_request"), StatusCode::BAD_REQUEST);
        assert_eq!(status_of("suspended"), StatusCode::FORBIDDEN);
        assert_eq!(status_of("conflict"), StatusCode::CONFLICT);
        assert_eq!(status_of("unavailable"), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_of("bad_config"), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
