//! `cargo bench --bench subscriptions`: one subscription scheduler pass over a large archive.
//!
//! A WAL database file in a temp dir with the migrations, `BENCH_SUBS` (200) active
//! subscriptions all due, each with `BENCH_ARCHIVE` (5,000) archived videos (random 11-character
//! ids, like YouTube's), statistics as after a restart (ANALYZE, then `keep_plans_stable`). One
//! pass is what the scheduler decides on the database: what is due (`store::due`, here with a
//! limit taking every subscription, where the scheduler takes 32 at a time), and for each due
//! subscription which ids of a listing of 50 (the 25 newest archived, 25 new) are archived,
//! then when to wake next (`store::next_check_at`). The listing itself (yt-dlp) and the writes
//! for new items are not part of it.
//!
//! Three ways to answer "which are archived" are timed on the same data: `store::archived_among`
//! (batched `IN (...)`, what the scheduler uses), one `store::is_archived` probe per id, and the
//! old way, the whole archive of the subscription read into a set; a pass with no archive
//! lookups at all shows what deciding what is due costs by itself. Each pass is timed on the
//! wall clock and in process CPU time (`clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`, the same
//! per-thread runtime sum `getrusage` reports, in nanoseconds); the mean from `/proc/self/stat`
//! (10 ms ticks) over all passes is printed as a cross-check. One pass per way runs first
//! untimed (a server's connections have the pages cached).
//!
//! Settings: `BENCH_PASSES` (30), `BENCH_SUBS` (200), `BENCH_ARCHIVE` (5000). Everything runs on
//! this thread with one pooled connection; nothing leaves the process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use medianest::db::Db;
use medianest::youtube::subscriptions::store;
use rand::Rng;
use rusqlite::{Connection, params};

/// The scheduler's listing: the newest 50 of a tab.
const LISTING: usize = 50;
const NOW: i64 = 1_750_000_000_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A random YouTube-like video id.
fn video_id(rng: &mut impl Rng) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..11)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// The subscriptions and their archives in one transaction; answers each subscription's
/// listing (25 archived, 25 new).
fn seed(conn: &mut Connection, subs: usize, archive: usize) -> HashMap<String, Vec<String>> {
    let mut rng = rand::rng();
    let tx = conn.transaction().unwrap();
    tx.execute(
        "INSERT INTO users (id, username, role, status, created_at)
         VALUES ('owner', 'owner', 'admin', 'active', 0)",
        [],
    )
    .unwrap();
    let mut listings = HashMap::with_capacity(subs);
    {
        let mut sub_stmt = tx
            .prepare(
                "INSERT INTO youtube_subscriptions (id, user_id, url, kind, source_id, status,
                     next_check_at, item_count, created_at, updated_at)
                 VALUES (?1, 'owner', ?2, 'channel', ?3, 'active', ?4, ?5, ?6, ?6)",
            )
            .unwrap();
        let mut item_stmt = tx
            .prepare(
                "INSERT INTO youtube_subscription_items (id, subscription_id, video_id, status,
                     title, upload_date, file_paths, bytes, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'downloaded', ?4, '2025-06-01', '[]', 1000000, ?5, ?5)",
            )
            .unwrap();
        for s in 0..subs {
            let id = uuid::Uuid::now_v7().to_string();
            let created = NOW - 86_400_000;
            sub_stmt
                .execute(params![
                    id,
                    format!("https://www.youtube.com/@channel{s}"),
                    format!("@channel{s}"),
                    // Overdue by up to a minute, in a spread.
                    NOW - i64::try_from(s).unwrap() * 300,
                    i64::try_from(archive).unwrap(),
                    created
                ])
                .unwrap();
            let mut newest = Vec::with_capacity(LISTING / 2);
            for j in 0..archive {
                let video = video_id(&mut rng);
                item_stmt
                    .execute(params![
                        uuid::Uuid::now_v7().to_string(),
                        id,
                        video,
                        format!("Video {j} of channel {s}"),
                        created + i64::try_from(j).unwrap()
                    ])
                    .unwrap();
                if j >= archive - LISTING / 2 {
                    newest.push(video);
                }
            }
            // Newest first, as yt-dlp lists, new ones interleaved with archived ones.
            let mut listing = Vec::with_capacity(LISTING);
            for old in newest.into_iter().rev() {
                listing.push(video_id(&mut rng));
                listing.push(old);
            }
            listings.insert(id, listing);
        }
    }
    tx.commit().unwrap();
    listings
}

/// How one pass answers "which of these are archived".
#[derive(Clone, Copy)]
enum Way {
    /// `due` and `next_check_at` alone: what the rest adds is the archive.
    DueOnly,
    Among,
    Probe,
    WholeArchive,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Self::DueOnly => "`due` + `next_check_at` only (no archive lookups)",
            Self::Among => "`archived_among` (one batched IN per listing)",
            Self::Probe => "`is_archived` per listed id (50 probes)",
            Self::WholeArchive => "before: whole archive into a set (`archived_ids`)",
        }
    }

    fn archived(self, conn: &Connection, sub: &str, listing: &[String]) -> usize {
        match self {
            Self::DueOnly => LISTING / 2,
            Self::Among => store::archived_among(conn, sub, listing).unwrap().len(),
            Self::Probe => listing
                .iter()
                .filter(|id| store::is_archived(conn, sub, id).unwrap())
                .count(),
            Self::WholeArchive => {
                // The query `store::archived_ids` ran before `archived_among` replaced it.
                let all: HashSet<String> = conn
                    .prepare_cached(
                        "SELECT video_id FROM youtube_subscription_items WHERE subscription_id = ?1",
                    )
                    .unwrap()
                    .query_map([sub], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                listing.iter().filter(|id| all.contains(*id)).count()
            }
        }
    }
}

/// One pass; answers how many subscriptions were due.
fn pass(conn: &Connection, way: Way, listings: &HashMap<String, Vec<String>>) -> usize {
    let limit = u32::try_from(listings.len()).unwrap();
    let due = store::due(conn, NOW, limit).unwrap();
    for sub in &due {
        let listing = &listings[&sub.id];
        assert_eq!(way.archived(conn, &sub.id, listing), LISTING / 2);
    }
    assert!(store::next_check_at(conn).unwrap().is_some());
    due.len()
}

fn cpu_now() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap(),
        u32::try_from(t.tv_nsec).unwrap(),
    )
}

/// utime + stime of this process from `/proc/self/stat`, in ticks of 10 ms (USER_HZ = 100).
fn stat_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces), from field 3 on.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let passes = env_usize("BENCH_PASSES", 30).max(1);
    let subs = env_usize("BENCH_SUBS", 200);
    let archive = env_usize("BENCH_ARCHIVE", 5000).max(LISTING);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let db = Db::open_file(&path, 2).unwrap();
    let mut conn = db.connection_blocking().unwrap();

    let started = Instant::now();
    let listings = seed(&mut conn, subs, archive);
    let seeded = started.elapsed();
    conn.execute_batch("ANALYZE").unwrap();
    medianest::db::keep_plans_stable(&conn).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM youtube_subscription_items", [], |r| {
            r.get(0)
        })
        .unwrap();
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "{subs} subscriptions, {rows} archived items ({:.0} MB file), seeded in {:.1} s; \
         {passes} passes per way\n",
        bytes as f64 / 1e6,
        seeded.as_secs_f64()
    );
    println!(
        "| one pass ({subs} due, listings of {LISTING}) | wall median | wall max | CPU median | CPU max | CPU mean (/proc/self/stat) |"
    );
    println!("|---|---|---|---|---|---|");
    for way in [Way::DueOnly, Way::Among, Way::Probe, Way::WholeArchive] {
        assert_eq!(pass(&conn, way, &listings), subs);
        let mut wall = Vec::with_capacity(passes);
        let mut cpu = Vec::with_capacity(passes);
        let ticks_before = stat_ticks();
        for _ in 0..passes {
            let (w, c) = (Instant::now(), cpu_now());
            let due = pass(&conn, way, &listings);
            cpu.push(ms(cpu_now() - c));
            wall.push(ms(w.elapsed()));
            assert_eq!(due, subs);
        }
        let mean_stat = match (ticks_before, stat_ticks()) {
            (Some(a), Some(b)) => format!("{:.1} ms", (b - a) as f64 * 10.0 / passes as f64),
            _ => "n/a".to_owned(),
        };
        let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        println!(
            "| {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {mean_stat} |",
            way.name(),
            median(wall.clone()),
            max(&wall),
            median(cpu.clone()),
            max(&cpu),
        );
    }
}
