//! The SQLite database: the pool, the pragmas (set here and nowhere else), the embedded migrations
//! and [`Db::run`], the one way async code does blocking database work.
//!
//! `run` takes a permit sized to the pool before it goes to the blocking pool, so a flood of
//! requests queues here instead of filling the blocking pool with threads waiting for a
//! connection. A pooled connection never lives across an `.await`.

pub mod migrations;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use r2d2::{CustomizeConnection, Pool};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// How long a connection waits on a lock held by another before giving up (SQLITE_BUSY).
const BUSY_TIMEOUT_MS: u64 = 5000;

/// Where the database lives.
#[derive(Debug, Clone)]
pub enum Location {
    /// A file (production): WAL journal.
    File(PathBuf),
    /// A named shared-cache in-memory database (tests): every connection of the pool sees the
    /// same data, unlike a pool over plain `:memory:`.
    Memory(String),
}

/// The connection pool and its gate.
#[derive(Clone)]
pub struct Db {
    pool: Pool<SqliteConnectionManager>,
    permits: Arc<Semaphore>,
    writer: Arc<Semaphore>,
    location: Arc<Location>,
    wait_micros: Arc<AtomicU64>,
    pool_size: u32,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("location", &self.location)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// Pool statistics for `/admin/performance` and `/metrics`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolStats {
    pub pool_size: u32,
    pub connections: u32,
    pub idle: u32,
    /// Total time callers waited for a permit, in ms.
    pub wait_ms: u64,
}

#[derive(Debug)]
struct Pragmas {
    file: bool,
}

impl CustomizeConnection<Connection, rusqlite::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut Connection) -> Result<(), rusqlite::Error> {
        // WAL lets readers run beside the one writer; it is a property of the file, so it is set
        // once (here, harmlessly again per connection). NORMAL is durable against process crashes
        // in WAL mode; only a power loss can drop the last commits.
        if self.file {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(())
    }
}

impl Db {
    /// Opens the pool (creating the file) without migrating.
    pub fn open(location: Location, pool_size: u32) -> AppResult<Self> {
        let (manager, file) = match &location {
            Location::File(path) => (SqliteConnectionManager::file(path), true),
            Location::Memory(name) => (
                SqliteConnectionManager::file(format!("file:{name}?mode=memory&cache=shared"))
                    .with_flags(
                        OpenFlags::SQLITE_OPEN_READ_WRITE
                            | OpenFlags::SQLITE_OPEN_CREATE
                            | OpenFlags::SQLITE_OPEN_URI
                            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    ),
                false,
            ),
        };
        let pool = Pool::builder()
            .max_size(pool_size)
            // A shared-cache memory database lives as long as one connection to it does.
            .min_idle(Some(1))
            .idle_timeout(if file {
                Some(Duration::from_secs(600))
            } else {
                None
            })
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(10))
            .connection_customizer(Box::new(Pragmas { file }))
            .build(manager)
            .map_err(|e| AppError::internal(format!("open database: {e}")))?;
        Ok(Self {
            pool,
            permits: Arc::new(Semaphore::new(pool_size as usize)),
            writer: Arc::new(Semaphore::new(1)),
            location: Arc::new(location),
            wait_micros: Arc::new(AtomicU64::new(0)),
            pool_size,
        })
    }

    /// Opens the database file and applies pending migrations.
    pub fn open_file(path: &Path, pool_size: u32) -> AppResult<Self> {
        let db = Self::open(Location::File(path.to_path_buf()), pool_size)?;
        db.migrate_blocking()?;
        Ok(db)
    }

    /// A fresh, migrated, shared-cache in-memory database with a unique name; for tests.
    pub fn open_memory() -> AppResult<Self> {
        let name = format!("medianest-{}", uuid::Uuid::new_v4().simple());
        let db = Self::open(Location::Memory(name), 4)?;
        db.migrate_blocking()?;
        Ok(db)
    }

    /// Applies pending migrations; call before the listener opens (blocking).
    pub fn migrate_blocking(&self) -> AppResult<migrations::Applied> {
        let mut conn = self.pool.get()?;
        let applied = migrations::apply(&mut conn)?;
        conn.execute_batch("PRAGMA optimize;")?;
        keep_plans_stable(&conn)?;
        Ok(applied)
    }

    /// A pooled connection for blocking code outside the runtime (start-up, CLI commands).
    pub fn connection_blocking(
        &self,
    ) -> AppResult<r2d2::PooledConnection<SqliteConnectionManager>> {
        Ok(self.pool.get()?)
    }

    /// Where the database is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Runs blocking database work on the blocking pool with a pooled connection.
    ///
    /// The current tracing span goes along, and a panic inside `f` is re-raised here so the
    /// request's panic handler turns it into a 500.
    pub async fn run<F, T>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&mut Connection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let started = Instant::now();
        let pool = self.pool.clone();
        let wait = self.wait_micros.clone();
        crate::blocking::run_gated(&self.permits, move || {
            note_wait(&wait, started);
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
    }

    /// Runs a short read on the calling thread when a pooled connection is idle right now, else
    /// like [`run`](Self::run).
    ///
    /// For bounded, index-driven reads only (a page of a list, a lookup by key): they take tens
    /// of microseconds from the page cache, less than the hand-off to the blocking pool and back
    /// costs (two thread wake-ups). Anything that may scan, wait for a lock or write uses `run`.
    pub async fn read<F, T>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&Connection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        match self.pool.try_get() {
            Some(conn) => f(&conn),
            None => self.run(move |conn| f(conn)).await,
        }
    }

    /// Runs `f` in an IMMEDIATE transaction and commits when it returns `Ok`.
    ///
    /// Writers take turns in-process first (SQLite has one writer at a time anyway): queueing on
    /// a semaphore is cheaper and fairer than spinning in SQLite's busy handler.
    pub async fn write<F, T>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&Transaction<'_>) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let turn = self
            .writer
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::internal("database closed"))?;
        self.run(move |conn| {
            let _turn = turn;
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// Pool figures.
    pub fn stats(&self) -> PoolStats {
        let state = self.pool.state();
        PoolStats {
            pool_size: self.pool_size,
            connections: state.connections,
            idle: state.idle_connections,
            wait_ms: self.wait_micros.load(Ordering::Relaxed) / 1000,
        }
    }

    /// A cheap read that proves the database answers and is migrated: the schema version.
    pub async fn ping(&self) -> AppResult<i64> {
        self.run(|conn| {
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version < migrations::latest_version() {
                return Err(AppError::internal(format!(
                    "schema version {version} is older than {}",
                    migrations::latest_version()
                )));
            }
            Ok(version)
        })
        .await
    }

    /// Sizes of the database file and its WAL, in bytes (0 for memory databases).
    pub fn file_sizes(&self) -> (u64, u64) {
        match self.location.as_ref() {
            Location::File(path) => {
                let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                (size(path), size(Path::new(&wal)))
            }
            Location::Memory(_) => (0, 0),
        }
    }

    /// On shutdown: refreshes the planner statistics and, with `checkpoint`
    /// (`database.checkpoint_on_exit`), folds the WAL into the database file and truncates it.
    /// Without it the checkpoints are SQLite's own (and Litestream's, which wants to run them).
    pub fn close_blocking(&self, checkpoint: bool) -> AppResult<()> {
        let conn = self.pool.get()?;
        conn.execute_batch("PRAGMA optimize;")?;
        keep_plans_stable(&conn)?;
        if checkpoint && matches!(self.location.as_ref(), Location::File(_)) {
            let (busy, _, _): (i64, i64, i64) =
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            if busy != 0 {
                tracing::warn!("WAL checkpoint could not complete; it will finish on next start");
            }
        }
        Ok(())
    }
}

/// Adds the time a job waited for its permit to the pool's wait counter.
fn note_wait(total_micros: &AtomicU64, started: Instant) {
    let waited = started.elapsed();
    if waited > Duration::from_micros(50) {
        total_micros.fetch_add(
            u64::try_from(waited.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

/// Writes a consistent copy of the database at `source` to `target` with `VACUUM INTO`.
///
/// Safe while the server runs: it is one read transaction, so it sees one committed state and
/// never blocks the writer. The copy is written beside the target and renamed into place, so a
/// failed backup leaves no half-written file under the target's name.
pub fn backup_file(source: &Path, target: &Path, overwrite: bool) -> AppResult<u64> {
    if !source.is_file() {
        return Err(AppError::internal(format!(
            "no database at {}",
            source.display()
        )));
    }
    if target.exists() && !overwrite {
        return Err(AppError::internal(format!(
            "{} already exists (use --force to replace it)",
            target.display()
        )));
    }
    let conn = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    backup_connection(&conn, target)
}

/// The one way a backup is written, from an open connection (`medianest backup`, the scheduled
/// and pre-migration backups, `GET /admin/backup`): `VACUUM INTO` a temporary file beside
/// `target` (`.<name>.<random>.partial`), `PRAGMA integrity_check` on it, fsync, rename to
/// `target`, fsync of the directory. On any failure the temporary file is removed, so nothing
/// half-written is ever left under the target's name.
pub fn backup_connection(conn: &Connection, target: &Path) -> AppResult<u64> {
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup.db".into());
    let temp = target.with_file_name(format!(
        ".{file_name}.{}.partial",
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let temp_str = temp
            .to_str()
            .ok_or_else(|| AppError::internal("backup path is not UTF-8"))?;
        conn.execute("VACUUM INTO ?1", [temp_str])
            .map_err(|e| AppError::internal(format!("VACUUM INTO {}: {e}", temp.display())))?;
        check_file(&temp).map_err(|e| AppError::internal(format!("the copy: {e}")))?;
        std::fs::File::open(&temp)
            .and_then(|f| f.sync_all())
            .map_err(|e| AppError::internal(format!("fsync {}: {e}", temp.display())))?;
        std::fs::rename(&temp, target)
            .map_err(|e| AppError::internal(format!("rename backup to {}: {e}", target.display())))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    if let Some(dir) = target.parent() {
        sync_dir(dir);
    }
    Ok(std::fs::metadata(target).map(|m| m.len()).unwrap_or(0))
}

/// Opens the database file at `path` read-only: `Ok(schema version)` when `PRAGMA
/// integrity_check` says "ok", else what it found.
pub fn check_file(path: &Path) -> Result<i64, String> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    let verdict: Vec<String> = conn
        .prepare("PRAGMA integrity_check(5)")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()
        })
        .map_err(|e| e.to_string())?;
    if verdict != ["ok"] {
        return Err(format!("integrity check failed: {}", verdict.join("; ")));
    }
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())
}

/// Flushes a directory's entries (a rename in it) to disk; best effort where unsupported.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// `EXPLAIN QUERY PLAN` of `sql`, one line per step; its parameters are bound to a placeholder
/// (a plan does not depend on the values).
#[cfg(test)]
pub(crate) fn query_plan(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let params = vec!["x"; stmt.parameter_count()];
    stmt.query_map(rusqlite::params_from_iter(params), |r| {
        r.get::<_, String>(3)
    })
    .and_then(Iterator::collect)
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The plan of `sql`, after checking it scans no table, sorts nothing in a temporary B-tree and
/// searches only through an index.
#[cfg(test)]
pub(crate) fn assert_indexed(conn: &Connection, sql: &str) -> Vec<String> {
    let lines = query_plan(conn, sql);
    assert!(!lines.is_empty(), "{sql}");
    for line in &lines {
        assert!(!line.starts_with("SCAN"), "{sql}: {lines:?}");
        assert!(!line.contains("TEMP B-TREE"), "{sql}: {lines:?}");
        if line.starts_with("SEARCH") {
            assert!(line.contains("INDEX"), "{sql}: {lines:?}");
        }
    }
    lines
}

/// Keeps `sqlite_stat1` (row counts per index, which choose the plans) and empties
/// `sqlite_stat4` (sampled key values), then makes the connection reload the statistics.
///
/// With STAT4 samples, every statement whose plan looked at a bound parameter (an `=` on an
/// indexed column, a range) is marked to be re-prepared whenever that parameter is bound again:
/// every execution re-parsed and re-planned its SQL, which cost about a third of the CPU of a
/// request list. The lists name their index, so the samples buy nothing there.
pub fn keep_plans_stable(conn: &Connection) -> AppResult<()> {
    let has_stat4: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat4')",
        [],
        |r| r.get(0),
    )?;
    if has_stat4 {
        conn.execute_batch("DELETE FROM sqlite_stat4; ANALYZE sqlite_schema;")?;
    }
    Ok(())
}

/// `q` as a LIKE pattern (with `ESCAPE '\'`) matching it anywhere: `%`, `_` and `\` in it
/// match themselves.
pub fn contains_pattern(q: &str) -> String {
    let mut pattern = String::with_capacity(q.len() + 2);
    pattern.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// How often a statement filtering on an indexed column is re-prepared over 5 runs with
    /// new parameters, after `ANALYZE` (and `keep_plans_stable` when `stable`).
    fn reprepares(stable: bool) -> i32 {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (user TEXT, at INTEGER);
             CREATE INDEX t_user_at ON t (user, at);",
        )
        .unwrap();
        for i in 0..2000 {
            conn.execute(
                "INSERT INTO t VALUES (?1, ?2)",
                rusqlite::params![format!("u{}", i % 50), i],
            )
            .unwrap();
        }
        conn.execute_batch("ANALYZE").unwrap();
        if stable {
            keep_plans_stable(&conn).unwrap();
        }
        let mut stmt = conn
            .prepare("SELECT at FROM t WHERE user = ?1 AND at < ?2 ORDER BY at DESC LIMIT 5")
            .unwrap();
        for i in 0..5 {
            let rows: Vec<i64> = stmt
                .query_map(rusqlite::params![format!("u{i}"), 1000 + i], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(rows.len(), 5);
        }
        stmt.get_status(rusqlite::StatementStatus::RePrepare)
    }

    #[test]
    fn statements_are_not_re_prepared_on_every_binding() {
        assert!(
            reprepares(false) > 0,
            "STAT4 samples make SQLite re-prepare"
        );
        assert_eq!(reprepares(true), 0);
    }

    #[tokio::test]
    async fn memory_databases_share_data_across_connections() {
        let db = Db::open_memory().unwrap();
        db.write(|tx| {
            tx.execute("INSERT INTO settings (key, value) VALUES ('a', 'b')", [])?;
            Ok(())
        })
        .await
        .unwrap();
        // Hold one connection while reading on others: all see the row.
        let mut handles = Vec::new();
        for _ in 0..4 {
            let db = db.clone();
            handles.push(tokio::spawn(async move {
                db.run(|c| {
                    Ok(c.query_row("SELECT value FROM settings", [], |r| r.get::<_, String>(0))?)
                })
                .await
                .unwrap()
            }));
        }
        for h in handles {
            assert_eq!(h.await.unwrap(), "b");
        }
    }

    #[tokio::test]
    async fn pragmas_are_set_on_every_connection() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_file(&dir.path().join("t.db"), 2).unwrap();
        let (mode, fk, sync, busy): (String, i64, i64, i64) = db
            .run(|c| {
                Ok((
                    c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                    c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?,
                    c.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                    c.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(fk, 1);
        assert_eq!(sync, 1, "NORMAL");
        assert_eq!(busy, 5000);
    }

    #[tokio::test]
    async fn a_panic_in_run_is_re_raised() {
        let db = Db::open_memory().unwrap();
        let task = tokio::spawn(async move {
            db.run(|_| -> AppResult<()> { panic!("boom in the blocking pool") })
                .await
        });
        let err = task.await.unwrap_err();
        assert!(err.is_panic());
    }

    #[tokio::test]
    async fn a_failed_write_rolls_back() {
        let db = Db::open_memory().unwrap();
        let r = db
            .write(|tx| {
                tx.execute("INSERT INTO settings (key, value) VALUES ('x', '1')", [])?;
                Err::<(), _>(AppError::internal("changed my mind"))
            })
            .await;
        assert!(r.is_err());
        let n: i64 = db
            .run(|c| Ok(c.query_row("SELECT count(*) FROM settings", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn backup_refuses_to_overwrite_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("s.db");
        Db::open_file(&src, 1).unwrap();
        let dst = dir.path().join("b.db");
        backup_file(&src, &dst, false).unwrap();
        assert!(backup_file(&src, &dst, false).is_err());
        backup_file(&src, &dst, true).unwrap();
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
