//! The conformance suite against PostgreSQL alone (roaming store for
//! everything, no ring), each test on a fresh database of a throwaway server.

use confab_store::Stores;
use confab_store::postgres::{PgOptions, PgStore};

async fn fresh() -> Stores {
    let url = confab_testkit::postgres().await;
    PgStore::connect(&url, PgOptions::default())
        .await
        .expect("connect to PostgreSQL")
        .into_stores()
}

confab_store::conformance_tests!(fresh());
