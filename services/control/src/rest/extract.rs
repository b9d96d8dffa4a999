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

/// The cookie a browser console may send instead of the bearer header
/// (HttpOnly, SameSite=Strict, Path=/admin/; set by
/// `POST /admin/v1/sessions` with `"cookie": true`).
pub const SESSION_COOKIE: &str = "confab_session";
/// The header an unsafe request authenticated by the cookie must carry,
/// with the session's CSRF token (from sign-in or
/// `GET /admin/v1/sessions/current`).
pub const CSRF_HEADER: &str = "x-csrf-token";
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
        "forbidden" | "suspended" | "csrf_failed" => StatusCode::FORBIDDEN,
        "rate_limited" => StatusCode::TOO_MANY_REQUESTS,
        "bad_gateway" => StatusCode::BAD_GATEWAY,
        "data_plane_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "not_found" => StatusCode::NOT_FOUND,
        "method_not_allowed" => StatusCode::METHOD_NOT_ALLOWED,
        "conflict" => StatusCode::CONFLICT,
        "payload_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "content_blocked" => StatusCode::UNPROCESSABLE_ENTITY,
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
    // Answers carry secrets (session and app keys, shown once): never cached,
    // never sniffed into something executable.
    let headers = response.headers_mut();
    headers
        .entry(axum::http::header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
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
            // About the cell, not this server's internals: the operator
            // needs it to fix the cell (or its api_url).
            "data_plane_unavailable" | "bad_gateway" => error.message,
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
    /// Whether the token came from the cookie (a browser) rather than the
    /// `Authorization` header.
    pub via_cookie: bool,
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

/// Where a request's session token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TokenSource {
    Header(String),
    Cookie(String),
}

fn session_token(headers: &HeaderMap) -> Option<TokenSource> {
    if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.trim().split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| TokenSource::Header(token.trim().to_owned()));
    }
    cookie(headers, SESSION_COOKIE).map(TokenSource::Cookie)
}

/// The value of the named cookie, if the request has it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The CSRF token of a session: derived from the session token (a hash with
/// a domain prefix), so nothing more is stored, it dies with the session,
/// and it reveals nothing of the session token. Page scripts can read it
/// (from the sign-in answer or `GET /admin/v1/sessions/current`), pages of
/// other origins cannot — which is the point (the synchronizer-token
/// pattern).
pub fn csrf_token(session_token: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"confab-console-csrf\0")
        .chain_update(session_token.as_bytes())
        .finalize();
    hex(&digest)
}

/// Whether a method changes things (RFC 9110 "safe" methods do not).
fn is_unsafe(method: &axum::http::Method) -> bool {
    !matches!(
        *method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    )
}

/// Constant-time equality (the token is a secret of the session).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// CSRF checks for an unsafe request. A browser marks a request another
/// site made with `Sec-Fetch-Site: cross-site`: refused whatever the
/// credentials (this also covers sign-in, where no session exists yet). A
/// request authenticated by the session cookie must also carry the
/// session's CSRF token in `X-CSRF-Token`: the cookie is sent by the
/// browser on its own, the header only by the console's own scripts.
/// Bearer requests need neither: no browser attaches that header by itself.
pub fn check_csrf(parts: &Parts, cookie_session: Option<&str>) -> ApiResult<()> {
    if !is_unsafe(&parts.method) {
        return Ok(());
    }
    let cross_site = parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"));
    if cross_site {
        return Err(ApiError(ControlError::new(
            "csrf_failed",
            "cross-site requests may not change anything",
        )));
    }
    let Some(session) = cookie_session else {
        return Ok(());
    };
    let given = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if given.is_empty() {
        return Err(ApiError(ControlError::new(
            "csrf_failed",
            "a change made with the session cookie needs the X-CSRF-Token header (from sign-in or GET /admin/v1/sessions/current)",
        )));
    }
    if !same(given.as_bytes(), csrf_token(session).as_bytes()) {
        return Err(ApiError(ControlError::new(
            "csrf_failed",
            "the X-CSRF-Token header is not this session's",
        )));
    }
    Ok(())
}

impl FromRequestParts<ApiState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let source = session_token(&parts.headers).ok_or_else(|| {
            ControlError::unauthorized(
                "sign in: send Authorization: Bearer cs_... (or the console's session cookie)",
            )
        })?;
        let (token, via_cookie) = match source {
            TokenSource::Header(t) => (t, false),
            TokenSource::Cookie(t) => (t, true),
        };
        let (actor, account) = state.control.authenticate(&token).await?;
        // After authentication: a stale cookie is a 401 (sign in again),
        // not a CSRF refusal.
        check_csrf(parts, via_cookie.then_some(token.as_str()))?;
        Ok(Self {
            actor,
            account,
            token,
            via_cookie,
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
        assert_eq!(session_token(&h), Some(TokenSource::Cookie("cs_x".into())));
        h.insert(AUTHORIZATION, HeaderValue::from_static("bearer cs_y"));
        assert_eq!(session_token(&h), Some(TokenSource::Header("cs_y".into())));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(session_token(&h), None);
    }

    #[test]
    fn csrf_tokens_are_per_session_and_not_the_session() {
        let a = csrf_token("cs_a");
        assert_eq!(a, csrf_token("cs_a"));
        assert_ne!(a, csrf_token("cs_b"));
        assert!(!a.contains("cs_a"));
        assert!(same(a.as_bytes(), a.as_bytes()));
        assert!(!same(a.as_bytes(), b"short"));
    }

    #[test]
    fn codes_have_their_statuses() {
        assert_eq!(status_of("csrf_failed"), StatusCode::FORBIDDEN);
        assert_eq!(status_of("bad_gateway"), StatusCode::BAD_GATEWAY);
        assert_eq!(status_of("bad_request"), StatusCode::BAD_REQUEST);
        assert_eq!(status_of("suspended"), StatusCode::FORBIDDEN);
        assert_eq!(status_of("conflict"), StatusCode::CONFLICT);
        assert_eq!(status_of("unavailable"), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(status_of("bad_config"), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
