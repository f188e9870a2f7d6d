//! Groups and memberships (RFC 7643 §4.2): create, read, PUT, delete, `user.groups`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error};

backend_tests!(
    create_group_with_members_shows_them_and_user_groups,
    duplicate_display_name_in_any_case_is_409,
    a_member_that_is_not_a_user_of_the_org_is_400_and_nothing_changes,
    put_replaces_members_and_keeps_unmentioned_attributes,
    deleting_a_group_or_a_user_removes_the_memberships,
    excluded_members_are_not_returned,
    another_orgs_group_is_404,
    root_search_spans_users_and_groups,
    a_users_groups_come_in_name_order_whatever_the_case,
    a_write_to_a_user_answers_with_its_groups_whether_or_not_it_changed_anything,
);

async fn a_write_to_a_user_answers_with_its_groups_whether_or_not_it_changed_anything(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_user(json!({"userName": "ann@example.com", "displayName": "Ann"}))
        .await;
    let group = create_group(
        &app,
        json!({"displayName": "Admins", "members": [{"value": ann}]}),
    )
    .await;
    let path = format!("/scim/v2/Users/{ann}");
    let changed = app
        .request(
            Method::PATCH,
            &path,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "Ann B"}]
            })),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    assert_eq!(changed.body["groups"][0]["value"], json!(group));
    // The same value again changes nothing and is not written; the answer is the same.
    let unchanged = app
        .put(
            &path,
            json!({"userName": "ann@example.com", "displayName": "Ann B"}),
        )
        .await;
    assert_eq!(unchanged.status, StatusCode::OK, "{:?}", unchanged.body);
    assert_eq!(
        unchanged.body["meta"]["version"],
        changed.body["meta"]["version"]
    );
    assert_eq!(unchanged.body["groups"][0]["display"], json!("Admins"));
}

async fn a_users_groups_come_in_name_order_whatever_the_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_user(json!({"userName": "ann@example.com"}))
        .await;
    for name in ["beta", "Gamma", "alpha", "Delta"] {
        create_group(
            &app,
            json!({"displayName": name, "members": [{"value": ann}]}),
        )
        .await;
    }
    let names = |body: &Value| -> Vec<String> {
        body["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| g["display"].as_str().expect("display").to_string())
            .collect()
    };
    let user = app.get(&format!("/scim/v2/Users/{ann}")).await;
    assert_eq!(names(&user.body), ["alpha", "beta", "Delta", "Gamma"]);
    let listed = app
        .get("/scim/v2/Users?filter=userName%20eq%20%22ann%40example.com%22")
        .await;
    assert_eq!(
        names(&listed.body["Resources"][0]),
        ["alpha", "beta", "Delta", "Gamma"]
    );
}

async fn root_search_spans_users_and_groups(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_user(json!({"userName": "ann@example.com", "displayName": "Team Ann"}))
        .await;
    app.create_user(json!({"userName": "bob@example.com", "displayName": "Bob"}))
        .await;
    let team = create_group(&app, json!({"displayName": "Team Blue"})).await;
    create_group(&app, json!({"displayName": "Other"})).await;
    let search = |body: Value| app.post("/scim/v2/.search", body);
    let both = search(
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                             "filter": "displayName sw \"team\""}),
    )
    .await;
    assert_eq!(both.status, StatusCode::OK, "{:?}", both.body);
    assert_eq!(both.body["totalResults"], 2);
    let ids: Vec<&str> = both.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [ann.as_str(), team.as_str()]);
    assert_eq!(both.body["Resources"][1]["meta"]["resourceType"], "Group");
    // Paging crosses from users into groups.
    let second = search(json!({"startIndex": 2, "count": 2, "attributes": ["displayName"]})).await;
    assert_eq!(second.body["totalResults"], 4);
    let names: Vec<&str> = second.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["displayName"].as_str().expect("displayName"))
        .collect();
    assert_eq!(names, ["Bob", "Team Blue"]);
    // userName exists only on users: groups simply do not match.
    let users_only = search(json!({"filter": "userName eq \"bob@example.com\""})).await;
    assert_eq!(users_only.body["totalResults"], 1);
    let neither = search(json!({"filter": "nosuch eq \"x\""})).await;
    assert_scim_error(&neither, 400, Some("invalidFilter"));
}

fn member_ids(group: &Value) -> Vec<String> {
    group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|x| x["value"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn create_group(app: &TestApp, body: Value) -> String {
    let response = app.post("/scim/v2/Groups", body).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    response.body["id"].as_str().expect("id").to_string()
}

async fn create_group_with_members_shows_them_and_user_groups(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_user(json!({"userName": "ann@example.com", "displayName": "Ann"}))
        .await;
    let bob = app
        .create_user(json!({"userName": "bob@example.com"}))
        .await;
    let response = app
        .post(
            "/scim/v2/Groups",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Admins",
                "externalId": "okta-123",
                "members": [{"value": ann, "display": "whatever"}, {"value": bob, "$ref": null}]
            }),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    let id = response.body["id"].as_str().expect("id").to_string();
    assert_eq!(
        response.header("location"),
        Some(format!("{}/scim/v2/Groups/{id}", app.address).as_str())
    );
    assert_eq!(
        response.body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:Group"])
    );
    assert_eq!(response.body["meta"]["resourceType"], "Group");
    assert_eq!(response.body["externalId"], "okta-123");
    assert_eq!(member_ids(&response.body), vec![ann.clone(), bob.clone()]);
    assert_eq!(response.body["members"][0]["display"], "Ann");
    assert_eq!(response.body["members"][1]["display"], "bob@example.com");

    let group = app.get(&format!("/scim/v2/Groups/{id}")).await;
    assert_eq!(member_ids(&group.body), vec![ann.clone(), bob]);
    let user = app.get(&format!("/scim/v2/Users/{ann}")).await;
    assert_eq!(user.body["groups"][0]["value"], id.as_str());
    assert_eq!(user.body["groups"][0]["display"], "Admins");
    assert_eq!(
        user.body["groups"][0]["$ref"],
        format!("{}/scim/v2/Groups/{id}", app.address)
    );
}

async fn duplicate_display_name_in_any_case_is_409(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    create_group(&app, json!({"displayName": "Engineering"})).await;
    let clash = app
        .post("/scim/v2/Groups", json!({"displayName": "ENGINEERING"}))
        .await;
    assert_scim_error(&clash, 409, Some("uniqueness"));
    let missing = app
        .post("/scim/v2/Groups", json!({"externalId": "x"}))
        .await;
    assert_scim_error(&missing, 400, Some("invalidValue"));
}

async fn a_member_that_is_not_a_user_of_the_org_is_400_and_nothing_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let other = app.other_org("globex").await;
    let stranger = app
        .request_as(
            &other,
            Method::POST,
            "/scim/v2/Users",
            Some(json!({"userName": "s@globex.com"})),
        )
        .await;
    let stranger = stranger.body["id"].as_str().expect("id").to_string();
    let ann = app
        .create_user(json!({"userName": "ann@example.com"}))
        .await;
    for bad in [
        stranger.clone(),
        uuid::Uuid::now_v7().to_string(),
        "bob".to_string(),
    ] {
        let response = app
            .post(
                "/scim/v2/Groups",
                json!({"displayName": "G", "members": [{"value": ann}, {"value": bad}]}),
            )
            .await;
        assert_scim_error(&response, 400, Some("invalidValue"));
        assert!(
            response.body["detail"]
                .as_str()
                .unwrap_or("")
                .contains(&bad)
        );
    }
    // Nothing was created: the name is still free.
    let id = create_group(
        &app,
        json!({"displayName": "G", "members": [{"value": ann}]}),
    )
    .await;
    let put = app
        .put(
            &format!("/scim/v2/Groups/{id}"),
            json!({"members": [{"value": stranger}]}),
        )
        .await;
    assert_scim_error(&put, 400, Some("invalidValue"));
    let group = app.get(&format!("/scim/v2/Groups/{id}")).await;
    assert_eq!(member_ids(&group.body), vec![ann]);
}

async fn put_replaces_members_and_keeps_unmentioned_attributes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_user(json!({"userName": "ann@example.com"}))
        .await;
    let bob = app
        .create_user(json!({"userName": "bob@example.com"}))
        .await;
    let id = create_group(
        &app,
        json!({"displayName": "Team", "externalId": "e1", "members": [{"value": ann}]}),
    )
    .await;
    let path = format!("/scim/v2/Groups/{id}");
    let put = app.put(&path, json!({"members": [{"value": bob}]})).await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert_eq!(member_ids(&put.body), vec![bob.clone()]);
    assert_eq!(put.body["displayName"], "Team");
    assert_eq!(put.body["externalId"], "e1");
    let renamed = app.put(&path, json!({"displayName": "Team 2"})).await;
    assert_eq!(renamed.body["displayName"], "Team 2");
    assert_eq!(
        member_ids(&renamed.body),
        vec![bob.clone()],
        "members not given are kept"
    );
    let user = app.get(&format!("/scim/v2/Users/{bob}")).await;
    assert_eq!(user.body["groups"][0]["display"], "Team 2");
    let ann_user = app.get(&format!("/scim/v2/Users/{ann}")).await;
    assert_eq!(ann_user.body["groups"], json!([]));
}

async fn deleting_a_group_or_a_user_removes_the_memberships(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_user(json!({"userName": "ann@example.com"}))
        .await;
    let bob = app
        .create_user(json!({"userName": "bob@example.com"}))
        .await;
    let g1 = create_group(
        &app,
        json!({"displayName": "One", "members": [{"value": ann}, {"value": bob}]}),
    )
    .await;
    let g2 = create_group(
        &app,
        json!({"displayName": "Two", "members": [{"value": ann}]}),
    )
    .await;
    let deleted = app
        .request(Method::DELETE, &format!("/scim/v2/Groups/{g2}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_scim_error(&app.get(&format!("/scim/v2/Groups/{g2}")).await, 404, None);
    let user = app.get(&format!("/scim/v2/Users/{ann}")).await;
    assert_eq!(user.body["groups"].as_array().map(Vec::len), Some(1));
    let deleted_user = app
        .request(Method::DELETE, &format!("/scim/v2/Users/{ann}"), None)
        .await;
    assert_eq!(deleted_user.status, StatusCode::NO_CONTENT);
    let group = app.get(&format!("/scim/v2/Groups/{g1}")).await;
    assert_eq!(member_ids(&group.body), vec![bob]);
}

async fn excluded_members_are_not_returned(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_user(json!({"userName": "ann@example.com"}))
        .await;
    let id = create_group(
        &app,
        json!({"displayName": "Big", "members": [{"value": ann}]}),
    )
    .await;
    let response = app
        .get(&format!("/scim/v2/Groups/{id}?excludedAttributes=members"))
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(response.body.get("members").is_none());
    assert_eq!(response.body["displayName"], "Big");
    let only_name = app
        .get(&format!("/scim/v2/Groups/{id}?attributes=displayName"))
        .await;
    assert!(only_name.body.get("members").is_none());
    let user = app
        .get(&format!("/scim/v2/Users/{ann}?excludedAttributes=groups"))
        .await;
    assert!(user.body.get("groups").is_none());
}

async fn another_orgs_group_is_404(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let other = app.other_org("globex").await;
    let id = create_group(&app, json!({"displayName": "Mine"})).await;
    let path = format!("/scim/v2/Groups/{id}");
    for method in [Method::GET, Method::DELETE] {
        let response = app.request_as(&other, method, &path, None).await;
        assert_scim_error(&response, 404, None);
    }
    let put = app
        .request_as(
            &other,
            Method::PUT,
            &path,
            Some(json!({"displayName": "Stolen"})),
        )
        .await;
    assert_scim_error(&put, 404, None);
    assert_eq!(app.get(&path).await.body["displayName"], "Mine");
}
