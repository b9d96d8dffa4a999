//! An app's push credentials (per vendor): upload, list status, delete.
//! Never returned after upload.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::ApiState;
use super::extract::{ApiPath, ApiResult, Auth, JsonBody};
use crate::error::ControlError;
use crate::service::push_credentials::{PushCredentialStatus, parse_vendor};
use crate::service::push_test::TestPushOutcome;

/// An app's uploaded push credentials, by vendor.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PushCredentialList {
    pub items: Vec<PushCredentialStatus>,
}

/// Uploads (or replaces) the app's credentials for a push vendor. The body
/// is the vendor's credentials object (`vendor` may be left out; it must
/// match the path when given). Stored sealed; never returned.
#[utoipa::path(
    put,
    path = "/admin/v1/apps/{app_id}/push-credentials/{vendor}",
    tag = "push",
    operation_id = "put_push_credentials",
    params(
        ("app_id" = String, Path, description = "The app's id"),
        ("vendor" = String, Path, description = "apns, fcm, huawei, xiaomi, oppo, vivo or honor"),
    ),
    request_body(content = Object, description = "apns: {key_p8, key_id, team_id, topic, sandbox}; fcm: {service_account_json}; huawei: {app_id, app_secret}; xiaomi: {app_secret, package}; oppo: {app_key, master_secret}; vivo: {app_id, app_key, app_secret}; honor: {app_id, client_id, client_secret}",
        example = json!({"key_p8": "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----", "key_id": "ABC123DEFG", "team_id": "DEF123GHIJ", "topic": "com.example.chat", "sandbox": false})),
    responses(
        (status = 200, description = "Stored: what the API will show of them", body = PushCredentialStatus),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 413, response = super::PayloadTooLarge),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn put_push_credentials(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath((app_id, vendor)): ApiPath<(String, String)>,
    JsonBody(mut body, _): JsonBody<serde_json::Value>,
) -> ApiResult<Json<PushCredentialStatus>> {
    // The app first: another tenant's app is 404 whatever the body says.
    state.control.app(&auth.actor, &app_id).await?;
    let vendor = parse_vendor(&vendor)?;
    let Some(object) = body.as_object_mut() else {
        return Err(ControlError::bad_request("the body must be a JSON object").into());
    };
    object
        .entry("vendor")
        .or_insert_with(|| vendor.as_str().into());
    let credentials = serde_json::from_value(body).map_err(|e| {
        ControlError::bad_request(format!("these are not {vendor} credentials: {e}"))
    })?;
    let status = state
        .control
        .put_push_credentials(&auth.actor, &app_id, vendor, credentials)
        .await?;
    Ok(Json(status))
}

/// Which vendors the app has credentials for (fingerprints, upload times;
/// never a secret).
#[utoipa::path(
    get,
    path = "/admin/v1/apps/{app_id}/push-credentials",
    tag = "push",
    operation_id = "list_push_credentials",
    params(("app_id" = String, Path, description = "The app's id")),
    responses(
        (status = 200, description = "By vendor", body = PushCredentialList),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn list_push_credentials(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult<Json<PushCredentialList>> {
    let items = state.control.push_credentials(&auth.actor, &app_id).await?;
    Ok(Json(PushCredentialList { items }))
}

/// Deletes the app's credentials for a vendor: its pushes are dead-lettered
/// ("no credentials") from then on. Deleting credentials that are not there
/// succeeds too.
#[utoipa::path(
    delete,
    path = "/admin/v1/apps/{app_id}/push-credentials/{vendor}",
    tag = "push",
    operation_id = "delete_push_credentials",
    params(
        ("app_id" = String, Path, description = "The app's id"),
        ("vendor" = String, Path, description = "apns, fcm, huawei, xiaomi, oppo, vivo or honor"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn delete_push_credentials(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath((app_id, vendor)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state.control.app(&auth.actor, &app_id).await?;
    let vendor = parse_vendor(&vendor)?;
    state
        .control
        .delete_push_credentials(&auth.actor, &app_id, vendor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A test notification for one device.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"token": "0a1b2c3d4e5f", "title": "Test", "body": "A test notification from the Confab console"}))]
pub struct TestPushRequest {
    /// The device's push token (as the vendor's SDK gave it to the app).
    pub token: String,
    /// At most 100 characters; "Confab test" by default.
    pub title: Option<String>,
    /// At most 1000 characters; a fixed text by default.
    pub body: Option<String>,
}

/// Sends one test notification to a device token now, through the vendor's
/// real API with the app's stored credentials, and answers what the
/// provider said. Nothing is queued or retried: a provider that is down is
/// `unavailable`, not a later delivery.
#[utoipa::path(
    post,
    path = "/admin/v1/apps/{app_id}/push-credentials/{vendor}/test",
    tag = "push",
    operation_id = "test_push",
    params(
        ("app_id" = String, Path, description = "The app's id"),
        ("vendor" = String, Path, description = "apns, fcm, huawei, xiaomi, oppo, vivo or honor"),
    ),
    request_body = TestPushRequest,
    responses(
        (status = 200, description = "The provider's outcome (accepted, rejected, token_invalid, credentials_invalid, no_credentials or unavailable)", body = TestPushOutcome),
        (status = 400, response = super::BadRequest),
        (status = 401, response = super::Unauthorized),
        (status = 404, response = super::NotFound),
        (status = 503, response = super::Unavailable),
    )
)]
pub async fn test_push(
    State(state): State<ApiState>,
    auth: Auth,
    ApiPath((app_id, vendor)): ApiPath<(String, String)>,
    JsonBody(body, _): JsonBody<TestPushRequest>,
) -> ApiResult<Json<TestPushOutcome>> {
    state.control.app(&auth.actor, &app_id).await?;
    let vendor = parse_vendor(&vendor)?;
    let title = body
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let text = body
        .body
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if title.is_some_and(|t| t.chars().count() > 100) {
        return Err(ControlError::bad_request("title must be at most 100 characters").into());
    }
    if text.is_some_and(|t| t.chars().count() > 1000) {
        return Err(ControlError::bad_request("body must be at most 1000 characters").into());
    }
    let outcome = state
        .control
        .test_push(
            &auth.actor,
            &app_id,
            vendor,
            &body.token,
            title.unwrap_or("Confab test"),
            text.unwrap_or("A test notification from the Confab console"),
        )
        .await?;
    Ok(Json(outcome))
}
