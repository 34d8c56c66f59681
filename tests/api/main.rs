//! The API integration tests: one binary, one module per area. Router tests go through
//! `tower::ServiceExt::oneshot`; the server tests bind `127.0.0.1:0` and hand the listener to
//! `medianest::serve_app`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod account_changes;
mod app_install;
mod at_rest;
mod auth;
mod authz;
mod backup;
mod base_path;
mod connections;
mod costs;
mod dashboard;
mod discover;
mod doctor;
mod edge;
mod events;
mod health;
mod images;
mod lockout;
mod media;
mod media_plans;
mod metrics;
mod notification_admin;
mod notification_channels;
mod notification_delivery;
mod notification_prefs;
mod plex_browse;
mod plex_handoff;
mod plex_signin;
mod problems;
mod push;
mod schema;
mod service_faults;
mod services;
mod sessions;
mod shutdown;
mod title;
mod watchlist;
mod youtube;
mod youtube_listing;
mod youtube_retention;
mod youtube_subscription_avatar;
mod youtube_subscriptions;
mod ytdlp_real;
