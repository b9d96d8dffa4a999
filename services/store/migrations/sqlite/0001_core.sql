-- Core schema of the embedded (SQLite) backend. Every table leads with the
-- tenant scope (app_id) so that one app can never read another's rows.

CREATE TABLE tenants (
    tenant_id  TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE apps (
    app_id     TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
    name       TEXT NOT NULL,
    settings   TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE app_keys (
    key_id     TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL REFERENCES apps (app_id),
    secret     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX app_keys_by_app ON app_keys (app_id);

-- Tokens issued before revoked_before (ms) no longer log in.
CREATE TABLE user_tokens (
    app_id         TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    revoked_before INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id)
) WITHOUT ROWID;

-- The roaming store: every message once, ordered by seq within its conversation.
CREATE TABLE messages (
    app_id        TEXT NOT NULL,
    conv_id       TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    msg_id        TEXT NOT NULL,
    sender        TEXT NOT NULL,
    to_kind       TEXT NOT NULL,
    to_id         TEXT NOT NULL,
    client_msg_id TEXT NOT NULL,
    body          TEXT NOT NULL,
    ts            INTEGER NOT NULL,
    recalled      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, conv_id, seq)
) WITHOUT ROWID;
-- Idempotent send: one message per (app, sender, client_msg_id).
CREATE UNIQUE INDEX messages_dedupe ON messages (app_id, sender, client_msg_id);
CREATE UNIQUE INDEX messages_by_id ON messages (app_id, msg_id);

-- The sync store: each user's inbox, gap-free by inbox_seq.
CREATE TABLE inbox (
    app_id    TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    inbox_seq INTEGER NOT NULL,
    conv_id   TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id, inbox_seq)
) WITHOUT ROWID;

-- A user's conversations with their read cursor (unread = last_seq - read_seq).
CREATE TABLE user_conversations (
    app_id     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    conv_id    TEXT NOT NULL,
    last_seq   INTEGER NOT NULL,
    read_seq   INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id, conv_id)
) WITHOUT ROWID;
-- No index on updated_at: listing sorts one user's rows (a primary-key range),
-- and an index moved on every message cost the writer a page per recipient.
