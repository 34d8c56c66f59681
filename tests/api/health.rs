//! `/health`, `/health/ready` and `/api/v1/health`.

use axum::http::StatusCode;
use medianest::db::{Db, Location, migrations};

use crate::support::{self, get};

#[tokio::test]
async fn liveness_is_ok() {
    let t = support::test_state();
    let r = get(&t.router(), "/health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), serde_json::json!({ "status": "ok" }));
}

#[tokio::test]
async fn readiness_is_ok_with_its_checks() {
    let t = support::test_state();
    let r = get(&t.router(), "/health/ready").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    assert_eq!(body["status"], "ready", "{body}");
    let db = &body["checks"]["database"];
    assert_eq!(db["status"], "ok", "{body}");
    assert_eq!(db["schemaVersion"], migrations::latest_version(), "{body}");
    assert!(db["latencyMs"].is_number(), "{body}");
}

#[tokio::test]
async fn readiness_is_503_naming_the_database_when_it_is_not_migrated() {
    let t = support::test_state_with_db(
        |_| {},
        |_| {
            let name = format!("unmigrated-{}", uuid::Uuid::new_v4().simple());
            Db::open(Location::Memory(name), 1).unwrap()
        },
    );
    let r = get(&t.router(), "/health/ready").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert!(r.header("x-correlation-id").is_some());
    let body = r.json();
    assert_eq!(body["status"], "unavailable", "{body}");
    let db = &body["checks"]["database"];
    assert_eq!(db["status"], "error", "{body}");
    assert!(
        db["message"].as_str().is_some_and(|m| !m.is_empty()),
        "the failing check says why: {body}"
    );
    // Liveness does not depend on the database.
    assert_eq!(get(&t.router(), "/health").await.status, StatusCode::OK);
}

async fn insert_services(db: &Db, statuses: &'static [&'static str]) {
    insert_services_from(db, 0, statuses).await;
}

async fn insert_services_from(db: &Db, first: usize, statuses: &'static [&'static str]) {
    db.write(move |tx| {
        for (i, status) in statuses.iter().enumerate() {
            let i = first + i;
            tx.execute(
                "INSERT INTO service_status (id, service_name, display_name, status)
                 VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    format!("id-{i}"),
                    format!("svc{i}"),
                    format!("Service {i}"),
                    status
                ],
            )?;
        }
        Ok(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn api_health_has_the_documented_shape_and_counts_services() {
    let t = support::test_state();
    insert_services(
        t.state.db(),
        &[
            "up", "up", "up", "down", "degraded", "degraded", "unknown", "disabled",
        ],
    )
    .await;
    let r = get(&t.router(), "/api/v1/health").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let body = r.json();
    assert_eq!(body["success"], true, "{body}");
    let data = &body["data"];
    assert_eq!(data["status"], "degraded", "{body}");
    assert_eq!(data["version"], medianest::VERSION);
    assert!(data["uptimeSeconds"].is_u64(), "{body}");
    assert_eq!(data["database"]["status"], "ok", "{body}");
    assert!(data["database"]["latencyMs"].is_number(), "{body}");
    assert_eq!(
        data["services"],
        serde_json::json!({ "up": 3, "down": 1, "degraded": 2 }),
        "{body}"
    );
}

#[tokio::test]
async fn api_health_is_ok_when_every_service_is_up() {
    let t = support::test_state();
    insert_services(t.state.db(), &["up", "up"]).await;
    let r = get(&t.router(), "/api/v1/health").await;
    let body = r.json();
    assert_eq!(body["data"]["status"], "ok", "{body}");
    assert_eq!(
        body["data"]["services"],
        serde_json::json!({ "up": 2, "down": 0, "degraded": 0 })
    );
}

#[tokio::test]
async fn the_database_probe_is_shared_for_one_second_of_the_clock() {
    let t = support::test_state();
    let app = t.router();
    insert_services(t.state.db(), &["up"]).await;
    let services = |r: &support::TestResponse| r.json()["data"]["services"].clone();
    let first = get(&app, "/api/v1/health").await;
    assert_eq!(services(&first)["up"], 1);

    insert_services_from(t.state.db(), 1, &["down"]).await;
    let cached = get(&app, "/api/v1/health").await;
    assert_eq!(
        services(&cached),
        serde_json::json!({ "up": 1, "down": 0, "degraded": 0 }),
        "within the probe TTL the last probe answers"
    );

    t.clock
        .advance(i64::try_from(medianest::health::PROBE_TTL.as_millis()).unwrap() + 1);
    let fresh = get(&app, "/api/v1/health").await;
    assert_eq!(
        services(&fresh),
        serde_json::json!({ "up": 1, "down": 1, "degraded": 0 })
    );
    assert_eq!(fresh.json()["data"]["status"], "degraded");
}
