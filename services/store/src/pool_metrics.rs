//! Connection-pool health as gauges, sampled every few seconds: a pool that
//! stays at its maximum with no idle connection is where latency comes from
//! before anything else shows it.

use std::time::Duration;

/// How often the gauges are refreshed.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Records `confab_db_pool_connections{backend, pool, state}` (idle / in_use)
/// and `confab_db_pool_max_connections{backend, pool}` until the pool is
/// closed.
pub(crate) fn spawn_pool_gauges<DB: sqlx::Database>(
    pool: sqlx::Pool<DB>,
    backend: &'static str,
    name: &'static str,
    max: u32,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            let size = pool.size();
            let idle = pool.num_idle() as u32;
            metrics::gauge!(
                "confab_db_pool_connections",
                "backend" => backend, "pool" => name, "state" => "idle"
            )
            .set(f64::from(idle));
            metrics::gauge!(
                "confab_db_pool_connections",
                "backend" => backend, "pool" => name, "state" => "in_use"
            )
            .set(f64::from(size.saturating_sub(idle)));
            metrics::gauge!("confab_db_pool_max_connections", "backend" => backend, "pool" => name)
                .set(f64::from(max));
        }
    });
}
