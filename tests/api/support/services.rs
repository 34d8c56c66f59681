//! The service-health fixture: a portal whose Plex, Overseerr and Uptime Kuma connections point
//! at the simulators on loopback, an admin and a user with sessions, and helpers to run check
//! cycles, read the status API and steer the settings.
//!
//! Everything runs on the test state's manual clock (the fake Kuma's beat times too), so cache
//! TTLs, breaker periods and uptime windows move by hand. Check cycles are run directly with
//! `medianest::services::manager::run_cycle`; only the live-event test runs the background loop.

use axum::Router;
use medianest::Config;
use medianest::config::Secret;
use medianest::db::Db;
use medianest::sim::overseerr::FakeOverseerr;
use medianest::sim::plex::FakePlexServer;
use medianest::sim::uptime_kuma::{FakeUptimeKuma, KumaVersion};
use serde_json::Value;

use super::{TestResponse, TestState, call, insert_user, new_session, scalar, sql_text};

/// The status page slug the fake Kuma serves.
pub const KUMA_SLUG: &str = "home";
/// The Overseerr API key the portal is seeded with (longer than 8, so the mask keeps a tail).
pub const OVERSEERR_KEY: &str = "overseerr-key-0123456789abcdef";

/// The portal and its three upstreams.
pub struct ServiceWorld {
    pub t: TestState,
    pub app: Router,
    pub plex: FakePlexServer,
    pub overseerr: FakeOverseerr,
    pub kuma: FakeUptimeKuma,
    pub admin_id: String,
    pub admin: String,
    pub user_id: String,
    pub user: String,
}

/// A world with the Kuma page in the 2.x shape and monitors 1 ("Media") and 2 ("NAS").
pub async fn world() -> ServiceWorld {
    world_with(KumaVersion::V2, |_| {}).await
}

/// A world with the given Kuma shape and configuration changes (applied after the seeds point
/// at the simulators, so `edit` may point one elsewhere).
pub async fn world_with(version: KumaVersion, edit: impl FnOnce(&mut Config)) -> ServiceWorld {
    world_on(version, edit, |_| Db::open_memory().unwrap()).await
}

/// [`world_with`] on a database made by `open`.
pub async fn world_on(
    version: KumaVersion,
    edit: impl FnOnce(&mut Config),
    open: impl FnOnce(&Config) -> Db,
) -> ServiceWorld {
    let clock = std::sync::Arc::new(medianest::clock::ManualClock::new(super::START_MS));
    let plex = FakePlexServer::start().await.unwrap();
    let overseerr = FakeOverseerr::start().await.unwrap();
    overseerr.set_api_key(OVERSEERR_KEY);
    let kuma = FakeUptimeKuma::start_with_clock(KUMA_SLUG, version, clock.clone())
        .await
        .unwrap();
    kuma.add_monitor(1, "Media");
    kuma.add_monitor(2, "NAS");
    let t = super::test_state_with_clock(
        clock,
        |c| {
            c.services.plex.url = Some(plex.url());
            c.services.plex.api_key = Some(Secret::new(plex.token()));
            c.services.overseerr.url = Some(overseerr.url());
            c.services.overseerr.api_key = Some(Secret::new(OVERSEERR_KEY));
            c.services.uptime_kuma.url = Some(kuma.url());
            c.services.uptime_kuma.slug = Some(KUMA_SLUG.into());
            edit(c);
        },
        open,
    );
    // Users first: with an account present, start-up creates no admin (and hashes nothing).
    let admin_id = insert_user(&t.state, "admin", None, "admin", None).await;
    let user_id = insert_user(&t.state, "user", None, "user", None).await;
    let admin = new_session(&t.state, &admin_id).await.token;
    let user = new_session(&t.state, &user_id).await.token;
    super::prepare(&t).await;
    medianest::services::admin::rebuild_clients(&t.state)
        .await
        .unwrap();
    let app = t.router();
    ServiceWorld {
        t,
        app,
        plex,
        overseerr,
        kuma,
        admin_id,
        admin,
        user_id,
        user,
    }
}

/// A loopback URL nothing listens on (bound, noted, closed): connections are refused.
pub fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

impl ServiceWorld {
    /// One health-check cycle, now.
    pub async fn cycle(&self) {
        medianest::services::manager::run_cycle(&self.t.state)
            .await
            .unwrap();
    }

    /// New sessions for the admin and the user (after the clock moved past their expiry).
    pub async fn renew_sessions(&mut self) {
        self.admin = new_session(&self.t.state, &self.admin_id).await.token;
        self.user = new_session(&self.t.state, &self.user_id).await.token;
    }

    /// `GET path` with `token`.
    pub async fn get(&self, token: &str, path: &str) -> TestResponse {
        call("GET", path).bearer(token).send(&self.app).await
    }

    /// `GET /services` as the user: the list.
    pub async fn list(&self) -> Vec<Value> {
        let r = self.get(&self.user, "/api/v1/services").await;
        r.data().as_array().unwrap().clone()
    }

    /// One entry of `GET /services` (as the user); panics when it is missing.
    pub async fn service(&self, name: &str) -> Value {
        let list = self.list().await;
        list.into_iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in GET /services"))
    }

    /// A service's `status`.
    pub async fn status(&self, name: &str) -> String {
        self.service(name).await["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// `PUT /admin/services/{name}` as the admin.
    pub async fn put_service(&self, name: &str, body: Value) -> TestResponse {
        call("PUT", &format!("/api/v1/admin/services/{name}"))
            .bearer(&self.admin)
            .json(body)
            .send(&self.app)
            .await
    }

    /// `POST /admin/services/{name}/test` as the admin.
    pub async fn test_service(&self, name: &str, body: Value) -> TestResponse {
        call("POST", &format!("/api/v1/admin/services/{name}/test"))
            .bearer(&self.admin)
            .json(body)
            .send(&self.app)
            .await
    }

    /// One breaker as `GET /admin/integrations` shows it.
    pub async fn breaker(&self, service: &str) -> Value {
        let r = self.get(&self.admin, "/api/v1/admin/integrations").await;
        r.data()
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["service"] == service)
            .cloned()
            .unwrap_or_else(|| panic!("no breaker for {service}"))
    }

    /// Sets a service's `timeoutMs` directly in its stored options and rebuilds the clients,
    /// without the check a `PUT` runs.
    pub async fn set_timeout_ms(&self, service: &str, ms: u64) {
        let name = service.to_owned();
        self.t
            .state
            .db()
            .write(move |tx| {
                tx.execute(
                    "UPDATE service_config
                     SET config_data = json_set(config_data, '$.timeoutMs', ?2)
                     WHERE service_name = ?1",
                    rusqlite::params![name, ms as i64],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        medianest::services::admin::rebuild_clients(&self.t.state)
            .await
            .unwrap();
    }

    /// Points a service at `url` directly in its stored settings and rebuilds the clients,
    /// without the check a `PUT` runs.
    pub async fn set_url(&self, service: &str, url: &str) {
        let (name, url) = (service.to_owned(), url.to_owned());
        self.t
            .state
            .db()
            .write(move |tx| {
                tx.execute(
                    "UPDATE service_config SET service_url = ?2 WHERE service_name = ?1",
                    rusqlite::params![name, url],
                )?;
                Ok(())
            })
            .await
            .unwrap();
        medianest::services::admin::rebuild_clients(&self.t.state)
            .await
            .unwrap();
    }

    /// Notifications of `user_id` of one type.
    pub async fn notifications(&self, user_id: &str, kind: &str) -> i64 {
        scalar(
            &self.t.state,
            "SELECT count(*) FROM notifications WHERE user_id = ?1 AND type = ?2",
            vec![sql_text(user_id), sql_text(kind)],
        )
        .await
    }

    /// Rows of a table for one service (`service_name = name`).
    pub async fn rows(&self, table: &str, name: &str) -> i64 {
        scalar(
            &self.t.state,
            &format!("SELECT count(*) FROM {table} WHERE service_name = ?1"),
            vec![sql_text(name)],
        )
        .await
    }
}
