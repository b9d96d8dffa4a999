-- Core schema of the distributed roaming store (PostgreSQL). Every key leads
-- with app_id, so that distributing by app (Citus: distribute on app_id) or
-- partitioning is a configuration step (docs/operations.md).

CREATE TABLE tenants (
    tenant_id  TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE apps (
    app_id     TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    name       TEXT NOT NULL,
    settings   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE app_keys (
    key_id     TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL REFERENCES apps (app_id),
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX app_keys_by_app ON app_keys (app_id);

CREATE TABLE user_tokens (
    app_id         TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    revoked_before BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id)
);

-- Sequence counters. Each batch locks the rows it advances in sorted order,
-- so concurrent logic nodes never deadlock and never hand out a seq twice.
CREATE TABLE conversations (
    app_id   TEXT NOT NULL,
    conv_id  TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (app_id, conv_id)
);

CREATE TABLE inbox_heads (
    app_id  TEXT NOT NULL,
    user_id TEXT NOT NULL,
    head    BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id)
);

-- Idempotent send: one message per (app, sender, client_msg_id). A table of
-- its own so that messages can be partitioned by time (a unique index on a
-- partitioned table must contain the partition key).
CREATE TABLE dedupe (
    app_id        TEXT NOT NULL,
    sender        TEXT NOT NULL,
    client_msg_id TEXT NOT NULL,
    msg_id        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (app_id, sender, client_msg_id)
);

CREATE TABLE messages (
    app_id        TEXT NOT NULL,
    conv_id       TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    msg_id        TEXT NOT NULL,
    sender        TEXT NOT NULL,
    to_kind       TEXT NOT NULL,
    to_id         TEXT NOT NULL,
    client_msg_id TEXT NOT NULL,
    body          TEXT NOT NULL,
    ts            BIGINT NOT NULL,
    recalled      BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (app_id, conv_id, seq)
);
CREATE INDEX messages_by_id ON messages (app_id, msg_id);

CREATE TABLE inbox (
    app_id    TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    inbox_seq BIGINT NOT NULL,
    conv_id   TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id, inbox_seq)
);

CREATE TABLE user_conversations (
    app_id     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    conv_id    TEXT NOT NULL,
    last_seq   BIGINT NOT NULL,
    read_seq   BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id, conv_id)
);
