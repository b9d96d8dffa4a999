//! The embedded server's own data plane, for the control plane's support
//! lookups (`confab_control::service::support`): requests go through the
//! same `/v1` router the HTTP listener serves, in-process — the same
//! authentication with the app's key, app scoping and limits as a tenant
//! backend's request, without a network hop.

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use confab_control::service::support::{DataPlane, V1Answer};
use serde_json::Value;
use tower::ServiceExt;

/// Largest answer read (history pages stop at ~512 KiB of bodies).
const MAX_ANSWER: usize = 8 * 1024 * 1024;

/// The `/v1` router of this process as a [`DataPlane`].
pub struct InProcessV1(pub Router);

#[async_trait]
impl DataPlane for InProcessV1 {
    async fn call(
        &self,
        secret: &str,
        method: &str,
        path_and_query: &str,
        body: Option<Value>,
    ) -> Result<V1Answer, String> {
        let builder = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(AUTHORIZATION, format!("Bearer {secret}"));
        let request = match body {
            Some(b) => builder
                .header(CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => builder.body(Body::empty()),
        }
        .map_err(|e| format!("building the request: {e}"))?;
        let response = self
            .0
            .clone()
            .oneshot(request)
            .await
            .map_err(|e| format!("the /v1 router failed: {e}"))?;
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        Ok(V1Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        })
    }
}
