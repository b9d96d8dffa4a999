//! The data-plane REST API `/v1`, for tenant backends (api.md).
//!
//! [`router`] serves it, with its OpenAPI document at `/v1/openapi.json`
//! (no auth); [`openapi`] is the document, also committed as
//! `openapi/v1.json` (the `openapi` test of this crate fails when that file
//! is stale; `CONFAB_UPDATE_OPENAPI=1 cargo test -p confab-api --test
//! openapi` rewrites it).
//!
//! Auth: `Authorization: Bearer sk_...`, one of the app's non-revoked secret
//! keys ([`auth`]); a suspended app is `403 suspended`. Every app's requests
//! are limited by its `rest_requests_per_sec` quota (`RateLimit-*` headers,
//! `429` + `Retry-After`). Conventions as in the admin API: JSON in and out,
//! RFC 3339 timestamps, errors as `{"error":{"code","message","request_id"}}`,
//! `x-request-id` on every response, cursor pagination, `Idempotency-Key`
//! on creates and sends, bodies of at most 1 MiB. Everything is scoped to
//! the key's app: another app's things are simply not found.

pub mod auth;
pub mod devices;
pub mod dto;
pub mod error;
pub mod groups;
pub mod idempotency;
pub mod messages;
pub mod rooms;
pub mod routes;
pub mod usage;
pub mod users;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Request};
use confab_logic::Logic;
use dashmap::DashMap;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::{ApiError, BODY_LIMIT, ErrorBody, ErrorDetail};
pub use routes::SYSTEM_USER;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

/// The router's state.
pub struct ApiState {
    pub(crate) logic: Arc<Logic>,
    pub(crate) limits: DashMap<String, auth::AppLimit>,
    pub(crate) idempotency: idempotency::Keeper,
    pub(crate) keys: std::sync::RwLock<Option<Arc<auth::KeyIndex>>>,
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

// ---- reusable error responses ----

#[derive(ToResponse)]
#[response(
    description = "Bad request: malformed JSON, wrong content type, unknown field, invalid value, or a quota such as the body size",
    example = json!({"error": {"code": "bad_request", "message": "from (a user id) or from_system: true is required", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct BadRequest(pub ErrorBody);

#[derive(ToResponse)]
#[response(
    description = "No secret key, or not one of a served app's non-revoked keys",
    example = json!({"error": {"code": "unauthorized", "message": "unknown or revoked secret key", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct Unauthorized(pub ErrorBody);

#[derive(ToResponse)]
#[response(
    description = "The app is suspended (`suspended`), or the sender may not do this (`forbidden`, `muted`)",
    example = json!({"error": {"code": "suspended", "message": "this app is suspended; contact the app's operator", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct Suspended(pub ErrorBody);

#[derive(ToResponse)]
#[response(
    description = "No such thing in this app",
    example = json!({"error": {"code": "not_found", "message": "no such conversation", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct NotFound(pub ErrorBody);

#[derive(ToResponse)]
#[response(
    description = "The Idempotency-Key was used with another request, or its first request still runs",
    example = json!({"error": {"code": "conflict", "message": "this Idempotency-Key was used with a different request", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct Conflict(pub ErrorBody);

#[derive(ToResponse)]
#[response(
    description = "The message contains a blocked word",
    example = json!({"error": {"code": "content_blocked", "message": "the message contains a blocked word", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct ContentBlocked(pub ErrorBody);

#[derive(ToResponse)]
#[response(
    description = "Over the app's REST request rate (or a message rate): retry after `Retry-After` seconds",
    headers(
        ("Retry-After" = u64, description = "Seconds to wait"),
        ("RateLimit-Limit" = u64, description = "The app's requests per second"),
        ("RateLimit-Remaining" = u64, description = "Requests left now"),
    ),
    example = json!({"error": {"code": "rate_limited", "message": "more than 200 requests per second for this app; retry later", "request_id": "01jd8x4k2m3n4p5q6r7s8t9v0w"}})
)]
pub struct RateLimited(pub ErrorBody);

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "secret_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("sk_... (one of the app's secret keys)")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Confab REST API",
        version = "v1",
        description = "The data-plane REST API for a tenant's backend: user tokens, revocation, sending messages as a user or as the system, conversation history, a user's conversations with unread counts, and online status.\n\nAuthentication: `Authorization: Bearer sk_...` with one of the app's secret keys; everything is scoped to that app (another app's things are `404 not_found` or empty). A suspended app gets `403 suspended`.\n\nConventions: JSON in and out (`snake_case`); timestamps are RFC 3339 strings; errors are `{\"error\":{\"code\",\"message\",\"request_id\"}}` with a stable snake_case `code`; every response carries `x-request-id`; every authenticated response carries `RateLimit-Limit` and `RateLimit-Remaining` (the app's `rest_requests_per_sec` quota), and a request over it is `429 rate_limited` with `Retry-After` (seconds); lists answer `{\"items\":[...],\"next_cursor\":...}` and take `?limit=&cursor=`; `POST /v1/messages` and `POST /v1/users/{user_id}/tokens` accept an `Idempotency-Key` header (a repeat with the same key and request returns the first response for 24 hours; the same key with another request is `409 conflict`); bodies are at most 1 MiB.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&Security),
    security(("secret_key" = [])),
    components(
        schemas(ErrorBody, ErrorDetail),
        responses(BadRequest, Unauthorized, Suspended, NotFound, Conflict, ContentBlocked, RateLimited)
    ),
    tags(
        (name = "tokens", description = "User tokens: mint, revoke"),
        (name = "messages", description = "Send messages; conversation history"),
        (name = "conversations", description = "A user's conversations"),
        (name = "users", description = "Users: profiles (create, import, get, update, delete), online status, devices"),
        (name = "groups", description = "Groups managed by the app: create, update, dismiss, members, roles, mutes"),
        (name = "rooms", description = "Live chat rooms: create, online count, close"),
        (name = "webhooks", description = "The app's webhook: a signed test event"),
        (name = "usage", description = "The app's usage over time: messages, logins, errors, pushes, connections, daily active users"),
    )
)]
struct ApiDoc;

fn api() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::mint_token))
        .routes(routes!(routes::revoke_tokens))
        .routes(routes!(routes::send_message))
        .routes(routes!(routes::history))
        .routes(routes!(routes::conversations))
        .routes(routes!(routes::online))
        .routes(routes!(rooms::create_room))
        .routes(routes!(rooms::get_room, rooms::close_room))
        .routes(routes!(webhooks::test_webhook))
        .routes(routes!(devices::list_devices))
        .routes(routes!(devices::delete_device))
        .routes(routes!(messages::batch_send))
        .routes(routes!(messages::get_message))
        .routes(routes!(messages::recall_message))
        .routes(routes!(users::create_user))
        .routes(routes!(users::import_users))
        .routes(routes!(
            users::get_user,
            users::update_user,
            users::delete_user
        ))
        .routes(routes!(groups::create_group))
        .routes(routes!(
            groups::get_group,
            groups::update_group,
            groups::dismiss_group
        ))
        .routes(routes!(groups::list_members, groups::add_members))
        .routes(routes!(groups::remove_member))
        .routes(routes!(groups::set_role))
        .routes(routes!(groups::mute_member))
        .routes(routes!(groups::mute_group))
        .routes(routes!(usage::app_usage))
}

/// The OpenAPI document of `/v1`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

async fn unknown_route() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// The `/v1` API and its OpenAPI document, with their own state: merge it
/// into a server's router (on a node that runs the logic layer).
pub fn router(logic: Arc<Logic>) -> Router {
    let state = Arc::new(ApiState {
        logic,
        limits: DashMap::new(),
        idempotency: idempotency::Keeper::default(),
        keys: std::sync::RwLock::new(None),
    });
    let (routes, document) = api().split_for_parts();
    let api = routes
        .route("/v1", axum::routing::any(unknown_route))
        .route("/v1/", axum::routing::any(unknown_route))
        .route("/v1/{*rest}", axum::routing::any(unknown_route))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .with_state(state);
    let document = Arc::new(document);
    let docs = Router::new().route(
        OPENAPI_PATH,
        axum::routing::get(move || {
            let document = document.clone();
            async move { axum::Json((*document).clone()) }
        }),
    );
    docs.merge(api)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(error::render_errors))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(
                |request: &Request<axum::body::Body>| {
                    let request_id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!(
                        "rest_api",
                        method = %request.method(),
                        path = %request.uri().path(),
                        request_id,
                    )
                },
            ),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeUlid))
}
