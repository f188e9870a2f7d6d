//! Bulk (RFC 7644 §3.7) as an admin's import script uses it: bulkId references across
//! resources in either order, circular references, failOnErrors, the limits, the rate limit
//! paid per operation all at once, the change log, and the time budget.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestResponse, assert_scim_error};

backend_tests!(
    bulk_ids_link_a_user_and_a_group_in_either_order,
    circular_references_are_409_and_create_nothing,
    fail_on_errors_stops_after_that_many_failures,
    max_operations_and_max_payload_size_are_413_and_announced,
    a_bulk_pays_one_token_per_operation_all_at_once,
    each_operation_is_its_own_change_and_a_failed_one_changes_nothing,
    operations_not_started_within_the_time_budget_are_503,
);

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

async fn bulk(app: &TestApp, operations: Value) -> TestResponse {
    bulk_with(app, json!({"schemas": [BULK], "Operations": operations})).await
}

async fn bulk_with(app: &TestApp, body: Value) -> TestResponse {
    app.post("/scim/v2/Bulk", body).await
}

fn statuses(response: &TestResponse) -> Vec<String> {
    response.body["Operations"]
        .as_array()
        .unwrap_or_else(|| panic!("{:?}", response.body))
        .iter()
        .map(|op| op["status"].as_str().unwrap().to_string())
        .collect()
}

async fn user_count(app: &TestApp) -> i64 {
    app.get("/scim/v2/Users?count=0").await.body["totalResults"]
        .as_i64()
        .unwrap()
}

async fn bulk_ids_link_a_user_and_a_group_in_either_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (round, group_first) in [(0, true), (1, false)] {
        let user = json!({"method": "POST", "path": "/Users", "bulkId": "u",
            "data": {"userName": format!("ada{round}@example.com")}});
        let group = json!({"method": "POST", "path": "/Groups", "bulkId": "g",
            "data": {"displayName": format!("Admins {round}"), "members": [{"value": "bulkId:u"}]}});
        let deactivate = json!({"method": "PATCH", "path": "/Users/bulkId:u", "version": "W/\"1\"",
            "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}]}});
        let operations = if group_first {
            json!([group, deactivate, user])
        } else {
            json!([user, group, deactivate])
        };
        let response = bulk(&app, operations).await;
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        assert_eq!(
            response.header("content-type"),
            Some("application/scim+json")
        );
        assert_eq!(
            response.body["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:BulkResponse"])
        );
        let ops = response.body["Operations"].as_array().unwrap();
        let by_id = |id: &str| {
            ops.iter()
                .find(|op| op["bulkId"] == id)
                .unwrap_or_else(|| panic!("{ops:?}"))
                .clone()
        };
        let (user_op, group_op) = (by_id("u"), by_id("g"));
        assert_eq!(user_op["status"], "201");
        assert_eq!(group_op["status"], "201");
        let user_location = user_op["location"].as_str().unwrap();
        let user_id = user_location.rsplit('/').next().unwrap();
        let patch = ops.iter().find(|op| op["method"] == "PATCH").unwrap();
        assert_eq!(patch["status"], "200", "{patch:?}");
        assert_eq!(patch["version"], "W/\"2\"");
        assert_eq!(patch["location"], user_location);

        let group_path = group_op["location"]
            .as_str()
            .unwrap()
            .split("/scim/v2")
            .nth(1)
            .unwrap()
            .to_string();
        let group = app.get(&format!("/scim/v2{group_path}")).await;
        assert_eq!(
            group.body["members"][0]["value"], user_id,
            "{:?}",
            group.body
        );
        let user = app.get(&format!("/scim/v2/Users/{user_id}")).await;
        assert_eq!(user.body["active"], false);
    }
}

async fn circular_references_are_409_and_create_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "a",
             "data": {"displayName": "A", "members": [{"value": "bulkId:b"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "b",
             "data": {"userName": "b@example.com", "title": "bulkId:a"}},
            {"method": "POST", "path": "/Users", "bulkId": "c",
             "data": {"userName": "c@example.com", "title": "bulkId:nowhere"}},
        ]),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(statuses(&response), ["409", "409", "400"]);
    let error = &response.body["Operations"][0]["response"];
    assert_eq!(error["status"], "409");
    assert!(error["detail"].as_str().unwrap().contains("Circular"));
    assert_eq!(user_count(&app).await, 0);
    assert_eq!(app.get("/scim/v2/Groups").await.body["totalResults"], 0);
}

async fn fail_on_errors_stops_after_that_many_failures(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = bulk_with(
        &app,
        json!({"schemas": [BULK], "failOnErrors": 2, "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "1", "data": {"userName": "one@example.com"}},
            {"method": "POST", "path": "/Users", "bulkId": "2", "data": {"userName": 7}},
            {"method": "DELETE", "path": "/Users/01a23d1e-bab9-72de-8c1f-5cd24712233a"},
            {"method": "POST", "path": "/Users", "bulkId": "4", "data": {"userName": "four@example.com"}},
        ]}),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    // The operation after the second failure is neither run nor reported.
    assert_eq!(statuses(&response), ["201", "400", "404"]);
    assert_eq!(user_count(&app).await, 1);

    // Without failOnErrors every operation runs.
    let response = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"userName": 7}},
            {"method": "POST", "path": "/Users", "bulkId": "y", "data": {"userName": "y@example.com"}},
        ]),
    )
    .await;
    assert_eq!(statuses(&response), ["400", "201"]);
    let bad = bulk_with(
        &app,
        json!({"schemas": [BULK], "failOnErrors": 0, "Operations": []}),
    )
    .await;
    assert_scim_error(&bad, 400, Some("invalidValue"));
    let not_bulk = bulk_with(&app, json!({"Operations": []})).await;
    assert_scim_error(&not_bulk, 400, Some("invalidSyntax"));
}

async fn max_operations_and_max_payload_size_are_413_and_announced(backend: Backend) {
    let settings = scimd::config::Settings {
        bulk_max_operations: 3,
        bulk_max_payload_bytes: 4096,
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let config = app.get("/scim/v2/ServiceProviderConfig").await;
    assert_eq!(
        config.body["bulk"],
        json!({"supported": true, "maxOperations": 3, "maxPayloadSize": 4096})
    );
    let op = |i: usize| {
        json!({"method": "POST", "path": "/Users", "bulkId": i.to_string(),
            "data": {"userName": format!("u{i}@example.com")}})
    };
    let four = bulk(&app, json!([op(1), op(2), op(3), op(4)])).await;
    assert_scim_error(&four, 413, None);
    assert!(
        four.body["detail"]
            .as_str()
            .unwrap()
            .contains("maxOperations")
    );
    let large = json!([{"method": "POST", "path": "/Users", "bulkId": "big",
        "data": {"userName": "big@example.com", "title": "x".repeat(5000)}}]);
    let too_large = bulk(&app, large).await;
    assert_scim_error(&too_large, 413, None);
    assert!(
        too_large.body["detail"]
            .as_str()
            .unwrap()
            .contains("maxPayloadSize")
    );
    assert_eq!(user_count(&app).await, 0);
    let three = bulk(&app, json!([op(1), op(2), op(3)])).await;
    assert_eq!(statuses(&three), ["201", "201", "201"]);
}

async fn a_bulk_pays_one_token_per_operation_all_at_once(backend: Backend) {
    let settings = scimd::config::Settings {
        rate_limit: scimd::ratelimit::RateLimit::per_minute(10),
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let ops = |n: usize, from: usize| {
        Value::Array(
            (from..from + n)
                .map(|i| {
                    json!({"method": "POST", "path": "/Users", "bulkId": i.to_string(),
                        "data": {"userName": format!("u{i}@example.com")}})
                })
                .collect(),
        )
    };
    let eight = bulk(&app, ops(8, 100)).await;
    assert_eq!(eight.status, StatusCode::OK, "{:?}", eight.body);
    assert_eq!(eight.header("ratelimit-remaining"), Some("2"));
    assert_eq!(eight.header("cache-control"), Some("no-store"));
    // Five more do not fit in the two left: 429, nothing done, and Retry-After says when
    // five will fit (three more tokens at one per six seconds: 18 s).
    let five = bulk(&app, ops(5, 200)).await;
    assert_scim_error(&five, 429, None);
    let retry: u64 = five.header("retry-after").unwrap().parse().unwrap();
    assert!((17..=19).contains(&retry), "Retry-After {retry}");
    assert_eq!(five.header("ratelimit-remaining"), Some("0"));
    // More operations than the key may send in a minute can never pass: 413 naming the
    // limit. Refused after it was read, it costs one token, as a malformed request does.
    let never = bulk(&app, ops(11, 0)).await;
    assert_scim_error(&never, 413, None);
    assert!(
        never.body["detail"].as_str().unwrap().contains("(10)"),
        "{:?}",
        never.body
    );
    assert_eq!(never.header("ratelimit-remaining"), Some("1"));
    // The token left is still there for a single request.
    let created = app
        .post("/scim/v2/Users", json!({"userName": "single@example.com"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_scim_error(&app.get("/scim/v2/Users").await, 429, None);
    let count = app.store.store.resource_counts().await.unwrap();
    assert_eq!(count[0].1, 9, "8 from the Bulk, 1 single: {count:?}");
}

async fn each_operation_is_its_own_change_and_a_failed_one_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app
        .create_user(json!({"userName": "ada@example.com", "title": "Engineer"}))
        .await;
    let response = bulk(
        &app,
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "bob@example.com"}},
            // Taken userName: 409, and Ada is untouched.
            {"method": "PUT", "path": format!("/Users/{ada}"),
             "data": {"userName": "bob@example.com", "title": "Changed"}},
            // A stale version: 412.
            {"method": "PATCH", "path": format!("/Users/{ada}"), "version": "W/\"9\"",
             "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": "Stale"}]}},
            {"method": "PUT", "path": format!("/Users/{ada}"),
             "data": {"userName": "ada@example.com", "title": "Architect"}},
            {"method": "DELETE", "path": "/Users/bulkId:b"},
        ]),
    )
    .await;
    assert_eq!(statuses(&response), ["201", "409", "412", "200", "204"]);
    let user = app.get(&format!("/scim/v2/Users/{ada}")).await;
    assert_eq!(user.body["title"], "Architect");
    assert_eq!(user.body["meta"]["version"], "W/\"2\"");

    let token = scimd::app::create_admin_key(&app.store, None, None)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let operations = loop {
        let changes = app
            .request_as(&token, Method::GET, "/admin/v1/orgs/acme/changes", None)
            .await;
        let operations: Vec<String> = changes.body["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["operation"].as_str().unwrap().to_string())
            .collect();
        if operations.len() >= 4 || std::time::Instant::now() > deadline {
            break operations;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Ada's create, then one entry per successful operation; none for the refused ones.
    assert_eq!(operations, ["create", "create", "put", "delete"]);
}

async fn operations_not_started_within_the_time_budget_are_503(backend: Backend) {
    let settings = scimd::config::Settings {
        bulk_time_budget: Duration::from_millis(30),
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let operations: Vec<Value> = (0..300)
        .map(|i| {
            json!({"method": "POST", "path": "/Users", "bulkId": i.to_string(),
                "data": {"userName": format!("u{i}@example.com")}})
        })
        .collect();
    let response = bulk(&app, Value::Array(operations)).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let statuses = statuses(&response);
    assert_eq!(statuses.len(), 300);
    let created = statuses.iter().filter(|s| *s == "201").count();
    let not_started = statuses.iter().filter(|s| *s == "503").count();
    assert_eq!(created + not_started, 300, "{statuses:?}");
    assert!(not_started > 0, "300 creates finished within 30 ms?");
    // Exactly the operations reported done were done: the client knows what to resend.
    assert_eq!(user_count(&app).await, created as i64);
    let first_503 = statuses.iter().position(|s| s == "503").unwrap();
    assert!(statuses[first_503..].iter().all(|s| s == "503"));
    let skipped = &response.body["Operations"][first_503]["response"];
    assert_eq!(skipped["status"], "503");
}
