//! Operations: health and readiness endpoints, request ids, the `scimd` command line.

use std::process::Command;

use reqwest::StatusCode;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

backend_tests!(
    healthz_and_readyz_answer_without_authentication,
    request_ids_are_echoed_or_generated,
    healthcheck_command_succeeds_against_a_running_server,
    metrics_count_requests_by_route_template_and_resources_per_org,
);

async fn metrics_count_requests_by_route_template_and_resources_per_org(backend: Backend) {
    let settings = scimd::config::Settings {
        metrics_per_org: true,
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let id = app
        .create_user(serde_json::json!({"userName": "m@example.com"}))
        .await;
    app.get(&format!("/scim/v2/Users/{id}")).await;
    app.request_as("bad-token", reqwest::Method::GET, "/scim/v2/Users", None)
        .await;
    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("text");
    assert!(text.contains("scimd_http_requests_total{"), "{text}");
    assert!(
        text.contains(r#"route="/scim/v2/Users/{id}""#),
        "route templates, not raw paths: {text}"
    );
    assert!(!text.contains(&id), "no resource ids in labels");
    assert!(
        text.contains("scimd_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"scimd_auth_failures_total{reason="invalid_token"}"#),
        "{text}"
    );
    assert!(text.contains(r#"scimd_users{org="acme"} 1"#), "{text}");
    assert!(
        text.contains(r#"scimd_db_pool_connections{state="open"}"#),
        "{text}"
    );
}

/// Postgres: the database refuses connections → /readyz turns 503 and SCIM requests get a
/// SCIM 503 with Retry-After; connections allowed again → both recover without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_and_requests_follow_a_database_outage() {
    if crate::helpers::postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    use sqlx::Connection;
    let app = TestApp::spawn(Backend::Postgres).await;
    let id = app
        .create_user(serde_json::json!({"userName": "outage@example.com"}))
        .await;
    let db = app
        .database_url
        .rsplit('/')
        .next()
        .expect("db name")
        .to_string();
    let admin_url = crate::helpers::postgres_url().expect("url");
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("admin");
    sqlx::query(&format!("alter database {db} allow_connections false"))
        .execute(&mut admin)
        .await
        .expect("deny");
    sqlx::query(&format!(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = '{db}'"
    ))
    .execute(&mut admin)
    .await
    .expect("terminate");
    let ready = app
        .request_as("", reqwest::Method::GET, "/readyz", None)
        .await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        ready.body
    );
    let user = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(
        user.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        user.body
    );
    assert!(user.header("retry-after").is_some());
    assert_eq!(user.body["status"], "503");
    assert!(
        !user.body.to_string().contains("pg_"),
        "no internals: {}",
        user.body
    );
    sqlx::query(&format!("alter database {db} allow_connections true"))
        .execute(&mut admin)
        .await
        .expect("allow");
    let mut recovered = false;
    for _ in 0..50 {
        if app.get(&format!("/scim/v2/Users/{id}")).await.status == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "scimd recovers within 5 s without a restart");
    let ready = app
        .request_as("", reqwest::Method::GET, "/readyz", None)
        .await;
    assert_eq!(ready.status, StatusCode::OK);
}

/// The real binary: JSON access logs carry the request id and route, never the token, and
/// SIGTERM drains and exits 0.
#[test]
fn serve_logs_json_with_request_ids_and_exits_zero_on_sigterm() {
    let (logs, token) = serve_one_request_then_stop("info");
    let line = logs
        .lines()
        .find(|l| l.contains("trace-me-42"))
        .unwrap_or_else(|| panic!("no access-log line with the request id: {logs}"));
    let entry: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    assert_eq!(entry["level"], "INFO");
    assert_eq!(entry["target"], "scimd::http::envelope");
    assert_eq!(entry["fields"]["message"], "request");
    assert_eq!(entry["fields"]["method"], "GET");
    assert_eq!(entry["fields"]["route"], "/scim/v2/Users");
    assert_eq!(entry["fields"]["status"], 200);
    assert!(
        entry["fields"]["latency_ms"]
            .as_f64()
            .is_some_and(|ms| ms >= 0.0)
    );
    assert!(uuid::Uuid::parse_str(entry["fields"]["org_id"].as_str().unwrap_or("")).is_ok());
    // Every line of a request names it as the request span's id, as tracing-subscriber's
    // JSON format shows a span.
    assert_eq!(
        entry["span"],
        serde_json::json!({"request_id": "trace-me-42", "name": "request"})
    );
    assert!(!logs.contains(&token), "tokens never reach the logs");
}

/// `RUST_LOG` decides about the access-log line as about any other: off for its target, it
/// is not written, and the rest of the log is.
#[test]
fn the_access_log_line_follows_the_log_filter() {
    let (logs, _) = serve_one_request_then_stop("info,scimd::http::envelope=warn");
    assert!(!logs.contains("trace-me-42"), "{logs}");
    assert!(
        logs.lines().any(|l| l.contains("\"level\":\"INFO\"")),
        "other info lines are still written: {logs}"
    );
}

/// Starts the real binary with JSON logs and `rust_log`, makes one `GET /scim/v2/Users`
/// with the request id `trace-me-42`, stops it with SIGTERM (checking it exits 0) and
/// returns its log and the key it used.
fn serve_one_request_then_stop(rust_log: &str) -> (String, String) {
    use std::io::Read;
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let listen = listener.local_addr().expect("addr").to_string();
    drop(listener);
    let url = format!("sqlite://{}", dir.path().join("serve.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_scimd"))
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("SCIMD_LISTEN", &listen)
        .env("SCIMD_LOG_FORMAT", "json")
        .env("SCIMD_BOOTSTRAP", "false")
        .env("RUST_LOG", rust_log)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn scimd");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let token = runtime.block_on(async {
        for _ in 0..100 {
            if scimd::app::healthcheck(&listen).await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let out = scimd(&["org", "create", "acme"], &url);
        assert!(out.status.success());
        let key = scimd(&["key", "create", "--org", "acme"], &url);
        String::from_utf8(key.stdout)
            .expect("utf8")
            .trim()
            .to_string()
    });
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("http://{listen}/scim/v2/Users"))
            .bearer_auth(&token)
            .header("x-request-id", "trace-me-42")
            .send()
            .await
            .expect("request")
            .status()
    });
    assert_eq!(status, StatusCode::OK);
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(code) = child.try_wait().expect("wait") {
            exited = Some(code);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let code = exited.expect("scimd exits within 10 s of SIGTERM");
    assert!(code.success(), "exit status {code:?}");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut logs)
        .expect("logs");
    (logs, token)
}

async fn healthz_and_readyz_answer_without_authentication(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app
        .request_as("", reqwest::Method::GET, "/healthz", None)
        .await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["status"], "ok");
    let ready = app
        .request_as("", reqwest::Method::GET, "/readyz", None)
        .await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.body["status"], "ready");
    // A database whose newest migration is missing is not ready for this code.
    let newest: i64 = match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.database_url)
                .await
                .expect("connect");
            let v = sqlx::query_scalar("select max(version) from _sqlx_migrations")
                .fetch_one(&pool)
                .await
                .expect("v");
            sqlx::query("delete from _sqlx_migrations where version = $1")
                .bind(v)
                .execute(&pool)
                .await
                .expect("delete");
            v
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.database_url)
                .await
                .expect("connect");
            let v = sqlx::query_scalar("select max(version) from _sqlx_migrations")
                .fetch_one(&pool)
                .await
                .expect("v");
            sqlx::query("delete from _sqlx_migrations where version = $1")
                .bind(v)
                .execute(&pool)
                .await
                .expect("delete");
            v
        }
    };
    assert!(newest > 0);
    let behind = app
        .request_as("", reqwest::Method::GET, "/readyz", None)
        .await;
    assert_eq!(
        behind.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        behind.body
    );
    assert!(
        behind.body["reason"]
            .as_str()
            .unwrap_or("")
            .contains("migrations")
    );
}

async fn request_ids_are_echoed_or_generated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let given = app
        .client
        .get(format!("{}/scim/v2/Users/x", app.address))
        .bearer_auth(&app.token)
        .header("x-request-id", "req-123")
        .send()
        .await
        .expect("send");
    assert_eq!(given.headers()["x-request-id"], "req-123");
    let generated = app.get("/scim/v2/Users/x").await;
    let id = generated
        .header("x-request-id")
        .expect("generated request id");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

async fn healthcheck_command_succeeds_against_a_running_server(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let listen = app.address.trim_start_matches("http://").to_string();
    scimd::app::healthcheck(&listen).await.expect("healthy");
    assert!(scimd::app::healthcheck("127.0.0.1:1").await.is_err());
}

fn scimd(args: &[&str], database_url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("SCIMD_JWT_SECRET")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run scimd")
}

#[test]
fn cli_creates_orgs_and_keys_and_prints_only_the_token() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let org = scimd(&["org", "create", "acme"], &url);
    assert!(
        org.status.success(),
        "{}",
        String::from_utf8_lossy(&org.stderr)
    );
    let key = scimd(&["key", "create", "--org", "acme", "--name", "ci"], &url);
    assert!(
        key.status.success(),
        "{}",
        String::from_utf8_lossy(&key.stderr)
    );
    let stdout = String::from_utf8(key.stdout).expect("utf8");
    let token = stdout.trim();
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the token on stdout: {stdout:?}"
    );
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let list = scimd(&["key", "list", "--org", "acme"], &url);
    let listed = String::from_utf8(list.stdout).expect("utf8");
    assert!(listed.contains("organization\tactive\tci"), "{listed}");
    let key_id = listed.split('\t').next().expect("id").to_string();
    assert!(scimd(&["key", "revoke", &key_id], &url).status.success());
    let listed =
        String::from_utf8(scimd(&["key", "list", "--org", "acme"], &url).stdout).expect("utf8");
    assert!(listed.contains("revoked"), "{listed}");
    let attr = scimd(
        &["user-attribute", "create", "--org", "acme", "good_blob"],
        &url,
    );
    assert!(attr.status.success());
    let attrs = scimd(&["user-attribute", "list", "--org", "acme"], &url);
    assert_eq!(
        String::from_utf8(attrs.stdout).expect("utf8").trim(),
        "good_blob"
    );
}

#[test]
fn cli_errors_are_one_line_and_exit_non_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("cli.db").display());
    let cases: [(&[&str], &str); 4] = [
        (&["key", "create", "--org", "nope"], url.as_str()),
        (&["org", "create", "Bad Slug"], url.as_str()),
        (&["migrate"], "mysql://localhost/x"),
        (
            &["key", "create", "--org", "x", "--expires-in", "10y"],
            url.as_str(),
        ),
    ];
    for (args, database_url) in cases {
        let out = scimd(args, database_url);
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
