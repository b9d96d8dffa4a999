//! Sign-in, sign-out, the signed-in account, and accounts.

use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::dto::{
    Account, AccountList, CreateAccount, CurrentSession, Login, PageQuery, Session, rfc3339,
};
use super::extract::{ApiQuery, ApiResult, Auth, JsonBody, SESSION_COOKIE, check_csrf, csrf_token};
use super::idempotency;
use super::page::paginate;

/// Whether the console is reached over HTTPS (directly or through a proxy
/// that says so): then the cookie is `Secure`. A client that lies about it
/// only changes its own cookie.
fn over_https(headers: &HeaderMap) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    header("x-forwarded-proto").split(',').next().map(str::trim) == Some("https")
        || header("origin").starts_with("https://")
}

/// The `Set-Cookie` value of the session cookie (`max_age` 0 clears it).
fn session_cookie(value: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/admin/; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    );
    // Tokens are `cs_` + hex: always a valid header value.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Signs in: a session token for `Authorization: Bearer` (12 hours), or
/// with `"cookie": true` an HttpOnly session cookie for the web console.
#[utoipa::path(
    post,
    path = "/admin/v1/sessions",
    tag = "sessions",
    operation_id = "create_session",
    security(()),
    request_body = Login,
    responses(
        (status = 201, description = "Signed in (with `cookie: true`: `Set-Cookie: confab_session=...; HttpOnly; SameSite=Strict` and no `token` in the body)", body = Session,
         example = json!({"token": "cs_9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "expires_at": "2024-05-02T00:00:00.000Z",
                          "account": {"account_id": "acct_01jd8x4k2m3n4p5q6r7s8t9v0w", "username": "admin", "role": "operator", "tenant_id": null, "created_at": "2024-05-01T12:00:00.000Z"},
                          "csrf_token": "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"})),
        (status = 400, response = super::BadRequest),
        (status = 401, description = "Wrong username or password", body = super::dto::ErrorBody,
         example = json!({"error": {"code": "unauthorized", "message": "wrong username or password", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})),
        (status = 403, description = "The account's tenant is suspended (`suspended`), or a cross-site request (`csrf_failed`)", body = super::dto::ErrorBody,
         example = json!({"error": {"code": "suspended", "message": "this tenant is suspended", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn login(
    State(state): State<ApiState>,
    _csrf: Csrf,
    headers: HeaderMap,
    JsonBody(body, _): JsonBody<Login>,
) -> ApiResult<Response> {
    let (token, expires_at, account) = state.control.login(&body.username, &body.password).await?;
    let session = Session {
        token: (!body.cookie).then(|| token.clone()),
        expires_at: rfc3339(expires_at),
        account: account.into(),
        csrf_token: csrf_token(&token),
    };
    let mut response = (StatusCode::CREATED, Json(session)).into_response();
    if body.cookie {
        let max_age = (expires_at - confab_model::now_ms()).max(0) / 1000;
        response.headers_mut().insert(
            SET_COOKIE,
            session_cookie(&token, max_age, over_https(&headers)),
        );
    }
    Ok(response)
}

/// Refuses unsafe requests another site made (`Sec-Fetch-Site:
/// cross-site`) on endpoints without a session (sign-in: login CSRF).
pub struct Csrf;

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Csrf {
    type Rejection = super::extract::ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        check_csrf(parts, None).map(|()| Csrf)
    }
}

/// Signs out: the session's token stops working, and the session cookie is
/// cleared.
#[utoipa::path(
    delete,
    path = "/admin/v1/sessions/current",
    tag = "sessions",
    operation_id = "delete_current_session",
    responses(
        (status = 204, description = "Signed out (the session cookie is cleared)"),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn logout(
    State(state): State<ApiState>,
    headers: HeaderMap,
    auth: Auth,
) -> ApiResult<Response> {
    state.control.logout(&auth.token).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie("", 0, over_https(&headers)));
    Ok(response)
}

/// The session of the request: its account and its CSRF token (how the
/// console, whose session is in an HttpOnly cookie, learns the token after
/// a reload).
#[utoipa::path(
    get,
    path = "/admin/v1/sessions/current",
    tag = "sessions",
    operation_id = "get_current_session",
    responses(
        (status = 200, description = "The session", body = CurrentSession),
        (status = 401, response = super::Unauthorized),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn current(auth: Auth) -> Json<CurrentSession> {
    Json(CurrentSession {
        csrf_token: csrf_token(&auth.token),
        cookie: auth.via_cookie,
        account: auth.account.into(),
    })
}

/// The signed-in account.
#[utoipa::path(
    get,
    path = "/admin/v1/me",
    tag = "sessions",
    operation_id = "get_me",
    responses(
        (status = 200, description = "The signed-in account", body = Account),
        (status = 401, response = super::Unauthorized),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn me(auth: Auth) -> Json<Account> {
    Json(auth.account.into())
}

/// Accounts: all for an operator, its own tenant's for a tenant admin.
#[utoipa::path(
    get,
    path = "/admin/v1/accounts",
    tag = "accounts",
    operation_id = "list_accounts",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of accounts, by id", body = AccountList),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn list_accounts(
    State(state): State<ApiState>,
    auth: Auth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<AccountList>> {
    let accounts = state.control.accounts(&auth.actor).await?;
    let (items, next_cursor) = paginate(accounts, |a| a.account_id.clone(), &page)?;
    Ok(Json(AccountList {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Creates an operator (operator only) or a tenant admin (an operator for
/// any tenant, a tenant admin for its own).
#[utoipa::path(
    post,
    path = "/admin/v1/accounts",
    tag = "accounts",
    operation_id = "create_account",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a repeat return the first response (16 to 255 characters; a random UUID)")),
    request_body(content = CreateAccount,
        example = json!({"username": "alice", "password": "a long passphrase", "role": "tenant_admin", "tenant_id": "t_01jd8x4k2m3n4p5q6r7s8t9v0w"})),
    responses(
        (status = 201, description = "The new account", body = Account),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 409, response = super::Conflict),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn create_account(
    State(state): State<ApiState>,
    auth: Auth,
    headers: HeaderMap,
    JsonBody(body, hash): JsonBody<CreateAccount>,
) -> ApiResult<Response> {
    idempotency::run(&state, &auth, &headers, &hash, StatusCode::CREATED, async {
        let account = state
            .control
            .create_account(
                &auth.actor,
                &body.username,
                &body.password,
                body.role,
                body.tenant_id.as_deref(),
            )
            .await?;
        Ok(Account::from(account))
    })
    .await
}
