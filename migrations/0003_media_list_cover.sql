-- A user's request list, newest first, is the hot read of the app: the index it walks now
-- carries every column the list shows, so a page is read from the index alone (no lookup of
-- each row in the table). Same name, so statements that name it keep working; its leading
-- columns are still SPEC section 5's (user_id, created_at).
DROP INDEX media_requests_user_created;
CREATE INDEX media_requests_user_created ON media_requests (
    user_id, created_at, id, title, media_type, tmdb_id, seasons, is_4k, status, overseerr_id,
    poster_path, updated_at, completed_at
);
