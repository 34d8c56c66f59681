-- Media requests (issue 5): the indexes the request lists, the dedupe rule and the webhook
-- lookups need beyond the SPEC section 5 set.

-- One active request per title: "active" is anything but declined or failed (SPEC section 6).
-- The database enforces the dedupe rule, so two concurrent requests can never make two rows.
CREATE UNIQUE INDEX media_requests_active ON media_requests (tmdb_id, media_type, is_4k)
    WHERE status NOT IN ('declined', 'failed');

-- `sort=title` keyset paging, for one user and for the admin list.
CREATE INDEX media_requests_user_title ON media_requests (user_id, title, id);
CREATE INDEX media_requests_title ON media_requests (title, id);

-- `mediaType=` filter with the default sort, for one user and for the admin list.
CREATE INDEX media_requests_user_type_created ON media_requests (user_id, media_type, created_at, id);
CREATE INDEX media_requests_type_created ON media_requests (media_type, created_at, id);
