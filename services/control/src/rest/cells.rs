//! Cells (operator only) and the config version.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::ApiState;
use super::dto::{Cell, CellList, ConfigVersion, CreateCell, PageQuery, PatchCell};
use super::extract::{ApiPath, ApiQuery, ApiResult, Auth, JsonBody};
use super::idempotency;
use super::page::paginate;

/// The data-plane cells (`default` always among them).
#[utoipa::path(
    get,
    path = "/admin/v1/cells",
    tag = "cells",
    operation_id = "list_cells",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of cells, by id", body = CellList),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn list_cells(
    State(state): State<ApiState>,
    auth: Auth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<CellList>> {
    let cells = state.control.cells(&auth.actor).await?;
    let (items, next_cursor) = paginate(cells, |c| c.cell_id.clone(), &page)?;
    Ok(Json(CellList {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Declares a cell (its data plane subscribes with this id).
#[utoipa::path(
    post,
    path = "/admin/v1/cells",
    tag = "cells",
    operation_id = "create_cell",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a repeat return the first response (16 to 255 characters; a random UUID)")),
    request_body(content = CreateCell, example = json!({"cell_id": "cn-east-1", "description": "Shanghai"})),
    responses(
        (status = 201, description = "The new cell", body = Cell),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 409, response = super::Conflict),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn create_cell(
    State(state): State<ApiState>,
    auth: Auth,
    headers: HeaderMap,
    JsonBody(body, hash): JsonBody<CreateCell>,
) -> ApiResult<Response> {
    auth.require_operator()?;
    idempotency::run(&state, &auth, &headers, &hash, StatusCode::CREATED, async {
        let cell = state
            .control
            .create_cell(&auth.actor, &body.cell_id, &body.description)
            .await?;
        Ok(Cell::from(cell))
    })
    .await
}

/// Sets where the control plane reaches the cell's `/v1` API (support
/// lookups: a user's devices, a conversation's history); `null` clears it.
#[utoipa::path(
    patch,
    path = "/admin/v1/cells/{cell_id}",
    tag = "cells",
    operation_id = "patch_cell",
    params(("cell_id" = String, Path, description = "The cell's id")),
    request_body(content = PatchCell, example = json!({"api_url": "https://cell-1.internal:8080"})),
    responses(
        (status = 200, description = "The cell", body = Cell),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn patch_cell(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(cell_id): ApiPath<String>,
    JsonBody(body, _): JsonBody<PatchCell>,
) -> ApiResult<Json<Cell>> {
    let cell = state
        .control
        .set_cell_api_url(&auth.actor, &cell_id, body.api_url.as_deref())
        .await?;
    Ok(Json(cell.into()))
}

/// Deletes a cell that serves no tenant.
#[utoipa::path(
    delete,
    path = "/admin/v1/cells/{cell_id}",
    tag = "cells",
    operation_id = "delete_cell",
    params(("cell_id" = String, Path, description = "The cell's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 409, description = "Tenants are still in the cell", body = super::dto::ErrorBody,
         example = json!({"error": {"code": "conflict", "message": "move the cell's tenants elsewhere first", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn delete_cell(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(cell_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.control.delete_cell(&auth.actor, &cell_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The control store's config version.
#[utoipa::path(
    get,
    path = "/admin/v1/config",
    tag = "config",
    operation_id = "get_config_version",
    responses(
        (status = 200, description = "The current config version", body = ConfigVersion),
        (status = 401, response = super::Unauthorized),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn config_version(
    State(state): State<ApiState>,
    _auth: Auth,
) -> ApiResult<Json<ConfigVersion>> {
    Ok(Json(ConfigVersion {
        version: state.control.version().await?,
    }))
}
