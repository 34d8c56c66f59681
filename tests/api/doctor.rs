//! `GET /api/v1/admin/doctor`: the doctor's checks for the admin page, against the service
//! settings the running portal holds (here pointing at the simulated Plex, Seerr and Uptime
//! Kuma). Admins only.

use axum::http::StatusCode;
use medianest::sim::uptime_kuma::KumaVersion;
use serde_json::Value;

use crate::support::assert_error;
use crate::support::services::world_with;

/// The check named `name` in a report.
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report}"))
}

#[tokio::test]
async fn admins_get_the_checks_against_the_stored_service_settings() {
    let w = world_with(KumaVersion::V2, |c| {
        c.youtube.ytdlp_path = "/nonexistent/yt-dlp".into();
        c.webhooks.overseerr_secret = Some(medianest::config::Secret::new(
            "a-webhook-secret-long-enough",
        ));
    })
    .await;
    let downloads = w.t.state.config().download_dir();
    w.plex.add_youtube_library("YouTube", &downloads);

    let r = w.get(&w.admin, "/api/v1/admin/doctor").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let report = r.data();
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "yt-dlp",
            "JavaScript runtime",
            "ffmpeg",
            "download dir",
            "data dir",
            "Plex",
            "Plex library folders",
            "Seerr",
            "webhook secret",
            "Uptime Kuma"
        ]
    );
    let ytdlp = check(&report, "yt-dlp");
    assert_eq!(ytdlp["status"], "fail", "{ytdlp}");
    assert!(ytdlp["fix"].as_str().unwrap().contains("yt-dlp[default]"));
    assert_eq!(report["passed"], false);
    for name in [
        "Plex",
        "Plex library folders",
        "Seerr",
        "webhook secret",
        "Uptime Kuma",
    ] {
        assert_eq!(check(&report, name)["status"], "ok", "{name}: {report}");
    }
    let plex = check(&report, "Plex")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(plex.contains(&w.plex.machine_identifier()), "{plex}");
    assert!(check(&report, "Seerr")["fix"].is_null());

    // Seerr's key changes under the portal: the check says the key is refused.
    w.overseerr.set_api_key("another-key-entirely");
    let report = w.get(&w.admin, "/api/v1/admin/doctor").await.data();
    let seerr = check(&report, "Seerr");
    assert_eq!(seerr["status"], "fail", "{seerr}");
    assert!(
        seerr["detail"]
            .as_str()
            .unwrap()
            .contains("refused the API key"),
        "{seerr}"
    );
    assert!(
        seerr["fix"].as_str().unwrap().contains("API Key"),
        "{seerr}"
    );
}

#[tokio::test]
async fn only_admins_may_run_the_doctor() {
    let w = world_with(KumaVersion::V2, |_| {}).await;
    let r = w.get(&w.user, "/api/v1/admin/doctor").await;
    assert_error(&r, StatusCode::FORBIDDEN, "FORBIDDEN");
    let r = crate::support::call("GET", "/api/v1/admin/doctor")
        .send(&w.app)
        .await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    assert_eq!(w.overseerr.last_api_key(), None, "no upstream was called");
}
