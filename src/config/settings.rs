//! The settings a running server reads (a subset of the command-line configuration), with
//! their defaults written once: the CLI's defaults are taken from [`Settings::default`].

use std::sync::OnceLock;
use std::time::Duration;

use super::TrustedProxies;
use crate::ratelimit::RateLimit;
use crate::scim::interop::Profile;
use crate::scim::limits::Limits;
use crate::scim::user::UserNameFormat;

/// How PUT treats attributes the body does not mention (`SCIMD_PUT_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PutMode {
    /// The reference's update: attributes not given are left unchanged.
    #[default]
    Merge,
    /// RFC 7644 §3.5.1: attributes not given are cleared.
    Replace,
}

/// Behaviour settings the handlers need (a subset of the CLI configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Requests per minute per API key.
    pub rate_limit: RateLimit,
    /// Failed authentications per minute per client IP.
    pub auth_failure_limit: RateLimit,
    pub user_name_format: UserNameFormat,
    /// The reference's shape, or the SCIM interoperability profile (`SCIMD_PROFILE`).
    pub profile: Profile,
    /// Clients reach scimd over TLS: it terminates TLS itself (`SCIMD_TLS_CERT`) or the
    /// operator declared a proxy that does (`SCIMD_TLS_PROXY`). The interoperability profile
    /// requires TLS, so conformance is announced only then.
    pub tls: bool,
    /// Absolute base URL used in `meta.location` and `Location`; derived from `Host` when None.
    pub public_url: Option<String>,
    pub put_mode: PutMode,
    /// Largest page a list may return (`SCIMD_MAX_RESULTS`).
    pub max_results: i64,
    /// How long a list cursor stays valid (`SCIMD_CURSOR_TIMEOUT`, RFC 9865 `cursorTimeout`).
    pub cursor_timeout: Duration,
    /// Most members one response lists inline; a group past that points at `/GroupMembers`
    /// (`SCIMD_GROUP_INLINE_MEMBERS`).
    pub group_inline_members: usize,
    /// Longest a request may run before it is answered 504 (`SCIMD_REQUEST_TIMEOUT`).
    pub request_timeout: Duration,
    /// Caps on request content (document size, values, PATCH operations, members, filters,
    /// list page bytes).
    pub limits: Limits,
    /// Proxies whose `X-Forwarded-*` headers are believed (`SCIMD_TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// Requests of one organization served at once by this process; more wait
    /// (`SCIMD_ORG_CONCURRENCY`).
    pub org_concurrency: usize,
    /// argon2 hashes computed at once (`SCIMD_PASSWORD_HASH_CONCURRENCY`).
    pub password_hash_concurrency: usize,
    /// Longest a client may take to send a request's header (`SCIMD_HEADER_READ_TIMEOUT`).
    pub header_read_timeout: Duration,
    /// Longest a keep-alive connection may sit idle (`SCIMD_IDLE_TIMEOUT`).
    pub idle_timeout: Duration,
    /// Most open client connections; more wait in the listen backlog
    /// (`SCIMD_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Bearer token `/metrics` requires, when set (`SCIMD_METRICS_TOKEN`).
    pub metrics_token: Option<String>,
    /// Whether `/metrics` carries per-organization gauges (`SCIMD_METRICS_PER_ORG`).
    pub metrics_per_org: bool,
    /// Rejected writes stored per key per minute; more are only counted
    /// (`SCIMD_REJECTED_WRITES_PER_KEY_PER_MINUTE`).
    pub rejected_writes_per_key_per_minute: u64,
    /// How long change-log entries and rejected writes are kept
    /// (`SCIMD_CHANGE_RETENTION_DAYS`).
    pub change_retention: Duration,
    /// How long a process's lease on a push stream holds unrenewed
    /// (`SCIMD_STREAM_LEASE_SECONDS`).
    pub stream_lease: Duration,
    /// Push failures this long mark a stream failing (`SCIMD_STREAM_FAILING_AFTER_SECONDS`).
    pub stream_failing_after: Duration,
    /// A stream that acknowledges nothing this long is disabled (`SCIMD_STREAM_MAX_LAG_DAYS`).
    pub stream_max_lag: Duration,
    /// The longest wait between two push attempts (`SCIMD_STREAM_RETRY_MAX_SECONDS`).
    pub stream_retry_max: Duration,
    /// Most operations in one Bulk request (`SCIMD_BULK_MAX_OPERATIONS`).
    pub bulk_max_operations: usize,
    /// Largest Bulk request body, in bytes (`SCIMD_BULK_MAX_PAYLOAD_BYTES`).
    pub bulk_max_payload_bytes: usize,
    /// How long a Bulk request may start operations; below the request timeout, so the
    /// response reports what was done (`SCIMD_BULK_TIME_BUDGET`).
    pub bulk_time_budget: Duration,
    /// Bulk requests run at once by this process; more wait (`SCIMD_BULK_CONCURRENCY`). A
    /// Bulk of 1,000 operations holds about 10 MB while it runs, so this bounds the memory
    /// Bulks can take together.
    pub bulk_concurrency: usize,
}

impl Settings {
    /// The `iss` of every SET: the public URL when set, else `scimd`.
    pub fn event_issuer(&self) -> String {
        self.public_url.as_deref().map_or_else(
            || "scimd".to_string(),
            |u| u.trim_end_matches('/').to_string(),
        )
    }
}

/// The number of cores, the default for CPU-bound concurrency limits. Asked once: each
/// answer reads three cgroup files, and every flag's default builds a [`Settings`].
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, usize::from))
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rate_limit: RateLimit::per_minute(60),
            auth_failure_limit: RateLimit::per_minute(30),
            user_name_format: UserNameFormat::Email,
            profile: Profile::Reference,
            tls: false,
            public_url: None,
            put_mode: PutMode::Merge,
            max_results: 1000,
            cursor_timeout: Duration::from_secs(3600),
            group_inline_members: 10_000,
            request_timeout: Duration::from_secs(30),
            limits: Limits::default(),
            trusted_proxies: TrustedProxies::default(),
            org_concurrency: 4,
            password_hash_concurrency: cores(),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            metrics_token: None,
            metrics_per_org: false,
            rejected_writes_per_key_per_minute: 60,
            change_retention: Duration::from_secs(90 * 86_400),
            stream_lease: Duration::from_secs(30),
            stream_failing_after: Duration::from_secs(60),
            stream_max_lag: Duration::from_secs(7 * 86_400),
            stream_retry_max: Duration::from_secs(30),
            bulk_max_operations: 1000,
            bulk_max_payload_bytes: 1024 * 1024,
            bulk_time_budget: Duration::from_secs(20),
            bulk_concurrency: cores(),
        }
    }
}
