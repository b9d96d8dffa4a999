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
    mute_all     BOOLEAN NOT NULL DEFAULT FALSE,
    member_count BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    dismissed_at BIGINT,
    PRIMARY KEY (app_id, group_id)
);

CREATE TABLE group_members (
    app_id      TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    role        TEXT NOT NULL,
    muted_until BIGINT NOT NULL DEFAULT 0,
    -- First seq of the group conversation the member may read.
    join_seq    BIGINT NOT NULL,
    joined_at   BIGINT NOT NULL,
    PRIMARY KEY (app_id, group_id, user_id)
);
-- Groups of a user (groups-per-user quota, listing).
CREATE INDEX group_members_by_user ON group_members (app_id, user_id, group_id);
