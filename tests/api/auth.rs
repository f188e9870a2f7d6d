//! Authentication: org keys only, 401 with `WWW-Authenticate` for anything else, 403 for
//! personal tokens, and tenant isolation (another org's user is 404, as if absent).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, SECRET, TestApp, assert_scim_error};

backend_tests!(
    requests_without_a_valid_key_get_401_with_www_authenticate,
    personal_access_tokens_get_403,
    another_orgs_key_sees_404_for_every_verb,
    revoked_key_gets_401_on_the_next_request,
    expired_key_gets_401,
);

fn sign(claims: serde_json::Value, secret: &str, alg: Algorithm) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

/// The payload of a real token, re-used to forge variants.
fn claims_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("claims json")
}

fn base64url(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

async fn requests_without_a_valid_key_get_401_with_www_authenticate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let claims = claims_of(&app.token);
    let mut expired = claims.clone();
    expired["exp"] = json!(1_000_000);
    let mut other_org = claims.clone();
    other_org["org"] = json!(uuid::Uuid::now_v7().to_string());
    let mut unknown_key = claims.clone();
    unknown_key["sub"] = json!(uuid::Uuid::now_v7().to_string());
    let header = base64url(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64url(&claims.to_string());
    let alg_none = format!("{header}.{payload}.");

    let tokens = [
        ("no header", String::new()),
        ("garbage", "not-a-jwt".to_string()),
        (
            "wrong secret",
            sign(
                claims.clone(),
                "another-secret-another-secret-0123456",
                Algorithm::HS256,
            ),
        ),
        ("alg none", alg_none),
        (
            "HS512 instead of the pinned HS256",
            sign(claims.clone(), SECRET, Algorithm::HS512),
        ),
        ("expired", sign(expired, SECRET, Algorithm::HS256)),
        (
            "org claim does not match the key",
            sign(other_org, SECRET, Algorithm::HS256),
        ),
        (
            "unknown key id",
            sign(unknown_key, SECRET, Algorithm::HS256),
        ),
    ];
    for (label, token) in tokens {
        let response = app
            .request_as(&token, Method::GET, "/scim/v2/Users/x", None)
            .await;
        assert_scim_error(&response, 401, None);
        assert!(
            response
                .header("www-authenticate")
                .unwrap_or("")
                .starts_with("Bearer"),
            "{label}: WWW-Authenticate"
        );
    }
    // A non-Bearer scheme is refused too.
    let basic = app
        .client
        .get(format!("{}/scim/v2/Users/x", app.address))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .expect("request");
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
}

async fn personal_access_tokens_get_403(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let personal = app.key("acme", true).await;
    let id = app
        .create_user(json!({"userName": "pat@example.com"}))
        .await;
    let cases = [
        (Method::GET, format!("/scim/v2/Users/{id}"), None),
        (
            Method::PUT,
            format!("/scim/v2/Users/{id}"),
            Some(json!({"userName": "pat@example.com"})),
        ),
        (
            Method::POST,
            "/scim/v2/Users".to_string(),
            Some(json!({"userName": "new@example.com"})),
        ),
    ];
    for (method, path, body) in cases {
        let response = app.request_as(&personal, method, &path, body).await;
        assert_scim_error(&response, 403, None);
        assert_eq!(
            response.body["detail"],
            "Personal Access Tokens are not supported for this endpoint"
        );
    }
}

async fn another_orgs_key_sees_404_for_every_verb(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let other = app.other_org("globex").await;
    let id = app
        .create_user(json!({"userName": "mine@example.com", "displayName": "Mine"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let get = app.request_as(&other, Method::GET, &path, None).await;
    assert_scim_error(&get, 404, None);
    let put = app
        .request_as(
            &other,
            Method::PUT,
            &path,
            Some(json!({"userName": "stolen@example.com"})),
        )
        .await;
    assert_scim_error(&put, 404, None);
    let mine = app.get(&path).await;
    assert_eq!(mine.body["userName"], "mine@example.com");

    // Uniqueness is per organization: the other org may use the same userName.
    let same_name = app
        .request_as(
            &other,
            Method::POST,
            "/scim/v2/Users",
            Some(json!({"userName": "mine@example.com"})),
        )
        .await;
    assert_eq!(same_name.status, StatusCode::CREATED);
}

async fn revoked_key_gets_401_on_the_next_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.key("acme", false).await;
    let ok = app
        .request_as(&token, Method::GET, "/scim/v2/Users/x", None)
        .await;
    assert_eq!(ok.status, StatusCode::NOT_FOUND);
    let key_id = claims_of(&token)["sub"].as_str().expect("sub").to_string();
    scimd::app::revoke_key(&app.store, &key_id)
        .await
        .expect("revoke");
    let refused = app
        .request_as(&token, Method::GET, "/scim/v2/Users/x", None)
        .await;
    assert_scim_error(&refused, 401, None);
    // Other keys of the org still work.
    assert_eq!(
        app.get("/scim/v2/Users/x").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn expired_key_gets_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = scimd::app::create_key(&app.store, "acme", false, None, Some("1s"))
        .await
        .expect("mint");
    let ok = app
        .request_as(&token, Method::GET, "/scim/v2/Users/x", None)
        .await;
    assert_eq!(ok.status, StatusCode::NOT_FOUND);
    // Past expiry plus the 5 s leeway.
    tokio::time::sleep(std::time::Duration::from_millis(7_100)).await;
    let refused = app
        .request_as(&token, Method::GET, "/scim/v2/Users/x", None)
        .await;
    assert_scim_error(&refused, 401, None);
}
