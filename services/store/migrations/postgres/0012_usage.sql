-- Per-app usage (issue 8): per-minute buckets that every node adds into
-- (upsert-add), and exact daily active users, one row per (app, day, user).
-- Kept 400 days (USAGE_RETENTION_DAYS); the recorder purges older rows.
CREATE TABLE usage_minutes (
    app_id             TEXT NOT NULL,
    minute             BIGINT NOT NULL, -- the minute's start, ms since the epoch
    messages           BIGINT NOT NULL DEFAULT 0,
    logins             BIGINT NOT NULL DEFAULT 0,
    errors             BIGINT NOT NULL DEFAULT 0,
    push_sent          BIGINT NOT NULL DEFAULT 0,
    push_retried       BIGINT NOT NULL DEFAULT 0,
    push_dead_token    BIGINT NOT NULL DEFAULT 0,
    push_dead_letter   BIGINT NOT NULL DEFAULT 0,
    connection_seconds BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, minute)
);
CREATE INDEX usage_minutes_by_minute ON usage_minutes (minute);

CREATE TABLE usage_active_users (
    app_id  TEXT NOT NULL,
    day     BIGINT NOT NULL, -- days since the epoch (UTC)
    user_id TEXT NOT NULL,
    PRIMARY KEY (app_id, day, user_id)
);
CREATE INDEX usage_active_users_by_day ON usage_active_users (day);
