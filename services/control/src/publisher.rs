//! Keeps each cell's config snapshot current and hands it to subscribers.
//!
//! The publisher rebuilds a cell's snapshot when the control store's version
//! moves: at once after a write through this process, and by polling (every
//! 500 ms) for writes made by other processes (the CLI, another control-plane
//! replica). Subscribers get a `watch` receiver of the latest snapshot; the
//! gRPC `Watch` stream turns consecutive snapshots into deltas.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use confab_config::{ConfigHandle, Snapshot};
use confab_proto::v1::config_service_server::{ConfigService, ConfigServiceServer};
use confab_proto::v1::{ConfigUpdate, WatchRequest};
use tokio::sync::watch;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::error::Result;
use crate::service::Control;

const POLL_EVERY: Duration = Duration::from_millis(200);

pub struct Publisher {
    control: Arc<Control>,
    cells: Mutex<HashMap<String, watch::Sender<Arc<Snapshot>>>>,
}

impl Publisher {
    pub fn new(control: Arc<Control>) -> Arc<Self> {
        Arc::new(Self {
            control,
            cells: Mutex::new(HashMap::new()),
        })
    }

    pub fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// The latest snapshot of a cell, and its changes from now on.
    pub async fn watch(&self, cell_id: &str) -> Result<watch::Receiver<Arc<Snapshot>>> {
        if let Some(tx) = self
            .cells
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(cell_id)
        {
            return Ok(tx.subscribe());
        }
        let snapshot = Arc::new(self.control.snapshot(cell_id).await?);
        let mut cells = self.cells.lock().unwrap_or_else(|p| p.into_inner());
        let tx = cells
            .entry(cell_id.to_owned())
            .or_insert_with(|| watch::channel(snapshot).0);
        Ok(tx.subscribe())
    }

    /// Rebuilds every watched cell's snapshot if the version moved.
    pub async fn refresh(&self) -> Result<()> {
        let version = self.control.version().await?;
        let cells: Vec<(String, u64)> = self
            .cells
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(id, tx)| (id.clone(), tx.borrow().version))
            .collect();
        for (cell_id, held) in cells {
            if held == version {
                continue;
            }
            let snapshot = Arc::new(self.control.snapshot(&cell_id).await?);
            if let Some(tx) = self
                .cells
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&cell_id)
            {
                tx.send_if_modified(|current| {
                    if snapshot.version > current.version {
                        *current = snapshot.clone();
                        true
                    } else {
                        false
                    }
                });
            }
        }
        Ok(())
    }

    /// Runs until the process ends.
    pub async fn run(self: Arc<Self>) {
        let changed = self.control.changed();
        loop {
            tokio::select! {
                _ = changed.notified() => {}
                _ = tokio::time::sleep(POLL_EVERY) => {}
            }
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "could not refresh the config snapshot");
            }
        }
    }

    /// Feeds an in-process data plane (embedded mode): a handle kept equal to
    /// the cell's latest snapshot.
    pub async fn local_handle(self: &Arc<Self>, cell_id: &str) -> Result<ConfigHandle> {
        let mut rx = self.watch(cell_id).await?;
        let first = rx.borrow_and_update().as_ref().clone();
        let (handle, _view) = ConfigHandle::new(first);
        let feed = ConfigHandle::from_sender(&handle);
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let next = rx.borrow_and_update().as_ref().clone();
                feed.replace(next);
            }
        });
        Ok(handle)
    }
}

/// The gRPC face of the publisher.
pub struct ConfigGrpc {
    publisher: Arc<Publisher>,
    cell_secret: Option<String>,
}

impl ConfigGrpc {
    pub fn server(
        publisher: Arc<Publisher>,
        cell_secret: Option<String>,
    ) -> ConfigServiceServer<Self> {
        ConfigServiceServer::new(Self {
            publisher,
            cell_secret,
        })
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<ConfigUpdate, Status>> + Send>>;

fn encode(snapshot: Option<&Snapshot>, next: &Snapshot) -> Result<ConfigUpdate, Status> {
    let (full, json) = match snapshot {
        None => (true, serde_json::to_vec(next)),
        Some(prev) => (false, serde_json::to_vec(&prev.delta_to(next))),
    };
    Ok(ConfigUpdate {
        version: next.version,
        full,
        json: json.map_err(|e| Status::internal(e.to_string()))?,
    })
}

#[tonic::async_trait]
impl ConfigService for ConfigGrpc {
    type WatchStream = UpdateStream;

    async fn watch(
        &self,
        request: Request<WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        if let Some(secret) = &self.cell_secret {
            let given = request
                .metadata()
                .get(confab_config::subscriber::CELL_SECRET_HEADER)
                .and_then(|v| v.to_str().ok());
            if given != Some(secret.as_str()) {
                return Err(Status::unauthenticated("wrong or missing cell secret"));
            }
        }
        let request = request.into_inner();
        let cell_id = if request.cell_id.is_empty() {
            crate::model::DEFAULT_CELL.to_owned()
        } else {
            request.cell_id
        };
        let mut rx = self
            .publisher
            .watch(&cell_id)
            .await
            .map_err(|e| Status::unavailable(e.message))?;
        tracing::info!(cell = %cell_id, node = %request.node, known = request.known_version, "config subscriber");
        let (tx, out) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            let mut sent = rx.borrow_and_update().clone();
            // A node that already holds this version gets an empty delta.
            let first = if request.known_version == sent.version {
                encode(Some(&sent), &sent)
            } else {
                encode(None, &sent)
            };
            if tx.send(first).await.is_err() {
                return;
            }
            while rx.changed().await.is_ok() {
                let next = rx.borrow_and_update().clone();
                if tx.send(encode(Some(&sent), &next)).await.is_err() {
                    return;
                }
                sent = next;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(out),
        )))
    }
}
