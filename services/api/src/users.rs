//! `/v1/users`: the profiles a tenant's backend keeps here — create one,
//! import up to 1 000 at once, get, update, delete.
//!
//! A profile is optional: any user id logs in with a token the app minted,
//! imported or not (a user without a profile is simply `404
//! user_not_found` here). Deleting a user removes its profile, revokes its
//! tokens and kicks its live sessions (as `POST .../revoke` does), forgets
//! its push devices and clears its inbox and conversation list; the
//! messages it exchanged stay in the other participants' inboxes and in the
//! conversations' history.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use confab_model::UserId;
use confab_store::{ProfileUpdate, UserProfile};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use utoipa::ToSchema;

use crate::ApiState;
use crate::auth::Caller;
use crate::dto::rfc3339;
use crate::error::{ApiError, ApiPath, ApiResult, JsonBody};
use crate::routes::SYSTEM_USER;

/// Most users of one import.
pub const MAX_IMPORT: usize = 1000;
/// Longest nickname, in characters.
pub const MAX_NICKNAME: usize = 128;
/// Longest avatar URL, in bytes.
pub const MAX_AVATAR_URL: usize = 1024;
/// Largest `custom` object, in bytes of compact JSON.
pub const MAX_CUSTOM: usize = 4096;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"user_id": "alice", "nickname": "Alice", "avatar_url": "https://cdn.example.com/alice.png", "custom": {"tier": "gold"}}))]
pub struct CreateUser {
    /// 1 to 64 characters of `A-Z a-z 0-9 _ . @ -`; `system` is reserved.
    pub user_id: String,
    /// At most 128 characters; default empty.
    #[serde(default)]
    pub nickname: String,
    /// At most 1 024 bytes; default empty.
    #[serde(default)]
    pub avatar_url: String,
    /// The app's own data: a JSON object of at most 4 096 bytes; default `{}`.
    #[schema(value_type = Option<Object>)]
    pub custom: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"user_id": "alice", "nickname": "Alice", "avatar_url": "https://cdn.example.com/alice.png", "custom": {"tier": "gold"}, "created_at": "2026-11-25T14:00:00.000Z", "updated_at": "2026-11-25T14:00:00.000Z"}))]
pub struct UserOut {
    pub user_id: String,
    pub nickname: String,
    pub avatar_url: String,
    #[schema(value_type = Object)]
    pub custom: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&UserProfile> for UserOut {
    fn from(p: &UserProfile) -> Self {
        Self {
            user_id: p.user_id.as_str().to_owned(),
            nickname: p.nickname.clone(),
            avatar_url: p.avatar_url.clone(),
            custom: serde_json::from_str(&p.custom)
                .unwrap_or_else(|_| serde_json::Value::Object(Default::default())),
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"users": [{"user_id": "alice", "nickname": "Alice"}, {"user_id": "bob", "nickname": "Bob", "custom": {"tier": "free"}}]}))]
pub struct ImportUsers {
    /// 1 to 1 000 users.
    pub users: Vec<CreateUser>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportError {
    pub code: String,
    pub message: String,
}

/// One user's outcome.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportResult {
    pub user_id: String,
    /// `created`; `exists` (a profile was there already and is left
    /// unchanged — also a repeat of an id within the request); or `invalid`
    /// (see `error`).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ImportError>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"user_id": "alice", "status": "created"}, {"user_id": "bob", "status": "exists"}, {"user_id": "bad id", "status": "invalid", "error": {"code": "bad_request", "message": "user_id: must be 1 to 64 characters of A-Z a-z 0-9 _ . @ -"}}], "created": 1, "existing": 1, "invalid": 1}))]
pub struct Imported {
    /// One per user asked, in the order asked.
    pub items: Vec<ImportResult>,
    pub created: usize,
    pub existing: usize,
    pub invalid: usize,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"nickname": "Alice B.", "custom": {"tier": "platinum"}}))]
pub struct UpdateUser {
    /// At most 128 characters.
    pub nickname: Option<String>,
    /// At most 1 024 bytes.
    pub avatar_url: Option<String>,
    /// Replaces the stored object as a whole (send every key to keep): a
    /// JSON object of at most 4 096 bytes.
    #[schema(value_type = Option<Object>)]
    pub custom: Option<serde_json::Map<String, serde_json::Value>>,
}

fn user_id(raw: &str) -> ApiResult<UserId> {
    if raw == SYSTEM_USER {
        return Err(ApiError::bad_request(format!(
            "user_id: {SYSTEM_USER:?} is reserved for messages sent as the system"
        )));
    }
    UserId::parse(raw).map_err(|e| ApiError::bad_request(format!("user_id: {e}")))
}

fn user_not_found() -> ApiError {
    ApiError::new("user_not_found", "no such user in this app")
}

fn check_nickname(v: &str) -> ApiResult<()> {
    if v.chars().count() > MAX_NICKNAME || v.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "nickname must be at most {MAX_NICKNAME} characters without control characters"
        )));
    }
    Ok(())
}

fn check_avatar(v: &str) -> ApiResult<()> {
    if v.len() > MAX_AVATAR_URL || v.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "avatar_url must be at most {MAX_AVATAR_URL} bytes without control characters"
        )));
    }
    Ok(())
}

fn custom_text(v: Option<serde_json::Map<String, serde_json::Value>>) -> ApiResult<Option<String>> {
    let Some(map) = v else { return Ok(None) };
    let text = serde_json::Value::Object(map).to_string();
    if text.len() > MAX_CUSTOM {
        return Err(ApiError::bad_request(format!(
            "custom is larger than {MAX_CUSTOM} bytes"
        )));
    }
    Ok(Some(text))
}

/// A checked profile to store.
fn profile(u: CreateUser, now: i64) -> ApiResult<UserProfile> {
    let id = user_id(&u.user_id)?;
    check_nickname(&u.nickname)?;
    check_avatar(&u.avatar_url)?;
    Ok(UserProfile {
        user_id: id,
        nickname: u.nickname,
        avatar_url: u.avatar_url,
        custom: custom_text(u.custom)?.unwrap_or_else(|| "{}".to_owned()),
        created_at: now,
        updated_at: now,
    })
}

/// Create a user.
///
/// Stores the user's profile. An existing user is `409 user_exists` (its
/// profile is not changed: use `PATCH`). Accepts `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "users",
    operation_id = "create_user",
    params(("Idempotency-Key" = Option<String>, Header, description = "16 to 255 visible ASCII characters; a repeat returns the first response")),
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = UserOut),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 409, description = "The user exists (`user_exists`), or the Idempotency-Key was used with another request (`conflict`)", body = crate::ErrorBody,
            example = json!({"error": {"code": "user_exists", "message": "user alice exists; change it with PATCH", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn create_user(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(body, hash): JsonBody<CreateUser>,
) -> ApiResult<Response> {
    let p = profile(body, confab_model::now_ms())?;
    let span = tracing::info_span!("rest_create_user", app = %caller.app_id.as_str(), user = %p.user_id.as_str());
    state
        .idempotency
        .run(
            caller.app_id.as_str(),
            &headers,
            &hash,
            StatusCode::CREATED,
            async {
                let created = state
                    .logic
                    .stores()
                    .users
                    .import_users(&caller.app_id, std::slice::from_ref(&p))
                    .await?;
                if created.first() != Some(&true) {
                    return Err(ApiError::new(
                        "user_exists",
                        format!("user {} exists; change it with PATCH", p.user_id.as_str()),
                    ));
                }
                Ok(UserOut::from(&p))
            }
            .instrument(span),
        )
        .await
}

/// Import users.
///
/// Creates up to 1 000 users in one call, with a result per user: users
/// that exist already are reported as `exists` and left unchanged (never
/// overwritten), so an import can be repeated safely; invalid entries are
/// reported as `invalid` and do not stop the others. Accepts
/// `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/users/import",
    tag = "users",
    operation_id = "import_users",
    params(("Idempotency-Key" = Option<String>, Header, description = "16 to 255 visible ASCII characters; a repeat returns the first response")),
    request_body = ImportUsers,
    responses(
        (status = 200, description = "Each user's outcome", body = Imported),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 409, response = crate::Conflict),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn import_users(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    JsonBody(body, hash): JsonBody<ImportUsers>,
) -> ApiResult<Response> {
    if body.users.is_empty() || body.users.len() > MAX_IMPORT {
        return Err(ApiError::bad_request(format!(
            "users must hold 1 to {MAX_IMPORT} users"
        )));
    }
    let now = confab_model::now_ms();
    let mut items: Vec<ImportResult> = Vec::with_capacity(body.users.len());
    let mut valid: Vec<(usize, UserProfile)> = Vec::with_capacity(body.users.len());
    for u in body.users {
        let asked = u.user_id.clone();
        match profile(u, now) {
            Ok(p) => {
                valid.push((items.len(), p));
                items.push(ImportResult {
                    user_id: asked,
                    status: String::new(),
                    error: None,
                });
            }
            Err(e) => items.push(ImportResult {
                user_id: asked,
                status: "invalid".into(),
                error: Some(ImportError {
                    code: e.code,
                    message: e.message,
                }),
            }),
        }
    }
    let span = tracing::info_span!("rest_import_users", app = %caller.app_id.as_str(), users = items.len());
    let users = state.logic.stores().users.clone();
    let app = caller.app_id.clone();
    state
        .idempotency
        .run(
            caller.app_id.as_str(),
            &headers,
            &hash,
            StatusCode::OK,
            async move {
                let profiles: Vec<UserProfile> = valid.iter().map(|(_, p)| p.clone()).collect();
                let created = if profiles.is_empty() {
                    Vec::new()
                } else {
                    users.import_users(&app, &profiles).await?
                };
                for ((i, _), created) in valid.iter().zip(created) {
                    items[*i].status = if created { "created" } else { "exists" }.into();
                }
                let count = |s: &str| items.iter().filter(|r| r.status == s).count();
                Ok(Imported {
                    created: count("created"),
                    existing: count("exists"),
                    invalid: count("invalid"),
                    items,
                })
            }
            .instrument(span),
        )
        .await
}

/// A user's profile.
#[utoipa::path(
    get,
    path = "/v1/users/{user_id}",
    tag = "users",
    operation_id = "get_user",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The profile", body = UserOut),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, description = "No such user in this app (`user_not_found`): never imported, or deleted", body = crate::ErrorBody,
            example = json!({"error": {"code": "user_not_found", "message": "no such user in this app", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn get_user(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(user): ApiPath<String>,
) -> ApiResult<Json<UserOut>> {
    let user = user_id(&user)?;
    let p = state
        .logic
        .stores()
        .users
        .user(&caller.app_id, &user)
        .await?
        .ok_or_else(user_not_found)?;
    Ok(Json(UserOut::from(&p)))
}

/// Update a user's profile.
///
/// Changes only the fields given; `custom` replaces the stored object as a
/// whole (send every key to keep; `{}` clears it).
#[utoipa::path(
    patch,
    path = "/v1/users/{user_id}",
    tag = "users",
    operation_id = "update_user",
    params(("user_id" = String, Path, description = "The user's id")),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "The profile after the change", body = UserOut),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, description = "No such user in this app (`user_not_found`)", body = crate::ErrorBody,
            example = json!({"error": {"code": "user_not_found", "message": "no such user in this app", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn update_user(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(user): ApiPath<String>,
    JsonBody(body, _hash): JsonBody<UpdateUser>,
) -> ApiResult<Json<UserOut>> {
    let user = user_id(&user)?;
    if let Some(v) = &body.nickname {
        check_nickname(v)?;
    }
    if let Some(v) = &body.avatar_url {
        check_avatar(v)?;
    }
    let update = ProfileUpdate {
        nickname: body.nickname,
        avatar_url: body.avatar_url,
        custom: custom_text(body.custom)?,
    };
    if update == ProfileUpdate::default() {
        return Err(ApiError::bad_request(
            "nothing to change: give nickname, avatar_url or custom",
        ));
    }
    let p = state
        .logic
        .stores()
        .users
        .update_user(&caller.app_id, &user, update, confab_model::now_ms())
        .await?
        .ok_or_else(user_not_found)?;
    Ok(Json(UserOut::from(&p)))
}

/// Delete a user.
///
/// Removes the profile, revokes every token issued so far and kicks the
/// user's live sessions (as `POST /v1/users/{user_id}/revoke`), forgets its
/// push devices, and clears its inbox and conversation list. Messages it
/// exchanged stay in the other participants' inboxes and in history; group
/// memberships are left as they are. A later token (minted after the
/// deletion) logs in as a user with an empty inbox.
#[utoipa::path(
    delete,
    path = "/v1/users/{user_id}",
    tag = "users",
    operation_id = "delete_user",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, description = "No such user in this app (`user_not_found`); nothing was changed", body = crate::ErrorBody,
            example = json!({"error": {"code": "user_not_found", "message": "no such user in this app", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn delete_user(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(user): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let user = user_id(&user)?;
    let app = &caller.app_id;
    let span = tracing::info_span!("rest_delete_user", app = %app.as_str(), user = %user.as_str());
    async {
        let stores = state.logic.stores();
        if stores.users.user(app, &user).await?.is_none() {
            return Err(user_not_found());
        }
        // Sessions first, so that nothing the user does races the cleanup;
        // the profile last, so that a failure half-way leaves the user
        // findable and the DELETE can be retried.
        let now = confab_model::now_ms();
        stores.revocations.revoke_tokens(app, &user, now).await?;
        state.logic.delivery().kick_user(app, &user, "user deleted");
        for d in stores.devices.push_devices(app, &user).await? {
            stores
                .devices
                .unregister_push(app, &user, &d.device_id)
                .await?;
        }
        stores.inbox.clear_inbox(app, &user).await?;
        stores.users.delete_user(app, &user).await?;
        tracing::info!("user deleted");
        Ok(StatusCode::NO_CONTENT)
    }
    .instrument(span)
    .await
}
