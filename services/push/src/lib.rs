//! Offline push for Confab.
//!
//! - [`provider`]: the interface every push channel implements, and the
//!   per-app credentials that configure one.
//! - [`providers`]: the adapters for APNs, FCM, Huawei, Xiaomi, OPPO, vivo
//!   and Honor, built from credentials by [`build_provider`].
//!
//! The provider adapters and the queue worker live in their own modules; the
//! logic layer only enqueues jobs (see `confab_store` for the queue), so a
//! slow or failing provider never slows message delivery.

pub mod error;
mod http;
pub mod provider;
pub mod providers;

pub use error::PushError;
pub use provider::{Credentials, Outcome, Provider, PushMessage, Vendor};
pub use providers::{Endpoints, build_provider};
