//! In-memory backends for data that is ephemeral by nature (the route table of
//! a single embedded node). Lost on restart, which is correct: routes describe
//! live connections.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use confab_model::{AppId, RoomId, UserId};

use crate::{Result, Route, RouteTable};

#[derive(Default)]
pub struct MemoryRouteTable {
    routes: Mutex<HashMap<(AppId, UserId), Vec<Route>>>,
    /// Room → node → members (one node in practice: nothing expires here).
    rooms: Mutex<HashMap<(AppId, RoomId), HashMap<String, u64>>>,
}

impl MemoryRouteTable {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RouteTable for MemoryRouteTable {
    async fn register(&self, app: &AppId, user: &UserId, route: Route) -> Result<()> {
        let mut map = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let routes = map.entry((app.clone(), user.clone())).or_default();
        // A newer session of the device (greater ULID) is never replaced.
        if routes
            .iter()
            .any(|r| r.device_id == route.device_id && r.session_id > route.session_id)
        {
            return Ok(());
        }
        routes.retain(|r| r.device_id != route.device_id);
        routes.push(route);
        Ok(())
    }

    async fn unregister(
        &self,
        app: &AppId,
        user: &UserId,
        device_id: &str,
        session_id: &str,
    ) -> Result<()> {
        let mut map = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let key = (app.clone(), user.clone());
        if let Some(routes) = map.get_mut(&key) {
            routes.retain(|r| !(r.device_id == device_id && r.session_id == session_id));
            if routes.is_empty() {
                map.remove(&key);
            }
        }
        Ok(())
    }

    async fn routes(&self, app: &AppId, user: &UserId) -> Result<Vec<Route>> {
        let map = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map
            .get(&(app.clone(), user.clone()))
            .cloned()
            .unwrap_or_default())
    }

    async fn set_room_presence(
        &self,
        app: &AppId,
        room: &RoomId,
        node: &str,
        members: u64,
    ) -> Result<()> {
        let mut map = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let key = (app.clone(), room.clone());
        if members == 0 {
            if let Some(nodes) = map.get_mut(&key) {
                nodes.remove(node);
                if nodes.is_empty() {
                    map.remove(&key);
                }
            }
        } else {
            map.entry(key).or_default().insert(node.to_owned(), members);
        }
        Ok(())
    }

    async fn room_presence(&self, app: &AppId, room: &RoomId) -> Result<Vec<(String, u64)>> {
        let map = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let mut nodes: Vec<(String, u64)> = map
            .get(&(app.clone(), room.clone()))
            .map(|n| n.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        nodes.sort();
        Ok(nodes)
    }

    async fn clear_room_presence(&self, app: &AppId, room: &RoomId) -> Result<()> {
        let mut map = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(app.clone(), room.clone()));
        Ok(())
    }
}
