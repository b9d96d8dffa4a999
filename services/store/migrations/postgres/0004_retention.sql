-- History retention: the purge job finds an app's old messages by time.
CREATE INDEX messages_by_age ON messages (app_id, ts);
