//! Live chat rooms ([`RoomStore`]): only whether a room exists (and its
//! name). Membership is live state kept by the gateways (and, across nodes,
//! by the route table's room presence), and room messages are never stored.

use async_trait::async_trait;
use confab_model::{AppId, RoomId};

use crate::Result;

/// A room as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub room_id: RoomId,
    pub name: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

#[async_trait]
pub trait RoomStore: Send + Sync + 'static {
    /// Creates a room; `Conflict` if the app already has one with this id.
    async fn create_room(&self, app: &AppId, room: &Room) -> Result<()>;
    /// The room, if it exists (is open) in this app.
    async fn room(&self, app: &AppId, room: &RoomId) -> Result<Option<Room>>;
    /// Closes (deletes) a room; `false` if there was none.
    async fn close_room(&self, app: &AppId, room: &RoomId) -> Result<bool>;
}
