//! Read cursors and conversation lists on PostgreSQL.

use async_trait::async_trait;
use confab_model::{AppId, ConvId, UserId};
use sqlx::Row;

use super::{MESSAGE_COLUMNS, PgStore, message_from_row};
use crate::{ConversationSummary, ReadStateStore, Result, StoreError};

#[async_trait]
impl ReadStateStore for PgStore {
    async fn mark_read(
        &self,
        app: &AppId,
        user: &UserId,
        conv: &ConvId,
        seq: u64,
    ) -> Result<Option<(u64, bool)>> {
        let seq = seq.min(i64::MAX as u64) as i64;
        let moved = sqlx::query(
            "UPDATE user_conversations SET read_seq = LEAST($1, last_seq) \
             WHERE app_id = $2 AND user_id = $3 AND conv_id = $4 AND read_seq < LEAST($5, last_seq)",
        )
        .bind(seq)
        .bind(app.as_str())
        .bind(user.as_str())
        .bind(conv.as_str())
        .bind(seq)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0;
        let cursor: Option<i64> = sqlx::query_scalar(
            "SELECT read_seq FROM user_conversations WHERE app_id = $1 AND user_id = $2 AND conv_id = $3",
        )
        .bind(app.as_str())
        .bind(user.as_str())
        .bind(conv.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(cursor.map(|c| (c as u64, moved)))
    }

    async fn conversations(
        &self,
        app: &AppId,
        user: &UserId,
        limit: u32,
    ) -> Result<(Vec<ConversationSummary>, u64)> {
        let sql = format!(
            "SELECT uc.conv_id AS uc_conv, uc.last_seq, uc.read_seq, m.msg_id IS NOT NULL AS has_last, {MESSAGE_COLUMNS} \
             FROM user_conversations uc \
             LEFT JOIN messages m ON m.app_id = uc.app_id AND m.conv_id = uc.conv_id AND m.seq = uc.last_seq \
             WHERE uc.app_id = $1 AND uc.user_id = $2 ORDER BY uc.updated_at DESC, uc.conv_id LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(app.as_str())
            .bind(user.as_str())
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        let mut list = Vec::with_capacity(rows.len());
        for row in &rows {
            let conv: String = row.try_get("uc_conv")?;
            let has_last: bool = row.try_get("has_last")?;
            list.push(ConversationSummary {
                conv_id: ConvId::parse(&conv)
                    .map_err(|_| StoreError::Corrupt(format!("conversation id {conv:?}")))?,
                last_seq: row.try_get::<i64, _>("last_seq")? as u64,
                read_seq: row.try_get::<i64, _>("read_seq")? as u64,
                last_message: if has_last {
                    Some(message_from_row(row)?)
                } else {
                    None
                },
            });
        }
        let total: Option<i64> = sqlx::query_scalar(
            "SELECT SUM(last_seq - read_seq)::BIGINT FROM user_conversations WHERE app_id = $1 AND user_id = $2",
        )
        .bind(app.as_str())
        .bind(user.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok((list, total.unwrap_or(0).max(0) as u64))
    }
}
