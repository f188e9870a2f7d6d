//! Hostile input: every malformed or oversized request gets a clean 4xx, changes nothing, and
//! the server stays up.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error};

backend_tests!(
    malformed_bodies_get_clean_4xx_and_the_server_stays_up,
    hostile_queries_are_data
);

async fn malformed_bodies_get_clean_4xx_and_the_server_stays_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "target@example.com", "displayName": "Safe"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!(
        r#"{{"userName":"a@b.co","name":{}}}"#,
        "{\"x\":".repeat(5_000) + "1" + &"}".repeat(5_000)
    );
    let huge_string = format!(
        r#"{{"userName":"a@b.co","displayName":"{}"}}"#,
        "x".repeat(900_000)
    );
    let bodies: Vec<(&str, Vec<u8>, u16)> = vec![
        ("deep array", deep.into_bytes(), 400),
        ("deep object", deep_object.into_bytes(), 400),
        (
            "invalid UTF-8",
            b"{\"userName\":\"\xff\xfe\"}".to_vec(),
            400,
        ),
        (
            "NUL in a string",
            b"{\"userName\":\"a\\u0000@b.co\"}".to_vec(),
            400,
        ),
        (
            "number for a string",
            br#"{"userName":"a@b.co","displayName":12}"#.to_vec(),
            400,
        ),
        (
            "object for a string",
            br#"{"userName":{"x":1}}"#.to_vec(),
            400,
        ),
        (
            "array for a complex attribute",
            br#"{"userName":"a@b.co","name":[1]}"#.to_vec(),
            400,
        ),
        // Under the 1 MiB body limit but over the 128 KiB document cap.
        (
            "huge string over the document cap",
            huge_string.into_bytes(),
            413,
        ),
        ("empty body", Vec::new(), 400),
    ];
    for (label, body, status) in bodies {
        let response = app
            .raw(Method::PUT, &path, "application/scim+json", body)
            .await;
        if status == 200 {
            assert_eq!(
                response.status,
                StatusCode::OK,
                "{label}: {:?}",
                response.body
            );
            app.put(
                &path,
                json!({"userName": "target@example.com", "displayName": "Safe"}),
            )
            .await;
            continue;
        }
        assert_eq!(
            response.status.as_u16(),
            status,
            "{label}: {:?}",
            response.body
        );
        assert_eq!(response.body["status"], status.to_string(), "{label}");
    }
    // 3 MiB: refused with 413 from its Content-Length; the server may close the connection
    // before the client has finished sending, which the client sees as a reset. A client of
    // its own, so that half-closed connection is never reused for the requests below.
    let big = reqwest::Client::new()
        .put(format!("{}{path}", app.address))
        .bearer_auth(&app.token)
        .header("content-type", "application/scim+json")
        .body(vec![b' '; 3 * 1024 * 1024])
        .send()
        .await;
    if let Ok(response) = big {
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    // Duplicate keys: the last one wins, as in most JSON parsers; nothing breaks.
    let duplicate = app
        .raw(
            Method::PUT,
            &path,
            "application/json",
            br#"{"userName":"target@example.com","displayName":"One","displayName":"Safe"}"#
                .to_vec(),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::OK);
    let read = app.get(&path).await;
    assert_eq!(read.body["displayName"], "Safe");
    assert_eq!(read.body["userName"], "target@example.com");
    assert_eq!(
        app.request_as("", Method::GET, "/healthz", None)
            .await
            .status,
        StatusCode::OK
    );
}

async fn hostile_queries_are_data(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(json!({"userName": "keep@example.com"}))
        .await;
    let attacks = [
        "userName%20eq%20%22x%27%3B%20drop%20table%20users%3B%20--%22",
        "userName%27%3B%20drop%20table%20users%3B--%20eq%20%22x%22",
        "urn:omni:params:1.0:UserAttribute:a%27b%20eq%20%22x%22",
        "displayName%20eq%20%22%00%22",
    ];
    for filter in attacks {
        let response = app.get(&format!("/scim/v2/Users?filter={filter}")).await;
        assert!(
            matches!(response.status.as_u16(), 200 | 400),
            "{filter}: {:?}",
            response.body
        );
        if response.status == StatusCode::BAD_REQUEST {
            assert_scim_error(&response, 400, Some("invalidFilter"));
        }
    }
    let sort = app
        .get("/scim/v2/Users?sortBy=userName%3Bdrop%20table%20users")
        .await;
    assert_scim_error(&sort, 400, Some("invalidValue"));
    let huge = app
        .get(&format!(
            "/scim/v2/Users?filter=userName%20eq%20%22{}%22",
            "x".repeat(10_000)
        ))
        .await;
    assert_scim_error(&huge, 400, Some("invalidFilter"));
    let deep = app
        .get(&format!(
            "/scim/v2/Users?filter={}",
            "not%20(".repeat(2_000)
        ))
        .await;
    assert_scim_error(&deep, 400, Some("invalidFilter"));
    let all = app.get("/scim/v2/Users").await;
    assert_eq!(all.body["totalResults"], 1, "the table is intact");
}
