//! The schema on a fresh file database: every index SPEC section 5 lists, and migrations that
//! are a no-op the second time.

use std::path::Path;

use medianest::db::{Db, migrations};
use rusqlite::Connection;

/// One index of SPEC section 5: its table, leading columns, and whether it is unique or partial.
struct Wanted {
    table: &'static str,
    columns: &'static [&'static str],
    unique: bool,
    /// `Some(column)` for `WHERE column IS NOT NULL`.
    partial_not_null: Option<&'static str>,
}

const fn idx(table: &'static str, columns: &'static [&'static str]) -> Wanted {
    Wanted {
        table,
        columns,
        unique: false,
        partial_not_null: None,
    }
}

const fn unique(table: &'static str, columns: &'static [&'static str]) -> Wanted {
    Wanted {
        table,
        columns,
        unique: true,
        partial_not_null: None,
    }
}

const fn partial(table: &'static str, columns: &'static [&'static str], unique: bool) -> Wanted {
    Wanted {
        table,
        columns,
        unique,
        partial_not_null: Some(columns[0]),
    }
}

/// SPEC section 5, "Indexes", line by line.
const WANTED: &[Wanted] = &[
    unique("users", &["username"]),
    unique("users", &["email"]),
    partial("users", &["plex_id"], true),
    idx("users", &["status", "created_at"]),
    partial("users", &["last_login_at"], false),
    idx("media_requests", &["user_id", "created_at"]),
    idx("media_requests", &["user_id", "status"]),
    idx("media_requests", &["status", "created_at"]),
    idx("media_requests", &["media_type", "status"]),
    idx("media_requests", &["tmdb_id", "media_type"]),
    idx("media_requests", &["created_at"]),
    partial("media_requests", &["overseerr_id"], false),
    idx("youtube_downloads", &["user_id", "status"]),
    idx("youtube_downloads", &["user_id", "created_at"]),
    idx("youtube_downloads", &["status", "created_at"]),
    idx("youtube_downloads", &["url"]),
    unique("session_tokens", &["token_hash"]),
    idx("session_tokens", &["user_id", "expires_at"]),
    idx("session_tokens", &["expires_at"]),
    idx("rate_limits", &["key", "endpoint", "window_start"]),
    idx("rate_limits", &["window_start"]),
    unique("service_status", &["service_name"]),
    idx("service_status", &["last_check_at"]),
    unique("service_config", &["service_name"]),
    idx("service_config", &["enabled", "updated_at"]),
    idx(
        "service_metrics",
        &["service_name", "metric_name", "timestamp"],
    ),
    idx("service_metrics", &["timestamp"]),
    idx("service_incidents", &["service_name", "status"]),
    idx("service_incidents", &["created_at"]),
    unique("request_followers", &["request_id", "user_id"]),
    idx("request_followers", &["user_id"]),
    idx("notifications", &["user_id", "read", "created_at"]),
    idx("notifications", &["created_at"]),
    idx("error_logs", &["correlation_id"]),
    idx("error_logs", &["created_at"]),
    idx("error_logs", &["user_id"]),
];

/// An index as SQLite reports it.
#[derive(Debug)]
struct Found {
    name: String,
    columns: Vec<String>,
    unique: bool,
    partial: bool,
    sql: Option<String>,
}

fn indexes(conn: &Connection, table: &str) -> Vec<Found> {
    let mut list = conn
        .prepare("SELECT name, \"unique\", partial FROM pragma_index_list(?1)")
        .unwrap();
    let rows: Vec<(String, bool, bool)> = list
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows.into_iter()
        .map(|(name, unique, partial)| {
            let mut info = conn
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .unwrap();
            let columns = info
                .query_map([&name], |r| r.get::<_, Option<String>>(0))
                .unwrap()
                .map(|c| c.unwrap().unwrap_or_default())
                .collect();
            let sql = conn
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1",
                    [&name],
                    |r| r.get(0),
                )
                .unwrap_or(None);
            Found {
                name,
                columns,
                unique,
                partial,
                sql,
            }
        })
        .collect()
}

fn squash(sql: &str) -> String {
    sql.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

fn satisfies(found: &Found, wanted: &Wanted) -> bool {
    let leading = found.columns.len() >= wanted.columns.len()
        && found
            .columns
            .iter()
            .zip(wanted.columns)
            .all(|(f, w)| f.eq_ignore_ascii_case(w));
    let predicate = match wanted.partial_not_null {
        None => !found.partial,
        Some(column) => {
            found.partial
                && found
                    .sql
                    .as_deref()
                    .is_some_and(|sql| squash(sql).contains(&format!("where {column} is not null")))
        }
    };
    // A unique index is exactly its columns; a plain one may be wider (keyset tie-breakers).
    let unique = !wanted.unique || (found.unique && found.columns.len() == wanted.columns.len());
    leading && predicate && unique
}

#[test]
fn every_index_of_the_spec_exists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("schema.db");
    let db = Db::open_file(&path, 1).unwrap();
    drop(db);
    let conn = Connection::open(&path).unwrap();
    let mut missing = Vec::new();
    for wanted in WANTED {
        let found = indexes(&conn, wanted.table);
        assert!(
            !found.is_empty(),
            "table {} has no indexes at all",
            wanted.table
        );
        if !found.iter().any(|f| satisfies(f, wanted)) {
            missing.push(format!(
                "{}({}){}{} -- have: {:?}",
                wanted.table,
                wanted.columns.join(", "),
                if wanted.unique { " UNIQUE" } else { "" },
                wanted
                    .partial_not_null
                    .map(|c| format!(" WHERE {c} IS NOT NULL"))
                    .unwrap_or_default(),
                found
                    .iter()
                    .map(|f| format!("{} {:?}", f.name, f.columns))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "missing indexes:\n{}",
        missing.join("\n")
    );
}

fn schema_of(path: &Path) -> (i64, Vec<(String, String, String)>) {
    let conn = Connection::open(path).unwrap();
    let version = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let mut stmt = conn
        .prepare("SELECT type, name, ifnull(sql, '') FROM sqlite_master ORDER BY type, name")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (version, rows)
}

#[test]
fn migrating_twice_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twice.db");

    let first = Db::open_file(&path, 2).unwrap();
    let applied = first.migrate_blocking().unwrap();
    assert_eq!(applied.from, applied.to, "already migrated by open_file");
    drop(first);
    let (version, before) = schema_of(&path);
    assert_eq!(version, migrations::latest_version());
    assert!(version >= 1);
    assert!(
        before
            .iter()
            .any(|(kind, name, _)| kind == "table" && name == "users"),
        "the schema was created: {before:?}"
    );

    let second = Db::open_file(&path, 2).unwrap();
    drop(second);
    let (version_again, after) = schema_of(&path);
    assert_eq!(version_again, version);
    assert_eq!(after, before);
}
