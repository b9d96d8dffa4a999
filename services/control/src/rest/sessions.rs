//! Sign-in, sign-out, the signed-in account, and accounts.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::ApiState;
use super::dto::{Account, AccountList, CreateAccount, Login, PageQuery, Session, rfc3339};
use super::extract::{ApiQuery, ApiResult, Auth, JsonBody};
use super::idempotency;
use super::page::paginate;

/// Signs in: a session token for `Authorization: Bearer` (12 hours).
#[utoipa::path(
    post,
    path = "/admin/v1/sessions",
    tag = "sessions",
    operation_id = "create_session",
    security(()),
    request_body = Login,
    responses(
        (status = 201, description = "Signed in", body = Session,
         example = json!({"token": "cs_9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "expires_at": "2024-05-02T00:00:00.000Z",
                          "account": {"account_id": "acct_01jd8x4k2m3n4p5q6r7s8t9v0w", "username": "admin", "role": "operator", "tenant_id": null, "created_at": "2024-05-01T12:00:00.000Z"}})),
        (status = 400, response = super::BadRequest),
        (status = 401, description = "Wrong username or password", body = super::dto::ErrorBody,
         example = json!({"error": {"code": "unauthorized", "message": "wrong username or password", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})),
        (status = 403, description = "The account's tenant is suspended", body = super::dto::ErrorBody,
         example = json!({"error": {"code": "suspended", "message": "this tenant is suspended", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn login(
    State(state): State<ApiState>,
    JsonBody(body, _): JsonBody<Login>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let (token, expires_at, account) = state.control.login(&body.username, &body.password).await?;
    Ok((
        StatusCode::CREATED,
        Json(Session {
            token,
            expires_at: rfc3339(expires_at),
            account: account.into(),
        }),
    ))
}

/// Signs out: the session's token stops working.
#[utoipa::path(
    delete,
    path = "/admin/v1/sessions/current",
    tag = "sessions",
    operation_id = "delete_current_session",
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, response = super::Unauthorized),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn logout(State(state): State<ApiState>, auth: Auth) -> ApiResult<StatusCode> {
    state.control.logout(&auth.token).await?;
    Ok(StatusCode::NO_CONTENT)
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
