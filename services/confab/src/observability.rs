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
            describe_metrics();
            handle
        })
        .clone()
}

/// Help text for every Confab metric (Prometheus `# HELP`; `promtool check
/// metrics` requires it). A metric added in the code belongs here too.
fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    let counters: &[(&str, &str)] = &[
        (
            "confab_cluster_delivered_total",
            "Frames handed to other nodes for their devices.",
        ),
        (
            "confab_cluster_dropped_total",
            "Cross-node deliveries dropped (queue full); recipients catch up by sync.",
        ),
        (
            "confab_cluster_failed_total",
            "Cross-node delivery batches that failed.",
        ),
        (
            "confab_cluster_logic_failovers_total",
            "Requests retried on another logic node.",
        ),
        (
            "confab_cluster_route_errors_total",
            "Route table lookups that failed.",
        ),
        (
            "confab_cluster_skipped_total",
            "Deliveries skipped for nodes in backoff.",
        ),
        (
            "confab_gateway_frame_errors_total",
            "Frames refused by the gateway, by code.",
        ),
        (
            "confab_gateway_frames_in_total",
            "Frames received from clients.",
        ),
        (
            "confab_gateway_frames_out_total",
            "Frames written to clients.",
        ),
        (
            "confab_gateway_kicks_total",
            "Sessions kicked (kick policy, suspension).",
        ),
        ("confab_gateway_logins_total", "Login attempts by result."),
        (
            "confab_gateway_rate_limited_total",
            "Frames refused by the per-connection rate limit.",
        ),
        (
            "confab_gateway_slow_consumer_disconnects_total",
            "Connections closed because the client did not read.",
        ),
        (
            "confab_logic_errors_total",
            "Requests answered with an error, by op and code.",
        ),
        ("confab_logic_group_events_total", "Group events stored."),
        (
            "confab_logic_messages_deduplicated_total",
            "Sends answered with the original message (repeated client_msg_id).",
        ),
        (
            "confab_logic_messages_sent_total",
            "Messages stored, by body kind.",
        ),
        (
            "confab_logic_moderated_total",
            "Messages blocked or masked by the word lists.",
        ),
        (
            "confab_logic_requests_total",
            "Requests served by this logic node, by release label.",
        ),
        (
            "confab_logic_sync_messages_total",
            "Messages returned by sync.",
        ),
        (
            "confab_quota_rejections_total",
            "Requests refused by an app quota, by quota.",
        ),
        (
            "confab_store_dedupe_replans_total",
            "Commit batches replanned after hitting a repeated client_msg_id.",
        ),
        (
            "confab_store_purged_messages_total",
            "Messages purged by history retention.",
        ),
        (
            "confab_store_ring_push_failures_total",
            "Inbox ring (Redis) writes that failed.",
        ),
        (
            "confab_store_sync_served_total",
            "Syncs served, by source (ring or database).",
        ),
        (
            "confab_room_messages_shed_total",
            "Live-room deliveries dropped because the member's send queue was filling, by priority (low first, then normal; high never).",
        ),
        (
            "confab_room_deliveries_total",
            "Live-room frames queued to members' connections on this node.",
        ),
        (
            "confab_logic_room_messages_total",
            "Messages sent to live rooms, by priority.",
        ),
    ];
    for (name, help) in counters {
        describe_counter!(*name, *help);
    }
    describe_push();
    describe_gauge!(
        "confab_config_version",
        "The config version this node has applied."
    );
    describe_gauge!(
        "confab_config_last_applied_timestamp_seconds",
        Unit::Seconds,
        "When this node last applied a config (Unix time)."
    );
    describe_gauge!("confab_gateway_connections", "Open client connections.");
    describe_gauge!(
        "confab_gateway_online_users",
        "Users with at least one session on this node."
    );
    describe_histogram!(
        "confab_gateway_delivery_latency_seconds",
        Unit::Seconds,
        "From a message being stored to its push being written to a recipient's socket."
    );
    describe_histogram!(
        "confab_logic_store_seconds",
        Unit::Seconds,
        "Time to store a message durably."
    );
    describe_histogram!(
        "confab_store_checkpoint_seconds",
        Unit::Seconds,
        "SQLite WAL checkpoint time."
    );
    describe_histogram!(
        "confab_store_commit_batch_messages",
        "Messages per group commit."
    );
    describe_histogram!(
        "confab_store_commit_seconds",
        Unit::Seconds,
        "Group commit time."
    );
    describe_histogram!(
        "confab_store_phase_seconds",
        Unit::Seconds,
        "Time per phase of a group commit."
    );
    describe_gauge!(
        "confab_db_pool_connections",
        "Database pool connections, by backend, pool and state (idle or in_use)."
    );
    describe_gauge!(
        "confab_db_pool_max_connections",
        "The most connections a database pool may open."
    );
    describe_counter!(
        "confab_grpc_server_requests_total",
        "gRPC requests served, by method and status."
    );
    describe_histogram!(
        "confab_grpc_server_seconds",
        Unit::Seconds,
        "gRPC time to the response headers (for a stream: to its start), by method."
    );
    describe_counter!(
        "confab_gateway_route_reregistrations_total",
        "Sessions a gateway registered again after the route table lost its routes (Redis restarted empty)."
    );
    describe_webhook_metrics();
}

/// The webhook metrics (`confab-webhooks`).
fn describe_webhook_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "confab_webhook_requests_total",
        "Webhook requests by event and outcome (delivered, failed, timeout, dead_lettered, allow, reject, modify, busy, invalid_response, ...)."
    );
    describe_counter!(
        "confab_webhook_dropped_total",
        "Webhook events or attempt records dropped because the node's queue to the outbox was full or the outbox failed."
    );
    describe_histogram!(
        "confab_webhook_seconds",
        Unit::Seconds,
        "Webhook request time, by event."
    );
    describe_gauge!(
        "confab_webhook_outbox_depth",
        "Asynchronous webhook events waiting for delivery (all apps)."
    );
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

/// The offline-push metrics (docs/push.md).
fn describe_push() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "confab_push_jobs_total",
        "Push jobs settled by the worker, by vendor and outcome (sent, retry, dead_token, dead_letter)."
    );
    describe_counter!(
        "confab_push_decisions_total",
        "Push decisions per recipient device, by result (enqueued, online, muted, dnd, silent)."
    );
    describe_counter!(
        "confab_push_enqueue_errors_total",
        "Push decisions that failed (the message was delivered, its offline push was not queued)."
    );
    describe_counter!(
        "confab_push_decisions_dropped_total",
        "Push decisions dropped because too many were in flight on the node."
    );
    describe_counter!(
        "confab_push_registrations_total",
        "push_register requests, by vendor."
    );
    describe_gauge!(
        "confab_push_queue_depth",
        "Push jobs waiting or in flight (dead letters not counted)."
    );
    describe_gauge!(
        "confab_push_queue_oldest_seconds",
        Unit::Seconds,
        "Age of the oldest push job in the queue."
    );
    describe_histogram!(
        "confab_push_provider_seconds",
        Unit::Seconds,
        "Time a provider took to answer one push, by vendor."
    );
}
