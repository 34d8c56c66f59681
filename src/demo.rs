//! `medianest demo`: the whole portal against simulated upstreams, with nothing to set up.
//!
//! [`Simulators`] starts the `crate::sim` fakes on loopback ports (plex.tv with a few accounts,
//! the owner's Plex server, Overseerr, an Uptime Kuma status page with a flapping monitor);
//! [`Demo::run`] points a fresh temporary data directory and a [`Config`] of its own at them,
//! bootstraps, [`seed`]s, prints the URL and the logins, and serves until the shutdown signal,
//! then stops the simulators and removes the temporary directory.
//!
//! What the demo shows grows here: a new simulator goes into [`Simulators`] (started in
//! [`Simulators::start`], wired into the config in [`Simulators::configure`]), demo data into
//! [`seed`], and a line about it into the banner. The simulators are the integration tests'
//! fakes, so the demo exercises the real client code. Nothing here is used by `serve`.
//!
//! Notifications: the demo's email and ntfy channels point at a local SMTP sink and an
//! ntfy-like endpoint ([`seed_notifications`]), and every user gets email and ntfy turned on
//! ([`ensure_demo_choices`], also for users who sign up while the demo runs), so what the
//! delivery worker sends can be read back: the sink's inbox page and ntfy's polling read.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::distr::Alphanumeric;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Secret, ServiceSeed};
use crate::error::AppResult;
use crate::integrations::overseerr::MediaType;
use crate::notifications::channel_settings::{self, Kind};
use crate::notifications::prefs;
use crate::sim::notify::{FakeNotify, Flavor};
use crate::sim::overseerr::{FakeOverseerr, FakeOverseerrUser, FakeTitle};
use crate::sim::plex::{FakePlexServer, NewItem};
use crate::sim::plex_discover::{FakeItem, FakePlexDiscover};
use crate::sim::plextv::{FakeAccount, FakePlexTv};
use crate::sim::smtp::{SmtpInbox, SmtpOptions, SmtpSink};
use crate::sim::uptime_kuma::{FakeUptimeKuma, HeartbeatMode, KumaVersion, MonitorState};
use crate::state::AppState;

/// The `admin` account's password in a demo (documented, printed; never use it elsewhere).
pub const ADMIN_PASSWORD: &str = "medianest-demo";
/// The Uptime Kuma status page the demo serves and configures.
pub const KUMA_SLUG: &str = "home";
/// Health checks run this often in a demo (seconds), so the flapping monitor is seen flapping.
pub const HEALTH_INTERVAL_SECS: u64 = 10;
/// The temporary data directory's name starts with this.
pub const DATA_DIR_PREFIX: &str = "medianest-demo-";
/// The log level unless `--log-level` says otherwise: the banner is the demo's output.
const DEFAULT_LOG_LEVEL: &str = "warn";
/// The webhook secret the demo's Overseerr sends (only ever used on loopback).
pub const WEBHOOK_SECRET: &str = "medianest-demo-webhook";
/// The configuration file the demo writes in its data directory for `medianest doctor --config`.
pub const DOCTOR_CONFIG: &str = "doctor.toml";
/// The notification [`seed`] leaves for the admin (and how it knows it already did).
const WELCOME_KIND: &str = "demo.welcome";

/// The most messages each notification sink keeps (the oldest go first).
pub const SINK_KEEP: usize = 200;
/// The sender of the demo's email.
pub const EMAIL_FROM: &str = "MediaNest demo <medianest@example.com>";
/// A demo user's ntfy topic is this followed by their user name.
pub const NTFY_TOPIC_PREFIX: &str = "medianest-";

/// Who a demo plex.tv account is to the owner's Plex server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Owns the server (its token is the server token).
    Owner,
    /// The owner shares the server with it: it may sign up.
    Shared,
    /// No access: its sign-up is refused (`PLEX_SIGNUP_CLOSED`).
    NotShared,
}

/// The plex.tv accounts of the demo: id, username, access.
pub const ACCOUNTS: [(i64, &str, Access); 4] = [
    (1, "owner", Access::Owner),
    (2, "alice", Access::Shared),
    (3, "bob", Access::Shared),
    (4, "mallory", Access::NotShared),
];

/// The Uptime Kuma monitors of the demo: id, name, state.
pub const MONITORS: [(i64, &str, MonitorState); 4] = [
    (1, "Router", MonitorState::Up),
    (2, "NAS", MonitorState::Up),
    (3, "Home Assistant", MonitorState::Slow(1450)),
    (4, "Pi-hole", MonitorState::Flapping),
];

/// The demo's Plex movies: title, year, summary.
pub const MOVIES: [(&str, i64, &str); 6] = [
    (
        "The Matrix",
        1999,
        "A hacker learns what the world really is.",
    ),
    (
        "Spirited Away",
        2001,
        "A girl works in a bathhouse for spirits to free her parents.",
    ),
    (
        "Paddington 2",
        2017,
        "A bear takes a job to buy a pop-up book.",
    ),
    (
        "Arrival",
        2016,
        "A linguist learns the language of visitors from space.",
    ),
    ("Dune", 2021, "A noble family takes over a desert planet."),
    (
        "Everything Everywhere All at Once",
        2022,
        "A laundromat owner meets her other lives.",
    ),
];

/// The demo's Plex shows: title, year.
pub const SHOWS: [(&str, i64); 3] = [
    ("Bluey", 2018),
    ("The Expanse", 2015),
    ("Planet Earth II", 2016),
];

/// The movies of the demo's collection, and its title.
const COLLECTION: (&str, [&str; 3]) = ("Science Fiction", ["The Matrix", "Arrival", "Dune"]);

/// The title of the demo's Plex library for YouTube downloads.
pub const YOUTUBE_LIBRARY: &str = "YouTube";
/// The Plex library (TV Shows) of the demo's subscription.
pub const SUBSCRIPTIONS_LIBRARY: &str = "YouTube Subscriptions";
/// The demo's simulated channel (`@medianestdemo`): a new video every minute.
pub const DEMO_CHANNEL: &str = "https://www.youtube.com/@medianestdemo";
/// Its key in the simulated yt-dlp's control files.
const DEMO_CHANNEL_KEY: &str = "medianestdemo";
/// The demo subscription's download profile.
const DEMO_PROFILE: &str = "Demo: Plex direct play";

/// The running simulated upstreams.
#[derive(Debug)]
pub struct Simulators {
    pub plextv: FakePlexTv,
    /// plex.tv's discover provider: the Plex accounts' watchlists.
    pub plex_discover: FakePlexDiscover,
    pub plex: FakePlexServer,
    pub overseerr: FakeOverseerr,
    pub uptime_kuma: FakeUptimeKuma,
    /// The server owner's plex.tv account (its token is the Plex server's token).
    pub owner: FakeAccount,
    /// The SMTP sink the demo's email channel sends to (plain SMTP on loopback).
    pub mail: SmtpSink,
    /// The sink's read view (`/` HTML, `/messages` JSON).
    pub mail_inbox: SmtpInbox,
    /// The ntfy-like endpoint the demo's ntfy channel posts to; reads at `/<topic>/json?poll=1`.
    pub ntfy: FakeNotify,
}

impl Simulators {
    /// Starts every simulator on `127.0.0.1:0` and sets them up: the [`ACCOUNTS`] on plex.tv,
    /// the owner's server matching the Plex server's machine id and token, and the [`MONITORS`]
    /// on the status page [`KUMA_SLUG`] in Uptime Kuma 2.x's shape.
    pub async fn start() -> std::io::Result<Self> {
        let plextv = FakePlexTv::start().await?;
        let plex_discover = FakePlexDiscover::start().await?;
        let plex = FakePlexServer::start().await?;
        // Seerr 3.x, what Overseerr's users move to (the simulator also plays Overseerr 1.33).
        let overseerr = FakeOverseerr::start_as(crate::sim::overseerr::Flavor::Seerr).await?;
        let uptime_kuma = FakeUptimeKuma::start(KUMA_SLUG, KumaVersion::V2).await?;
        let mail = SmtpSink::start_with(SmtpOptions {
            keep: Some(SINK_KEEP),
            ..SmtpOptions::default()
        })
        .await?;
        let mail_inbox = mail.serve_inbox().await?;
        let ntfy = FakeNotify::start(Flavor::Ntfy(None)).await?;
        ntfy.keep_at_most(SINK_KEEP);

        let machine_id = plex.machine_identifier();
        let mut owner = None;
        for (id, username, access) in ACCOUNTS {
            let account = FakeAccount::new(id, username);
            plextv.add_account(account.clone());
            plex_discover.name_account(&account.token, username);
            match access {
                Access::Owner => {
                    plextv.set_owner(id, &machine_id);
                    plex.set_token(&account.token);
                    owner = Some(account);
                }
                Access::Shared => plextv.share(id, &machine_id),
                Access::NotShared => {}
            }
        }
        let owner = owner.ok_or_else(|| std::io::Error::other("the demo has no server owner"))?;
        // Overseerr knows the owner (its admin, user 1) and the Plex users the owner imported,
        // so requests are made as each user. They may report issues too (Seerr's "Report
        // Issues" permission, which its default permissions leave out).
        for (id, username, access) in ACCOUNTS {
            if access == Access::Shared {
                overseerr.add_user(FakeOverseerrUser {
                    permissions: crate::sim::overseerr::permission::REQUEST
                        | crate::sim::overseerr::permission::CREATE_ISSUES,
                    ..FakeOverseerrUser::plex(10 + id, Some(id), username)
                });
            }
        }

        let in_plex = seed_plex_library(&plex);
        seed_watchlists(&plex_discover);
        // Seerr's Plex scan found one of Seerr's titles on the demo's server: it is available,
        // with that server's item, so its title page offers "Watch in Plex".
        overseerr.set_plex_server(&machine_id, None);
        let (tmdb_id, title, date) = AVAILABLE_MOVIE;
        let mut movie = FakeTitle::movie(tmdb_id, title, date);
        movie.overview = "A linguist is recruited to talk with visitors from space before \
                          the world's nations turn on each other."
            .into();
        overseerr.add_title(movie);
        overseerr.set_media_available(MediaType::Movie, tmdb_id);
        if let Some((_, key)) = in_plex.iter().find(|(t, _)| *t == title) {
            overseerr.set_rating_key(MediaType::Movie, tmdb_id, key);
        }

        uptime_kuma.set_title("Home");
        // Every read adds a beat, as if Kuma had checked in between: the page looks alive.
        uptime_kuma.set_heartbeat_mode(HeartbeatMode::PerRequest);
        for (id, name, state) in MONITORS {
            uptime_kuma.add_monitor(id, name);
            uptime_kuma.set_state(id, state);
        }
        Ok(Self {
            plextv,
            plex_discover,
            plex,
            overseerr,
            uptime_kuma,
            owner,
            mail,
            mail_inbox,
            ntfy,
        })
    }

    /// Adds the "YouTube" library (an "Other Videos" library) on `dir`, where the portal's
    /// downloads go, creating the directory: the fake Plex then finds downloaded files there
    /// when it is asked to scan, as a real server would.
    pub fn add_youtube_library(&self, dir: &Path) -> std::io::Result<String> {
        std::fs::create_dir_all(dir)?;
        Ok(self.plex.add_youtube_library(YOUTUBE_LIBRARY, dir))
    }

    /// Adds the "YouTube Subscriptions" library (TV Shows) on `dir`, where subscriptions'
    /// episodes go, creating the directory.
    pub fn add_subscriptions_library(&self, dir: &Path) -> std::io::Result<String> {
        std::fs::create_dir_all(dir)?;
        Ok(self
            .plex
            .add_youtube_show_library(SUBSCRIPTIONS_LIBRARY, dir))
    }

    /// Points `config` at the simulators: plex.tv (also as the sign-in page, so `authUrl`
    /// opens the fake's consent page) and the service seeds.
    pub fn configure(&self, config: &mut Config) {
        config.plex.tv_url = self.plextv.url();
        config.plex.app_url = self.plextv.url();
        config.plex.discover_url = self.plex_discover.url();
        // Every minute, so a title added to a watchlist shows up as a request soon.
        config.plex.watchlist_interval_mins = 1;
        let seed = |url: String, api_key: Option<String>, slug: Option<&str>| ServiceSeed {
            url: Some(url),
            api_key: api_key.map(Secret::new),
            slug: slug.map(str::to_owned),
            enabled: true,
        };
        config.services.plex = seed(self.plex.url(), Some(self.owner.token.clone()), None);
        config.services.overseerr =
            seed(self.overseerr.url(), Some(self.overseerr.api_key()), None);
        // Posters offline: the fake Seerr is also the TMDB image host.
        config.images.tmdb_base_url = format!("{}/tmdb-images", self.overseerr.url());
        config.services.uptime_kuma = seed(self.uptime_kuma.url(), None, Some(KUMA_SLUG));
        config.webhooks.overseerr_secret = Some(Secret::new(WEBHOOK_SECRET));
    }

    /// Points the fake Overseerr's webhook at the portal listening on `local` under `base`
    /// (`server.base_path`), so its demo controls
    /// (`POST /demo/requests/{id}/{approve|available|decline}`) update MediaNest live.
    pub fn connect_webhook(&self, local: SocketAddr, base: &str) {
        let host = if local.ip().is_unspecified() {
            std::net::SocketAddr::from(([127, 0, 0, 1], local.port()))
        } else {
            local
        };
        self.overseerr.set_webhook_target(
            &format!("http://{host}{base}/api/v1/webhooks/seerr"),
            Some(WEBHOOK_SECRET),
        );
    }

    /// Stops every simulator.
    pub async fn shutdown(&self) {
        tokio::join!(
            self.plextv.shutdown(),
            self.plex_discover.shutdown(),
            self.plex.shutdown(),
            self.overseerr.shutdown(),
            self.uptime_kuma.shutdown(),
            self.mail_inbox.shutdown(),
            self.ntfy.shutdown(),
        );
    }
}

/// The titles the demo's discover provider knows (all in the simulated Seerr's catalogue), and
/// what is on whose watchlist at the start: a movie and a show each for alice and bob (one of
/// them the same, so the second to sync follows the first one's request).
fn seed_watchlists(discover: &FakePlexDiscover) {
    let titles = [
        FakeItem::movie(27205, "Inception", 2010),
        FakeItem::movie(604, "The Matrix Reloaded", 2003),
        FakeItem::movie(954, "Mission: Impossible", 1996),
        FakeItem::movie(646_380, "Don't Look Up", 2021),
        FakeItem::show(1396, "Breaking Bad", 2008),
        FakeItem::show(1399, "Game of Thrones", 2011),
    ];
    for item in &titles {
        discover.add_item(item.clone());
    }
    let starting: [(&str, [usize; 2]); 2] = [("alice", [0, 4]), ("bob", [0, 5])];
    for (username, picks) in starting {
        let Some(token) = discover.token_named(username) else {
            continue;
        };
        for pick in picks {
            discover.watchlist_add(&token, &titles[pick].rating_key);
        }
    }
}

/// The owner's server in the demo: "Movies" (with a collection) and "TV Shows".
/// The movie Seerr says is available in the demo (TMDB id, title, release date): one of the
/// [`MOVIES`] in the demo's Plex library.
pub const AVAILABLE_MOVIE: (i64, &str, &str) = (329_865, "Arrival", "2016-11-10");

/// Fills the demo's Plex server; the movies' `(title, ratingKey)`.
fn seed_plex_library(plex: &FakePlexServer) -> Vec<(&'static str, String)> {
    plex.set_friendly_name("Demo Media Server");
    let movies = plex.add_library("movie", "Movies", "/data/movies");
    let shows = plex.add_library("show", "TV Shows", "/data/tv");
    let mut in_collection = Vec::new();
    let mut keys_of = Vec::new();
    for (title, year, summary) in MOVIES {
        let item = NewItem::new(title, year)
            .summary(summary)
            .file(&format!("/data/movies/{title} ({year})/{title}.mkv"));
        if let Some(key) = plex.add_item(&movies, item) {
            if COLLECTION.1.contains(&title) {
                in_collection.push(key.clone());
            }
            keys_of.push((title, key));
        }
    }
    for (title, year) in SHOWS {
        plex.add_item(&shows, NewItem::new(title, year));
    }
    let keys: Vec<&str> = in_collection.iter().map(String::as_str).collect();
    plex.add_collection(&movies, COLLECTION.0, &keys);
    keys_of
}

/// Demo data, on every start (idempotent): the service connections are pointed at the
/// simulators, which listen on new ports each run (this replaces any saved settings; in a demo
/// the simulators are the only upstreams), and the admin gets a welcome notification once.
pub async fn seed(state: &AppState) -> AppResult<()> {
    let config = state.config().clone();
    let cipher = state.cipher().clone();
    let now = state.clock().now_ms();
    let created = state
        .db()
        .write(move |tx| {
            tx.execute("DELETE FROM service_config", [])?;
            crate::service_config::seed(tx, &config, &cipher, now)?;
            let welcomed: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM notifications WHERE type = ?1)",
                [WELCOME_KIND],
                |r| r.get(0),
            )?;
            if welcomed {
                return Ok(Vec::new());
            }
            crate::notifications::create_for_admins(
                tx,
                WELCOME_KIND,
                "Welcome to the MediaNest demo",
                "Plex, Seerr and Uptime Kuma are simulated on this machine. Sign in with \
                 Plex as alice or bob; mallory has no access to the server and is refused.",
                None,
                now,
            )
        })
        .await?;
    crate::notifications::publish_all_created(state.events(), &created);
    Ok(())
}

/// The demo's YouTube subscription (once; kept across runs with a kept data dir): the simulated
/// channel [`DEMO_CHANNEL`] gains a video every minute from a few minutes before the first run,
/// the admin's subscription takes its videos from that day on (checked every 15 minutes, or at
/// "Check now"), keeps the newest five, skips Shorts, and uses a profile with English sidecar
/// subtitles and SponsorBlock removing sponsor segments.
pub async fn seed_subscription(state: &AppState) -> AppResult<()> {
    use crate::youtube::subscriptions::{model, store};
    let sim_dir = state.config().data_dir.join("yt-dlp-sim");
    let now = state.clock().now_ms();
    let clock = sim_dir
        .join(crate::sim::ytdlp::CLOCK_DIR)
        .join(DEMO_CHANNEL_KEY);
    if !clock.exists() {
        crate::sim::ytdlp::start_clock(&sim_dir, DEMO_CHANNEL_KEY, now / 1000 - 5 * 60)
            .map_err(|e| crate::error::AppError::internal(format!("demo channel: {e}")))?;
    }
    let source = crate::youtube::url::parse_source(DEMO_CHANNEL)?;
    let today = crate::time::rfc3339(now)[..10].to_owned();
    let made = state
        .db()
        .write(move |tx| {
            if store::find_by_url(tx, &source.canonical())?.is_some() {
                return Ok(false);
            }
            let admin: Option<String> = rusqlite::OptionalExtension::optional(tx.query_row(
                "SELECT id FROM users WHERE role = 'admin' ORDER BY created_at LIMIT 1",
                [],
                |r| r.get(0),
            ))?;
            let Some(admin) = admin else { return Ok(false) };
            let profile = match store::list_profiles(tx)?
                .into_iter()
                .find(|p| p.name == DEMO_PROFILE)
            {
                Some(p) => p.id,
                None => store::insert_profile(
                    tx,
                    &model::ProfileInput {
                        name: DEMO_PROFILE.into(),
                        max_height: Some(1080),
                        container: "mp4".into(),
                        subtitles: model::Subtitles {
                            languages: vec!["en".into()],
                            mode: "sidecar".into(),
                        },
                        sponsorblock: model::Sponsorblock {
                            mode: "remove".into(),
                            categories: vec!["sponsor".into()],
                        },
                    },
                    now,
                )?,
            };
            let settings = model::Settings {
                interval_secs: 15 * 60,
                after: Some(today),
                keep_latest: Some(5),
                skip_shorts: true,
                profile_id: Some(profile),
                ..model::Settings::default()
            };
            store::insert(tx, &admin, &source, "active", &settings, now)?;
            Ok(true)
        })
        .await?;
    if made {
        state.youtube().wake_subscriptions();
    }
    Ok(())
}

/// Points the demo's email and ntfy channels at the simulators and turns them on, through the
/// same storage the admin's settings use (replacing saved settings: the sinks get new ports
/// each run), then gives every user the demo's notification choices.
pub async fn seed_notifications(state: &AppState, sims: &Simulators) -> AppResult<()> {
    let cipher = state.cipher().clone();
    let now = state.clock().now_ms();
    let smtp = sims.mail.addr();
    let ntfy_url = sims.ntfy.url();
    state
        .db()
        .write(move |tx| {
            let mut email = channel_settings::load(tx, Kind::Email, &cipher)?;
            email.enabled = true;
            email.secret = None;
            for (key, value) in [
                ("host", serde_json::json!(smtp.ip().to_string())),
                ("port", serde_json::json!(smtp.port())),
                ("security", serde_json::json!("none")),
                ("username", serde_json::json!("")),
                ("from", serde_json::json!(EMAIL_FROM)),
            ] {
                email.settings.insert(key.into(), value);
            }
            channel_settings::save(tx, &email, &cipher, now)?;
            let mut ntfy = channel_settings::load(tx, Kind::Ntfy, &cipher)?;
            ntfy.enabled = true;
            ntfy.secret = None;
            ntfy.settings
                .insert("url".into(), serde_json::json!(ntfy_url));
            channel_settings::save(tx, &ntfy, &cipher, now)?;
            Ok(())
        })
        .await?;
    ensure_demo_choices(state).await
}

/// Gives every user who never saved notification choices the demo's: email on (to their
/// account's address, or `<username>@example.com`) and ntfy on (topic
/// [`NTFY_TOPIC_PREFIX`]`<username>`), every event on both. Users who chose keep their choices.
pub async fn ensure_demo_choices(state: &AppState) -> AppResult<()> {
    let cipher = state.cipher().clone();
    let now = state.clock().now_ms();
    state
        .db()
        .write(move |tx| {
            let users: Vec<(String, String, Option<String>)> = tx
                .prepare(
                    "SELECT id, username, email FROM users WHERE NOT EXISTS
                     (SELECT 1 FROM notification_prefs p WHERE p.user_id = users.id)",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let enabled = [("email".to_owned(), true), ("ntfy".to_owned(), true)]
                .into_iter()
                .collect();
            for (id, username, email) in users {
                let targets = prefs::Targets {
                    email: Some(email.unwrap_or_else(|| format!("{username}@example.com"))),
                    ntfy_topic: Some(demo_topic(&username)),
                    ..prefs::Targets::default()
                };
                prefs::save(tx, &cipher, &id, &enabled, &targets, None, now)?;
            }
            Ok(())
        })
        .await
}

/// The demo's ntfy topic for `username` (only the characters a topic may hold).
pub fn demo_topic(username: &str) -> String {
    let name: String = username
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(64 - NTFY_TOPIC_PREFIX.len())
        .collect();
    format!("{NTFY_TOPIC_PREFIX}{name}")
}

/// Runs [`ensure_demo_choices`] whenever a notification is made (a Plex sign-up tells the
/// admins), so users who sign up while the demo runs get the demo's choices too.
fn watch_new_users(state: AppState) {
    let mut events = state.events().subscribe();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) if event.kind != crate::events::kind::NOTIFICATION_CREATED => continue,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
            if let Err(e) = ensure_demo_choices(&state).await {
                tracing::warn!(error = %e, "could not give new users the demo's notification choices");
            }
        }
    });
}

/// What the command line may change about a demo.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where to listen (default `127.0.0.1:4000`).
    pub listen: Option<SocketAddr>,
    /// A data directory to use and keep (default: a fresh temporary one, removed on exit).
    pub data_dir: Option<PathBuf>,
    /// The log level or filter (default `warn`).
    pub log_level: Option<String>,
}

/// A demo ready to run: its configuration, short of the simulators' URLs.
#[derive(Debug)]
pub struct Demo {
    config: Config,
    /// True when the data directory is ours to create and remove.
    temporary: bool,
}

impl Demo {
    /// Builds the demo's configuration from the defaults and `options` alone (no file, no
    /// environment): the fixed [`ADMIN_PASSWORD`], health checks every
    /// [`HEALTH_INTERVAL_SECS`], and a data directory named `medianest-demo-<random>` under the
    /// system's temporary directory unless one is given.
    pub fn new(options: Options) -> Result<Self, String> {
        let mut config = Config::default();
        if let Some(listen) = options.listen {
            config.server.listen = listen;
        }
        config.log.level = options
            .log_level
            .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_owned());
        config.admin.password = Some(Secret::new(ADMIN_PASSWORD));
        config.health.interval_secs = HEALTH_INTERVAL_SECS;
        let temporary = options.data_dir.is_none();
        config.data_dir = options
            .data_dir
            .unwrap_or_else(|| std::env::temp_dir().join(format!("{DATA_DIR_PREFIX}{}", suffix())));
        config.validate().map_err(|e| e.to_string())?;
        Ok(Self { config, temporary })
    }

    /// The configuration (for setting up logging before [`Demo::run`]).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs the demo until `shutdown` resolves, then stops everything and removes the temporary
    /// data directory. The signal is watched from the start, so a Ctrl-C while starting up
    /// still cleans up.
    pub async fn run<F>(self, shutdown: F) -> Result<(), String>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let signalled = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            signalled.cancel();
        });
        let listen = self.config.server.listen;
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let sims = Simulators::start()
            .await
            .map_err(|e| format!("cannot start the simulators: {e}"))?;
        let dir = if self.temporary {
            match TempDir::create(&self.config.data_dir) {
                Ok(dir) => Some(dir),
                Err(e) => {
                    sims.shutdown().await;
                    return Err(e);
                }
            }
        } else {
            None
        };
        let mut config = self.config;
        sims.configure(&mut config);
        if let Err(e) = use_simulated_downloader(&mut config) {
            sims.shutdown().await;
            return Err(e);
        }
        let served = serve(config, listener, &sims, dir.is_some(), stop).await;
        sims.shutdown().await;
        let removed = dir.map_or(Ok(()), TempDir::remove);
        served.and(removed)
    }
}

/// Pause between the simulated yt-dlp's progress lines in a demo (ms): a video takes about
/// two seconds, long enough to watch its progress bar.
pub const DOWNLOAD_STEP_MS: u64 = 250;

/// Points `youtube.ytdlp_path` at the simulated yt-dlp (this binary, linked as
/// `<data_dir>/yt-dlp-sim/yt-dlp-sim`; `crate::sim::ytdlp`).
fn use_simulated_downloader(config: &mut Config) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let dir = config.data_dir.join("yt-dlp-sim");
    let fail = |e: std::io::Error| {
        format!(
            "cannot set up the simulated yt-dlp in {}: {e}",
            dir.display()
        )
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&config.data_dir)
        .map_err(fail)?;
    let program = crate::sim::ytdlp::install(&dir, &exe).map_err(fail)?;
    std::fs::write(dir.join("sim-step-ms"), DOWNLOAD_STEP_MS.to_string()).map_err(fail)?;
    config.youtube.ytdlp_path = program.to_string_lossy().into_owned();
    Ok(())
}

/// Bootstraps, seeds, prints the banner and serves until `stop`.
async fn serve(
    config: Config,
    listener: TcpListener,
    sims: &Simulators,
    temporary: bool,
    stop: CancellationToken,
) -> Result<(), String> {
    // Bootstrap blocks (files, migrations, the admin's password hash).
    let state = tokio::task::spawn_blocking(move || {
        crate::bootstrap(config, crate::clock::system()).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("start-up failed: {e}"))??;
    let downloads = state.config().download_dir();
    sims.add_youtube_library(&downloads)
        .map_err(|e| format!("cannot create {}: {e}", downloads.display()))?;
    seed(&state)
        .await
        .map_err(|e| format!("cannot seed the demo data: {e}"))?;
    seed_notifications(&state, sims)
        .await
        .map_err(|e| format!("cannot set up the demo's notifications: {e}"))?;
    let subscriptions = crate::youtube::subscriptions_root(state.config());
    sims.add_subscriptions_library(&subscriptions)
        .map_err(|e| format!("cannot create {}: {e}", subscriptions.display()))?;
    seed_subscription(&state)
        .await
        .map_err(|e| format!("cannot set up the demo's subscription: {e}"))?;
    watch_new_users(state.clone());
    write_doctor_config(state.config())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let base = state.config().server.base();
    sims.connect_webhook(local, base);
    println!(
        "{}",
        banner(local, base, sims, &state.config().data_dir, temporary)
    );
    crate::serve(listener, state, stop.cancelled_owned())
        .await
        .map_err(|e| format!("server error: {e}"))
}

/// Writes [`DOCTOR_CONFIG`] into the data directory: the keys of the demo's configuration that
/// `medianest doctor` needs beyond the database (the data dir, the simulated yt-dlp, the
/// download dir, the webhook secret), so `medianest doctor --config <it>` checks the demo.
fn write_doctor_config(config: &Config) -> Result<(), String> {
    let path = config.data_dir.join(DOCTOR_CONFIG);
    let text = |p: &Path| toml::Value::String(p.to_string_lossy().into_owned());
    let mut youtube = toml::Table::new();
    youtube.insert(
        "ytdlp_path".into(),
        toml::Value::String(config.youtube.ytdlp_path.clone()),
    );
    youtube.insert("download_dir".into(), text(&config.download_dir()));
    let mut webhooks = toml::Table::new();
    if let Some(secret) = &config.webhooks.overseerr_secret {
        webhooks.insert(
            "overseerr_secret".into(),
            toml::Value::String(secret.expose().to_owned()),
        );
    }
    let mut table = toml::Table::new();
    table.insert("data_dir".into(), text(&config.data_dir));
    table.insert("youtube".into(), toml::Value::Table(youtube));
    table.insert("webhooks".into(), toml::Value::Table(webhooks));
    let body = toml::to_string(&table).map_err(|e| e.to_string())?;
    let header = format!(
        "# Written by `medianest demo` for `medianest doctor --config {}`.\n",
        path.display()
    );
    std::fs::write(&path, header + &body)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// What the demo prints once it is ready: only what works.
fn banner(
    local: SocketAddr,
    base: &str,
    sims: &Simulators,
    data_dir: &Path,
    temporary: bool,
) -> String {
    let monitors = MONITORS
        .iter()
        .map(|(_, name, state)| match state {
            MonitorState::Slow(_) => format!("{name} (slow)"),
            MonitorState::Flapping => format!("{name} (flapping)"),
            MonitorState::Down => format!("{name} (down)"),
            _ => (*name).to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let kept = if temporary { "removed on exit" } else { "kept" };
    let titles = sims.overseerr.titles().len();
    let (_, available, _) = AVAILABLE_MOVIE;
    format!(
        "\n\
         MediaNest demo: http://{local}{base}/  (Ctrl-C stops it)\n\
         \n\
         \x20 Admin sign-in    admin / {ADMIN_PASSWORD}   (POST /api/v1/auth/login)\n\
         \x20 Plex sign-in     as alice or bob (mallory is not allowed: the server is not shared with that account)\n\
         \x20                  POST /api/v1/auth/plex/pin, open its authUrl, pick an account, then\n\
         \x20                  POST /api/v1/auth/plex/pin/{{pinId}}/poll\n\
         \x20 Service status   GET /api/v1/services (checked every {HEALTH_INTERVAL_SECS} s)\n\
         \x20 Requests         GET /api/v1/media/search?query=matrix, POST /api/v1/media/requests;\n\
         \x20                  approve as admin, then POST {}/demo/requests/{{overseerrId}}/available\n\
         \x20                  plays Radarr, and Seerr's webhook marks the request available\n\
         \x20 Plex library     GET /api/v1/plex/libraries: Movies, TV Shows and {YOUTUBE_LIBRARY} (new files in\n\
         \x20                  the downloads folder show up there once Plex is asked to scan)\n\
         \x20 YouTube          POST /api/v1/youtube/downloads {{\"url\": \"https://youtu.be/dQw4w9WgXcQ\"}}\n\
         \x20                  (a simulated yt-dlp writes small files under the data directory;\n\
         \x20                  the Plex library {YOUTUBE_LIBRARY} gets a collection per playlist)\n\
         \x20 Discover         /discover: rows of posters; a poster opens the title's page (/movie/{{tmdbId}},\n\
         \x20                  /tv/{{tmdbId}}); {available} is on Plex: \"Watch in Plex\" and \"Report a problem\"\n\
         \x20                  (the report goes to Seerr; resolve it as admin under Admin > Requests)\n\
         \x20 Plex watchlist   alice's and bob's Plex watchlists hold Inception and a show: switch on\n\
         \x20                  \"Request what I add to my Plex watchlist\" on My requests (checked\n\
         \x20                  every minute); add a title with POST {}/demo/watchlist/alice/{{ratingKey}}\n\
         \x20                  (the rating keys: GET {}/demo/titles)\n\
         \x20 Subscriptions    /subscriptions: the simulated channel {DEMO_CHANNEL} gains a video\n\
         \x20                  every minute; \"Check now\" (or the check every 15 min) downloads the new\n\
         \x20                  ones as episodes of the Plex library {SUBSCRIPTIONS_LIBRARY}, keeping the newest 5\n\
         \n\
         \x20 Simulated upstreams on this machine:\n\
         \x20   plex.tv        {}  (accounts owner, alice, bob, mallory)\n\
         \x20   Plex discover  {}  (the accounts' watchlists)\n\
         \x20   Plex server    {}  (\"Demo Media Server\")\n\
         \x20   Seerr          {}  ({titles} titles; alice and bob are Seerr users)\n\
         \x20   Uptime Kuma    {}  (status page \"{KUMA_SLUG}\": {monitors})\n\
         \n\
         \x20 Notifications (the demo's email and ntfy channels; every user gets both):\n\
         \x20   SMTP sink      {}  (plain SMTP; keeps the last {SINK_KEEP} messages)\n\
         \x20   Mail inbox     {}/  (JSON: {}/messages)\n\
         \x20   ntfy           {}  (read a user's topic: {}/{NTFY_TOPIC_PREFIX}alice/json?poll=1)\n\
         \n\
         \x20 Data directory   {}  ({kept})\n\
         \x20 Doctor           medianest doctor --config {}",
        sims.overseerr.url(),
        sims.plex_discover.url(),
        sims.plex_discover.url(),
        sims.plextv.url(),
        sims.plex_discover.url(),
        sims.plex.url(),
        sims.overseerr.url(),
        sims.uptime_kuma.url(),
        sims.mail.addr(),
        sims.mail_inbox.url(),
        sims.mail_inbox.url(),
        sims.ntfy.url(),
        sims.ntfy.url(),
        data_dir.display(),
        data_dir.join(DOCTOR_CONFIG).display(),
    )
}

/// A data directory created for this run and removed at its end (or on drop, if the run
/// failed before it could remove it).
struct TempDir {
    path: Option<PathBuf>,
}

impl TempDir {
    /// Creates `path`, which must not exist yet (mode 0700).
    fn create(path: &Path) -> Result<Self, String> {
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(Self {
            path: Some(path.to_path_buf()),
        })
    }

    fn remove(mut self) -> Result<(), String> {
        match self.path.take() {
            Some(path) => std::fs::remove_dir_all(&path)
                .map_err(|e| format!("cannot remove {}: {e}", path.display())),
            None => Ok(()),
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

fn suffix() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(10)
        .map(|b| char::from(b).to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_demo_plex_server_has_libraries_a_collection_and_a_youtube_folder() {
        let sims = Simulators::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let downloads = dir.path().join("downloads");
        let youtube = sims.add_youtube_library(&downloads).unwrap();
        assert!(downloads.is_dir());
        let plex = crate::integrations::plex::PlexServer::new(
            &sims.plex.url(),
            Some(sims.owner.token.clone()),
            crate::integrations::upstream::UpstreamOptions::default(),
            crate::clock::system(),
        );
        let sections = plex.sections().await.unwrap();
        let titles: Vec<_> = sections.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["Movies", "TV Shows", YOUTUBE_LIBRARY]);
        assert_eq!(sections[2].key, youtube);
        assert_eq!(
            sections[2].locations,
            vec![downloads.to_string_lossy().into_owned()]
        );
        let movies = plex.section_items(&sections[0].key, 0, 50).await.unwrap();
        assert_eq!(movies.total, MOVIES.len() as u64);
        let collections = plex.collections(&sections[0].key).await.unwrap();
        assert_eq!(collections.len(), 1);
        assert_eq!(collections[0].child_count, Some(3));
        assert_eq!(plex.server_info().await.unwrap().name, "Demo Media Server");
        sims.shutdown().await;
    }

    #[test]
    fn the_demo_config_is_its_own_and_valid() {
        let demo = Demo::new(Options::default()).unwrap();
        let config = demo.config();
        assert!(demo.temporary);
        assert_eq!(
            config.server.listen,
            SocketAddr::from(([127, 0, 0, 1], 4000))
        );
        assert_eq!(config.log.level, "warn");
        assert_eq!(
            config.admin.password.as_ref().unwrap().expose(),
            ADMIN_PASSWORD
        );
        let name = config.data_dir.file_name().unwrap().to_string_lossy();
        assert!(name.starts_with(DATA_DIR_PREFIX), "{name}");
        assert!(config.data_dir.starts_with(std::env::temp_dir()));
        assert!(!config.data_dir.exists(), "created by run, not new");

        let kept = Demo::new(Options {
            data_dir: Some("/srv/demo".into()),
            log_level: Some("debug".into()),
            ..Options::default()
        })
        .unwrap();
        assert!(!kept.temporary);
        assert_eq!(kept.config().data_dir, PathBuf::from("/srv/demo"));
        assert_eq!(kept.config().log.level, "debug");
        assert!(
            Demo::new(Options {
                log_level: Some("loud".into()),
                ..Options::default()
            })
            .is_err()
        );
    }
}
