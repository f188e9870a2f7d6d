//! Rate limiting: 60 requests per minute per org key by default, 429 with `Retry-After`, and
//! the `RateLimit-*` headers on every authenticated response.

use reqwest::{Method, StatusCode};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error};
use scimd::config::Settings;
use scimd::ratelimit::MemoryLimiter;
use scimd::ratelimit::RateLimit;

backend_tests!(
    the_sixty_first_request_in_a_minute_gets_429_with_retry_after,
    limits_are_per_key,
    repeated_authentication_failures_from_one_ip_are_limited,
    the_store_limiter_agrees_with_the_gcra_arithmetic_at_any_limit,
    a_high_limit_is_not_capped_at_a_thousand_per_second,
);

async fn the_sixty_first_request_in_a_minute_gets_429_with_retry_after(backend: Backend) {
    // The production default: 60 per minute.
    let app = TestApp::spawn_with(backend, Settings::default()).await;
    for i in 0..60 {
        let response = app.get("/scim/v2/Users/x").await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "request {}", i + 1);
        assert_eq!(response.header("ratelimit-limit"), Some("60"));
        assert_eq!(
            response.header("ratelimit-remaining"),
            Some((59 - i).to_string().as_str())
        );
        assert!(response.header("ratelimit-reset").is_some());
    }
    let limited = app.get("/scim/v2/Users/x").await;
    assert_scim_error(&limited, 429, None);
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("whole seconds");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(limited.header("ratelimit-remaining"), Some("0"));
}

/// The Postgres limiter runs the GCRA in SQL; SQLite runs it in Rust. Both must give, step for
/// step, what `gcra` gives, including partial grants and limits whose emission interval is
/// below a millisecond.
async fn the_store_limiter_agrees_with_the_gcra_arithmetic_at_any_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reference = MemoryLimiter::default();
    const MS: i64 = 1_000_000;
    let t0 = 1_700_000_000_000 * MS;
    let steps: &[(&str, u64, i64, u64)] = &[
        // (bucket, limit per minute, time offset in ns, tokens wanted)
        ("small", 10, 0, 4),
        ("small", 10, 0, 10),
        ("small", 10, 0, 1),
        ("small", 10, 5_999 * MS, 1),
        ("small", 10, 6_000 * MS, 3),
        ("fast", 6_000_000, 0, 6_000_000),
        ("fast", 6_000_000, 0, 1),
        ("fast", 6_000_000, MS, 1_000),
        ("fast", 6_000_000, MS + 10_000, 1),
        ("fast", 6_000_000, MS + 10_000, 1),
        ("fast", 6_000_000, 61_000 * MS, 300_000),
    ];
    let mut decisions = Vec::new();
    for (i, &(bucket, per_minute, offset, want)) in steps.iter().enumerate() {
        let limit = RateLimit::per_minute(per_minute);
        let now = t0 + offset;
        let stored = app
            .store
            .store
            .rate_limit(bucket, now, limit, want)
            .await
            .expect("rate_limit");
        decisions.push(stored);
        let expected = reference.take(bucket, now, limit, want);
        assert_eq!(
            stored, expected,
            "step {i}: {bucket} {per_minute}/min +{offset}ns want {want}"
        );
    }
    // What the table means: a full bucket, a refusal, 100 tokens after one millisecond at
    // 100,000/s (whole-millisecond intervals gave one), then one per 10 µs.
    let granted: Vec<u64> = decisions.iter().map(|d| d.granted).collect();
    assert_eq!(granted, [4, 6, 0, 0, 1, 6_000_000, 0, 100, 1, 0, 300_000]);
}

/// A limit of 1,200,000/min is 20,000/s: a few hundred quick requests all pass, and the
/// headers announce the configured limit.
async fn a_high_limit_is_not_capped_at_a_thousand_per_second(backend: Backend) {
    let settings = Settings {
        rate_limit: RateLimit::per_minute(1_200_000),
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    for i in 0..300 {
        let response = app.get("/scim/v2/Users/x").await;
        assert_eq!(response.status, StatusCode::NOT_FOUND, "request {i}");
        assert_eq!(response.header("ratelimit-limit"), Some("1200000"));
        let remaining: u64 = response
            .header("ratelimit-remaining")
            .unwrap()
            .parse()
            .unwrap();
        // Leased tokens still count as remaining: at most the requests made so far are gone.
        assert!(
            (1_200_000 - 300..1_200_000).contains(&remaining),
            "request {i}: {remaining}"
        );
    }
}

async fn limits_are_per_key(backend: Backend) {
    let settings = Settings {
        rate_limit: RateLimit::per_minute(3),
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let second = app.key("acme", false).await;
    for _ in 0..3 {
        assert_eq!(
            app.get("/scim/v2/Users/x").await.status,
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(
        app.get("/scim/v2/Users/x").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let other = app
        .request_as(&second, Method::GET, "/scim/v2/Users/x", None)
        .await;
    assert_eq!(
        other.status,
        StatusCode::NOT_FOUND,
        "another key has its own budget"
    );
}

async fn repeated_authentication_failures_from_one_ip_are_limited(backend: Backend) {
    let settings = Settings {
        rate_limit: RateLimit::per_minute(60),
        auth_failure_limit: RateLimit::per_minute(5),
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    for _ in 0..5 {
        let response = app
            .request_as("wrong", Method::GET, "/scim/v2/Users/x", None)
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    }
    let blocked = app
        .request_as("wrong", Method::GET, "/scim/v2/Users/x", None)
        .await;
    assert_scim_error(&blocked, 429, None);
    assert!(blocked.header("retry-after").is_some());
    // A valid key from that address is still served: its token is checked first, and other
    // clients behind the same address must not lock it out.
    assert_eq!(
        app.get("/scim/v2/Users/x").await.status,
        StatusCode::NOT_FOUND
    );
}

/// Two real scimd processes sharing one Postgres share each key's limit: 200 requests split
/// across both within a minute get at most 60 (+1 per second elapsed, the smooth refill) through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_holds_across_two_processes_sharing_postgres() {
    if crate::helpers::postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let mut servers = Vec::new();
    let mut addresses = Vec::new();
    for _ in 0..2 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_scimd"))
            .arg("serve")
            .env("DATABASE_URL", &app.database_url)
            .env("SCIMD_JWT_SECRET", crate::helpers::SECRET)
            .env("SCIMD_LISTEN", &listen)
            .env("SCIMD_BOOTSTRAP", "false")
            .env("SCIMD_RATE_LIMIT_PER_MINUTE", "60")
            .env("RUST_LOG", "warn")
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn scimd");
        servers.push(KillOnDrop(child));
        addresses.push(listen);
    }
    for listen in &addresses {
        let mut up = false;
        for _ in 0..100 {
            if scimd::app::healthcheck(listen).await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(up, "scimd on {listen} did not start");
    }
    let started = std::time::Instant::now();
    let (mut ok, mut limited) = (0u64, 0u64);
    for i in 0..200 {
        let response = app
            .client
            .get(format!("http://{}/scim/v2/Users?count=0", addresses[i % 2]))
            .bearer_auth(&app.token)
            .send()
            .await
            .expect("send");
        match response.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(response.headers().contains_key("retry-after"));
                limited += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let allowance = 60 + started.elapsed().as_secs() + 1;
    assert!(
        ok <= allowance,
        "{ok} requests passed, at most {allowance} allowed"
    );
    assert!(ok >= 60, "the first 60 pass ({ok})");
    assert_eq!(ok + limited, 200);
    eprintln!("two processes: {ok} passed, {limited} got 429");
}

/// Kills a child process when dropped, so a failing test leaves no server behind.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
