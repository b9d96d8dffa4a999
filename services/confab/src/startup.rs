//! Builds the embedded, all-in-one server from settings: SQLite stores, the
//! logic layer, a gateway on HTTP (WebSocket) and TCP, and observability.
//! Tests call [`build`] with port 0 and a temporary data directory.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use confab_gateway::{Gateway, Hub};
use confab_logic::admin::{self, CreatedApp};
use confab_logic::{Delivery, Logic};
use confab_store::Stores;
use confab_store::postgres::{PgOptions, PgStore};
use confab_store::sqlite::{SqliteOptions, SqliteStore};
use tokio::net::TcpListener;

use crate::observability;
use crate::settings::{ServeSettings, StoreKind};

/// A user's routes expire this long after the last login or refresh (active
/// sessions refresh every minute; clients must send something at least every
/// idle timeout, 90 s by default), so routes of a node that died go away.
const ROUTE_TTL_SECS: u64 = 600;

/// A built server, listening, not yet serving.
pub struct App {
    pub http_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    /// Set on the very first start only: the default app and its secret.
    pub first_run: Option<CreatedApp>,
    /// The stores, when this process runs logic (not on a gateway-only node).
    pub stores: Option<Stores>,
    gateway: Arc<Gateway>,
    http: TcpListener,
    tcp: TcpListener,
    /// Node-to-node delivery (distributed mode only).
    grpc: Option<TcpListener>,
    drain: Duration,
}

pub async fn open_stores(settings: &ServeSettings) -> anyhow::Result<Stores> {
    if settings.store == StoreKind::Distributed {
        let pg_url = settings
            .pg_url
            .as_deref()
            .context("CONFAB_PG_URL is required")?;
        let redis_url = settings
            .redis_url
            .as_deref()
            .context("CONFAB_REDIS_URL is required")?;
        let pg = PgStore::connect(pg_url, PgOptions::default())
            .await
            .context("connecting to PostgreSQL")?;
        let stores = confab_store::redis_store::distributed(
            pg,
            redis_url,
            settings.ring_capacity,
            ROUTE_TTL_SECS,
        )
        .await
        .context("connecting to Redis")?;
        return Ok(stores);
    }
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
    tracing::debug!(settings = ?settings.redacted(), "starting with settings");
    observability::metrics_handle();
    let stores = open_stores(&settings).await?;
    let first_run = admin::bootstrap(stores.directory.as_ref())
        .await
        .context("creating the default app")?;

    let hub = Hub::new();
    let (logic, kicks, node, grpc): (Arc<Logic>, Arc<dyn Delivery>, String, _) = if settings.store
        == StoreKind::Distributed
    {
        let grpc = TcpListener::bind(settings.grpc_addr)
            .await
            .with_context(|| format!("binding gRPC address {}", settings.grpc_addr))?;
        let node = settings
            .advertise_addr
            .clone()
            .unwrap_or(grpc.local_addr()?.to_string());
        let delivery =
            confab_cluster::ClusterDelivery::new(hub.clone(), stores.routes.clone(), node.clone());
        (
            Arc::new(Logic::new(stores.clone(), delivery.clone())),
            delivery,
            node,
            Some(grpc),
        )
    } else {
        let node = format!("embedded-{}", std::process::id());
        (
            Arc::new(Logic::new(stores.clone(), hub.clone())),
            hub.clone(),
            node,
            None,
        )
    };
    let gateway = Gateway::new(
        logic.clone(),
        hub,
        stores.routes.clone(),
        kicks,
        settings.gateway(),
        node,
    );

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
        stores: Some(stores),
        gateway,
        http,
        tcp,
        grpc,
        drain: Duration::from_secs(settings.drain_secs),
    })
}

/// A gateway-only node (`confab gateway`): WebSocket and TCP listeners, the
/// route table in Redis, the logic layer over gRPC (`CONFAB_LOGIC_ADDRS`), and
/// the node-delivery service on which logic nodes reach its devices.
pub async fn build_gateway(settings: ServeSettings) -> anyhow::Result<App> {
    settings.validate()?;
    observability::metrics_handle();
    let redis_url = settings
        .redis_url
        .as_deref()
        .context("a gateway needs CONFAB_REDIS_URL")?;
    let conn = confab_store::redis_store::connect(redis_url)
        .await
        .context("connecting to Redis")?;
    let routes: Arc<dyn confab_store::RouteTable> = Arc::new(
        confab_store::redis_store::RedisRouteTable::new(conn, ROUTE_TTL_SECS),
    );
    let logic = Arc::new(
        confab_cluster::RemoteLogic::new(&settings.logic_addrs).map_err(anyhow::Error::msg)?,
    );
    let grpc = TcpListener::bind(settings.grpc_addr)
        .await
        .with_context(|| format!("binding gRPC address {}", settings.grpc_addr))?;
    let node = settings
        .advertise_addr
        .clone()
        .unwrap_or(grpc.local_addr()?.to_string());
    let hub = Hub::new();
    let kicks = confab_cluster::ClusterDelivery::new(hub.clone(), routes.clone(), node.clone());
    let gateway = Gateway::new(logic, hub, routes, kicks, settings.gateway(), node);
    let http = TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("binding {}", settings.http_addr))?;
    let tcp = TcpListener::bind(settings.tcp_addr)
        .await
        .with_context(|| format!("binding {}", settings.tcp_addr))?;
    Ok(App {
        http_addr: http.local_addr()?,
        tcp_addr: tcp.local_addr()?,
        first_run: None,
        stores: None,
        gateway,
        http,
        tcp,
        grpc: Some(grpc),
        drain: Duration::from_secs(settings.drain_secs),
    })
}

/// A logic-only node (`confab logic`): the logic layer served over gRPC to
/// gateways, on the cell's PostgreSQL and Redis; it reaches devices through
/// the route table and the gateways' node-delivery service.
pub struct LogicNode {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub first_run: Option<CreatedApp>,
    pub stores: Stores,
    logic: Arc<Logic>,
    grpc: TcpListener,
    http: TcpListener,
}

pub async fn build_logic(mut settings: ServeSettings) -> anyhow::Result<LogicNode> {
    settings.store = StoreKind::Distributed;
    settings.validate()?;
    observability::metrics_handle();
    let stores = open_stores(&settings).await?;
    let first_run = admin::bootstrap(stores.directory.as_ref())
        .await
        .context("creating the default app")?;
    let grpc = TcpListener::bind(settings.grpc_addr)
        .await
        .with_context(|| format!("binding gRPC address {}", settings.grpc_addr))?;
    // No devices are connected here: every delivery goes to a gateway.
    let me = format!("logic-{}", grpc.local_addr()?);
    let delivery = confab_cluster::ClusterDelivery::new(Hub::new(), stores.routes.clone(), me);
    let logic = Arc::new(Logic::new(stores.clone(), delivery));
    let http = TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("binding {}", settings.http_addr))?;
    Ok(LogicNode {
        grpc_addr: grpc.local_addr()?,
        http_addr: http.local_addr()?,
        first_run,
        stores,
        logic,
        grpc,
        http,
    })
}

impl LogicNode {
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let http =
            tokio::spawn(axum::serve(self.http, observability::basic_router()).into_future());
        tracing::info!(grpc = %self.grpc_addr, http = %self.http_addr, "confab logic serving");
        let served = tonic::transport::Server::builder()
            .add_service(confab_cluster::LogicServer::server(self.logic))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(self.grpc),
                shutdown,
            )
            .await;
        http.abort();
        served.context("logic gRPC server")
    }

    /// Serves in the background (tests); dropping or shutting down the
    /// returned handle stops it.
    pub fn spawn(self) -> RunningLogic {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (grpc_addr, stores) = (self.grpc_addr, self.stores.clone());
        let first_run = self.first_run.clone();
        let handle = tokio::spawn(self.run_until(async {
            let _ = rx.await;
        }));
        RunningLogic {
            grpc_addr,
            first_run,
            stores,
            stop: Some(tx),
            handle,
        }
    }
}

pub struct RunningLogic {
    pub grpc_addr: SocketAddr,
    pub first_run: Option<CreatedApp>,
    pub stores: Stores,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningLogic {
    /// Stops at once, like a crash from the clients' point of view.
    pub fn abort(self) {
        self.handle.abort();
    }
}

impl Drop for RunningLogic {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
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
        let (stop_grpc_tx, stop_grpc_rx) = tokio::sync::oneshot::channel::<()>();
        let grpc_task = self.grpc.map(|listener| {
            let service = confab_cluster::NodeDeliveryService::server(self.gateway.hub().clone());
            tokio::spawn(async move {
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(
                        tonic::transport::server::TcpIncoming::from(listener),
                        async {
                            let _ = stop_grpc_rx.await;
                        },
                    )
                    .await
            })
        });
        tracing::info!(http = %self.http_addr, tcp = %self.tcp_addr, "confab serving");
        shutdown.await;
        tracing::info!("shutting down");
        self.gateway.shutdown(self.drain).await;
        let _ = stop_http_tx.send(());
        let _ = stop_grpc_tx.send(());
        if let Some(t) = grpc_task {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
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
    pub stores: Option<Stores>,
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
