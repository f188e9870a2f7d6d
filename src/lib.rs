//! scimd: a SCIM 2.0 (RFC 7643/7644) user-provisioning server.
//!
//! Reading order: `migrations/` → `main.rs` → [`scim`] → [`store`] → [`resources`] → [`http`].

// Unit tests may unwrap: a panic there is a failed assertion.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

/// Pure SCIM protocol logic: schema, filters, paths, PATCH, projection. No I/O.
pub mod scim;

/// Storage trait and its Postgres and SQLite implementations.
pub mod store;

/// API keys (JWTs signed with rotatable secrets) and request authentication.
pub mod auth;

/// The resource layer: the one place a User or Group changes, for every caller.
pub mod resources;

/// Operating scimd: organizations, keys, attribute definitions, streams, signing secrets,
/// organization deletion and the operators' audit trail, for the admin API and the CLI.
pub mod admin;

/// Rejected writes, retention of the change log, and `scimd audit`.
pub mod audit;

/// SCIM events (RFC 9967): signed SETs delivered by push and poll.
pub mod events;

/// GCRA rate limiting.
pub mod ratelimit;

/// Router, handlers and the one error-to-response mapping.
pub mod http;

/// Command-line and environment configuration.
pub mod config;

/// Prometheus metrics.
pub mod metrics;

/// Logging setup.
pub mod telemetry;

/// Start-up: connecting, key material, bootstrap.
pub mod app;
