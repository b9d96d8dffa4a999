//! Groups on SQLite. Writes go through the second write connection in
//! transactions whose first statement writes, so that each takes the write
//! lock at once (waiting on busy_timeout) instead of failing to upgrade.

use async_trait::async_trait;
use confab_model::{AppId, ConvId, GroupId, GroupInfo, GroupMember, GroupRole, JoinPolicy, UserId};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use super::SqliteStore;
use crate::groups::{
    GroupLimits, GroupStore, GroupUpdate, JOIN_PENDING, JoinRequest, MemberEvent, NewGroup,
    PendingEvent, encode_users, pending_event,
};
use crate::{Result, StoreError};

const GROUP_COLUMNS: &str = "group_id, owner, name, avatar, announcement, custom, join_policy, mute_all, member_count, created_at, dismissed_at";
const MEMBER_COLUMNS: &str = "user_id, role, muted_until, join_seq, joined_at";

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("group row has a bad {what}"))
}

fn group_from_row(row: &SqliteRow) -> Result<GroupInfo> {
    let group_id: String = row.try_get("group_id")?;
    let owner: String = row.try_get("owner")?;
    let policy: String = row.try_get("join_policy")?;
    let dismissed: Option<i64> = row.try_get("dismissed_at")?;
    Ok(GroupInfo {
        group_id: GroupId::parse(&group_id).map_err(|_| corrupt("group_id"))?,
        owner: UserId::parse(&owner).map_err(|_| corrupt("owner"))?,
        name: row.try_get("name")?,
        avatar: row.try_get("avatar")?,
        announcement: row.try_get("announcement")?,
        custom: row.try_get("custom")?,
        join_policy: JoinPolicy::parse(&policy).map_err(|_| corrupt("join_policy"))?,
        mute_all: row.try_get("mute_all")?,
        member_count: row.try_get::<i64, _>("member_count")?.max(0) as u64,
        created_at: row.try_get("created_at")?,
        dismissed: dismissed.is_some(),
    })
}

fn member_from_row(row: &SqliteRow) -> Result<GroupMember> {
    let user: String = row.try_get("user_id")?;
    let role: String = row.try_get("role")?;
    Ok(GroupMember {
        user_id: UserId::parse(&user).map_err(|_| corrupt("member"))?,
        role: GroupRole::parse(&role).map_err(|_| corrupt("role"))?,
        muted_until: row.try_get("muted_until")?,
        join_seq: row.try_get::<i64, _>("join_seq")?.max(0) as u64,
        joined_at: row.try_get("joined_at")?,
    })
}

/// A removed member's pull cursor for the group moves to at least the seq
/// before their joining, so that the pull that gives them what they had
/// still to pull (`InboxStore::pull_group_through`) starts inside their
/// membership, never before it (a cursor left from an earlier membership
/// would). A membership whose `joined` event was never stored had nothing
/// to read: its floor is the conversation's last seq.
async fn keep_pull_floor(
    tx: &mut Transaction<'_, Sqlite>,
    app: &AppId,
    group: &GroupId,
    user: &UserId,
    join_seq: i64,
) -> Result<()> {
    let floor = if join_seq == clamp(JOIN_PENDING) {
        sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(seq) FROM messages WHERE app_id = ? AND conv_id = ?",
        )
        .bind(app.as_str())
        .bind(ConvId::group(group).as_str())
        .fetch_one(&mut **tx)
        .await?
        .unwrap_or(0)
    } else {
        join_seq - 1
    };
    sqlx::query(
        "INSERT INTO group_pull_cursors (app_id, user_id, group_id, through_seq) VALUES (?, ?, ?, ?) \
         ON CONFLICT (app_id, user_id, group_id) DO UPDATE SET \
         through_seq = MAX(through_seq, excluded.through_seq)",
    )
    .bind(app.as_str())
    .bind(user.as_str())
    .bind(group.as_str())
    .bind(floor.max(0))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn clamp(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

/// Unique users of `users` that are not `except`, in their first order.
fn dedup(users: &[UserId], except: Option<&UserId>) -> Vec<UserId> {
    let mut seen = std::collections::HashSet::new();
    users
        .iter()
        .filter(|u| Some(*u) != except && seen.insert((*u).clone()))
        .cloned()
        .collect()
}

/// Inserts `users` (not yet members) with `role`, checking the per-user
/// quota, and moves the group's member count. The caller checked the group
/// size.
async fn insert_members(
    tx: &mut Transaction<'_, Sqlite>,
    app: &AppId,
    group: &GroupId,
    users: &[(UserId, GroupRole)],
    join_seq: u64,
    at: i64,
    limits: GroupLimits,
) -> Result<()> {
    for (user, role) in users {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM group_members WHERE app_id = ? AND user_id = ?",
        )
        .bind(app.as_str())
        .bind(user.as_str())
        .fetch_one(&mut **tx)
        .await?;
        if count as u64 >= limits.max_groups_per_user {
            return Err(StoreError::Limit(format!(
                "{user} is already in {count} groups; the limit is {}",
                limits.max_groups_per_user
            )));
        }
        sqlx::query(
            "INSERT INTO group_members (app_id, group_id, user_id, role, muted_until, join_seq, joined_at) \
             VALUES (?, ?, ?, ?, 0, ?, ?)",
        )
        .bind(app.as_str())
        .bind(group.as_str())
        .bind(user.as_str())
        .bind(role.as_str())
        .bind(clamp(join_seq))
        .bind(at)
        .execute(&mut **tx)
        .await?;
    }
    sqlx::query(
        "UPDATE groups SET member_count = member_count + ? WHERE app_id = ? AND group_id = ?",
    )
    .bind(users.len() as i64)
    .bind(app.as_str())
    .bind(group.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores `event` as pending for `users`, in the change's transaction.
async fn insert_pending(
    tx: &mut Transaction<'_, Sqlite>,
    app: &AppId,
    group: &GroupId,
    event: &MemberEvent,
    users: &[UserId],
) -> Result<()> {
    sqlx::query(
        "INSERT INTO group_pending_events (app_id, group_id, event_id, kind, actor, users, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(app.as_str())
    .bind(group.as_str())
    .bind(&event.id)
    .bind(&event.kind)
    .bind(event.actor.as_str())
    .bind(encode_users(users))
    .bind(event.at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

const PENDING_COLUMNS: &str = "app_id, group_id, event_id, kind, actor, users, created_at";

fn pending_from_row(row: &SqliteRow) -> Result<PendingEvent> {
    pending_event(
        row.try_get("app_id")?,
        row.try_get("group_id")?,
        row.try_get("event_id")?,
        row.try_get("kind")?,
        row.try_get("actor")?,
        row.try_get("users")?,
        row.try_get("created_at")?,
    )
}

fn too_big(group: &GroupId, want: u64, limits: GroupLimits) -> StoreError {
    StoreError::Limit(format!(
        "group {group} would have {want} members; the limit is {}",
        limits.max_members
    ))
}

impl SqliteStore {
    async fn group_in(
        tx: &mut Transaction<'_, Sqlite>,
        app: &AppId,
        group: &GroupId,
    ) -> Result<GroupInfo> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM groups WHERE app_id = ? AND group_id = ?");
        let row = sqlx::query(&sql)
            .bind(app.as_str())
            .bind(group.as_str())
            .fetch_optional(&mut **tx)
            .await?;
        match row.as_ref().map(group_from_row).transpose()? {
            Some(g) if !g.dismissed => Ok(g),
            _ => Err(StoreError::NotFound(format!("group {group}"))),
        }
    }

    /// Begins a transaction that holds the write lock from its first
    /// statement: a no-op update of the group's row.
    async fn lock_group(
        &self,
        app: &AppId,
        group: &GroupId,
    ) -> Result<(Transaction<'static, Sqlite>, GroupInfo)> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "UPDATE groups SET member_count = member_count WHERE app_id = ? AND group_id = ?",
        )
        .bind(app.as_str())
        .bind(group.as_str())
        .execute(&mut *tx)
        .await?;
        let info = Self::group_in(&mut tx, app, group).await?;
        Ok((tx, info))
    }
}

#[async_trait]
impl GroupStore for SqliteStore {
    async fn create_group(&self, g: NewGroup) -> Result<GroupInfo> {
        let members = dedup(&g.members, Some(&g.owner));
        let want = members.len() as u64 + 1;
        if want > g.limits.max_members {
            return Err(too_big(&g.group_id, want, g.limits));
        }
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO groups (app_id, group_id, owner, name, avatar, announcement, custom, join_policy, mute_all, member_count, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?)",
        )
        .bind(g.app_id.as_str())
        .bind(g.group_id.as_str())
        .bind(g.owner.as_str())
        .bind(&g.name)
        .bind(&g.avatar)
        .bind(&g.announcement)
        .bind(&g.custom)
        .bind(g.join_policy.as_str())
        .bind(g.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(format!("group {}", g.group_id))
            }
            _ => e.into(),
        })?;
        let mut rows = vec![(g.owner.clone(), GroupRole::Owner)];
        rows.extend(members.into_iter().map(|u| (u, GroupRole::Member)));
        insert_members(
            &mut tx,
            &g.app_id,
            &g.group_id,
            &rows,
            g.join_seq,
            g.created_at,
            g.limits,
        )
        .await?;
        let info = Self::group_in(&mut tx, &g.app_id, &g.group_id).await?;
        tx.commit().await?;
        Ok(info)
    }

    async fn group(&self, app: &AppId, group: &GroupId) -> Result<Option<GroupInfo>> {
        let sql = format!("SELECT {GROUP_COLUMNS} FROM groups WHERE app_id = ? AND group_id = ?");
        let row = sqlx::query(&sql)
            .bind(app.as_str())
            .bind(group.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(group_from_row).transpose()
    }

    async fn update_group(
        &self,
        app: &AppId,
        group: &GroupId,
        u: GroupUpdate,
    ) -> Result<GroupInfo> {
        let (mut tx, _) = self.lock_group(app, group).await?;
        // COALESCE keeps the fields the update leaves out.
        sqlx::query(
            "UPDATE groups SET name = COALESCE(?, name), avatar = COALESCE(?, avatar), \
             announcement = COALESCE(?, announcement), custom = COALESCE(?, custom), \
             join_policy = COALESCE(?, join_policy), mute_all = COALESCE(?, mute_all) \
             WHERE app_id = ? AND group_id = ?",
        )
        .bind(u.name)
        .bind(u.avatar)
        .bind(u.announcement)
        .bind(u.custom)
        .bind(u.join_policy.map(JoinPolicy::as_str))
        .bind(u.mute_all)
        .bind(app.as_str())
        .bind(group.as_str())
        .execute(&mut *tx)
        .await?;
        let info = Self::group_in(&mut tx, app, group).await?;
        tx.commit().await?;
        Ok(info)
    }

    async fn add_members(
        &self,
        app: &AppId,
        group: &GroupId,
        users: &[UserId],
        join_seq: u64,
        limits: GroupLimits,
        event: &MemberEvent,
    ) -> Result<Vec<UserId>> {
        let (mut tx, info) = self.lock_group(app, group).await?;
        let mut new = vec![];
        for user in dedup(users, None) {
            let exists: Option<String> = sqlx::query_scalar(
                "SELECT user_id FROM group_members WHERE app_id = ? AND group_id = ? AND user_id = ?",
            )
            .bind(app.as_str())
            .bind(group.as_str())
            .bind(user.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if exists.is_none() {
                new.push(user);
            }
        }
        if new.is_empty() {
            return Ok(new);
        }
        let want = info.member_count + new.len() as u64;
        if want > limits.max_members {
            return Err(too_big(group, want, limits));
        }
        let rows: Vec<_> = new.iter().map(|u| (u.clone(), GroupRole::Member)).collect();
        insert_members(&mut tx, app, group, &rows, join_seq, event.at, limits).await?;
        insert_pending(&mut tx, app, group, event, &new).await?;
        tx.commit().await?;
        Ok(new)
    }

    async fn remove_members(
        &self,
        app: &AppId,
        group: &GroupId,
        users: &[UserId],
        event: &MemberEvent,
    ) -> Result<Vec<UserId>> {
        let (mut tx, _) = self.lock_group(app, group).await?;
        let mut removed = vec![];
        for user in dedup(users, None) {
            let join_seq: Option<i64> = sqlx::query_scalar(
                "DELETE FROM group_members WHERE app_id = ? AND group_id = ? AND user_id = ? AND role <> 'owner' \
                 RETURNING join_seq",
            )
            .bind(app.as_str())
            .bind(group.as_str())
            .bind(user.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(join_seq) = join_seq {
                keep_pull_floor(&mut tx, app, group, &user, join_seq).await?;
                removed.push(user);
            }
        }
        sqlx::query(
            "UPDATE groups SET member_count = member_count - ? WHERE app_id = ? AND group_id = ?",
        )
        .bind(removed.len() as i64)
        .bind(app.as_str())
        .bind(group.as_str())
        .execute(&mut *tx)
        .await?;
        if !removed.is_empty() {
            insert_pending(&mut tx, app, group, event, &removed).await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    async fn pending_events(&self, app: &AppId, group: &GroupId) -> Result<Vec<PendingEvent>> {
        let sql = format!(
            "SELECT {PENDING_COLUMNS} FROM group_pending_events \
             WHERE app_id = ? AND group_id = ? ORDER BY created_at, event_id"
        );
        let rows = sqlx::query(&sql)
            .bind(app.as_str())
            .bind(group.as_str())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(pending_from_row).collect()
    }

    async fn stale_pending_events(&self, before: i64, limit: u32) -> Result<Vec<PendingEvent>> {
        let sql = format!(
            "SELECT {PENDING_COLUMNS} FROM group_pending_events \
             WHERE created_at < ? ORDER BY created_at, event_id LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(pending_from_row).collect()
    }

    async fn start_membership(
        &self,
        app: &AppId,
        group: &GroupId,
        users: &[UserId],
        seq: u64,
    ) -> Result<()> {
        let mut tx = self.write.begin().await?;
        for user in dedup(users, None) {
            sqlx::query(
                "UPDATE group_members SET join_seq = ? \
                 WHERE app_id = ? AND group_id = ? AND user_id = ? AND join_seq = ?",
            )
            .bind(clamp(seq))
            .bind(app.as_str())
            .bind(group.as_str())
            .bind(user.as_str())
            .bind(clamp(JOIN_PENDING))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn clear_pending_event(&self, app: &AppId, group: &GroupId, id: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM group_pending_events WHERE app_id = ? AND group_id = ? AND event_id = ?",
        )
        .bind(app.as_str())
        .bind(group.as_str())
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn member(
        &self,
        app: &AppId,
        group: &GroupId,
        user: &UserId,
    ) -> Result<Option<GroupMember>> {
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM group_members WHERE app_id = ? AND group_id = ? AND user_id = ?"
        );
        let row = sqlx::query(&sql)
            .bind(app.as_str())
            .bind(group.as_str())
            .bind(user.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(member_from_row).transpose()
    }

    async fn members(
        &self,
        app: &AppId,
        group: &GroupId,
        after: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<GroupMember>> {
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM group_members WHERE app_id = ? AND group_id = ? AND user_id > ? \
             ORDER BY user_id LIMIT ?"
        );
        let rows = sqlx::query(&sql)
            .bind(app.as_str())
            .bind(group.as_str())
            .bind(after.map(UserId::as_str).unwrap_or(""))
            .bind(limit as i64)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(member_from_row).collect()
    }

    async fn set_role(
        &self,
        app: &AppId,
        group: &GroupId,
        user: &UserId,
        role: GroupRole,
    ) -> Result<bool> {
        if role == GroupRole::Owner {
            return Err(StoreError::Conflict(
                "an owner is made by transferring ownership".into(),
            ));
        }
        let (mut tx, _) = self.lock_group(app, group).await?;
        let done = sqlx::query(
            "UPDATE group_members SET role = ? WHERE app_id = ? AND group_id = ? AND user_id = ? AND role <> 'owner'",
        )
        .bind(role.as_str())
        .bind(app.as_str())
        .bind(group.as_str())
        .bind(user.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn transfer_owner(&self, app: &AppId, group: &GroupId, to: &UserId) -> Result<()> {
        let (mut tx, info) = self.lock_group(app, group).await?;
        let done = sqlx::query(
            "UPDATE group_members SET role = 'owner' WHERE app_id = ? AND group_id = ? AND user_id = ?",
        )
        .bind(app.as_str())
        .bind(group.as_str())
        .bind(to.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "member {to} of group {group}"
            )));
        }
        if info.owner != *to {
            sqlx::query(
                "UPDATE group_members SET role = 'member' WHERE app_id = ? AND group_id = ? AND user_id = ?",
            )
            .bind(app.as_str())
            .bind(group.as_str())
            .bind(info.owner.as_str())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("UPDATE groups SET owner = ? WHERE app_id = ? AND group_id = ?")
            .bind(to.as_str())
            .bind(app.as_str())
            .bind(group.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mute_member(
        &self,
        app: &AppId,
        group: &GroupId,
        user: &UserId,
        until: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE group_members SET muted_until = ? WHERE app_id = ? AND group_id = ? AND user_id = ?",
        )
        .bind(until.max(0))
        .bind(app.as_str())
        .bind(group.as_str())
        .bind(user.as_str())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn dismiss(&self, app: &AppId, group: &GroupId, event: &MemberEvent) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "UPDATE groups SET dismissed_at = ?, member_count = 0 \
             WHERE app_id = ? AND group_id = ? AND dismissed_at IS NULL",
        )
        .bind(event.at)
        .bind(app.as_str())
        .bind(group.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "DELETE FROM group_members WHERE app_id = ? AND group_id = ? RETURNING user_id, join_seq",
        )
        .bind(app.as_str())
        .bind(group.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let mut members = Vec::with_capacity(rows.len());
        for (user, join_seq) in &rows {
            let user = UserId::parse(user).map_err(|_| corrupt("member"))?;
            // The dismissed event is pulled through like a removal's.
            keep_pull_floor(&mut tx, app, group, &user, *join_seq).await?;
            members.push(user);
        }
        members.sort();
        insert_pending(&mut tx, app, group, event, &members).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn group_count(&self, app: &AppId, user: &UserId) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM group_members WHERE app_id = ? AND user_id = ?",
        )
        .bind(app.as_str())
        .bind(user.as_str())
        .fetch_one(&self.read)
        .await?;
        Ok(n.max(0) as u64)
    }

    async fn groups_of(
        &self,
        app: &AppId,
        user: &UserId,
        after: Option<&GroupId>,
        limit: u32,
    ) -> Result<Vec<GroupId>> {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT group_id FROM group_members WHERE app_id = ? AND user_id = ? AND group_id > ? \
             ORDER BY group_id LIMIT ?",
        )
        .bind(app.as_str())
        .bind(user.as_str())
        .bind(after.map(GroupId::as_str).unwrap_or(""))
        .bind(limit as i64)
        .fetch_all(&self.read)
        .await?;
        ids.iter()
            .map(|id| GroupId::parse(id).map_err(|_| corrupt("group_id")))
            .collect()
    }
    async fn put_join_request(
        &self,
        app: &AppId,
        group: &GroupId,
        request: &JoinRequest,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO group_join_requests (app_id, group_id, user_id, requested_at, expires_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (app_id, group_id, user_id) DO UPDATE SET requested_at = excluded.requested_at, expires_at = excluded.expires_at",
        )
        .bind(app.as_str())
        .bind(group.as_str())
        .bind(request.user_id.as_str())
        .bind(request.requested_at)
        .bind(request.expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn join_requests(
        &self,
        app: &AppId,
        group: &GroupId,
        after: Option<&UserId>,
        limit: u32,
        now: i64,
    ) -> Result<Vec<JoinRequest>> {
        let rows = sqlx::query(
            "SELECT user_id, requested_at, expires_at FROM group_join_requests \
             WHERE app_id = ? AND group_id = ? AND user_id > ? AND expires_at > ? ORDER BY user_id LIMIT ?",
        )
        .bind(app.as_str())
        .bind(group.as_str())
        .bind(after.map(UserId::as_str).unwrap_or(""))
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(request_from_row).collect()
    }

    async fn take_join_request(
        &self,
        app: &AppId,
        group: &GroupId,
        user: &UserId,
        now: i64,
    ) -> Result<Option<JoinRequest>> {
        let row = sqlx::query(
            "DELETE FROM group_join_requests WHERE app_id = ? AND group_id = ? AND user_id = ? \
             RETURNING user_id, requested_at, expires_at",
        )
        .bind(app.as_str())
        .bind(group.as_str())
        .bind(user.as_str())
        .fetch_optional(&self.write)
        .await?;
        Ok(row
            .as_ref()
            .map(request_from_row)
            .transpose()?
            .filter(|r| r.expires_at > now))
    }

    async fn add_mentions(
        &self,
        app: &AppId,
        group: &GroupId,
        seq: u64,
        users: &[UserId],
        all: bool,
    ) -> Result<()> {
        let mut ids: Vec<&str> = users.iter().map(UserId::as_str).collect();
        if all {
            // '' is never a valid user id: the row stands for @all.
            ids.push("");
        }
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.write.begin().await?;
        for id in ids {
            sqlx::query(
                "INSERT INTO group_mentions (app_id, group_id, user_id, seq) VALUES (?, ?, ?, ?) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(app.as_str())
            .bind(group.as_str())
            .bind(id)
            .bind(clamp(seq))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn unread_mentions(
        &self,
        app: &AppId,
        group: &GroupId,
        user: &UserId,
        after_seq: u64,
    ) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT seq) FROM group_mentions WHERE app_id = ? AND group_id = ? AND user_id IN (?, '') AND seq > ?",
        )
        .bind(app.as_str())
        .bind(group.as_str())
        .bind(user.as_str())
        .bind(clamp(after_seq))
        .fetch_one(&self.read)
        .await?;
        Ok(n.max(0) as u64)
    }
}

fn request_from_row(row: &SqliteRow) -> Result<JoinRequest> {
    let user: String = row.try_get("user_id")?;
    Ok(JoinRequest {
        user_id: UserId::parse(&user).map_err(|_| corrupt("join request user"))?,
        requested_at: row.try_get("requested_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}
