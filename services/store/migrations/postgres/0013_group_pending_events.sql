-- Membership events still to be appended to their group's conversation
-- (joined / left / removed / dismissed). Written in the same transaction as
-- the membership change, so a crash between the change and the event's
-- append leaves this row behind instead of losing the event; the request's
-- retry or logic's sweep appends the event (its client_msg_id is event_id,
-- so appending twice stores it once) and deletes the row.
CREATE TABLE group_pending_events (
    app_id     TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    users      TEXT NOT NULL, -- JSON array of the user ids the change affected
    created_at BIGINT NOT NULL, -- ms since the epoch
    PRIMARY KEY (app_id, group_id, event_id)
);
CREATE INDEX group_pending_events_by_age ON group_pending_events (created_at);
