//! The access layer. Holds long connections (WebSocket at `/v1/connect`, raw
//! TCP with length-prefixed protobuf), turns bytes into frames, and runs each
//! connection's session: login within a deadline, heartbeats and idle close,
//! per-connection rate limits, a bounded send queue (a slow reader is
//! disconnected, memory never grows), same-platform kick, and a graceful
//! shutdown that tells clients to reconnect.
//!
//! What a frame *means* is the logic layer's job ([`confab_logic::Logic`]);
//! this crate must not know about messages beyond moving them.

mod config;
mod connection;
mod hub;
mod rooms;
mod sink;
mod tcp;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use confab_logic::{Delivery, LogicApi};
use confab_store::RouteTable;
use tokio_util::sync::CancellationToken;

pub use config::GatewayConfig;

/// Largest frame the server writes (replies to sync and history are cut to a
/// byte budget well below it; see the logic layer).
pub const MAX_OUTGOING_FRAME_BYTES: usize = 16 * 1024 * 1024;
pub use hub::Hub;

/// A gateway node: shared by every connection it holds.
pub struct Gateway {
    logic: Arc<dyn LogicApi>,
    hub: Arc<Hub>,
    /// Where this node records which devices it holds.
    routes: Arc<dyn RouteTable>,
    /// Kicks sessions on other nodes (a no-op on a single node).
    kicks: Arc<dyn Delivery>,
    config: GatewayConfig,
    /// Cancelled when the node starts shutting down.
    shutdown: CancellationToken,
    node: String,
    /// One clock for every connection's frame-rate limiter: building governor's
    /// default clock reads the CPU's identity (CPUID, a trap under a
    /// hypervisor), too slow to do once per login; clones are cheap copies.
    clock: governor::clock::DefaultClock,
}

impl Gateway {
    pub fn new(
        logic: Arc<dyn LogicApi>,
        hub: Arc<Hub>,
        routes: Arc<dyn RouteTable>,
        kicks: Arc<dyn Delivery>,
        config: GatewayConfig,
        node: String,
    ) -> Arc<Self> {
        let gw = Arc::new(Self {
            logic,
            hub,
            routes,
            kicks,
            config,
            shutdown: CancellationToken::new(),
            node,
            clock: governor::clock::DefaultClock::default(),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(room_presence(Arc::downgrade(&gw)));
            rt.spawn(route_keeper(Arc::downgrade(&gw)));
        }
        gw
    }

    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Follows the node's config: when an app is suspended, deleted or moved
    /// to another cell, its live sessions here are kicked.
    pub fn watch_config(self: &Arc<Self>, mut view: confab_config::ConfigView) {
        let hub = self.hub.clone();
        tokio::spawn(async move {
            loop {
                let config = view.current();
                let kicked = hub.kick_apps(
                    |app| {
                        config
                            .app(app.as_str())
                            .is_none_or(|a| a.status == confab_config::AppStatus::Suspended)
                    },
                    "the app is suspended or no longer served here",
                );
                if kicked > 0 {
                    tracing::info!(
                        kicked,
                        version = config.version(),
                        "kicked sessions of suspended apps"
                    );
                }
                if !view.changed().await {
                    return;
                }
            }
        });
    }

    /// The axum routes of the gateway (`/v1/connect`).
    pub fn router(self: &Arc<Self>) -> axum::Router {
        ws::router(self.clone())
    }

    /// Accepts TCP connections until shutdown.
    pub async fn serve_tcp(self: Arc<Self>, listener: tokio::net::TcpListener) {
        tcp::serve(self, listener).await
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Stops taking connections, tells every client to reconnect (`goaway`),
    /// and waits up to `drain` for connections to close.
    pub async fn shutdown(&self, drain: Duration) {
        self.shutdown.cancel();
        let told = self.hub.goaway_all(self.config.goaway_retry_ms);
        tracing::info!(connections = told, "gateway draining");
        let deadline = tokio::time::Instant::now() + drain;
        while self.hub.connection_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.hub.close_all();
    }
}

/// How often changed room counts are written to the route table.
const PRESENCE_FLUSH: Duration = Duration::from_secs(1);
/// Every this many flushes, every room's count is re-written (the entries
/// expire like routes, so that a dead node's drop out).
const PRESENCE_REFRESH_EVERY: u32 = 60;

/// Writes this node's live room counts to the route table's room presence
/// until the gateway is dropped. A room's first member here is written by
/// its connection at once (so that a message right after the join reaches
/// it); everything else — counts, rooms emptied — within a second.
async fn room_presence(gw: std::sync::Weak<Gateway>) {
    let mut tick = tokio::time::interval(PRESENCE_FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u32;
    loop {
        tick.tick().await;
        let Some(gw) = gw.upgrade() else { return };
        n = n.wrapping_add(1);
        let rooms = if n.is_multiple_of(PRESENCE_REFRESH_EVERY) {
            gw.hub.rooms.take_dirty();
            gw.hub.rooms.all()
        } else {
            gw.hub.rooms.take_dirty()
        };
        for ((app, room), count) in rooms {
            if let Err(e) = gw
                .routes
                .set_room_presence(&app, &room, &gw.node, count as u64)
                .await
            {
                tracing::warn!(error = %e, room = %room, "room presence write failed");
                // Try again on the next flush.
                gw.hub.rooms.mark((app, room));
            }
        }
    }
}

/// How often a gateway checks that the route table still holds its routes.
const ROUTE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Re-registers every session of this node when the route table lost them
/// (Redis restarted empty): without it, logic would find no route for a
/// connected user until that session's next refresh (a minute, and only
/// when it sends), and live pushes would wait for the next sync. Stops with
/// the gateway.
async fn route_keeper(gw: std::sync::Weak<Gateway>) {
    let mut tick = tokio::time::interval(ROUTE_CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Some writes of the last pass failed: do it all again.
    let mut retry = false;
    loop {
        tick.tick().await;
        let Some(gw) = gw.upgrade() else { return };
        if gw.shutdown.is_cancelled() {
            return;
        }
        match gw.routes.mark_node(&gw.node).await {
            Ok(true) if !retry => {}
            Ok(_) => {
                retry = false;
                let sessions = gw.hub.sessions();
                if sessions.is_empty() {
                    continue;
                }
                tracing::warn!(
                    sessions = sessions.len(),
                    "route table lost this node's routes: registering every session again"
                );
                let mut failed = 0usize;
                for chunk in sessions.chunks(256) {
                    let writes = chunk.iter().map(|s| {
                        gw.routes.register(
                            &s.app,
                            &s.user,
                            confab_store::Route {
                                device_id: s.device_id.to_string(),
                                session_id: s.session_id.to_string(),
                                node: gw.node.clone(),
                                platform: s.platform.as_str().to_owned(),
                            },
                        )
                    });
                    failed += futures_util::future::join_all(writes)
                        .await
                        .iter()
                        .filter(|r| r.is_err())
                        .count();
                }
                metrics::counter!("confab_gateway_route_reregistrations_total")
                    .increment((sessions.len() - failed) as u64);
                if failed > 0 {
                    tracing::warn!(failed, "re-registering routes failed; trying again");
                    retry = true;
                }
            }
            // Redis down: the next tick tries again (and finds the mark gone
            // if it came back empty).
            Err(e) => tracing::debug!(error = %e, "route table check failed"),
        }
    }
}
