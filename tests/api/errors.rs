//! Every error is RFC 7644 §3.12 JSON: malformed bodies, oversized bodies, unknown routes,
//! unsupported methods.

use reqwest::Method;
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error};

backend_tests!(
    malformed_json_is_400_invalid_syntax_and_changes_nothing,
    a_body_over_one_mebibyte_is_413,
    unknown_routes_are_scim_404s,
    unsupported_methods_are_scim_405s,
    plain_application_json_is_accepted,
);

async fn malformed_json_is_400_invalid_syntax_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "m@example.com", "displayName": "M"}))
        .await;
    let bodies: [&[u8]; 5] = [
        b"{",
        b"not json",
        b"[1,2]",
        b"\"string\"",
        b"{\"userName\": \"x\",}",
    ];
    for body in bodies {
        let post = app
            .raw(
                Method::POST,
                "/scim/v2/Users",
                "application/scim+json",
                body.to_vec(),
            )
            .await;
        assert_scim_error(&post, 400, Some("invalidSyntax"));
        let put = app
            .raw(
                Method::PUT,
                &format!("/scim/v2/Users/{id}"),
                "application/scim+json",
                body.to_vec(),
            )
            .await;
        assert_scim_error(&put, 400, Some("invalidSyntax"));
    }
    let read = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(read.body["displayName"], "M");
    assert_eq!(read.body["meta"]["version"], "W/\"1\"");
}

async fn a_body_over_one_mebibyte_is_413(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let big = format!(
        r#"{{"userName":"big@example.com","displayName":"{}"}}"#,
        "x".repeat(1024 * 1024)
    );
    // The server may answer from Content-Length and close before the upload ends; a client
    // then sees a reset instead of the 413, so retry once with a body that fits the socket.
    match app
        .client
        .post(format!("{}/scim/v2/Users", app.address))
        .bearer_auth(&app.token)
        .header("content-type", "application/scim+json")
        .body(big)
        .send()
        .await
    {
        Ok(response) => {
            assert_eq!(response.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
            let body: serde_json::Value = response.json().await.expect("json");
            assert_eq!(body["status"], "413");
        }
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    let listed = app
        .get("/scim/v2/Users?filter=userName%20eq%20%22big@example.com%22")
        .await;
    assert_eq!(listed.body["totalResults"], 0, "nothing was created");
}

async fn unknown_routes_are_scim_404s(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/", "/nope", "/scim/v2/Nope", "/scim/v3/Users"] {
        let response = app.get(path).await;
        assert_scim_error(&response, 404, None);
    }
}

async fn unsupported_methods_are_scim_405s(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.request(Method::PATCH, "/scim/v2/Users", None).await;
    assert_scim_error(&response, 405, None);
    let root = app.request(Method::POST, "/healthz", Some(json!({}))).await;
    assert_scim_error(&root, 405, None);
}

async fn plain_application_json_is_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({"userName": "plain@example.com"})
        .to_string()
        .into_bytes();
    let response = app
        .raw(Method::POST, "/scim/v2/Users", "application/json", body)
        .await;
    assert_eq!(response.status.as_u16(), 201, "{:?}", response.body);
}
