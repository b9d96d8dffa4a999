-- User profiles (REST /v1/users). Optional: a user without a row can still
-- log in with a token the app minted. `custom` is a JSON object (text).
CREATE TABLE users (
    app_id     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    nickname   TEXT NOT NULL,
    avatar_url TEXT NOT NULL,
    custom     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (app_id, user_id)
) WITHOUT ROWID;
