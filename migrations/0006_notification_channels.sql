-- Notification channels set up by the admin (issue 14): one row per channel kind, its settings
-- as JSON (no secrets), and its one secret (the SMTP password or the ntfy access token)
-- encrypted with the app's cipher.
CREATE TABLE notification_channels (
    kind       TEXT PRIMARY KEY NOT NULL
               CHECK (kind IN ('email', 'ntfy', 'gotify', 'discord', 'webhook', 'webpush')),
    enabled    INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    settings   TEXT NOT NULL DEFAULT '{}',
    secret     TEXT,
    updated_at INTEGER NOT NULL
);
