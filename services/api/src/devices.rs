//! A user's devices: connected ones and those registered for offline push
//! (`GET /v1/users/{user_id}/devices`), and forgetting a device's push
//! registration (`DELETE /v1/users/{user_id}/devices/{device_id}`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use confab_model::UserId;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiPath, ApiResult};

/// Characters of a push token shown (the rest is masked: a token is enough
/// to send the phone notifications with the app's credentials).
const TOKEN_SHOWN: usize = 6;

fn user_id(raw: &str) -> ApiResult<UserId> {
    UserId::parse(raw).map_err(|e| ApiError::bad_request(format!("user_id: {e}")))
}

/// A push token with all but its last characters masked.
pub fn mask_token(token: &str) -> String {
    let n = token.chars().count();
    if n <= TOKEN_SHOWN {
        return "*".repeat(n);
    }
    let tail: String = token.chars().skip(n - TOKEN_SHOWN).collect();
    format!("{}{tail}", "*".repeat((n - TOKEN_SHOWN).min(8)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PushRegistrationOut {
    /// `apns`, `fcm`, `huawei`, `xiaomi`, `oppo`, `vivo` or `honor`.
    pub vendor: String,
    /// The token, masked but for its last 6 characters.
    #[schema(example = "********9f3a1c")]
    pub push_token: String,
    pub bundle: String,
    pub locale: String,
    /// The app said it is in the background (`app_state`).
    pub background: bool,
    /// When the device registered (RFC 3339).
    pub updated_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserDevice {
    pub device_id: String,
    /// Connected now.
    pub online: bool,
    /// The platform of the connected session (absent when offline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Its offline-push registration, if any.
    pub push: Option<PushRegistrationOut>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"items": [{"device_id": "bob-phone", "online": false, "push": {"vendor": "apns", "push_token": "********9f3a1c", "bundle": "com.example.chat", "locale": "en-US", "background": false, "updated_at": "2026-11-25T16:00:00Z"}}]}))]
pub struct DeviceList {
    /// By device id.
    pub items: Vec<UserDevice>,
}

/// A user's devices.
///
/// Every device that is connected or registered for offline push, with its
/// push registration (token masked).
#[utoipa::path(
    get,
    path = "/v1/users/{user_id}/devices",
    tag = "users",
    operation_id = "list_devices",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user's devices", body = DeviceList),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn list_devices(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath(user): ApiPath<String>,
) -> ApiResult<Json<DeviceList>> {
    let user = user_id(&user)?;
    let stores = state.logic.stores();
    let routes = stores.routes.routes(&caller.app_id, &user).await?;
    let registered = stores.devices.push_devices(&caller.app_id, &user).await?;
    let mut devices: BTreeMap<String, UserDevice> = BTreeMap::new();
    for r in routes {
        devices.insert(
            r.device_id.clone(),
            UserDevice {
                device_id: r.device_id,
                online: true,
                platform: Some(r.platform),
                push: None,
            },
        );
    }
    for d in registered {
        let entry = devices
            .entry(d.device_id.clone())
            .or_insert_with(|| UserDevice {
                device_id: d.device_id.clone(),
                online: false,
                platform: None,
                push: None,
            });
        entry.push = Some(PushRegistrationOut {
            vendor: d.vendor,
            push_token: mask_token(&d.token),
            bundle: d.bundle,
            locale: d.locale,
            background: d.background,
            updated_at: crate::dto::rfc3339(d.updated_at),
        });
    }
    Ok(Json(DeviceList {
        items: devices.into_values().collect(),
    }))
}

/// Forget a device for offline push.
///
/// The device gets no more pushes until it registers again (`push_register`
/// after its next login). Its connection, if any, stays up.
#[utoipa::path(
    delete,
    path = "/v1/users/{user_id}/devices/{device_id}",
    tag = "users",
    operation_id = "delete_device",
    params(
        ("user_id" = String, Path, description = "The user's id"),
        ("device_id" = String, Path, description = "The device's id"),
    ),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 400, response = crate::BadRequest),
        (status = 401, response = crate::Unauthorized),
        (status = 403, response = crate::Suspended),
        (status = 404, response = crate::NotFound),
        (status = 429, response = crate::RateLimited),
    )
)]
pub async fn delete_device(
    State(state): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    ApiPath((user, device)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let user = user_id(&user)?;
    let removed = state
        .logic
        .stores()
        .devices
        .unregister_push(&caller.app_id, &user, &device)
        .await?;
    if !removed {
        return Err(ApiError::not_found(
            "the user has no device with this id registered for push",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_masked_but_for_the_last_characters() {
        assert_eq!(mask_token("abcdef0123456789"), "********456789");
        assert_eq!(mask_token("abc"), "***");
        assert!(!mask_token(&"x".repeat(200)).contains(&"x".repeat(7)));
    }
}
