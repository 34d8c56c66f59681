//! The route table: every API route with its method, path and who may call it, in one list that
//! both builds the axum router and can be enumerated (the authorization matrix test walks it, so
//! a new route cannot ship without an expected answer for each kind of caller).
//!
//! Who may call a route is enforced by the handler's extractors (`CurrentUser`, `AdminUser`);
//! [`Access`] here documents it and lets tests check the two agree.

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, on};

use crate::state::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// A signed-in user.
    User,
    /// A signed-in admin.
    Admin,
    /// A shared secret or token (webhooks, metrics).
    Secret,
}

/// One route of the table.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    pub method: Method,
    /// The full path template, e.g. `/api/v1/auth/sessions/{id}`.
    pub path: String,
    pub access: Access,
}

/// A list of routes under construction.
#[derive(Default)]
pub struct Routes {
    entries: Vec<(RouteInfo, MethodRouter<AppState>)>,
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `method path` answered by `handler` (e.g. `handlers::login`).
    pub fn add<H, T>(mut self, method: Method, path: &str, access: Access, handler: H) -> Self
    where
        H: axum::handler::Handler<T, AppState>,
        T: 'static,
    {
        let filter = axum::routing::MethodFilter::try_from(method.clone())
            .unwrap_or(axum::routing::MethodFilter::GET);
        self.entries.push((
            RouteInfo {
                method,
                path: path.to_owned(),
                access,
            },
            on(filter, handler),
        ));
        self
    }

    /// Appends another list.
    pub fn merge(mut self, other: Routes) -> Self {
        self.entries.extend(other.entries);
        self
    }

    /// Puts every path under `prefix`.
    pub fn prefixed(mut self, prefix: &str) -> Self {
        for (info, _) in &mut self.entries {
            info.path = format!("{prefix}{}", info.path);
        }
        self
    }

    /// The table, for enumeration.
    pub fn table(&self) -> Vec<RouteInfo> {
        self.entries.iter().map(|(info, _)| info.clone()).collect()
    }

    /// The axum router (several methods on one path merge into one route).
    pub fn into_router(self) -> Router<AppState> {
        let mut by_path: Vec<(String, MethodRouter<AppState>)> = Vec::new();
        for (info, handler) in self.entries {
            match by_path.iter_mut().find(|(p, _)| *p == info.path) {
                Some((_, existing)) => {
                    let merged = std::mem::take(existing).merge(handler);
                    *existing = merged;
                }
                None => by_path.push((info.path, handler)),
            }
        }
        by_path
            .into_iter()
            .fold(Router::new(), |router, (path, handler)| {
                router.route(&path, handler)
            })
    }
}
