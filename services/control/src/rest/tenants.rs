//! Tenants.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::ApiState;
use super::dto::{CreateTenant, PageQuery, PatchTenant, Tenant, TenantList};
use super::extract::{ApiError, ApiPath, ApiQuery, ApiResult, Auth, JsonBody};
use super::idempotency;
use super::page::paginate;
use crate::error::ControlError;
use crate::model::{DEFAULT_CELL, Status};

/// Tenants: all for an operator, its own for a tenant admin.
#[utoipa::path(
    get,
    path = "/admin/v1/tenants",
    tag = "tenants",
    operation_id = "list_tenants",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of tenants, by id", body = TenantList),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn list_tenants(
    State(state): State<ApiState>,
    auth: Auth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<TenantList>> {
    let tenants = state.control.tenants(&auth.actor).await?;
    let (items, next_cursor) = paginate(tenants, |t| t.tenant_id.clone(), &page)?;
    Ok(Json(TenantList {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Creates a tenant (operator only), in the `default` cell or the one named.
#[utoipa::path(
    post,
    path = "/admin/v1/tenants",
    tag = "tenants",
    operation_id = "create_tenant",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a repeat return the first response (16 to 255 characters; a random UUID)")),
    request_body(content = CreateTenant, example = json!({"name": "acme"})),
    responses(
        (status = 201, description = "The new tenant", body = Tenant),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 409, response = super::Conflict),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn create_tenant(
    State(state): State<ApiState>,
    auth: Auth,
    headers: HeaderMap,
    JsonBody(body, hash): JsonBody<CreateTenant>,
) -> ApiResult<Response> {
    auth.require_operator()?;
    if let Some(cell) = body.cell_id.as_deref().filter(|c| *c != DEFAULT_CELL) {
        let cells = state.control.cells(&auth.actor).await?;
        if !cells.iter().any(|c| c.cell_id == cell) {
            return Err(ApiError(ControlError::bad_request(format!(
                "no cell {cell:?}"
            ))));
        }
    }
    idempotency::run(&state, &auth, &headers, &hash, StatusCode::CREATED, async {
        let mut tenant = state.control.create_tenant(&auth.actor, &body.name).await?;
        if let Some(cell) = body.cell_id.as_deref().filter(|c| *c != DEFAULT_CELL) {
            tenant = state
                .control
                .assign_cell(&auth.actor, &tenant.tenant_id, cell)
                .await?;
        }
        Ok(Tenant::from(tenant))
    })
    .await
}

/// A tenant, by id or name.
#[utoipa::path(
    get,
    path = "/admin/v1/tenants/{tenant_id}",
    tag = "tenants",
    operation_id = "get_tenant",
    params(("tenant_id" = String, Path, description = "The tenant's id (or name)")),
    responses(
        (status = 200, description = "The tenant", body = Tenant),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn get_tenant(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(tenant_id): ApiPath<String>,
) -> ApiResult<Json<Tenant>> {
    Ok(Json(
        state.control.tenant(&auth.actor, &tenant_id).await?.into(),
    ))
}

/// Renames, suspends or resumes, or moves a tenant to another cell
/// (operator only). Each given field is applied in turn: cell, name, status.
#[utoipa::path(
    patch,
    path = "/admin/v1/tenants/{tenant_id}",
    tag = "tenants",
    operation_id = "update_tenant",
    params(("tenant_id" = String, Path, description = "The tenant's id (or name)")),
    request_body(content = PatchTenant, example = json!({"name": "acme-corp", "cell_id": "cn-east-1"})),
    responses(
        (status = 200, description = "The tenant after the change", body = Tenant),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 409, response = super::Conflict),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn patch_tenant(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(tenant_id): ApiPath<String>,
    JsonBody(body, _): JsonBody<PatchTenant>,
) -> ApiResult<Json<Tenant>> {
    let control = &state.control;
    let actor = &auth.actor;
    // Another tenant's is not found before it is forbidden.
    let mut tenant = control.tenant(actor, &tenant_id).await?;
    auth.require_operator()?;
    if body.name.is_none() && body.status.is_none() && body.cell_id.is_none() {
        return Err(ApiError(ControlError::bad_request(
            "give at least one of name, status, cell_id",
        )));
    }
    if let Some(cell) = &body.cell_id {
        tenant = control.assign_cell(actor, &tenant.tenant_id, cell).await?;
    }
    if let Some(name) = &body.name {
        tenant = control
            .rename_tenant(actor, &tenant.tenant_id, name)
            .await?;
    }
    if let Some(status) = body.status {
        tenant = control
            .set_tenant_status(actor, &tenant.tenant_id, status)
            .await?;
    }
    Ok(Json(tenant.into()))
}

/// Deletes a tenant that has no apps left, with its accounts (operator only).
#[utoipa::path(
    delete,
    path = "/admin/v1/tenants/{tenant_id}",
    tag = "tenants",
    operation_id = "delete_tenant",
    params(("tenant_id" = String, Path, description = "The tenant's id (or name)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 409, description = "The tenant still has apps", body = super::dto::ErrorBody,
         example = json!({"error": {"code": "conflict", "message": "delete the tenant's apps first", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn delete_tenant(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(tenant_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let tenant = state.control.tenant(&auth.actor, &tenant_id).await?;
    auth.require_operator()?;
    state
        .control
        .delete_tenant(&auth.actor, &tenant.tenant_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_status(
    state: &ApiState,
    auth: &Auth,
    tenant_id: &str,
    status: Status,
) -> ApiResult<Json<Tenant>> {
    let tenant = state.control.tenant(&auth.actor, tenant_id).await?;
    auth.require_operator()?;
    Ok(Json(
        state
            .control
            .set_tenant_status(&auth.actor, &tenant.tenant_id, status)
            .await?
            .into(),
    ))
}

/// Suspends a tenant (operator only): its apps refuse logins and REST calls
/// with `suspended`, and its live sessions are kicked.
#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant_id}/suspend",
    tag = "tenants",
    operation_id = "suspend_tenant",
    params(("tenant_id" = String, Path, description = "The tenant's id (or name)")),
    responses(
        (status = 200, description = "The suspended tenant", body = Tenant),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn suspend_tenant(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(tenant_id): ApiPath<String>,
) -> ApiResult<Json<Tenant>> {
    set_status(&state, &auth, &tenant_id, Status::Suspended).await
}

/// Resumes a suspended tenant (operator only).
#[utoipa::path(
    post,
    path = "/admin/v1/tenants/{tenant_id}/resume",
    tag = "tenants",
    operation_id = "resume_tenant",
    params(("tenant_id" = String, Path, description = "The tenant's id (or name)")),
    responses(
        (status = 200, description = "The active tenant", body = Tenant),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn resume_tenant(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(tenant_id): ApiPath<String>,
) -> ApiResult<Json<Tenant>> {
    set_status(&state, &auth, &tenant_id, Status::Active).await
}
