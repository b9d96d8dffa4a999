//! Gray-release rules (operator only).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use confab_config::gray::{GrayRule as DomainGrayRule, Subject};

use super::ApiState;
use super::dto::{
    GrayPreview, GrayPreviewResult, GrayRule, GrayRuleInput, GrayRuleList, PageQuery,
};
use super::extract::{ApiError, ApiPath, ApiQuery, ApiResult, Auth, JsonBody};
use super::idempotency;
use super::page::paginate;
use crate::error::ControlError;

/// Default and largest `sample` of a preview.
pub const DEFAULT_SAMPLE: u32 = 10_000;
pub const MAX_SAMPLE: u32 = 100_000;

/// A sort key in the order rules are checked (priority, then id).
fn order_key(rule: &DomainGrayRule) -> String {
    format!(
        "{:010}:{}",
        i64::from(rule.priority) - i64::from(i32::MIN),
        rule.rule_id
    )
}

/// The rule with its tenant and app resolved (each must exist).
async fn resolve(
    state: &ApiState,
    auth: &Auth,
    input: GrayRuleInput,
    rule_id: String,
) -> ApiResult<DomainGrayRule> {
    let mut rule = input.into_rule(rule_id);
    if let Some(tenant) = rule.tenant_id.take().filter(|t| !t.is_empty()) {
        let tenant = state
            .control
            .tenant(&auth.actor, &tenant)
            .await
            .map_err(|e| match e.code {
                "not_found" => ControlError::bad_request(format!("no tenant {tenant:?}")),
                _ => e,
            })?;
        rule.tenant_id = Some(tenant.tenant_id);
    }
    if let Some(app_id) = rule.app_id.as_deref().filter(|a| !a.is_empty()) {
        state
            .control
            .app(&auth.actor, app_id)
            .await
            .map_err(|e| match e.code {
                "not_found" => ControlError::bad_request(format!("no app {app_id:?}")),
                _ => e,
            })?;
    } else {
        rule.app_id = None;
    }
    if let Some(v) = &rule.min_client_version
        && (v.is_empty()
            || v.len() > 40
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b)))
    {
        return Err(ApiError(ControlError::bad_request(
            "min_client_version must be a dotted version such as 2.3.0",
        )));
    }
    Ok(rule)
}

/// The rules, in the order they are checked (priority, then id).
#[utoipa::path(
    get,
    path = "/admin/v1/gray-rules",
    tag = "gray-rules",
    operation_id = "list_gray_rules",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of rules, in the order they are checked", body = GrayRuleList),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn list_rules(
    State(state): State<ApiState>,
    auth: Auth,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<GrayRuleList>> {
    let rules = state.control.gray_rules(&auth.actor).await?;
    let (items, next_cursor) = paginate(rules, order_key, &page)?;
    Ok(Json(GrayRuleList {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// Creates a rule; traffic moves at once (a user stays on a release until a
/// rule changes).
#[utoipa::path(
    post,
    path = "/admin/v1/gray-rules",
    tag = "gray-rules",
    operation_id = "create_gray_rule",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a repeat return the first response (16 to 255 characters; a random UUID)")),
    request_body(content = GrayRuleInput, example = json!({"release": "canary", "app_id": "app_01jd8x4k2m3n4p5q6r7s8t9v0w", "percent": 30, "platforms": ["ios"], "min_client_version": "2.3.0", "priority": 10})),
    responses(
        (status = 201, description = "The new rule", body = GrayRule),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 409, response = super::Conflict),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn create_rule(
    State(state): State<ApiState>,
    auth: Auth,
    headers: HeaderMap,
    JsonBody(body, hash): JsonBody<GrayRuleInput>,
) -> ApiResult<Response> {
    auth.require_operator()?;
    let rule = resolve(&state, &auth, body, String::new()).await?;
    idempotency::run(&state, &auth, &headers, &hash, StatusCode::CREATED, async {
        Ok(GrayRule::from(
            state.control.put_gray_rule(&auth.actor, rule).await?,
        ))
    })
    .await
}

/// Replaces a rule.
#[utoipa::path(
    put,
    path = "/admin/v1/gray-rules/{rule_id}",
    tag = "gray-rules",
    operation_id = "put_gray_rule",
    params(("rule_id" = String, Path, description = "The rule's id")),
    request_body(content = GrayRuleInput, example = json!({"release": "canary", "percent": 50})),
    responses(
        (status = 200, description = "The rule after the change", body = GrayRule),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn put_rule(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(rule_id): ApiPath<String>,
    JsonBody(body, _): JsonBody<GrayRuleInput>,
) -> ApiResult<Json<GrayRule>> {
    let rules = state.control.gray_rules(&auth.actor).await?;
    if !rules.iter().any(|r| r.rule_id == rule_id) {
        return Err(ApiError(ControlError::not_found(format!(
            "no gray rule {rule_id:?}"
        ))));
    }
    let rule = resolve(&state, &auth, body, rule_id).await?;
    Ok(Json(
        state.control.put_gray_rule(&auth.actor, rule).await?.into(),
    ))
}

/// Deletes a rule.
#[utoipa::path(
    delete,
    path = "/admin/v1/gray-rules/{rule_id}",
    tag = "gray-rules",
    operation_id = "delete_gray_rule",
    params(("rule_id" = String, Path, description = "The rule's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn delete_rule(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(rule_id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state
        .control
        .delete_gray_rule(&auth.actor, &rule_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Estimates the share of an app's users a rule would move, without saving
/// it: the rule is checked (`GrayRule::matches`) for the synthetic user ids
/// `u0`, `u1`, … `u{sample-1}` of the app. Platform and client version
/// default to values the rule accepts, so the share then shows the rule's
/// percentage over the given tenant and app.
#[utoipa::path(
    post,
    path = "/admin/v1/gray-rules/preview",
    tag = "gray-rules",
    operation_id = "preview_gray_rule",
    request_body(content = GrayPreview, example = json!({"rule": {"release": "canary", "percent": 30}, "app_id": "app_01jd8x4k2m3n4p5q6r7s8t9v0w", "sample": 10000})),
    responses(
        (status = 200, description = "How many synthetic users the rule matches", body = GrayPreviewResult),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 403, response = super::Forbidden),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn preview(
    State(state): State<ApiState>,
    auth: Auth,
    JsonBody(body, _): JsonBody<GrayPreview>,
) -> ApiResult<Json<GrayPreviewResult>> {
    auth.require_operator()?;
    let total = body.sample.unwrap_or(DEFAULT_SAMPLE);
    if !(1..=MAX_SAMPLE).contains(&total) {
        return Err(ApiError(ControlError::bad_request(format!(
            "sample must be 1 to {MAX_SAMPLE}"
        ))));
    }
    if body.app_id.is_empty() {
        return Err(ApiError(ControlError::bad_request(
            "app_id must not be empty",
        )));
    }
    if body.rule.percent > 100 {
        return Err(ApiError(ControlError::bad_request(
            "percent must be 0 to 100",
        )));
    }
    let rule = body.rule.into_rule(String::new());
    let tenant_id = match body.tenant_id {
        Some(t) => t,
        None => match state.control.app(&auth.actor, &body.app_id).await {
            Ok(app) => app.tenant_id,
            Err(e) if e.code == "not_found" => String::new(),
            Err(e) => return Err(e.into()),
        },
    };
    let platform = body
        .platform
        .or_else(|| rule.platforms.first().cloned())
        .unwrap_or_else(|| "web".to_owned());
    let client_version = body
        .client_version
        .or_else(|| rule.min_client_version.clone());
    let matched = (0..total)
        .filter(|n| {
            let user_id = format!("u{n}");
            rule.matches(&Subject {
                tenant_id: &tenant_id,
                app_id: &body.app_id,
                user_id: &user_id,
                platform: &platform,
                client_version: client_version.as_deref(),
            })
        })
        .count() as u32;
    Ok(Json(GrayPreviewResult {
        matched,
        total,
        share: f64::from(matched) / f64::from(total),
    }))
}
