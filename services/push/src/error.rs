//! The crate's error type: what can go wrong before any push is sent
//! (configuration and credentials). Per-send problems are not errors but
//! [`Outcome`](crate::Outcome)s, because the worker decides on them.

use crate::Vendor;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The app's uploaded credentials cannot be used (unparsable `.p8` key,
    /// service-account JSON without a private key, an id with characters
    /// that cannot go into a URL, ...). Reported when the provider is built,
    /// so a bad upload is visible at once rather than at the first push.
    #[error("invalid {vendor} credentials: {reason}")]
    Credentials { vendor: Vendor, reason: String },
    /// The endpoint configuration is unusable (a URL that does not parse, a
    /// CA file that cannot be read or holds no certificate).
    #[error("invalid push endpoint configuration: {0}")]
    Config(String),
}

impl PushError {
    pub(crate) fn creds(vendor: Vendor, reason: impl std::fmt::Display) -> PushError {
        PushError::Credentials {
            vendor,
            reason: reason.to_string(),
        }
    }
}
