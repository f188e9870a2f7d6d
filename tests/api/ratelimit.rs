//! Rate limiting: 60 requests per minute per org key by default, 429 with `Retry-After`, and
//! the `RateLimit-*` headers on every authenticated response.

use reqwest::{Method, StatusCode};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error};
use scimd::http::Settings;
use scimd::store::RateLimit;

backend_tests!(
    the_sixty_first_request_in_a_minute_gets_429_with_retry_after,
    limits_are_per_key,
    repeated_authentication_failures_from_one_ip_are_limited,
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
    // Even a valid key from that address waits: guessing cannot continue at speed.
    assert_eq!(
        app.get("/scim/v2/Users/x").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}
