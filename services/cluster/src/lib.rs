//! Cross-node delivery inside a cell.
//!
//! [`ClusterDelivery`] is the logic layer's [`Delivery`] on a node that shares
//! its stores with other nodes. A frame for a user goes at once to the user's
//! sessions on this node (the local hub), and, through a bounded queue, to the
//! nodes where the route table says the user's other devices are connected:
//! one gRPC `Deliver` call per node per batch. [`NodeDeliveryService`] is the
//! receiving end. Kicks across nodes use the same path.
//!
//! Delivery stays at-least-once end to end without this path being reliable:
//! a frame lost here (node gone, queue full) is still in the recipient's inbox
//! and reaches the device by `sync` on its next gap or reconnect.

mod auth;
mod grpc_metrics;
mod logic_rpc;

pub use auth::set_cell_secret;
pub use grpc_metrics::GrpcMetricsLayer;
pub use logic_rpc::{LogicServer, RemoteLogic};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use confab_gateway::Hub;
use confab_logic::{Delivery, NewSession};
use confab_model::{AppId, RoomId, UserId};
use confab_proto::Frame;
use confab_proto::v1::node_delivery_client::NodeDeliveryClient;
use confab_proto::v1::node_delivery_server::{NodeDelivery, NodeDeliveryServer};
use confab_proto::v1::{DeliverAck, DeliverBatch, Delivery as WireDelivery};
use confab_store::RouteTable;
use tokio::sync::mpsc;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

/// Queued cross-node work; beyond it frames are dropped (and synced later).
const QUEUE: usize = 64 * 1024;
const BATCH: usize = 512;
const RPC_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a node that failed a delivery is skipped.
const NODE_BACKOFF: Duration = Duration::from_secs(5);

enum Work {
    Deliver {
        app: AppId,
        user: UserId,
        frame: Arc<Frame>,
        except: Option<String>,
    },
    KickElsewhere {
        app: AppId,
        user: UserId,
        keep_session: String,
        device: String,
        platform: confab_model::Platform,
        policy: confab_model::KickPolicy,
        previous: Vec<confab_store::Route>,
    },
    KickUser {
        app: AppId,
        user: UserId,
        reason: String,
    },
    /// A live room's frame: one item per node with members of the room.
    Room {
        app: AppId,
        room: RoomId,
        frame: Arc<Frame>,
        except: Option<String>,
        /// The room was closed: members are taken out after the frame.
        close: bool,
    },
}

pub struct ClusterDelivery {
    hub: Arc<Hub>,
    queue: mpsc::Sender<Work>,
}

impl ClusterDelivery {
    /// `node` is this node's advertised gRPC address, as written in routes.
    pub fn new(hub: Arc<Hub>, routes: Arc<dyn RouteTable>, node: String) -> Arc<Self> {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(forward(rx, routes, node));
        Arc::new(Self { hub, queue })
    }

    fn enqueue(&self, work: Work) {
        if self.queue.try_send(work).is_err() {
            metrics::counter!("confab_cluster_dropped_total").increment(1);
        }
    }
}

impl Delivery for ClusterDelivery {
    fn deliver(&self, app: &AppId, user: &UserId, frame: Arc<Frame>, except_session: Option<&str>) {
        self.hub.deliver(app, user, frame.clone(), except_session);
        self.enqueue(Work::Deliver {
            app: app.clone(),
            user: user.clone(),
            frame,
            except: except_session.map(str::to_owned),
        });
    }

    fn kick_elsewhere(
        &self,
        app: &AppId,
        user: &UserId,
        new: &NewSession<'_>,
        previous: Vec<confab_store::Route>,
    ) {
        self.enqueue(Work::KickElsewhere {
            previous,
            app: app.clone(),
            user: user.clone(),
            keep_session: new.session_id.to_owned(),
            device: new.device_id.to_owned(),
            platform: new.platform,
            policy: new.policy,
        });
    }

    fn kick_user(&self, app: &AppId, user: &UserId, reason: &str) {
        self.hub.kick_user(app, user, reason);
        self.enqueue(Work::KickUser {
            app: app.clone(),
            user: user.clone(),
            reason: reason.to_owned(),
        });
    }

    fn deliver_room(
        &self,
        app: &AppId,
        room: &RoomId,
        frame: Arc<Frame>,
        except_session: Option<&str>,
    ) {
        self.hub
            .deliver_room(app, room, frame.clone(), except_session);
        self.enqueue(Work::Room {
            app: app.clone(),
            room: room.clone(),
            frame,
            except: except_session.map(str::to_owned),
            close: false,
        });
    }

    fn close_room(&self, app: &AppId, room: &RoomId, frame: Arc<Frame>) {
        self.hub.close_room(app, room, frame.clone());
        self.enqueue(Work::Room {
            app: app.clone(),
            room: room.clone(),
            frame,
            except: None,
            close: true,
        });
    }
}

/// Resolves routes and sends batches to the other nodes, in queue order.
async fn forward(mut rx: mpsc::Receiver<Work>, routes: Arc<dyn RouteTable>, me: String) {
    let mut clients: HashMap<String, NodeDeliveryClient<InterceptedService<Channel, auth::Stamp>>> =
        HashMap::new();
    let mut work = Vec::with_capacity(BATCH);
    // Nodes that failed recently are skipped until then (their devices sync
    // when they reconnect), so that one dead node does not slow the others.
    let mut down_until: HashMap<String, std::time::Instant> = HashMap::new();
    while rx.recv_many(&mut work, BATCH).await > 0 {
        // Look up every recipient of the batch at once (Redis pipelines them).
        let mut wanted: Vec<(AppId, UserId)> = work
            .iter()
            .filter_map(|w| match w {
                Work::Deliver { app, user, .. } | Work::KickUser { app, user, .. } => {
                    Some((app.clone(), user.clone()))
                }
                Work::KickElsewhere { .. } | Work::Room { .. } => None,
            })
            .collect();
        wanted.sort();
        wanted.dedup();
        let found =
            futures_util::future::join_all(wanted.iter().map(|(a, u)| routes.routes(a, u))).await;
        let mut route_map: HashMap<(AppId, UserId), Vec<confab_store::Route>> = HashMap::new();
        for (key, r) in wanted.into_iter().zip(found) {
            match r {
                Ok(list) => {
                    route_map.insert(key, list);
                }
                Err(_) => metrics::counter!("confab_cluster_route_errors_total").increment(1),
            }
        }
        // The nodes holding members of each room of the batch (one read a room).
        let mut rooms: Vec<(AppId, RoomId)> = work
            .iter()
            .filter_map(|w| match w {
                Work::Room { app, room, .. } => Some((app.clone(), room.clone())),
                _ => None,
            })
            .collect();
        rooms.sort();
        rooms.dedup();
        let found = futures_util::future::join_all(
            rooms
                .iter()
                .map(|(a, r)| room_presence_retrying(routes.as_ref(), a, r)),
        )
        .await;
        let mut room_nodes: HashMap<(AppId, RoomId), Vec<String>> = HashMap::new();
        for (key, r) in rooms.into_iter().zip(found) {
            match r {
                Ok(list) => {
                    room_nodes.insert(key, list.into_iter().map(|(node, _)| node).collect());
                }
                Err(_) => metrics::counter!("confab_cluster_route_errors_total").increment(1),
            }
        }
        let mut per_node: HashMap<String, Vec<WireDelivery>> = HashMap::new();
        for w in work.drain(..) {
            match w {
                Work::Room {
                    app,
                    room,
                    frame,
                    except,
                    close,
                } => {
                    let Some(nodes) = room_nodes.get(&(app.clone(), room.clone())) else {
                        continue;
                    };
                    for node in nodes.iter().filter(|n| **n != me) {
                        per_node
                            .entry(node.clone())
                            .or_default()
                            .push(WireDelivery {
                                app_id: app.to_string(),
                                user_id: String::new(),
                                except_session: except.clone().unwrap_or_default(),
                                only_session: String::new(),
                                close,
                                frame: Some((*frame).clone()),
                                room_id: room.to_string(),
                            });
                    }
                }
                Work::Deliver {
                    app,
                    user,
                    frame,
                    except,
                } => {
                    let Some(found) = route_map.get(&(app.clone(), user.clone())).cloned() else {
                        continue;
                    };
                    let mut nodes: Vec<String> = found
                        .into_iter()
                        .map(|r| r.node)
                        .filter(|n| *n != me)
                        .collect();
                    nodes.sort();
                    nodes.dedup();
                    for node in nodes {
                        per_node.entry(node).or_default().push(WireDelivery {
                            app_id: app.to_string(),
                            user_id: user.to_string(),
                            except_session: except.clone().unwrap_or_default(),
                            only_session: String::new(),
                            close: false,
                            frame: Some((*frame).clone()),
                            room_id: String::new(),
                        });
                    }
                }
                Work::KickUser { app, user, reason } => {
                    let Some(found) = route_map.get(&(app.clone(), user.clone())).cloned() else {
                        continue;
                    };
                    for r in found.into_iter().filter(|r| r.node != me) {
                        per_node
                            .entry(r.node.clone())
                            .or_default()
                            .push(WireDelivery {
                                app_id: app.to_string(),
                                user_id: user.to_string(),
                                except_session: String::new(),
                                only_session: r.session_id.clone(),
                                close: true,
                                frame: Some(Frame {
                                    op: confab_proto::ops::KICKED.into(),
                                    reason: reason.clone(),
                                    ..Default::default()
                                }),
                                room_id: String::new(),
                            });
                    }
                }
                Work::KickElsewhere {
                    app,
                    user,
                    keep_session,
                    device,
                    platform,
                    policy,
                    previous,
                } => {
                    // The routes seen before the new session registered: its
                    // own route may since have replaced the same device's.
                    let found = previous;
                    let new = NewSession {
                        session_id: &keep_session,
                        device_id: &device,
                        platform,
                        policy,
                    };
                    for r in found
                        .into_iter()
                        .filter(|r| r.node != me && r.session_id != keep_session)
                    {
                        if let Some(reason) = new.replaces(&r.device_id, &r.platform) {
                            per_node
                                .entry(r.node.clone())
                                .or_default()
                                .push(WireDelivery {
                                    app_id: app.to_string(),
                                    user_id: user.to_string(),
                                    except_session: String::new(),
                                    only_session: r.session_id.clone(),
                                    close: true,
                                    frame: Some(Frame {
                                        op: confab_proto::ops::KICKED.into(),
                                        reason: reason.into(),
                                        ..Default::default()
                                    }),
                                    room_id: String::new(),
                                });
                        }
                    }
                }
            }
        }
        let now = std::time::Instant::now();
        down_until.retain(|_, until| *until > now);
        let mut sends = Vec::new();
        for (node, mut items) in per_node {
            if down_until.contains_key(&node) {
                // A node that failed recently is skipped, except for the
                // frames that must arrive: nothing else would bring them.
                let before = items.len();
                items.retain(must_arrive);
                metrics::counter!("confab_cluster_skipped_total")
                    .increment((before - items.len()) as u64);
                if items.is_empty() {
                    continue;
                }
            }
            let n = items.len() as u64;
            let client = match clients.get(&node) {
                Some(c) => c.clone(),
                None => match Endpoint::from_shared(format!("http://{node}")) {
                    Ok(e) => {
                        let c = NodeDeliveryClient::with_interceptor(
                            e.connect_timeout(RPC_TIMEOUT)
                                .timeout(RPC_TIMEOUT)
                                .connect_lazy(),
                            auth::Stamp,
                        );
                        clients.insert(node.clone(), c.clone());
                        c
                    }
                    Err(e) => {
                        tracing::warn!(node, error = %e, "bad node address in the route table");
                        continue;
                    }
                },
            };
            // Frames that must arrive (high-priority and closing live-room
            // frames are never stored: nothing would bring them back) are
            // sent again if the batch fails.
            let must_arrive: Vec<WireDelivery> =
                items.iter().filter(|i| must_arrive(i)).cloned().collect();
            sends.push(async move {
                let mut client = client;
                let mut ok = client
                    .deliver(DeliverBatch { items })
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                if ok.is_err() && !must_arrive.is_empty() {
                    ok = retry_must_arrive(&mut client, &node, must_arrive).await;
                }
                (node, n, ok)
            });
        }
        // Every node at once; the next batch waits for all, which keeps each
        // node's frames in queue order.
        for (node, n, result) in futures_util::future::join_all(sends).await {
            match result {
                Ok(_) => metrics::counter!("confab_cluster_delivered_total").increment(n),
                Err(e) => {
                    // The node may be gone; its devices will reconnect and sync.
                    metrics::counter!("confab_cluster_failed_total").increment(n);
                    tracing::debug!(node, error = %e, "cross-node delivery failed");
                    clients.remove(&node);
                    down_until.insert(node, std::time::Instant::now() + NODE_BACKOFF);
                }
            }
        }
    }
}

/// Which nodes hold members of a room. A failed read is tried again
/// (briefly: the forwarder waits meanwhile), since a room frame whose nodes
/// are unknown reaches no other node, and a high-priority one must arrive.
async fn room_presence_retrying(
    routes: &dyn RouteTable,
    app: &AppId,
    room: &RoomId,
) -> confab_store::Result<Vec<(String, u64)>> {
    let mut tries = 0;
    loop {
        match routes.room_presence(app, room).await {
            Ok(found) => return Ok(found),
            Err(e) if tries >= 2 => return Err(e),
            Err(e) => {
                tries += 1;
                tracing::debug!(error = %e, "reading a room's nodes failed; trying again");
                tokio::time::sleep(Duration::from_millis(100 * tries)).await;
            }
        }
    }
}

/// A live-room frame that is high priority, or closes the room: never
/// shed, never stored, so a failed RPC is retried for it.
fn must_arrive(item: &WireDelivery) -> bool {
    !item.room_id.is_empty()
        && (item.close || item.frame.as_ref().is_some_and(|f| f.priority == "high"))
}

/// Delays before each retry of must-arrive frames; after the last one the
/// node is treated as down like any failed node. A timed-out call may have
/// been delivered, so these frames are at-least-once across nodes (clients
/// drop a repeated `msg_id`; docs/protocol.md, live rooms).
const MUST_ARRIVE_RETRIES: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(1),
];

async fn retry_must_arrive(
    client: &mut NodeDeliveryClient<InterceptedService<Channel, auth::Stamp>>,
    node: &str,
    items: Vec<WireDelivery>,
) -> std::result::Result<(), String> {
    let mut last = String::new();
    for delay in MUST_ARRIVE_RETRIES {
        tokio::time::sleep(delay).await;
        metrics::counter!("confab_cluster_room_retries_total").increment(1);
        match client
            .deliver(DeliverBatch {
                items: items.clone(),
            })
            .await
        {
            Ok(_) => {
                tracing::debug!(
                    node,
                    n = items.len(),
                    "must-arrive room frames delivered on retry"
                );
                return Ok(());
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// The receiving end: hands frames from other nodes to local sessions.
pub struct NodeDeliveryService {
    hub: Arc<Hub>,
}

impl NodeDeliveryService {
    pub fn server(hub: Arc<Hub>) -> InterceptedService<NodeDeliveryServer<Self>, auth::Check> {
        NodeDeliveryServer::with_interceptor(Self { hub }, auth::Check)
    }
}

#[tonic::async_trait]
impl NodeDelivery for NodeDeliveryService {
    async fn deliver(
        &self,
        request: tonic::Request<DeliverBatch>,
    ) -> Result<tonic::Response<DeliverAck>, tonic::Status> {
        for item in request.into_inner().items {
            if !item.room_id.is_empty() {
                // A live room: fan out to this node's members of it.
                let (Ok(app), Ok(room), Some(frame)) = (
                    AppId::parse(&item.app_id),
                    RoomId::parse(&item.room_id),
                    item.frame,
                ) else {
                    continue;
                };
                let frame = Arc::new(frame);
                if item.close {
                    self.hub.close_room(&app, &room, frame);
                } else {
                    let except =
                        (!item.except_session.is_empty()).then_some(item.except_session.as_str());
                    self.hub.deliver_room(&app, &room, frame, except);
                }
                continue;
            }
            let (Ok(app), Ok(user), Some(frame)) = (
                AppId::parse(&item.app_id),
                UserId::parse(&item.user_id),
                item.frame,
            ) else {
                continue;
            };
            let frame = Arc::new(frame);
            if item.close && !item.only_session.is_empty() {
                self.hub
                    .kick_session(&app, &user, &item.only_session, frame);
            } else {
                let except =
                    (!item.except_session.is_empty()).then_some(item.except_session.as_str());
                self.hub.deliver(&app, &user, frame, except);
            }
        }
        Ok(tonic::Response::new(DeliverAck {}))
    }
}
