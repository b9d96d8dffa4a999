//! The data plane's view of its cell's config.
//!
//! The control plane owns tenants, apps, keys, quotas, word lists and gray
//! rules; each data-plane node holds a [`Snapshot`] of what its cell needs,
//! at a `version`, and keeps it current by applying [`Delta`]s streamed by the
//! control plane (`ConfigService.Watch`, see [`subscriber`]). Readers take the
//! current [`Compiled`] view from a [`ConfigView`] — a lock-free clone of an
//! `Arc` — so the hot path never waits for the control plane, and a node whose
//! control plane is down keeps serving on its last config ([`cache`]).

pub mod cache;
pub mod gray;
mod snapshot;
pub mod subscriber;
pub mod webhook;
pub mod words;

pub use snapshot::{
    AppConfig, AppStatus, Compiled, ConfigHandle, ConfigView, Delta, KeyConfig, Snapshot,
};

/// The one error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("delta from version {delta_base} does not apply to version {held}")]
    VersionMismatch { held: u64, delta_base: u64 },
    #[error("config cache: {0}")]
    Cache(String),
    #[error("malformed config update: {0}")]
    Malformed(String),
}
