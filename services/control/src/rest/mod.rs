//! The admin REST API `/admin/v1` (axum + utoipa): sessions and accounts,
//! tenants, apps, keys, quotas, word lists, gray rules, cells.
//!
//! [`router`] serves it, with the OpenAPI document at
//! `/admin/v1/openapi.json` and an interactive reference (Swagger UI) at
//! `/admin/docs/`; [`openapi`] is the document, which is also committed as
//! `openapi/admin-v1.json` (the `openapi` test of this crate fails when that
//! file is stale; `CONFAB_UPDATE_OPENAPI=1 cargo test -p confab-control
//! --test openapi` rewrites it).
//!
//! Conventions (api.md): JSON in and out, RFC 3339 timestamps, errors as
//! `{"error":{"code","message","request_id"}}` with the right status, every
//! response with `x-request-id`, lists paged by `?limit=&cursor=`, creates
//! that honour `Idempotency-Key`, bodies of at most 1 MiB. Authorisation is
//! the service's ([`crate::service::Actor`]): a tenant admin gets
//! `404 not_found` for anything of another tenant, and `403 forbidden` for an
//! operator-only operation on its own tenant's things (or on things no
//! tenant owns: cells, gray rules, the global word list).

mod apps;
mod cells;
pub mod dto;
mod extract;
mod gray;
mod groups;
mod idempotency;
mod page;
mod push;
mod push_dead_letters;
mod sessions;
mod support;
mod tenants;
mod usage;
mod webhooks;
mod words;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Request};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use dto::rfc3339;
pub use extract::{BODY_LIMIT, CSRF_HEADER, SESSION_COOKIE, csrf_token};
pub use idempotency::{
    HEADER as IDEMPOTENCY_HEADER, REPLAYED_HEADER as IDEMPOTENCY_REPLAYED_HEADER,
    sweep as sweep_idempotency,
};

use crate::error::ControlError;
use crate::service::Control;
use extract::ApiError;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/admin/v1/openapi.json";
/// Where the interactive reference is served.
pub const DOCS_PATH: &str = "/admin/docs";

/// The router's state.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub control: Arc<Control>,
    /// Idempotent responses kept by this router (expired ones are swept now
    /// and then).
    pub kept: Arc<AtomicU64>,
}

/// Request ids: a ULID when the request brings none.
#[derive(Clone, Copy, Default)]
struct MakeUlid;

impl MakeRequestId for MakeUlid {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&ulid::Ulid::new().to_string().to_lowercase())
            .ok()
            .map(RequestId::new)
    }
}

// ---- reusable error responses (documented once, referenced by paths) ----

/// Malformed JSON, a wrong content type, an unknown field or an invalid value.
#[derive(ToResponse)]
#[response(
    description = "Bad request: malformed JSON, wrong content type, unknown field or invalid value",
    example = json!({"error": {"code": "bad_request", "message": "invalid JSON body: unknown field `nmae`, expected `name` or `cell_id` at line 1 column 7", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct BadRequest(pub dto::ErrorBody);

#[derive(ToResponse)]
#[response(
    description = "No session, or an unknown or expired one",
    example = json!({"error": {"code": "unauthorized", "message": "missing, unknown or expired session", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct Unauthorized(pub dto::ErrorBody);

#[derive(ToResponse)]
#[response(
    description = "Only an operator may do this",
    example = json!({"error": {"code": "forbidden", "message": "only an operator may do this", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct Forbidden(pub dto::ErrorBody);

#[derive(ToResponse)]
#[response(
    description = "No such thing (or not one the caller may see)",
    example = json!({"error": {"code": "not_found", "message": "no app \"app_01jd8x4k2m3n4p5q6r7s8t9v0w\"", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct NotFound(pub dto::ErrorBody);

#[derive(ToResponse)]
#[response(
    description = "Conflict: it exists, a rule of the state refuses it, or the Idempotency-Key was used with another request",
    example = json!({"error": {"code": "conflict", "message": "a tenant named \"acme\" exists", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct Conflict(pub dto::ErrorBody);

#[derive(ToResponse)]
#[response(
    description = "The body is larger than 1 MiB",
    example = json!({"error": {"code": "payload_too_large", "message": "the request body is larger than 1024 KiB", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct PayloadTooLarge(pub dto::ErrorBody);

#[derive(ToResponse)]
#[response(
    description = "The control store is unavailable",
    example = json!({"error": {"code": "unavailable", "message": "the control store is unavailable; try again later", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct Unavailable(pub dto::ErrorBody);

#[derive(ToResponse)]
#[response(
    description = "The cell's answer made no sense (an error of the data plane)",
    example = json!({"error": {"code": "bad_gateway", "message": "the cell answered HTTP 500: internal error", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct BadGateway(pub dto::ErrorBody);

#[derive(ToResponse)]
#[response(
    description = "The app's cell cannot be reached (or has no api_url), or does not accept the app's key yet",
    example = json!({"error": {"code": "data_plane_unavailable", "message": "cell \"cn-east-1\" is unreachable: connection refused", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct DataPlaneUnavailable(pub dto::ErrorBody);

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("cs_... (a console session token from POST /admin/v1/sessions)")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The console session token as a cookie (for the web console)",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Confab admin API",
        version = "v1",
        description = "The control plane's REST API: tenants, apps and keys, accounts, quotas, sensitive words, gray-release rules and cells.\n\nConventions: JSON in and out (`snake_case`); timestamps are RFC 3339 strings; errors are `{\"error\":{\"code\",\"message\",\"request_id\"}}` with a stable snake_case `code`; every response carries `x-request-id`; lists take `?limit=` (1 to 200, default 50) and `?cursor=` (the previous page's `next_cursor`) and answer `{\"items\":[...],\"next_cursor\":...}`; creates accept an `Idempotency-Key` header (a repeat with the same key and request returns the first response for 24 hours; the same key with another request is `409 conflict`); bodies are at most 1 MiB.\n\nAuthentication: `POST /admin/v1/sessions` returns a session token; send it as `Authorization: Bearer cs_...`. A browser (the web console) signs in with `\"cookie\": true` instead: the session goes into an HttpOnly, SameSite=Strict cookie that page scripts cannot read, and every unsafe request (POST, PUT, PATCH, DELETE) authenticated by that cookie must carry the session's CSRF token as `X-CSRF-Token` (from the sign-in answer or `GET /admin/v1/sessions/current`), else `403 csrf_failed`; unsafe requests a browser marks `Sec-Fetch-Site: cross-site` are refused the same way. An operator manages everything; a tenant admin sees only its own tenant (anything of another tenant is `404 not_found`) and gets `403 forbidden` for operator-only operations.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&Security),
    security(("bearer" = []), ("cookie" = [])),
    components(
        schemas(dto::ErrorBody, dto::ErrorDetail),
        responses(BadRequest, Unauthorized, Forbidden, NotFound, Conflict, PayloadTooLarge, Unavailable, BadGateway, DataPlaneUnavailable)
    ),
    tags(
        (name = "sessions", description = "Console sign-in and the signed-in account"),
        (name = "accounts", description = "Operator and tenant-admin accounts"),
        (name = "tenants", description = "Tenants: create, rename, suspend, move to a cell, delete"),
        (name = "apps", description = "A tenant's apps and their settings"),
        (name = "keys", description = "An app's secret keys: create (rotate), list, revoke"),
        (name = "quotas", description = "An app's quotas (operator)"),
        (name = "words", description = "Sensitive-word lists: global (operator) and per app"),
        (name = "gray-rules", description = "Gray-release rules (operator)"),
        (name = "cells", description = "Data-plane cells (operator)"),
        (name = "config", description = "The config version the data plane follows"),
        (name = "webhooks", description = "An app's webhook: settings, signing secret, deliveries and dead letters"),
        (name = "push", description = "An app's push credentials per vendor (never returned after upload), and the push notifications given up on"),
        (name = "groups", description = "An app's groups, answered by the app's cell: a group by id, its members, mutes, dismissal"),
        (name = "support", description = "Support lookups answered by the app's cell: a user's devices, revoking a user's tokens, a system message, a conversation's history"),
        (name = "usage", description = "Usage dashboards read from the cells: an app's messages, logins, errors, pushes, connections and daily active users over time; a cell's sums over its apps (operator)"),
    )
)]
struct ApiDoc;

fn api() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(sessions::login))
        .routes(routes!(sessions::current, sessions::logout))
        .routes(routes!(sessions::me))
        .routes(routes!(sessions::list_accounts, sessions::create_account))
        .routes(routes!(tenants::list_tenants, tenants::create_tenant))
        .routes(routes!(
            tenants::get_tenant,
            tenants::patch_tenant,
            tenants::delete_tenant
        ))
        .routes(routes!(tenants::suspend_tenant))
        .routes(routes!(tenants::resume_tenant))
        .routes(routes!(apps::list_apps, apps::create_app))
        .routes(routes!(apps::get_app, apps::patch_app, apps::delete_app))
        .routes(routes!(apps::suspend_app))
        .routes(routes!(apps::resume_app))
        .routes(routes!(apps::list_keys, apps::create_key))
        .routes(routes!(apps::revoke_key))
        .routes(routes!(apps::get_quotas, apps::put_quotas))
        .routes(routes!(words::global_words, words::change_global_words))
        .routes(routes!(words::import_global_words))
        .routes(routes!(words::app_words, words::change_app_words))
        .routes(routes!(words::import_app_words))
        .routes(routes!(gray::list_rules, gray::create_rule))
        .routes(routes!(gray::put_rule, gray::delete_rule))
        .routes(routes!(gray::preview))
        .routes(routes!(cells::list_cells, cells::create_cell))
        .routes(routes!(cells::patch_cell, cells::delete_cell))
        .routes(routes!(cells::config_version))
        .routes(routes!(
            webhooks::get_webhook,
            webhooks::put_webhook,
            webhooks::delete_webhook
        ))
        .routes(routes!(webhooks::rotate_webhook_secret))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::list_dead_letters))
        .routes(routes!(webhooks::redeliver_dead_letter))
        .routes(routes!(push_dead_letters::list_push_dead_letters))
        .routes(routes!(
            push::put_push_credentials,
            push::delete_push_credentials
        ))
        .routes(routes!(push::list_push_credentials))
        .routes(routes!(push::test_push))
        .routes(routes!(groups::get_group, groups::dismiss_group))
        .routes(routes!(groups::list_members))
        .routes(routes!(groups::mute_member))
        .routes(routes!(groups::mute_group))
        .routes(routes!(support::user_devices))
        .routes(routes!(support::revoke_user))
        .routes(routes!(support::send_system_message))
        .routes(routes!(support::conversation_history))
        .routes(routes!(usage::app_usage))
        .routes(routes!(usage::cell_usage))
}

/// The OpenAPI document of `/admin/v1`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

async fn unknown_route() -> ApiError {
    ApiError(ControlError::not_found("no such endpoint"))
}

/// The admin API, its OpenAPI document and its interactive reference, with
/// their own state: merge it into a server's router.
pub fn router(control: Arc<Control>) -> Router {
    let (routes, document) = api().split_for_parts();
    let api = routes
        .route("/admin/v1", axum::routing::any(unknown_route))
        .route("/admin/v1/", axum::routing::any(unknown_route))
        .route("/admin/v1/{*rest}", axum::routing::any(unknown_route))
        .with_state(ApiState {
            control,
            kept: Arc::new(AtomicU64::new(0)),
        });
    let docs: Router = SwaggerUi::new(DOCS_PATH).url(OPENAPI_PATH, document).into();
    api.merge(docs)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(extract::render_errors))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<axum::body::Body>| {
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!(
                    "admin_api",
                    method = %request.method(),
                    path = %request.uri().path(),
                    request_id,
                )
            }),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeUlid))
}
