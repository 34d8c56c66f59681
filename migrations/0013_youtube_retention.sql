-- Retention of YouTube subscriptions (issue 15): a subscription's downloaded items newest
-- first by upload date (then by when they entered the archive), so "keep the newest N" and
-- "keep D days" read a range of this index instead of sorting or scanning the archive. Only
-- downloaded items are in it: they are the only ones retention looks at.
CREATE INDEX youtube_subscription_items_retention
    ON youtube_subscription_items (subscription_id, upload_date, created_at, id)
    WHERE status = 'downloaded';
