//! Offline push for Confab.
//!
//! - [`provider`]: the interface every push channel implements, and the
//!   per-app credentials that configure one.
//!
//! The provider adapters and the queue worker live in their own modules; the
//! logic layer only enqueues jobs (see `confab_store` for the queue), so a
//! slow or failing provider never slows message delivery.

pub mod provider;

pub use provider::{Credentials, Outcome, Provider, PushMessage, Vendor};
