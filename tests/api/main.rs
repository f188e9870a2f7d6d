//! The one integration-test binary: every test drives the real router over a real database,
//! on SQLite always and on Postgres when `TEST_DATABASE_URL` is set.

// A panic in a test is a failed assertion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod admin;
mod auth;
mod bulk;
mod changelog;
mod concurrency;
mod console;
mod discovery;
mod durability;
mod errors;
mod events;
mod filter;
mod group_members;
mod groups;
mod hostile;
mod hostile_limits;
mod hostile_store;
mod hostile_tenants;
mod hostile_transport;
mod interop;
mod lifecycle;
mod list;
mod migrations;
mod openapi;
mod ops;
mod pages;
mod patch;
mod pool;
mod ratelimit;
mod rendering;
mod resources;
mod scale;
mod scenarios;
mod schema_keys;
mod user_groups;
mod users;
