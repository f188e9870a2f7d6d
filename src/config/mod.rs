//! Configuration: one clap struct per concern, every flag also an environment variable; the
//! [`Settings`] a running server reads, and their defaults (written once, in `settings.rs`).

pub mod proxies;
mod settings;

use std::fmt;

use clap::{Args, ValueEnum};

pub use proxies::TrustedProxies;
pub use settings::{PutMode, Settings, cores};

use crate::ratelimit::RateLimit;
use crate::scim::interop::Profile;
use crate::scim::limits::Limits;
use crate::scim::user::UserNameFormat;
use crate::store::{StoreOptions, redact_url};

/// The defaults every flag below shows: those of [`Settings`] and [`Limits`].
fn defaults() -> Settings {
    Settings::default()
}

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

/// `SCIMD_PROFILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileArg {
    /// The reference's response shape and what Okta and Entra send today.
    Reference,
    /// The SCIM interoperability profile, with strict RFC 7643 rendering.
    Interop,
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
    #[arg(long, env = "SCIMD_RATE_LIMIT_PER_MINUTE", default_value_t = defaults().rate_limit.limit)]
    pub rate_limit_per_minute: u64,

    /// Failed authentications per minute allowed per client IP.
    #[arg(
        long,
        env = "SCIMD_AUTH_FAILURE_LIMIT_PER_MINUTE",
        default_value_t = defaults().auth_failure_limit.limit
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

    /// Which profile to serve: the reference's shape, or the SCIM interoperability profile.
    #[arg(long, env = "SCIMD_PROFILE", value_enum, default_value = "reference")]
    pub profile: ProfileArg,

    /// PEM certificate chain: serve HTTPS (TLS 1.3 and 1.2) with it (needs SCIMD_TLS_KEY).
    #[arg(long, env = "SCIMD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// PEM private key of SCIMD_TLS_CERT.
    #[arg(long, env = "SCIMD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// A proxy in front of scimd terminates TLS (the interoperability profile requires TLS;
    /// conformance is announced only when scimd or such a proxy terminates it).
    #[arg(long, env = "SCIMD_TLS_PROXY", default_value_t = false, action = clap::ArgAction::Set)]
    pub tls_proxy: bool,

    /// What PUT does with attributes the body leaves out.
    #[arg(long, env = "SCIMD_PUT_MODE", value_enum, default_value = "merge")]
    pub put_mode: PutModeArg,

    /// Seconds a request may run before it is answered 504.
    #[arg(long, env = "SCIMD_REQUEST_TIMEOUT", default_value_t = defaults().request_timeout.as_secs())]
    pub request_timeout: u64,

    /// Largest page a list request may return.
    #[arg(long, env = "SCIMD_MAX_RESULTS", default_value_t = defaults().max_results)]
    pub max_results: i64,

    /// Seconds a list cursor stays valid (RFC 9865 `cursorTimeout`).
    #[arg(long, env = "SCIMD_CURSOR_TIMEOUT", default_value_t = defaults().cursor_timeout.as_secs())]
    pub cursor_timeout: u64,

    /// Most members one response lists inline; a group past that is shown without them and
    /// points at /GroupMembers instead.
    #[arg(long, env = "SCIMD_GROUP_INLINE_MEMBERS", default_value_t = defaults().group_inline_members)]
    pub group_inline_members: usize,

    /// Public base URL (e.g. https://scim.example.com) for `meta.location`; from `Host` if unset.
    #[arg(long, env = "SCIMD_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Seconds an API key lookup (revocation check) may be cached.
    #[arg(long, env = "SCIMD_KEY_CACHE_SECONDS", default_value_t = 2)]
    pub key_cache_seconds: u64,

    /// On first start against an empty database, create org `default` and print a key.
    #[arg(long, env = "SCIMD_BOOTSTRAP", default_value_t = true, action = clap::ArgAction::Set)]
    pub bootstrap: bool,

    /// Hours the bootstrap key stays valid.
    #[arg(long, env = "SCIMD_BOOTSTRAP_KEY_HOURS", default_value_t = 24)]
    pub bootstrap_key_hours: u64,

    /// Seconds one database statement of a request may run (below the request timeout).
    #[arg(long, env = "SCIMD_STATEMENT_TIMEOUT", default_value_t = 20)]
    pub statement_timeout: u64,

    /// Largest stored user or group document, in bytes (larger → 413).
    #[arg(long, env = "SCIMD_MAX_DOCUMENT_BYTES", default_value_t = Limits::default().max_document_bytes)]
    pub max_document_bytes: usize,

    /// Most values of one multi-valued attribute (group members excepted).
    #[arg(long, env = "SCIMD_MAX_MULTI_VALUES", default_value_t = Limits::default().max_multi_values)]
    pub max_multi_values: usize,

    /// Most operations in one PATCH request.
    #[arg(long, env = "SCIMD_MAX_PATCH_OPERATIONS", default_value_t = Limits::default().max_patch_operations)]
    pub max_patch_operations: usize,

    /// Most group members one request may add, remove or set.
    #[arg(long, env = "SCIMD_MAX_MEMBERS_PER_REQUEST", default_value_t = Limits::default().max_members_per_request)]
    pub max_members_per_request: usize,

    /// Bytes of stored documents one list page may read before it stops early.
    #[arg(long, env = "SCIMD_LIST_BYTE_BUDGET", default_value_t = Limits::default().list_byte_budget)]
    pub list_byte_budget: usize,

    /// Most predicates on multi-valued attributes in one filter.
    #[arg(long, env = "SCIMD_MAX_FILTER_MULTI_VALUED", default_value_t = Limits::default().max_filter_multi_valued)]
    pub max_filter_multi_valued: usize,

    /// Comma-separated proxy addresses or networks whose X-Forwarded-For/-Proto/-Host are believed.
    #[arg(long, env = "SCIMD_TRUSTED_PROXIES", default_value = "", value_parser = clap::value_parser!(TrustedProxies))]
    pub trusted_proxies: TrustedProxies,

    /// Requests of one organization served at once; more wait their turn.
    #[arg(long, env = "SCIMD_ORG_CONCURRENCY", default_value_t = defaults().org_concurrency)]
    pub org_concurrency: usize,

    /// argon2 password hashes computed at once (default: the number of cores).
    #[arg(long, env = "SCIMD_PASSWORD_HASH_CONCURRENCY")]
    pub password_hash_concurrency: Option<usize>,

    /// Seconds a client may take to send a request header.
    #[arg(long, env = "SCIMD_HEADER_READ_TIMEOUT", default_value_t = defaults().header_read_timeout.as_secs())]
    pub header_read_timeout: u64,

    /// Seconds a keep-alive connection may stay idle.
    #[arg(long, env = "SCIMD_IDLE_TIMEOUT", default_value_t = defaults().idle_timeout.as_secs())]
    pub idle_timeout: u64,

    /// Most open client connections.
    #[arg(long, env = "SCIMD_MAX_CONNECTIONS", default_value_t = defaults().max_connections)]
    pub max_connections: usize,

    /// Serve /metrics on this address instead of the main listener.
    #[arg(long, env = "SCIMD_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,

    /// Bearer token /metrics requires.
    #[arg(long, env = "SCIMD_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Per-organization gauges on /metrics (they name every organization).
    #[arg(long, env = "SCIMD_METRICS_PER_ORG", default_value_t = false, action = clap::ArgAction::Set)]
    pub metrics_per_org: bool,

    /// Rejected write requests (4xx other than 401/429) stored per API key per minute; more
    /// are counted in the metrics only. 0 stores none.
    #[arg(
        long,
        env = "SCIMD_REJECTED_WRITES_PER_KEY_PER_MINUTE",
        default_value_t = defaults().rejected_writes_per_key_per_minute
    )]
    pub rejected_writes_per_key_per_minute: u64,

    /// Days change-log entries and rejected writes are kept; older ones are pruned in the
    /// background.
    #[arg(long, env = "SCIMD_CHANGE_RETENTION_DAYS", default_value_t = defaults().change_retention.as_secs() / 86_400)]
    pub change_retention_days: u64,

    /// Seconds a process's lease on a push stream holds without renewal: how soon another
    /// process takes over the delivery of one that stopped.
    #[arg(long, env = "SCIMD_STREAM_LEASE_SECONDS", default_value_t = defaults().stream_lease.as_secs())]
    pub stream_lease_seconds: u64,

    /// Seconds of failed pushes after which a stream is marked failing.
    #[arg(long, env = "SCIMD_STREAM_FAILING_AFTER_SECONDS", default_value_t = defaults().stream_failing_after.as_secs())]
    pub stream_failing_after_seconds: u64,

    /// Days a stream may acknowledge nothing before it is disabled.
    #[arg(long, env = "SCIMD_STREAM_MAX_LAG_DAYS", default_value_t = defaults().stream_max_lag.as_secs() / 86_400)]
    pub stream_max_lag_days: u64,

    /// The longest wait, in seconds, between two push attempts.
    #[arg(long, env = "SCIMD_STREAM_RETRY_MAX_SECONDS", default_value_t = defaults().stream_retry_max.as_secs())]
    pub stream_retry_max_seconds: u64,

    /// Most operations in one Bulk request (more → 413).
    #[arg(long, env = "SCIMD_BULK_MAX_OPERATIONS", default_value_t = defaults().bulk_max_operations)]
    pub bulk_max_operations: usize,

    /// Largest Bulk request body in bytes (larger → 413).
    #[arg(long, env = "SCIMD_BULK_MAX_PAYLOAD_BYTES", default_value_t = defaults().bulk_max_payload_bytes)]
    pub bulk_max_payload_bytes: usize,

    /// Seconds a Bulk request may start operations (at most 4/5 of the request timeout);
    /// operations not started by then are answered 503 in the BulkResponse.
    #[arg(long, env = "SCIMD_BULK_TIME_BUDGET", default_value_t = defaults().bulk_time_budget.as_secs())]
    pub bulk_time_budget: u64,

    /// Bulk requests run at once by this process (default: the number of cores); more wait
    /// their turn, within their time budget, before their body is read.
    #[arg(long, env = "SCIMD_BULK_CONCURRENCY")]
    pub bulk_concurrency: Option<usize>,
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
            profile: match self.profile {
                ProfileArg::Reference => Profile::Reference,
                ProfileArg::Interop => Profile::Interop,
            },
            tls: self.tls_cert.is_some() || self.tls_proxy,
            public_url: self.public_url.clone(),
            max_results: self.max_results.max(1),
            cursor_timeout: std::time::Duration::from_secs(self.cursor_timeout.max(1)),
            group_inline_members: self.group_inline_members,
            request_timeout: std::time::Duration::from_secs(self.request_timeout.max(1)),
            put_mode: match self.put_mode {
                PutModeArg::Merge => PutMode::Merge,
                PutModeArg::Replace => PutMode::Replace,
            },
            limits: Limits {
                max_document_bytes: self.max_document_bytes.max(1024),
                max_multi_values: self.max_multi_values.max(1),
                max_patch_operations: self.max_patch_operations.max(1),
                max_members_per_request: self.max_members_per_request.max(1),
                list_byte_budget: self.list_byte_budget.max(1),
                max_filter_multi_valued: self.max_filter_multi_valued,
            },
            trusted_proxies: self.trusted_proxies.clone(),
            org_concurrency: self.org_concurrency.max(1),
            password_hash_concurrency: self.password_hash_concurrency.unwrap_or_else(cores).max(1),
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout.max(1)),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout.max(1)),
            max_connections: self.max_connections.max(1),
            metrics_token: self.metrics_token.clone().filter(|t| !t.is_empty()),
            metrics_per_org: self.metrics_per_org,
            rejected_writes_per_key_per_minute: self.rejected_writes_per_key_per_minute,
            change_retention: std::time::Duration::from_secs(
                self.change_retention_days.max(1).saturating_mul(86_400),
            ),
            stream_lease: std::time::Duration::from_secs(self.stream_lease_seconds.max(1)),
            stream_failing_after: std::time::Duration::from_secs(
                self.stream_failing_after_seconds.max(1),
            ),
            stream_max_lag: std::time::Duration::from_secs(
                self.stream_max_lag_days.max(1).saturating_mul(86_400),
            ),
            stream_retry_max: std::time::Duration::from_secs(self.stream_retry_max_seconds.max(1)),
            bulk_max_operations: self.bulk_max_operations.max(1),
            bulk_max_payload_bytes: self.bulk_max_payload_bytes.max(1024),
            // Below the request timeout, so the response can still be written.
            bulk_time_budget: std::time::Duration::from_millis(
                (self.bulk_time_budget.max(1) * 1000).min(self.request_timeout.max(1) * 800),
            ),
            bulk_concurrency: self.bulk_concurrency.unwrap_or_else(cores).max(1),
        }
    }

    /// How the request pools are set up: statements stop before the request times out, so an
    /// abandoned request frees its connection.
    pub fn store_options(&self) -> StoreOptions {
        let request = self.request_timeout.max(1);
        let statement = self.statement_timeout.clamp(1, request);
        StoreOptions {
            statement_timeout: Some(std::time::Duration::from_secs(statement)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeConfig,
    }

    #[test]
    fn the_command_line_defaults_are_the_settings_defaults() {
        let parsed = Cli::try_parse_from(["scimd"]).unwrap().serve.settings();
        assert_eq!(format!("{parsed:?}"), format!("{:?}", Settings::default()));
    }

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
