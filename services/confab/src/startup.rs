//! Builds the embedded, all-in-one server from settings: SQLite stores, the
//! logic layer, a gateway on HTTP (WebSocket) and TCP, and observability.
//! Tests call [`build`] with port 0 and a temporary data directory.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use confab_gateway::{Gateway, Hub};
use confab_logic::Logic;
use confab_logic::admin::{self, CreatedApp};
use confab_store::Stores;
use confab_store::sqlite::{SqliteOptions, SqliteStore};
use tokio::net::TcpListener;

use crate::observability;
use crate::settings::ServeSettings;

/// A built server, listening, not yet serving.
pub struct App {
    pub http_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    /// Set on the very first start only: the default app and its secret.
    pub first_run: Option<CreatedApp>,
    pub stores: Stores,
    gateway: Arc<Gateway>,
    http: TcpListener,
    tcp: TcpListener,
    drain: Duration,
}

pub async fn open_stores(settings: &ServeSettings) -> anyhow::Result<Stores> {
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating data directory {}", settings.data_dir.display()))?;
    let options = SqliteOptions {
        durability: settings.durability(),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&settings.database_path(), options)
        .await
        .with_context(|| format!("opening {}", settings.database_path().display()))?;
    Ok(store.into_stores())
}

pub async fn build(settings: ServeSettings) -> anyhow::Result<App> {
    settings.validate()?;
    tracing::debug!(?settings, "starting with settings");
    observability::metrics_handle();
    let stores = open_stores(&settings).await?;
    let first_run = admin::bootstrap(stores.directory.as_ref())
        .await
        .context("creating the default app")?;

    let hub = Hub::new();
    let logic = Arc::new(Logic::new(stores.clone(), hub.clone()));
    let node = format!("embedded-{}", std::process::id());
    let gateway = Gateway::new(logic, hub, settings.gateway(), node);

    let http = TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("binding HTTP address {}", settings.http_addr))?;
    let tcp = TcpListener::bind(settings.tcp_addr)
        .await
        .with_context(|| format!("binding TCP address {}", settings.tcp_addr))?;
    Ok(App {
        http_addr: http.local_addr()?,
        tcp_addr: tcp.local_addr()?,
        first_run,
        stores,
        gateway,
        http,
        tcp,
        drain: Duration::from_secs(settings.drain_secs),
    })
}

impl App {
    /// Serves until `shutdown` resolves, then drains connections gracefully:
    /// clients get `goaway` and reconnect elsewhere (or after the restart).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = self
            .gateway
            .router()
            .merge(observability::router(self.gateway.clone()))
            .layer(tower_http::trace::TraceLayer::new_for_http());
        let tcp_task = tokio::spawn(self.gateway.clone().serve_tcp(self.tcp));
        let (stop_http_tx, stop_http_rx) = tokio::sync::oneshot::channel::<()>();
        let http_task = tokio::spawn(async move {
            axum::serve(self.http, router)
                .with_graceful_shutdown(async {
                    let _ = stop_http_rx.await;
                })
                .await
        });
        tracing::info!(http = %self.http_addr, tcp = %self.tcp_addr, "confab serving");
        shutdown.await;
        tracing::info!("shutting down");
        self.gateway.shutdown(self.drain).await;
        let _ = stop_http_tx.send(());
        tcp_task.abort();
        match tokio::time::timeout(Duration::from_secs(5), http_task).await {
            Ok(Ok(r)) => r.context("HTTP server")?,
            Ok(Err(e)) => return Err(anyhow::anyhow!("HTTP server task failed: {e}")),
            Err(_) => tracing::warn!("HTTP server did not stop in time"),
        }
        Ok(())
    }

    /// Starts serving in the background (for tests); the returned sender stops it.
    pub fn spawn(self) -> RunningApp {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let http_addr = self.http_addr;
        let tcp_addr = self.tcp_addr;
        let first_run = self.first_run.clone();
        let stores = self.stores.clone();
        let handle = tokio::spawn(self.run_until(async {
            let _ = rx.await;
        }));
        RunningApp {
            http_addr,
            tcp_addr,
            first_run,
            stores,
            stop: Some(tx),
            handle: Some(handle),
        }
    }
}

/// A server running in the background of the current runtime.
pub struct RunningApp {
    pub http_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    pub first_run: Option<CreatedApp>,
    pub stores: Stores,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl RunningApp {
    /// Graceful shutdown, waiting for it to finish.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await??;
        }
        Ok(())
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
