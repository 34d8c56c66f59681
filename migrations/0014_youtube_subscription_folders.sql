-- Each subscription's own show folder under the subscriptions root (issue 15): named after the
-- channel or playlist when the first check learns its name, made unique, so that two
-- subscriptions (the same channel by two URLs, a playlist named like a channel) never write
-- into, prune from or serve the poster of one folder.

ALTER TABLE youtube_subscriptions
    ADD COLUMN folder TEXT CHECK (folder IS NULL OR length(folder) BETWEEN 1 AND 255);

CREATE UNIQUE INDEX youtube_subscriptions_folder
    ON youtube_subscriptions (folder) WHERE folder IS NOT NULL;
