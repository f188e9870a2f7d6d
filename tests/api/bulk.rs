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
    consecutive_creates_share_a_commit_yet_each_succeeds_or_fails_alone,
    operations_not_started_within_the_time_budget_are_503,
    bulks_beyond_the_concurrency_bound_wait_their_turn_and_all_complete,
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

    let operations: Vec<Value> = change_log(&app, 4)
        .await
        .iter()
        .map(|c| c["operation"].clone())
        .collect();
    // Ada's create, then one entry per successful operation; none for the refused ones.
    assert_eq!(operations, ["create", "create", "put", "delete"]);
}

/// The organization's change log through the admin API (oldest first), once it shows at
/// least `expected` entries (an entry is shown once no earlier transaction can still commit)
/// or a minute has passed.
async fn change_log(app: &TestApp, expected: usize) -> Vec<Value> {
    let token = scimd::app::create_admin_key(&app.store, None, None)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let changes = app
            .request_as(
                &token,
                Method::GET,
                "/admin/v1/orgs/acme/changes?limit=1000",
                None,
            )
            .await;
        assert_eq!(changes.status, StatusCode::OK, "{:?}", changes.body);
        let log = changes.body["changes"].as_array().unwrap().clone();
        if log.len() >= expected || std::time::Instant::now() > deadline {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn consecutive_creates_share_a_commit_yet_each_succeeds_or_fails_alone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.define_attribute("team").await;
    app.create_user(json!({"userName": "taken@example.com"}))
        .await;
    // More creates than one batch holds, with failures of every kind among them.
    let operations: Vec<Value> = (0..250)
        .map(|i| {
            let data = match i {
                10 => json!({"userName": "TAKEN@example.com"}),
                // The same name as the create before it, in another case.
                20 => json!({"userName": "U19@EXAMPLE.COM"}),
                30 => json!({"userName": "u30@example.com",
                    "urn:omni:params:1.0:UserAttribute": {"undefined": "x"}}),
                40 => json!({"userName": 40}),
                50 => json!({"userName": "u50@example.com", "password": "s3cret-Passw0rd",
                    "urn:omni:params:1.0:UserAttribute": {"team": "blue"}}),
                // The first create of the second batch.
                100 => json!({"userName": "u99@example.com"}),
                _ => json!({"userName": format!("u{i}@example.com"),
                    "emails": [{"value": format!("mail{i}@example.com")}]}),
            };
            json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": data})
        })
        .collect();
    let response = bulk(&app, Value::Array(operations)).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let statuses = statuses(&response);
    let refused: Vec<(usize, &str)> = statuses
        .iter()
        .enumerate()
        .filter(|(_, s)| *s != "201")
        .map(|(i, s)| (i, s.as_str()))
        .collect();
    assert_eq!(
        refused,
        [
            (10, "409"),
            (20, "409"),
            (30, "400"),
            (40, "400"),
            (100, "409")
        ]
    );
    let ops = response.body["Operations"].as_array().unwrap();
    assert_eq!(ops[10]["response"]["scimType"], "uniqueness");
    assert_eq!(ops[30]["response"]["scimType"], "invalidValue");
    // Each create answers as a single POST would: where it is, at version 1.
    let created: Vec<String> = ops
        .iter()
        .filter(|op| op["status"] == "201")
        .map(|op| {
            assert_eq!(op["version"], "W/\"1\"", "{op:?}");
            let location = op["location"].as_str().unwrap();
            location.rsplit('/').next().unwrap().to_string()
        })
        .collect();
    assert_eq!(created.len(), 245);
    assert_eq!(user_count(&app).await, 246);
    let u0 = app.get(&format!("/scim/v2/Users/{}", created[0])).await;
    assert_eq!(u0.body["userName"], "u0@example.com");
    assert_eq!(u0.body["meta"]["version"], "W/\"1\"");
    let found = app
        .get("/scim/v2/Users?filter=emails.value%20eq%20%22mail200@example.com%22")
        .await;
    assert_eq!(found.body["totalResults"], 1, "{:?}", found.body);
    assert_eq!(found.body["Resources"][0]["userName"], "u200@example.com");
    let u50 = app
        .get("/scim/v2/Users?filter=userName%20eq%20%22u50@example.com%22")
        .await;
    assert_eq!(
        u50.body["Resources"][0]["urn:omni:params:1.0:UserAttribute"]["team"],
        "blue"
    );

    // One entry per created user, each at its own position, in the request's order; none
    // for the refused ones.
    let log = change_log(&app, 246).await;
    assert_eq!(log.len(), 246, "{log:?}");
    let entries = &log[1..];
    let ids: Vec<&str> = entries
        .iter()
        .map(|e| e["resourceId"].as_str().unwrap_or_else(|| panic!("{e:?}")))
        .collect();
    assert_eq!(ids, created);
    assert!(entries.iter().all(|e| e["operation"] == "create"));
    let positions: Vec<i64> = log
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let u50_entry = entries
        .iter()
        .find(|e| e["data"]["userName"] == "u50@example.com")
        .unwrap();
    assert!(
        u50_entry["attributes"]
            .as_array()
            .unwrap()
            .contains(&json!("password")),
        "{u50_entry:?}"
    );
}

async fn operations_not_started_within_the_time_budget_are_503(backend: Backend) {
    let settings = scimd::config::Settings {
        bulk_time_budget: Duration::from_millis(30),
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let operations: Vec<Value> = (0..1000)
        .map(|i| {
            json!({"method": "POST", "path": "/Users", "bulkId": i.to_string(),
                "data": {"userName": format!("u{i}@example.com")}})
        })
        .collect();
    let response = bulk(&app, Value::Array(operations)).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let statuses = statuses(&response);
    assert_eq!(statuses.len(), 1000);
    let created = statuses.iter().filter(|s| *s == "201").count();
    let not_started = statuses.iter().filter(|s| *s == "503").count();
    assert_eq!(created + not_started, 1000, "{statuses:?}");
    assert!(not_started > 0, "1,000 creates finished within 30 ms?");
    // Exactly the operations reported done were done: the client knows what to resend.
    assert_eq!(user_count(&app).await, created as i64);
    let first_503 = statuses.iter().position(|s| s == "503").unwrap();
    assert!(statuses[first_503..].iter().all(|s| s == "503"));
    let skipped = &response.body["Operations"][first_503]["response"];
    assert_eq!(skipped["status"], "503");
}

async fn bulks_beyond_the_concurrency_bound_wait_their_turn_and_all_complete(backend: Backend) {
    let settings = scimd::config::Settings {
        bulk_concurrency: 1,
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let ops = |request: usize| {
        Value::Array(
            (0..25)
                .map(|i| {
                    json!({"method": "POST", "path": "/Users", "bulkId": format!("{request}-{i}"),
                        "data": {"userName": format!("u{request}-{i}@example.com")}})
                })
                .collect(),
        )
    };
    // Four at once against one slot: three wait (within their time budget) and then run.
    let responses = futures::future::join_all((0..4).map(|r| bulk(&app, ops(r)))).await;
    for response in &responses {
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        assert_eq!(statuses(response), vec!["201"; 25]);
    }
    assert_eq!(user_count(&app).await, 100);
}
