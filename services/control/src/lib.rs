//! The control plane: what makes Confab a platform rather than a chat server.
//!
//! - [`service::Control`]: tenants, apps, encrypted keys ([`keyring`]),
//!   accounts and roles, word lists, gray rules, cells — every operation
//!   checked against the [`service::Actor`] making it.
//! - [`publisher`]: builds each cell's config snapshot and streams versions
//!   to data-plane nodes (in-process, or over gRPC `ConfigService.Watch`).
//! - [`rest`]: the admin REST API `/admin/v1` (utoipa; the OpenAPI document
//!   in `openapi/` is generated from it).

mod error;
pub mod keyring;
pub mod model;
pub mod publisher;
pub mod rest;
pub mod service;

pub use error::{ControlError, Result};
