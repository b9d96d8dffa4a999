//! The conformance suite against the SQLite backend, each test on a fresh
//! database file.

use confab_store::Stores;
use confab_store::sqlite::{SqliteOptions, SqliteStore};

async fn fresh() -> Stores {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("confab.db");
    // Keep the directory for the test's lifetime.
    std::mem::forget(dir);
    SqliteStore::open(&path, SqliteOptions::default())
        .await
        .expect("open sqlite")
        .into_stores()
}

confab_store::conformance_tests!(fresh());
