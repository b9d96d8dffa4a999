//! A TCP proxy per link, so the schedule can slow, cut or partition the
//! network between two processes without root (no network namespaces).
//!
//! Modes: `Pass`; `Delay(ms)` (every chunk waits before it is forwarded);
//! `Cut` (every open connection is closed and new ones are refused at once,
//! like a crashed peer or a firewall RST); `Blackhole` (bytes are held, not
//! dropped, until the mode changes — a partition where TCP keeps
//! retransmitting: dropping bytes mid-stream would corrupt the framing, which
//! no real network does).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Delay(u64),
    Cut,
    Blackhole,
}

pub struct Proxy {
    pub name: String,
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(name: impl Into<String>, target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (mode, rx) = watch::channel(Mode::Pass);
        let task = tokio::spawn(accept_loop(listener, target, rx));
        Self {
            name: name.into(),
            addr,
            mode,
            task,
        }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, mode: watch::Receiver<Mode>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            continue;
        };
        let current = *mode.borrow();
        if current == Mode::Cut {
            drop(inbound);
            continue;
        }
        let mode = mode.clone();
        tokio::spawn(async move {
            // The peer may be down (killed process): the client then sees a
            // closed connection, as it would without the proxy.
            let Ok(outbound) = TcpStream::connect(target).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            // Either direction ending (EOF, error, cut) closes both.
            tokio::select! {
                _ = pump(ri, wo, mode.clone()) => {}
                _ = pump(ro, wi, mode) => {}
            }
        });
    }
}

/// Waits while the link is blackholed; false when it is cut.
async fn passable(mode: &mut watch::Receiver<Mode>) -> bool {
    loop {
        let m = *mode.borrow_and_update();
        match m {
            Mode::Cut => return false,
            Mode::Blackhole => {
                if mode.changed().await.is_err() {
                    return false;
                }
            }
            _ => return true,
        }
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !passable(&mut mode).await {
            return;
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            // A cut closes idle connections too.
            _ = wait_cut(mode.clone()) => return,
        };
        let current = *mode.borrow();
        if let Mode::Delay(ms) = current {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if !passable(&mut mode).await {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn wait_cut(mut mode: watch::Receiver<Mode>) {
    loop {
        if *mode.borrow_and_update() == Mode::Cut {
            return;
        }
        if mode.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
