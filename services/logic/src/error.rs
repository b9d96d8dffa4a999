//! The logic layer's one error type: a stable protocol code and a message
//! that is safe to show the client.

use confab_proto::ops::code;
use confab_store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct LogicError {
    pub code: &'static str,
    pub message: String,
    /// For `rate_limited`: when to try again.
    pub retry_after_ms: Option<u32>,
}

impl LogicError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
    pub fn with_retry_after(mut self, ms: u32) -> Self {
        self.retry_after_ms = Some(ms);
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(code::BAD_REQUEST, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(code::UNAUTHORIZED, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(code::NOT_FOUND, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(code::FORBIDDEN, message)
    }
}

impl From<StoreError> for LogicError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(format!("{what} not found")),
            StoreError::Limit(what) => Self::new(code::QUOTA_EXCEEDED, what),
            StoreError::Conflict(what) => {
                Self::new(code::CONFLICT, format!("{what} already exists"))
            }
            // Internal detail stays in the logs, not in the client's reply.
            other => {
                tracing::error!(error = %other, "storage error");
                Self::new(
                    code::UNAVAILABLE,
                    "storage is temporarily unavailable; retry",
                )
            }
        }
    }
}

pub type Result<T, E = LogicError> = std::result::Result<T, E>;
