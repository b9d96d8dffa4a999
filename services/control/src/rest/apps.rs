//! Apps, their keys and quotas.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::ApiState;
use super::dto::{
    App, AppList, AppsQuery, CreateApp, CreatedApp, CreatedKey, Key, KeyList, PageQuery, PatchApp,
    Quotas, quotas_differ,
};
use super::extract::{ApiError, ApiPath, ApiQuery, ApiResult, Auth, JsonBody, RequestHash};
use super::idempotency;
use super::page::paginate;
use crate::error::ControlError;
use crate::model::Status;
use crate::service::Actor;

fn quotas_forbidden() -> ApiError {
    ApiError(ControlError::forbidden(
        "only an operator may change quotas (quotas, max_body_bytes, retention_days, recall_window_ms, read_diffusion_threshold)",
    ))
}

fn is_tenant_admin(actor: &Actor) -> bool {
    matches!(actor, Actor::TenantAdmin { .. })
}

/// Apps: all (or one tenant's) for an operator, its own tenant's for a tenant admin.
#[utoipa::path(
    get,
    path = "/admin/v1/apps",
    tag = "apps",
    operation_id = "list_apps",
    params(AppsQuery),
    responses(
        (status = 200, description = "A page of apps, by id", body = AppList),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn list_apps(
    State(state): State<ApiState>,
    auth: Auth,
    ApiQuery(query): ApiQuery<AppsQuery>,
) -> ApiResult<Json<AppList>> {
    let apps = state
        .control
        .apps(
            &auth.actor,
            query.tenant_id.as_deref().filter(|t| !t.is_empty()),
        )
        .await?;
    let (items, next_cursor) = paginate(apps, |a| a.app_id.clone(), &query.page())?;
    Ok(Json(AppList {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Creates an app with its first key; the answer shows the key's secret,
/// the only time it is shown.
#[utoipa::path(
    post,
    path = "/admin/v1/apps",
    tag = "apps",
    operation_id = "create_app",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a repeat return the first response (16 to 255 characters; a random UUID)")),
    request_body(content = CreateApp, example = json!({"tenant_id": "t_01jd8x4k2m3n4p5q6r7s8t9v0w", "name": "chat", "settings": {"kick_policy": "one_in_all"}})),
    responses(
        (status = 201, description = "The new app, its first key and that key's secret (shown once)", body = CreatedApp),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 409, response = super::Conflict),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn create_app(
    State(state): State<ApiState>,
    auth: Auth,
    headers: HeaderMap,
    JsonBody(body, hash): JsonBody<CreateApp>,
) -> ApiResult<Response> {
    let tenant = state.control.tenant(&auth.actor, &body.tenant_id).await?;
    let defaults = confab_model::AppSettings::default();
    let settings = match &body.settings {
        Some(patch) => Some(patch.apply(&defaults)?),
        None => None,
    };
    if is_tenant_admin(&auth.actor)
        && settings
            .as_ref()
            .is_some_and(|s| quotas_differ(s, &defaults))
    {
        return Err(quotas_forbidden());
    }
    idempotency::run(&state, &auth, &headers, &hash, StatusCode::CREATED, async {
        let created = state
            .control
            .create_app(&auth.actor, &tenant.tenant_id, &body.name, settings)
            .await?;
        Ok(CreatedApp::from(created))
    })
    .await
}

/// An app.
#[utoipa::path(
    get,
    path = "/admin/v1/apps/{app_id}",
    tag = "apps",
    operation_id = "get_app",
    params(("app_id" = String, Path, description = "The app's id")),
    responses(
        (status = 200, description = "The app", body = App),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn get_app(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult<Json<App>> {
    Ok(Json(state.control.app(&auth.actor, &app_id).await?.into()))
}

/// Renames an app, changes its settings (each given field; quotas only by an
/// operator) or its status.
#[utoipa::path(
    patch,
    path = "/admin/v1/apps/{app_id}",
    tag = "apps",
    operation_id = "update_app",
    params(("app_id" = String, Path, description = "The app's id")),
    request_body(content = PatchApp, example = json!({"name": "chat-prod", "settings": {"kick_policy": "one_per_platform", "quotas": {"max_connections": 50000}}})),
    responses(
        (status = 200, description = "The app after the change", body = App),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn patch_app(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
    JsonBody(body, _): JsonBody<PatchApp>,
) -> ApiResult<Json<App>> {
    let app = state.control.app(&auth.actor, &app_id).await?;
    if body.name.is_none() && body.settings.is_none() && body.status.is_none() {
        return Err(ApiError(ControlError::bad_request(
            "give at least one of name, settings, status",
        )));
    }
    let settings = match &body.settings {
        Some(patch) => Some(patch.apply(&app.settings)?),
        None => None,
    };
    if is_tenant_admin(&auth.actor)
        && settings
            .as_ref()
            .is_some_and(|s| quotas_differ(s, &app.settings))
    {
        return Err(quotas_forbidden());
    }
    let app = state
        .control
        .update_app(
            &auth.actor,
            &app.app_id,
            body.name.as_deref(),
            settings,
            body.status,
        )
        .await?;
    Ok(Json(app.into()))
}

/// Deletes an app with its keys and word list.
#[utoipa::path(
    delete,
    path = "/admin/v1/apps/{app_id}",
    tag = "apps",
    operation_id = "delete_app",
    params(("app_id" = String, Path, description = "The app's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn delete_app(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.control.delete_app(&auth.actor, &app_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_status(
    state: &ApiState,
    auth: &Auth,
    app_id: &str,
    status: Status,
) -> ApiResult<Json<App>> {
    let app = state
        .control
        .update_app(&auth.actor, app_id, None, None, Some(status))
        .await?;
    Ok(Json(app.into()))
}

/// Suspends an app: it refuses logins and REST calls with `suspended`, and
/// its live sessions are kicked.
#[utoipa::path(
    post,
    path = "/admin/v1/apps/{app_id}/suspend",
    tag = "apps",
    operation_id = "suspend_app",
    params(("app_id" = String, Path, description = "The app's id")),
    responses(
        (status = 200, description = "The suspended app", body = App),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn suspend_app(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult<Json<App>> {
    set_status(&state, &auth, &app_id, Status::Suspended).await
}

/// Resumes a suspended app.
#[utoipa::path(
    post,
    path = "/admin/v1/apps/{app_id}/resume",
    tag = "apps",
    operation_id = "resume_app",
    params(("app_id" = String, Path, description = "The app's id")),
    responses(
        (status = 200, description = "The active app", body = App),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn resume_app(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult<Json<App>> {
    set_status(&state, &auth, &app_id, Status::Active).await
}

// ---- keys ----

/// An app's keys, active and revoked (never a secret).
#[utoipa::path(
    get,
    path = "/admin/v1/apps/{app_id}/keys",
    tag = "keys",
    operation_id = "list_keys",
    params(("app_id" = String, Path, description = "The app's id"), PageQuery),
    responses(
        (status = 200, description = "A page of keys, by id (oldest first)", body = KeyList),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn list_keys(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<KeyList>> {
    let keys = state.control.keys(&auth.actor, &app_id).await?;
    let (items, next_cursor) = paginate(keys, |k| k.key_id.clone(), &page)?;
    Ok(Json(KeyList {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Creates a second key (rotation: create the new key, move signers to it,
/// revoke the old one). The answer shows the secret, the only time it is
/// shown. An app has at most two active keys.
#[utoipa::path(
    post,
    path = "/admin/v1/apps/{app_id}/keys",
    tag = "keys",
    operation_id = "create_key",
    params(
        ("app_id" = String, Path, description = "The app's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a repeat return the first response (16 to 255 characters; a random UUID)"),
    ),
    responses(
        (status = 201, description = "The new key and its secret (shown once)", body = CreatedKey),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 409, description = "The app has two active keys already", body = super::dto::ErrorBody,
         example = json!({"error": {"code": "conflict", "message": "an app has at most two active keys: revoke one first", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn create_key(
    State(state): State<ApiState>,
    auth: Auth,
    headers: HeaderMap,
    ApiPath(app_id): ApiPath<String>,
    hash: RequestHash,
) -> ApiResult<Response> {
    idempotency::run(&state, &auth, &headers, &hash, StatusCode::CREATED, async {
        Ok(CreatedKey::from(
            state.control.create_key(&auth.actor, &app_id).await?,
        ))
    })
    .await
}

/// Revokes a key: user tokens it signed and server calls with its secret
/// stop working within seconds.
#[utoipa::path(
    post,
    path = "/admin/v1/apps/{app_id}/keys/{key_id}/revoke",
    tag = "keys",
    operation_id = "revoke_key",
    params(
        ("app_id" = String, Path, description = "The app's id"),
        ("key_id" = String, Path, description = "The key's id"),
    ),
    responses(
        (status = 200, description = "The revoked key", body = Key),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, description = "No such active key of this app", body = super::dto::ErrorBody,
         example = json!({"error": {"code": "not_found", "message": "no active key \"key_01jd8x4k2m3n4p5q6r7s8t9v0w\"", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn revoke_key(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath((app_id, key_id)): ApiPath<(String, String)>,
) -> ApiResult<Json<Key>> {
    let key = state
        .control
        .revoke_key(&auth.actor, Some(&app_id), &key_id)
        .await?;
    Ok(Json(key.into()))
}

// ---- quotas ----

/// An app's quotas.
#[utoipa::path(
    get,
    path = "/admin/v1/apps/{app_id}/quotas",
    tag = "quotas",
    operation_id = "get_quotas",
    params(("app_id" = String, Path, description = "The app's id")),
    responses(
        (status = 200, description = "The app's quotas", body = Quotas),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn get_quotas(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult<Json<Quotas>> {
    let app = state.control.app(&auth.actor, &app_id).await?;
    Ok(Json(app.settings.quotas.into()))
}

/// Replaces an app's quotas (operator only). Body size, retention and the
/// recall window are in the app's settings (`PATCH /admin/v1/apps/{app_id}`).
#[utoipa::path(
    put,
    path = "/admin/v1/apps/{app_id}/quotas",
    tag = "quotas",
    operation_id = "put_quotas",
    params(("app_id" = String, Path, description = "The app's id")),
    request_body = Quotas,
    responses(
        (status = 200, description = "The app's quotas after the change", body = Quotas),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn put_quotas(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
    JsonBody(quotas, _): JsonBody<Quotas>,
) -> ApiResult<Json<Quotas>> {
    let app = state.control.app(&auth.actor, &app_id).await?;
    auth.require_operator()?;
    let mut settings = app.settings.clone();
    settings.quotas = quotas.into();
    let app = state
        .control
        .update_app(&auth.actor, &app.app_id, None, Some(settings), None)
        .await?;
    Ok(Json(app.settings.quotas.into()))
}
