//! The control plane's records: tenants, apps, keys, accounts, sessions,
//! word lists, gray rules, cells — kept as JSON documents by kind and id.
//!
//! The control plane's data is small and read far less than it is shaped, so
//! one generic, transactional document table serves every kind; the domain
//! types and their rules live in `confab-control`. Every write transaction
//! moves one global config `version` forward (in commit order), which is how
//! data-plane nodes and other processes (the CLI writes to the same database)
//! notice that something changed.

use async_trait::async_trait;

use crate::Result;

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlRecord {
    pub kind: String,
    pub id: String,
    /// The owning tenant, for records that have one (lists filter by it).
    pub tenant_id: Option<String>,
    /// JSON document.
    pub doc: String,
    /// The config version of the write that last changed it.
    pub version: u64,
}

/// One operation of a write transaction.
#[derive(Debug, Clone)]
pub enum ControlWrite {
    /// Fails the whole write with `Conflict` if (kind, id) exists.
    Insert {
        kind: String,
        id: String,
        tenant_id: Option<String>,
        doc: String,
    },
    /// Fails the whole write with `NotFound` if (kind, id) does not exist.
    Update {
        kind: String,
        id: String,
        doc: String,
    },
    /// Inserts or replaces.
    Put {
        kind: String,
        id: String,
        tenant_id: Option<String>,
        doc: String,
    },
    /// Fails the whole write with `NotFound` if (kind, id) does not exist.
    Delete { kind: String, id: String },
}

#[async_trait]
pub trait ControlStore: Send + Sync + 'static {
    /// Applies every operation in one transaction, or none; returns the new
    /// config version.
    async fn write(&self, ops: Vec<ControlWrite>) -> Result<u64>;
    async fn get(&self, kind: &str, id: &str) -> Result<Option<ControlRecord>>;
    /// Records of a kind (of one tenant if given), ordered by id.
    async fn list(&self, kind: &str, tenant_id: Option<&str>) -> Result<Vec<ControlRecord>>;
    /// The latest config version (0 before the first write).
    async fn version(&self) -> Result<u64>;
}
