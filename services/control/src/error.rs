use confab_store::StoreError;

/// The one error type of this crate: a stable snake_case code (api.md) and a
/// message for a human.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ControlError {
    pub code: &'static str,
    pub message: String,
}

pub type Result<T, E = ControlError> = std::result::Result<T, E>;

impl ControlError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new("bad_request", m)
    }
    pub fn unauthorized(m: impl Into<String>) -> Self {
        Self::new("unauthorized", m)
    }
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new("forbidden", m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new("not_found", m)
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        Self::new("conflict", m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new("internal", m)
    }
    pub fn config(m: impl Into<String>) -> Self {
        Self::new("bad_config", m)
    }
}

impl From<StoreError> for ControlError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Self::conflict(format!("already exists: {m}")),
            StoreError::NotFound(m) => Self::not_found(format!("not found: {m}")),
            StoreError::Unavailable(m) => Self::new("unavailable", m),
            StoreError::Limit(m) => Self::new("quota_exceeded", m),
            StoreError::Corrupt(m) => Self::internal(format!("stored data is corrupt: {m}")),
        }
    }
}
