//! Listing and searching users over HTTP (RFC 7644 §3.4.2-3), cursor pages (RFC 9865) and
//! `attributes` / `excludedAttributes` on every read.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error};

backend_tests!(
    list_returns_a_list_response_with_integer_counts_in_creation_order,
    filter_by_user_name_is_case_insensitive_and_a_miss_is_an_empty_list,
    index_paging_visits_every_user_once,
    a_deep_page_keeps_its_filter_and_its_order,
    cursor_paging_visits_every_user_once_and_ends_without_next_cursor,
    previous_cursors_lead_back_page_by_page_to_the_first,
    a_tampered_a_foreign_and_an_expired_cursor_are_refused,
    count_zero_returns_only_the_total,
    a_user_name_lookup_counts_its_match_whatever_the_page,
    search_post_takes_the_same_parameters,
    bad_filters_are_400_invalid_filter,
    attributes_and_excluded_attributes_apply_to_every_read,
    total_results_follows_creates_deletes_and_organizations,
    every_user_of_a_page_carries_the_groups_a_read_by_id_shows,
);

async fn seed(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            app.create_user(json!({
                "userName": format!("user{i:02}@example.com"),
                "displayName": format!("User {i:02}"),
                "externalId": format!("ext-{i:02}"),
                "title": if i % 2 == 0 { "even" } else { "odd" },
            }))
            .await,
        );
    }
    ids
}

fn ids_of(body: &Value) -> Vec<String> {
    body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

async fn list_returns_a_list_response_with_integer_counts_in_creation_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = seed(&app, 5).await;
    let response = app.get("/scim/v2/Users").await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(
        response.header("content-type"),
        Some("application/scim+json")
    );
    let body = &response.body;
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(body["totalResults"], json!(5));
    assert_eq!(body["startIndex"], json!(1));
    assert_eq!(body["itemsPerPage"], json!(5));
    assert_eq!(ids_of(body), ids, "default order is creation order");
    assert_eq!(body["Resources"][0]["meta"]["resourceType"], "User");
}

async fn filter_by_user_name_is_case_insensitive_and_a_miss_is_an_empty_list(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = seed(&app, 3).await;
    let hit = app
        .get("/scim/v2/Users?filter=userName%20eq%20%22USER01@Example.com%22")
        .await;
    assert_eq!(hit.status, StatusCode::OK, "{:?}", hit.body);
    assert_eq!(ids_of(&hit.body), vec![ids[1].clone()]);
    assert_eq!(hit.body["totalResults"], json!(1));
    // Okta's and Entra's connection test: a userName that does not exist.
    let miss = app
        .get("/scim/v2/Users?filter=userName+eq+%22nobody%40example.com%22&startIndex=1&count=100")
        .await;
    assert_eq!(miss.status, StatusCode::OK);
    assert_eq!(miss.body["totalResults"], json!(0));
    assert_eq!(miss.body["itemsPerPage"], json!(0));
    assert_eq!(miss.body["Resources"], json!([]));
    let by_external = app
        .get("/scim/v2/Users?filter=externalId%20eq%20%22ext-02%22")
        .await;
    assert_eq!(ids_of(&by_external.body), vec![ids[2].clone()]);
}

async fn index_paging_visits_every_user_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = seed(&app, 7).await;
    let mut seen = Vec::new();
    for start in [1, 4, 7] {
        let page = app
            .get(&format!("/scim/v2/Users?startIndex={start}&count=3"))
            .await;
        assert_eq!(page.body["startIndex"], json!(start));
        assert_eq!(page.body["totalResults"], json!(7));
        seen.extend(ids_of(&page.body));
    }
    assert_eq!(seen, ids);
    let past = app.get("/scim/v2/Users?startIndex=50&count=3").await;
    assert_eq!(past.body["itemsPerPage"], json!(0));
}

async fn a_deep_page_keeps_its_filter_and_its_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = seed(&app, 7).await;
    // The even users (0, 2, 4, 6) by displayName, descending: 6, 4, 2, 0.
    let page = app
        .get(
            "/scim/v2/Users?filter=title%20eq%20%22even%22&sortBy=displayName\
             &sortOrder=descending&startIndex=2&count=2",
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    assert_eq!(page.body["totalResults"], json!(4));
    assert_eq!(page.body["startIndex"], json!(2));
    assert_eq!(ids_of(&page.body), vec![ids[4].clone(), ids[2].clone()]);
    // The default order past the first page, with the attributes every page returns.
    let page = app.get("/scim/v2/Users?startIndex=6&count=5").await;
    assert_eq!(ids_of(&page.body), vec![ids[5].clone(), ids[6].clone()]);
    assert_eq!(
        page.body["Resources"][1]["userName"],
        json!("user06@example.com")
    );
    assert_eq!(page.body["Resources"][1]["groups"], json!([]));
}

async fn cursor_paging_visits_every_user_once_and_ends_without_next_cursor(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = seed(&app, 7).await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..10 {
        let page = app
            .get(&format!("/scim/v2/Users?count=3&cursor={cursor}"))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        seen.extend(ids_of(&page.body));
        match page.body.get("nextCursor").and_then(Value::as_str) {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let bad = app.get("/scim/v2/Users?cursor=bogus").await;
    assert_scim_error(&bad, 400, Some("invalidCursor"));
}

/// A page of three users after `cursor` ("" for the first), with `query` appended.
async fn cursor_page(app: &TestApp, query: &str, cursor: &str) -> Value {
    let page = app
        .get(&format!("/scim/v2/Users?count=3&cursor={cursor}{query}"))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    page.body
}

fn cursor_of<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

async fn previous_cursors_lead_back_page_by_page_to_the_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = seed(&app, 7).await;
    let first = cursor_page(&app, "", "").await;
    assert_eq!(ids_of(&first), ids[0..3]);
    assert!(cursor_of(&first, "previousCursor").is_none(), "{first}");
    let second = cursor_page(&app, "", cursor_of(&first, "nextCursor").unwrap()).await;
    assert_eq!(ids_of(&second), ids[3..6]);
    let third = cursor_page(&app, "", cursor_of(&second, "nextCursor").unwrap()).await;
    assert_eq!(ids_of(&third), ids[6..7]);
    assert!(cursor_of(&third, "nextCursor").is_none(), "{third}");

    // Back from the last page: the pages come again, the first one without previousCursor.
    let back = cursor_page(&app, "", cursor_of(&third, "previousCursor").unwrap()).await;
    assert_eq!(ids_of(&back), ids[3..6]);
    let back = cursor_page(&app, "", cursor_of(&back, "previousCursor").unwrap()).await;
    assert_eq!(ids_of(&back), ids[0..3]);
    assert!(cursor_of(&back, "previousCursor").is_none(), "{back}");
    // And forward again from there.
    let again = cursor_page(&app, "", cursor_of(&back, "nextCursor").unwrap()).await;
    assert_eq!(ids_of(&again), ids[3..6]);
    // A filter applies to every page, backwards too.
    let even = "&filter=title%20eq%20%22even%22";
    let page = cursor_page(&app, even, "").await;
    let next = cursor_page(&app, even, cursor_of(&page, "nextCursor").unwrap()).await;
    assert_eq!(ids_of(&next), [ids[6].as_str()]);
    let back = cursor_page(&app, even, cursor_of(&next, "previousCursor").unwrap()).await;
    assert_eq!(ids_of(&back), [ids[0].as_str(), &ids[2], &ids[4]]);
}

async fn a_tampered_a_foreign_and_an_expired_cursor_are_refused(backend: Backend) {
    let settings = scimd::config::Settings {
        cursor_timeout: std::time::Duration::from_secs(1),
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    seed(&app, 4).await;
    let first = cursor_page(&app, "", "").await;
    let next = cursor_of(&first, "nextCursor").unwrap().to_string();
    // One character changed (another unreserved one), anywhere in the text.
    for at in [0, next.len() / 2, next.len() - 1] {
        let mut tampered = next.clone().into_bytes();
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let response = app
            .get(&format!("/scim/v2/Users?count=3&cursor={tampered}"))
            .await;
        assert_scim_error(&response, 400, Some("invalidCursor"));
    }
    // The cursor of another query (a filter added) or of another organization.
    let filtered = app
        .get(&format!(
            "/scim/v2/Users?count=3&cursor={next}&filter=title%20eq%20%22odd%22"
        ))
        .await;
    assert_scim_error(&filtered, 400, Some("invalidCursor"));
    let other = app.other_org("umbrella").await;
    let foreign = app
        .request_as(
            &other,
            Method::GET,
            &format!("/scim/v2/Users?count=3&cursor={next}"),
            None,
        )
        .await;
    assert_scim_error(&foreign, 400, Some("invalidCursor"));
    // Past cursorTimeout (1 s here), the same cursor has expired.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let expired = app
        .get(&format!("/scim/v2/Users?count=3&cursor={next}"))
        .await;
    assert_scim_error(&expired, 400, Some("expiredCursor"));
    let config = app.get("/scim/v2/ServiceProviderConfig").await.body;
    assert_eq!(config["pagination"]["cursorTimeout"], 1);
}

async fn count_zero_returns_only_the_total(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    seed(&app, 4).await;
    let response = app.get("/scim/v2/Users?count=0").await;
    assert_eq!(response.body["totalResults"], json!(4));
    assert_eq!(response.body["itemsPerPage"], json!(0));
    assert_eq!(response.body["Resources"], json!([]));
}

/// A filter that pins a unique key reads one row at most, without a count statement: its
/// total must still be the match whatever the page asks for (RFC 7644 §3.4.2.4).
async fn a_user_name_lookup_counts_its_match_whatever_the_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = seed(&app, 3).await;
    let lookup = "/scim/v2/Users?filter=userName%20eq%20%22user02%40example.com%22";
    // (query after the filter, totalResults, the ids returned)
    let cases: [(&str, i64, Vec<String>); 5] = [
        ("", 1, vec![ids[2].clone()]),
        ("&count=1", 1, vec![ids[2].clone()]),
        ("&count=0", 1, vec![]),
        ("&startIndex=2", 1, vec![]),
        (
            "&startIndex=1&count=1&attributes=userName",
            1,
            vec![ids[2].clone()],
        ),
    ];
    for (page, total, returned) in cases {
        let response = app.get(&format!("{lookup}{page}")).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{page}: {:?}",
            response.body
        );
        assert_eq!(response.body["totalResults"], json!(total), "{page}");
        assert_eq!(ids_of(&response.body), returned, "{page}");
        assert_eq!(
            response.body["itemsPerPage"],
            json!(returned.len()),
            "{page}"
        );
    }
    let miss = app
        .get("/scim/v2/Users?filter=userName%20eq%20%22nobody%40example.com%22&count=0")
        .await;
    assert_eq!(miss.body["totalResults"], json!(0));
    // `and` with another condition still pins one row: a second condition that fails
    // leaves nothing to count.
    let and_miss = app
        .get(&format!(
            "{lookup}%20and%20externalId%20eq%20%22not-ext-02%22"
        ))
        .await;
    assert_eq!(and_miss.body["totalResults"], json!(0));
    assert_eq!(and_miss.body["Resources"], json!([]));
}

async fn search_post_takes_the_same_parameters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = seed(&app, 6).await;
    let response = app
        .post(
            "/scim/v2/Users/.search",
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "title eq \"even\"",
                "attributes": ["userName"],
                "sortBy": "userName",
                "sortOrder": "descending",
                "startIndex": 1,
                "count": 2
            }),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.body["totalResults"], json!(3));
    assert_eq!(ids_of(&response.body), vec![ids[4].clone(), ids[2].clone()]);
    let first = &response.body["Resources"][0];
    let keys: HashSet<&str> = first
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, HashSet::from(["id", "schemas", "userName"]));
}

async fn bad_filters_are_400_invalid_filter(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for filter in [
        "userName%20zz%20%22x%22",
        "userName%20eq",
        "(((userName%20eq%20%22x%22",
        "nosuchattribute%20eq%20%22x%22",
        &"(".repeat(5000),
    ] {
        let response = app.get(&format!("/scim/v2/Users?filter={filter}")).await;
        assert_scim_error(&response, 400, Some("invalidFilter"));
    }
}

async fn attributes_and_excluded_attributes_apply_to_every_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .post(
            "/scim/v2/Users?attributes=userName",
            json!({"userName": "proj@example.com", "displayName": "P", "name": {"givenName": "G", "familyName": "F"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let keys: HashSet<String> = created
        .body
        .as_object()
        .expect("object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys,
        HashSet::from(["id".into(), "schemas".into(), "userName".into()])
    );
    let id = created.body["id"].as_str().expect("id");

    let sub = app
        .get(&format!("/scim/v2/Users/{id}?attributes=name.givenName"))
        .await;
    assert_eq!(sub.body["name"], json!({"givenName": "G"}));
    assert!(sub.body.get("displayName").is_none());

    let excluded = app
        .get(&format!(
            "/scim/v2/Users/{id}?excludedAttributes=emails,meta,name"
        ))
        .await;
    assert!(excluded.body.get("emails").is_none());
    assert!(excluded.body.get("meta").is_none());
    assert!(excluded.body.get("name").is_none());
    assert_eq!(excluded.body["displayName"], "P");
    assert_eq!(excluded.body["id"], id);

    let put = app
        .put(
            &format!("/scim/v2/Users/{id}?excludedAttributes=name"),
            json!({"userName": "proj@example.com"}),
        )
        .await;
    assert!(put.body.get("name").is_none());
    assert_eq!(put.body["displayName"], "P");
}

/// An unfiltered list's totalResults comes from a count the database keeps per organization;
/// it must follow every create and delete, count no other organization's users, and agree
/// with a filtered count (which still counts rows).
async fn total_results_follows_creates_deletes_and_organizations(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let total = |body: &Value| body["totalResults"].as_i64().expect("totalResults");
    // A full page (count=1) cannot give the total itself, so the kept count is used.
    assert_eq!(total(&app.get("/scim/v2/Users?count=1").await.body), 0);
    let ids = seed(&app, 5).await;
    let other = app.other_org("globex").await;
    for i in 0..2 {
        let created = app
            .request_as(
                &other,
                Method::POST,
                "/scim/v2/Users",
                Some(json!({"userName": format!("g{i}@globex.example")})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
    }
    assert_eq!(total(&app.get("/scim/v2/Users?count=1").await.body), 5);
    let deleted = app
        .request(Method::DELETE, &format!("/scim/v2/Users/{}", ids[0]), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    // A failed create (taken userName) changes nothing.
    let taken = app
        .post("/scim/v2/Users", json!({"userName": "user01@example.com"}))
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert_eq!(total(&app.get("/scim/v2/Users?count=1").await.body), 4);
    assert_eq!(total(&app.get("/scim/v2/Users?count=0").await.body), 4);
    let filtered = app.get("/scim/v2/Users?count=1&filter=userName%20pr").await;
    assert_eq!(total(&filtered.body), 4);
    let theirs = app
        .request_as(&other, Method::GET, "/scim/v2/Users?count=1", None)
        .await;
    assert_eq!(total(&theirs.body), 2);
}

/// A page's users carry their groups as a read of each by id does (RFC 7643 §4.1.2), in
/// name order, whether the page reads them with its rows or after them for the whole page:
/// users in two groups, in one, in none, on first, deep, cursor and filtered pages.
async fn every_user_of_a_page_carries_the_groups_a_read_by_id_shows(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ids = seed(&app, 7).await;
    let member = |i: usize| json!({"value": ids[i]});
    for (name, members) in [
        ("zeta", vec![member(0), member(1), member(4)]),
        ("Alpha", vec![member(1), member(4), member(6)]),
        ("mid", vec![member(4)]),
    ] {
        let created = app
            .post(
                "/scim/v2/Groups",
                json!({"displayName": name, "members": members}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    }
    let mut by_id = std::collections::HashMap::new();
    for id in &ids {
        let user = app.get(&format!("/scim/v2/Users/{id}")).await;
        by_id.insert(id.clone(), user.body["groups"].clone());
    }
    let names = |groups: &Value| -> Vec<String> {
        groups
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| g["display"].as_str().expect("display").to_string())
            .collect()
    };
    assert_eq!(names(&by_id[&ids[4]]), ["Alpha", "mid", "zeta"]);
    assert_eq!(names(&by_id[&ids[0]]), ["zeta"]);
    assert!(names(&by_id[&ids[2]]).is_empty());
    let cursor_page = app.get("/scim/v2/Users?cursor=&count=4").await;
    for path in [
        "/scim/v2/Users?count=100",
        "/scim/v2/Users?startIndex=3&count=4",
        "/scim/v2/Users?filter=title%20eq%20%22even%22",
        "/scim/v2/Users?filter=userName%20eq%20%22user04@example.com%22",
    ] {
        let page = app.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {:?}", page.body);
        let resources = page.body["Resources"].as_array().expect("Resources");
        assert!(!resources.is_empty(), "{path}");
        for user in resources {
            let id = user["id"].as_str().expect("id");
            assert_eq!(user["groups"], by_id[id], "{path}: user {id}");
        }
    }
    assert_eq!(cursor_page.status, StatusCode::OK, "{:?}", cursor_page.body);
    for user in cursor_page.body["Resources"].as_array().expect("Resources") {
        let id = user["id"].as_str().expect("id");
        assert_eq!(user["groups"], by_id[id], "cursor page: user {id}");
    }
}
