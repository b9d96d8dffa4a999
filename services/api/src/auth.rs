//! Secret-key authentication and the per-app request rate.
//!
//! `Authorization: Bearer sk_...` must be one of an app's non-revoked secret
//! keys in this node's config (found by its SHA-256 in an index rebuilt when
//! the config changes, then compared in constant time). Each app's
//! requests are limited by its `quotas.rest_requests_per_sec` (a token
//! bucket whose burst is one second's worth); every response of an
//! authenticated request carries `RateLimit-Limit` and `RateLimit-Remaining`,
//! and a request over the limit is `429 rate_limited` with `Retry-After`.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use confab_config::{AppConfig, AppStatus, Compiled};
use confab_model::AppId;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ApiState;
use crate::error::{ApiError, secs_ceil};

pub const LIMIT_HEADER: &str = "ratelimit-limit";
pub const REMAINING_HEADER: &str = "ratelimit-remaining";

type Limiter = RateLimiter<NotKeyed, InMemoryState, DefaultClock, StateInformationMiddleware>;

/// One app's limiter and the quota it was built for.
pub(crate) struct AppLimit {
    per_sec: u32,
    limiter: Limiter,
}

/// The app a request speaks for (an extension set by [`authenticate`]).
#[derive(Clone)]
pub struct Caller {
    pub app_id: AppId,
    pub app: AppConfig,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Secret keys by SHA-256, for one config (rebuilt when the config changes).
pub(crate) struct KeyIndex {
    config: Arc<Compiled>,
    apps: HashMap<[u8; 32], String>,
}

impl KeyIndex {
    fn new(config: Arc<Compiled>) -> Self {
        let mut apps = HashMap::new();
        for app in config.snapshot().apps.values() {
            for key in app.keys.iter().filter(|k| k.revoked_at.is_none()) {
                apps.insert(digest(&key.secret), app.app_id.clone());
            }
        }
        Self { config, apps }
    }
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The index for `config`, rebuilt if the cached one is of an older config.
pub(crate) fn index_for(
    cache: &RwLock<Option<Arc<KeyIndex>>>,
    config: &Arc<Compiled>,
) -> Arc<KeyIndex> {
    if let Some(index) = cache.read().ok().and_then(|g| g.clone())
        && Arc::ptr_eq(&index.config, config)
    {
        return index;
    }
    let index = Arc::new(KeyIndex::new(config.clone()));
    if let Ok(mut g) = cache.write() {
        *g = Some(index.clone());
    }
    index
}

/// The app whose non-revoked secret key `secret` is: found by the secret's
/// SHA-256, then compared in constant time.
pub(crate) fn app_of_secret<'c>(index: &'c KeyIndex, secret: &str) -> Option<&'c AppConfig> {
    let app = index.config.app(index.apps.get(&digest(secret))?)?;
    app.keys
        .iter()
        .any(|key| {
            key.revoked_at.is_none() && bool::from(key.secret.as_bytes().ct_eq(secret.as_bytes()))
        })
        .then_some(app)
}

fn set(headers: &mut HeaderMap, name: &'static str, value: u64) {
    headers.insert(name, HeaderValue::from(value));
}

/// Middleware: authenticates, rate-limits and sets [`Caller`].
pub async fn authenticate(
    State(state): State<Arc<ApiState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let config = state.logic.config().current();
    let index = index_for(&state.keys, &config);
    drop(config);
    let Some(secret) = bearer(request.headers()) else {
        return ApiError::unauthorized(
            "Authorization: Bearer sk_... (the app's secret key) is missing",
        )
        .into_response();
    };
    let Some(app) = app_of_secret(&index, secret).cloned() else {
        return ApiError::unauthorized("unknown or revoked secret key").into_response();
    };
    drop(index);
    if app.status == AppStatus::Suspended {
        return ApiError::new(
            "suspended",
            "this app is suspended; contact the app's operator",
        )
        .into_response();
    }
    let Ok(app_id) = AppId::parse(&app.app_id) else {
        return ApiError::unauthorized("unknown or revoked secret key").into_response();
    };
    let per_sec = app.settings.quotas.rest_requests_per_sec.max(1);
    let checked = {
        let mut entry = state
            .limits
            .entry(app.app_id.clone())
            .or_insert_with(|| new_limit(per_sec));
        if entry.per_sec != per_sec {
            *entry = new_limit(per_sec);
        }
        entry.limiter.check()
    };
    let remaining = match checked {
        Ok(snapshot) => u64::from(snapshot.remaining_burst_capacity()),
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let mut error = ApiError::new(
                "rate_limited",
                format!("more than {per_sec} requests per second for this app; retry later"),
            );
            error.retry_after_secs = Some(secs_ceil(wait.as_millis() as u64));
            let mut response = error.into_response();
            set(response.headers_mut(), LIMIT_HEADER, u64::from(per_sec));
            set(response.headers_mut(), REMAINING_HEADER, 0);
            return response;
        }
    };
    request.extensions_mut().insert(Caller { app_id, app });
    let mut response = next.run(request).await;
    set(response.headers_mut(), LIMIT_HEADER, u64::from(per_sec));
    set(response.headers_mut(), REMAINING_HEADER, remaining);
    response
}

fn new_limit(per_sec: u32) -> AppLimit {
    let n = NonZeroU32::new(per_sec).unwrap_or(NonZeroU32::MIN);
    AppLimit {
        per_sec,
        limiter: RateLimiter::direct(Quota::per_second(n)).with_middleware(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(app_id: &str, keys: &[(&str, bool)]) -> AppConfig {
        AppConfig {
            app_id: app_id.into(),
            tenant_id: "t_1".into(),
            name: app_id.into(),
            status: AppStatus::Active,
            settings: Default::default(),
            keys: keys
                .iter()
                .map(|(secret, revoked)| confab_config::KeyConfig {
                    key_id: format!("key_{secret}"),
                    secret: (*secret).into(),
                    created_at: 0,
                    revoked_at: revoked.then_some(1),
                })
                .collect(),
            words: Vec::new(),
            webhook: None,
        }
    }

    #[test]
    fn finds_the_app_of_a_live_secret_and_follows_config_changes() {
        let mut snapshot = confab_config::Snapshot::default();
        for a in [
            app("app_a", &[("sk_a1", false), ("sk_a0", true)]),
            app("app_b", &[("sk_b", false)]),
        ] {
            snapshot.apps.insert(a.app_id.clone(), a);
        }
        let cache = RwLock::new(None);
        let config = Arc::new(Compiled::new(snapshot.clone()));
        let index = index_for(&cache, &config);
        let found = |s: &str| app_of_secret(&index, s).map(|a| a.app_id.clone());
        assert_eq!(found("sk_a1").as_deref(), Some("app_a"));
        assert_eq!(found("sk_b").as_deref(), Some("app_b"));
        assert_eq!(found("sk_a0"), None, "revoked");
        assert_eq!(found("sk_a"), None);
        assert_eq!(found(""), None);
        assert!(Arc::ptr_eq(&index, &index_for(&cache, &config)), "cached");
        snapshot.apps.remove("app_b");
        let newer = Arc::new(Compiled::new(snapshot));
        let index = index_for(&cache, &newer);
        assert!(
            app_of_secret(&index, "sk_b").is_none(),
            "a removed app's key"
        );
    }

    #[test]
    fn finds_the_bearer_token() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer sk_x"));
        assert_eq!(bearer(&h), Some("sk_x"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }
}
