//! Keeps a data-plane node's config current from the control plane's
//! `ConfigService.Watch` stream, reconnecting with backoff for as long as the
//! node runs, and saving each applied version to the on-disk cache.

use std::path::PathBuf;
use std::time::Duration;

use confab_proto::v1::config_service_client::ConfigServiceClient;
use confab_proto::v1::{ConfigUpdate, WatchRequest};
use tonic::metadata::MetadataValue;

use crate::{ConfigError, ConfigHandle, Delta, Snapshot, cache};

/// Header carrying the cell secret on node-to-node calls (as in confab-cluster).
pub const CELL_SECRET_HEADER: &str = "x-confab-cell-secret";

pub struct Subscription {
    /// Where the config is served (`http://host:port`): the control plane,
    /// or (split services without one) the logic nodes. Tried in turn.
    pub endpoints: Vec<String>,
    pub cell_id: String,
    pub node: String,
    pub cell_secret: String,
    /// Where the last config is kept across restarts.
    pub cache_path: Option<PathBuf>,
}

/// Loads the cached snapshot, if any (a missing or unreadable cache is not an
/// error: the node then waits for the control plane).
pub fn load_cached(sub: &Subscription) -> Option<Snapshot> {
    let path = sub.cache_path.as_ref()?;
    match cache::load(path, &sub.cell_secret) {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring the config cache");
            None
        }
    }
}

/// Applies one update; returns the snapshot now held.
pub fn apply_update(handle: &ConfigHandle, update: &ConfigUpdate) -> Result<Snapshot, ConfigError> {
    if update.full {
        let snapshot: Snapshot = serde_json::from_slice(&update.json)
            .map_err(|e| ConfigError::Malformed(e.to_string()))?;
        handle.replace(snapshot.clone());
        Ok(snapshot)
    } else {
        let delta: Delta = serde_json::from_slice(&update.json)
            .map_err(|e| ConfigError::Malformed(e.to_string()))?;
        handle.apply(delta)
    }
}

/// Runs until the process ends.
pub async fn run(sub: Subscription, handle: ConfigHandle) {
    if sub.endpoints.is_empty() {
        tracing::error!("no config endpoint: serving on the cached config only");
        return;
    }
    let mut backoff = Duration::from_millis(200);
    let mut turn = 0usize;
    loop {
        let endpoint = &sub.endpoints[turn % sub.endpoints.len()];
        turn += 1;
        match watch_once(&sub, endpoint, &handle).await {
            Ok(()) => {
                tracing::info!(%endpoint, "config stream ended; reconnecting");
                backoff = Duration::from_millis(200);
            }
            Err(e) => {
                tracing::warn!(error = %e, %endpoint, "config stream failed; serving on the last config")
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn watch_once(
    sub: &Subscription,
    endpoint: &str,
    handle: &ConfigHandle,
) -> Result<(), String> {
    let mut client = ConfigServiceClient::connect(endpoint.to_owned())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut request = tonic::Request::new(WatchRequest {
        cell_id: sub.cell_id.clone(),
        known_version: handle.current().version(),
        node: sub.node.clone(),
    });
    let secret = MetadataValue::try_from(sub.cell_secret.as_str())
        .map_err(|_| "the cell secret is not a valid header value".to_owned())?;
    request.metadata_mut().insert(CELL_SECRET_HEADER, secret);
    let mut stream = client
        .watch(request)
        .await
        .map_err(|e| format!("watch: {e}"))?
        .into_inner();
    while let Some(update) = stream.message().await.map_err(|e| format!("stream: {e}"))? {
        match apply_update(handle, &update) {
            Ok(snapshot) => {
                tracing::info!(
                    version = snapshot.version,
                    full = update.full,
                    "config applied"
                );
                if let Some(path) = &sub.cache_path
                    && let Err(e) = cache::save(path, &snapshot, &sub.cell_secret)
                {
                    tracing::warn!(error = %e, "could not save the config cache");
                }
            }
            // Out of step (e.g. a delta against a version we no longer
            // hold): reconnect, which starts with a full snapshot.
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}
