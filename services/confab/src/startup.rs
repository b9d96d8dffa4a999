//! Builds the embedded, all-in-one server from settings: SQLite stores, the
//! logic layer, a gateway on HTTP (WebSocket) and TCP, and observability.
//! Tests call [`build`] with port 0 and a temporary data directory.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use confab_config::ConfigView;
use confab_control::keyring::Keyring;
use confab_control::publisher::{ConfigGrpc, Publisher};
use confab_control::service::{Bootstrapped, Control};
use confab_gateway::{Gateway, Hub};
use confab_logic::{Delivery, Logic};
use confab_store::postgres::{PgOptions, PgStore};
use confab_store::sqlite::{SqliteOptions, SqliteStore};
use confab_store::{Stores, UsageRecorder};
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
    pub first_run: Option<Bootstrapped>,
    /// The stores, when this process runs logic (not on a gateway-only node).
    pub stores: Option<Stores>,
    /// The in-process control plane (when this node has no CONFAB_CONTROL_ADDR).
    pub control: Option<ControlPlane>,
    /// The node's config as applied.
    pub config: Option<ConfigView>,
    console_dir: Option<std::path::PathBuf>,
    gateway: Arc<Gateway>,
    http: TcpListener,
    tcp: TcpListener,
    /// Node-to-node delivery (distributed mode only).
    grpc: Option<TcpListener>,
    drain: Duration,
    /// Each HTTP request's headers must arrive within this (slowloris).
    http_header_timeout: Duration,
    /// The REST API `/v1` (not on a gateway-only node); the in-process
    /// control plane's support lookups go through the same router.
    rest: Option<axum::Router>,
    /// The node's usage counters and how often they are flushed (not on a
    /// gateway-only node, which has no store).
    usage: Option<(Arc<UsageRecorder>, Duration)>,
}

pub async fn open_stores(settings: &ServeSettings) -> anyhow::Result<Stores> {
    if settings.store == StoreKind::Distributed {
        let pg_url = settings
            .pg_url
            .as_deref()
            .context("CONFAB_PG_URL is required")?;
        let redis = settings
            .redis_target()?
            .context("CONFAB_REDIS_URL is required")?;
        let pg = PgStore::connect(pg_url, pg_options(settings))
            .await
            .context("connecting to PostgreSQL")?;
        let stores = confab_store::redis_store::distributed(
            pg,
            &redis,
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

/// A control plane running inside this process.
#[derive(Clone)]
pub struct ControlPlane {
    pub control: Arc<Control>,
    pub publisher: Arc<Publisher>,
}

/// The key-encryption keys for app secrets (see `CONFAB_KEK`).
pub fn keyring(settings: &ServeSettings) -> anyhow::Result<Keyring> {
    match &settings.kek {
        Some(spec) => {
            Keyring::parse(spec).map_err(|e| anyhow::anyhow!("CONFAB_KEK: {}", e.message))
        }
        None if settings.store == StoreKind::Sqlite => {
            std::fs::create_dir_all(&settings.data_dir)
                .with_context(|| format!("creating {}", settings.data_dir.display()))?;
            Keyring::load_or_create(&settings.data_dir).map_err(|e| anyhow::anyhow!(e.message))
        }
        None => anyhow::bail!(
            "CONFAB_KEK is required in distributed mode (every node of the control plane shares it)"
        ),
    }
}

/// Starts a control plane on the given control store: the publisher runs
/// in the background from now on.
pub fn start_control(
    settings: &ServeSettings,
    store: Arc<dyn confab_store::ControlStore>,
    webhook_outbox: Option<Arc<dyn confab_store::WebhookOutbox>>,
    push_queue: Option<Arc<dyn confab_store::PushQueue>>,
) -> anyhow::Result<ControlPlane> {
    let mut control = Control::new(store, Arc::new(keyring(settings)?));
    if let Some(outbox) = webhook_outbox {
        control = control.with_webhook_outbox(outbox);
    }
    if let Some(queue) = push_queue {
        control = control.with_push_queue(queue);
    }
    let control = Arc::new(control);
    let publisher = Publisher::new(control.clone());
    tokio::spawn(publisher.clone().run());
    Ok(ControlPlane { control, publisher })
}

/// Pending connections a listener queues before the kernel drops new ones
/// (capped by `net.core.somaxconn`). tokio's `TcpListener::bind` uses 128,
/// which a login storm with a few hundred connects in flight overflowed
/// (`TcpExtListenOverflows`): each dropped connect then waited for the
/// client's 1 s SYN retransmit.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as
/// `TcpListener::bind` sets it).
pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// How long a node without a cached config waits for the control plane
/// before it starts anyway (serving no app until the config arrives).
const FIRST_CONFIG_WAIT: Duration = Duration::from_secs(10);
/// How often a logic node looks for membership events a failed request left
/// pending (settled once older than three periods).
const GROUP_EVENT_SWEEP: Duration = Duration::from_secs(2);

/// The background jobs of every process that runs logic (`confab serve` and
/// `confab logic`): the retention purge and the membership-event sweep.
fn spawn_logic_jobs(
    stores: &Stores,
    config: &ConfigView,
    logic: &Arc<Logic>,
    settings: &ServeSettings,
) {
    tokio::spawn(confab_logic::retention::run(
        stores.clone(),
        config.clone(),
        Duration::from_secs(settings.retention_interval_secs.max(1)),
    ));
    tokio::spawn(confab_logic::run_event_sweep(
        logic.clone(),
        GROUP_EVENT_SWEEP,
    ));
}

/// The node's config: streamed from the control plane when
/// `CONFAB_CONTROL_ADDR` is set (cached on disk for static stability), else
/// built from the control records in this node's own database.
pub async fn node_config(
    settings: &ServeSettings,
    stores: Option<&Stores>,
    node: &str,
) -> anyhow::Result<(ConfigView, Option<ControlPlane>)> {
    use confab_config::subscriber::{self, Subscription};
    // A gateway-only node without a control plane of its own gets the
    // config from the logic nodes, which serve it from their database.
    let endpoints: Vec<String> = match (&settings.control_addr, stores) {
        (Some(control), _) => vec![control.clone()],
        (None, None) => settings
            .logic_addrs
            .iter()
            .map(|a| format!("http://{a}"))
            .collect(),
        (None, Some(_)) => Vec::new(),
    };
    if !endpoints.is_empty() {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("creating {}", settings.data_dir.display()))?;
        let sub = Subscription {
            endpoints,
            cell_id: settings.cell.clone(),
            node: node.to_owned(),
            cell_secret: settings.cell_secret.clone().unwrap_or_default(),
            cache_path: Some(settings.data_dir.join("config.cache")),
        };
        let cached = subscriber::load_cached(&sub);
        let had_cache = cached.is_some();
        let (handle, mut view) = confab_config::ConfigHandle::new(cached.unwrap_or_default());
        let result_view = view.clone();
        tokio::spawn(subscriber::run(sub, handle));
        if !had_cache
            && tokio::time::timeout(FIRST_CONFIG_WAIT, view.changed())
                .await
                .is_err()
        {
            tracing::warn!("no config from the control plane yet; serving no app until it arrives");
        }
        return Ok((result_view, None));
    }
    let stores = stores.context("this node needs CONFAB_CONTROL_ADDR (it has no database)")?;
    let plane = start_control(
        settings,
        stores.control.clone(),
        Some(stores.webhooks.clone()),
        Some(stores.push_queue.clone()),
    )?;
    let handle = plane
        .publisher
        .local_handle(&settings.cell)
        .await
        .map_err(|e| anyhow::anyhow!("building the config: {}", e.message))?;
    Ok((handle.view(), Some(plane)))
}

/// Creates the operator account, default tenant and app on an empty control
/// store (first start).
async fn bootstrap(plane: Option<&ControlPlane>) -> anyhow::Result<Option<Bootstrapped>> {
    let Some(plane) = plane else {
        return Ok(None);
    };
    let first = plane
        .control
        .bootstrap()
        .await
        .map_err(|e| anyhow::anyhow!("creating the default app: {}", e.message))?;
    if first.is_some() {
        plane
            .publisher
            .refresh()
            .await
            .map_err(|e| anyhow::anyhow!("publishing the config: {}", e.message))?;
    }
    Ok(first)
}

pub async fn build(settings: ServeSettings) -> anyhow::Result<App> {
    settings.validate()?;
    tracing::debug!(settings = ?settings.redacted(), "starting with settings");
    observability::metrics_handle();
    let stores = open_stores(&settings).await?;
    let (config, control) = node_config(&settings, Some(&stores), "serve").await?;
    let first_run = bootstrap(control.as_ref()).await?;

    let hub = Hub::new();
    let (logic, kicks, node, grpc): (Arc<Logic>, Arc<dyn Delivery>, String, _) = if settings.store
        == StoreKind::Distributed
    {
        let grpc = bind(settings.grpc_addr)
            .with_context(|| format!("binding gRPC address {}", settings.grpc_addr))?;
        let node = settings
            .advertise_addr
            .clone()
            .unwrap_or(grpc.local_addr()?.to_string());
        let delivery =
            confab_cluster::ClusterDelivery::new(hub.clone(), stores.routes.clone(), node.clone());
        (
            Arc::new(Logic::new(stores.clone(), delivery.clone(), config.clone())),
            delivery,
            node,
            Some(grpc),
        )
    } else {
        let node = format!("embedded-{}", std::process::id());
        (
            Arc::new(Logic::new(stores.clone(), hub.clone(), config.clone())),
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
    gateway.watch_config(config.clone());
    // The dashboards' connections: this node's logged-in connections per app.
    let hub = gateway.hub().clone();
    logic
        .usage()
        .set_connection_source(Arc::new(move || hub.app_connection_counts()));
    confab_webhooks::dispatcher::spawn(
        logic.webhooks().clone(),
        config.clone(),
        settings.webhook_dispatch(),
    );
    spawn_logic_jobs(&stores, &config, &logic, &settings);

    // The embedded push worker (needs the control plane for credentials; a
    // node following a remote control plane leaves push to `confab push`).
    if let Some(cp) = &control {
        crate::push::spawn_embedded(
            &settings,
            &stores,
            cp.control.clone(),
            logic.usage().clone(),
        )?;
    }

    // One `/v1` router (one set of rate limits): served over HTTP, and the
    // in-process control plane's support lookups for this cell use it.
    let rest = confab_api::router(logic.clone());
    if let Some(cp) = &control {
        cp.control.register_data_plane(
            &settings.cell,
            Arc::new(crate::support::InProcessV1(rest.clone())),
        );
    }

    let http = bind(settings.http_addr)
        .with_context(|| format!("binding HTTP address {}", settings.http_addr))?;
    let tcp = bind(settings.tcp_addr)
        .with_context(|| format!("binding TCP address {}", settings.tcp_addr))?;
    Ok(App {
        http_addr: http.local_addr()?,
        tcp_addr: tcp.local_addr()?,
        first_run,
        stores: Some(stores),
        control,
        config: Some(config),
        console_dir: settings.console_dir.clone(),
        gateway,
        http,
        tcp,
        grpc,
        drain: Duration::from_secs(settings.drain_secs),
        http_header_timeout: Duration::from_secs(settings.http_header_timeout_secs.max(1)),
        rest: Some(rest),
        usage: Some((logic.usage().clone(), settings.usage_flush())),
    })
}

/// A gateway-only node (`confab gateway`): WebSocket and TCP listeners, the
/// route table in Redis, the logic layer over gRPC (`CONFAB_LOGIC_ADDRS`), and
/// the node-delivery service on which logic nodes reach its devices.
pub async fn build_gateway(settings: ServeSettings) -> anyhow::Result<App> {
    settings.validate()?;
    observability::metrics_handle();
    let redis = settings
        .redis_target()?
        .context("a gateway needs CONFAB_REDIS_URL")?;
    let conn = confab_store::redis_store::connect(&redis)
        .await
        .context("connecting to Redis")?;
    let routes: Arc<dyn confab_store::RouteTable> = Arc::new(
        confab_store::redis_store::RedisRouteTable::new(conn, ROUTE_TTL_SECS),
    );
    let remote = Arc::new(
        confab_cluster::RemoteLogic::new(&settings.logic_addrs).map_err(anyhow::Error::msg)?,
    );
    remote.start_discovery();
    let logic: Arc<dyn confab_logic::LogicApi> = remote.clone();
    let grpc = bind(settings.grpc_addr)
        .with_context(|| format!("binding gRPC address {}", settings.grpc_addr))?;
    let node = settings
        .advertise_addr
        .clone()
        .unwrap_or(grpc.local_addr()?.to_string());
    let hub = Hub::new();
    let kicks = confab_cluster::ClusterDelivery::new(hub.clone(), routes.clone(), node.clone());
    let gateway = Gateway::new(logic, hub, routes, kicks, settings.gateway(), node.clone());
    // The gateway follows suspensions (kicks) and gray rules, with the
    // config from the control plane or else from the logic nodes.
    let config = node_config(&settings, None, &node).await?.0;
    gateway.watch_config(config.clone());
    // Gray release: route each user to a logic node of its release.
    remote.follow_releases(config.clone());
    let config = Some(config);
    let http =
        bind(settings.http_addr).with_context(|| format!("binding {}", settings.http_addr))?;
    let tcp = bind(settings.tcp_addr).with_context(|| format!("binding {}", settings.tcp_addr))?;
    Ok(App {
        http_addr: http.local_addr()?,
        tcp_addr: tcp.local_addr()?,
        first_run: None,
        stores: None,
        control: None,
        config,
        console_dir: None,
        gateway,
        http,
        tcp,
        grpc: Some(grpc),
        drain: Duration::from_secs(settings.drain_secs),
        http_header_timeout: Duration::from_secs(settings.http_header_timeout_secs.max(1)),
        rest: None,
        usage: None,
    })
}

/// A logic-only node (`confab logic`): the logic layer served over gRPC to
/// gateways, on the cell's PostgreSQL and Redis; it reaches devices through
/// the route table and the gateways' node-delivery service.
pub struct LogicNode {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub first_run: Option<Bootstrapped>,
    pub stores: Stores,
    pub control: Option<ControlPlane>,
    pub config: ConfigView,
    cell_secret: Option<String>,
    logic: Arc<Logic>,
    grpc: TcpListener,
    http: TcpListener,
    usage_flush: Duration,
}

pub async fn build_logic(mut settings: ServeSettings) -> anyhow::Result<LogicNode> {
    settings.store = StoreKind::Distributed;
    settings.validate()?;
    observability::metrics_handle();
    let stores = open_stores(&settings).await?;
    let grpc = bind(settings.grpc_addr)
        .with_context(|| format!("binding gRPC address {}", settings.grpc_addr))?;
    // No devices are connected here: every delivery goes to a gateway.
    let me = format!("logic-{}", grpc.local_addr()?);
    let (config, control) = node_config(&settings, Some(&stores), &me).await?;
    let first_run = bootstrap(control.as_ref()).await?;
    let delivery = confab_cluster::ClusterDelivery::new(Hub::new(), stores.routes.clone(), me);
    let logic = Arc::new(
        Logic::new(stores.clone(), delivery, config.clone()).with_release(&settings.release),
    );
    spawn_logic_jobs(&stores, &config, &logic, &settings);
    confab_webhooks::dispatcher::spawn(
        logic.webhooks().clone(),
        config.clone(),
        settings.webhook_dispatch(),
    );
    let http =
        bind(settings.http_addr).with_context(|| format!("binding {}", settings.http_addr))?;
    Ok(LogicNode {
        grpc_addr: grpc.local_addr()?,
        http_addr: http.local_addr()?,
        first_run,
        stores,
        control,
        config,
        cell_secret: settings.cell_secret.clone(),
        logic,
        grpc,
        http,
        usage_flush: settings.usage_flush(),
    })
}

impl LogicNode {
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // The REST API `/v1` runs where logic runs.
        let router = observability::basic_router().merge(confab_api::router(self.logic.clone()));
        let http = tokio::spawn(axum::serve(self.http, router).into_future());
        tracing::info!(grpc = %self.grpc_addr, http = %self.http_addr, "confab logic serving");
        let (stop_usage_tx, stop_usage_rx) = tokio::sync::oneshot::channel::<()>();
        let usage_task = tokio::spawn(self.logic.usage().clone().run(self.usage_flush, async {
            let _ = stop_usage_rx.await;
        }));
        // Gateways without a control plane of their own subscribe here.
        let config_service = self
            .control
            .as_ref()
            .map(|plane| ConfigGrpc::server(plane.publisher.clone(), self.cell_secret.clone()));
        let served = tonic::transport::Server::builder()
            .layer(confab_cluster::GrpcMetricsLayer)
            .add_service(confab_cluster::LogicServer::server(self.logic))
            .add_optional_service(config_service)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(self.grpc),
                shutdown,
            )
            .await;
        http.abort();
        let _ = stop_usage_tx.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), usage_task).await;
        served.context("logic gRPC server")
    }

    /// Serves in the background (tests); dropping or shutting down the
    /// returned handle stops it.
    pub fn spawn(self) -> RunningLogic {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (grpc_addr, http_addr, stores) = (self.grpc_addr, self.http_addr, self.stores.clone());
        let (control, config) = (self.control.clone(), self.config.clone());
        let logic = self.logic.clone();
        let first_run = self.first_run.clone();
        let handle = tokio::spawn(self.run_until(async {
            let _ = rx.await;
        }));
        RunningLogic {
            grpc_addr,
            http_addr,
            first_run,
            stores,
            control,
            config,
            logic,
            stop: Some(tx),
            handle,
        }
    }
}

pub struct RunningLogic {
    pub grpc_addr: SocketAddr,
    /// Metrics, health and the REST API `/v1`.
    pub http_addr: SocketAddr,
    pub first_run: Option<Bootstrapped>,
    pub stores: Stores,
    pub control: Option<ControlPlane>,
    pub config: ConfigView,
    /// The node's logic layer (its release label and requests served).
    pub logic: Arc<Logic>,
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
        let admin = self
            .control
            .as_ref()
            .map(|plane| admin_router(plane, self.console_dir.clone()))
            .unwrap_or_default();
        let router = self
            .gateway
            .router()
            .merge(observability::router(self.gateway.clone()))
            .merge(admin)
            .merge(self.rest.clone().unwrap_or_default())
            .layer(tower_http::trace::TraceLayer::new_for_http());
        let tcp_task = tokio::spawn(self.gateway.clone().serve_tcp(self.tcp));
        let (stop_http_tx, stop_http_rx) = tokio::sync::oneshot::channel::<()>();
        let header_timeout = self.http_header_timeout;
        let http_task = tokio::spawn(async move {
            crate::http_serve::serve(self.http, router, header_timeout, async {
                let _ = stop_http_rx.await;
            })
            .await;
            anyhow::Ok(())
        });
        let (stop_grpc_tx, stop_grpc_rx) = tokio::sync::oneshot::channel::<()>();
        let grpc_task = self.grpc.map(|listener| {
            let service = confab_cluster::NodeDeliveryService::server(self.gateway.hub().clone());
            tokio::spawn(async move {
                tonic::transport::Server::builder()
                    .layer(confab_cluster::GrpcMetricsLayer)
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
        let (stop_usage_tx, stop_usage_rx) = tokio::sync::oneshot::channel::<()>();
        let usage_task = self.usage.map(|(usage, every)| {
            tokio::spawn(usage.run(every, async {
                let _ = stop_usage_rx.await;
            }))
        });
        tracing::info!(http = %self.http_addr, tcp = %self.tcp_addr, "confab serving");
        shutdown.await;
        tracing::info!("shutting down");
        self.gateway.shutdown(self.drain).await;
        // The last counts (the drained connections' included) reach the store.
        let _ = stop_usage_tx.send(());
        if let Some(t) = usage_task {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
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
        let control = self.control.clone();
        let config = self.config.clone();
        let handle = tokio::spawn(self.run_until(async {
            let _ = rx.await;
        }));
        RunningApp {
            http_addr,
            tcp_addr,
            first_run,
            stores,
            control,
            config,
            stop: Some(tx),
            handle: Some(handle),
        }
    }
}

/// A server running in the background of the current runtime.
pub struct RunningApp {
    pub http_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    pub first_run: Option<Bootstrapped>,
    pub stores: Option<Stores>,
    pub control: Option<ControlPlane>,
    pub config: Option<ConfigView>,
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

/// The control plane as its own service (`confab control`): the admin REST
/// API on HTTP and `ConfigService` on gRPC, on SQLite (the data directory)
/// or PostgreSQL (`CONFAB_STORE=distributed`, `CONFAB_PG_URL`).
pub struct ControlNode {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub first_run: Option<Bootstrapped>,
    pub plane: ControlPlane,
    cell_secret: Option<String>,
    console_dir: Option<std::path::PathBuf>,
    http: TcpListener,
    grpc: TcpListener,
}

pub async fn build_control(settings: ServeSettings) -> anyhow::Result<ControlNode> {
    settings.validate()?;
    observability::metrics_handle();
    let stores = if settings.store == StoreKind::Distributed {
        let url = settings
            .pg_url
            .as_deref()
            .context("CONFAB_PG_URL is required")?;
        PgStore::connect(url, pg_options(&settings))
            .await
            .context("connecting to PostgreSQL")?
            .into_stores()
    } else {
        open_stores(&settings).await?
    };
    // The webhook delivery lists and the push dead letters come from the
    // same database (the cell's).
    let plane = start_control(
        &settings,
        stores.control,
        Some(stores.webhooks),
        Some(stores.push_queue),
    )?;
    let first_run = bootstrap(Some(&plane)).await?;
    let grpc = bind(settings.grpc_addr)
        .with_context(|| format!("binding gRPC address {}", settings.grpc_addr))?;
    let http =
        bind(settings.http_addr).with_context(|| format!("binding {}", settings.http_addr))?;
    Ok(ControlNode {
        http_addr: http.local_addr()?,
        grpc_addr: grpc.local_addr()?,
        first_run,
        plane,
        cell_secret: settings.cell_secret.clone(),
        console_dir: settings.console_dir.clone(),
        http,
        grpc,
    })
}

impl ControlNode {
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = observability::basic_router()
            .merge(admin_router(&self.plane, self.console_dir.clone()))
            .layer(tower_http::trace::TraceLayer::new_for_http());
        let http = tokio::spawn(axum::serve(self.http, router).into_future());
        tracing::info!(grpc = %self.grpc_addr, http = %self.http_addr, "confab control serving");
        let served = tonic::transport::Server::builder()
            .layer(confab_cluster::GrpcMetricsLayer)
            .add_service(ConfigGrpc::server(
                self.plane.publisher.clone(),
                self.cell_secret.clone(),
            ))
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(self.grpc),
                shutdown,
            )
            .await;
        http.abort();
        served.context("control gRPC server")
    }

    /// Serves in the background (tests); `abort` stops it at once.
    pub fn spawn(self) -> RunningControl {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (http_addr, grpc_addr) = (self.http_addr, self.grpc_addr);
        let (first_run, plane) = (self.first_run.clone(), self.plane.clone());
        let handle = tokio::spawn(self.run_until(async {
            let _ = rx.await;
        }));
        RunningControl {
            http_addr,
            grpc_addr,
            first_run,
            plane,
            stop: Some(tx),
            handle,
        }
    }
}

pub struct RunningControl {
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    pub first_run: Option<Bootstrapped>,
    pub plane: ControlPlane,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningControl {
    /// Stops at once (a crash, as data-plane nodes see it).
    pub fn abort(self) {
        self.handle.abort();
    }
}

impl Drop for RunningControl {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The admin REST API of a control plane.
fn admin_router(plane: &ControlPlane, console_dir: Option<std::path::PathBuf>) -> axum::Router {
    confab_control::rest::router(plane.control.clone()).merge(crate::console::router(console_dir))
}

/// The PostgreSQL pool settings of a node.
pub(crate) fn pg_options(settings: &ServeSettings) -> PgOptions {
    PgOptions {
        max_connections: settings.pg_max_connections,
        ..PgOptions::default()
    }
}
