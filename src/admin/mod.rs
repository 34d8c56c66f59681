//! The admin pages' API: user management, the error log, performance and usage statistics; plus
//! `POST /errors/report`, where the dashboard sends its own errors. (Backups: `crate::backups`.)
//!
//! Every `/admin` handler takes [`AdminUser`](crate::auth::AdminUser). This module owns no table:
//! it reads and changes `users` (rules of SPEC section 1 in [`users`]) and `error_logs` (queries
//! in `crate::error_log`), and only reads the rest.

pub mod errors;
pub mod stats;
pub mod users;

use axum::http::Method;

use crate::routes::{Access, Routes};

/// The admin routes and the client error report (under `/api/v1`).
pub fn routes() -> Routes {
    Routes::new()
        .add(
            Method::GET,
            "/admin/users",
            Access::Admin,
            users::list_users,
        )
        .add(
            Method::PATCH,
            "/admin/users/{id}",
            Access::Admin,
            users::update_user,
        )
        .add(
            Method::DELETE,
            "/admin/users/{id}",
            Access::Admin,
            users::delete_user,
        )
        .add(
            Method::GET,
            "/admin/errors",
            Access::Admin,
            errors::list_errors,
        )
        .add(
            Method::GET,
            "/admin/errors/{correlation_id}",
            Access::Admin,
            errors::list_correlated_errors,
        )
        .add(
            Method::GET,
            "/admin/performance",
            Access::Admin,
            stats::get_performance,
        )
        .add(Method::GET, "/admin/stats", Access::Admin, stats::get_stats)
        .add(
            Method::POST,
            "/errors/report",
            Access::User,
            errors::report_errors,
        )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod testing {
    //! A fresh application per test: temp data dir, in-memory database, manual clock, the
    //! configured admin signed in through `POST /auth/login`, and helpers to add users.

    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use base64::Engine;
    use tempfile::TempDir;
    use tower::ServiceExt;

    use crate::clock::{Clock, ManualClock};
    use crate::config::{Config, Secret};
    use crate::data_dir::DataDir;
    use crate::db::Db;
    use crate::state::AppState;

    /// Where the clock of every test starts (mid-2025, Unix ms).
    pub const START_MS: i64 = 1_750_000_000_000;
    pub const ADMIN_PASSWORD: &str = "correct horse battery";

    pub struct TestApp {
        pub state: AppState,
        pub app: Router,
        pub clock: Arc<ManualClock>,
        pub admin_id: String,
        pub admin_token: String,
        _dir: TempDir,
    }

    /// A response read to the end; `json` is `Null` when the body is not JSON.
    pub struct Reply {
        pub status: StatusCode,
        pub headers: axum::http::HeaderMap,
        pub bytes: Vec<u8>,
        pub json: serde_json::Value,
    }

    impl Reply {
        /// The error code of an error envelope.
        pub fn code(&self) -> &str {
            self.json["error"]["code"].as_str().unwrap_or("")
        }
    }

    impl TestApp {
        pub async fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let mut config = Config {
                data_dir: dir.path().join("data"),
                ..Config::default()
            };
            config.admin.password = Some(Secret::new(ADMIN_PASSWORD));
            let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
            let data = DataDir::prepare_with(&config, Some(&key)).unwrap();
            let db = Db::open_memory().unwrap();
            let clock = Arc::new(ManualClock::new(START_MS));
            {
                let (db, config, data) = (db.clone(), config.clone(), data.clone());
                tokio::task::spawn_blocking(move || {
                    crate::prepare_database(&db, &config, &data, START_MS).unwrap()
                })
                .await
                .unwrap();
            }
            let state = AppState::new(config, db, data, clock.clone());
            let app = crate::router(state.clone());
            let mut test = Self {
                state,
                app,
                clock,
                admin_id: String::new(),
                admin_token: String::new(),
                _dir: dir,
            };
            let login = test
                .call(
                    "POST",
                    "/api/v1/auth/login",
                    None,
                    Some(serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD})),
                )
                .await;
            assert_eq!(login.status, StatusCode::OK, "{}", login.json);
            test.admin_token = login.json["data"]["token"].as_str().unwrap().to_owned();
            test.admin_id = login.json["data"]["user"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            test
        }

        /// Sends one request (Bearer `token`, JSON `body`) and reads the whole response.
        pub async fn call(
            &self,
            method: &str,
            path: &str,
            token: Option<&str>,
            body: Option<serde_json::Value>,
        ) -> Reply {
            self.call_with(method, path, token, body, &[]).await
        }

        /// [`TestApp::call`] with extra headers.
        pub async fn call_with(
            &self,
            method: &str,
            path: &str,
            token: Option<&str>,
            body: Option<serde_json::Value>,
            headers: &[(&str, &str)],
        ) -> Reply {
            let mut request = Request::builder().method(method).uri(path);
            if let Some(token) = token {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let request = match body {
                Some(body) => request
                    .header("content-type", "application/json")
                    .body(Body::from(body.to_string())),
                None => request.body(Body::empty()),
            }
            .unwrap();
            let response = self.app.clone().oneshot(request).await.unwrap();
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, 64 * 1024 * 1024)
                .await
                .unwrap()
                .to_vec();
            let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
            Reply {
                status: parts.status,
                headers: parts.headers,
                bytes,
                json,
            }
        }

        /// `GET path` as the admin.
        pub async fn admin_get(&self, path: &str) -> Reply {
            self.call("GET", path, Some(&self.admin_token), None).await
        }

        /// Runs SQL with parameters.
        pub async fn exec(&self, sql: &'static str, params: Vec<rusqlite::types::Value>) {
            self.state
                .db()
                .write(move |tx| {
                    tx.execute(sql, rusqlite::params_from_iter(params))?;
                    Ok(())
                })
                .await
                .unwrap();
        }

        /// A single integer from SQL.
        pub async fn count(&self, sql: &'static str, params: Vec<rusqlite::types::Value>) -> i64 {
            self.state
                .db()
                .run(move |c| {
                    Ok(c.query_row(sql, rusqlite::params_from_iter(params), |r| r.get(0))?)
                })
                .await
                .unwrap()
        }

        /// Inserts a user created at `created_at` and returns its id.
        pub async fn add_user(
            &self,
            username: &str,
            email: Option<&str>,
            role: &str,
            status: &str,
            created_at: i64,
        ) -> String {
            let id = crate::users::new_id();
            let (u, e, r, s, i) = (
                username.to_owned(),
                email.map(str::to_owned),
                role.to_owned(),
                status.to_owned(),
                id.clone(),
            );
            self.state
                .db()
                .write(move |tx| {
                    tx.execute(
                        "INSERT INTO users (id, username, email, role, status, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        rusqlite::params![i, u, e, r, s, created_at],
                    )?;
                    Ok(())
                })
                .await
                .unwrap();
            id
        }

        /// A new session for `user_id`; returns its token.
        pub async fn sign_in(&self, user_id: &str) -> String {
            let state = self.state.clone();
            let user_id = user_id.to_owned();
            let now = self.clock.now_ms();
            self.state
                .db()
                .write(move |tx| {
                    state
                        .sessions()
                        .create(tx, &user_id, false, None, None, now)
                })
                .await
                .unwrap()
                .token
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::StatusCode;

    use super::testing::{START_MS, TestApp};
    use crate::routes::Access;

    #[tokio::test]
    async fn every_route_checks_who_calls() {
        let t = TestApp::new().await;
        let user = t.add_user("plain", None, "user", "active", START_MS).await;
        let token = t.sign_in(&user).await;
        for route in super::routes().prefixed("/api/v1").table() {
            let path = route
                .path
                .replace("{id}", "x")
                .replace("{correlation_id}", "x");
            let method = route.method.as_str();
            let anonymous = t.call(method, &path, None, None).await;
            assert_eq!(
                anonymous.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path}"
            );
            let plain = t.call(method, &path, Some(&token), None).await;
            match route.access {
                Access::Admin => {
                    assert_eq!(plain.status, StatusCode::FORBIDDEN, "{method} {path}");
                }
                _ => assert_ne!(plain.status, StatusCode::FORBIDDEN, "{method} {path}"),
            }
        }
    }
}
