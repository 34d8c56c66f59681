//! Service health through the API (SPEC sections 6, 7 and 8) against the simulated Plex,
//! Overseerr and Uptime Kuma: what each status means, what a cycle stores (in one transaction),
//! uptime and history from the samples, the 30 s list cache and its refresh rules, staleness,
//! admin notifications after two failed checks, and the admin settings and breaker pages.
//!
//! Cycles are run directly with `run_cycle`; time moves on the manual clock only.

use axum::http::StatusCode;
use medianest::config::Secret;
use medianest::sim::overseerr::{FakeOverseerr, Fault};
use medianest::sim::uptime_kuma::{KumaVersion, MonitorState};
use medianest::time::rfc3339;
use serde_json::{Value, json};

use crate::support::services::{OVERSEERR_KEY, ServiceWorld, refused_url, world, world_with};
use crate::support::{START_MS, assert_error, insert_user, new_session, scalar, sql_text};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

fn names(list: &[Value]) -> Vec<&str> {
    list.iter().map(|s| s["name"].as_str().unwrap()).collect()
}

fn find<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list:?}"))
}

/// The stored options, URL and encrypted key of a service, to show nothing changed.
async fn stored_config(w: &ServiceWorld, name: &str) -> (Option<String>, Option<String>, i64) {
    let state = &w.t.state;
    let url = crate::support::text_value(
        state,
        "SELECT service_url FROM service_config WHERE service_name = ?1",
        vec![sql_text(name)],
    )
    .await;
    let key = crate::support::text_value(
        state,
        "SELECT api_key || '|' || config_data FROM service_config WHERE service_name = ?1",
        vec![sql_text(name)],
    )
    .await;
    let updated = scalar(
        state,
        "SELECT updated_at FROM service_config WHERE service_name = ?1",
        vec![sql_text(name)],
    )
    .await;
    (url, key, updated)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_are_unknown_until_checked_then_each_is_reported() {
    let w = world().await;

    // Before the first check every configured service is listed as unknown, and found by name.
    let list = w.list().await;
    assert_eq!(names(&list), ["overseerr", "plex", "uptime_kuma"]);
    for s in &list {
        assert_eq!(s["status"], "unknown", "{s}");
        assert_eq!(s["lastCheckAt"], Value::Null, "{s}");
        assert_eq!(s["stale"], false, "nothing to be stale yet: {s}");
    }
    let r = w.get(&w.user, "/api/v1/services/plex").await;
    assert_eq!(r.data()["status"], "unknown");

    w.cycle().await;
    let list = w.list().await;
    assert_eq!(
        names(&list),
        ["kuma:1", "kuma:2", "overseerr", "plex", "uptime_kuma"]
    );
    let plex = find(&list, "plex");
    assert_eq!(plex["displayName"], "Plex");
    assert_eq!(plex["status"], "up");
    assert_eq!(
        plex["message"],
        format!("Plex Media Server {}", medianest::sim::plex::VERSION)
    );
    assert_eq!(plex["url"], w.plex.url());
    assert_eq!(plex["breaker"], "closed");
    assert_eq!(plex["lastCheckAt"], rfc3339(START_MS));
    assert_eq!(plex["lastChangeAt"], rfc3339(START_MS));
    assert_eq!(plex["uptime24h"], 100.0);
    assert_eq!(plex["uptime7d"], 100.0);
    assert_eq!(plex["uptime30d"], 100.0);
    assert_eq!(plex["stale"], false);
    assert!(plex["responseTimeMs"].as_i64().is_some(), "{plex}");

    let overseerr = find(&list, "overseerr");
    assert_eq!(overseerr["status"], "up");
    assert_eq!(overseerr["message"], "Overseerr 1.33.2");
    let kuma = find(&list, "uptime_kuma");
    assert_eq!(kuma["status"], "up");
    assert_eq!(kuma["message"], "Status page \"Home Services\", 2 monitors");
    let media = find(&list, "kuma:1");
    assert_eq!(media["displayName"], "Media");
    assert_eq!(media["status"], "up");
    assert_eq!(
        media["responseTimeMs"],
        medianest::sim::uptime_kuma::UP_PING_MS
    );
    assert_eq!(media["url"], w.kuma.url(), "a monitor belongs to its Kuma");
    assert_eq!(find(&list, "kuma:2")["displayName"], "NAS");

    // One call per check, with the stored key.
    assert_eq!(w.plex.requests("GET /identity"), 1);
    assert_eq!(w.overseerr.requests("GET /api/v1/status"), 1);
    assert_eq!(w.overseerr.last_api_key().as_deref(), Some(OVERSEERR_KEY));
    assert_eq!(w.kuma.requests("GET /api/status-page/{slug}"), 1);
    assert_eq!(w.kuma.requests("GET /api/status-page/heartbeat/{slug}"), 1);

    // By name: a Kuma monitor too; unknown names are 404.
    let r = w.get(&w.user, "/api/v1/services/kuma:2").await;
    assert_eq!(r.data()["status"], "up");
    for path in [
        "/api/v1/services/jellyfin",
        "/api/v1/services/kuma:99",
        "/api/v1/services/jellyfin/history",
    ] {
        let r = w.get(&w.user, path).await;
        assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_rules_up_degraded_down_disabled_unknown() {
    let w = world_with(KumaVersion::V2, |c| {
        c.health.degraded_ms = 200;
        c.services.plex.enabled = false;
    })
    .await;
    w.overseerr
        .set_latency(std::time::Duration::from_millis(400));
    let k = &w.kuma;
    k.set_state(2, MonitorState::Down);
    for (id, name) in [(3, "Pending"), (4, "Slow"), (5, "Maint"), (6, "New")] {
        k.add_monitor(id, name);
    }
    k.set_state(3, MonitorState::Pending);
    k.set_state(4, MonitorState::Slow(1500));
    k.set_state(5, MonitorState::Maintenance);
    k.clear_heartbeats(6);

    w.cycle().await;
    let list = w.list().await;
    let status = |name: &str| find(&list, name)["status"].as_str().unwrap().to_owned();

    let overseerr = find(&list, "overseerr");
    assert_eq!(overseerr["status"], "degraded", "{overseerr}");
    let ms = overseerr["responseTimeMs"].as_i64().unwrap();
    assert!(ms >= 400, "{overseerr}");
    assert_eq!(overseerr["message"], format!("Slow: answered in {ms} ms."));

    let plex = find(&list, "plex");
    assert_eq!(plex["status"], "disabled");
    assert_eq!(plex["message"], "Disabled by an admin.");
    assert_eq!(plex["stale"], false);
    assert_eq!(
        w.plex.total_requests(),
        0,
        "a disabled service is not called"
    );
    assert_eq!(w.rows("service_metrics", "plex").await, 0, "nor sampled");

    assert_eq!(status("uptime_kuma"), "up");
    assert_eq!(status("kuma:1"), "up");
    assert_eq!(status("kuma:2"), "down");
    assert_eq!(status("kuma:3"), "degraded", "pending is degraded");
    assert_eq!(status("kuma:4"), "degraded", "slower than degraded_ms");
    assert_eq!(find(&list, "kuma:4")["responseTimeMs"], 1500);
    assert_eq!(status("kuma:5"), "degraded", "maintenance");
    assert_eq!(status("kuma:6"), "unknown", "no heartbeat yet");

    // The health summary counts the same rows.
    let r = w.get(&w.user, "/api/v1/health").await;
    let services = &r.data()["services"];
    assert_eq!(services["up"], 2, "{services}");
    assert_eq!(services["down"], 1, "{services}");
    assert_eq!(services["degraded"], 4, "{services}");

    // The monitor that went down has an incident (medium: a watched monitor); the degraded
    // ones have none.
    let open = scalar(
        &w.t.state,
        "SELECT count(*) FROM service_incidents WHERE status = 'open'",
        vec![],
    )
    .await;
    assert_eq!(open, 1);
    let severity = crate::support::text_value(
        &w.t.state,
        "SELECT severity FROM service_incidents WHERE service_name = 'kuma:2'",
        vec![],
    )
    .await;
    assert_eq!(severity.as_deref(), Some("medium"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_writes_status_samples_and_incidents_in_one_transaction() {
    let w = world().await;
    w.cycle().await;
    let samples = |w: &ServiceWorld| {
        let state = w.t.state.clone();
        async move { scalar(&state, "SELECT count(*) FROM service_metrics", vec![]).await }
    };
    let before = samples(&w).await;
    // 5 services, each an `up` sample and a response time.
    assert_eq!(before, 10);

    // Make the incident insert fail: the status rows and samples of the same cycle (of every
    // service, not only Overseerr's) must not be kept either.
    w.t.state
        .db()
        .write(|tx| {
            tx.execute_batch(
                "CREATE TRIGGER refuse_incidents BEFORE INSERT ON service_incidents
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    w.overseerr.fail_next(1, Fault::Status(500));
    w.t.clock.advance(MINUTE);
    let failed = medianest::services::manager::run_cycle(&w.t.state).await;
    assert!(failed.is_err(), "the write failed, so the cycle did");
    assert_eq!(samples(&w).await, before, "no sample of the failed cycle");
    let status = crate::support::text_value(
        &w.t.state,
        "SELECT status || ' ' || last_check_at FROM service_status WHERE service_name = 'overseerr'",
        vec![],
    )
    .await;
    assert_eq!(status, Some(format!("up {START_MS}")));
    let plex_checked = scalar(
        &w.t.state,
        "SELECT last_check_at FROM service_status WHERE service_name = 'plex'",
        vec![],
    )
    .await;
    assert_eq!(
        plex_checked, START_MS,
        "Plex's row of that cycle was rolled back too"
    );

    w.t.state
        .db()
        .write(|tx| {
            tx.execute_batch("DROP TRIGGER refuse_incidents")?;
            Ok(())
        })
        .await
        .unwrap();
    w.overseerr.fail_next(1, Fault::Status(500));
    w.t.clock.advance(MINUTE);
    w.cycle().await;
    // 4 services answered (2 samples each), Overseerr only an `up` = 0 sample.
    assert_eq!(samples(&w).await, before + 9);
    assert_eq!(w.status("overseerr").await, "down");
    assert_eq!(w.rows("service_incidents", "overseerr").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uptime_over_24h_7d_and_30d_comes_from_the_samples() {
    let mut w = world().await;
    let clock = w.t.clock.clone();
    let at = move |offset: i64| clock.set(START_MS + offset);
    w.overseerr.fail_next(1, Fault::Status(500));
    w.cycle().await;
    let s = w.service("overseerr").await;
    assert_eq!(
        (&s["uptime24h"], &s["uptime7d"], &s["uptime30d"]),
        (&json!(0.0), &json!(0.0), &json!(0.0))
    );

    at(HOUR);
    w.cycle().await;
    let s = w.service("overseerr").await;
    assert_eq!(s["uptime24h"], 50.0);
    assert_eq!(s["uptime7d"], 50.0);
    assert_eq!(s["uptime30d"], 50.0);
    assert_eq!(s["lastChangeAt"], rfc3339(START_MS + HOUR));

    // Two days on: the first two samples have left the 24 h window only.
    at(2 * DAY);
    w.renew_sessions().await;
    w.cycle().await;
    let s = w.service("overseerr").await;
    assert_eq!(s["uptime24h"], 100.0);
    assert_eq!(s["uptime7d"], 66.67);
    assert_eq!(s["uptime30d"], 66.67);

    // Ten days on: the 7-day window holds the newest sample alone.
    at(10 * DAY);
    w.renew_sessions().await;
    w.cycle().await;
    let s = w.service("overseerr").await;
    assert_eq!(s["uptime24h"], 100.0);
    assert_eq!(s["uptime7d"], 100.0);
    assert_eq!(s["uptime30d"], 75.0);

    // The outage was one incident, resolved when the service came back.
    let incident = crate::support::text_value(
        &w.t.state,
        "SELECT status || ' ' || created_at || ' ' || resolved_at FROM service_incidents
         WHERE service_name = 'overseerr'",
        vec![],
    )
    .await;
    assert_eq!(
        incident,
        Some(format!("resolved {START_MS} {}", START_MS + HOUR))
    );
    assert_eq!(w.rows("service_incidents", "overseerr").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_has_fixed_buckets_per_window() {
    let w = world().await;
    w.cycle().await;
    w.t.clock.advance(30 * MINUTE);
    w.overseerr.fail_next(1, Fault::Status(500));
    w.cycle().await;
    w.t.clock.advance(30 * MINUTE);
    w.cycle().await;
    let now = START_MS + HOUR;

    let history = |window: &str| {
        let path = format!("/api/v1/services/overseerr/history?window={window}");
        let w = &w;
        async move {
            let r = w.get(&w.user, &path).await;
            r.data()["buckets"].as_array().unwrap().clone()
        }
    };

    // 24 h in 96 buckets of 15 min: samples at now-60', now-30' and now (the last bucket
    // includes the present).
    let b = history("24h").await;
    assert_eq!(b.len(), 96);
    assert_eq!(b[0]["t"], rfc3339(now - DAY));
    assert_eq!(b[1]["t"], rfc3339(now - DAY + 15 * MINUTE));
    let filled: Vec<usize> = (0..96).filter(|&i| !b[i]["uptime"].is_null()).collect();
    assert_eq!(filled, [92, 94, 95], "{b:?}");
    assert_eq!(b[92]["uptime"], 100.0);
    assert_eq!(b[94]["uptime"], 0.0);
    assert_eq!(
        b[94]["avgResponseMs"],
        Value::Null,
        "a failed check has no time"
    );
    assert_eq!(b[95]["uptime"], 100.0);
    assert!(b[95]["avgResponseMs"].as_f64().is_some(), "{}", b[95]);
    // Without a window: 24 h.
    let r = w.get(&w.user, "/api/v1/services/overseerr/history").await;
    assert_eq!(r.data()["buckets"].as_array().unwrap().len(), 96);

    for (window, count) in [("7d", 84), ("30d", 90)] {
        let b = history(window).await;
        assert_eq!(b.len(), count, "{window}");
        let last = &b[count - 1];
        assert_eq!(last["uptime"], 66.67, "{window}: {last}");
        assert!(
            b[..count - 1].iter().all(|x| x["uptime"].is_null()),
            "{window}"
        );
    }

    let r = w
        .get(&w.user, "/api/v1/services/overseerr/history?window=1y")
        .await;
    let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(e["details"]["fields"]["window"].is_string(), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_is_cached_30s_and_refresh_follows_the_rules() {
    let w = world().await;
    let other_id = insert_user(&w.t.state, "other", None, "user", None).await;
    let other = new_session(&w.t.state, &other_id).await.token;
    w.cycle().await;
    let checks = || w.overseerr.requests("GET /api/v1/status");
    assert_eq!(checks(), 1);

    let r = w.get(&w.user, "/api/v1/services").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("x-cache"),
        Some("HIT"),
        "the cycle filled the cache"
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    w.t.clock.advance(30_001);
    let r = w.get(&w.user, "/api/v1/services").await;
    assert_eq!(r.header("x-cache"), Some("MISS"), "30 s are over");
    let r = w.get(&w.user, "/api/v1/services/overseerr").await;
    assert_eq!(r.header("x-cache"), Some("HIT"));
    assert_eq!(checks(), 1, "reading the list calls no upstream");

    // Admins refresh at once, every time.
    w.overseerr.set_version("1.34.0");
    for n in 2..=3 {
        let r = w.get(&w.admin, "/api/v1/services?refresh=true").await;
        assert_eq!(r.header("x-cache"), Some("MISS"));
        assert_eq!(checks(), n);
        assert_eq!(
            find(r.data().as_array().unwrap(), "overseerr")["message"],
            "Overseerr 1.34.0"
        );
    }

    // Users: one refresh per 10 s for everybody together.
    let r = w.get(&w.user, "/api/v1/services?refresh=true").await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    assert_eq!(checks(), 4);
    w.t.clock.advance(9_999);
    for token in [&w.user, &other] {
        let r = w.get(token, "/api/v1/services?refresh=true").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("x-cache"), Some("HIT"));
    }
    let r = w.get(&other, "/api/v1/services/plex?refresh=true").await;
    assert_eq!(r.header("x-cache"), Some("HIT"));
    assert_eq!(checks(), 4, "no refresh within 10 s of the last");
    w.t.clock.advance(1);
    let r = w.get(&other, "/api/v1/services?refresh=true").await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    assert_eq!(checks(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_not_checked_for_two_intervals_are_stale() {
    let w = world_with(KumaVersion::V2, |c| c.services.plex.enabled = false).await;
    w.cycle().await;
    let interval = w.t.state.config().health.interval_secs as i64 * 1000;
    w.t.clock.advance(2 * interval);
    let list = w.list().await;
    assert!(list.iter().all(|s| s["stale"] == false), "{list:?}");
    w.t.clock.advance(2 * interval);
    let list = w.list().await;
    for s in &list {
        let want = s["status"] != "disabled";
        assert_eq!(s["stale"], want, "{s}");
    }
    assert_eq!(
        find(&list, "overseerr")["status"],
        "up",
        "old news, still shown"
    );
    w.cycle().await;
    let list = w.list().await;
    assert!(list.iter().all(|s| s["stale"] == false), "{list:?}");
}

/// Notifications and their live events seen by the bus since the last call.
fn drain(
    rx: &mut tokio::sync::broadcast::Receiver<std::sync::Arc<medianest::events::Event>>,
) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push((e.kind.to_owned(), serde_json::from_str(&e.data).unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_hear_of_an_outage_after_two_failed_checks_and_of_the_recovery() {
    let w = world().await;
    let second_admin = insert_user(&w.t.state, "admin2", None, "admin", None).await;
    let mut rx = w.t.state.events().subscribe();
    let admins = [w.admin_id.clone(), second_admin];
    let count = |kind: &'static str| {
        let w = &w;
        let admins = admins.clone();
        async move {
            let mut n = Vec::new();
            for id in admins.iter().chain([&w.user_id]) {
                n.push(w.notifications(id, kind).await);
            }
            n
        }
    };
    let created = |events: &[(String, Value)]| {
        events
            .iter()
            .filter(|(k, _)| k == "notification.created")
            .count()
    };
    let overseerr_status = |events: &[(String, Value)]| {
        events
            .iter()
            .filter(|(k, d)| k == "service.status" && d["name"] == "overseerr")
            .map(|(_, d)| d["status"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    w.cycle().await;
    assert_eq!(overseerr_status(&drain(&mut rx)), ["up"]);

    // A blip: one failed check, then fine. Nobody is paged, in either direction.
    w.overseerr.fail_next(1, Fault::Status(500));
    w.t.clock.advance(MINUTE);
    w.cycle().await;
    let events = drain(&mut rx);
    assert_eq!(overseerr_status(&events), ["down"]);
    assert_eq!(created(&events), 0);
    w.t.clock.advance(MINUTE);
    w.cycle().await;
    assert_eq!(created(&drain(&mut rx)), 0);
    assert_eq!(count("service.down").await, [0, 0, 0]);
    assert_eq!(count("service.up").await, [0, 0, 0]);

    // A real outage: the second failure in a row tells each admin, once.
    w.overseerr.fail_next(3, Fault::Status(500));
    w.t.clock.advance(MINUTE);
    w.cycle().await;
    assert_eq!(created(&drain(&mut rx)), 0);
    assert_eq!(count("service.down").await, [0, 0, 0]);
    w.t.clock.advance(MINUTE);
    w.cycle().await;
    let events = drain(&mut rx);
    assert_eq!(created(&events), 2, "one live event per admin");
    let (_, notification) = events
        .iter()
        .find(|(k, _)| k == "notification.created")
        .unwrap();
    assert_eq!(notification["type"], "service.down");
    assert_eq!(notification["title"], "Overseerr is down");
    assert_eq!(notification["metadata"]["service"], "overseerr");
    assert_eq!(count("service.down").await, [1, 1, 0]);
    w.t.clock.advance(MINUTE);
    w.cycle().await;
    assert_eq!(created(&drain(&mut rx)), 0, "still down: no second page");
    assert_eq!(count("service.down").await, [1, 1, 0]);

    // Back.
    w.t.clock.advance(MINUTE);
    w.cycle().await;
    let events = drain(&mut rx);
    assert_eq!(overseerr_status(&events), ["up"]);
    assert_eq!(created(&events), 2);
    assert_eq!(count("service.up").await, [1, 1, 0]);
    assert_eq!(count("service.down").await, [1, 1, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_settings_mask_keys_and_store_them_encrypted() {
    let w = world().await;
    let r = w.get(&w.admin, "/api/v1/admin/services").await;
    let list = r.data();
    let list = list.as_array().unwrap();
    assert_eq!(names(list), ["plex", "overseerr", "uptime_kuma"]);
    let overseerr = find(list, "overseerr");
    assert_eq!(overseerr["apiKey"], "****cdef");
    assert_eq!(overseerr["url"], w.overseerr.url());
    assert_eq!(overseerr["enabled"], true);
    assert_eq!(overseerr["timeoutMs"], 5000);
    let plex_token = w.plex.token();
    assert_eq!(
        find(list, "plex")["apiKey"],
        format!("****{}", &plex_token[plex_token.len() - 4..])
    );
    let kuma = find(list, "uptime_kuma");
    assert_eq!(kuma["apiKey"], Value::Null);
    assert_eq!(kuma["options"], json!({"slug": "home"}));
    assert!(!r.text().contains(OVERSEERR_KEY) && !r.text().contains(&plex_token));

    let raw = |w: &ServiceWorld| {
        let state = w.t.state.clone();
        async move {
            crate::support::text_value(
                &state,
                "SELECT api_key FROM service_config WHERE service_name = 'overseerr'",
                vec![],
            )
            .await
        }
    };
    let stored = raw(&w).await.unwrap();
    assert!(!stored.contains(OVERSEERR_KEY), "encrypted at rest");

    // A new key: masked in the answer, encrypted in the row, sent on the check the save runs.
    let new_key = "second-overseerr-key-WXYZ";
    let r = w
        .put_service(
            "overseerr",
            json!({"url": w.overseerr.url(), "apiKey": new_key, "enabled": true}),
        )
        .await;
    assert_eq!(r.data()["apiKey"], "****WXYZ");
    assert!(!r.text().contains(new_key));
    let stored = raw(&w).await.unwrap();
    assert!(!stored.contains(new_key));
    assert_eq!(w.overseerr.last_api_key().as_deref(), Some(new_key));

    // Omitted: kept.
    let r = w.put_service("overseerr", json!({"timeoutMs": 2000})).await;
    assert_eq!(r.data()["apiKey"], "****WXYZ");
    assert_eq!(r.data()["timeoutMs"], 2000);
    assert_eq!(w.overseerr.last_api_key().as_deref(), Some(new_key));
    // Empty: removed.
    let r = w.put_service("overseerr", json!({"apiKey": ""})).await;
    assert_eq!(r.data()["apiKey"], Value::Null);
    assert_eq!(raw(&w).await, None);
    assert_eq!(w.overseerr.last_api_key(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_settings_are_refused_and_change_nothing() {
    let w = world().await;
    let before = stored_config(&w, "overseerr").await;
    let cases = [
        (json!({"url": "ftp://overseerr.lan"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (json!({"timeoutMs": 100}), "timeoutMs"),
        (json!({"timeoutMs": 600_000}), "timeoutMs"),
        (json!({"options": {"colour": "red"}}), "options.colour"),
        (json!({"apiKey": "a\u{7}b"}), "apiKey"),
    ];
    for (body, field) in cases {
        let r = w.put_service("overseerr", body.clone()).await;
        let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(e["details"]["fields"][field].is_string(), "{body}: {e}");
    }
    let r = w
        .put_service("uptime_kuma", json!({"options": {"slug": "Not A Slug"}}))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    let r = w
        .put_service("overseerr", json!({"url": "http://x", "colour": "red"}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = w.put_service("sonarr", json!({"url": "http://x"})).await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");

    assert_eq!(stored_config(&w, "overseerr").await, before);
    assert_eq!(
        w.overseerr.total_requests(),
        0,
        "a refused save runs no check"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_a_working_url_shows_up_at_once_without_a_restart() {
    let down = refused_url();
    let w = world_with(KumaVersion::V2, |c| c.services.overseerr.url = Some(down)).await;
    w.cycle().await;
    let s = w.service("overseerr").await;
    assert_eq!(s["status"], "down");
    assert_eq!(s["message"], "Seerr is temporarily unavailable.");

    // Same instant on the clock, same state: the save rebuilds the client and checks at once.
    let r = w
        .put_service(
            "overseerr",
            json!({"url": w.overseerr.url(), "apiKey": OVERSEERR_KEY}),
        )
        .await;
    assert_eq!(r.data()["url"], w.overseerr.url());
    assert_eq!(w.overseerr.requests("GET /api/v1/status"), 1);
    let r = w.get(&w.user, "/api/v1/services/overseerr").await;
    let s = r.data();
    assert_eq!(s["status"], "up", "{s}");
    assert_eq!(s["message"], "Overseerr 1.33.2");
    assert_eq!(s["url"], w.overseerr.url());
    assert_eq!(w.rows("service_incidents", "overseerr").await, 1);
    let open = scalar(
        &w.t.state,
        "SELECT count(*) FROM service_incidents WHERE status = 'open'",
        vec![],
    )
    .await;
    assert_eq!(open, 0, "the outage was resolved by the save's check");

    // Disabling works the same way.
    let r = w.put_service("overseerr", json!({"enabled": false})).await;
    assert_eq!(r.data()["enabled"], false);
    assert_eq!(w.status("overseerr").await, "disabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testing_settings_checks_live_and_saves_nothing() {
    let w = world().await;
    w.cycle().await;
    let before = stored_config(&w, "overseerr").await;
    let samples = scalar(&w.t.state, "SELECT count(*) FROM service_metrics", vec![]).await;

    let other = FakeOverseerr::start().await.unwrap();
    other.set_version("1.40.0");
    let r = w
        .test_service(
            "overseerr",
            json!({"url": other.url(), "apiKey": "candidate-key-1234"}),
        )
        .await;
    let d = r.data();
    assert_eq!(d["ok"], true, "{d}");
    assert_eq!(d["version"], "1.40.0");
    assert_eq!(d["error"], Value::Null);
    assert!(d["latencyMs"].as_u64().is_some());
    assert_eq!(other.last_api_key().as_deref(), Some("candidate-key-1234"));

    // The stored settings, when none are given.
    let r = w.test_service("overseerr", json!({})).await;
    assert_eq!(r.data()["version"], "1.33.2");
    assert_eq!(w.overseerr.last_api_key().as_deref(), Some(OVERSEERR_KEY));

    // A dead URL, often: an answer each time, and the live breaker does not notice.
    let dead = refused_url();
    for _ in 0..5 {
        let r = w
            .test_service(
                "overseerr",
                json!({"url": dead, "apiKey": OVERSEERR_KEY, "timeoutMs": 500}),
            )
            .await;
        let d = r.data();
        assert_eq!(d["ok"], false, "{d}");
        assert_eq!(d["error"], "Seerr is temporarily unavailable.");
        assert_eq!(d["version"], Value::Null);
    }
    let garbage = FakeOverseerr::start().await.unwrap();
    garbage.fail_next(1, Fault::Garbage);
    let r = w
        .test_service(
            "overseerr",
            json!({"url": garbage.url(), "apiKey": OVERSEERR_KEY}),
        )
        .await;
    assert_eq!(r.data()["error"], "Seerr returned an unexpected response.");
    let breaker = w.breaker("overseerr").await;
    assert_eq!(breaker["state"], "closed");
    assert_eq!(breaker["consecutiveFailures"], 0);

    let r = w.test_service("plex", json!({"url": w.plex.url()})).await;
    assert_eq!(r.data()["version"], medianest::sim::plex::VERSION);
    let r = w.test_service("uptime_kuma", json!({})).await;
    assert_eq!(r.data()["ok"], true);
    let r = w
        .test_service("overseerr", json!({"url": "gopher://x"}))
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");

    assert_eq!(
        stored_config(&w, "overseerr").await,
        before,
        "nothing saved"
    );
    let after = scalar(&w.t.state, "SELECT count(*) FROM service_metrics", vec![]).await;
    assert_eq!(after, samples, "no samples from tests");
    assert_eq!(w.status("overseerr").await, "up");
    assert_eq!(w.service("overseerr").await["url"], w.overseerr.url());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breakers_are_listed_and_an_admin_can_close_one() {
    let w = world().await;
    w.overseerr.fail_next(5, Fault::Status(500));
    for n in 1..=4 {
        w.cycle().await;
        let b = w.breaker("overseerr").await;
        assert_eq!(b["state"], "closed");
        assert_eq!(b["consecutiveFailures"], n);
    }
    w.cycle().await;
    let b = w.breaker("overseerr").await;
    assert_eq!(b["state"], "open");
    assert_eq!(b["consecutiveFailures"], 5);
    assert_eq!(b["openedAt"], rfc3339(START_MS));
    assert_eq!(b["retryAt"], rfc3339(START_MS + 30_000));
    assert_eq!(w.service("overseerr").await["breaker"], "open");

    let r = w.get(&w.admin, "/api/v1/admin/integrations").await;
    let services: Vec<String> = r
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["service"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(services, ["plex", "overseerr", "uptime_kuma", "plex_tv"]);
    assert_eq!(w.breaker("plex").await["state"], "closed");

    let r = crate::support::call("POST", "/api/v1/admin/integrations/overseerr/reset")
        .bearer(&w.admin)
        .send(&w.app)
        .await;
    assert_eq!(r.data(), json!({"service": "overseerr", "state": "closed"}));
    let b = w.breaker("overseerr").await;
    assert_eq!(b["state"], "closed");
    assert_eq!(b["consecutiveFailures"], 0);
    assert_eq!(b["retryAt"], Value::Null);
    assert_eq!(
        w.service("overseerr").await["breaker"],
        "closed",
        "the cached list does not show the old breaker"
    );
    let before = w.overseerr.requests("GET /api/v1/status");
    w.cycle().await;
    assert_eq!(w.overseerr.requests("GET /api/v1/status"), before + 1);
    assert_eq!(w.status("overseerr").await, "up");

    for (name, status) in [
        ("plex_tv", StatusCode::OK),
        ("sonarr", StatusCode::NOT_FOUND),
    ] {
        let r = crate::support::call("POST", &format!("/api/v1/admin/integrations/{name}/reset"))
            .bearer(&w.admin)
            .send(&w.app)
            .await;
        assert_eq!(r.status, status, "{name}: {}", r.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kuma_monitors_are_services_in_both_page_versions() {
    for (first, second) in [
        (KumaVersion::V1_23, KumaVersion::V2),
        (KumaVersion::V2, KumaVersion::V1_23),
    ] {
        let w = world_with(first, |_| {}).await;
        w.kuma.set_incident(Some(("Disk", "Replacing a disk")));
        w.kuma.set_state(2, MonitorState::Down);
        w.cycle().await;
        let list = w.list().await;
        assert_eq!(find(&list, "kuma:1")["status"], "up", "{first:?}");
        assert_eq!(find(&list, "kuma:2")["status"], "down", "{first:?}");
        assert_eq!(find(&list, "kuma:2")["displayName"], "NAS");

        // Kuma upgraded (or downgraded) under a running portal; a monitor leaves the page and
        // another joins.
        w.kuma.set_version(second);
        w.kuma.set_state(2, MonitorState::Up);
        w.kuma.remove_monitor(1);
        w.kuma.add_monitor(7, "Printer");
        w.t.clock.advance(MINUTE);
        w.cycle().await;
        let list = w.list().await;
        assert_eq!(
            names(&list),
            ["kuma:2", "kuma:7", "overseerr", "plex", "uptime_kuma"],
            "{second:?}"
        );
        assert_eq!(find(&list, "kuma:2")["status"], "up", "{second:?}");
        assert_eq!(find(&list, "kuma:7")["displayName"], "Printer");
        assert_eq!(
            find(&list, "uptime_kuma")["message"],
            "Status page \"Home Services\", 2 monitors; incident: Disk"
        );
    }
}

/// Kuma's active incidents show on its card: 1.23 and 2.0 send one as `incident`, 2.1 sends
/// `incidents[]` and keeps unpinned ones in its incident history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kuma_incidents_show_on_its_card_in_every_version() {
    for version in [KumaVersion::V1_23, KumaVersion::V2_0, KumaVersion::V2_1] {
        let w = world_with(version, |_| {}).await;
        w.cycle().await;
        assert_eq!(
            w.service("uptime_kuma").await["message"],
            "Status page \"Home Services\", 2 monitors"
        );
        w.kuma.post_incident("Disk", "Replacing a disk");
        w.t.clock.advance(MINUTE);
        w.cycle().await;
        assert_eq!(
            w.service("uptime_kuma").await["message"],
            "Status page \"Home Services\", 2 monitors; incident: Disk",
            "{version:?}"
        );
    }
    // 2.1: an incident taken off the page is still active; a resolved one is gone.
    let w = world_with(KumaVersion::V2_1, |_| {}).await;
    w.kuma.post_incident("Disk", "Replacing a disk");
    w.kuma.unpin_incidents();
    w.kuma.post_incident("Power", "On battery");
    w.cycle().await;
    assert_eq!(
        w.service("uptime_kuma").await["message"],
        "Status page \"Home Services\", 2 monitors; incident: Power, Disk"
    );
    w.kuma.set_incident(None);
    w.t.clock.advance(MINUTE);
    w.cycle().await;
    assert_eq!(
        w.service("uptime_kuma").await["message"],
        "Status page \"Home Services\", 2 monitors"
    );
}

/// Kuma 2.x answers an unknown slug 404; 1.23 never answers it (and answers its heartbeats with
/// empty maps): on every version it is a configuration error, not an outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kuma_slug_is_a_configuration_error_not_an_outage() {
    for version in [KumaVersion::V1_23, KumaVersion::V2_0, KumaVersion::V2_1] {
        let w = world_with(version, |_| {}).await;
        w.cycle().await;
        let r = w
            .put_service(
                "uptime_kuma",
                json!({"timeoutMs": 500, "options": {"slug": "nope"}}),
            )
            .await;
        assert_eq!(r.data()["options"], json!({"slug": "nope"}));
        for _ in 0..3 {
            w.t.clock.advance(MINUTE);
            w.cycle().await;
        }
        let list = w.list().await;
        let kuma = find(&list, "uptime_kuma");
        assert_eq!(
            kuma["message"],
            "Configuration error: status page slug \"nope\" not found in Uptime Kuma \
             (Kuma 1.23 matches its case exactly).",
            "{version:?}"
        );
        assert_eq!(kuma["status"], "unknown", "not down: Kuma answered");
        // The monitors are not reported down: they keep what was last known of them.
        assert_eq!(find(&list, "kuma:1")["status"], "up");
        assert_eq!(find(&list, "kuma:2")["status"], "up");
        let incidents = scalar(
            &w.t.state,
            "SELECT count(*) FROM service_incidents
             WHERE service_name LIKE 'kuma:%' OR service_name = 'uptime_kuma'",
            vec![],
        )
        .await;
        assert_eq!(incidents, 0, "{version:?}");
        assert_eq!(
            w.notifications(&w.admin_id, "service.down").await,
            0,
            "no admin is told Kuma or its monitors are down"
        );
        // Kuma answered (a 404, or heartbeats and then silence): its breaker counts no failure.
        let b = w.breaker("uptime_kuma").await;
        assert_eq!(
            (&b["state"], &b["consecutiveFailures"]),
            (&json!("closed"), &json!(0)),
            "{version:?}"
        );

        // The right slug again: everything reads as before.
        w.put_service("uptime_kuma", json!({"options": {"slug": "home"}}))
            .await;
        assert_eq!(w.status("uptime_kuma").await, "up");
    }
}

/// A page whose slug was edited to capitals on Kuma 1.23 is reached only by that exact slug;
/// 2.x lowercases whatever it is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kuma_slugs_keep_their_case_for_1_23() {
    let w = world_with(KumaVersion::V1_23, |_| {}).await;
    w.kuma.set_slug("Home");
    let r = w
        .put_service(
            "uptime_kuma",
            json!({"timeoutMs": 500, "options": {"slug": "Home"}}),
        )
        .await;
    assert_eq!(r.data()["options"], json!({"slug": "Home"}), "{}", r.text());
    assert_eq!(w.status("uptime_kuma").await, "up");
    w.put_service("uptime_kuma", json!({"options": {"slug": "home"}}))
        .await;
    assert_eq!(w.status("uptime_kuma").await, "unknown");

    w.kuma.set_slug("home");
    w.kuma.set_version(KumaVersion::V2);
    w.put_service("uptime_kuma", json!({"options": {"slug": "HOME"}}))
        .await;
    assert_eq!(w.status("uptime_kuma").await, "up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_key_is_never_in_a_status_or_settings_answer() {
    let w = world_with(KumaVersion::V2, |c| {
        c.services.uptime_kuma.api_key = Some(Secret::new("kuma-api-key-secret-99"));
    })
    .await;
    w.cycle().await;
    for path in [
        "/api/v1/services",
        "/api/v1/admin/services",
        "/api/v1/admin/integrations",
    ] {
        let r = w.get(&w.admin, path).await;
        assert_eq!(r.status, StatusCode::OK);
        let text = r.text();
        for secret in ["kuma-api-key-secret-99", OVERSEERR_KEY, &w.plex.token()] {
            assert!(!text.contains(secret), "{path} shows a secret: {text}");
        }
    }
}

/// A stand-in for someone else's server on a loopback port: records the headers of every
/// request it gets and answers 404.
async fn recorder() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<axum::http::HeaderMap>>>,
) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let record = record.clone();
        async move {
            record.lock().unwrap().push(headers);
            StatusCode::NOT_FOUND
        }
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// The stored Plex token and Overseerr key go only to the origin they were saved for: a test or
/// a save that moves the URL to another scheme, host or port must give the key again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_key_is_never_sent_to_another_url() {
    let w = world().await;
    let before = (
        stored_config(&w, "plex").await,
        stored_config(&w, "overseerr").await,
    );
    let (elsewhere, seen) = recorder().await;
    let plex_port = w.plex.addr().port();
    let moved = [
        elsewhere.clone(),
        format!("https://127.0.0.1:{plex_port}"),
        format!("http://localhost:{plex_port}"),
    ];
    for name in ["plex", "overseerr"] {
        for url in &moved {
            for r in [
                w.test_service(name, json!({ "url": url })).await,
                w.put_service(name, json!({ "url": url })).await,
            ] {
                let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
                assert_eq!(
                    e["details"]["fields"]["apiKey"],
                    "required when the URL's host, port or scheme changes",
                    "{name} {url}: {e}"
                );
            }
        }
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the other server"
    );
    assert_eq!(
        (
            stored_config(&w, "plex").await,
            stored_config(&w, "overseerr").await
        ),
        before,
        "nothing saved"
    );

    // The same origin written another way needs no key; another origin with the key is tested
    // with that key only.
    let r = w
        .test_service("plex", json!({"url": format!("{}/", w.plex.url())}))
        .await;
    assert_eq!(r.data()["ok"], true, "{}", r.text());
    let r = w
        .test_service(
            "plex",
            json!({"url": elsewhere, "apiKey": "candidate-token-1234"}),
        )
        .await;
    assert_eq!(r.data()["ok"], false, "{}", r.text());
    let r = w
        .test_service(
            "overseerr",
            json!({"url": elsewhere, "apiKey": "candidate-key-5678"}),
        )
        .await;
    assert_eq!(r.data()["ok"], false, "{}", r.text());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0]["x-plex-token"], "candidate-token-1234");
    assert_eq!(seen[1]["x-api-key"], "candidate-key-5678");
    let leaked = w.plex.token();
    for headers in &seen {
        for value in headers.values() {
            let value = value.to_str().unwrap_or_default();
            assert!(!value.contains(&leaked) && !value.contains(OVERSEERR_KEY));
        }
    }
}

/// URLs with a user name or password are refused; what users see of a service URL carries
/// neither credentials nor a query, while the admin settings show it as stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_see_service_urls_without_credentials_or_query() {
    let w = world().await;
    let port = w.overseerr.addr().port();
    for url in [
        format!("http://admin:hunter2@127.0.0.1:{port}"),
        format!("http://admin@127.0.0.1:{port}"),
    ] {
        let r = w
            .put_service("overseerr", json!({"url": url, "apiKey": OVERSEERR_KEY}))
            .await;
        let e = assert_error(&r, StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert!(e["details"]["fields"]["url"].is_string(), "{url}: {e}");
    }
    // Stored before the rule (or seeded from the configuration file).
    let stored = format!("http://admin:hunter2@127.0.0.1:{port}/base?apiKey=secret#x");
    w.set_url("overseerr", &stored).await;
    let shown = format!("http://127.0.0.1:{port}/base");
    let r = w.get(&w.user, "/api/v1/services/overseerr").await;
    assert_eq!(r.data()["url"], shown.as_str());
    let r = w.get(&w.user, "/api/v1/services").await;
    assert_eq!(
        find(r.data().as_array().unwrap(), "overseerr")["url"],
        shown.as_str()
    );
    let r = w.get(&w.user, "/api/v1/dashboard").await;
    let body = r.text();
    assert!(
        !body.contains("hunter2") && !body.contains("secret"),
        "{body}"
    );
    assert_eq!(
        find(r.data()["services"].as_array().unwrap(), "overseerr")["url"],
        shown.as_str()
    );
    let r = w.get(&w.admin, "/api/v1/admin/services").await;
    assert_eq!(
        find(r.data().as_array().unwrap(), "overseerr")["url"],
        stored.as_str()
    );
}

/// With an API key in the Kuma connection, `/metrics` adds the monitors that are on no status
/// page (by id from 2.0, by name on 1.23), at most once per 10 s whatever refreshes ask; a
/// refused key is said on the card without making Kuma down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kuma_metrics_add_the_monitors_of_no_page() {
    for (version, printer) in [
        (KumaVersion::V1_23, "kuma:name:Printer"),
        (KumaVersion::V2_0, "kuma:9"),
        (KumaVersion::V2_1, "kuma:9"),
    ] {
        let w = world_with(version, |c| {
            c.services.uptime_kuma.api_key = Some(medianest::config::Secret::new("uk1_s3cret"));
        })
        .await;
        w.kuma.set_api_key(Some("uk1_s3cret"));
        w.kuma.add_private_monitor(9, "Printer");
        w.kuma.set_state(9, MonitorState::Down);
        w.cycle().await;
        let list = w.list().await;
        assert_eq!(
            names(&list),
            [
                "kuma:1",
                "kuma:2",
                printer,
                "overseerr",
                "plex",
                "uptime_kuma"
            ],
            "{version:?}"
        );
        assert_eq!(find(&list, printer)["status"], "down");
        assert_eq!(find(&list, printer)["displayName"], "Printer");
        assert_eq!(
            find(&list, "uptime_kuma")["message"],
            "Status page \"Home Services\", 2 monitors; 1 more monitors from /metrics"
        );
        // Cycles closer together than 10 s reuse the last answer.
        w.cycle().await;
        assert_eq!(w.kuma.requests("GET /metrics"), 1, "{version:?}");
        w.t.clock.advance(10_000);
        w.cycle().await;
        assert_eq!(w.kuma.requests("GET /metrics"), 2);

        // Another key: refused, said on the card; Kuma itself is still up.
        w.put_service("uptime_kuma", json!({"apiKey": "uk1_wrong"}))
            .await;
        let kuma = w.service("uptime_kuma").await;
        assert_eq!(kuma["status"], "up");
        assert!(
            kuma["message"]
                .as_str()
                .unwrap()
                .ends_with("; /metrics refused the API key (wrong, expired or deactivated, or its 60 checks a minute are used up)"),
            "{kuma}"
        );
        // The connection test says so too, and passes with the right key.
        let r = w.test_service("uptime_kuma", json!({})).await;
        assert_eq!(
            (&r.data()["ok"], &r.data()["error"]),
            (
                &json!(false),
                &json!("Uptime Kuma's /metrics refused the API key")
            )
        );
        let r = w
            .test_service("uptime_kuma", json!({"apiKey": "uk1_s3cret"}))
            .await;
        assert_eq!(r.data()["ok"], true, "{}", r.text());
    }
}
