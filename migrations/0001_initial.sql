-- The whole data model of SPEC section 5: every table and every index, so later features only
-- add queries. Times are INTEGER Unix milliseconds; booleans INTEGER 0/1; enums TEXT with CHECK.
-- Ids of user-visible rows are UUID v7 strings (they sort by creation); high-volume internal rows
-- (metrics, error logs, rate-limit windows) use the integer rowid.

CREATE TABLE users (
    id                       TEXT PRIMARY KEY NOT NULL,
    username                 TEXT NOT NULL COLLATE NOCASE CHECK (length(username) BETWEEN 1 AND 100),
    email                    TEXT COLLATE NOCASE CHECK (email IS NULL OR length(email) <= 320),
    name                     TEXT CHECK (name IS NULL OR length(name) <= 200),
    plex_id                  TEXT,
    plex_username            TEXT,
    plex_token               TEXT,
    image                    TEXT,
    role                     TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('admin', 'user')),
    status                   TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    password_hash            TEXT,
    requires_password_change INTEGER NOT NULL DEFAULT 0 CHECK (requires_password_change IN (0, 1)),
    created_at               INTEGER NOT NULL,
    last_login_at            INTEGER
);
CREATE UNIQUE INDEX users_username ON users (username);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE UNIQUE INDEX users_plex_id ON users (plex_id) WHERE plex_id IS NOT NULL;
CREATE INDEX users_status_created ON users (status, created_at, id);
CREATE INDEX users_last_login ON users (last_login_at) WHERE last_login_at IS NOT NULL;

CREATE TABLE session_tokens (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   TEXT NOT NULL,
    csrf_token   TEXT NOT NULL,
    remember     INTEGER NOT NULL DEFAULT 0 CHECK (remember IN (0, 1)),
    user_agent   TEXT,
    ip           TEXT,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX session_tokens_hash ON session_tokens (token_hash);
CREATE INDEX session_tokens_user_expires ON session_tokens (user_id, expires_at);
CREATE INDEX session_tokens_expires ON session_tokens (expires_at);

CREATE TABLE media_requests (
    id           TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT NOT NULL CHECK (length(title) <= 500),
    media_type   TEXT NOT NULL CHECK (media_type IN ('movie', 'tv')),
    tmdb_id      INTEGER NOT NULL CHECK (tmdb_id > 0),
    seasons      TEXT CHECK (seasons IS NULL OR (media_type = 'tv' AND json_valid(seasons))),
    is_4k        INTEGER NOT NULL DEFAULT 0 CHECK (is_4k IN (0, 1)),
    status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                     ('pending', 'approved', 'processing', 'partially_available', 'available',
                      'declined', 'failed')),
    overseerr_id INTEGER,
    poster_path  TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    completed_at INTEGER
);
-- The list indexes end with id: keyset paging sorts by (key, id).
CREATE INDEX media_requests_user_created ON media_requests (user_id, created_at, id);
CREATE INDEX media_requests_user_status ON media_requests (user_id, status, created_at, id);
CREATE INDEX media_requests_status_created ON media_requests (status, created_at, id);
CREATE INDEX media_requests_type_status ON media_requests (media_type, status);
CREATE INDEX media_requests_tmdb ON media_requests (tmdb_id, media_type);
CREATE INDEX media_requests_created ON media_requests (created_at, id);
CREATE INDEX media_requests_overseerr ON media_requests (overseerr_id) WHERE overseerr_id IS NOT NULL;

CREATE TABLE youtube_downloads (
    id                 TEXT PRIMARY KEY NOT NULL,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url                TEXT NOT NULL CHECK (length(url) <= 2048),
    kind               TEXT NOT NULL CHECK (kind IN ('video', 'playlist')),
    title              TEXT,
    status             TEXT NOT NULL DEFAULT 'queued' CHECK (status IN
                           ('queued', 'downloading', 'completed', 'failed', 'cancelled')),
    quality            TEXT NOT NULL DEFAULT '1080',
    format             TEXT NOT NULL DEFAULT 'mp4',
    progress           REAL NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    items_total        INTEGER NOT NULL DEFAULT 0,
    items_done         INTEGER NOT NULL DEFAULT 0,
    bytes_done         INTEGER NOT NULL DEFAULT 0,
    file_paths         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(file_paths)),
    error              TEXT,
    plex_collection_id TEXT,
    created_at         INTEGER NOT NULL,
    started_at         INTEGER,
    completed_at       INTEGER
);
CREATE INDEX youtube_downloads_user_status ON youtube_downloads (user_id, status);
CREATE INDEX youtube_downloads_user_created ON youtube_downloads (user_id, created_at, id);
CREATE INDEX youtube_downloads_status_created ON youtube_downloads (status, created_at, id);
CREATE INDEX youtube_downloads_url ON youtube_downloads (url);

CREATE TABLE service_config (
    id           TEXT PRIMARY KEY NOT NULL,
    service_name TEXT NOT NULL CHECK (service_name IN ('plex', 'overseerr', 'uptime_kuma')),
    service_url  TEXT,
    api_key      TEXT,
    enabled      INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    config_data  TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config_data)),
    updated_at   INTEGER NOT NULL,
    updated_by   TEXT REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX service_config_name ON service_config (service_name);
CREATE INDEX service_config_enabled_updated ON service_config (enabled, updated_at);

CREATE TABLE service_status (
    id               TEXT PRIMARY KEY NOT NULL,
    service_name     TEXT NOT NULL,
    display_name     TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'unknown' CHECK (status IN
                         ('up', 'down', 'degraded', 'unknown', 'disabled')),
    response_time_ms INTEGER,
    message          TEXT,
    last_check_at    INTEGER,
    last_change_at   INTEGER,
    uptime_24h       REAL
);
CREATE UNIQUE INDEX service_status_name ON service_status (service_name);
CREATE INDEX service_status_last_check ON service_status (last_check_at);

CREATE TABLE service_metrics (
    id           INTEGER PRIMARY KEY,
    service_name TEXT NOT NULL,
    metric_name  TEXT NOT NULL CHECK (metric_name IN ('response_time_ms', 'up')),
    metric_value REAL NOT NULL,
    timestamp    INTEGER NOT NULL
);
-- metric_value rides along so uptime and history buckets are read from the index alone.
CREATE INDEX service_metrics_name_metric_time ON service_metrics (service_name, metric_name, timestamp, metric_value);
CREATE INDEX service_metrics_time ON service_metrics (timestamp);

CREATE TABLE service_incidents (
    id            TEXT PRIMARY KEY NOT NULL,
    service_name  TEXT NOT NULL,
    incident_type TEXT NOT NULL,
    description   TEXT,
    severity      TEXT NOT NULL DEFAULT 'medium' CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    status        TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    created_at    INTEGER NOT NULL,
    resolved_at   INTEGER
);
CREATE INDEX service_incidents_name_status ON service_incidents (service_name, status);
CREATE INDEX service_incidents_created ON service_incidents (created_at);

CREATE TABLE request_followers (
    request_id TEXT NOT NULL REFERENCES media_requests (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (request_id, user_id)
) WITHOUT ROWID;
CREATE INDEX request_followers_user ON request_followers (user_id);

CREATE TABLE notifications (
    id         TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type       TEXT NOT NULL,
    title      TEXT NOT NULL,
    message    TEXT NOT NULL,
    read       INTEGER NOT NULL DEFAULT 0 CHECK (read IN (0, 1)),
    metadata   TEXT CHECK (metadata IS NULL OR json_valid(metadata)),
    created_at INTEGER NOT NULL,
    read_at    INTEGER
);
CREATE INDEX notifications_user_read_created ON notifications (user_id, read, created_at, id);
CREATE INDEX notifications_created ON notifications (created_at);

CREATE TABLE error_logs (
    id             INTEGER PRIMARY KEY,
    correlation_id TEXT NOT NULL,
    user_id        TEXT REFERENCES users (id) ON DELETE SET NULL,
    error_code     TEXT NOT NULL,
    error_message  TEXT NOT NULL,
    request_path   TEXT,
    request_method TEXT,
    status_code    INTEGER,
    metadata       TEXT CHECK (metadata IS NULL OR json_valid(metadata)),
    created_at     INTEGER NOT NULL
);
CREATE INDEX error_logs_correlation ON error_logs (correlation_id);
CREATE INDEX error_logs_created ON error_logs (created_at);
CREATE INDEX error_logs_user ON error_logs (user_id);
-- The admin error log filters by code, newest first.
CREATE INDEX error_logs_code_created ON error_logs (error_code, created_at, id);

CREATE TABLE rate_limits (
    id            INTEGER PRIMARY KEY,
    key           TEXT NOT NULL,
    endpoint      TEXT NOT NULL,
    request_count INTEGER NOT NULL DEFAULT 0,
    window_start  INTEGER NOT NULL
);
CREATE UNIQUE INDEX rate_limits_key_endpoint_window ON rate_limits (key, endpoint, window_start);
CREATE INDEX rate_limits_window ON rate_limits (window_start);

-- Facts about this installation (e.g. the check value of the secret key).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;
