//! The queries of the three subscription tables: plain functions taking a `&Connection`, run
//! by the handlers (through `db.run` / `db.write`) and, later, by the scheduler.
//!
//! The scheduler's part is [`due`] (what to check now, by the `youtube_subscriptions_due`
//! index) and [`next_check_at`] (how long to sleep), [`archived_among`] (which of a listing's
//! ids are not new: only those ids are looked up, never the whole archive), [`record_items`]
//! (new archive rows, never a second one for a video) and [`record_check`] (the outcome, with
//! back-off). Every query here searches an index; `tests::queries_use_indexes` checks the plans,
//! and `tests::a_scheduler_pass_searches_indexes_only` every statement a pass runs.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};

use super::model::{
    CheckOutcome, ITEM_COLUMNS, Item, NewItem, PROFILE_COLUMNS, Profile, ProfileInput,
    SUBSCRIPTION_COLUMNS, Settings, Subscription, item_from_row, profile_from_row,
    subscription_from_row,
};
use crate::error::{AppError, AppResult, ErrorCode, is_unique_violation};
use crate::youtube::url::Source;

/// First back-off after a failed check; each further failure doubles it up to [`MAX_BACKOFF_MS`].
pub const MIN_BACKOFF_MS: i64 = 15 * 60 * 1000;
pub const MAX_BACKOFF_MS: i64 = 24 * 3600 * 1000;
/// Longest `last_error` kept (the column's CHECK).
const MAX_ERROR_CHARS: usize = 1000;

/// How long to wait after the `failures`-th failure in a row (1 -> 15 min, 2 -> 30 min, ...,
/// at most a day); for the scheduler's `next_at`.
pub fn backoff_delay_ms(failures: i64) -> i64 {
    let doublings = u32::try_from((failures - 1).clamp(0, 16)).unwrap_or(16);
    MIN_BACKOFF_MS
        .saturating_mul(1_i64 << doublings)
        .min(MAX_BACKOFF_MS)
}

fn select_subscriptions(tail: &str) -> String {
    format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM youtube_subscriptions s \
         JOIN users u ON u.id = s.user_id {tail}"
    )
}

/// The subscription `id`.
pub fn get(conn: &Connection, id: &str) -> AppResult<Option<Subscription>> {
    Ok(conn
        .prepare_cached(&select_subscriptions("WHERE s.id = ?1"))?
        .query_row([id], subscription_from_row)
        .optional()?)
}

/// Whose subscriptions a list shows.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// One user's (optionally of one status).
    User(&'a str, Option<&'a str>),
    /// Everyone's of one status.
    Status(&'a str),
    /// Everyone's.
    All,
}

/// A page of subscriptions, newest first, strictly after `before` (`(i64::MAX, "")` first).
pub fn list(
    conn: &Connection,
    scope: Scope<'_>,
    before: (i64, &str),
    limit: u32,
) -> AppResult<Vec<Subscription>> {
    let order = "ORDER BY s.created_at DESC, s.id DESC LIMIT";
    let (filter, key) = match scope {
        // A user has a handful: the status is checked on the rows of their index range.
        Scope::User(user, status) => (
            "s.user_id = ?4 AND (?5 IS NULL OR s.status = ?5)",
            (Some(user), status),
        ),
        Scope::Status(status) => ("s.status = ?4 AND ?5 IS NULL", (Some(status), None)),
        Scope::All => ("?4 IS NULL AND ?5 IS NULL", (None, None)),
    };
    let sql = select_subscriptions(&format!(
        "WHERE {filter} AND (s.created_at, s.id) < (?1, ?2) {order} ?3"
    ));
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(
            params![before.0, before.1, limit, key.0, key.1],
            subscription_from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The live (not declined) subscription of `url`: `(id, status)`.
pub fn find_by_url(conn: &Connection, url: &str) -> AppResult<Option<(String, String)>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, status FROM youtube_subscriptions WHERE url = ?1 AND status <> 'declined'",
        )?
        .query_row([url], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// The user's subscriptions that count against the quota: active and proposed (paused ones
/// were approved, and count too; declined ones do not).
pub fn quota_used(conn: &Connection, user_id: &str) -> AppResult<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM youtube_subscriptions
              WHERE user_id = ?1 AND status IN ('active', 'proposed', 'paused')",
        )?
        .query_row([user_id], |r| r.get(0))?)
}

/// Stores a new subscription; `active` ones are due at once. A second live one of the same URL
/// is `CONFLICT` (callers look first with [`find_by_url`] to name it).
pub fn insert(
    conn: &Connection,
    user_id: &str,
    source: &Source,
    status: &str,
    settings: &Settings,
    now_ms: i64,
) -> AppResult<String> {
    let id = uuid::Uuid::now_v7().to_string();
    let next_check = (status == "active").then_some(now_ms);
    conn.prepare_cached(
        "INSERT INTO youtube_subscriptions (id, user_id, url, kind, source_id, status,
             interval_secs, after_date, keep_latest, keep_days, include_pattern, exclude_pattern,
             skip_shorts, skip_live, profile_id, next_check_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17)",
    )?
    .execute(params![
        id,
        user_id,
        source.canonical(),
        source.kind.as_str(),
        source.id,
        status,
        settings.interval_secs,
        settings.after,
        settings.keep_latest,
        settings.keep_days,
        settings.include,
        settings.exclude,
        settings.skip_shorts,
        settings.skip_live,
        settings.profile_id,
        next_check,
        now_ms,
    ])
    .map_err(|e| {
        if is_unique_violation(&e) {
            AppError::new(ErrorCode::Conflict)
        } else {
            AppError::from(e)
        }
    })?;
    Ok(id)
}

/// Replaces the settings of `id`. A shorter interval brings an active subscription's next
/// check forward (never later than `now + interval`).
pub fn update_settings(
    conn: &Connection,
    id: &str,
    settings: &Settings,
    now_ms: i64,
) -> AppResult<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE youtube_subscriptions
                SET interval_secs = ?2, after_date = ?3, keep_latest = ?4, keep_days = ?5,
                    include_pattern = ?6, exclude_pattern = ?7, skip_shorts = ?8, skip_live = ?9,
                    profile_id = ?10, updated_at = ?11,
                    next_check_at = CASE WHEN status = 'active'
                                         THEN min(next_check_at, ?11 + ?2 * 1000) END
              WHERE id = ?1",
        )?
        .execute(params![
            id,
            settings.interval_secs,
            settings.after,
            settings.keep_latest,
            settings.keep_days,
            settings.include,
            settings.exclude,
            settings.skip_shorts,
            settings.skip_live,
            settings.profile_id,
            now_ms,
        ])?;
    Ok(changed == 1)
}

/// `proposed -> active` (due now), recording the admin; false when it was not proposed.
pub fn approve(conn: &Connection, id: &str, admin_id: &str, now_ms: i64) -> AppResult<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE youtube_subscriptions
                SET status = 'active', next_check_at = ?3, decided_by = ?2, decided_at = ?3,
                    updated_at = ?3
              WHERE id = ?1 AND status = 'proposed'",
        )?
        .execute(params![id, admin_id, now_ms])?;
    Ok(changed == 1)
}

/// `proposed -> declined` with the reason; false when it was not proposed.
pub fn decline(
    conn: &Connection,
    id: &str,
    admin_id: &str,
    reason: Option<&str>,
    now_ms: i64,
) -> AppResult<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE youtube_subscriptions
                SET status = 'declined', decline_reason = ?3, next_check_at = NULL,
                    decided_by = ?2, decided_at = ?4, updated_at = ?4
              WHERE id = ?1 AND status = 'proposed'",
        )?
        .execute(params![id, admin_id, reason, now_ms])?;
    Ok(changed == 1)
}

/// `active -> paused` (no more checks); false when it was not active.
pub fn pause(conn: &Connection, id: &str, now_ms: i64) -> AppResult<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE youtube_subscriptions
                SET status = 'paused', next_check_at = NULL, updated_at = ?2
              WHERE id = ?1 AND status = 'active'",
        )?
        .execute(params![id, now_ms])?;
    Ok(changed == 1)
}

/// `paused` or `active -> active`, due now, any back-off lifted (an admin resumes after fixing
/// what made checks fail); false for a proposed or declined one.
pub fn resume(conn: &Connection, id: &str, now_ms: i64) -> AppResult<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE youtube_subscriptions
                SET status = 'active', next_check_at = ?2, backoff_until = NULL, updated_at = ?2
              WHERE id = ?1 AND status IN ('active', 'paused')",
        )?
        .execute(params![id, now_ms])?;
    Ok(changed == 1)
}

/// Deletes the subscription and its archive (not the files; they belong to the downloads).
pub fn delete(conn: &Connection, id: &str) -> AppResult<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM youtube_subscriptions WHERE id = ?1")?
        .execute([id])?
        == 1)
}

/// Up to `limit` active subscriptions due at `now_ms` and not backing off, the most overdue
/// first.
pub fn due(conn: &Connection, now_ms: i64, limit: u32) -> AppResult<Vec<Subscription>> {
    let rows = conn
        .prepare_cached(&select_subscriptions(
            "WHERE s.status = 'active' AND s.next_check_at <= ?1
               AND (s.backoff_until IS NULL OR s.backoff_until <= ?1)
             ORDER BY s.next_check_at LIMIT ?2",
        ))?
        .query_map(params![now_ms, limit], subscription_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// When the soonest active subscription is due (`None`: none is active); the scheduler sleeps
/// until then. Read from the end of the `youtube_subscriptions_due` index.
pub fn next_check_at(conn: &Connection) -> AppResult<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT min(next_check_at) FROM youtube_subscriptions WHERE status = 'active'",
        )?
        .query_row([], |r| r.get(0))?)
}

/// Ids per statement of [`archived_among`]. A check lists 50 per tab (up to three tabs); a
/// shorter batch repeats its last id, so one cached statement serves every batch.
const AMONG_BATCH: usize = 64;

/// The statement of [`archived_among`]: `?1` the subscription, `?2`.. the ids.
fn archived_among_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let ids: Vec<String> = (2..AMONG_BATCH + 2).map(|i| format!("?{i}")).collect();
        format!(
            "SELECT video_id FROM youtube_subscription_items
              WHERE subscription_id = ?1 AND video_id IN ({})",
            ids.join(", ")
        )
    });
    &SQL
}

/// Which of `video_ids` are in the subscription's archive. One search of the
/// `youtube_subscription_items_video` index per id: the cost follows the listing, not the
/// archive (thousands of ids per subscription are never read).
pub fn archived_among(
    conn: &Connection,
    subscription_id: &str,
    video_ids: &[String],
) -> AppResult<HashSet<String>> {
    let mut found = HashSet::new();
    let mut stmt = conn.prepare_cached(archived_among_sql())?;
    for batch in video_ids.chunks(AMONG_BATCH) {
        let Some(last) = batch.last() else { continue };
        let ids = batch
            .iter()
            .chain(std::iter::repeat_n(last, AMONG_BATCH - batch.len()))
            .map(String::as_str);
        let mut rows = stmt.query(rusqlite::params_from_iter(
            std::iter::once(subscription_id).chain(ids),
        ))?;
        while let Some(row) = rows.next()? {
            found.insert(row.get(0)?);
        }
    }
    Ok(found)
}

/// Whether the video is in the subscription's archive.
pub fn is_archived(conn: &Connection, subscription_id: &str, video_id: &str) -> AppResult<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM youtube_subscription_items WHERE subscription_id = ?1 AND video_id = ?2",
        )?
        .query_row([subscription_id, video_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Adds archive rows for the videos not in it yet (ones already there are left as they are)
/// and keeps the subscription's `item_count`; returns the video ids added, in the given order.
/// Call inside the check's write transaction.
pub fn record_items(
    conn: &Connection,
    subscription_id: &str,
    items: &[NewItem],
    now_ms: i64,
) -> AppResult<Vec<String>> {
    let mut added = Vec::new();
    let mut stmt = conn.prepare_cached(
        "INSERT INTO youtube_subscription_items (id, subscription_id, video_id, status, reason,
             title, upload_date, download_id, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
         ON CONFLICT (subscription_id, video_id) DO NOTHING",
    )?;
    for item in items {
        let inserted = stmt.execute(params![
            uuid::Uuid::now_v7().to_string(),
            subscription_id,
            item.video_id,
            item.status,
            item.reason,
            item.title,
            item.upload_date,
            item.download_id,
            now_ms,
        ])?;
        if inserted == 1 {
            added.push(item.video_id.clone());
        }
    }
    if !added.is_empty() {
        conn.prepare_cached(
            "UPDATE youtube_subscriptions SET item_count = item_count + ?2 WHERE id = ?1",
        )?
        .execute(params![subscription_id, added.len() as i64])?;
    }
    Ok(added)
}

/// Records a check's outcome at `now_ms` and when to check next. A failure counts one more in a
/// row and backs off until `next_at` (compute it with [`backoff_delay_ms`]); a success clears
/// both. A subscription paused (or deleted) during the check stays as it is, with the outcome
/// noted. False when there is no such subscription.
pub fn record_check(
    conn: &Connection,
    id: &str,
    outcome: &CheckOutcome,
    now_ms: i64,
    next_at: i64,
) -> AppResult<bool> {
    let (result, error, new_items) = match outcome {
        CheckOutcome::Ok { new_items } => ("ok", None, i64::from(*new_items)),
        CheckOutcome::Failed { error } => ("failed", Some(error), 0),
        CheckOutcome::Blocked { error } => ("blocked", Some(error), 0),
    };
    let error: Option<String> = error.map(|e| e.chars().take(MAX_ERROR_CHARS).collect());
    let failed = error.is_some();
    let changed = conn
        .prepare_cached(
            "UPDATE youtube_subscriptions
                SET last_check_at = ?2, last_result = ?3, last_error = ?4, last_new_items = ?5,
                    consecutive_failures = CASE WHEN ?6 THEN consecutive_failures + 1 ELSE 0 END,
                    backoff_until = CASE WHEN ?6 THEN ?7 END,
                    next_check_at = CASE WHEN status = 'active' THEN ?7 END,
                    updated_at = ?2
              WHERE id = ?1",
        )?
        .execute(params![
            id, now_ms, result, error, new_items, failed, next_at
        ])?;
    Ok(changed == 1)
}

/// A page of the subscription's archive, newest first, strictly after `before`.
pub fn items(
    conn: &Connection,
    subscription_id: &str,
    before: (i64, &str),
    limit: u32,
) -> AppResult<Vec<Item>> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {ITEM_COLUMNS} FROM youtube_subscription_items
              WHERE subscription_id = ?1 AND (created_at, id) < (?2, ?3)
              ORDER BY created_at DESC, id DESC LIMIT ?4"
        ))?
        .query_map(
            params![subscription_id, before.0, before.1, limit],
            item_from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

// Profiles.

/// Every profile, by name.
pub fn list_profiles(conn: &Connection) -> AppResult<Vec<Profile>> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {PROFILE_COLUMNS} FROM youtube_profiles p ORDER BY p.name"
        ))?
        .query_map([], profile_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The profile `id`.
pub fn get_profile(conn: &Connection, id: &str) -> AppResult<Option<Profile>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {PROFILE_COLUMNS} FROM youtube_profiles p WHERE p.id = ?1"
        ))?
        .query_row([id], profile_from_row)
        .optional()?)
}

/// Whether the profile `id` exists.
pub fn profile_exists(conn: &Connection, id: &str) -> AppResult<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM youtube_profiles WHERE id = ?1")?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

fn name_taken(e: rusqlite::Error) -> AppError {
    if is_unique_violation(&e) {
        AppError::validation([("name", "is already the name of another profile")])
    } else {
        AppError::from(e)
    }
}

/// Stores a new profile; a name in use (any case) is a validation error on `name`.
pub fn insert_profile(conn: &Connection, input: &ProfileInput, now_ms: i64) -> AppResult<String> {
    let id = uuid::Uuid::now_v7().to_string();
    conn.prepare_cached(
        "INSERT INTO youtube_profiles (id, name, max_height, container, subtitle_langs,
             subtitle_mode, sponsorblock_mode, sponsorblock_categories, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
    )?
    .execute(params![
        id,
        input.name,
        input.max_height,
        input.container,
        serde_json::Value::from(input.subtitles.languages.clone()).to_string(),
        input.subtitles.mode,
        input.sponsorblock.mode,
        serde_json::Value::from(input.sponsorblock.categories.clone()).to_string(),
        now_ms,
    ])
    .map_err(name_taken)?;
    Ok(id)
}

/// Replaces the profile `id`; false when there is none.
pub fn update_profile(
    conn: &Connection,
    id: &str,
    input: &ProfileInput,
    now_ms: i64,
) -> AppResult<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE youtube_profiles
                SET name = ?2, max_height = ?3, container = ?4, subtitle_langs = ?5,
                    subtitle_mode = ?6, sponsorblock_mode = ?7, sponsorblock_categories = ?8,
                    updated_at = ?9
              WHERE id = ?1",
        )?
        .execute(params![
            id,
            input.name,
            input.max_height,
            input.container,
            serde_json::Value::from(input.subtitles.languages.clone()).to_string(),
            input.subtitles.mode,
            input.sponsorblock.mode,
            serde_json::Value::from(input.sponsorblock.categories.clone()).to_string(),
            now_ms,
        ])
        .map_err(name_taken)?;
    Ok(changed == 1)
}

/// What deleting a profile did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileDeletion {
    Deleted,
    NotFound,
    /// These subscriptions (ids, up to 10) use it.
    InUse(Vec<String>),
}

/// Deletes the profile unless a subscription uses it.
pub fn delete_profile(conn: &Connection, id: &str) -> AppResult<ProfileDeletion> {
    let users = conn
        .prepare_cached("SELECT id FROM youtube_subscriptions WHERE profile_id = ?1 LIMIT 10")?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    if !users.is_empty() {
        return Ok(ProfileDeletion::InUse(users));
    }
    let deleted = conn
        .prepare_cached("DELETE FROM youtube_profiles WHERE id = ?1")?
        .execute([id])?;
    Ok(if deleted == 1 {
        ProfileDeletion::Deleted
    } else {
        ProfileDeletion::NotFound
    })
}

/// What a check learnt about the source: its name (kept once known), channel id, avatar and
/// banner; and, once, its show folder (unique among subscriptions). The folder, once there is one.
pub fn record_source(
    conn: &Connection,
    id: &str,
    source: &super::scheduler::Source,
) -> AppResult<Option<String>> {
    conn.prepare_cached(
        "UPDATE youtube_subscriptions
            SET title = coalesce(title, ?2), channel_id = coalesce(?3, channel_id),
                avatar_url = coalesce(?4, avatar_url), banner_url = coalesce(?5, banner_url)
          WHERE id = ?1",
    )?
    .execute(rusqlite::params![
        id,
        source.title,
        source.channel_id,
        source.avatar,
        source.banner
    ])?;
    // The show folder, once: the name, or the name with the source's id when another
    // subscription has that folder already.
    let (folder, title, source_id): (Option<String>, Option<String>, String) = conn
        .prepare_cached("SELECT folder, title, source_id FROM youtube_subscriptions WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    if folder.is_some() {
        return Ok(folder);
    }
    let Some(title) = title else { return Ok(None) };
    let taken = |name: &str| -> AppResult<bool> {
        Ok(conn
            .prepare_cached("SELECT 1 FROM youtube_subscriptions WHERE folder = ?1")?
            .exists([name])?)
    };
    let plain = crate::youtube::layout::channel_folder(&title);
    // Shortened so the suffix always fits the folder name's bound.
    let short = crate::youtube::ytdlp::truncate_chars(&title, 20);
    let folder = if taken(&plain)? {
        let named = crate::youtube::layout::channel_folder(&format!("{short} ({source_id})"));
        if taken(&named)? {
            crate::youtube::layout::channel_folder(&format!("{short} ({id})"))
        } else {
            named
        }
    } else {
        plain
    };
    conn.prepare_cached("UPDATE youtube_subscriptions SET folder = ?2 WHERE id = ?1")?
        .execute([id, folder.as_str()])?;
    Ok(Some(folder))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::youtube::url::parse_source;

    const NOW: i64 = 1_750_000_000_000;

    fn db_with_user() -> (Db, String) {
        let db = Db::open_memory().unwrap();
        let conn = db.connection_blocking().unwrap();
        let user = "u1".to_owned();
        conn.execute(
            "INSERT INTO users (id, username, role, status, created_at)
             VALUES ('u1', 'ann', 'user', 'active', 0)",
            [],
        )
        .unwrap();
        drop(conn);
        (db, user)
    }

    fn subscribe(conn: &Connection, user: &str, handle: &str, status: &str) -> String {
        let source = parse_source(&format!("https://www.youtube.com/@{handle}")).unwrap();
        insert(conn, user, &source, status, &Settings::default(), NOW).unwrap()
    }

    /// 200 more users: enough that the statistics do not make a scan of them look cheap.
    fn other_users(conn: &Connection) {
        for i in 0..200 {
            conn.execute(
                "INSERT INTO users (id, username, created_at) VALUES (?1, ?1, 0)",
                [format!("other{i}")],
            )
            .unwrap();
        }
    }

    fn item(video_id: &str) -> NewItem {
        NewItem {
            video_id: video_id.to_owned(),
            status: "queued".to_owned(),
            reason: None,
            title: Some(format!("Video {video_id}")),
            upload_date: Some("2025-06-01".to_owned()),
            download_id: None,
        }
    }

    #[test]
    fn two_subscriptions_of_one_name_get_their_own_show_folders() {
        let (db, user) = db_with_user();
        let conn = db.connection_blocking().unwrap();
        let source = |title: &str| super::super::scheduler::Source {
            title: Some(title.to_owned()),
            ..Default::default()
        };
        let a = subscribe(&conn, &user, "veritasium", "active");
        let b = subscribe(&conn, &user, "veritasium2", "active");
        let c = subscribe(&conn, &user, "veritasium3", "active");
        let fa = record_source(&conn, &a, &source("Veritasium")).unwrap();
        assert_eq!(fa.as_deref(), Some("Veritasium"));
        // Learnt once: a later name changes neither.
        assert_eq!(record_source(&conn, &a, &source("Renamed")).unwrap(), fa);
        assert_eq!(
            get(&conn, &a).unwrap().unwrap().title.as_deref(),
            Some("Veritasium")
        );
        let fb = record_source(&conn, &b, &source("Veritasium")).unwrap();
        assert_eq!(fb.as_deref(), Some("Veritasium (@veritasium2)"));
        let fc = record_source(&conn, &c, &source("Veritasium")).unwrap();
        assert_eq!(fc.as_deref(), Some("Veritasium (@veritasium3)"));
        // No name yet: no folder.
        let d = subscribe(&conn, &user, "nameless", "active");
        assert_eq!(record_source(&conn, &d, &source_none()).unwrap(), None);
    }

    fn source_none() -> super::super::scheduler::Source {
        super::super::scheduler::Source::default()
    }

    #[test]
    fn due_takes_active_ones_that_are_due_and_not_backing_off() {
        let (db, user) = db_with_user();
        let conn = db.connection_blocking().unwrap();
        let first = subscribe(&conn, &user, "first", "active");
        let later = subscribe(&conn, &user, "later", "active");
        let proposed = subscribe(&conn, &user, "proposed", "proposed");
        let paused = subscribe(&conn, &user, "paused", "active");
        assert!(pause(&conn, &paused, NOW).unwrap());
        // `later` is checked, next in an hour.
        let ok = CheckOutcome::Ok { new_items: 2 };
        assert!(record_check(&conn, &later, &ok, NOW, NOW + 3_600_000).unwrap());

        let ids = |v: Vec<Subscription>| v.into_iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(ids(due(&conn, NOW, 10).unwrap()), [first.as_str()]);
        assert_eq!(
            ids(due(&conn, NOW + 3_600_000, 10).unwrap()),
            [first.clone(), later.clone()]
        );
        assert_eq!(
            ids(due(&conn, NOW + 3_600_000, 1).unwrap()),
            [first.as_str()]
        );
        assert!(!ids(due(&conn, i64::MAX, 10).unwrap()).contains(&proposed));

        // Two failures in a row: the count goes up and the back-off holds it back.
        let blocked = CheckOutcome::Blocked {
            error: "Sign in to confirm you're not a bot".repeat(100),
        };
        let wait = backoff_delay_ms(1);
        assert!(record_check(&conn, &first, &blocked, NOW, NOW + wait).unwrap());
        assert!(record_check(&conn, &first, &blocked, NOW + wait, NOW + 3 * wait).unwrap());
        let s = get(&conn, &first).unwrap().unwrap();
        assert_eq!(
            (s.consecutive_failures, s.last_result.as_deref()),
            (2, Some("blocked"))
        );
        assert_eq!(s.last_error.unwrap().chars().count(), 1000);
        assert!(s.backoff_until.is_some());
        assert!(!ids(due(&conn, NOW + 2 * wait, 10).unwrap()).contains(&first));
        // Backing off even if something moved the next check earlier.
        conn.execute(
            "UPDATE youtube_subscriptions SET next_check_at = ?2 WHERE id = ?1",
            params![first, NOW],
        )
        .unwrap();
        assert!(!ids(due(&conn, NOW + 2 * wait, 10).unwrap()).contains(&first));
        assert!(ids(due(&conn, NOW + 3 * wait, 10).unwrap()).contains(&first));
        // A success clears it all.
        assert!(record_check(&conn, &first, &ok, NOW + 3 * wait, NOW + 4 * wait).unwrap());
        let s = get(&conn, &first).unwrap().unwrap();
        assert_eq!((s.consecutive_failures, s.backoff_until), (0, None));
        assert_eq!((s.last_error, s.last_new_items), (None, 2));
        // Resume lifts a back-off and makes it due now.
        assert!(record_check(&conn, &first, &blocked, NOW, NOW + 10 * wait).unwrap());
        assert!(resume(&conn, &first, NOW + 1).unwrap());
        assert!(ids(due(&conn, NOW + 1, 10).unwrap()).contains(&first));
        // A check that ends after a pause leaves it paused.
        assert!(record_check(&conn, &paused, &ok, NOW, NOW + 1).unwrap());
        let s = get(&conn, &paused).unwrap().unwrap();
        assert_eq!((s.status.as_str(), s.next_check_at), ("paused", None));
        assert!(!record_check(&conn, "nope", &ok, NOW, NOW).unwrap());
    }

    #[test]
    fn backoff_doubles_up_to_a_day() {
        assert_eq!(backoff_delay_ms(0), MIN_BACKOFF_MS);
        assert_eq!(backoff_delay_ms(1), MIN_BACKOFF_MS);
        assert_eq!(backoff_delay_ms(2), 2 * MIN_BACKOFF_MS);
        assert_eq!(backoff_delay_ms(4), 8 * MIN_BACKOFF_MS);
        assert_eq!(backoff_delay_ms(7), 64 * MIN_BACKOFF_MS);
        assert_eq!(backoff_delay_ms(8), MAX_BACKOFF_MS);
        assert_eq!(backoff_delay_ms(1000), MAX_BACKOFF_MS);
    }

    #[test]
    fn the_archive_never_takes_a_video_twice() {
        let (db, user) = db_with_user();
        let conn = db.connection_blocking().unwrap();
        let sub = subscribe(&conn, &user, "chan", "active");
        let other = subscribe(&conn, &user, "other", "active");
        let added = record_items(
            &conn,
            &sub,
            &[item("aaaaaaaaaaa"), item("bbbbbbbbbbb")],
            NOW,
        )
        .unwrap();
        assert_eq!(added, ["aaaaaaaaaaa", "bbbbbbbbbbb"]);
        // Pruned since: listing it again changes nothing.
        conn.execute(
            "UPDATE youtube_subscription_items SET status = 'pruned' WHERE video_id = 'aaaaaaaaaaa'",
            [],
        )
        .unwrap();
        let again = record_items(
            &conn,
            &sub,
            &[
                item("aaaaaaaaaaa"),
                item("ccccccccccc"),
                item("ccccccccccc"),
            ],
            NOW + 1,
        )
        .unwrap();
        assert_eq!(again, ["ccccccccccc"]);
        let status: String = conn
            .query_row(
                "SELECT status FROM youtube_subscription_items WHERE video_id = 'aaaaaaaaaaa'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(status, "pruned");
        // Only the asked ids come back, in batches of any length (here more than one batch).
        let mut asked: Vec<String> = (0..150).map(|i| format!("zz{i:09}")).collect();
        asked.insert(70, "ccccccccccc".into());
        asked.push("aaaaaaaaaaa".into());
        asked.push("aaaaaaaaaaa".into());
        let ids = archived_among(&conn, &sub, &asked).unwrap();
        assert_eq!(
            ids,
            HashSet::from(["aaaaaaaaaaa".to_owned(), "ccccccccccc".to_owned()])
        );
        let one = archived_among(&conn, &sub, &["bbbbbbbbbbb".to_owned()]).unwrap();
        assert_eq!(one.len(), 1);
        assert!(archived_among(&conn, &sub, &[]).unwrap().is_empty());
        assert!(
            archived_among(&conn, &other, &["bbbbbbbbbbb".to_owned()])
                .unwrap()
                .is_empty(),
            "another subscription's archive"
        );
        assert!(is_archived(&conn, &sub, "bbbbbbbbbbb").unwrap());
        assert!(!is_archived(&conn, &other, "bbbbbbbbbbb").unwrap());
        // Another subscription has its own archive.
        assert_eq!(
            record_items(&conn, &other, &[item("aaaaaaaaaaa")], NOW).unwrap(),
            ["aaaaaaaaaaa"]
        );
        assert_eq!(get(&conn, &sub).unwrap().unwrap().item_count, 3);
        // A bad row is an error, not silently dropped.
        let mut bad = item("ddddddddddd");
        bad.status = "lost".into();
        assert!(record_items(&conn, &sub, &[bad], NOW).is_err());
        // Newest first, paged.
        let page = items(&conn, &sub, (i64::MAX, ""), 2).unwrap();
        assert_eq!(page[0].video_id, "ccccccccccc");
        let rest = items(&conn, &sub, (page[1].created_at_ms, &page[1].id), 2).unwrap();
        assert_eq!(rest.len(), 1);
    }

    #[test]
    fn queries_use_indexes() {
        let (db, user) = db_with_user();
        let mut conn = db.connection_blocking().unwrap();
        let tx = conn.transaction().unwrap();
        other_users(&tx);
        for i in 0..50 {
            let sub = subscribe(&tx, &user, &format!("chan{i}"), "active");
            let batch: Vec<NewItem> = (0..40).map(|j| item(&format!("v{i:04}x{j:05}"))).collect();
            record_items(&tx, &sub, &batch, NOW).unwrap();
        }
        tx.commit().unwrap();
        // With statistics too, as after the ANALYZE on migration and shutdown.
        conn.execute_batch("ANALYZE").unwrap();
        let statements = [
            select_subscriptions(
                "WHERE s.status = 'active' AND s.next_check_at <= ?1
                   AND (s.backoff_until IS NULL OR s.backoff_until <= ?1)
                 ORDER BY s.next_check_at LIMIT ?2",
            ),
            archived_among_sql().into(),
            "SELECT min(next_check_at) FROM youtube_subscriptions WHERE status = 'active'".into(),
            "SELECT 1 FROM youtube_subscription_items WHERE subscription_id = ?1 AND video_id = ?2"
                .into(),
            format!(
                "SELECT {ITEM_COLUMNS} FROM youtube_subscription_items
                  WHERE subscription_id = ?1 AND (created_at, id) < (?2, ?3)
                  ORDER BY created_at DESC, id DESC LIMIT ?4"
            ),
            "SELECT count(*) FROM youtube_subscriptions
              WHERE user_id = ?1 AND status IN ('active', 'proposed', 'paused')"
                .into(),
            "SELECT id, status FROM youtube_subscriptions WHERE url = ?1 AND status <> 'declined'"
                .into(),
            select_subscriptions(
                "WHERE s.user_id = ?4 AND (?5 IS NULL OR s.status = ?5)
                   AND (s.created_at, s.id) < (?1, ?2) ORDER BY s.created_at DESC, s.id DESC LIMIT ?3",
            ),
            select_subscriptions(
                "WHERE s.status = ?4 AND ?5 IS NULL
                   AND (s.created_at, s.id) < (?1, ?2) ORDER BY s.created_at DESC, s.id DESC LIMIT ?3",
            ),
            select_subscriptions(
                "WHERE ?4 IS NULL AND ?5 IS NULL
                   AND (s.created_at, s.id) < (?1, ?2) ORDER BY s.created_at DESC, s.id DESC LIMIT ?3",
            ),
            "SELECT id FROM youtube_subscriptions WHERE profile_id = ?1 LIMIT 10".into(),
        ];
        for sql in statements {
            crate::db::assert_indexed(&conn, &sql);
        }
    }

    /// Statements seen by the traced connection of `a_scheduler_pass_searches_indexes_only` (a
    /// plain `fn` callback, hence a static).
    static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    fn record(sql: &str) {
        SEEN.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(sql.to_owned());
    }

    /// Every statement of a scheduler pass (what is due, when next, which listed ids are
    /// archived, the new rows, the outcome, the items pages), recorded by SQLite's trace hook as
    /// run, with and without statistics: none scans a table or sorts, each searches an index.
    #[test]
    fn a_scheduler_pass_searches_indexes_only() {
        let (db, user) = db_with_user();
        let mut conn = db.connection_blocking().unwrap();
        let tx = conn.transaction().unwrap();
        other_users(&tx);
        let mut subs = Vec::new();
        for i in 0..60 {
            let sub = subscribe(&tx, &user, &format!("chan{i}"), "active");
            let batch: Vec<NewItem> = (0..250).map(|j| item(&format!("v{i:04}x{j:05}"))).collect();
            record_items(&tx, &sub, &batch, NOW).unwrap();
            // A third not due for a day, some paused: the due index has something to pass over.
            match i % 6 {
                0 | 1 => {
                    let ok = CheckOutcome::Ok { new_items: 0 };
                    record_check(&tx, &sub, &ok, NOW, NOW + 86_400_000).unwrap();
                }
                2 => assert!(pause(&tx, &sub, NOW).unwrap()),
                _ => subs.push((i, sub)),
            }
        }
        tx.commit().unwrap();
        let ok = CheckOutcome::Ok { new_items: 25 };
        for analyzed in [false, true] {
            if analyzed {
                // As after the ANALYZE on migration and shutdown.
                conn.execute_batch("ANALYZE").unwrap();
                crate::db::keep_plans_stable(&conn).unwrap();
            }
            #[allow(deprecated)] // trace_v2 gives no expanded SQL; the legacy hook does.
            conn.trace(Some(record));
            let due_now = due(&conn, NOW, 32).unwrap();
            assert_eq!(due_now.len(), subs.len());
            assert_eq!(next_check_at(&conn).unwrap(), Some(NOW));
            for (n, (i, sub)) in subs.iter().enumerate().take(3) {
                assert!(due_now.iter().any(|s| &s.id == sub));
                // Half archived, half new.
                let listing: Vec<String> = (0..50)
                    .map(|j| {
                        let k = u8::from(analyzed);
                        if j % 2 == 0 {
                            format!("v{i:04}x{j:05}")
                        } else {
                            format!("n{k}{n:03}y{j:05}")
                        }
                    })
                    .collect();
                let archived = archived_among(&conn, sub, &listing).unwrap();
                assert_eq!(archived.len(), 25);
                let new: Vec<NewItem> = listing
                    .iter()
                    .filter(|id| !archived.contains(*id))
                    .map(|id| item(id))
                    .collect();
                let tx = conn.transaction().unwrap();
                assert_eq!(record_items(&tx, sub, &new, NOW).unwrap().len(), 25);
                assert!(record_check(&tx, sub, &ok, NOW, NOW + 3_600_000).unwrap());
                tx.commit().unwrap();
                let page = items(&conn, sub, (i64::MAX, ""), 50).unwrap();
                let last = page.last().unwrap();
                items(&conn, sub, (last.created_at_ms, &last.id), 50).unwrap();
            }
            #[allow(deprecated)]
            conn.trace(None);
            // The next pass starts from the same state.
            conn.execute(
                "UPDATE youtube_subscriptions SET next_check_at = ?1
                  WHERE status = 'active' AND next_check_at = ?2",
                params![NOW, NOW + 3_600_000],
            )
            .unwrap();
        }
        let seen: std::collections::BTreeSet<String> = SEEN
            .lock()
            .unwrap()
            .iter()
            .filter(|sql| sql.contains("youtube_subscription"))
            .cloned()
            .collect();
        for part in [
            "ORDER BY s.next_check_at",
            "min(next_check_at)",
            "video_id IN (",
            "INSERT INTO youtube_subscription_items",
            "item_count = item_count +",
            "SET last_check_at",
            "ORDER BY created_at DESC",
        ] {
            assert!(seen.iter().any(|s| s.contains(part)), "{part} not run");
        }
        let mut failures = Vec::new();
        for sql in &seen {
            let plan = crate::db::query_plan(&conn, sql);
            let searches = plan.iter().any(|line| line.starts_with("SEARCH"));
            let reads = !sql.trim_start().starts_with("INSERT");
            let bad = plan.iter().any(|line| {
                line.starts_with("SCAN")
                    || line.contains("TEMP B-TREE")
                    || (line.starts_with("SEARCH")
                        && !line.contains("INDEX")
                        && !line.contains("PRIMARY KEY"))
            });
            if bad || (reads && !searches) {
                failures.push(format!("{sql}\n    {}", plan.join("\n    ")));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }
}
