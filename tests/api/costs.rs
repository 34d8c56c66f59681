//! Costs a caller can put on the server (issue 11): the error log a browser or a stranger can
//! write to, YouTube previews and the download quota, the media request quota under
//! concurrency, and per-user download folders.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    self, TestState, assert_error, call, eventually, insert_user, new_session, scalar, sql_text,
};

const REPORT: &str = "/api/v1/errors/report";

async fn report(t: &TestState, token: &str, errors: Value) -> support::TestResponse {
    call("POST", REPORT)
        .bearer(token)
        .json(json!({ "errors": errors }))
        .send(&t.router())
        .await
}

async fn client_rows(t: &TestState, user_id: &str) -> i64 {
    scalar(
        &t.state,
        "SELECT count(*) FROM error_logs WHERE user_id = ?1 AND request_method = 'CLIENT'",
        vec![sql_text(user_id)],
    )
    .await
}

#[tokio::test]
async fn a_flood_of_large_reports_stores_at_most_the_quota_in_bounded_bytes() {
    let t = support::test_state();
    assert_eq!(t.state.config().limits.error_reports_per_hour, 30);
    let user = insert_user(&t.state, "flood", None, "user", None).await;
    let token = new_session(&t.state, &user).await.token;
    let mut accepted = 0;
    let mut limited = 0;
    for call_no in 0..100 {
        // 20 distinct entries of ~50 KiB: a body of about 1 MiB.
        let errors: Vec<Value> = (0..20)
            .map(|j| {
                json!({
                    "level": "error",
                    "message": format!("{call_no}-{j} {}", "m".repeat(20 * 1024)),
                    "stack": "s".repeat(22 * 1024),
                    "url": format!("/page/{}", "u".repeat(4096)),
                    "context": {"blob": "c".repeat(4096)},
                })
            })
            .collect();
        let r = report(&t, &token, json!(errors)).await;
        match r.status {
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                let e = assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
                assert_eq!(e["retryAfter"], 3600, "{e}");
                assert_eq!(r.header("retry-after"), Some("3600"));
                limited += 1;
            }
            other => panic!("call {call_no}: {other} {}", r.text()),
        }
    }
    // 20 rows, then the 10 left, then nothing.
    assert_eq!((accepted, limited), (2, 98));
    assert_eq!(client_rows(&t, &user).await, 30);
    let bytes = scalar(
        &t.state,
        "SELECT sum(length(error_message) + length(request_path) + length(metadata))
           FROM error_logs WHERE user_id = ?1",
        vec![sql_text(&user)],
    )
    .await;
    // message 1 KiB + page 2 KiB + stack 8 KiB + context 2 KiB, plus JSON punctuation.
    assert!(bytes <= 30 * 14 * 1024, "{bytes} bytes stored");

    // Every long field was cut to its cap, and the row says which.
    let admin = insert_user(&t.state, "boss", None, "admin", None).await;
    let admin_token = new_session(&t.state, &admin).await.token;
    let r = call("GET", "/api/v1/admin/errors?limit=1")
        .bearer(&admin_token)
        .send(&t.router())
        .await;
    let row = &r.data()[0];
    assert_eq!(row["message"].as_str().unwrap().len(), 1024);
    assert_eq!(row["path"].as_str().unwrap().len(), 2048);
    assert_eq!(row["metadata"]["stack"].as_str().unwrap().len(), 8 * 1024);
    assert_eq!(row["metadata"]["context"].as_str().unwrap().len(), 2048);
    assert_eq!(
        row["metadata"]["truncated"],
        json!(["message", "stack", "url", "context"])
    );

    // Another user has a quota of their own; the hour passing frees this one's.
    let other = insert_user(&t.state, "calm", None, "user", None).await;
    let other_token = new_session(&t.state, &other).await.token;
    let r = report(
        &t,
        &other_token,
        json!([{"level": "error", "message": "x"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    t.clock.advance(3600 * 1000);
    let r = report(&t, &token, json!([{"level": "error", "message": "later"}])).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(client_rows(&t, &user).await, 31);
}

#[tokio::test]
async fn repeated_reports_are_counted_on_one_row() {
    let t = support::test_state_with(|c| c.limits.error_reports_per_hour = 3);
    let user = insert_user(&t.state, "loop", None, "user", None).await;
    let token = new_session(&t.state, &user).await.token;
    let same = json!({"level": "error", "message": "TypeError: x is undefined", "url": "/home",
                      "stack": "at f (app.js:1)"});
    // Three in one report, then 47 more one by one: one row, 50 occurrences.
    let r = report(&t, &token, json!([same, same, same])).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(r.data(), json!({"accepted": 3, "stored": 3}));
    for _ in 0..47 {
        t.clock.advance(1000);
        let r = report(&t, &token, json!([same])).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    }
    assert_eq!(client_rows(&t, &user).await, 1);
    let occurrences = scalar(
        &t.state,
        "SELECT json_extract(metadata, '$.occurrences') FROM error_logs WHERE user_id = ?1",
        vec![sql_text(&user)],
    )
    .await;
    assert_eq!(occurrences, 50);
    let last_seen = support::text_value(
        &t.state,
        "SELECT json_extract(metadata, '$.lastSeen') FROM error_logs WHERE user_id = ?1",
        vec![sql_text(&user)],
    )
    .await;
    assert!(last_seen.is_some_and(|s| s.ends_with('Z')));

    // Another page or message is another row, up to the quota of 3.
    let r = report(
        &t,
        &token,
        json!([{"level": "error", "message": "TypeError: x is undefined", "url": "/other"},
               {"level": "error", "message": "fetch failed", "url": "/home"}]),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(client_rows(&t, &user).await, 3);
    let r = report(&t, &token, json!([{"level": "error", "message": "new"}])).await;
    assert_error(&r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    // At the quota a repeat is still counted.
    let r = report(&t, &token, json!([same])).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(client_rows(&t, &user).await, 3);

    // After the hour the same error starts a new row.
    t.clock.advance(3600 * 1000);
    let r = report(&t, &token, json!([same])).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(client_rows(&t, &user).await, 4);
}

/// The `medianest_unlogged_errors_total` sample for `code`.
async fn unlogged(t: &TestState, code: &str) -> Option<String> {
    let text = support::get(&t.router(), "/metrics").await.text();
    let prefix = format!("medianest_unlogged_errors_total{{code=\"{code}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
}

#[tokio::test]
async fn anonymous_not_configured_failures_are_counted_not_stored() {
    let t = support::test_state();
    assert!(t.state.config().webhooks.overseerr_secret.is_none());
    t.state.start_background();
    let app = t.router();
    for _ in 0..1000 {
        let r = call("POST", "/api/v1/webhooks/overseerr")
            .json(json!({"notification_type": "MEDIA_APPROVED"}))
            .send(&app)
            .await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    // A signed-in user's 5xx is still stored; once it is, everything queued before it is too.
    let user = insert_user(&t.state, "ann", None, "user", None).await;
    let token = new_session(&t.state, &user).await.token;
    let r = call("POST", "/api/v1/media/requests")
        .bearer(&token)
        .json(json!({"mediaType": "movie", "tmdbId": 603}))
        .send(&app)
        .await;
    assert_error(
        &r,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_NOT_CONFIGURED",
    );
    eventually(
        Duration::from_secs(10),
        "the user's error_logs row",
        || async {
            (scalar(
                &t.state,
                "SELECT count(*) FROM error_logs WHERE user_id = ?1",
                vec![sql_text(&user)],
            )
            .await
                == 1)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        scalar(&t.state, "SELECT count(*) FROM error_logs", vec![]).await,
        1
    );
    assert_eq!(
        unlogged(&t, "SERVICE_NOT_CONFIGURED").await.as_deref(),
        Some("1000")
    );
    assert_eq!(unlogged(&t, "UPSTREAM_ERROR").await.as_deref(), Some("0"));

    // The same user repeating it: counted, one row a minute at most.
    let request = || {
        call("POST", "/api/v1/media/requests")
            .bearer(&token)
            .json(json!({"mediaType": "movie", "tmdbId": 603}))
            .send(&app)
    };
    for _ in 0..50 {
        assert_eq!(request().await.status, StatusCode::SERVICE_UNAVAILABLE);
    }
    t.clock.advance(60_000);
    assert_eq!(request().await.status, StatusCode::SERVICE_UNAVAILABLE);
    let user_rows = || async {
        scalar(
            &t.state,
            "SELECT count(*) FROM error_logs WHERE user_id = ?1",
            vec![sql_text(&user)],
        )
        .await
    };
    eventually(
        Duration::from_secs(10),
        "the minute's second row",
        || async { (user_rows().await >= 2).then_some(()) },
    )
    .await;
    // Rows are written in order: the 50 before the second row would be there by now.
    assert_eq!(user_rows().await, 2);
    assert_eq!(
        unlogged(&t, "SERVICE_NOT_CONFIGURED").await.as_deref(),
        Some("1050")
    );
}
