//! Hostile tenants, request content: caps on documents, values, PATCH operations, members,
//! filters, list pages and password hashing, each refused with a SCIM error naming the cap.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use scimd::config::Settings;
use scimd::scim::limits::Limits;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error};

backend_tests!(
    documents_over_the_size_cap_are_413_and_change_nothing,
    too_many_values_in_any_multi_valued_attribute_are_refused,
    group_members_are_not_subject_to_the_values_cap,
    more_than_a_thousand_patch_operations_are_refused,
    more_than_ten_thousand_members_per_request_are_refused,
    a_group_patch_to_a_missing_group_is_404_before_its_body_is_parsed,
    a_password_for_a_missing_user_is_never_hashed,
    filters_with_too_many_multi_valued_predicates_are_refused,
    service_provider_config_announces_the_largest_page,
    list_pages_stop_at_the_byte_budget,
);

fn patch_body(operations: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
}

async fn patch(app: &TestApp, path: &str, operations: Value) -> crate::helpers::TestResponse {
    app.request(Method::PATCH, path, Some(patch_body(operations)))
        .await
}

fn assert_names_cap(response: &crate::helpers::TestResponse, cap: &str) {
    let detail = response.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(cap), "{detail}");
}

async fn create_group(app: &TestApp, body: Value) -> String {
    let response = app.post("/scim/v2/Groups", body).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    response.body["id"].as_str().expect("id").to_string()
}

async fn documents_over_the_size_cap_are_413_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let big = "x".repeat(200 * 1024);
    let id = app
        .create_user(json!({"userName": "doc@example.com", "displayName": "Safe"}))
        .await;
    let user = format!("/scim/v2/Users/{id}");
    let group_id = create_group(&app, json!({"displayName": "Safe group"})).await;
    let group = format!("/scim/v2/Groups/{group_id}");

    let refused = [
        app.post(
            "/scim/v2/Users",
            json!({"userName": "big@example.com", "displayName": big}),
        )
        .await,
        app.put(
            &user,
            json!({"userName": "doc@example.com", "displayName": big}),
        )
        .await,
        patch(
            &app,
            &user,
            json!([{"op": "replace", "path": "displayName", "value": big}]),
        )
        .await,
        app.post(
            "/scim/v2/Groups",
            json!({"displayName": "Big", "externalId": big}),
        )
        .await,
        app.put(
            &group,
            json!({"displayName": "Safe group", "externalId": big}),
        )
        .await,
        patch(
            &app,
            &group,
            json!([{"op": "replace", "path": "externalId", "value": big}]),
        )
        .await,
    ];
    for response in &refused {
        assert_scim_error(response, 413, None);
        assert_names_cap(response, "131072");
    }
    // A PATCH that grows the document step by step is judged on the result: four 40 KiB
    // values are each fine, together over the cap.
    let chunk = "y".repeat(40 * 1024);
    let grown = patch(
        &app,
        &user,
        json!([
            {"op": "replace", "path": "displayName", "value": chunk},
            {"op": "replace", "path": "title", "value": chunk},
            {"op": "replace", "path": "nickName", "value": chunk},
            {"op": "replace", "path": "profileUrl", "value": chunk},
        ]),
    )
    .await;
    assert_scim_error(&grown, 413, None);

    assert_eq!(app.get(&user).await.body["displayName"], "Safe");
    assert!(app.get(&group).await.body.get("externalId").is_none());
    let users = app.get("/scim/v2/Users").await;
    assert_eq!(users.body["totalResults"], 1);
    // Just under the cap is fine.
    let fits = "z".repeat(100 * 1024);
    let ok = patch(
        &app,
        &user,
        json!([{"op": "replace", "path": "displayName", "value": fits}]),
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
}

async fn too_many_values_in_any_multi_valued_attribute_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_user(json!({"userName": "v@example.com"})).await;
    let user = format!("/scim/v2/Users/{id}");
    let values = |n: usize, f: &dyn Fn(usize) -> Value| (0..n).map(f).collect::<Vec<_>>();
    let email = |i: usize| json!({"value": format!("e{i}@example.com")});
    let attributes: Vec<(&str, Value)> = vec![
        ("emails", json!(values(101, &email))),
        (
            "phoneNumbers",
            json!(values(101, &|i| json!({"value": format!("+1555{i:04}")}))),
        ),
        (
            "addresses",
            json!(values(101, &|i| json!({"locality": format!("Town {i}")}))),
        ),
        (
            "roles",
            json!(values(101, &|i| json!({"value": format!("r{i}")}))),
        ),
        (
            "entitlements",
            json!(values(101, &|i| json!({"value": format!("e{i}")}))),
        ),
        (
            "x509Certificates",
            json!(values(101, &|i| json!({"value": format!("Y2VydA{i}")}))),
        ),
    ];
    for (name, value) in attributes {
        let post = app
            .post(
                "/scim/v2/Users",
                json!({"userName": format!("{name}@example.com"), name: value.clone()}),
            )
            .await;
        assert_scim_error(&post, 400, Some("invalidValue"));
        assert_names_cap(&post, "at most 100");
        let put = app
            .put(
                &user,
                json!({"userName": "v@example.com", name: value.clone()}),
            )
            .await;
        assert_scim_error(&put, 400, Some("invalidValue"));
        let add = patch(
            &app,
            &user,
            json!([{"op": "add", "path": name, "value": value}]),
        )
        .await;
        assert_scim_error(&add, 400, Some("invalidValue"));
        assert_names_cap(&add, name);
    }
    // 100 values fit; one more PATCH add does not, and changes nothing.
    let hundred = app
        .put(
            &user,
            json!({"userName": "v@example.com", "emails": values(100, &email)}),
        )
        .await;
    assert_eq!(hundred.status, StatusCode::OK, "{:?}", hundred.body);
    let one_more = patch(
        &app,
        &user,
        json!([{"op": "add", "path": "emails", "value": [{"value": "last@example.com"}]}]),
    )
    .await;
    assert_scim_error(&one_more, 400, Some("invalidValue"));
    let read = app.get(&user).await;
    assert_eq!(read.body["emails"].as_array().map(Vec::len), Some(100));
}

async fn group_members_are_not_subject_to_the_values_cap(backend: Backend) {
    let settings = Settings {
        limits: Limits {
            max_multi_values: 3,
            ..Limits::default()
        },
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let mut members = Vec::new();
    for i in 0..5 {
        let id = app
            .create_user(json!({"userName": format!("m{i}@example.com")}))
            .await;
        members.push(json!({"value": id}));
    }
    let group = create_group(&app, json!({"displayName": "Five", "members": members})).await;
    let read = app.get(&format!("/scim/v2/Groups/{group}")).await;
    assert_eq!(read.body["members"].as_array().map(Vec::len), Some(5));
    // The lowered cap does hold for a user's emails.
    let emails: Vec<Value> = (0..4)
        .map(|i| json!({"value": format!("e{i}@example.com")}))
        .collect();
    let refused = app
        .post(
            "/scim/v2/Users",
            json!({"userName": "four@example.com", "emails": emails}),
        )
        .await;
    assert_scim_error(&refused, 400, Some("invalidValue"));
    assert_names_cap(&refused, "at most 3");
}

async fn more_than_a_thousand_patch_operations_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "ops@example.com"}))
        .await;
    let user = format!("/scim/v2/Users/{id}");
    let group_id = create_group(&app, json!({"displayName": "Ops"})).await;
    let group = format!("/scim/v2/Groups/{group_id}");
    let ops = |n: usize| {
        json!(
            (0..n)
                .map(|i| json!({"op": "replace", "path": "title", "value": format!("t{i}")}))
                .collect::<Vec<_>>()
        )
    };
    let group_ops = |n: usize| {
        json!(
            (0..n)
                .map(|i| json!({"op": "replace", "path": "externalId", "value": format!("x{i}")}))
                .collect::<Vec<_>>()
        )
    };
    for (path, body) in [(&user, ops(1_001)), (&group, group_ops(1_001))] {
        let response = patch(&app, path, body).await;
        assert_scim_error(&response, 400, Some("invalidValue"));
        assert_names_cap(&response, "at most 1000");
    }
    assert!(app.get(&user).await.body.get("title").is_none());
    let ok = patch(&app, &user, ops(1_000)).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.body["title"], "t999");
}

async fn more_than_ten_thousand_members_per_request_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let group_id = create_group(&app, json!({"displayName": "Crowd"})).await;
    let group = format!("/scim/v2/Groups/{group_id}");
    // Random ids: the cap is checked before the store looks any of them up.
    let members: Vec<Value> = (0..10_001)
        .map(|_| json!({"value": Uuid::now_v7().to_string()}))
        .collect();
    let responses = [
        app.post(
            "/scim/v2/Groups",
            json!({"displayName": "Too many", "members": members.clone()}),
        )
        .await,
        app.put(
            &group,
            json!({"displayName": "Crowd", "members": members.clone()}),
        )
        .await,
        patch(
            &app,
            &group,
            json!([{"op": "add", "path": "members", "value": members[..6_000]},
                   {"op": "remove", "path": "members", "value": members[6_000..]}]),
        )
        .await,
    ];
    for response in &responses {
        assert_scim_error(response, 400, Some("invalidValue"));
        assert_names_cap(response, "at most 10000");
    }
    let list = app.get("/scim/v2/Groups").await;
    assert_eq!(list.body["totalResults"], 1);
}

async fn a_group_patch_to_a_missing_group_is_404_before_its_body_is_parsed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A large body whose members are not even ids: read first, the missing group answers
    // 404 before any of it is parsed (it used to be parsed, de-duplicated and refused 400).
    let members: Vec<Value> = (0..20_000)
        .map(|i| json!({"value": format!("not-a-user-{i}")}))
        .collect();
    let missing = format!("/scim/v2/Groups/{}", Uuid::now_v7());
    let body = json!([{"op": "add", "path": "members", "value": members}]);
    let started = Instant::now();
    let response = patch(&app, &missing, body.clone()).await;
    assert_scim_error(&response, 404, None);
    assert!(started.elapsed() < Duration::from_secs(5));
    // Against a group that exists, the same body is read and refused.
    let group = create_group(&app, json!({"displayName": "Real"})).await;
    let response = patch(&app, &format!("/scim/v2/Groups/{group}"), body).await;
    assert_scim_error(&response, 400, Some("invalidValue"));
}

async fn a_password_for_a_missing_user_is_never_hashed(backend: Backend) {
    use argon2::{Argon2, PasswordHash, PasswordVerifier};
    let app = TestApp::spawn(backend).await;
    let id = app.create_user(json!({"userName": "pw@example.com"})).await;
    let user = format!("/scim/v2/Users/{id}");
    // One real hash, timed: the yardstick for what hashing costs on this machine and build.
    let started = Instant::now();
    let response = patch(
        &app,
        &user,
        json!([{"op": "replace", "path": "password", "value": "n3w-s3cret"}]),
    )
    .await;
    let one_hash = started.elapsed();
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let org = app.store.store.org_by_slug("acme").await.expect("org").id;
    let stored = app
        .store
        .store
        .users()
        .get(org, Uuid::parse_str(&id).expect("uuid"))
        .await
        .expect("user");
    let hash = stored.password_hash.expect("hash stored");
    let parsed = PasswordHash::new(&hash).expect("argon2 hash");
    assert!(
        Argon2::default()
            .verify_password(b"n3w-s3cret", &parsed)
            .is_ok()
    );

    // Ten PATCHes and ten PUTs with a password to users that do not exist, and ten PATCHes
    // whose If-Match is stale: all refused without hashing, so together they take less
    // than a few hashes would (before, each one hashed first).
    let started = Instant::now();
    for _ in 0..10 {
        let missing = format!("/scim/v2/Users/{}", Uuid::now_v7());
        let response = patch(
            &app,
            &missing,
            json!([{"op": "replace", "path": "password", "value": "x"}]),
        )
        .await;
        assert_scim_error(&response, 404, None);
        let response = app
            .put(
                &missing,
                json!({"userName": "pw2@example.com", "password": "x"}),
            )
            .await;
        assert_scim_error(&response, 404, None);
        let stale = app
            .client
            .patch(format!("{}{user}", app.address))
            .bearer_auth(&app.token)
            .header("content-type", "application/scim+json")
            .header("if-match", "W/\"999\"")
            .body(
                patch_body(json!([{"op": "replace", "path": "password", "value": "y"}]))
                    .to_string(),
            )
            .send()
            .await
            .expect("send");
        assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    }
    let thirty_refusals = started.elapsed();
    assert!(
        thirty_refusals < one_hash * 5,
        "30 refusals took {thirty_refusals:?}; one hashed PATCH took {one_hash:?}"
    );
}

async fn filters_with_too_many_multi_valued_predicates_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(
        json!({"userName": "f@example.com", "emails": [{"value": "x@w.co", "type": "w"}]}),
    )
    .await;
    let term = "emails[value co \"x\" and type eq \"w\"]";
    let forty = vec![term; 40].join(" or ");
    let eight = [term; 8].join(" or ");
    let query = |filter: &str| {
        format!(
            "/scim/v2/Users?{}",
            serde_urlencoded::to_string([("filter", filter)]).expect("encode")
        )
    };
    let search = |filter: &str| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": filter});
    let refused = [
        app.get(&query(&forty)).await,
        app.post("/scim/v2/Users/.search", search(&forty)).await,
        app.post("/scim/v2/.search", search(&forty)).await,
        app.get(&query(&["emails.value co \"x\""; 9].join(" or ")))
            .await,
        app.post(
            "/scim/v2/Groups/.search",
            search(&["members.value eq \"x\""; 9].join(" or ")),
        )
        .await,
    ];
    for response in &refused {
        assert_scim_error(response, 400, Some("invalidFilter"));
        assert_names_cap(response, "at most 8");
    }
    let fine = app.get(&query(&eight)).await;
    assert_eq!(fine.status, StatusCode::OK, "{:?}", fine.body);
    assert_eq!(fine.body["totalResults"], 1);
}

async fn service_provider_config_announces_the_largest_page(backend: Backend) {
    let settings = Settings {
        max_results: 7,
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    for i in 0..9 {
        app.create_user(json!({"userName": format!("p{i}@example.com")}))
            .await;
    }
    let config = app.get("/scim/v2/ServiceProviderConfig").await;
    assert_eq!(config.body["filter"]["supported"], true);
    let announced = config.body["filter"]["maxResults"].as_i64();
    assert_eq!(announced, Some(7));
    let page = app.get("/scim/v2/Users?count=1000").await;
    assert_eq!(page.body["itemsPerPage"].as_i64(), announced);
    assert_eq!(page.body["totalResults"], 9);
}

/// 20 users of about 10 KB under a 64 KiB budget: no page holds them all, and paging by
/// `startIndex`, by cursor and through `/.search` still returns each user exactly once.
async fn list_pages_stop_at_the_byte_budget(backend: Backend) {
    let settings = Settings {
        limits: Limits {
            list_byte_budget: 64 * 1024,
            ..Limits::default()
        },
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let padding = "p".repeat(10_000);
    let mut created = HashSet::new();
    for i in 0..20 {
        let id = app
            .create_user(json!({"userName": format!("b{i}@example.com"), "displayName": padding}))
            .await;
        created.insert(id);
    }
    let ids = |page: &Value| -> Vec<String> {
        page["Resources"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|u| u["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };

    // Index paging: each page stops early and says so through itemsPerPage.
    let mut seen = Vec::new();
    let mut start = 1;
    let mut pages = 0;
    while seen.len() < 20 && pages < 40 {
        let page = app
            .get(&format!("/scim/v2/Users?count=20&startIndex={start}"))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        assert_eq!(page.body["totalResults"], 20);
        let items = page.body["itemsPerPage"].as_u64().unwrap_or(0) as usize;
        assert!((1..20).contains(&items), "page of {items}");
        assert_eq!(ids(&page.body).len(), items);
        seen.extend(ids(&page.body));
        start += items;
        pages += 1;
    }
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), created);
    assert_eq!(seen.len(), 20);

    // Cursor paging: a truncated page still gives nextCursor.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..40 {
        let page = app
            .get(&format!("/scim/v2/Users?count=20&cursor={cursor}"))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        seen.extend(ids(&page.body));
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 20);
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), created);

    // Root search shares one budget across the types.
    let page = app
        .post(
            "/scim/v2/.search",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "count": 20}),
        )
        .await;
    let items = page.body["itemsPerPage"].as_u64().unwrap_or(0);
    assert!((1..20).contains(&items), "{:?}", page.body["itemsPerPage"]);
}
