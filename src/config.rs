//! Configuration: one clap struct per concern, every flag also an environment variable.

use std::fmt;

use clap::{Args, ValueEnum};

use crate::http::{PutMode, Settings};
use crate::scim::user::UserNameFormat;
use crate::store::{RateLimit, redact_url};

/// Where the data lives and how keys are signed: shared by every subcommand.
#[derive(Args, Clone)]
pub struct StoreConfig {
    /// `postgres://…` for Postgres, `sqlite://PATH` for an embedded SQLite file (created if missing).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://scimd.db",
        global = true
    )]
    pub database_url: String,

    /// Secret that signs API keys (≥ 32 bytes). Required on Postgres; on SQLite a generated one
    /// is kept in the database when unset.
    #[arg(long, env = "SCIMD_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("database_url", &redact_url(&self.database_url))
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "***"))
            .finish()
    }
}

/// `SCIMD_USERNAME_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UserNameFormatArg {
    /// userName must be an email address (the reference's rule).
    Email,
    /// Any non-empty string (RFC 7643 §4.1.1).
    Any,
}

/// `SCIMD_PUT_MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PutModeArg {
    /// Attributes not in the body are left unchanged (the reference's PUT).
    Merge,
    /// Attributes not in the body are cleared (RFC 7644 §3.5.1).
    Replace,
}

/// `scimd serve` settings.
#[derive(Args, Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "SCIMD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Requests per minute allowed per organization API key.
    #[arg(long, env = "SCIMD_RATE_LIMIT_PER_MINUTE", default_value_t = 60)]
    pub rate_limit_per_minute: u64,

    /// Failed authentications per minute allowed per client IP.
    #[arg(
        long,
        env = "SCIMD_AUTH_FAILURE_LIMIT_PER_MINUTE",
        default_value_t = 30
    )]
    pub auth_failure_limit_per_minute: u64,

    /// Accepted userName format.
    #[arg(
        long,
        env = "SCIMD_USERNAME_FORMAT",
        value_enum,
        default_value = "email"
    )]
    pub username_format: UserNameFormatArg,

    /// What PUT does with attributes the body leaves out.
    #[arg(long, env = "SCIMD_PUT_MODE", value_enum, default_value = "merge")]
    pub put_mode: PutModeArg,

    /// Seconds a request may run before it is answered 504.
    #[arg(long, env = "SCIMD_REQUEST_TIMEOUT", default_value_t = 30)]
    pub request_timeout: u64,

    /// Largest page a list request may return.
    #[arg(long, env = "SCIMD_MAX_RESULTS", default_value_t = 1000)]
    pub max_results: i64,

    /// Public base URL (e.g. https://scim.example.com) for `meta.location`; from `Host` if unset.
    #[arg(long, env = "SCIMD_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Seconds an API key lookup (revocation check) may be cached.
    #[arg(long, env = "SCIMD_KEY_CACHE_SECONDS", default_value_t = 2)]
    pub key_cache_seconds: u64,

    /// On first start against an empty database, create org `default` and print a key.
    #[arg(long, env = "SCIMD_BOOTSTRAP", default_value_t = true, action = clap::ArgAction::Set)]
    pub bootstrap: bool,
}

impl ServeConfig {
    /// The part of the configuration the HTTP handlers read.
    pub fn settings(&self) -> Settings {
        Settings {
            rate_limit: RateLimit::per_minute(self.rate_limit_per_minute),
            auth_failure_limit: RateLimit::per_minute(self.auth_failure_limit_per_minute),
            user_name_format: match self.username_format {
                UserNameFormatArg::Email => UserNameFormat::Email,
                UserNameFormatArg::Any => UserNameFormat::Any,
            },
            public_url: self.public_url.clone(),
            max_results: self.max_results.max(1),
            request_timeout: std::time::Duration::from_secs(self.request_timeout.max(1)),
            put_mode: match self.put_mode {
                PutModeArg::Merge => PutMode::Merge,
                PutModeArg::Replace => PutMode::Replace,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_redacts_secrets() {
        let config = StoreConfig {
            database_url: "postgres://u:hunter2@h/db".into(),
            jwt_secret: Some("s".repeat(40)),
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("ssss"), "{shown}");
    }
}
