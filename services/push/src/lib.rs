//! Offline push for Confab.
//!
//! - [`provider`]: the interface every push channel implements, and the
//!   per-app credentials that configure one.
//! - [`providers`]: the adapters for APNs, FCM, Huawei, Xiaomi, OPPO, vivo
//!   and Honor, built from credentials by [`build_provider`].
//! - [`template`]: what a notification says (the app's templates) and the
//!   message for one device; used by the logic layer when it enqueues.
//! - [`source`]: where the worker gets a provider for an app's vendor.
//! - [`worker`]: drains the durable queue (`confab_store::PushQueue`).
//! - [`testing`]: a recording, scriptable in-process provider for tests.
//!
//! The provider adapters and the queue worker live in their own modules; the
//! logic layer only enqueues jobs (see `confab_store` for the queue), so a
//! slow or failing provider never slows message delivery.

pub mod error;
mod http;
pub mod provider;
pub mod providers;
pub mod source;
pub mod template;
pub mod testing;
pub mod worker;

pub use error::PushError;
pub use provider::{Credentials, Outcome, Provider, PushMessage, Vendor};
pub use providers::{Endpoints, build_provider};
pub use source::{
    BuildProvider, CachedProviders, CredentialSource, Lookup, ProviderSource, StaticProviders,
    StoredCredentials,
};
pub use worker::{Settled, Worker, WorkerConfig, WorkerError};
