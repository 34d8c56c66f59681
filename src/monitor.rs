//! Request monitoring: per-request timing, the stats window behind `GET /admin/performance`, and the
//! Prometheus text behind `/metrics` (SPEC section 10).
//!
//! Owns a ring of the last [`RING_CAPACITY`] request samples, the cumulative request counters and
//! latency histograms, the small Prometheus text writer other modules use for their own metrics
//! ([`MetricFamily`], [`write_gauge`]), and reading the process RSS ([`process_rss_bytes`]).
//!
//! It must not do I/O on the request path, log, read the system clock (callers pass Unix ms from the
//! injected clock), or know about axum: the middleware hands over the route template (never the raw
//! path, which would make label cardinality unbounded), the method, the status and the duration.
//! [`Monitor::record`] runs once per request, so it takes one short lock and does not allocate once a
//! route, method and status have been seen.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;

/// How many of the most recent requests the stats window can look at.
pub const RING_CAPACITY: usize = 10_000;

/// Distinct route templates tracked by name; later ones are counted under [`OVERFLOW_ROUTE`].
pub const MAX_ROUTES: usize = 1_024;

/// The route label used once [`MAX_ROUTES`] templates have been seen.
pub const OVERFLOW_ROUTE: &str = "<other>";

/// Distinct HTTP methods tracked by name; later ones are counted under [`OVERFLOW_METHOD`].
pub const MAX_METHODS: usize = 16;

/// The method label used once [`MAX_METHODS`] methods have been seen.
pub const OVERFLOW_METHOD: &str = "OTHER";

/// How many routes `topSlowPaths` lists.
const TOP_SLOW_PATHS: usize = 10;

const REQUESTS_TOTAL: &str = "medianest_http_requests_total";
const REQUEST_DURATION: &str = "medianest_http_request_duration_seconds";

/// Histogram upper bounds in nanoseconds, matching [`BUCKET_LABELS`]; the last bucket is `+Inf`.
// Nanoseconds rather than microseconds so that 1.0004 ms does not land in the 1 ms bucket.
const BUCKET_BOUNDS_NS: [u64; 13] = [
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The `le` label of each bucket, in seconds.
const BUCKET_LABELS: [&str; 14] = [
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5",
    "10", "+Inf",
];

/// Collects request timings; share one through the application state as `Arc<Monitor>`.
pub struct Monitor {
    slow_ms: u64,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Samples in arrival order until full, then overwritten from `next` on.
    ring: Vec<Sample>,
    next: usize,
    route_ids: HashMap<Arc<str>, u16>,
    routes: Vec<RouteMetrics>,
    methods: Vec<Arc<str>>,
}

#[derive(Clone, Copy)]
struct Sample {
    at_ms: i64,
    duration_us: u64,
    route: u16,
    status: u16,
    slow: bool,
}

#[derive(Clone)]
struct RouteMetrics {
    name: Arc<str>,
    histogram: Histogram,
    /// One entry per (method, status) seen on this route; a handful, so a linear scan beats hashing.
    counters: Vec<StatusCounter>,
}

#[derive(Clone, Copy)]
struct StatusCounter {
    method: u8,
    status: u16,
    count: u64,
}

/// Per-bucket (not yet cumulative) counts; cumulated when written.
#[derive(Clone, Copy, Default)]
struct Histogram {
    buckets: [u64; 14],
    sum_ns: u64,
    count: u64,
}

/// The stats window served by `GET /admin/performance` (the request part of it).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PerformanceStats {
    /// Requests in the window.
    pub total_requests: u64,
    /// `total_requests` divided by the window length in seconds, 3 decimals.
    pub requests_per_second: f64,
    /// Mean duration in milliseconds, 2 decimals.
    pub average_ms: f64,
    /// Nearest-rank percentiles of the durations in milliseconds, 2 decimals (see [`Monitor::stats`]).
    pub p50_ms: f64,
    /// See `p50_ms`.
    pub p95_ms: f64,
    /// See `p50_ms`.
    pub p99_ms: f64,
    /// Requests that took longer than the monitor's `slow_ms`.
    pub slow_requests: u64,
    /// Share of 5xx responses, 0 to 1, 4 decimals.
    pub error_rate: f64,
    /// Requests per status code, keyed by the code as a string (`"200"`).
    pub status_counts: BTreeMap<String, u64>,
    /// The slowest routes, at most ten, by p95 then average.
    pub top_slow_paths: Vec<SlowPath>,
}

/// One route in [`PerformanceStats::top_slow_paths`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlowPath {
    /// The route template.
    pub route: String,
    /// Requests to this route in the window.
    pub count: u64,
    /// Mean duration in milliseconds, 2 decimals.
    pub average_ms: f64,
    /// Nearest-rank 95th percentile in milliseconds, 2 decimals.
    pub p95_ms: f64,
}

impl Monitor {
    /// A monitor that calls requests slower than `slow_ms` milliseconds slow.
    pub fn new(slow_ms: u64) -> Self {
        Self {
            slow_ms,
            inner: Mutex::new(Inner {
                // Allocated up front so the request path never grows it.
                ring: Vec::with_capacity(RING_CAPACITY),
                next: 0,
                route_ids: HashMap::new(),
                routes: Vec::new(),
                methods: Vec::new(),
            }),
        }
    }

    /// The slow-request threshold in milliseconds.
    pub fn slow_ms(&self) -> u64 {
        self.slow_ms
    }

    /// Records one finished request and returns whether it was slow (took longer than `slow_ms`), so
    /// the caller can log it with its correlation id.
    ///
    /// `route` is the route template (`/api/v1/media/requests/{id}`, or `"<unmatched>"`), `at_ms` the
    /// Unix milliseconds from the application clock.
    pub fn record(
        &self,
        route: &str,
        method: &str,
        status: u16,
        duration: Duration,
        at_ms: i64,
    ) -> bool {
        let slow = duration > Duration::from_millis(self.slow_ms);
        let duration_ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let duration_us = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKET_BOUNDS_NS
            .iter()
            .position(|&bound| duration_ns <= bound)
            .unwrap_or(BUCKET_BOUNDS_NS.len());

        let mut inner = self.lock();
        let route_id = inner.route_id(route);
        let method_id = inner.method_id(method);
        if let Some(metrics) = inner.routes.get_mut(usize::from(route_id)) {
            metrics.count(method_id, status, bucket, duration_ns);
        }
        inner.push(Sample {
            at_ms,
            duration_us,
            route: route_id,
            status,
            slow,
        });
        slow
    }

    /// Summarises the samples with `at_ms > now_ms - window_minutes * 60 000` that are still in the
    /// ring. A window of 0 is treated as 1 minute; an empty window gives all zeros.
    ///
    /// Percentiles use the nearest-rank method: over the `n` durations sorted ascending, the p-th
    /// percentile is the value at 1-based rank `ceil(p / 100 * n)`. It is always a duration that was
    /// actually observed, never an interpolation.
    pub fn stats(&self, window_minutes: u32, now_ms: i64) -> PerformanceStats {
        let window_minutes = window_minutes.max(1);
        let cutoff = now_ms.saturating_sub(i64::from(window_minutes) * 60_000);
        // Copy out under the lock and do the sorting after releasing it, so requests are not held up.
        let (mut samples, names) = {
            let inner = self.lock();
            let samples: Vec<Sample> = inner
                .ring
                .iter()
                .filter(|s| s.at_ms > cutoff)
                .copied()
                .collect();
            let names: Vec<Arc<str>> = inner.routes.iter().map(|r| Arc::clone(&r.name)).collect();
            (samples, names)
        };
        if samples.is_empty() {
            return PerformanceStats::default();
        }

        let total = samples.len() as u64;
        let mut status_counts: BTreeMap<u16, u64> = BTreeMap::new();
        let mut errors = 0_u64;
        let mut slow = 0_u64;
        let mut sum_us = 0_u64;
        for sample in &samples {
            *status_counts.entry(sample.status).or_default() += 1;
            errors += u64::from((500..600).contains(&sample.status));
            slow += u64::from(sample.slow);
            sum_us = sum_us.saturating_add(sample.duration_us);
        }
        let mut durations: Vec<u64> = samples.iter().map(|s| s.duration_us).collect();
        durations.sort_unstable();

        samples.sort_unstable_by_key(|s| (s.route, s.duration_us));
        let mut paths: Vec<RouteWindow> = samples
            .chunk_by(|a, b| a.route == b.route)
            .map(|chunk| {
                let sorted: Vec<u64> = chunk.iter().map(|s| s.duration_us).collect();
                let sum: u64 = sorted.iter().fold(0, |acc, &d| acc.saturating_add(d));
                RouteWindow {
                    route: chunk.first().map_or(0, |s| s.route),
                    count: sorted.len() as u64,
                    average_us: sum as f64 / sorted.len() as f64,
                    p95_us: nearest_rank(&sorted, 95),
                }
            })
            .collect();
        let name_of = |route: u16| {
            names
                .get(usize::from(route))
                .map_or("", |name| name.as_ref())
        };
        paths.sort_by(|a, b| {
            b.p95_us
                .cmp(&a.p95_us)
                .then(b.average_us.total_cmp(&a.average_us))
                .then_with(|| name_of(a.route).cmp(name_of(b.route)))
        });
        paths.truncate(TOP_SLOW_PATHS);

        PerformanceStats {
            total_requests: total,
            requests_per_second: round_to(total as f64 / (f64::from(window_minutes) * 60.0), 3),
            average_ms: us_to_ms(sum_us as f64 / total as f64),
            p50_ms: us_to_ms(nearest_rank(&durations, 50) as f64),
            p95_ms: us_to_ms(nearest_rank(&durations, 95) as f64),
            p99_ms: us_to_ms(nearest_rank(&durations, 99) as f64),
            slow_requests: slow,
            error_rate: round_to(errors as f64 / total as f64, 4),
            status_counts: status_counts
                .into_iter()
                .map(|(status, count)| (status.to_string(), count))
                .collect(),
            top_slow_paths: paths
                .into_iter()
                .map(|p| SlowPath {
                    route: name_of(p.route).to_owned(),
                    count: p.count,
                    average_ms: us_to_ms(p.average_us),
                    p95_ms: us_to_ms(p.p95_us as f64),
                })
                .collect(),
        }
    }

    /// Appends `medianest_http_requests_total` and `medianest_http_request_duration_seconds` in the
    /// Prometheus text format, each with its `# HELP` and `# TYPE` lines, routes sorted by name.
    pub fn write_prometheus(&self, out: &mut String) {
        let (mut routes, methods) = {
            let inner = self.lock();
            (inner.routes.clone(), inner.methods.clone())
        };
        routes.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let method_name = |id: u8| methods.get(usize::from(id)).map_or("", |m| m.as_ref());

        let mut family = MetricFamily::new(
            out,
            REQUESTS_TOTAL,
            "HTTP requests served, by method, route template and status code.",
            MetricKind::Counter,
        );
        for route in &mut routes {
            route.counters.sort_unstable_by(|a, b| {
                (method_name(a.method), a.status).cmp(&(method_name(b.method), b.status))
            });
            for counter in &route.counters {
                let status = StatusLabel::new(counter.status);
                family.line(
                    "",
                    &[
                        ("method", method_name(counter.method)),
                        ("route", &route.name),
                        ("status", status.as_str()),
                    ],
                    Value::Int(counter.count),
                );
            }
        }

        let mut family = MetricFamily::new(
            out,
            REQUEST_DURATION,
            "HTTP request duration in seconds, by route template.",
            MetricKind::Histogram,
        );
        for route in &routes {
            let histogram = &route.histogram;
            let mut cumulative = 0_u64;
            for (count, le) in histogram.buckets.iter().zip(BUCKET_LABELS) {
                cumulative += count;
                family.line(
                    "_bucket",
                    &[("route", &route.name), ("le", le)],
                    Value::Int(cumulative),
                );
            }
            let labels = [("route", route.name.as_ref())];
            family.line("_sum", &labels, Value::Float(histogram.sum_ns as f64 / 1e9));
            family.line("_count", &labels, Value::Int(histogram.count));
        }
    }

    // A panic elsewhere while holding the lock leaves counters that are at worst one request off,
    // which is no reason to fail every later request.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("slow_ms", &self.slow_ms)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// The id of `route`, interning it on first sight; the lookup by `&str` does not allocate.
    fn route_id(&mut self, route: &str) -> u16 {
        if let Some(&id) = self.route_ids.get(route) {
            return id;
        }
        let route = if self.routes.len() >= MAX_ROUTES {
            OVERFLOW_ROUTE
        } else {
            route
        };
        if let Some(&id) = self.route_ids.get(route) {
            return id;
        }
        // At most MAX_ROUTES + 1 entries, well inside u16.
        let id = self.routes.len() as u16;
        let name: Arc<str> = Arc::from(route);
        self.route_ids.insert(Arc::clone(&name), id);
        self.routes.push(RouteMetrics {
            name,
            histogram: Histogram::default(),
            counters: Vec::new(),
        });
        id
    }

    /// The id of `method`, interning it on first sight. Methods are few, so a scan beats hashing.
    fn method_id(&mut self, method: &str) -> u8 {
        let find = |methods: &[Arc<str>], method: &str| {
            // At most MAX_METHODS + 1 entries, well inside u8.
            methods
                .iter()
                .position(|m| m.as_ref() == method)
                .map(|id| id as u8)
        };
        if let Some(id) = find(&self.methods, method) {
            return id;
        }
        let method = if self.methods.len() >= MAX_METHODS {
            OVERFLOW_METHOD
        } else {
            method
        };
        if let Some(id) = find(&self.methods, method) {
            return id;
        }
        self.methods.push(Arc::from(method));
        (self.methods.len() - 1) as u8
    }

    fn push(&mut self, sample: Sample) {
        if self.ring.len() < RING_CAPACITY {
            self.ring.push(sample);
        } else if let Some(slot) = self.ring.get_mut(self.next) {
            *slot = sample;
        }
        self.next = (self.next + 1) % RING_CAPACITY;
    }
}

impl RouteMetrics {
    fn count(&mut self, method: u8, status: u16, bucket: usize, duration_ns: u64) {
        match self
            .counters
            .iter_mut()
            .find(|c| c.method == method && c.status == status)
        {
            Some(counter) => counter.count += 1,
            None => self.counters.push(StatusCounter {
                method,
                status,
                count: 1,
            }),
        }
        if let Some(slot) = self.histogram.buckets.get_mut(bucket) {
            *slot += 1;
        }
        self.histogram.sum_ns = self.histogram.sum_ns.saturating_add(duration_ns);
        self.histogram.count += 1;
    }
}

struct RouteWindow {
    route: u16,
    count: u64,
    average_us: f64,
    p95_us: u64,
}

/// Nearest-rank percentile of ascending `sorted` (see [`Monitor::stats`]); 0 when empty.
fn nearest_rank(sorted: &[u64], percentile: usize) -> u64 {
    let n = sorted.len();
    if n == 0 {
        return 0;
    }
    let rank = (percentile * n).div_ceil(100).clamp(1, n);
    sorted.get(rank - 1).copied().unwrap_or(0)
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10_f64.powi(decimals);
    (value * scale).round() / scale
}

fn us_to_ms(us: f64) -> f64 {
    round_to(us / 1000.0, 2)
}

/// A status code formatted on the stack, so writing labels does not allocate per line.
struct StatusLabel {
    digits: [u8; 5],
    len: usize,
}

impl StatusLabel {
    fn new(status: u16) -> Self {
        let mut digits = [0_u8; 5];
        let mut len = 0;
        let mut rest = status;
        loop {
            digits[len] = b'0' + (rest % 10) as u8;
            len += 1;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        digits[..len].reverse();
        Self { digits, len }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits[..self.len]).unwrap_or("")
    }
}

/// The `# TYPE` of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up (resets on restart).
    Counter,
    /// Goes up and down.
    Gauge,
    /// `_bucket`/`_sum`/`_count` samples.
    Histogram,
}

impl MetricKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// Writes one Prometheus metric family: the `# HELP` and `# TYPE` lines once, on creation, then one
/// line per [`sample`](Self::sample).
///
/// ```ignore
/// let mut up = MetricFamily::new(&mut out, "medianest_service_up", "Whether the service answers.", MetricKind::Gauge);
/// up.sample(&[("service", "plex")], 1.0);
/// up.sample(&[("service", "overseerr")], 0.0);
/// ```
///
/// Metric and label names are written as given, so they must be valid Prometheus names
/// (`[a-zA-Z_:][a-zA-Z0-9_:]*`); label values and help text are escaped.
pub struct MetricFamily<'a> {
    out: &'a mut String,
    name: &'a str,
}

impl<'a> MetricFamily<'a> {
    /// Starts a family by appending its `# HELP` and `# TYPE` lines to `out`.
    pub fn new(out: &'a mut String, name: &'a str, help: &str, kind: MetricKind) -> Self {
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        for c in help.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push_str("\n# TYPE ");
        out.push_str(name);
        out.push(' ');
        out.push_str(kind.as_str());
        out.push('\n');
        Self { out, name }
    }

    /// Appends one sample line, `name{label="value",...} value`.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        self.line("", labels, Value::Float(value));
    }

    fn line(&mut self, suffix: &str, labels: &[(&str, &str)], value: Value) {
        let out = &mut *self.out;
        out.push_str(self.name);
        out.push_str(suffix);
        if !labels.is_empty() {
            out.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(name);
                out.push_str("=\"");
                push_escaped_label(out, value);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        match value {
            // Writing to a String cannot fail.
            Value::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Float(v) if v.is_nan() => out.push_str("NaN"),
            Value::Float(v) if v == f64::INFINITY => out.push_str("+Inf"),
            Value::Float(v) if v == f64::NEG_INFINITY => out.push_str("-Inf"),
            Value::Float(v) => {
                let _ = write!(out, "{v}");
            }
        }
        out.push('\n');
    }
}

/// A family with a single sample: `# HELP`, `# TYPE gauge`, then the one line. For families with
/// several label sets use [`MetricFamily`].
pub fn write_gauge(out: &mut String, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
    MetricFamily::new(out, name, help, MetricKind::Gauge).sample(labels, value);
}

// Counters are written as integers so they stay exact past 2^53.
enum Value {
    Int(u64),
    Float(f64),
}

fn push_escaped_label(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The resident set size of this process in bytes, or `None` where `/proc` is missing (not Linux).
///
/// Reads `VmRSS` from `/proc/self/status` (reported in KiB, independent of the page size); if that
/// line is missing, falls back to the resident pages in `/proc/self/statm` times 4096, which assumes
/// 4 KiB pages (true on x86-64 and most arm64 kernels, wrong on 16/64 KiB-page kernels).
pub fn process_rss_bytes() -> Option<u64> {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(kib) = kib {
            return Some(kib.saturating_mul(1024));
        }
    }
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(4096))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn monitor_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Monitor>();
        assert_send_sync::<Arc<Monitor>>();
    }

    #[test]
    fn record_reports_slow_only_above_the_threshold() {
        let monitor = Monitor::new(1000);
        assert!(!monitor.record("/a", "GET", 200, ms(1000), NOW));
        assert!(monitor.record("/a", "GET", 200, ms(1000) + Duration::from_nanos(1), NOW));
        assert!(!monitor.record("/a", "GET", 200, ms(3), NOW));
        assert_eq!(monitor.stats(5, NOW).slow_requests, 1);
    }

    #[test]
    fn ring_wraps_at_capacity_keeping_the_newest() {
        let monitor = Monitor::new(1000);
        let extra = 5;
        for i in 0..(RING_CAPACITY + extra) {
            monitor.record("/a", "GET", 200, ms(1), i as i64);
        }
        let inner = monitor.lock();
        assert_eq!(inner.ring.len(), RING_CAPACITY);
        assert_eq!(inner.ring.capacity(), RING_CAPACITY);
        let mut times: Vec<i64> = inner.ring.iter().map(|s| s.at_ms).collect();
        times.sort_unstable();
        let expected: Vec<i64> = (extra as i64..(RING_CAPACITY + extra) as i64).collect();
        assert_eq!(times, expected);
        drop(inner);

        let stats = monitor.stats(60, (RING_CAPACITY + extra) as i64);
        assert_eq!(stats.total_requests, RING_CAPACITY as u64);
        // The cumulative counters keep everything the ring dropped.
        let mut out = String::new();
        monitor.write_prometheus(&mut out);
        assert!(out.contains(
            "medianest_http_requests_total{method=\"GET\",route=\"/a\",status=\"200\"} 10005\n"
        ));
    }

    #[test]
    fn stats_over_known_durations_are_exact() {
        let monitor = Monitor::new(90);
        // /list: 1..=100 ms, every tenth a 500. /slow: 200 and 400 ms, 503s. /fast: 0.5 ms.
        for d in 1..=100_u64 {
            let status = if d % 10 == 0 { 500 } else { 200 };
            monitor.record("/list", "GET", status, ms(d), NOW - 1000);
        }
        monitor.record("/slow", "POST", 503, ms(200), NOW - 2000);
        monitor.record("/slow", "POST", 503, ms(400), NOW - 3000);
        monitor.record("/fast", "GET", 404, Duration::from_micros(500), NOW);

        let stats = monitor.stats(5, NOW);
        assert_eq!(stats.total_requests, 103);
        // 103 requests over 300 s.
        assert_eq!(stats.requests_per_second, 0.343);
        // (5050 + 600 + 0.5) / 103 = 54.8592...
        assert_eq!(stats.average_ms, 54.86);
        // Sorted: 0.5, 1..=100, 200, 400. Ranks ceil(.5*103)=52, ceil(.95*103)=98, ceil(.99*103)=102.
        assert_eq!(stats.p50_ms, 51.0);
        assert_eq!(stats.p95_ms, 97.0);
        assert_eq!(stats.p99_ms, 200.0);
        // 91..=100 plus the two /slow ones.
        assert_eq!(stats.slow_requests, 12);
        // 10 + 2 of 103.
        assert_eq!(stats.error_rate, 0.1165);
        let expected_counts: BTreeMap<String, u64> =
            [("200", 90), ("404", 1), ("500", 10), ("503", 2)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect();
        assert_eq!(stats.status_counts, expected_counts);
        assert_eq!(
            stats.top_slow_paths,
            vec![
                SlowPath {
                    route: "/slow".into(),
                    count: 2,
                    average_ms: 300.0,
                    p95_ms: 400.0
                },
                SlowPath {
                    route: "/list".into(),
                    count: 100,
                    average_ms: 50.5,
                    p95_ms: 95.0
                },
                SlowPath {
                    route: "/fast".into(),
                    count: 1,
                    average_ms: 0.5,
                    p95_ms: 0.5
                },
            ]
        );

        let json = serde_json::to_value(&stats).unwrap();
        for key in [
            "totalRequests",
            "requestsPerSecond",
            "averageMs",
            "p50Ms",
            "p95Ms",
            "p99Ms",
            "slowRequests",
            "errorRate",
            "statusCounts",
            "topSlowPaths",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["statusCounts"]["503"], 2);
        assert_eq!(json["topSlowPaths"][0]["p95Ms"], 400.0);
        assert_eq!(json["topSlowPaths"][0]["averageMs"], 300.0);
    }

    #[test]
    fn top_slow_paths_keeps_ten_and_breaks_p95_ties_by_average() {
        let monitor = Monitor::new(1000);
        for i in 0..12_u64 {
            monitor.record(&format!("/r{i:02}"), "GET", 200, ms(10 + i), NOW);
        }
        // Same p95 as /r11 (21 ms) but a lower average.
        monitor.record("/tie", "GET", 200, ms(1), NOW);
        monitor.record("/tie", "GET", 200, ms(21), NOW);
        let stats = monitor.stats(5, NOW);
        let routes: Vec<&str> = stats
            .top_slow_paths
            .iter()
            .map(|p| p.route.as_str())
            .collect();
        assert_eq!(
            routes,
            [
                "/r11", "/tie", "/r10", "/r09", "/r08", "/r07", "/r06", "/r05", "/r04", "/r03"
            ]
        );
    }

    #[test]
    fn samples_outside_the_window_are_ignored() {
        let monitor = Monitor::new(1000);
        let window_ms = 5 * 60_000;
        // Exactly on the boundary is outside: the window is at_ms > now - window.
        monitor.record("/old", "GET", 500, ms(900), NOW - window_ms);
        monitor.record("/older", "GET", 500, ms(900), NOW - window_ms - 1);
        monitor.record("/new", "GET", 200, ms(10), NOW - window_ms + 1);
        let stats = monitor.stats(5, NOW);
        assert_eq!(stats.total_requests, 1);
        assert_eq!(stats.error_rate, 0.0);
        assert_eq!(stats.average_ms, 10.0);
        assert_eq!(stats.top_slow_paths.len(), 1);
        assert_eq!(stats.top_slow_paths[0].route, "/new");
        // A longer window sees them.
        assert_eq!(monitor.stats(6, NOW).total_requests, 3);
    }

    #[test]
    fn empty_window_is_zeros_not_nan() {
        let monitor = Monitor::new(1000);
        assert_eq!(monitor.stats(5, NOW), PerformanceStats::default());
        monitor.record("/a", "GET", 200, ms(10), NOW - 3_600_000);
        let stats = monitor.stats(5, NOW);
        assert_eq!(stats, PerformanceStats::default());
        assert_eq!(monitor.stats(0, NOW), PerformanceStats::default());
        let json = serde_json::to_string(&stats).unwrap();
        assert_eq!(
            json,
            r#"{"totalRequests":0,"requestsPerSecond":0.0,"averageMs":0.0,"p50Ms":0.0,"p95Ms":0.0,"p99Ms":0.0,"slowRequests":0,"errorRate":0.0,"statusCounts":{},"topSlowPaths":[]}"#
        );
    }

    #[test]
    fn nearest_rank_follows_the_definition() {
        let values: Vec<u64> = (1..=10).collect();
        assert_eq!(nearest_rank(&values, 50), 5);
        assert_eq!(nearest_rank(&values, 95), 10);
        assert_eq!(nearest_rank(&values, 0), 1);
        assert_eq!(nearest_rank(&values, 100), 10);
        assert_eq!(nearest_rank(&[7], 99), 7);
        assert_eq!(nearest_rank(&[], 50), 0);
    }

    #[test]
    fn prometheus_text_is_exact() {
        let monitor = Monitor::new(1000);
        monitor.record("/api/v1/b", "GET", 200, ms(3), NOW);
        monitor.record("/api/v1/b", "GET", 200, Duration::from_micros(1000), NOW);
        monitor.record("/api/v1/b", "POST", 201, ms(20), NOW);
        monitor.record("/api/v1/b", "GET", 500, ms(11_000), NOW);
        monitor.record("/api/v1/a", "DELETE", 204, Duration::from_micros(1001), NOW);

        let mut out = String::new();
        monitor.write_prometheus(&mut out);
        let expected = "\
# HELP medianest_http_requests_total HTTP requests served, by method, route template and status code.
# TYPE medianest_http_requests_total counter
medianest_http_requests_total{method=\"DELETE\",route=\"/api/v1/a\",status=\"204\"} 1
medianest_http_requests_total{method=\"GET\",route=\"/api/v1/b\",status=\"200\"} 2
medianest_http_requests_total{method=\"GET\",route=\"/api/v1/b\",status=\"500\"} 1
medianest_http_requests_total{method=\"POST\",route=\"/api/v1/b\",status=\"201\"} 1
# HELP medianest_http_request_duration_seconds HTTP request duration in seconds, by route template.
# TYPE medianest_http_request_duration_seconds histogram
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/a\",le=\"0.001\"} 0
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/a\",le=\"0.0025\"} 1
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/a\",le=\"0.005\"} 1
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/a\",le=\"0.01\"} 1
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/a\",le=\"0.025\"} 1
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/a\",le=\"0.05\"} 1
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/a\",le=\"0.1\"} 1
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/a\",le=\"0.25\"} 1
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/a\",le=\"0.5\"} 1
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/a\",le=\"1\"} 1
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/a\",le=\"2.5\"} 1
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/a\",le=\"5\"} 1
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/a\",le=\"10\"} 1
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/a\",le=\"+Inf\"} 1
medianest_http_request_duration_seconds_sum{route=\"/api/v1/a\"} 0.001001
medianest_http_request_duration_seconds_count{route=\"/api/v1/a\"} 1
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/b\",le=\"0.001\"} 1
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/b\",le=\"0.0025\"} 1
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/b\",le=\"0.005\"} 2
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/b\",le=\"0.01\"} 2
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/b\",le=\"0.025\"} 3
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/b\",le=\"0.05\"} 3
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/b\",le=\"0.1\"} 3
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/b\",le=\"0.25\"} 3
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/b\",le=\"0.5\"} 3
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/b\",le=\"1\"} 3
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/b\",le=\"2.5\"} 3
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/b\",le=\"5\"} 3
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/b\",le=\"10\"} 3
medianest_http_request_duration_seconds_bucket{route=\"/api/v1/b\",le=\"+Inf\"} 4
medianest_http_request_duration_seconds_sum{route=\"/api/v1/b\"} 11.024
medianest_http_request_duration_seconds_count{route=\"/api/v1/b\"} 4
";
        assert_eq!(out, expected);
    }

    #[test]
    fn each_family_has_help_and_type_once() {
        let monitor = Monitor::new(1000);
        for route in ["/a", "/b", "/c"] {
            for status in [200, 404, 500] {
                monitor.record(route, "GET", status, ms(5), NOW);
            }
        }
        let mut out = String::new();
        monitor.write_prometheus(&mut out);
        for family in [REQUESTS_TOTAL, REQUEST_DURATION] {
            assert_eq!(out.matches(&format!("# HELP {family} ")).count(), 1);
            assert_eq!(out.matches(&format!("# TYPE {family} ")).count(), 1);
        }
        // An empty monitor still describes its families.
        let mut empty = String::new();
        Monitor::new(1000).write_prometheus(&mut empty);
        assert_eq!(empty.lines().count(), 4);
    }

    #[test]
    fn label_values_are_escaped() {
        let monitor = Monitor::new(1000);
        monitor.record("/a\\b\"c\nd", "GET", 200, ms(1), NOW);
        let mut out = String::new();
        monitor.write_prometheus(&mut out);
        assert!(out.contains(
            "medianest_http_requests_total{method=\"GET\",route=\"/a\\\\b\\\"c\\nd\",status=\"200\"} 1\n"
        ));
        assert!(out.contains("_count{route=\"/a\\\\b\\\"c\\nd\"} 1\n"));
        // Every line is one sample or comment: the newline did not leak.
        assert!(
            out.lines()
                .all(|l| l.starts_with("# ") || l.starts_with("medianest_"))
        );
    }

    #[test]
    fn helpers_write_families_for_other_modules() {
        let mut out = String::new();
        {
            let mut up = MetricFamily::new(
                &mut out,
                "medianest_service_up",
                "Whether the service answered its last check.",
                MetricKind::Gauge,
            );
            up.sample(&[("service", "plex")], 1.0);
            up.sample(&[("service", "over\"seerr")], 0.0);
        }
        write_gauge(
            &mut out,
            "medianest_process_resident_memory_bytes",
            "Resident memory\\RSS\nin bytes.",
            &[],
            123_456_789.0,
        );
        write_gauge(
            &mut out,
            "medianest_build_info",
            "Build.",
            &[("version", "1.2.3")],
            1.0,
        );
        let mut weird = MetricFamily::new(&mut out, "x", "y", MetricKind::Gauge);
        weird.sample(&[], f64::INFINITY);
        weird.sample(&[], f64::NEG_INFINITY);
        weird.sample(&[], f64::NAN);
        weird.sample(&[], 0.25);
        assert_eq!(
            out,
            "\
# HELP medianest_service_up Whether the service answered its last check.
# TYPE medianest_service_up gauge
medianest_service_up{service=\"plex\"} 1
medianest_service_up{service=\"over\\\"seerr\"} 0
# HELP medianest_process_resident_memory_bytes Resident memory\\\\RSS\\nin bytes.
# TYPE medianest_process_resident_memory_bytes gauge
medianest_process_resident_memory_bytes 123456789
# HELP medianest_build_info Build.
# TYPE medianest_build_info gauge
medianest_build_info{version=\"1.2.3\"} 1
# HELP x y
# TYPE x gauge
x +Inf
x -Inf
x NaN
x 0.25
"
        );
    }

    #[test]
    fn repeated_routes_are_interned_once() {
        let monitor = Monitor::new(1000);
        for i in 0..1000 {
            let route = String::from("/api/v1/media/requests/{id}");
            let status = if i % 2 == 0 { 200 } else { 404 };
            monitor.record(&route, "GET", status, ms(1), NOW);
        }
        let inner = monitor.lock();
        assert_eq!(inner.routes.len(), 1);
        assert_eq!(inner.route_ids.len(), 1);
        assert_eq!(inner.methods.len(), 1);
        assert_eq!(inner.routes[0].counters.len(), 2);
        // The map key and the route entry share one allocation.
        assert_eq!(Arc::strong_count(&inner.routes[0].name), 2);
    }

    #[test]
    fn route_and_method_cardinality_is_capped() {
        let monitor = Monitor::new(1000);
        for i in 0..(MAX_ROUTES + 10) {
            monitor.record(&format!("/r{i}"), "GET", 200, ms(1), NOW);
        }
        for i in 0..(MAX_METHODS + 10) {
            monitor.record("/r0", &format!("M{i}"), 200, ms(1), NOW);
        }
        let inner = monitor.lock();
        assert_eq!(inner.routes.len(), MAX_ROUTES + 1);
        let overflow = inner.route_ids[OVERFLOW_ROUTE];
        assert_eq!(inner.routes[usize::from(overflow)].histogram.count, 10);
        assert_eq!(inner.methods.len(), MAX_METHODS + 1);
        assert_eq!(inner.methods[MAX_METHODS].as_ref(), OVERFLOW_METHOD);
    }

    #[test]
    fn a_poisoned_lock_does_not_panic() {
        let monitor = Arc::new(Monitor::new(1000));
        let poisoner = Arc::clone(&monitor);
        let joined = std::thread::spawn(move || {
            let _guard = poisoner.inner.lock();
            panic!("poison the lock");
        })
        .join();
        assert!(joined.is_err());
        assert!(monitor.inner.is_poisoned());
        monitor.record("/a", "GET", 200, ms(1), NOW);
        assert_eq!(monitor.stats(5, NOW).total_requests, 1);
        let mut out = String::new();
        monitor.write_prometheus(&mut out);
        assert!(out.contains("status=\"200\"} 1\n"));
    }

    #[test]
    fn rss_is_read_from_proc() {
        let rss = process_rss_bytes();
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(rss.unwrap() > 0);
        } else {
            assert!(rss.is_none());
        }
    }

    /// Not a timed assertion; run by hand with
    /// `cargo test --release -- --ignored --nocapture record_cost` and read the figure.
    #[test]
    #[ignore]
    fn record_cost() {
        const N: u32 = 1_000_000;
        let routes: Vec<String> = (0..20)
            .map(|i| format!("/api/v1/route{i}/{{id}}"))
            .collect();
        let methods = ["GET", "POST", "DELETE"];
        let statuses = [200, 201, 404, 500];
        let monitor = Monitor::new(1000);
        let start = std::time::Instant::now();
        let mut slow = 0_u32;
        for i in 0..N {
            let i = i as usize;
            slow += u32::from(monitor.record(
                &routes[i % routes.len()],
                methods[i % methods.len()],
                statuses[i % statuses.len()],
                Duration::from_micros((i % 5000) as u64),
                NOW + i as i64,
            ));
        }
        let elapsed = start.elapsed();
        println!(
            "record: {:.1} ns/record over {N} records ({slow} slow)",
            elapsed.as_nanos() as f64 / f64::from(N)
        );

        let monitor = Arc::new(Monitor::new(1000));
        let start = std::time::Instant::now();
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let monitor = Arc::clone(&monitor);
                let routes = routes.clone();
                std::thread::spawn(move || {
                    for i in 0..N / 2 {
                        let i = i as usize + t;
                        monitor.record(
                            &routes[i % routes.len()],
                            "GET",
                            200,
                            Duration::from_micros(700),
                            NOW,
                        );
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        println!(
            "record, 2 threads contending: {:.1} ns/record (wall clock / total records)",
            start.elapsed().as_nanos() as f64 / f64::from(N)
        );

        let start = std::time::Instant::now();
        let stats = monitor.stats(60, NOW);
        println!(
            "stats over {} samples: {:?}",
            stats.total_requests,
            start.elapsed()
        );
    }
}
