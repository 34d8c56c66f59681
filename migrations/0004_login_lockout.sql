-- Sign-in lockouts per (username, client) and a growing delay per username (issue 11): the time
-- of the last failure counted in a rate-limit window, from which the delay runs.
ALTER TABLE rate_limits ADD COLUMN last_at INTEGER;
