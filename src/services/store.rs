//! What the health checks found, in the database: `service_status` (the latest state of each
//! service), `service_metrics` (a response time and an up/down sample per check) and
//! `service_incidents` (opened when a service goes down, resolved when it comes back).
//!
//! One check cycle is written by [`record_cycle`] in one transaction. Uptime and history are
//! computed from the samples through the covering index
//! `service_metrics (service_name, metric_name, timestamp, metric_value)`.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::error::AppResult;

/// A service's status (stored lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Up,
    Degraded,
    Down,
    Disabled,
    Unknown,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Degraded => "degraded",
            Self::Down => "down",
            Self::Disabled => "disabled",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "up" => Self::Up,
            "degraded" => Self::Degraded,
            "down" => Self::Down,
            "disabled" => Self::Disabled,
            _ => Self::Unknown,
        }
    }

    /// Up or degraded: the service answers.
    pub fn is_available(self) -> bool {
        matches!(self, Self::Up | Self::Degraded)
    }
}

/// The outcome of checking one service once.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub name: String,
    pub display_name: String,
    pub health: Health,
    pub response_time_ms: Option<i64>,
    pub message: Option<String>,
}

/// A row of `service_status`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRow {
    pub name: String,
    pub display_name: String,
    pub health: Health,
    pub response_time_ms: Option<i64>,
    pub message: Option<String>,
    pub last_check_at: Option<i64>,
    pub last_change_at: Option<i64>,
    pub uptime_24h: Option<f64>,
}

/// A status change made by a cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub name: String,
    pub display_name: String,
    pub from: Health,
    pub to: Health,
}

/// Every status row, by name.
pub fn all(conn: &Connection) -> AppResult<Vec<StatusRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT service_name, display_name, status, response_time_ms, message, last_check_at,
                last_change_at, uptime_24h
         FROM service_status ORDER BY service_name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(StatusRow {
            name: r.get(0)?,
            display_name: r.get(1)?,
            health: Health::parse(&r.get::<_, String>(2)?),
            response_time_ms: r.get(3)?,
            message: r.get(4)?,
            last_check_at: r.get(5)?,
            last_change_at: r.get(6)?,
            uptime_24h: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Writes one cycle: status upserts, samples, incidents. Returns the status changes.
///
/// `retire_prefix`: rows with this prefix that the cycle did not mention are deleted (Uptime
/// Kuma monitors removed from the status page); `None` keeps everything.
pub fn record_cycle(
    conn: &Connection,
    results: &[CheckResult],
    now_ms: i64,
    retire_prefix: Option<&str>,
) -> AppResult<Vec<Transition>> {
    let previous: HashMap<String, Health> = {
        let mut stmt = conn.prepare_cached("SELECT service_name, status FROM service_status")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Health::parse(&r.get::<_, String>(1)?),
            ))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut transitions = Vec::new();
    let day_ago = now_ms - 24 * 3600 * 1000;
    for result in results {
        let before = previous
            .get(&result.name)
            .copied()
            .unwrap_or(Health::Unknown);
        let changed = before != result.health;
        let sampled = !matches!(result.health, Health::Disabled | Health::Unknown);
        if sampled {
            let mut insert = conn.prepare_cached(
                "INSERT INTO service_metrics (service_name, metric_name, metric_value, timestamp)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            insert.execute(rusqlite::params![
                result.name,
                "up",
                if result.health.is_available() {
                    1.0
                } else {
                    0.0
                },
                now_ms
            ])?;
            if let Some(ms) = result.response_time_ms {
                insert.execute(rusqlite::params![
                    result.name,
                    "response_time_ms",
                    ms as f64,
                    now_ms
                ])?;
            }
        }
        let uptime_24h = uptime(conn, &result.name, day_ago)?;
        conn.prepare_cached(
            "INSERT INTO service_status (id, service_name, display_name, status, response_time_ms,
                                         message, last_check_at, last_change_at, uptime_24h)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)
             ON CONFLICT (service_name) DO UPDATE SET
                display_name = excluded.display_name,
                status = excluded.status,
                response_time_ms = excluded.response_time_ms,
                message = excluded.message,
                last_check_at = excluded.last_check_at,
                last_change_at = CASE WHEN service_status.status <> excluded.status
                                      THEN excluded.last_check_at
                                      ELSE service_status.last_change_at END,
                uptime_24h = excluded.uptime_24h",
        )?
        .execute(rusqlite::params![
            uuid::Uuid::now_v7().to_string(),
            result.name,
            result.display_name,
            result.health.as_str(),
            result.response_time_ms,
            result.message,
            now_ms,
            uptime_24h
        ])?;
        if changed {
            if result.health == Health::Down {
                open_incident(conn, result, now_ms)?;
            } else if before == Health::Down {
                conn.prepare_cached(
                    "UPDATE service_incidents SET status = 'resolved', resolved_at = ?1
                     WHERE service_name = ?2 AND status = 'open'",
                )?
                .execute(rusqlite::params![now_ms, result.name])?;
            }
            transitions.push(Transition {
                name: result.name.clone(),
                display_name: result.display_name.clone(),
                from: before,
                to: result.health,
            });
        }
    }
    if let Some(prefix) = retire_prefix {
        let keep: Vec<&str> = results
            .iter()
            .map(|r| r.name.as_str())
            .filter(|n| n.starts_with(prefix))
            .collect();
        for name in previous.keys().filter(|n| n.starts_with(prefix)) {
            if !keep.contains(&name.as_str()) {
                conn.prepare_cached("DELETE FROM service_status WHERE service_name = ?1")?
                    .execute([name])?;
            }
        }
    }
    Ok(transitions)
}

fn open_incident(conn: &Connection, result: &CheckResult, now_ms: i64) -> AppResult<()> {
    let already: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM service_incidents
                            WHERE service_name = ?1 AND status = 'open')",
        )?
        .query_row([&result.name], |r| r.get(0))?;
    if already {
        return Ok(());
    }
    // The portal's own upstreams matter more than an individual watched monitor.
    let severity = if result.name.starts_with("kuma:") {
        "medium"
    } else {
        "high"
    };
    conn.prepare_cached(
        "INSERT INTO service_incidents (id, service_name, incident_type, description, severity,
                                        status, created_at)
         VALUES (?1, ?2, 'outage', ?3, ?4, 'open', ?5)",
    )?
    .execute(rusqlite::params![
        uuid::Uuid::now_v7().to_string(),
        result.name,
        result.message,
        severity,
        now_ms
    ])?;
    Ok(())
}

/// Share of `up` samples since `since_ms`, as a percentage with two decimals; `None` without
/// samples.
pub fn uptime(conn: &Connection, name: &str, since_ms: i64) -> AppResult<Option<f64>> {
    let avg: Option<f64> = conn
        .prepare_cached(
            "SELECT avg(metric_value) FROM service_metrics
             WHERE service_name = ?1 AND metric_name = 'up' AND timestamp >= ?2",
        )?
        .query_row(rusqlite::params![name, since_ms], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(avg.map(|a| (a * 10_000.0).round() / 100.0))
}

/// One bucket of a service's history.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    /// The bucket's start, RFC 3339.
    pub t: String,
    pub avg_response_ms: Option<f64>,
    /// Percentage of up samples, or `None` without samples.
    pub uptime: Option<f64>,
}

/// History of one service since `since_ms` in `count` equal buckets (empty buckets included, so
/// a sparkline has a fixed width).
pub fn history(
    conn: &Connection,
    name: &str,
    since_ms: i64,
    now_ms: i64,
    count: i64,
) -> AppResult<Vec<Bucket>> {
    let width = ((now_ms - since_ms) / count.max(1)).max(1);
    let by_metric = |metric: &str| -> AppResult<HashMap<i64, f64>> {
        // A sample taken at `now_ms` itself belongs in the last bucket, not one past the end.
        let mut stmt = conn.prepare_cached(
            "SELECT min((timestamp - ?3) / ?4, ?5) AS bucket, avg(metric_value)
             FROM service_metrics
             WHERE service_name = ?1 AND metric_name = ?2 AND timestamp BETWEEN ?3 AND ?6
             GROUP BY bucket",
        )?;
        let last = count.max(1) - 1;
        let rows = stmt.query_map(
            rusqlite::params![name, metric, since_ms, width, last, now_ms],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, f64>(1)?)),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    let response = by_metric("response_time_ms")?;
    let up = by_metric("up")?;
    Ok((0..count)
        .map(|i| Bucket {
            t: crate::time::rfc3339(since_ms + i * width),
            avg_response_ms: response.get(&i).map(|v| (v * 10.0).round() / 10.0),
            uptime: up.get(&i).map(|v| (v * 10_000.0).round() / 100.0),
        })
        .collect())
}

/// Open incidents, newest first.
pub fn open_incidents(conn: &Connection) -> AppResult<Vec<(String, String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT service_name, severity, created_at FROM service_incidents
         WHERE status = 'open' ORDER BY created_at DESC",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::db::migrations::apply(&mut c).unwrap();
        c
    }

    fn check(name: &str, health: Health, ms: Option<i64>) -> CheckResult {
        CheckResult {
            name: name.into(),
            display_name: name.to_uppercase(),
            health,
            response_time_ms: ms,
            message: None,
        }
    }

    const T0: i64 = 1_800_000_000_000;

    #[test]
    fn a_cycle_upserts_samples_and_tracks_transitions_and_incidents() {
        let c = conn();
        let t = record_cycle(&c, &[check("plex", Health::Up, Some(12))], T0, None).unwrap();
        assert_eq!(t[0].from, Health::Unknown);
        let t = record_cycle(
            &c,
            &[check("plex", Health::Up, Some(14))],
            T0 + 30_000,
            None,
        )
        .unwrap();
        assert!(t.is_empty());
        let t = record_cycle(&c, &[check("plex", Health::Down, None)], T0 + 60_000, None).unwrap();
        assert_eq!((t[0].from, t[0].to), (Health::Up, Health::Down));
        assert_eq!(open_incidents(&c).unwrap().len(), 1);
        record_cycle(&c, &[check("plex", Health::Down, None)], T0 + 90_000, None).unwrap();
        assert_eq!(
            open_incidents(&c).unwrap().len(),
            1,
            "one incident per outage"
        );
        record_cycle(
            &c,
            &[check("plex", Health::Up, Some(9))],
            T0 + 120_000,
            None,
        )
        .unwrap();
        assert!(open_incidents(&c).unwrap().is_empty());

        let row = &all(&c).unwrap()[0];
        assert_eq!(row.health, Health::Up);
        assert_eq!(row.last_change_at, Some(T0 + 120_000));
        assert_eq!(row.last_check_at, Some(T0 + 120_000));
        // 3 of 5 samples up.
        assert_eq!(row.uptime_24h, Some(60.0));
        let samples: i64 = c
            .query_row("SELECT count(*) FROM service_metrics", [], |r| r.get(0))
            .unwrap();
        assert_eq!(samples, 5 + 3, "5 up samples and 3 response times");
    }

    #[test]
    fn disabled_services_leave_no_samples_and_retired_monitors_go() {
        let c = conn();
        record_cycle(
            &c,
            &[
                check("kuma:1", Health::Up, Some(5)),
                check("kuma:2", Health::Down, None),
                check("overseerr", Health::Disabled, None),
            ],
            T0,
            Some("kuma:"),
        )
        .unwrap();
        record_cycle(
            &c,
            &[check("kuma:1", Health::Up, Some(5))],
            T0 + 1,
            Some("kuma:"),
        )
        .unwrap();
        let names: Vec<String> = all(&c).unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(names, vec!["kuma:1", "overseerr"]);
        let overseerr: i64 = c
            .query_row(
                "SELECT count(*) FROM service_metrics WHERE service_name = 'overseerr'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(overseerr, 0);
    }

    #[test]
    fn history_buckets_cover_the_window_evenly() {
        let c = conn();
        for i in 0..10 {
            let health = if i < 5 { Health::Up } else { Health::Down };
            let ms = if i < 5 { Some(100) } else { None };
            record_cycle(&c, &[check("plex", health, ms)], T0 + i * 1000, None).unwrap();
        }
        let b = history(&c, "plex", T0, T0 + 10_000, 2).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].uptime, Some(100.0));
        assert_eq!(b[0].avg_response_ms, Some(100.0));
        assert_eq!(b[1].uptime, Some(0.0));
        assert_eq!(b[1].avg_response_ms, None);
        let empty = history(&c, "plex", T0 - 100_000, T0 - 50_000, 4).unwrap();
        assert!(empty.iter().all(|b| b.uptime.is_none()));
    }

    #[test]
    fn uptime_and_history_read_the_covering_index() {
        let c = conn();
        for sql in [
            "EXPLAIN QUERY PLAN SELECT avg(metric_value) FROM service_metrics
             WHERE service_name = 'a' AND metric_name = 'up' AND timestamp >= 1",
            "EXPLAIN QUERY PLAN SELECT (timestamp - 1) / 2 AS bucket, avg(metric_value)
             FROM service_metrics WHERE service_name = 'a' AND metric_name = 'up'
             AND timestamp >= 1 GROUP BY bucket",
        ] {
            let plan: Vec<String> = c
                .prepare(sql)
                .unwrap()
                .query_map([], |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let plan = plan.join("; ");
            assert!(
                plan.contains("COVERING INDEX service_metrics_name_metric_time"),
                "{plan}"
            );
        }
    }
}
