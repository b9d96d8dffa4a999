-- Per-app usage (issue 8): per-minute buckets that every node adds into
-- (upsert-add), and exact daily active users, one row per (app, day, user).
-- Kept 400 days (USAGE_RETENTION_DAYS); the recorder purges older rows.
CREATE TABLE usage_minutes (
    app_id             TEXT NOT NULL,
    minute             INTEGER NOT NULL, -- the minute's start, ms since the epoch
    messages           INTEGER NOT NULL DEFAULT 0,
    logins             INTEGER NOT NULL DEFAULT 0,
    errors             INTEGER NOT NULL DEFAULT 0,
    push_sent          INTEGER NOT NULL DEFAULT 0,
    push_retried       INTEGER NOT NULL DEFAULT 0,
    push_dead_token    INTEGER NOT NULL DEFAULT 0,
    push_dead_letter   INTEGER NOT NULL DEFAULT 0,
    connection_seconds INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, minute)
) WITHOUT ROWID;
CREATE INDEX usage_minutes_by_minute ON usage_minutes (minute);

CREATE TABLE usage_active_users (
    app_id  TEXT NOT NULL,
    day     INTEGER NOT NULL, -- days since the epoch (UTC)
    user_id TEXT NOT NULL,
    PRIMARY KEY (app_id, day, user_id)
) WITHOUT ROWID;
CREATE INDEX usage_active_users_by_day ON usage_active_users (day);
