//! History retention (api.md quota, default 30 days): a background job that
//! purges each app's messages older than its `retention_days`.

use std::time::Duration;

use confab_config::ConfigView;
use confab_model::AppId;
use confab_store::Stores;

/// Messages purged per store call: small enough that one call never holds
/// the writer for long.
const BATCH: u32 = 2_000;

/// Purges every app's expired messages once; returns how many went.
pub async fn purge_once(stores: &Stores, config: &ConfigView) -> u64 {
    let snapshot = config.current();
    let now = confab_model::now_ms();
    let mut total = 0;
    for app in snapshot.snapshot().apps.values() {
        let Ok(app_id) = AppId::parse(&app.app_id) else {
            continue;
        };
        let cutoff = now - i64::from(app.settings.retention_days) * 86_400_000;
        loop {
            match stores
                .messages
                .purge_older_than(&app_id, cutoff, BATCH)
                .await
            {
                Ok(purged) => {
                    total += purged.messages;
                    metrics::counter!("confab_store_purged_messages_total")
                        .increment(purged.messages);
                    if purged.messages < u64::from(BATCH) {
                        break;
                    }
                    // Let sends through between batches.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => {
                    tracing::warn!(app = %app_id, error = %e, "retention purge failed; retrying next run");
                    break;
                }
            }
        }
    }
    total
}

/// Runs [`purge_once`] every `every`, for as long as the process runs.
pub async fn run(stores: Stores, config: ConfigView, every: Duration) {
    loop {
        let purged = purge_once(&stores, &config).await;
        if purged > 0 {
            tracing::info!(purged, "retention purge");
        }
        tokio::time::sleep(every).await;
    }
}
