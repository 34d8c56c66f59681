-- Each user's notification choices (issue 14): which of their channels are on (plain JSON, read
-- when a notification is created), where each one goes (the address, topic, token or URL, as JSON
-- encrypted with the app's cipher, read only when sending) and, per event, the channels that get
-- it (NULL: the defaults).
CREATE TABLE notification_prefs (
    user_id    TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    enabled    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(enabled)),
    targets    TEXT,
    events     TEXT CHECK (events IS NULL OR json_valid(events)),
    updated_at INTEGER NOT NULL
);
