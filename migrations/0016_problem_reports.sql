-- Problem reports (issue 16): a user's "this file is broken" about an available title, sent to
-- Seerr's issue API as that user and kept here with Seerr's issue id, updated by Seerr's
-- ISSUE_* webhooks.

CREATE TABLE problem_reports (
    id              TEXT PRIMARY KEY NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    media_type      TEXT NOT NULL CHECK (media_type IN ('movie', 'tv')),
    tmdb_id         INTEGER NOT NULL CHECK (tmdb_id > 0),
    title           TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    poster_path     TEXT,
    -- Seerr's own media id (what POST /api/v1/issue takes), and its issue id.
    seerr_media_id  INTEGER NOT NULL,
    seerr_issue_id  INTEGER NOT NULL,
    problem_type    TEXT NOT NULL CHECK (problem_type IN ('video', 'audio', 'subtitles', 'other')),
    message         TEXT NOT NULL CHECK (length(message) BETWEEN 1 AND 4000),
    -- TV only; 0 / NULL mean "the whole show" / "the whole season" (Seerr stores 0).
    season          INTEGER CHECK (season IS NULL OR season >= 0),
    episode         INTEGER CHECK (episode IS NULL OR episode >= 0),
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    comment_count   INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX problem_reports_seerr_issue ON problem_reports (seerr_issue_id);
-- "My problem reports", newest first.
CREATE INDEX problem_reports_user_created ON problem_reports (user_id, created_at, id);
-- The admin list by status, newest first.
CREATE INDEX problem_reports_status_created ON problem_reports (status, created_at, id);
-- The admin list of every status.
CREATE INDEX problem_reports_created ON problem_reports (created_at, id);

-- The comments after the first message, from MediaNest or Seerr's ISSUE_COMMENT webhook.
CREATE TABLE problem_comments (
    id           TEXT PRIMARY KEY NOT NULL,
    problem_id   TEXT NOT NULL REFERENCES problem_reports (id) ON DELETE CASCADE,
    -- A MediaNest user when made here, NULL when it came from Seerr.
    user_id      TEXT REFERENCES users (id) ON DELETE SET NULL,
    author       TEXT NOT NULL CHECK (length(author) <= 200),
    message      TEXT NOT NULL CHECK (length(message) BETWEEN 1 AND 4000),
    created_at   INTEGER NOT NULL
);
CREATE INDEX problem_comments_problem ON problem_comments (problem_id, created_at, id);
CREATE INDEX problem_comments_user ON problem_comments (user_id) WHERE user_id IS NOT NULL;
