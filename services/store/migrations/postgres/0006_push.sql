-- Offline push: device registrations, push preferences, the durable queue.

-- One row per device that registered a push token (push_register); removed
-- on push_unregister, logout, REST deletion, or when the provider says the
-- token is dead.
CREATE TABLE push_devices (
    app_id     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    vendor     TEXT NOT NULL,
    token      TEXT NOT NULL,
    bundle     TEXT NOT NULL,
    locale     TEXT NOT NULL,
    background BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id, device_id)
);
-- A token belongs to one device (dead-token removal and re-registration).
CREATE UNIQUE INDEX push_devices_by_token ON push_devices (app_id, vendor, token);

CREATE TABLE push_mutes (
    app_id  TEXT NOT NULL,
    user_id TEXT NOT NULL,
    conv_id TEXT NOT NULL,
    PRIMARY KEY (app_id, user_id, conv_id)
);

CREATE TABLE push_dnd (
    app_id        TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    start_min     INTEGER NOT NULL,
    end_min       INTEGER NOT NULL,
    tz_offset_min INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id)
);

-- The queue. `due_at` is when the job may be claimed next: a claim moves it
-- to the end of the lease, so an expired lease makes the job due again
-- without anyone noticing the crash.
CREATE TABLE push_jobs (
    id         TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    vendor     TEXT NOT NULL,
    payload    TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    due_at     BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX push_jobs_due ON push_jobs (due_at);
CREATE INDEX push_jobs_created ON push_jobs (created_at);

CREATE TABLE push_dead (
    id         TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    vendor     TEXT NOT NULL,
    payload    TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    reason     TEXT NOT NULL,
    failed_at  BIGINT NOT NULL
);
CREATE INDEX push_dead_by_app ON push_dead (app_id, failed_at);
