-- Groups and their members. Every key leads with app_id.
-- A dismissed group keeps its row (dismissed_at set) so that its id, and the
-- seq of its conversation, are never reused by a new group.
CREATE TABLE groups (
    app_id       TEXT NOT NULL,
    group_id     TEXT NOT NULL,
    owner        TEXT NOT NULL,
    name         TEXT NOT NULL,
    avatar       TEXT NOT NULL,
    announcement TEXT NOT NULL,
    custom       TEXT NOT NULL,
    join_policy  TEXT NOT NULL,
    mute_all     INTEGER NOT NULL DEFAULT 0,
    member_count INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    dismissed_at INTEGER,
    PRIMARY KEY (app_id, group_id)
) WITHOUT ROWID;

CREATE TABLE group_members (
    app_id      TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    role        TEXT NOT NULL,
    muted_until INTEGER NOT NULL DEFAULT 0,
    -- First seq of the group conversation the member may read.
    join_seq    INTEGER NOT NULL,
    joined_at   INTEGER NOT NULL,
    PRIMARY KEY (app_id, group_id, user_id)
) WITHOUT ROWID;
-- Groups of a user (groups-per-user quota, listing).
CREATE INDEX group_members_by_user ON group_members (app_id, user_id, group_id);
