-- Stored join requests of approval groups: one per (group, user); a repeated
-- request replaces the earlier one. Lapsed rows are ignored by reads and
-- dropped when the user asks again or a decision takes them.
CREATE TABLE group_join_requests (
    app_id       TEXT NOT NULL,
    group_id     TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    requested_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (app_id, group_id, user_id)
);

-- @mentions of group messages: one row per mentioned user and message;
-- user_id '' (never a valid user id) is @all. Counted against a member's
-- read cursor for the mention-aware unread.
CREATE TABLE group_mentions (
    app_id   TEXT NOT NULL,
    group_id TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    seq      BIGINT NOT NULL,
    PRIMARY KEY (app_id, group_id, user_id, seq)
);
