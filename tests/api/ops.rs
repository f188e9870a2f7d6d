//! Operations: health and readiness endpoints, request ids, the `scimd` command line.

use std::process::Command;

use reqwest::StatusCode;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

backend_tests!(
    healthz_and_readyz_answer_without_authentication,
    request_ids_are_echoed_or_generated,
    healthcheck_command_succeeds_against_a_running_server,
);

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
