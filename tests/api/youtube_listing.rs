//! Listing a channel's newest items (`medianest::youtube::listing`) against the simulated
//! yt-dlp (`medianest::sim::ytdlp`, the real binary under another name): dates and flags as
//! the real flat listing gives them, a new upload between two listings, YouTube's bot check and
//! rate limit told apart, the bound on how far back, missing channels and hung runs; and
//! downloading a listed item with SponsorBlock and the download archive.

use std::path::{Path, PathBuf};
use std::time::Duration;

use medianest::sim::ytdlp as sim;
use medianest::youtube::listing::{self, Availability, ListError, Refused};
use medianest::youtube::ytdlp::Passthrough;

const BIN: &str = env!("CARGO_BIN_EXE_medianest");
const LONG: Duration = Duration::from_secs(30);

/// The simulator installed in a directory of the test's own: `(dir guard, sim dir, program)`.
fn install() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sim");
    let program = sim::install(&dir, Path::new(BIN)).unwrap();
    std::fs::write(dir.join("sim-step-ms"), "1").unwrap();
    (tmp, dir, program)
}

async fn list(program: &Path, url: &str, newest: u32) -> Result<listing::Listing, ListError> {
    listing::list_newest(program, url, newest, &Passthrough::default(), LONG).await
}

/// The command lines the simulator ran with (`sim-state/args.log`).
fn runs(dir: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(dir.join("sim-state/args.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn date(y: i32, m: u8, d: u8) -> time::Date {
    time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap()
}

#[tokio::test]
async fn the_uploads_playlist_lists_dated_items_with_shorts_live_and_private_flagged() {
    let (_tmp, _dir, program) = install();
    let uploads = format!(
        "https://www.youtube.com/playlist?list=UU{}",
        &sim::channel_id("sim")[2..]
    );
    let l = list(&program, &uploads, 50).await.unwrap();
    assert_eq!(l.title, "Uploads from Sim Channel sim");
    assert_eq!(l.total, Some(12));
    assert_eq!(l.items.len(), 12);
    // Newest first: the live stream (no date, no duration), then one a day back to 2026-01-01.
    let live = &l.items[0];
    assert!(live.is_live && live.upload_date.is_none() && live.duration_secs.is_none());
    assert_eq!(l.items[1].upload_date, Some(date(2026, 1, 11)));
    assert_eq!(l.items[11].upload_date, Some(date(2026, 1, 1)));
    assert_eq!(l.items[1].duration_secs, Some(60));
    let shorts: Vec<&str> = l
        .items
        .iter()
        .filter(|i| i.is_short)
        .map(|i| i.url.as_str())
        .collect();
    assert_eq!(
        shorts,
        [
            "https://www.youtube.com/shorts/simxxx00010",
            "https://www.youtube.com/shorts/simxxx00005"
        ]
    );
    let private: Vec<_> = l
        .items
        .iter()
        .filter(|i| !i.availability.downloadable())
        .collect();
    assert_eq!(private.len(), 1);
    assert_eq!(private[0].availability, Availability::Private);
    assert_eq!(private[0].title, "[Private video]");
    assert!(l.items.iter().filter(|i| i.was_live).count() == 1);
}

#[tokio::test]
async fn a_channel_tab_has_its_avatar_and_banner_and_only_its_kind() {
    let (_tmp, _dir, program) = install();
    let videos = list(&program, "https://www.youtube.com/@Sim/videos", 50)
        .await
        .unwrap();
    assert_eq!(videos.channel.as_deref(), Some("Sim Channel sim"));
    assert_eq!(videos.channel_id.as_deref(), Some(&*sim::channel_id("sim")));
    assert_eq!(videos.handle.as_deref(), Some("@sim"));
    assert!(videos.avatar.as_deref().unwrap().ends_with("avatar=s0"));
    assert!(videos.banner.as_deref().unwrap().ends_with("banner=s0"));
    assert_eq!(videos.items.len(), 7);
    assert!(
        videos
            .items
            .iter()
            .all(|i| !i.is_short && !i.is_live && !i.was_live && i.upload_date.is_some())
    );
    let shorts = list(
        &program,
        &format!(
            "https://www.youtube.com/channel/{}/shorts",
            sim::channel_id("sim")
        ),
        50,
    )
    .await
    .unwrap();
    assert_eq!(shorts.items.len(), 2);
    assert!(shorts.items.iter().all(|i| i.is_short));
    let streams = list(&program, "https://www.youtube.com/@sim/streams", 50)
        .await
        .unwrap();
    assert_eq!(
        streams
            .items
            .iter()
            .map(|i| (i.is_live, i.was_live))
            .collect::<Vec<_>>(),
        [(true, false), (false, true)]
    );
}

#[tokio::test]
async fn a_new_upload_is_listed_first_on_the_next_check() {
    let (_tmp, dir, program) = install();
    let url = "https://www.youtube.com/@sim/videos";
    let before = list(&program, url, 5).await.unwrap();
    assert_eq!(before.items.len(), 5);
    let id = sim::add_upload(&dir, "sim", "Brand new", sim::UploadKind::Video).unwrap();
    let after = list(&program, url, 5).await.unwrap();
    assert_eq!(after.items[0].id, id);
    assert_eq!(after.items[0].title, "Brand new");
    assert_eq!(
        after.items[0].upload_date,
        Some(time::OffsetDateTime::now_utc().date())
    );
    assert_eq!(after.items[1].id, before.items[0].id);
    assert_eq!(after.items.len(), 5);
    // A new Short shows on the uploads playlist with its /shorts/ URL, not on /videos.
    let short = sim::add_upload(&dir, "sim", "Tiny", sim::UploadKind::Short).unwrap();
    let videos = list(&program, url, 5).await.unwrap();
    assert_eq!(videos.items[0].id, id);
    let uploads = format!(
        "https://www.youtube.com/playlist?list=UU{}",
        &sim::channel_id("sim")[2..]
    );
    let all = list(&program, &uploads, 5).await.unwrap();
    assert_eq!(all.items[0].id, short);
    assert!(all.items[0].is_short);
}

#[tokio::test]
async fn a_clock_channel_gains_a_video_every_minute() {
    let (_tmp, dir, program) = install();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    sim::start_clock(&dir, "demo", now - 5 * 60 - 30).unwrap();
    let l = list(&program, "https://www.youtube.com/@demo/videos", 3)
        .await
        .unwrap();
    let titles: Vec<&str> = l.items.iter().map(|i| i.title.as_str()).collect();
    assert_eq!(
        titles,
        ["Minute 5 of demo", "Minute 4 of demo", "Minute 3 of demo"]
    );
}

#[tokio::test]
async fn bot_checks_and_rate_limits_are_told_apart_and_used_up() {
    let (_tmp, dir, program) = install();
    let url = "https://www.youtube.com/@sim/videos";
    sim::refuse_listings(&dir, sim::REFUSE_BOT, Some(1)).unwrap();
    let e = list(&program, url, 5).await.unwrap_err();
    assert!(
        matches!(&e, ListError::Refused { kind: Refused::BotCheck, reason } if reason.contains("Sign in to confirm you\u{2019}re not a bot")),
        "{e:?}"
    );
    assert!(e.hint().contains("cookies"));
    sim::refuse_listings(&dir, sim::REFUSE_429, Some(2)).unwrap();
    for _ in 0..2 {
        let e = list(&program, url, 5).await.unwrap_err();
        assert!(
            matches!(
                e,
                ListError::Refused {
                    kind: Refused::RateLimited,
                    ..
                }
            ),
            "{e:?}"
        );
    }
    assert_eq!(list(&program, url, 5).await.unwrap().items.len(), 5);
}

#[tokio::test]
async fn the_bound_limits_how_far_back_and_every_option_reaches_ytdlp() {
    let (_tmp, dir, program) = install();
    let pass = Passthrough {
        cookies: None,
        args: vec!["--js-runtimes".into(), "node".into()],
        cookies_copy: None,
    };
    listing::list_newest(
        &program,
        "https://www.youtube.com/@n500abc/videos",
        40,
        &pass,
        LONG,
    )
    .await
    .unwrap();
    let first = runs(&dir).pop().unwrap();
    let js = first.iter().position(|a| a == "--js-runtimes").unwrap();
    assert!(js < first.iter().position(|a| a == "--").unwrap());
    let l = list(&program, "https://www.youtube.com/@n500abc/videos", 40)
        .await
        .unwrap();
    assert_eq!(l.items.len(), 40);
    // The newest 40 videos: the channel's last upload (500, live) is on /streams.
    assert_eq!(l.items[0].id, "n500ab00499");
    let last = runs(&dir).pop().unwrap();
    let at = last.iter().position(|a| a == "-I").unwrap();
    assert_eq!(last[at + 1], "1:40");
    assert_eq!(last[last.len() - 2], "--");
}

#[tokio::test]
async fn missing_channels_home_pages_and_hung_runs_fail_clearly() {
    let (_tmp, _dir, program) = install();
    let e = list(&program, "https://www.youtube.com/@gonechannel/videos", 5)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ListError::NotFound(r) if r.contains("HTTP Error 404")),
        "{e:?}"
    );
    let e = list(&program, "https://www.youtube.com/@sim/community", 5)
        .await
        .unwrap_err();
    assert!(matches!(e, ListError::NotFound(_)), "{e:?}");
    assert_eq!(
        list(&program, "https://www.youtube.com/@sim", 5).await,
        Err(ListError::NotAList)
    );
    let hung = listing::list_newest(
        &program,
        "https://www.youtube.com/@lhang/videos",
        5,
        &Passthrough::default(),
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(hung, Err(ListError::Timeout));
}

/// Runs the simulator for a download and returns its exit code.
async fn download(program: &Path, home: &Path, extra: &[&str], url: &str) -> i32 {
    let mut args = vec![
        "--ignore-config".to_owned(),
        "--no-simulate".to_owned(),
        "--write-info-json".to_owned(),
        "-o".to_owned(),
        "%(title).150B [%(id)s].%(ext)s".to_owned(),
        "-P".to_owned(),
        format!("home:{}", home.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("--".to_owned());
    args.push(url.to_owned());
    let out = tokio::process::Command::new(program)
        .args(&args)
        .output()
        .await
        .unwrap();
    out.status.code().unwrap_or(-1)
}

#[tokio::test]
async fn a_listed_item_downloads_with_sponsorblock_and_the_archive() {
    let (tmp, dir, program) = install();
    let l = list(&program, "https://www.youtube.com/@sim/videos", 1)
        .await
        .unwrap();
    let item = &l.items[0];
    let home = tmp.path().join("dl");
    let archive = tmp.path().join("archive.txt");
    let archive_arg = archive.to_string_lossy().into_owned();
    let code = download(
        &program,
        &home,
        &[
            "--sponsorblock-mark",
            "sponsor",
            "--sponsorblock-remove",
            "selfpromo",
            "--download-archive",
            &archive_arg,
        ],
        &item.url,
    )
    .await;
    assert_eq!(code, 0);
    let stem = format!("{} [{}]", item.title, item.id);
    assert!(home.join(format!("{stem}.mp4")).is_file());
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(home.join(format!("{stem}.info.json"))).unwrap())
            .unwrap();
    assert_eq!(info["upload_date"], "20260111");
    let titles: Vec<&str> = info["chapters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "<Untitled Chapter 1>",
            "[SponsorBlock]: Sponsor",
            "<Untitled Chapter 2>"
        ]
    );
    assert_eq!(info["sponsorblock_chapters"].as_array().unwrap().len(), 2);
    let log: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(dir.join("sim-state/sponsorblock.log"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    assert_eq!(
        log,
        serde_json::json!({"id": item.id, "mark": ["sponsor"], "remove": ["selfpromo"]})
    );
    assert_eq!(
        std::fs::read_to_string(&archive).unwrap(),
        format!("youtube {}\n", item.id)
    );
    // Once archived, the item is skipped, and --break-on-existing stops there with 101.
    std::fs::remove_dir_all(&home).unwrap();
    let code = download(
        &program,
        &home,
        &["--download-archive", &archive_arg, "--break-on-existing"],
        "https://www.youtube.com/@sim/videos",
    )
    .await;
    assert_eq!(code, 101);
    assert!(!home.exists() || std::fs::read_dir(&home).unwrap().next().is_none());
}

/// A page on 127.0.0.1 for the real yt-dlp: `/embeds.html` embeds three YouTube videos (the
/// generic extractor makes a playlist of them, flat: URL entries), `/busy` answers 429 and
/// anything else 404.
async fn embeds_server() -> String {
    use axum::http::{StatusCode, header};
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route(
            "/embeds.html",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><head><title>Embeds</title></head><body>\
                     <iframe src=\"https://www.youtube.com/embed/aaaaaaaaaa1\"></iframe>\
                     <iframe src=\"https://www.youtube.com/embed/bbbbbbbbbb2\"></iframe>\
                     <iframe src=\"https://www.youtube.com/embed/ccccccccc_3\"></iframe>\
                     </body></html>",
                )
            }),
        )
        .route(
            "/busy",
            get(|| async { (StatusCode::TOO_MANY_REQUESTS, "slow down") }),
        )
        .fallback(|| async { StatusCode::NOT_FOUND });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// The listing's arguments and failures with the real yt-dlp (PyPI, see `ytdlp_real`): it
/// accepts them, honours the bound, and its 429 and 404 read as a rate limit and a missing
/// channel (checked with yt-dlp 2026.10.26, which prints `null` and exits 1 on a failed `-J`).
#[tokio::test]
async fn the_real_ytdlp_takes_the_listing_arguments_and_its_failures_are_classified() {
    use std::os::unix::fs::PermissionsExt;
    let Some(ytdlp) = crate::ytdlp_real::real_ytdlp() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let program = tmp.path().join("yt-dlp-local");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\nunset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY\n\
             export XDG_CACHE_HOME=\"{}\"\nexec \"{}\" \"$@\"\n",
            tmp.path().join("cache").display(),
            ytdlp.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let base = embeds_server().await;
    let l = list(&program, &format!("{base}/embeds.html"), 2)
        .await
        .unwrap();
    let ids: Vec<&str> = l.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["aaaaaaaaaa1", "bbbbbbbbbb2"]);
    assert_eq!(l.total, Some(3));
    let e = list(&program, &format!("{base}/busy"), 2)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            ListError::Refused {
                kind: Refused::RateLimited,
                reason
            } if reason.contains("HTTP Error 429")
        ),
        "{e:?}"
    );
    let e = list(&program, &format!("{base}/nothere"), 2)
        .await
        .unwrap_err();
    assert!(matches!(e, ListError::NotFound(_)), "{e:?}");
}
