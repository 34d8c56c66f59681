-- Plex watchlist auto-requests (issue 16): each Plex user's switch and sync state, the
-- watchlist items a sync already handled (so nothing is requested twice), and where a request
-- came from.
--
-- The scheduler reads `watchlist_sync_due`; a check writes the outcome columns (last_*,
-- failures, next_check_at, paused_*), and one `watchlist_items` row per item it handled.

-- 'manual': asked for in the dashboard or the API; 'watchlist': made by the watchlist sync.
ALTER TABLE media_requests
    ADD COLUMN source TEXT NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'watchlist'));

CREATE TABLE watchlist_sync (
    user_id       TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    enabled       INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    -- When the next check is due (Unix ms); jittered per user.
    next_check_at INTEGER NOT NULL DEFAULT 0,
    last_sync_at  INTEGER,
    -- 'ok' or 'failed' (plex.tv or Seerr unreachable: retried later, never a pause).
    last_result   TEXT CHECK (last_result IS NULL OR last_result IN ('ok', 'failed')),
    -- Failed checks in a row (the backoff doubles with it).
    failures      INTEGER NOT NULL DEFAULT 0,
    -- Set when plex.tv refused the stored token; cleared by the next Plex sign-in.
    paused_at     INTEGER,
    paused_reason TEXT CHECK (paused_reason IS NULL OR paused_reason IN ('token_expired', 'no_token')),
    -- 1 once the user was told an item waits for their quota; 0 again after a request went through.
    quota_told    INTEGER NOT NULL DEFAULT 0 CHECK (quota_told IN (0, 1)),
    updated_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX watchlist_sync_due ON watchlist_sync (next_check_at, user_id)
    WHERE enabled = 1 AND paused_at IS NULL;

CREATE TABLE watchlist_items (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The provider's id of the item (its `ratingKey`).
    rating_key TEXT NOT NULL CHECK (length(rating_key) BETWEEN 1 AND 100),
    title      TEXT NOT NULL CHECK (length(title) <= 500),
    media_type TEXT CHECK (media_type IS NULL OR media_type IN ('movie', 'tv')),
    tmdb_id    INTEGER,
    -- requested: a request was made; followed: someone else's request is followed;
    -- existing: the title was already requested (by this user, or in Seerr itself);
    -- available: already on the server; unmatched: no TMDB id, or TMDB does not know it;
    -- refused: Seerr will never take it (blocklisted).
    outcome    TEXT NOT NULL CHECK (outcome IN
                   ('requested', 'followed', 'existing', 'available', 'unmatched', 'refused')),
    request_id TEXT,
    handled_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, rating_key)
) WITHOUT ROWID;
