//! Control-plane records on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use crate::control::{ControlRecord, ControlStore, ControlWrite};
use crate::{Result, StoreError};

fn record_from_row(row: &SqliteRow) -> Result<ControlRecord> {
    let version: i64 = row.try_get("version")?;
    Ok(ControlRecord {
        kind: row.try_get("kind")?,
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        doc: row.try_get("doc")?,
        version: version as u64,
    })
}

#[async_trait]
impl ControlStore for SqliteStore {
    async fn write(&self, ops: Vec<ControlWrite>) -> Result<u64> {
        let mut tx = self.write.begin().await?;
        // A write statement first, so the transaction takes the write lock at
        // once (waiting on busy_timeout) instead of upgrading later.
        let version: i64 = sqlx::query_scalar(
            "UPDATE control_version SET version = version + 1 WHERE one = 1 RETURNING version",
        )
        .fetch_one(&mut *tx)
        .await?;
        for op in ops {
            match op {
                ControlWrite::Insert {
                    kind,
                    id,
                    tenant_id,
                    doc,
                } => {
                    sqlx::query("INSERT INTO control_records (kind, id, tenant_id, doc, version) VALUES (?, ?, ?, ?, ?)")
                        .bind(&kind)
                        .bind(&id)
                        .bind(&tenant_id)
                        .bind(&doc)
                        .bind(version)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| match &e {
                            sqlx::Error::Database(db) if db.is_unique_violation() => {
                                StoreError::Conflict(format!("{kind} {id}"))
                            }
                            _ => e.into(),
                        })?;
                }
                ControlWrite::Update { kind, id, doc } => {
                    let done = sqlx::query(
                        "UPDATE control_records SET doc = ?, version = ? WHERE kind = ? AND id = ?",
                    )
                    .bind(&doc)
                    .bind(version)
                    .bind(&kind)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(format!("{kind} {id}")));
                    }
                }
                ControlWrite::Put {
                    kind,
                    id,
                    tenant_id,
                    doc,
                } => {
                    sqlx::query(
                        "INSERT INTO control_records (kind, id, tenant_id, doc, version) VALUES (?, ?, ?, ?, ?) \
                         ON CONFLICT (kind, id) DO UPDATE SET tenant_id = excluded.tenant_id, doc = excluded.doc, version = excluded.version",
                    )
                    .bind(&kind)
                    .bind(&id)
                    .bind(&tenant_id)
                    .bind(&doc)
                    .bind(version)
                    .execute(&mut *tx)
                    .await?;
                }
                ControlWrite::Delete { kind, id } => {
                    let done = sqlx::query("DELETE FROM control_records WHERE kind = ? AND id = ?")
                        .bind(&kind)
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(format!("{kind} {id}")));
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(version as u64)
    }

    async fn get(&self, kind: &str, id: &str) -> Result<Option<ControlRecord>> {
        let row = sqlx::query(
            "SELECT kind, id, tenant_id, doc, version FROM control_records WHERE kind = ? AND id = ?",
        )
        .bind(kind)
        .bind(id)
        .fetch_optional(&self.read)
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn list(&self, kind: &str, tenant_id: Option<&str>) -> Result<Vec<ControlRecord>> {
        let rows = sqlx::query(
            "SELECT kind, id, tenant_id, doc, version FROM control_records \
             WHERE kind = ?1 AND (?2 IS NULL OR tenant_id = ?2) ORDER BY id",
        )
        .bind(kind)
        .bind(tenant_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    async fn version(&self) -> Result<u64> {
        let v: i64 = sqlx::query_scalar("SELECT version FROM control_version WHERE one = 1")
            .fetch_one(&self.read)
            .await?;
        Ok(v as u64)
    }
}
