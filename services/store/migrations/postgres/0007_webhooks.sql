-- The webhook outbox: asynchronous events waiting for delivery (state
-- 'pending') or given up on (state 'dead', the dead letters). A claim leases
-- an event to one dispatcher until lease_until; claim_token proves the lease.
CREATE TABLE webhook_events (
    id              TEXT PRIMARY KEY,
    app_id          TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    claim_token     TEXT,
    last_error      TEXT
);
CREATE INDEX webhook_events_due ON webhook_events (state, next_attempt_at);
CREATE INDEX webhook_events_by_app ON webhook_events (app_id, state, created_at);

-- Delivery attempts, newest kept per app (the admin API's delivery list).
CREATE TABLE webhook_attempts (
    seq         BIGSERIAL PRIMARY KEY,
    app_id      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    status_code BIGINT,
    outcome     TEXT NOT NULL,
    latency_ms  BIGINT NOT NULL,
    error       TEXT,
    at          BIGINT NOT NULL
);
CREATE INDEX webhook_attempts_by_app ON webhook_attempts (app_id, seq);
