//! Problem reports: a user says "this file is broken" about an available title (video, audio,
//! subtitles, other; a message; for a show, the season and episode). The report goes to Seerr's
//! issue API as the user's own Seerr account (`X-API-User`, the mapping media requests use) and
//! is kept here with Seerr's issue id; Seerr's `ISSUE_*` webhooks (received by the Seerr webhook
//! endpoint of `crate::media`, handed to [`webhook::apply`]) keep it up to date and notify the
//! reporter. Admins list open problems and resolve or reopen them with a comment.
//!
//! Here: the routes and the feature's state (a lock per Seerr issue, so an admin's resolve and
//! the webhooks it causes apply one after the other); the queries in [`store`], the handlers in
//! [`api`]. Nothing here reads another feature's tables but `users`.

pub mod api;
pub mod changes;
pub mod reconcile;
pub mod store;
pub mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::Method;

use crate::routes::{Access, Routes};

/// The feature's state, held by `AppState`.
#[derive(Debug, Default)]
pub struct Problems {
    issues: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
    users: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the lock of one Seerr issue: the admin's resolve (comment, status, store, notify)
    /// and the webhooks that echo it take turns, so the echo finds the change already stored
    /// and notifies nobody a second time. Locks nobody holds are dropped on the way.
    pub(crate) async fn lock_issue(&self, issue_id: i64) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut issues = self.issues.lock().unwrap_or_else(|e| e.into_inner());
            issues.retain(|_, lock| Arc::strong_count(lock) > 1);
            issues.entry(issue_id).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// Takes the lock of one MediaNest user's reports and comments: the hourly cap is counted
    /// and the new row stored while it is held, so parallel calls cannot all pass the count.
    pub(crate) async fn lock_user(&self, user_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
            users.retain(|_, lock| Arc::strong_count(lock) > 1);
            users.entry(user_id.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }
}

/// The routes of the feature.
pub fn routes() -> Routes {
    Routes::new()
        .add(Method::POST, "/media/problems", Access::User, api::create)
        .add(Method::GET, "/media/problems", Access::User, api::list_mine)
        .add(
            Method::GET,
            "/media/problems/{id}",
            Access::User,
            api::get_one,
        )
        .add(
            Method::POST,
            "/media/problems/{id}/comments",
            Access::User,
            api::comment,
        )
        .add(Method::GET, "/admin/problems", Access::Admin, api::list_all)
        .add(
            Method::POST,
            "/admin/problems/{id}/resolve",
            Access::Admin,
            api::resolve,
        )
        .add(
            Method::POST,
            "/admin/problems/{id}/reopen",
            Access::Admin,
            api::reopen,
        )
}
