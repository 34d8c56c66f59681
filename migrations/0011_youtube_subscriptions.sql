-- YouTube subscriptions (issue 15): channels and playlists checked on a schedule, the reusable
-- download profiles they use, and each subscription's archive of video ids (a video in the
-- archive is never downloaded again, whatever became of it since).
--
-- The scheduler reads `youtube_subscriptions_due`; a check writes the outcome columns
-- (last_*, consecutive_failures, backoff_until, next_check_at) and archive rows.

CREATE TABLE youtube_profiles (
    id                      TEXT PRIMARY KEY NOT NULL,
    name                    TEXT NOT NULL COLLATE NOCASE CHECK (length(name) BETWEEN 1 AND 100),
    -- Highest video height downloaded; NULL: the best there is.
    max_height              INTEGER
                            CHECK (max_height IS NULL OR max_height IN (360, 480, 720, 1080, 1440, 2160)),
    container               TEXT NOT NULL DEFAULT 'mp4' CHECK (container IN ('mp4', 'mkv', 'webm')),
    -- JSON array of language codes (e.g. ["en", "pt-BR"]); empty: no subtitles.
    subtitle_langs          TEXT NOT NULL DEFAULT '[]'
                            CHECK (json_valid(subtitle_langs) AND json_type(subtitle_langs) = 'array'),
    subtitle_mode           TEXT NOT NULL DEFAULT 'embedded'
                            CHECK (subtitle_mode IN ('embedded', 'sidecar')),
    -- off, remove the categories from the file, or mark them as chapters.
    sponsorblock_mode       TEXT NOT NULL DEFAULT 'off'
                            CHECK (sponsorblock_mode IN ('off', 'remove', 'mark')),
    sponsorblock_categories TEXT NOT NULL DEFAULT '[]'
                            CHECK (json_valid(sponsorblock_categories)
                                   AND json_type(sponsorblock_categories) = 'array'),
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL
);
CREATE UNIQUE INDEX youtube_profiles_name ON youtube_profiles (name);

CREATE TABLE youtube_subscriptions (
    id                   TEXT PRIMARY KEY NOT NULL,
    -- Who made or proposed it.
    user_id              TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The canonical URL (`youtube::url::parse_source`): the only text that reaches yt-dlp.
    url                  TEXT NOT NULL CHECK (length(url) BETWEEN 1 AND 2048),
    kind                 TEXT NOT NULL CHECK (kind IN ('channel', 'playlist')),
    -- What the URL names: `@handle`, `UC...`, `c/name`, `user/name` or the playlist id.
    source_id            TEXT NOT NULL CHECK (length(source_id) BETWEEN 1 AND 120),
    -- The `UC...` channel id once a check has learnt it.
    channel_id           TEXT CHECK (channel_id IS NULL OR length(channel_id) <= 64),
    title                TEXT CHECK (title IS NULL OR length(title) <= 500),
    avatar_url           TEXT CHECK (avatar_url IS NULL OR length(avatar_url) <= 2048),
    banner_url           TEXT CHECK (banner_url IS NULL OR length(banner_url) <= 2048),
    status               TEXT NOT NULL
                         CHECK (status IN ('proposed', 'active', 'paused', 'declined')),
    decline_reason       TEXT CHECK (decline_reason IS NULL OR length(decline_reason) <= 500),
    decided_by           TEXT REFERENCES users (id) ON DELETE SET NULL,
    decided_at           INTEGER,
    interval_secs        INTEGER NOT NULL DEFAULT 21600 CHECK (interval_secs BETWEEN 900 AND 604800),
    -- Only videos published on or after this day (YYYY-MM-DD).
    after_date           TEXT CHECK (after_date IS NULL OR (length(after_date) = 10 AND
                                     after_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]')),
    keep_latest          INTEGER CHECK (keep_latest IS NULL OR keep_latest BETWEEN 1 AND 10000),
    keep_days            INTEGER CHECK (keep_days IS NULL OR keep_days BETWEEN 1 AND 3650),
    include_pattern      TEXT CHECK (include_pattern IS NULL OR length(include_pattern) BETWEEN 1 AND 200),
    exclude_pattern      TEXT CHECK (exclude_pattern IS NULL OR length(exclude_pattern) BETWEEN 1 AND 200),
    skip_shorts          INTEGER NOT NULL DEFAULT 0 CHECK (skip_shorts IN (0, 1)),
    skip_live            INTEGER NOT NULL DEFAULT 1 CHECK (skip_live IN (0, 1)),
    -- A profile in use cannot be deleted (the API answers 409; the key backs it up).
    profile_id           TEXT REFERENCES youtube_profiles (id),
    -- The Plex collection the items go in, once made.
    plex_collection_id   TEXT,
    -- When the scheduler should check next; NULL while not active.
    next_check_at        INTEGER,
    last_check_at        INTEGER,
    -- ok: listed (last_new_items were new); failed: an error worth retrying later; blocked:
    -- YouTube refused (rate limit, bot check), which needs an admin (cookies, doctor).
    last_result          TEXT CHECK (last_result IS NULL OR last_result IN ('ok', 'failed', 'blocked')),
    last_error           TEXT CHECK (last_error IS NULL OR length(last_error) <= 1000),
    last_new_items       INTEGER NOT NULL DEFAULT 0 CHECK (last_new_items >= 0),
    consecutive_failures INTEGER NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    -- No check before this time (set with next_check_at after a failure).
    backoff_until        INTEGER,
    -- Archive rows and the bytes of the files on disk, kept up to date by whoever changes them
    -- (so a list of subscriptions never counts archives).
    item_count           INTEGER NOT NULL DEFAULT 0 CHECK (item_count >= 0),
    bytes                INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
-- One live subscription per source; a declined proposal does not block a new one.
CREATE UNIQUE INDEX youtube_subscriptions_url
    ON youtube_subscriptions (url) WHERE status <> 'declined';
-- The scheduler: active subscriptions by when they are due.
CREATE INDEX youtube_subscriptions_due
    ON youtube_subscriptions (next_check_at) WHERE status = 'active';
-- A user's subscriptions newest first, and their quota (active + proposed).
CREATE INDEX youtube_subscriptions_user ON youtube_subscriptions (user_id, created_at, id);
CREATE INDEX youtube_subscriptions_user_status ON youtube_subscriptions (user_id, status);
-- Everyone's, newest first, whole or by status (the admin's proposals).
CREATE INDEX youtube_subscriptions_created ON youtube_subscriptions (created_at, id);
CREATE INDEX youtube_subscriptions_status ON youtube_subscriptions (status, created_at, id);
CREATE INDEX youtube_subscriptions_profile
    ON youtube_subscriptions (profile_id) WHERE profile_id IS NOT NULL;

-- The archive: every video a subscription queued, downloaded, pruned, skipped, or that a user
-- deleted. A row is never removed while its subscription lives, so an id never comes back.
CREATE TABLE youtube_subscription_items (
    id              TEXT PRIMARY KEY NOT NULL,
    subscription_id TEXT NOT NULL REFERENCES youtube_subscriptions (id) ON DELETE CASCADE,
    video_id        TEXT NOT NULL CHECK (length(video_id) = 11),
    status          TEXT NOT NULL
                    CHECK (status IN ('queued', 'downloaded', 'failed', 'pruned', 'deleted', 'skipped')),
    -- Why an item was skipped (short, live, before the after date, a pattern, private ...).
    reason          TEXT CHECK (reason IS NULL OR length(reason) <= 200),
    title           TEXT CHECK (title IS NULL OR length(title) <= 500),
    upload_date     TEXT CHECK (upload_date IS NULL OR (length(upload_date) = 10 AND
                                upload_date GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]')),
    download_id     TEXT REFERENCES youtube_downloads (id) ON DELETE SET NULL,
    -- A user marked it "keep": retention never prunes it.
    keep            INTEGER NOT NULL DEFAULT 0 CHECK (keep IN (0, 1)),
    file_paths      TEXT NOT NULL DEFAULT '[]'
                    CHECK (json_valid(file_paths) AND json_type(file_paths) = 'array'),
    bytes           INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    plex_rating_key TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- The archive lookup, and one row per video per subscription.
CREATE UNIQUE INDEX youtube_subscription_items_video
    ON youtube_subscription_items (subscription_id, video_id);
-- A subscription's items newest first.
CREATE INDEX youtube_subscription_items_created
    ON youtube_subscription_items (subscription_id, created_at, id);
CREATE INDEX youtube_subscription_items_download
    ON youtube_subscription_items (download_id) WHERE download_id IS NOT NULL;
