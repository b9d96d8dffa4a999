//! `/healthz` (the process is up), `/readyz` (it takes traffic: storage open,
//! not draining) and `/metrics` (Prometheus text). The metrics recorder is
//! process-wide, so it is installed once even when tests start several servers.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use confab_gateway::Gateway;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Latency buckets (seconds) for every `_seconds` histogram.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
];

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub fn metrics_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Suffix("_messages".into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
                    )
                });
            let handle = match builder.and_then(|b| b.install_recorder()) {
                Ok(h) => h,
                // Another recorder is installed (a test harness): render an
                // empty, private one rather than fail.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .ok();
            metrics_process::Collector::default().describe();
            handle
        })
        .clone()
}

#[derive(Clone)]
struct ObsState {
    handle: PrometheusHandle,
    gateway: Arc<Gateway>,
}

pub fn router(gateway: Arc<Gateway>) -> Router {
    let state = ObsState {
        handle: metrics_handle(),
        gateway,
    };
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render))
        .with_state(state)
}

async fn readyz(State(s): State<ObsState>) -> impl IntoResponse {
    if s.gateway.is_shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else {
        (StatusCode::OK, "ready")
    }
}

async fn render(State(s): State<ObsState>) -> impl IntoResponse {
    metrics_process::Collector::default().collect();
    metrics::gauge!("confab_gateway_online_users").set(s.gateway.hub().online_users() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.handle.render(),
    )
}

/// `/healthz`, `/readyz` and `/metrics` for a process without a gateway (a
/// logic node).
pub fn basic_router() -> Router {
    let handle = metrics_handle();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move {
                    metrics_process::Collector::default().collect();
                    (
                        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                        handle.render(),
                    )
                }
            }),
        )
}
