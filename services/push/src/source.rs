//! Where the worker gets a [`Provider`] for an app's vendor.
//!
//! [`ProviderSource`] is what the worker asks; [`CachedProviders`] is the
//! implementation used in production: it reads the app's credentials from a
//! [`CredentialSource`] (the control plane, which unseals them with the
//! keyring), builds a provider with the constructor it was given (the
//! provider adapters' `build_provider`), and keeps it per (app, vendor) so
//! that connections and auth tokens are reused. Each entry is re-checked
//! after `refresh`: when the credentials changed (another fingerprint) the
//! provider is rebuilt, when they were deleted it goes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use confab_model::AppId;

use crate::provider::{Credentials, Provider, Vendor};
use crate::worker::WorkerError;

/// What the worker can do with an (app, vendor).
#[derive(Clone)]
pub enum Lookup {
    Ready(Arc<dyn Provider>),
    /// The app has not uploaded credentials for this vendor.
    NoCredentials,
    /// The uploaded credentials cannot make a provider (why).
    Invalid(String),
}

#[async_trait]
pub trait ProviderSource: Send + Sync + 'static {
    /// `Err` is transient (the control plane is unreachable): try later.
    async fn provider(&self, app: &AppId, vendor: Vendor) -> Result<Lookup, WorkerError>;
}

/// An app's stored credentials for a vendor, opened.
#[derive(Clone)]
pub struct StoredCredentials {
    pub credentials: Credentials,
    /// Changes whenever the credentials do (a digest of them).
    pub fingerprint: String,
}

#[async_trait]
pub trait CredentialSource: Send + Sync + 'static {
    async fn credentials(
        &self,
        app: &AppId,
        vendor: Vendor,
    ) -> Result<Option<StoredCredentials>, WorkerError>;
}

/// Builds a provider from credentials (`build_provider` with the endpoints
/// bound); `Err` says why the credentials do not work.
pub type BuildProvider =
    Arc<dyn Fn(&Credentials) -> Result<Arc<dyn Provider>, String> + Send + Sync>;

struct Entry {
    checked: Instant,
    fingerprint: Option<String>,
    lookup: Lookup,
}

pub struct CachedProviders {
    source: Arc<dyn CredentialSource>,
    build: BuildProvider,
    refresh: Duration,
    cache: Mutex<HashMap<(AppId, Vendor), Entry>>,
}

impl CachedProviders {
    pub fn new(source: Arc<dyn CredentialSource>, build: BuildProvider, refresh: Duration) -> Self {
        Self {
            source,
            build,
            refresh,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, key: &(AppId, Vendor)) -> Option<(bool, Option<String>, Lookup)> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(key).map(|e| {
            (
                e.checked.elapsed() < self.refresh,
                e.fingerprint.clone(),
                e.lookup.clone(),
            )
        })
    }
}

#[async_trait]
impl ProviderSource for CachedProviders {
    async fn provider(&self, app: &AppId, vendor: Vendor) -> Result<Lookup, WorkerError> {
        let key = (app.clone(), vendor);
        let previous = match self.cached(&key) {
            Some((true, _, lookup)) => return Ok(lookup),
            Some((false, fingerprint, lookup)) => Some((fingerprint, lookup)),
            None => None,
        };
        let stored = self.source.credentials(app, vendor).await?;
        let fingerprint = stored.as_ref().map(|s| s.fingerprint.clone());
        let lookup = match (&stored, previous) {
            // Unchanged: keep the provider (and its connection, its token).
            (_, Some((old, lookup))) if old == fingerprint => lookup,
            (None, _) => Lookup::NoCredentials,
            (Some(s), _) => match (self.build)(&s.credentials) {
                Ok(p) => Lookup::Ready(p),
                Err(why) => {
                    tracing::warn!(app = %app, vendor = %vendor, error = %why, "push credentials do not work");
                    Lookup::Invalid(why)
                }
            },
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.insert(
            key,
            Entry {
                checked: Instant::now(),
                fingerprint,
                lookup: lookup.clone(),
            },
        );
        Ok(lookup)
    }
}

/// A fixed set of providers (tests, and a node configured without a control
/// plane).
#[derive(Default)]
pub struct StaticProviders {
    providers: HashMap<(AppId, Vendor), Arc<dyn Provider>>,
}

impl StaticProviders {
    pub fn with(mut self, app: &AppId, provider: Arc<dyn Provider>) -> Self {
        self.providers
            .insert((app.clone(), provider.vendor()), provider);
        self
    }
}

#[async_trait]
impl ProviderSource for StaticProviders {
    async fn provider(&self, app: &AppId, vendor: Vendor) -> Result<Lookup, WorkerError> {
        Ok(self
            .providers
            .get(&(app.clone(), vendor))
            .map_or(Lookup::NoCredentials, |p| Lookup::Ready(p.clone())))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::testing::FakeProvider;

    /// Credentials that the test changes under the cache.
    struct Held(Mutex<Option<StoredCredentials>>);

    #[async_trait]
    impl CredentialSource for Held {
        async fn credentials(
            &self,
            _: &AppId,
            _: Vendor,
        ) -> Result<Option<StoredCredentials>, WorkerError> {
            Ok(self.0.lock().unwrap_or_else(|e| e.into_inner()).clone())
        }
    }

    fn huawei(secret: &str) -> StoredCredentials {
        StoredCredentials {
            credentials: Credentials::Huawei {
                app_id: "1".into(),
                app_secret: secret.into(),
            },
            fingerprint: secret.into(),
        }
    }

    #[tokio::test]
    async fn providers_are_reused_until_the_credentials_change_or_go() {
        let held = Arc::new(Held(Mutex::new(Some(huawei("a")))));
        let builds = Arc::new(AtomicUsize::new(0));
        let counter = builds.clone();
        let build: BuildProvider = Arc::new(move |c: &Credentials| {
            counter.fetch_add(1, Ordering::SeqCst);
            match c {
                Credentials::Huawei { app_secret, .. } if app_secret == "bad" => {
                    Err("app_secret rejected".into())
                }
                _ => Ok(Arc::new(FakeProvider::new(Vendor::Huawei)) as Arc<dyn Provider>),
            }
        });
        let source = CachedProviders::new(held.clone(), build, Duration::ZERO);
        let app = AppId::parse("app1").expect("app");
        let first = source.provider(&app, Vendor::Huawei).await.expect("lookup");
        let again = source.provider(&app, Vendor::Huawei).await.expect("lookup");
        let (Lookup::Ready(p1), Lookup::Ready(p2)) = (first, again) else {
            panic!("expected providers");
        };
        assert!(Arc::ptr_eq(&p1, &p2), "same credentials, same provider");
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        *held.0.lock().expect("lock") = Some(huawei("bad"));
        assert!(matches!(
            source.provider(&app, Vendor::Huawei).await.expect("lookup"),
            Lookup::Invalid(why) if why == "app_secret rejected"
        ));
        *held.0.lock().expect("lock") = None;
        assert!(matches!(
            source.provider(&app, Vendor::Huawei).await.expect("lookup"),
            Lookup::NoCredentials
        ));
    }
}
