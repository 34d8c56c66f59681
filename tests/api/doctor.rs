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
            "cookies file",
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

/// The cookies file check reads what a run gets: `youtube.cookies_file` (here missing, then
/// not a cookies file) until an admin uploads one, which then wins. The content never shows.
#[tokio::test]
async fn the_doctor_checks_the_cookies_file_a_run_gets() {
    let configured = tempfile::tempdir().unwrap();
    let path = configured.path().join("cookies.txt");
    let set = path.clone();
    let w = world_with(KumaVersion::V2, move |c| {
        c.youtube.cookies_file = Some(set);
    })
    .await;
    let cookies = |report: &Value| check(report, "cookies file").clone();

    let report = w.get(&w.admin, "/api/v1/admin/doctor").await.data();
    let c = cookies(&report);
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["fix"].as_str().unwrap().contains("readable by the user"),
        "{c}"
    );
    std::fs::write(
        &path,
        "[{\"name\": \"SID\", \"value\": \"secret-json-value\"}]",
    )
    .unwrap();
    let report = w.get(&w.admin, "/api/v1/admin/doctor").await.data();
    let c = cookies(&report);
    assert_eq!(c["status"], "fail", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("not a Netscape cookies file"),
        "{c}"
    );

    let r = crate::support::call("PUT", "/api/v1/admin/youtube/cookies")
        .bearer(&w.admin)
        .json(serde_json::json!({
            "content": "# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t0\tSID\tsecret-cookie-value\n"
        }))
        .send(&w.app)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = w.get(&w.admin, "/api/v1/admin/doctor").await;
    let c = cookies(&r.data());
    assert_eq!(c["status"], "ok", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .ends_with("youtube-cookies.txt holds 1 cookie"),
        "{c}"
    );
    assert!(!r.text().contains("secret-"), "{}", r.text());
}
