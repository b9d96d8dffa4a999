//! The token request the OAuth-style vendors share: a form POST answered
//! by `{"access_token": ..., "expires_in": seconds}`.

use std::time::Duration;

use crate::http::{Body, HttpClient};
use crate::providers::{by_status, token::AuthError, transport_retry};

/// POSTs `form` to `url` and reads `access_token` / `expires_in`
/// (default one hour when absent).
pub(crate) async fn fetch(
    client: &HttpClient,
    url: &str,
    form: &[(&str, &str)],
    what: &str,
) -> Result<(String, Duration), AuthError> {
    let body = serde_urlencoded::to_string(form)
        .map_err(|e| AuthError::Failed(format!("{what}: encoding the token request: {e}")))?;
    let reply = client
        .post(url, &[], Body::Form(body))
        .await
        .map_err(|e| AuthError::Retry(transport_retry(format!("{what}: {e}"))))?;
    if !reply.status.is_success() {
        return Err(match by_status(&reply, what) {
            o @ crate::Outcome::Retry { .. } => AuthError::Retry(o),
            other => AuthError::Failed(match other {
                crate::Outcome::Failed { reason } => reason,
                o => format!("{o:?}"),
            }),
        });
    }
    let json = reply.json();
    let token = json["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| AuthError::Failed(format!("{what}: no access_token in the reply")))?;
    let secs = json["expires_in"].as_u64().unwrap_or(3600);
    Ok((token.to_string(), Duration::from_secs(secs)))
}
