-- Problem reports, follow-up to 0016.

-- The hourly cap on a user's comments counts them by author and time.
DROP INDEX problem_comments_user;
CREATE INDEX problem_comments_user_created ON problem_comments (user_id, created_at)
    WHERE user_id IS NOT NULL;

-- The Seerr account the issue was created as (the create answer's createdBy.id): the
-- reporter's own, or the API key's admin for a report made as them. NULL for older rows.
ALTER TABLE problem_reports ADD COLUMN seerr_user_id INTEGER;

-- Telling an echo (Seerr's ISSUE_COMMENT about a comment made here) from a new comment: who
-- wrote it on Seerr (the account's email, lower case, or its display name), the text as Seerr's
-- webhook carries it (its template filling rewrites `$` patterns), Seerr's comment id when
-- known, and whether the echo is still to come.
ALTER TABLE problem_comments ADD COLUMN seerr_author TEXT;
ALTER TABLE problem_comments ADD COLUMN seerr_message TEXT;
ALTER TABLE problem_comments ADD COLUMN seerr_comment_id INTEGER;
ALTER TABLE problem_comments ADD COLUMN echo_pending INTEGER NOT NULL DEFAULT 0;
