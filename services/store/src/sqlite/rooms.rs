//! Rooms on Sqlite: one row per open room; closing deletes it.

use async_trait::async_trait;
use confab_model::{AppId, RoomId};
use sqlx::Row;

use super::SqliteStore;
use crate::rooms::{Room, RoomStore};
use crate::{Result, StoreError};

#[async_trait]
impl RoomStore for SqliteStore {
    async fn create_room(&self, app: &AppId, room: &Room) -> Result<()> {
        sqlx::query(
            "INSERT INTO rooms (app_id, room_id, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(app.as_str())
        .bind(room.room_id.as_str())
        .bind(&room.name)
        .bind(room.created_at)
        .execute(&self.write)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(format!("room {}", room.room_id))
            }
            other => other.into(),
        })?;
        Ok(())
    }

    async fn room(&self, app: &AppId, room: &RoomId) -> Result<Option<Room>> {
        let row =
            sqlx::query("SELECT name, created_at FROM rooms WHERE app_id = ?1 AND room_id = ?2")
                .bind(app.as_str())
                .bind(room.as_str())
                .fetch_optional(&self.read)
                .await?;
        row.map(|row| {
            Ok(Room {
                room_id: room.clone(),
                name: row.try_get("name")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .transpose()
    }

    async fn close_room(&self, app: &AppId, room: &RoomId) -> Result<bool> {
        let done = sqlx::query("DELETE FROM rooms WHERE app_id = ?1 AND room_id = ?2")
            .bind(app.as_str())
            .bind(room.as_str())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
