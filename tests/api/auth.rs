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
    personal_tokens_and_forged_algorithms_are_refused_on_every_endpoint,
    another_orgs_key_sees_404_on_every_resource_and_verb,
);

/// Every SCIM endpoint and verb, with placeholders for a user and a group id.
const ENDPOINTS: &[(&str, &str)] = &[
    ("GET", "/scim/v2/Users"),
    ("POST", "/scim/v2/Users"),
    ("POST", "/scim/v2/Users/.search"),
    ("GET", "/scim/v2/Users/{user}"),
    ("PUT", "/scim/v2/Users/{user}"),
    ("PATCH", "/scim/v2/Users/{user}"),
    ("DELETE", "/scim/v2/Users/{user}"),
    ("GET", "/scim/v2/Groups"),
    ("POST", "/scim/v2/Groups"),
    ("POST", "/scim/v2/Groups/.search"),
    ("GET", "/scim/v2/Groups/{group}"),
    ("PUT", "/scim/v2/Groups/{group}"),
    ("PATCH", "/scim/v2/Groups/{group}"),
    ("DELETE", "/scim/v2/Groups/{group}"),
    ("POST", "/scim/v2/.search"),
    ("GET", "/scim/v2/ServiceProviderConfig"),
    ("GET", "/scim/v2/ResourceTypes"),
    ("GET", "/scim/v2/ResourceTypes/User"),
    ("GET", "/scim/v2/Schemas"),
    (
        "GET",
        "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
    ),
    ("GET", "/api/scim/v2/users/{user}"),
];

async fn personal_tokens_and_forged_algorithms_are_refused_on_every_endpoint(backend: Backend) {
    // Many deliberate failures from one address: lift the per-IP failure limit for this test.
    let settings = scimd::config::Settings {
        auth_failure_limit: scimd::ratelimit::RateLimit::per_minute(1_000_000),
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let user = app
        .create_user(json!({"userName": "victim@example.com"}))
        .await;
    let group = app
        .post("/scim/v2/Groups", json!({"displayName": "Victims"}))
        .await;
    let group = group.body["id"].as_str().expect("id").to_string();
    let personal = app.key("acme", true).await;
    let claims = claims_of(&app.token);
    // HS/RS confusion: an RS256 header over an HMAC signature must not be accepted.
    let rs_header = base64url(r#"{"alg":"RS256","typ":"JWT"}"#);
    let parts: Vec<&str> = app.token.split('.').collect();
    let rs_confused = format!("{rs_header}.{}.{}", parts[1], parts[2]);
    let mut future = claims.clone();
    future["nbf"] = json!(4_000_000_000u64);
    let not_yet = sign(future, SECRET, Algorithm::HS256);
    for (method, path) in ENDPOINTS {
        let path = path.replace("{user}", &user).replace("{group}", &group);
        let method: Method = method.parse().expect("method");
        let body = Some(json!({}));
        let pat = app
            .request_as(&personal, method.clone(), &path, body.clone())
            .await;
        assert_scim_error(&pat, 403, None);
        for forged in [&rs_confused, &not_yet] {
            let response = app
                .request_as(forged, method.clone(), &path, body.clone())
                .await;
            assert_scim_error(&response, 401, None);
        }
    }
    assert_eq!(
        app.get(&format!("/scim/v2/Users/{user}")).await.status,
        StatusCode::OK,
        "nothing was deleted"
    );
}

async fn another_orgs_key_sees_404_on_every_resource_and_verb(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let other = app.other_org("globex").await;
    let user = app
        .create_user(json!({"userName": "mine@example.com"}))
        .await;
    let group = app
        .post(
            "/scim/v2/Groups",
            json!({"displayName": "Mine", "members": [{"value": user}]}),
        )
        .await;
    let group = group.body["id"].as_str().expect("id").to_string();
    let patch =
        json!({"Operations": [{"op": "replace", "path": "displayName", "value": "stolen"}]});
    for (method, path, body) in [
        (Method::GET, format!("/scim/v2/Users/{user}"), None),
        (
            Method::PUT,
            format!("/scim/v2/Users/{user}"),
            Some(json!({"userName": "x@globex.com"})),
        ),
        (
            Method::PATCH,
            format!("/scim/v2/Users/{user}"),
            Some(patch.clone()),
        ),
        (Method::DELETE, format!("/scim/v2/Users/{user}"), None),
        (Method::GET, format!("/scim/v2/Groups/{group}"), None),
        (
            Method::PUT,
            format!("/scim/v2/Groups/{group}"),
            Some(json!({"displayName": "stolen"})),
        ),
        (
            Method::PATCH,
            format!("/scim/v2/Groups/{group}"),
            Some(patch.clone()),
        ),
        (Method::DELETE, format!("/scim/v2/Groups/{group}"), None),
    ] {
        let response = app.request_as(&other, method.clone(), &path, body).await;
        assert_scim_error(&response, 404, None);
    }
    // Nor does another org see them in lists or searches, or use them as members.
    let listed = app
        .request_as(&other, Method::GET, "/scim/v2/Users", None)
        .await;
    assert_eq!(listed.body["totalResults"], 0);
    let groups = app
        .request_as(&other, Method::GET, "/scim/v2/Groups", None)
        .await;
    assert_eq!(groups.body["totalResults"], 0);
    let borrow = app
        .request_as(
            &other,
            Method::POST,
            "/scim/v2/Groups",
            Some(json!({"displayName": "G", "members": [{"value": user}]})),
        )
        .await;
    assert_scim_error(&borrow, 400, Some("invalidValue"));
    let mine = app.get(&format!("/scim/v2/Groups/{group}")).await;
    assert_eq!(mine.body["displayName"], "Mine");
    assert_eq!(mine.body["members"][0]["value"], user.as_str());
}

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
