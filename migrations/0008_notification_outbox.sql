-- The notification outbox (issue 14). One row per notification per channel a user gets it on (per
-- push subscription for Web Push), inserted in the same transaction as the in-app notification,
-- so a crash never loses a delivery nor sends one for a change that was rolled back. The delivery
-- worker sends the due rows and keeps each outcome here: this table is also the delivery log.
-- The row's id is the idempotency key every attempt of it carries.
CREATE TABLE notification_deliveries (
    id                   TEXT PRIMARY KEY NOT NULL,
    notification_id      TEXT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel              TEXT NOT NULL
                         CHECK (channel IN ('email', 'ntfy', 'gotify', 'discord', 'webhook', 'webpush')),
    -- Web Push only; no foreign key, so the log outlives a subscription that was removed.
    push_subscription_id TEXT,
    -- The delivery event, e.g. request.available (not the in-app notification's type).
    event                TEXT NOT NULL CHECK (length(event) BETWEEN 1 AND 64),
    -- Rows with the same key for one user and channel fold into one while pending (service flaps).
    collapse_key         TEXT,
    collapsed            INTEGER NOT NULL DEFAULT 0 CHECK (collapsed >= 0),
    status               TEXT NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'sending', 'delivered', 'failed', 'skipped')),
    attempts             INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at      INTEGER NOT NULL,
    last_error           TEXT CHECK (last_error IS NULL OR length(last_error) <= 1000),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    delivered_at         INTEGER
);

-- The worker's queue: due rows in order.
CREATE INDEX notification_deliveries_due
    ON notification_deliveries (next_attempt_at, id) WHERE status = 'pending';
-- The delivery log, newest first, whole or by status or channel.
CREATE INDEX notification_deliveries_log ON notification_deliveries (created_at, id);
CREATE INDEX notification_deliveries_by_status
    ON notification_deliveries (status, created_at, id);
CREATE INDEX notification_deliveries_by_channel
    ON notification_deliveries (channel, created_at, id);
-- Per user and channel: the rate limit counts recent deliveries, flaps fold into a pending row.
CREATE INDEX notification_deliveries_user_channel
    ON notification_deliveries (user_id, channel, delivered_at);
CREATE INDEX notification_deliveries_collapse
    ON notification_deliveries (user_id, channel, collapse_key)
    WHERE collapse_key IS NOT NULL;
