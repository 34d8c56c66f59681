-- Problem reports, follow-up to 0016.

-- The hourly cap on a user's comments counts them by author and time.
DROP INDEX problem_comments_user;
CREATE INDEX problem_comments_user_created ON problem_comments (user_id, created_at)
    WHERE user_id IS NOT NULL;

-- The Seerr account the issue was created as (the create answer's createdBy.id): the
-- reporter's own, or the API key's admin for a report made as them. NULL for older rows.
ALTER TABLE problem_reports ADD COLUMN seerr_user_id INTEGER;
