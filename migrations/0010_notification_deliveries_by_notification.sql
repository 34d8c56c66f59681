-- Deleting a notification (housekeeping after 90 days, a deleted user) cascades to its
-- deliveries: without this index each delete would scan the whole delivery log.
CREATE INDEX notification_deliveries_notification ON notification_deliveries (notification_id);
