-- Read diffusion for large groups (docs/protocol.md §4.15, "Fan-out").
-- A group message stored with read_fanout = 1 has no inbox entry per member
-- (only the sender's): members are given entries when they pull
-- (InboxStore::pull_group_timelines). The flag is per message, so a group
-- that crosses the threshold while in use records, seq by seq, which
-- messages still have to be pulled: nothing is lost or pulled twice.
ALTER TABLE messages ADD COLUMN read_fanout BOOLEAN NOT NULL DEFAULT FALSE;

-- How far each member has pulled each read-diffusion group: the highest seq
-- given to their inbox by a pull.
CREATE TABLE group_pull_cursors (
    app_id      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    group_id    TEXT NOT NULL,
    through_seq BIGINT NOT NULL,
    PRIMARY KEY (app_id, user_id, group_id)
);

-- The messages a pull looks for (every login and sync asks): without it the
-- lookup walks the group's whole history, write-diffused messages included.
CREATE INDEX messages_read_fanout ON messages (app_id, conv_id, seq) WHERE read_fanout;
