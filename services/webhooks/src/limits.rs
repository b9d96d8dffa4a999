//! Bounded concurrency per app: at most N requests to one app's endpoint at
//! a time, so that a slow or dead endpoint ties up only its own app's
//! permits and never another app's sends or deliveries. Taking a permit never
//! waits: a full app is the caller's decision (before_send applies its fail
//! mode; the dispatcher puts the event back for later).

use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct AppLimits {
    per_app: usize,
    apps: DashMap<String, Arc<Semaphore>>,
}

impl AppLimits {
    pub fn new(per_app: usize) -> Self {
        Self {
            per_app: per_app.max(1),
            apps: DashMap::new(),
        }
    }

    /// A permit for one request to `app`'s endpoint, if one is free now.
    pub fn try_acquire(&self, app: &str) -> Option<OwnedSemaphorePermit> {
        let semaphore = match self.apps.get(app) {
            Some(s) => s.clone(),
            None => self
                .apps
                .entry(app.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_app)))
                .clone(),
        };
        semaphore.try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_app_has_its_own_bound() {
        let limits = AppLimits::new(2);
        let a1 = limits.try_acquire("a");
        let a2 = limits.try_acquire("a");
        assert!(a1.is_some() && a2.is_some());
        assert!(limits.try_acquire("a").is_none(), "a is full");
        assert!(limits.try_acquire("b").is_some(), "b is not");
        drop(a1);
        assert!(limits.try_acquire("a").is_some());
    }
}
