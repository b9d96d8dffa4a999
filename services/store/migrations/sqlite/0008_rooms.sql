-- Live chat rooms (issue 5). Only a room's existence is stored: who is in a
-- room is live state held by the gateways, and room messages are never
-- stored. Closing a room deletes its row (its id may be created again).
CREATE TABLE rooms (
    app_id     TEXT NOT NULL,
    room_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, room_id)
) WITHOUT ROWID;
