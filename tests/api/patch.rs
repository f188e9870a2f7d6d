//! PATCH over HTTP (RFC 7644 §3.5.2): a table of operations as Okta and Entra ID send them,
//! all-or-nothing failures, ETags, and group membership changes.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error};

backend_tests!(
    user_patch_table,
    a_failing_operation_changes_nothing,
    patch_with_a_stale_if_match_is_412,
    patch_can_set_a_password_without_returning_it,
    group_patch_adds_and_removes_members_both_ways,
    group_patch_rename_with_okta_id_and_204_or_200,
    group_patch_with_a_stranger_is_400_and_changes_nothing,
    retried_patches_that_change_nothing_keep_the_version,
);

async fn retried_patches_that_change_nothing_keep_the_version(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_user(json!({"userName": "ann@example.com"}))
        .await;
    let id = app
        .create_user(json!({"userName": "same@example.com", "emails": [{"value": "same@example.com", "type": "work"}]}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let again = app
        .request(Method::PATCH, &path, Some(patch_body(json!([
            {"op": "add", "path": "emails", "value": [{"value": "same@example.com", "type": "work"}]},
            {"op": "remove", "path": "phoneNumbers[type eq \"mobile\"]"}
        ]))))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["meta"]["version"], "W/\"1\"");
    let group = app
        .post(
            "/scim/v2/Groups",
            json!({"displayName": "G", "members": [{"value": ann}]}),
        )
        .await;
    let group_path = format!("/scim/v2/Groups/{}", group.body["id"].as_str().expect("id"));
    let add_again = app
        .request(
            Method::PATCH,
            &group_path,
            Some(patch_body(
                json!([{"op": "add", "path": "members", "value": [{"value": ann}]}]),
            )),
        )
        .await;
    assert_eq!(add_again.status, StatusCode::NO_CONTENT);
    assert_eq!(add_again.header("etag"), Some("W/\"1\""));
}

fn patch_body(operations: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
}

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async fn user_patch_table(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.define_attribute("good_blob").await;
    let base_user = json!({
        "userName": "pat@example.com",
        "displayName": "Pat",
        "name": {"givenName": "Pat", "familyName": "Smith"},
        "emails": [{"value": "pat@example.com", "type": "work", "primary": true}],
        "addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "Town"}],
        "phoneNumbers": [{"value": "555-1", "type": "mobile"}],
    });
    let department = format!("/{ENTERPRISE}/department");
    let manager = format!("/{ENTERPRISE}/manager/value");
    let employee_number = format!("/{ENTERPRISE}/employeeNumber");
    // (operations, JSON pointer, expected value at it after the PATCH)
    let cases: Vec<(Value, &str, Value)> = vec![
        (
            json!([{"op": "replace", "value": {"active": false}}]),
            "/active",
            json!(false),
        ),
        (
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
            "/active",
            json!(false),
        ),
        (
            json!([{"op": "replace", "path": "displayName", "value": "New"}]),
            "/displayName",
            json!("New"),
        ),
        (
            json!([{"op": "replace", "path": "name.givenName", "value": "G"}]),
            "/name/givenName",
            json!("G"),
        ),
        (
            json!([{"op": "replace", "path": "name.givenName", "value": "G"}]),
            "/name/familyName",
            json!("Smith"),
        ),
        (
            json!([{"op": "Replace", "value": {"name.givenName": "Dotted"}}]),
            "/name/givenName",
            json!("Dotted"),
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "w@x.com"}]),
            "/emails/0/value",
            json!("w@x.com"),
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq \"home\"].value", "value": "h@x.com"}]),
            "/emails/1",
            json!({"type": "home", "value": "h@x.com"}),
        ),
        (
            json!([{"op": "replace", "path": "addresses[type eq \"work\"].streetAddress", "value": "2 Side St"}]),
            "/addresses/0/streetAddress",
            json!("2 Side St"),
        ),
        (
            json!([{"op": "remove", "path": "phoneNumbers[type eq \"mobile\"]"}]),
            "/phoneNumbers",
            Value::Null,
        ),
        (
            json!([{"op": "add", "path": "phoneNumbers", "value": [{"value": "555-2", "type": "work"}]}]),
            "/phoneNumbers/1/value",
            json!("555-2"),
        ),
        (
            json!([{"op": "add", "path": "emails", "value": [{"value": "n@x.com", "type": "home", "primary": true}]}]),
            "/emails/0/primary",
            json!(false),
        ),
        (
            json!([{"op": "add", "path": "emails", "value": [{"value": "pat@example.com", "type": "work"}]}]),
            "/emails/1",
            Value::Null,
        ),
        (
            json!([{"op": "remove", "path": "emails[value eq \"nobody@x.com\"]"}]),
            "/emails/0/value",
            json!("pat@example.com"),
        ),
        (
            json!([{"op": "add", "path": format!("{ENTERPRISE}:department"), "value": "R&D"}]),
            &department,
            json!("R&D"),
        ),
        (
            json!([{"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": "mgr-42"}]),
            &manager,
            json!("mgr-42"),
        ),
        (
            json!([{"op": "Replace", "value": {format!("{ENTERPRISE}:employeeNumber"): "701"}}]),
            &employee_number,
            json!("701"),
        ),
        (
            json!([{"op": "add", "path": "urn:omni:params:1.0:UserAttribute:good_blob", "value": "yes"}]),
            "/urn:omni:params:1.0:UserAttribute/good_blob",
            json!("yes"),
        ),
        // A widely used Python client repeats the extension's URN inside its value.
        (
            json!([{"op": "add", "path": "urn:omni:params:1.0:UserAttribute",
                "value": {"schemas": ["urn:omni:params:1.0:UserAttribute"], "good_blob": "x"}}]),
            "/urn:omni:params:1.0:UserAttribute",
            json!({"good_blob": "x"}),
        ),
        (
            json!([{"op": "remove", "path": "name.familyName"}]),
            "/name/familyName",
            Value::Null,
        ),
        (
            json!([{"op": "remove", "path": "title"}]),
            "/title",
            Value::Null,
        ),
        (
            json!([{"op": "replace", "path": "userName", "value": "renamed@example.com"}]),
            "/userName",
            json!("renamed@example.com"),
        ),
    ];
    for (operations, pointer, want) in cases {
        let id = app.create_user(base_user.clone()).await;
        let path = format!("/scim/v2/Users/{id}");
        let response = app
            .request(Method::PATCH, &path, Some(patch_body(operations.clone())))
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{operations}: {:?}",
            response.body
        );
        let got = response
            .body
            .pointer(pointer)
            .cloned()
            .unwrap_or(Value::Null);
        assert_eq!(got, want, "{operations} at {pointer}: {}", response.body);
        let read = app.get(&path).await;
        assert_eq!(
            read.body.pointer(pointer).cloned().unwrap_or(Value::Null),
            want,
            "stored: {operations}"
        );
        app.request(Method::DELETE, &path, None).await;
    }
}

async fn a_failing_operation_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "atomic@example.com", "displayName": "Before"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let cases: Vec<(Value, &str)> = vec![
        (
            json!([{"op": "replace", "path": "displayName", "value": "After"},
                {"op": "remove"}]),
            "noTarget",
        ),
        (
            json!([{"op": "replace", "path": "displayName", "value": "After"},
                {"op": "replace", "path": "emails[type eq", "value": "x"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "displayName", "value": "After"},
                {"op": "replace", "path": "id", "value": "x"}]),
            "mutability",
        ),
        (
            json!([{"op": "replace", "path": "displayName", "value": "After"},
                {"op": "replace", "path": "active", "value": "maybe"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "nosuch", "value": 1}]),
            "invalidPath",
        ),
        (
            json!([{"op": "add", "path": "urn:omni:params:1.0:UserAttribute:undefined", "value": "x"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "replace", "path": "userName", "value": "not-an-email"}]),
            "invalidValue",
        ),
    ];
    for (operations, scim_type) in cases {
        let response = app
            .request(Method::PATCH, &path, Some(patch_body(operations.clone())))
            .await;
        assert_scim_error(&response, 400, Some(scim_type));
    }
    let read = app.get(&path).await;
    assert_eq!(read.body["displayName"], "Before");
    assert_eq!(read.body["meta"]["version"], "W/\"1\"");
    let not_json = app
        .raw(Method::PATCH, &path, "application/scim+json", b"{".to_vec())
        .await;
    assert_scim_error(&not_json, 400, Some("invalidSyntax"));
    let no_ops = app
        .request(
            Method::PATCH,
            &path,
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]})),
        )
        .await;
    assert_scim_error(&no_ops, 400, Some("invalidSyntax"));
    let unknown = app
        .request(
            Method::PATCH,
            &format!("/scim/v2/Users/{}", uuid::Uuid::now_v7()),
            Some(patch_body(
                json!([{"op": "replace", "path": "displayName", "value": "x"}]),
            )),
        )
        .await;
    assert_scim_error(&unknown, 404, None);
}

async fn patch_with_a_stale_if_match_is_412(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "etag@example.com"}))
        .await;
    let url = format!("{}/scim/v2/Users/{id}", app.address);
    let send = |etag: &'static str| {
        app.client
            .patch(&url)
            .bearer_auth(&app.token)
            .header("if-match", etag)
            .json(&patch_body(
                json!([{"op": "replace", "path": "displayName", "value": etag}]),
            ))
            .send()
    };
    assert_eq!(
        send("W/\"1\"").await.expect("send").status(),
        StatusCode::OK
    );
    assert_eq!(
        send("W/\"1\"").await.expect("send").status(),
        StatusCode::PRECONDITION_FAILED
    );
}

async fn patch_can_set_a_password_without_returning_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_user(json!({"userName": "pw@example.com"})).await;
    let response = app
        .request(
            Method::PATCH,
            &format!("/scim/v2/Users/{id}"),
            Some(patch_body(
                json!([{"op": "replace", "path": "password", "value": "n3w-secret"}]),
            )),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert!(!response.body.to_string().contains("n3w-secret"));
    let org = app.store.store.org_by_slug("acme").await.expect("org").id;
    let stored = app
        .store
        .store
        .users()
        .get(org, uuid::Uuid::parse_str(&id).expect("uuid"))
        .await
        .expect("user");
    assert!(
        stored
            .password_hash
            .expect("hash")
            .starts_with("$argon2id$")
    );
    assert!(!stored.doc.map().unwrap().contains_key("password"));
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

async fn group_patch_adds_and_removes_members_both_ways(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_user(json!({"userName": "ann@example.com"}))
        .await;
    let bob = app
        .create_user(json!({"userName": "bob@example.com"}))
        .await;
    let cat = app
        .create_user(json!({"userName": "cat@example.com"}))
        .await;
    let created = app
        .post("/scim/v2/Groups", json!({"displayName": "Crew"}))
        .await;
    let id = created.body["id"].as_str().expect("id").to_string();
    let path = format!("/scim/v2/Groups/{id}");
    let patch = |ops: Value| app.request(Method::PATCH, &path, Some(patch_body(ops)));

    // Entra: capitalised op, "$ref": null inside members; a repeat is a no-op.
    for _ in 0..2 {
        let add = patch(json!([{"op": "Add", "path": "members",
            "value": [{"value": ann, "$ref": null}, {"value": bob, "display": "Bob"}]}]))
        .await;
        assert_eq!(add.status, StatusCode::NO_CONTENT, "{:?}", add.body);
    }
    assert_eq!(
        member_ids(&app.get(&path).await.body),
        vec![ann.clone(), bob.clone()]
    );
    // Okta: remove one member by filter path.
    let okta =
        patch(json!([{"op": "remove", "path": format!("members[value eq \"{ann}\"]")}])).await;
    assert_eq!(okta.status, StatusCode::NO_CONTENT);
    assert_eq!(member_ids(&app.get(&path).await.body), vec![bob.clone()]);
    // Entra: remove by value array; removing an absent member succeeds.
    let entra = patch(
        json!([{"op": "Remove", "path": "members", "value": [{"value": bob}, {"value": ann}]}]),
    )
    .await;
    assert_eq!(entra.status, StatusCode::NO_CONTENT);
    assert_eq!(member_ids(&app.get(&path).await.body), Vec::<String>::new());
    // Replace all, then remove all.
    let replace = patch(
        json!([{"op": "replace", "path": "members", "value": [{"value": cat}, {"value": ann}]}]),
    )
    .await;
    assert_eq!(replace.status, StatusCode::NO_CONTENT);
    let mut members = member_ids(&app.get(&path).await.body);
    members.sort();
    let mut want = vec![cat.clone(), ann.clone()];
    want.sort();
    assert_eq!(members, want);
    let user = app.get(&format!("/scim/v2/Users/{cat}")).await;
    assert_eq!(user.body["groups"][0]["value"], id.as_str());
    let clear = patch(json!([{"op": "remove", "path": "members"}])).await;
    assert_eq!(clear.status, StatusCode::NO_CONTENT);
    assert_eq!(member_ids(&app.get(&path).await.body), Vec::<String>::new());
}

async fn group_patch_rename_with_okta_id_and_204_or_200(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .post("/scim/v2/Groups", json!({"displayName": "Old"}))
        .await;
    let id = created.body["id"].as_str().expect("id").to_string();
    let path = format!("/scim/v2/Groups/{id}");
    let rename = app
        .request(
            Method::PATCH,
            &path,
            Some(patch_body(
                json!([{"op": "replace", "value": {"id": id, "displayName": "New"}}]),
            )),
        )
        .await;
    assert_eq!(rename.status, StatusCode::NO_CONTENT);
    assert!(rename.header("etag").is_some());
    assert_eq!(app.get(&path).await.body["displayName"], "New");
    let other_id = app
        .request(Method::PATCH, &path, Some(patch_body(json!([{"op": "replace", "value": {"id": uuid::Uuid::now_v7().to_string(), "displayName": "X"}}]))))
        .await;
    assert_scim_error(&other_id, 400, Some("mutability"));
    let with_body = app
        .request(
            Method::PATCH,
            &format!("{path}?excludedAttributes=members"),
            Some(patch_body(
                json!([{"op": "replace", "path": "displayName", "value": "Newer"}]),
            )),
        )
        .await;
    assert_eq!(with_body.status, StatusCode::OK);
    assert_eq!(with_body.body["displayName"], "Newer");
    assert!(with_body.body.get("members").is_none());
}

async fn group_patch_with_a_stranger_is_400_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_user(json!({"userName": "ann@example.com"}))
        .await;
    let created = app
        .post("/scim/v2/Groups", json!({"displayName": "Safe"}))
        .await;
    let id = created.body["id"].as_str().expect("id").to_string();
    let path = format!("/scim/v2/Groups/{id}");
    let stranger = uuid::Uuid::now_v7().to_string();
    let response = app
        .request(
            Method::PATCH,
            &path,
            Some(patch_body(json!([
                {"op": "replace", "path": "displayName", "value": "Changed"},
                {"op": "add", "path": "members", "value": [{"value": ann}, {"value": stranger}]}
            ]))),
        )
        .await;
    assert_scim_error(&response, 400, Some("invalidValue"));
    assert!(
        response.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains(&stranger)
    );
    let group = app.get(&path).await;
    assert_eq!(group.body["displayName"], "Safe");
    assert_eq!(member_ids(&group.body), Vec::<String>::new());
    assert_eq!(group.body["meta"]["version"], "W/\"1\"");
}
