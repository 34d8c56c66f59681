-- Web Push subscriptions (issue 14): one row per browser or phone a user subscribed from, with
-- the keys RFC 8291 encrypts to. The endpoint is the push service's URL for that browser, unique
-- across users: subscribing again from the same browser updates the row.
CREATE TABLE push_subscriptions (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint        TEXT NOT NULL UNIQUE CHECK (length(endpoint) BETWEEN 1 AND 2048),
    p256dh          TEXT NOT NULL,
    auth            TEXT NOT NULL,
    user_agent      TEXT CHECK (user_agent IS NULL OR length(user_agent) <= 512),
    expires_at      INTEGER,
    created_at      INTEGER NOT NULL,
    last_success_at INTEGER
);

CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id, created_at);
