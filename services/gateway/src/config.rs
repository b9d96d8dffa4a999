//! Limits and timers of a gateway node.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The first frame must be a successful `login` within this time.
    pub login_timeout: Duration,
    /// A connection that sends nothing for this long is closed (protocol.md:
    /// 3 × the 30 s heartbeat).
    pub idle_timeout: Duration,
    /// Largest frame answered with an error rather than a close.
    pub max_frame_bytes: usize,
    /// Frames queued for one connection before it counts as a slow reader and
    /// is disconnected.
    pub send_queue: usize,
    /// Sustained frames per second one connection may send, and the burst.
    pub frames_per_sec: u32,
    pub frames_burst: u32,
    /// After this many refused frames without a calm second between them the
    /// connection is closed.
    pub flood_close_after: u32,
    /// Told to clients in `goaway`.
    pub goaway_retry_ms: u32,
    /// WebSocket read buffer per connection (tungstenite's default is 128 KiB).
    pub ws_read_buffer: usize,
    /// Open connections one client IP may hold on this node (0: no limit).
    /// Only meaningful where clients connect directly (behind an L7 proxy
    /// every connection comes from the proxy's addresses).
    pub max_connections_per_ip: usize,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            login_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            max_frame_bytes: 64 * 1024,
            send_queue: 1024,
            frames_per_sec: 200,
            frames_burst: 1000,
            flood_close_after: 1000,
            goaway_retry_ms: 1000,
            ws_read_buffer: 1024,
            max_connections_per_ip: 0,
        }
    }
}
