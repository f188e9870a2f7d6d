//! `TestApp`: a real scimd on 127.0.0.1:0 over a fresh database of its own (a temp SQLite file,
//! or a new Postgres database from `TEST_DATABASE_URL`), an org with a key, and request helpers.

use std::sync::Once;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use scimd::app::{self, Backend as StoreBackend};
use scimd::config::Settings;
use scimd::config::StoreConfig;
use scimd::http::AppState;
use scimd::store::StoreOptions;
use serde_json::Value;
use sqlx::Connection;

pub const SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The Postgres server URL for tests, or None (Postgres variants then skip, except in CI,
/// where a missing `TEST_DATABASE_URL` is an error so skipped tests cannot pass silently).
pub fn postgres_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "TEST_DATABASE_URL must be set in CI so the Postgres variants run"
            );
            None
        }
    }
}

/// Generates one `#[tokio::test]` per backend for each listed `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $( $crate::postgres_test!($name, $crate::helpers::Backend::Postgres); )*
        }
    };
}

/// Generates one `#[tokio::test]` for each listed `async fn name()` that checks something of
/// Postgres alone.
#[macro_export]
macro_rules! postgres_tests {
    ($($name:ident),* $(,)?) => {
        mod postgres_only {
            $( $crate::postgres_test!($name); )*
        }
    };
}

/// One `#[tokio::test]` that calls `super::name(args)` on Postgres: skipped, saying so, when
/// `TEST_DATABASE_URL` is not set (and failing in CI then, by [`postgres_url`]).
#[macro_export]
macro_rules! postgres_test {
    ($name:ident $(, $arg:expr)?) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            if $crate::helpers::postgres_url().is_none() {
                eprintln!("skipped: TEST_DATABASE_URL is not set");
                return;
            }
            super::$name($($arg)?).await
        }
    };
}

/// A fresh database of one backend; dropped with the value.
pub(crate) struct TestDb {
    pub(crate) url: String,
    _dir: Option<tempfile::TempDir>,
    pg_cleanup: Option<(String, String)>,
}

impl TestDb {
    pub(crate) async fn create(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("scimd.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    pg_cleanup: None,
                }
            }
            Backend::Postgres => {
                let server = postgres_url().expect("TEST_DATABASE_URL");
                let name = format!("scimd_test_{}", uuid::Uuid::new_v4().simple());
                let mut admin = sqlx::PgConnection::connect(&server)
                    .await
                    .expect("connect to Postgres");
                sqlx::query(&format!("create database {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create test database");
                let url = replace_database(&server, &name);
                TestDb {
                    url,
                    _dir: None,
                    pg_cleanup: Some((server, name)),
                }
            }
        }
    }
}

/// `postgres://u@h:5432/test` + `x` → `postgres://u@h:5432/x` (query string kept).
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let prefix = base.rsplit_once('/').map(|(p, _)| p).unwrap_or(base);
    format!("{prefix}/{name}{query}")
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server, name)) = self.pg_cleanup.take() {
            // Drop runs outside async context, possibly while unwinding: use a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(mut admin) = sqlx::PgConnection::connect(&server).await {
                            let _ = sqlx::query(&format!(
                                "drop database if exists {name} with (force)"
                            ))
                            .execute(&mut admin)
                            .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// A running server plus what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    /// An organization key of org `acme`.
    pub token: String,
    pub org: String,
    pub client: reqwest::Client,
    pub store: StoreBackend,
    /// The URL of this test's own database.
    pub database_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    _db: TestDb,
}

/// A response as the client sees it.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn init_logs() {
    static ONCE: Once = Once::new();
    static WRITER: std::sync::OnceLock<scimd::telemetry::BatchWriterGuard> =
        std::sync::OnceLock::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok()
            && let Ok(guard) = scimd::telemetry::init()
        {
            let _ = WRITER.set(guard);
        }
    });
}

impl TestApp {
    /// A server whose rate limit is too high to interfere; rate-limit tests set their own.
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, Self::settings()).await
    }

    /// The default settings, but with a rate limit tests never reach.
    pub fn settings() -> Settings {
        Settings {
            rate_limit: scimd::ratelimit::RateLimit::per_minute(1_000_000),
            // Event streams: a short lease and retries, so delivery starts and resumes fast.
            stream_lease: Duration::from_secs(3),
            stream_retry_max: Duration::from_secs(1),
            ..Settings::default()
        }
    }

    pub async fn spawn_with(backend: Backend, settings: Settings) -> TestApp {
        Self::spawn_full(backend, settings, StoreOptions::default()).await
    }

    /// A server with store options too (e.g. a statement timeout, as `scimd serve` sets).
    pub async fn spawn_full(
        backend: Backend,
        settings: Settings,
        options: StoreOptions,
    ) -> TestApp {
        init_logs();
        let db = TestDb::create(backend).await;
        let config = StoreConfig {
            database_url: db.url.clone(),
            jwt_secret: Some(SECRET.to_string()),
        };
        // No key cache in tests: a revocation must show on the very next request.
        let store = app::open_with(&config, Duration::ZERO, &options)
            .await
            .expect("open store");
        store
            .store
            .adopt_profile(settings.profile)
            .await
            .expect("adopt the profile");
        app::create_org(&store, "acme").await.expect("create org");
        let token = app::create_key(&store, "acme", false, Some("test".into()), None)
            .await
            .expect("mint key");
        let state = AppState::new(store.store.clone(), store.auth.clone(), settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(scimd::http::serve(listener, state, async {
            let _ = rx.await;
        }));
        TestApp {
            address,
            token,
            org: "acme".into(),
            client: reqwest::Client::new(),
            store,
            database_url: db.url.clone(),
            shutdown: Some(tx),
            _db: db,
        }
    }

    /// Mints another key (e.g. for another org, or a personal token).
    pub async fn key(&self, org: &str, personal: bool) -> String {
        app::create_key(&self.store, org, personal, None, None)
            .await
            .expect("mint key")
    }

    /// Creates another organization and returns an organization key for it.
    pub async fn other_org(&self, slug: &str) -> String {
        app::create_org(&self.store, slug)
            .await
            .expect("create org");
        self.key(slug, false).await
    }

    pub async fn define_attribute(&self, key: &str) {
        app::create_user_attribute(&self.store, &self.org, key)
            .await
            .expect("define attribute");
    }

    /// Sends a request with the default key.
    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> TestResponse {
        self.request_as(&self.token, method, path, body).await
    }

    /// Sends a request with a given bearer token (empty: no Authorization header).
    pub async fn request_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> TestResponse {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = req.send().await.expect("request");
        Self::read(response).await
    }

    /// Sends raw bytes with the default key (for malformed-input tests).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> TestResponse {
        let response = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        Self::read(response).await
    }

    async fn read(response: reqwest::Response) -> TestResponse {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "response body is not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        TestResponse {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> TestResponse {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> TestResponse {
        self.request(Method::PUT, path, Some(body)).await
    }

    /// Creates a user and returns its id, asserting 201.
    pub async fn create_user(&self, body: Value) -> String {
        let response = self.post("/scim/v2/Users", body).await;
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
        response.body["id"].as_str().expect("id").to_string()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Asserts that a response is an RFC 7644 §3.12 error with this status and scimType.
pub fn assert_scim_error(response: &TestResponse, status: u16, scim_type: Option<&str>) {
    assert_eq!(response.status.as_u16(), status, "{:?}", response.body);
    assert_eq!(
        response.header("content-type"),
        Some("application/scim+json"),
        "error content type"
    );
    assert_eq!(
        response.body["schemas"],
        serde_json::json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(response.body["status"], status.to_string());
    match scim_type {
        Some(t) => assert_eq!(response.body["scimType"], t, "{:?}", response.body),
        None => assert!(
            response.body.get("scimType").is_none(),
            "{:?}",
            response.body
        ),
    }
    assert!(response.body["detail"].is_string());
}

/// The change-log request of a test that seeds through the store directly: a create by
/// nobody in particular, without request data.
pub fn seeded() -> scimd::store::ChangeRequest<'static> {
    static SEEDER: std::sync::OnceLock<scimd::store::Actor> = std::sync::OnceLock::new();
    scimd::store::ChangeRequest {
        actor: SEEDER.get_or_init(scimd::store::Actor::default),
        operation: scimd::store::Operation::Create,
        data: None,
    }
}

/// A `scimd serve` child process, killed (SIGKILL) when dropped.
pub struct ChildServer(std::process::Child);

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `scimd serve` on `listen` over `database_url` (no bootstrap, a rate limit never
/// reached, short event-stream leases and retries) and waits until it answers `/healthz`.
pub async fn start_scimd(database_url: &str, listen: &str) -> ChildServer {
    start_scimd_with(database_url, listen, &[]).await
}

/// [`start_scimd`] with more environment (e.g. `SCIMD_TLS_CERT`: then it is asked for
/// `/healthz` over HTTPS).
pub async fn start_scimd_with(
    database_url: &str,
    listen: &str,
    env: &[(&str, &str)],
) -> ChildServer {
    let tls = env.iter().any(|(name, _)| *name == "SCIMD_TLS_CERT");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_scimd"))
        .arg("serve")
        .envs(env.iter().copied())
        .env("DATABASE_URL", database_url)
        .env("SCIMD_JWT_SECRET", SECRET)
        .env("SCIMD_LISTEN", listen)
        .env("SCIMD_BOOTSTRAP", "false")
        .env("SCIMD_RATE_LIMIT_PER_MINUTE", "100000000")
        .env("SCIMD_STREAM_LEASE_SECONDS", "2")
        .env("SCIMD_STREAM_RETRY_MAX_SECONDS", "1")
        .env("RUST_LOG", "error")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn scimd");
    let server = ChildServer(child);
    for _ in 0..200 {
        let healthy = if tls {
            scimd::app::healthcheck_tls(listen).await
        } else {
            scimd::app::healthcheck(listen).await
        };
        if healthy.is_ok() {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("scimd did not start on {listen}");
}

/// The users a filter selects: the list response's body, once it answered 200.
pub async fn filter_users(app: &TestApp, filter: &str) -> Value {
    let response = app
        .get(&format!("/scim/v2/Users?filter={}", enc(filter)))
        .await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{filter}: {:?}",
        response.body
    );
    response.body
}

/// A filter (or any query value) percent-encoded for a URL: unreserved bytes kept.
pub fn enc(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Runs `sql` on the test's own database, returning the first column of its first row (as
/// text) when it returns one.
pub async fn sql(app: &TestApp, backend: Backend, sql: &str) -> Option<String> {
    use sqlx::Row;
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .expect("connect");
            let row = sqlx::query(sql).fetch_optional(&mut conn).await.expect(sql);
            row.and_then(|row| row.try_get::<String, _>(0).ok())
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&app.database_url)
                .await
                .expect("connect");
            let row = sqlx::query(sql).fetch_optional(&mut conn).await.expect(sql);
            row.and_then(|row| row.try_get::<String, _>(0).ok())
        }
    }
}
