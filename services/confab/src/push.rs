//! Offline push in the binary: the worker that `confab serve` embeds and
//! that `confab push` runs on its own (distributed: PostgreSQL + the KEK).
//!
//! Providers come from the control plane's sealed credentials through
//! [`CachedProviders`], built by [`build_provider`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use confab_control::service::Control;
use confab_push::{BuildProvider, CachedProviders, Worker, WorkerConfig};
use confab_store::postgres::PgStore;
use confab_store::{Stores, UsageRecorder};

use crate::settings::ServeSettings;

/// How long a provider built from an app's credentials is used before the
/// credentials are read again (an upload or deletion applies within this).
pub const CREDENTIALS_REFRESH: Duration = Duration::from_secs(30);

/// Builds a provider from an app's credentials, against the endpoints from
/// `CONFAB_PUSH_*` (docs/push.md; the real providers' hosts by default).
/// The worker caches what this builds per (app, vendor), so that an APNs
/// connection and its token are reused across pushes.
pub fn build_provider() -> anyhow::Result<BuildProvider> {
    let endpoints = confab_push::Endpoints::from_env()
        .map_err(|e| anyhow::anyhow!("push provider endpoints (CONFAB_PUSH_*): {e}"))?;
    Ok(Arc::new(move |c: &confab_push::Credentials| {
        confab_push::build_provider(c, &endpoints).map_err(|e| e.to_string())
    }))
}

/// The worker's settings from the node's.
pub fn worker_config(settings: &ServeSettings) -> WorkerConfig {
    WorkerConfig {
        concurrency: settings.push_concurrency.max(1),
        ..WorkerConfig::default()
    }
}

/// A worker on `stores`' queue with providers from `control`, counting
/// push outcomes per app into `usage`.
pub fn worker(
    stores: &Stores,
    control: Arc<Control>,
    build: BuildProvider,
    config: WorkerConfig,
    usage: Arc<UsageRecorder>,
) -> Worker {
    let providers = CachedProviders::new(control, build, CREDENTIALS_REFRESH);
    Worker::new(
        stores.push_queue.clone(),
        stores.devices.clone(),
        Arc::new(providers),
        config,
    )
    .with_usage(usage)
}

/// Starts the embedded worker of `confab serve`; it stops with the runtime
/// (jobs in hand come back after their lease).
pub fn spawn_embedded(
    settings: &ServeSettings,
    stores: &Stores,
    control: Arc<Control>,
    usage: Arc<UsageRecorder>,
) -> anyhow::Result<()> {
    let w = worker(
        stores,
        control,
        build_provider()?,
        worker_config(settings),
        usage,
    );
    tokio::spawn(w.run(std::future::pending()));
    Ok(())
}

/// `confab push`: push workers on PostgreSQL, with `/metrics` on the HTTP
/// address, until `shutdown`.
pub async fn run(
    settings: ServeSettings,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let pg_url = settings
        .pg_url
        .as_deref()
        .context("CONFAB_PG_URL is required: push workers drain the PostgreSQL queue")?;
    anyhow::ensure!(
        settings.kek.is_some(),
        "CONFAB_KEK is required: push credentials are sealed with it"
    );
    crate::observability::metrics_handle();
    let stores = PgStore::connect(pg_url, crate::startup::pg_options(&settings))
        .await
        .context("connecting to PostgreSQL")?
        .into_stores();
    let keyring = crate::startup::keyring(&settings)?;
    let control = Arc::new(Control::new(stores.control.clone(), Arc::new(keyring)));
    let http = crate::startup::bind(settings.http_addr)
        .with_context(|| format!("binding HTTP address {}", settings.http_addr))?;
    tracing::info!(addr = %http.local_addr()?, concurrency = settings.push_concurrency, "push worker running");
    let metrics = tokio::spawn(async move {
        let _ = axum::serve(http, crate::observability::basic_router()).await;
    });
    // Push outcomes per app, for the usage dashboards; flushed once more
    // when the worker stops.
    let usage = Arc::new(UsageRecorder::new(stores.usage.clone()));
    let (stop_usage, usage_stopped) = tokio::sync::oneshot::channel::<()>();
    let flusher = tokio::spawn(usage.clone().run(settings.usage_flush(), async move {
        let _ = usage_stopped.await;
    }));
    let w = worker(
        &stores,
        control,
        build_provider()?,
        worker_config(&settings),
        usage,
    );
    w.run(shutdown).await;
    let _ = stop_usage.send(());
    let _ = flusher.await;
    metrics.abort();
    Ok(())
}
