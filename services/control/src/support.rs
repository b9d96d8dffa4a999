//! Support lookups for tenant admins (a user's devices, revoking a user's
//! tokens, a system message to a user, a conversation's history): the data
//! lives in the app's cell, so the control plane asks that cell's `/v1` API
//! with the app's active secret key — the same checks, app scoping and rate
//! limits as any tenant backend gets, nothing the control plane could get
//! subtly different.
//!
//! How the cell is reached is a [`DataPlane`]: in embedded `confab serve`
//! the `/v1` router of the same process ([`Control::register_data_plane`]);
//! in distributed mode the cell's `api_url` over HTTP ([`HttpDataPlane`]).
//! Failures say which side failed: the cell unreachable or not configured →
//! `503 data_plane_unavailable`, an answer that makes no sense → `502
//! bad_gateway`, the data plane's own refusals (`400`, `404`, `429`...) keep
//! their code and message.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::{Actor, Control};
use crate::error::{ControlError, Result};
use crate::model::{Cell, Tenant, kind};

/// One answer of a cell's `/v1` API.
#[derive(Debug, Clone)]
pub struct V1Answer {
    pub status: u16,
    /// The JSON body (`Value::Null` when empty or not JSON).
    pub body: Value,
}

/// A cell's `/v1` API, as the support pages use it: one request,
/// authenticated with an app's secret key. `Err` means the cell could not be
/// asked at all (its message says why).
#[async_trait]
pub trait DataPlane: Send + Sync {
    async fn call(
        &self,
        secret: &str,
        method: &str,
        path_and_query: &str,
        body: Option<Value>,
    ) -> std::result::Result<V1Answer, String>;
}

/// A cell's `/v1` API over HTTP(S), at the cell's `api_url`.
pub struct HttpDataPlane {
    base: String,
    client: reqwest::Client,
}

/// How long the support pages wait for a cell.
const CELL_TIMEOUT: Duration = Duration::from_secs(10);

impl HttpDataPlane {
    pub fn new(base: &str) -> std::result::Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(CELL_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            client,
        })
    }
}

#[async_trait]
impl DataPlane for HttpDataPlane {
    async fn call(
        &self,
        secret: &str,
        method: &str,
        path_and_query: &str,
        body: Option<Value>,
    ) -> std::result::Result<V1Answer, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut request = self
            .client
            .request(method, format!("{}{path_and_query}", self.base))
            .bearer_auth(secret);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{}: {e}", self.base))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("{}: reading the answer: {e}", self.base))?;
        Ok(V1Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }
}

/// The data planes this control plane can reach: registered in-process ones
/// by cell, and HTTP clients for cells with an `api_url` (kept per URL).
#[derive(Default)]
pub struct DataPlanes {
    local: RwLock<HashMap<String, Arc<dyn DataPlane>>>,
    remote: RwLock<HashMap<String, Arc<dyn DataPlane>>>,
}

fn unavailable(message: impl Into<String>) -> ControlError {
    ControlError::new("data_plane_unavailable", message)
}

/// Validates a cell's `api_url`: an absolute http(s) URL without a query.
pub fn validate_api_url(url: &str) -> Result<()> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 500
        && !url.contains(['?', '#', ' '])
        && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty());
    if ok {
        Ok(())
    } else {
        Err(ControlError::bad_request(
            "api_url must be an http:// or https:// URL of at most 500 characters without a query (the cell's /v1 API base, e.g. https://cell-1.example.com)",
        ))
    }
}

/// A path segment percent-encoded (ids may hold any printable character).
pub fn segment(raw: &str) -> String {
    // A whole segment of dots would be resolved as `.`/`..` by the URL
    // parser, turning the call into another route of the same app.
    if raw == "." || raw == ".." {
        return raw.replace('.', "%2E");
    }
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Turns a cell's answer into the value or an honest error.
pub fn answer(a: V1Answer) -> Result<Value> {
    if (200..300).contains(&a.status) {
        return Ok(a.body);
    }
    let code = a.body["error"]["code"].as_str().unwrap_or_default();
    let message = a.body["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("the cell answered HTTP {}", a.status));
    // The data plane's refusals of the request itself keep their meaning.
    let kept: Option<&'static str> = match (a.status, code) {
        (400, _) => Some("bad_request"),
        (404, _) => Some("not_found"),
        (403, "suspended") => Some("suspended"),
        // The cell refusing the action itself (muting a group's owner).
        (403, "forbidden") => Some("forbidden"),
        (409, _) => Some("conflict"),
        (413, _) => Some("payload_too_large"),
        (422, "content_blocked") => Some("content_blocked"),
        (429, _) => Some("rate_limited"),
        _ => None,
    };
    if let Some(code) = kept {
        return Err(ControlError::new(code, message));
    }
    Err(match a.status {
        // The cell does not know the app's key yet (its config lags) or
        // is overloaded: worth a retry.
        401 => unavailable(format!(
            "the cell does not accept the app's active key yet (its config may lag by a few seconds): {message}"
        )),
        502..=504 => unavailable(format!("the cell is unavailable: {message}")),
        _ => ControlError::new(
            "bad_gateway",
            format!("the cell answered HTTP {}: {message}", a.status),
        ),
    })
}

impl Control {
    /// Serves the support lookups of apps in `cell_id` from this process's
    /// own data plane (embedded `confab serve`).
    pub fn register_data_plane(&self, cell_id: &str, plane: Arc<dyn DataPlane>) {
        if let Ok(mut local) = self.data_planes.local.write() {
            local.insert(cell_id.to_owned(), plane);
        }
    }

    async fn data_plane(&self, cell_id: &str) -> Result<Arc<dyn DataPlane>> {
        if let Some(p) = self
            .data_planes
            .local
            .read()
            .ok()
            .and_then(|l| l.get(cell_id).cloned())
        {
            return Ok(p);
        }
        let cell: Option<Cell> = self.doc(kind::CELL, cell_id).await?;
        let Some(url) = cell.and_then(|c| c.api_url) else {
            return Err(unavailable(format!(
                "cell {cell_id:?} has no api_url: an operator sets it (PATCH /admin/v1/cells/{cell_id}) so that support lookups can reach its data"
            )));
        };
        if let Some(p) = self
            .data_planes
            .remote
            .read()
            .ok()
            .and_then(|r| r.get(&url).cloned())
        {
            return Ok(p);
        }
        let plane: Arc<dyn DataPlane> =
            Arc::new(HttpDataPlane::new(&url).map_err(ControlError::internal)?);
        if let Ok(mut remote) = self.data_planes.remote.write() {
            remote.insert(url, plane.clone());
        }
        Ok(plane)
    }

    /// One `/v1` request for the app, to its cell, with its active key.
    /// Another tenant's app is `not_found` before anything is sent.
    #[tracing::instrument(skip(self, actor, body), fields(app_id))]
    pub async fn support_call(
        &self,
        actor: &Actor,
        app_id: &str,
        method: &str,
        path_and_query: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let app = self.app(actor, app_id).await?;
        let tenant: Tenant = self
            .doc(kind::TENANT, &app.tenant_id)
            .await?
            .ok_or_else(|| ControlError::not_found(format!("no app {app_id:?}")))?;
        let (_, secret) = self.signing_key(actor, app_id).await.map_err(|e| {
            if e.code == "not_found" {
                ControlError::conflict(
                    "the app has no active secret key: support lookups act with it; create one on the Keys tab",
                )
            } else {
                e
            }
        })?;
        let plane = self.data_plane(&tenant.cell_id).await?;
        let a = plane
            .call(&secret, method, path_and_query, body)
            .await
            .map_err(|e| {
                tracing::warn!(cell = %tenant.cell_id, error = %e, "cell unreachable");
                unavailable(format!("cell {:?} is unreachable: {e}", tenant.cell_id))
            })?;
        answer(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn a(status: u16, body: Value) -> V1Answer {
        V1Answer { status, body }
    }

    #[test]
    fn answers_keep_refusals_and_blame_the_cell_for_the_rest() {
        assert_eq!(answer(a(200, json!({"x": 1}))).unwrap(), json!({"x": 1}));
        let e = |s, b| answer(a(s, b)).unwrap_err();
        let refusal = json!({"error": {"code": "not_found", "message": "no such conversation"}});
        let nf = e(404, refusal);
        assert_eq!(
            (nf.code, nf.message.as_str()),
            ("not_found", "no such conversation")
        );
        assert_eq!(e(429, json!({})).code, "rate_limited");
        // A blocked word is the request's fault, not the cell's.
        assert_eq!(
            e(
                422,
                json!({"error": {"code": "content_blocked", "message": "blocked"}})
            )
            .code,
            "content_blocked"
        );
        assert_eq!(e(401, json!({})).code, "data_plane_unavailable");
        assert_eq!(e(503, json!({})).code, "data_plane_unavailable");
        assert_eq!(e(500, Value::Null).code, "bad_gateway");
        assert_eq!(e(302, Value::Null).code, "bad_gateway");
    }

    #[test]
    fn dot_segments_are_encoded() {
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("."), "%2E");
        assert_eq!(segment("a..b"), "a..b");
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("p2p:alice:bob"), "p2p:alice:bob");
        assert_eq!(segment("a/b?c d"), "a%2Fb%3Fc%20d");
        assert_eq!(segment("张"), "%E5%BC%A0");
    }

    #[test]
    fn api_urls_are_checked() {
        assert!(validate_api_url("https://cell-1.example.com").is_ok());
        assert!(validate_api_url("http://10.0.0.5:8080/").is_ok());
        for bad in ["", "ftp://x", "https://", "https://x?y=1", "cell-1"] {
            assert!(validate_api_url(bad).is_err(), "{bad}");
        }
    }
}
