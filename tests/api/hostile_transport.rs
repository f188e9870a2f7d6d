//! Hostile clients, transport: method names and request ids bounded, slow headers cut off,
//! connections capped, a valid key never refused for its address's failures, client
//! addresses and forwarded headers only from trusted proxies, `/metrics` private, one
//! organization's requests limited in concurrency.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use scimd::config::Settings;
use scimd::ratelimit::RateLimit;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error};

backend_tests!(
    unknown_methods_are_one_label_and_a_scim_405,
    request_ids_are_taken_only_when_short_and_plain,
    a_valid_key_is_served_after_its_address_failed_many_times,
    forwarded_headers_count_only_from_trusted_proxies,
    slow_headers_are_cut_off_but_quiet_keep_alive_connections_are_not,
    connections_over_the_cap_wait_until_one_closes,
    metrics_name_no_organization_by_default_and_require_the_token_when_set,
    one_organization_runs_at_most_its_concurrency_and_others_are_not_held_up,
);

async fn unknown_methods_are_one_label_and_a_scim_405(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let name = format!("HOSTILE{}", "X".repeat(10_000));
    let method = Method::from_bytes(name.as_bytes()).unwrap();
    for _ in 0..50 {
        let response = app.request(method.clone(), "/scim/v2/Users", None).await;
        assert!(
            [405, 400].contains(&response.status.as_u16()),
            "{:?}",
            response.status
        );
        assert_scim_error(&response, response.status.as_u16(), None);
    }
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("HOSTILEXXX"), "the method is not a label");
    assert!(metrics.contains(r#"method="other""#), "{metrics}");
    // Before: 50 × 10 KB names in a counter and a 15-bucket histogram made this 9 MB.
    assert!(metrics.len() < 500_000, "{} bytes", metrics.len());
}

async fn request_ids_are_taken_only_when_short_and_plain(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let send = |id: String| {
        app.client
            .get(format!("{}/healthz", app.address))
            .header("x-request-id", id)
            .send()
    };
    let good = "0f8fad5b-d9cb-469f-a165-70867728950e.retry:2";
    let echoed = send(good.to_string()).await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], good);

    for bad in ["a".repeat(60 * 1024), "a".repeat(65), "a b".to_string()] {
        let response = send(bad.clone()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(id).is_ok(), "a fresh UUID: {id}");
    }
}

async fn a_valid_key_is_served_after_its_address_failed_many_times(backend: Backend) {
    // The production default: 30 failures per minute per address.
    let app = TestApp::spawn_with(
        backend,
        Settings {
            rate_limit: RateLimit::per_minute(1_000_000),
            ..Settings::default()
        },
    )
    .await;
    let other = app.other_org("bystander").await;
    let mut limited = 0;
    for _ in 0..35 {
        let response = app
            .request_as("guess", Method::GET, "/scim/v2/Users", None)
            .await;
        if response.status == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited >= 4, "guesses past the limit get 429: {limited}");
    // Another organization's valid key from the same address (an IdP's shared egress).
    let response = app
        .request_as(&other, Method::GET, "/scim/v2/Users", None)
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(app.get("/scim/v2/Users").await.status, StatusCode::OK);
    // Guessing still does not continue at speed.
    let response = app
        .request_as("guess", Method::GET, "/scim/v2/Users", None)
        .await;
    assert_scim_error(&response, 429, None);
    assert!(response.header("retry-after").is_some());
}

/// Three bad tokens from `forwarded` (as X-Forwarded-For); the statuses seen.
async fn guesses_from(app: &TestApp, forwarded: &str, count: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..count {
        let response = app
            .client
            .get(format!("{}/scim/v2/Users", app.address))
            .bearer_auth("guess")
            .header("x-forwarded-for", forwarded)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    statuses
}

async fn forwarded_headers_count_only_from_trusted_proxies(backend: Backend) {
    let limit = Settings {
        auth_failure_limit: RateLimit::per_minute(3),
        ..TestApp::settings()
    };
    // Behind a trusted proxy (the test client on 127.0.0.1 plays it): clients are told apart.
    let proxied = TestApp::spawn_with(
        backend,
        Settings {
            trusted_proxies: "127.0.0.1, ::1".parse().unwrap(),
            ..limit.clone()
        },
    )
    .await;
    assert_eq!(
        guesses_from(&proxied, "198.51.100.1", 4).await,
        [401, 401, 401, 429]
    );
    assert_eq!(
        guesses_from(&proxied, "203.0.113.5, 198.51.100.2", 3).await,
        [401, 401, 401],
        "another client behind the proxy has its own limit"
    );
    // A client cannot escape its limit by prefixing addresses of its own.
    assert_eq!(
        guesses_from(&proxied, "203.0.113.77, 198.51.100.1", 1).await,
        [429]
    );
    let location = location_when_forwarded(&proxied, "scim.example.com").await;
    assert!(
        location.starts_with("https://scim.example.com/scim/v2/Users/"),
        "{location}"
    );

    // Without trusted proxies the header is the client's word: ignored.
    let direct = TestApp::spawn_with(backend, limit).await;
    assert_eq!(
        guesses_from(&direct, "198.51.100.1", 3).await,
        [401, 401, 401]
    );
    assert_eq!(guesses_from(&direct, "198.51.100.2", 1).await, [429]);
    let location = location_when_forwarded(&direct, "evil.example.com").await;
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
}

/// The `Location` of a user created with `X-Forwarded-Proto: https` and this forwarded host.
async fn location_when_forwarded(app: &TestApp, host: &str) -> String {
    let located = app
        .client
        .post(format!("{}/scim/v2/Users", app.address))
        .bearer_auth(&app.token)
        .header("content-type", "application/scim+json")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-host", host)
        .body(r#"{"userName":"fwd@example.com"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(located.status(), StatusCode::CREATED);
    located.headers()["location"].to_str().unwrap().to_string()
}

/// The `host:port` of a test server.
fn socket(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_string()
}

/// Reads until the peer closes (Ok(true)), or `within` passes (Ok(false)).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends `GET /healthz` on `stream` and waits up to `within` for its 200.
async fn healthz_on(stream: &mut TcpStream, within: Duration) -> bool {
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    while !String::from_utf8_lossy(&seen).contains("\"ok\"}") {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            _ => return false,
        }
    }
    String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200")
}

async fn slow_headers_are_cut_off_but_quiet_keep_alive_connections_are_not(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Settings {
            header_read_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(3),
            ..TestApp::settings()
        },
    )
    .await;
    // Slowloris: half a header, then nothing.
    let started = Instant::now();
    let mut slow = TcpStream::connect(socket(&app)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        .await
        .unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_secs(5)).await,
        "a half-sent header is cut off"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    // A connection that sends nothing at all is cut off too.
    let mut silent = TcpStream::connect(socket(&app)).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);

    // Keep-alive: quiet for longer than the header timeout, the connection still serves.
    let mut kept = TcpStream::connect(socket(&app)).await.unwrap();
    assert!(healthz_on(&mut kept, Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(healthz_on(&mut kept, Duration::from_secs(5)).await);
    // ...until it has been idle for the idle timeout.
    let idle_since = Instant::now();
    assert!(closed_within(&mut kept, Duration::from_secs(8)).await);
    assert!(idle_since.elapsed() >= Duration::from_millis(2500));
}

async fn connections_over_the_cap_wait_until_one_closes(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Settings {
            max_connections: 2,
            ..TestApp::settings()
        },
    )
    .await;
    let mut first = TcpStream::connect(socket(&app)).await.unwrap();
    let mut second = TcpStream::connect(socket(&app)).await.unwrap();
    assert!(healthz_on(&mut first, Duration::from_secs(5)).await);
    assert!(healthz_on(&mut second, Duration::from_secs(5)).await);
    // The third waits in the listen backlog: connected, not served.
    let mut third = TcpStream::connect(socket(&app)).await.unwrap();
    assert!(
        !healthz_on(&mut third, Duration::from_secs(1)).await,
        "served beyond max_connections"
    );
    drop(first);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(&seen).contains("\"ok\"}") {
        match tokio::time::timeout_at(deadline, third.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => seen.extend_from_slice(&buf[..n]),
            other => panic!("third connection not served after one closed: {other:?}"),
        }
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    assert!(healthz_on(&mut second, Duration::from_secs(5)).await);
}

async fn metrics_name_no_organization_by_default_and_require_the_token_when_set(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let slug = "private-tenant-7f3a";
    let key = app.other_org(slug).await;
    let created = app
        .request_as(
            &key,
            Method::POST,
            "/scim/v2/Users",
            Some(serde_json::json!({"userName": "p@example.com"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(!text.contains(slug), "no organization names by default");
    assert!(text.contains("scimd_users "), "a total instead: {text}");

    let guarded = TestApp::spawn_with(
        backend,
        Settings {
            metrics_token: Some("metrics-secret-0123".into()),
            ..TestApp::settings()
        },
    )
    .await;
    let scrape = |token: Option<&str>| {
        let mut req = guarded.client.get(format!("{}/metrics", guarded.address));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req.send()
    };
    for wrong in [
        None,
        Some("metrics-secret-0124"),
        Some("metrics"),
        Some(&guarded.token),
    ] {
        let response = scrape(wrong).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{wrong:?}");
        assert!(response.headers().contains_key("www-authenticate"));
    }
    let response = scrape(Some("metrics-secret-0123")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("scimd_"));
}

/// A `POST /scim/v2/Users` of `token` that sends its header and a few bytes of its body, then
/// stalls: it holds one of its organization's permits until the rest is sent.
async fn stalled_create(app: &TestApp, token: &str, user: &str) -> (TcpStream, Vec<u8>) {
    let body = format!(r#"{{"userName":"{user}"}}"#).into_bytes();
    let mut stream = TcpStream::connect(socket(app)).await.unwrap();
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..5]).await.unwrap();
    (stream, body[5..].to_vec())
}

/// Reads one response head and returns its status code.
async fn status_of(stream: &mut TcpStream) -> u16 {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("a response")
            .unwrap();
        assert!(n > 0, "closed without a response");
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen[9..12]).parse().unwrap()
}

async fn one_organization_runs_at_most_its_concurrency_and_others_are_not_held_up(
    backend: Backend,
) {
    let app = TestApp::spawn_with(
        backend,
        Settings {
            org_concurrency: 1,
            request_timeout: Duration::from_secs(4),
            ..TestApp::settings()
        },
    )
    .await;
    let other = app.other_org("neighbour").await;
    let (mut slow, rest) = stalled_create(&app, &app.token, "slow@example.com").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Org A's next request waits for the permit; org B is served meanwhile.
    let queued = {
        let client = app.client.clone();
        let url = format!("{}/scim/v2/Users?count=1", app.address);
        let token = app.token.clone();
        tokio::spawn(async move {
            let response = client.get(url).bearer_auth(token).send().await.unwrap();
            response.status()
        })
    };
    let started = Instant::now();
    let neighbour = app
        .request_as(&other, Method::GET, "/scim/v2/Users", None)
        .await;
    assert_eq!(neighbour.status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!queued.is_finished(), "org A ran two requests at once");

    // The first finishes; then the queued one runs.
    slow.write_all(&rest).await.unwrap();
    assert_eq!(status_of(&mut slow).await, 201);
    let status = queued.await.unwrap();
    assert_eq!(status, StatusCode::OK);

    // A request that waits longer than half the request timeout gets 503 + Retry-After.
    let (_stalled, _) = stalled_create(&app, &app.token, "stuck@example.com").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let refused = app.get("/scim/v2/Users?count=1").await;
    assert_scim_error(&refused, 503, None);
    assert!(refused.header("retry-after").is_some());
    let detail = refused.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("SCIMD_ORG_CONCURRENCY"), "{detail}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

/// The first start's key is printed to stderr, which in a container is the log: it must not
/// outlive a day (`SCIMD_BOOTSTRAP_KEY_HOURS`), where it used to last a hundred years.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bootstrap_key_expires_within_a_day() {
    use clap::Parser;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        config: scimd::config::ServeConfig,
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = scimd::config::StoreConfig {
        database_url: format!("sqlite://{}", dir.path().join("boot.db").display()),
        jwt_secret: Some(crate::helpers::SECRET.to_string()),
    };
    let serve = Serve::parse_from(["scimd", "--listen", "127.0.0.1:0"]);
    let state = scimd::app::serve_state(&store, &serve.config)
        .await
        .expect("bootstrap");
    let backend = scimd::app::Backend {
        store: state.store.clone(),
        auth: state.auth.clone(),
    };
    let keys = scimd::app::list_keys(&backend, scimd::app::BOOTSTRAP_ORG)
        .await
        .expect("keys");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let expires = keys[0].expires_at.expect("the bootstrap key expires");
    let in_a_day = scimd::store::now_ms() + 24 * 3600 * 1000;
    assert!(
        expires <= in_a_day && expires > in_a_day - 3600 * 1000,
        "expires at {expires}, a day from now is {in_a_day}"
    );
}
