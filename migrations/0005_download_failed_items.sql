-- The items of a playlist that yt-dlp could not download (private, deleted, members-only,
-- blocked ...), each with yt-dlp's reason, kept on a download that completed with the others
-- (issue 12): a JSON array of {index, id, reason}.
ALTER TABLE youtube_downloads
    ADD COLUMN failed_items TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(failed_items));
