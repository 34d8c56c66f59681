-- Subscription downloads laid out for Plex (issue 15, `src/youtube/layout.rs`): each item's
-- episode index among its channel's uploads of that day (`s<year>e<MMDD><nn>`), given when its
-- download starts and never reused, and the video's description for the Plex summary.

ALTER TABLE youtube_subscription_items
    ADD COLUMN episode INTEGER CHECK (episode IS NULL OR episode BETWEEN 1 AND 99);
ALTER TABLE youtube_subscription_items
    ADD COLUMN summary TEXT CHECK (summary IS NULL OR length(summary) <= 5000);

-- The indexes a day's uploads already took.
CREATE INDEX youtube_subscription_items_day
    ON youtube_subscription_items (subscription_id, upload_date, episode)
    WHERE episode IS NOT NULL;
