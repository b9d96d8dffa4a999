//! A cached bearer token for the OAuth-style vendors: fetched on first
//! use, reused until shortly before it expires, dropped when the provider
//! says it is stale.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::Outcome;

/// Refresh this long before the stated expiry, so a token never expires
/// between being read here and arriving at the provider.
const MARGIN: Duration = Duration::from_secs(120);

/// Why no token: the worker retries the first, dead-letters the second.
#[derive(Debug)]
pub(crate) enum AuthError {
    Retry(Outcome),
    Failed(String),
}

impl AuthError {
    pub fn into_outcome(self) -> Outcome {
        match self {
            AuthError::Retry(o) => o,
            AuthError::Failed(reason) => Outcome::Failed { reason },
        }
    }
}

struct Cached {
    value: Arc<str>,
    refresh_at: Instant,
}

#[derive(Default)]
pub(crate) struct TokenCache {
    /// An async mutex, held across the fetch on purpose: concurrent sends
    /// that find no token wait for one fetch instead of each fetching.
    slot: Mutex<Option<Cached>>,
}

impl TokenCache {
    /// The cached token, or a fresh one from `fetch` (which returns the
    /// token and its lifetime).
    pub async fn get<F, Fut>(&self, fetch: F) -> Result<Arc<str>, AuthError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(String, Duration), AuthError>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(c.value.clone());
        }
        let (value, lifetime) = fetch().await?;
        let value: Arc<str> = value.into();
        *slot = Some(Cached {
            value: value.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(MARGIN),
        });
        Ok(value)
    }

    /// Forgets `stale` (unless another send already replaced it).
    pub async fn invalidate(&self, stale: &str) {
        let mut slot = self.slot.lock().await;
        if slot.as_ref().is_some_and(|c| &*c.value == stale) {
            *slot = None;
        }
    }
}
