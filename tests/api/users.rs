//! Users: create, read and the reference's merging PUT.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error};

backend_tests!(
    post_creates_a_user_with_location_and_the_reference_shape,
    get_returns_the_user_and_404_for_unknown_or_malformed_ids,
    reference_put_sets_given_attributes_and_keeps_the_rest,
    put_may_rename_to_a_free_user_name_and_refuses_a_taken_one,
    duplicate_user_name_in_any_case_is_a_409_uniqueness,
    put_and_post_require_an_email_user_name,
    undefined_user_attribute_is_refused_and_null_clears_a_defined_one,
    password_is_stored_but_never_returned,
    core_attributes_are_stored_and_returned,
    read_only_attributes_in_a_put_body_are_ignored,
    concurrent_puts_setting_different_attributes_all_survive,
    api_prefix_and_lowercase_resource_name_serve_the_same_users,
    put_on_an_unknown_user_is_404_and_creates_nothing,
);

async fn post_creates_a_user_with_location_and_the_reference_shape(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.define_attribute("good_blob").await;
    let response = app
        .post(
            "/scim/v2/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "blob.ross@blobsrus.co",
                "displayName": "Blob Ross",
                "urn:omni:params:1.0:UserAttribute": {"good_blob": "yes"}
            }),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    assert_eq!(
        response.header("content-type"),
        Some("application/scim+json")
    );
    let body = &response.body;
    let id = body["id"].as_str().expect("id");
    assert!(uuid::Uuid::parse_str(id).is_ok());
    let location = response.header("location").expect("Location header");
    assert_eq!(location, format!("{}/scim/v2/Users/{id}", app.address));
    assert_eq!(body["meta"]["location"], location);
    assert_eq!(body["userName"], "blob.ross@blobsrus.co");
    assert_eq!(body["displayName"], "Blob Ross");
    assert_eq!(body["active"], true);
    assert_eq!(
        body["emails"],
        json!([{"primary": true, "value": "blob.ross@blobsrus.co"}])
    );
    assert_eq!(body["groups"], json!([]));
    assert_eq!(body["meta"]["resourceType"], "User");
    assert_eq!(body["meta"]["created"], body["meta"]["lastModified"]);
    let created = body["meta"]["created"].as_str().expect("created");
    assert!(chrono::DateTime::parse_from_rfc3339(created).is_ok());
    assert_eq!(created.len(), "2024-12-03T23:13:14.109Z".len(), "{created}");
    assert!(created.ends_with('Z'));
    assert_eq!(body["meta"]["version"], "W/\"1\"");
    assert_eq!(response.header("etag"), Some("W/\"1\""));
    assert_eq!(
        body["urn:omni:params:1.0:UserAttribute"],
        json!({"good_blob": "yes"})
    );
    assert_eq!(
        body["urn:omni:params:scim:schemas:extension:user:2.0"],
        json!({"lastLogin": null})
    );
    assert!(
        body["schemas"]
            .as_array()
            .expect("schemas")
            .contains(&json!("urn:ietf:params:scim:schemas:core:2.0:User"))
    );
}

async fn get_returns_the_user_and_404_for_unknown_or_malformed_ids(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "a@example.com", "displayName": "A"}))
        .await;
    let response = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["id"], id.as_str());
    assert_eq!(response.body["displayName"], "A");
    assert_eq!(response.header("etag"), Some("W/\"1\""));
    assert_eq!(response.header("cache-control"), Some("no-store"));

    let unknown = app
        .get(&format!("/scim/v2/Users/{}", uuid::Uuid::now_v7()))
        .await;
    assert_scim_error(&unknown, 404, None);
    let malformed = app.get("/scim/v2/Users/not-a-uuid").await;
    assert_scim_error(&malformed, 404, None);
}

async fn reference_put_sets_given_attributes_and_keeps_the_rest(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.define_attribute("good_blob").await;
    let id = app
        .create_user(json!({"userName": "blob.ross@blobsrus.co"}))
        .await;

    // The reference's exact request (001_…txt).
    let response = app
        .put(
            &format!("/api/scim/v2/users/{id}"),
            json!({
                "userName": "blob.ross@blobsrus.co",
                "displayName": "Blob Ross",
                "urn:omni:params:1.0:UserAttribute": {"good_blob": "yes"}
            }),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    let body = &response.body;
    for key in [
        "active",
        "displayName",
        "emails",
        "groups",
        "id",
        "meta",
        "schemas",
        "userName",
        "urn:omni:params:1.0:UserAttribute",
    ] {
        assert!(
            body.get(key).is_some(),
            "reference response has {key}: {body}"
        );
    }
    assert_eq!(body["active"], true);
    assert_eq!(body["displayName"], "Blob Ross");
    assert_eq!(
        body["emails"],
        json!([{"primary": true, "value": "blob.ross@blobsrus.co"}])
    );
    assert_eq!(body["groups"], json!([]));
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["meta"]["resourceType"], "User");
    assert_eq!(body["userName"], "blob.ross@blobsrus.co");
    assert_eq!(
        body["urn:omni:params:1.0:UserAttribute"],
        json!({"good_blob": "yes"})
    );
    assert_eq!(body["meta"]["version"], "W/\"2\"");

    // A second PUT with only userName leaves displayName and the attribute as they were.
    let second = app
        .put(
            &format!("/scim/v2/users/{id}"),
            json!({"userName": "blob.ross@blobsrus.co"}),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body["displayName"], "Blob Ross");
    assert_eq!(
        second.body["urn:omni:params:1.0:UserAttribute"],
        json!({"good_blob": "yes"})
    );
    let read = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(read.body["displayName"], "Blob Ross");
    assert_eq!(
        read.body["urn:omni:params:1.0:UserAttribute"],
        json!({"good_blob": "yes"})
    );
    assert_eq!(read.body["meta"]["created"], body["meta"]["created"]);
}

async fn put_may_rename_to_a_free_user_name_and_refuses_a_taken_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "old@example.com", "displayName": "D"}))
        .await;
    app.create_user(json!({"userName": "taken@example.com"}))
        .await;

    let renamed = app
        .put(
            &format!("/scim/v2/Users/{id}"),
            json!({"userName": "new@example.com"}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK);
    assert_eq!(renamed.body["userName"], "new@example.com");
    assert_eq!(renamed.body["emails"][0]["value"], "new@example.com");
    assert_eq!(renamed.body["displayName"], "D");

    let clash = app
        .put(
            &format!("/scim/v2/Users/{id}"),
            json!({"userName": "TAKEN@example.com", "displayName": "X"}),
        )
        .await;
    assert_scim_error(&clash, 409, Some("uniqueness"));
    let after = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(after.body["userName"], "new@example.com");
    assert_eq!(
        after.body["displayName"], "D",
        "a refused PUT changes nothing"
    );

    // The old name is free again.
    app.create_user(json!({"userName": "old@example.com"}))
        .await;
}

async fn duplicate_user_name_in_any_case_is_a_409_uniqueness(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(json!({"userName": "Case@Example.com"}))
        .await;
    for name in ["Case@Example.com", "case@example.com", "CASE@EXAMPLE.COM"] {
        let response = app.post("/scim/v2/Users", json!({"userName": name})).await;
        assert_scim_error(&response, 409, Some("uniqueness"));
    }
}

async fn put_and_post_require_an_email_user_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "valid@example.com"}))
        .await;
    let bad_bodies = [
        json!({"displayName": "no userName"}),
        json!({"userName": ""}),
        json!({"userName": "not-an-email"}),
        json!({"userName": 42}),
        json!({"userName": null}),
    ];
    for body in bad_bodies {
        let post = app.post("/scim/v2/Users", body.clone()).await;
        assert_scim_error(&post, 400, Some("invalidValue"));
        let put = app.put(&format!("/scim/v2/Users/{id}"), body.clone()).await;
        assert_scim_error(&put, 400, Some("invalidValue"));
    }
    let after = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(after.body["userName"], "valid@example.com");
    assert_eq!(after.body["meta"]["version"], "W/\"1\"");
}

async fn undefined_user_attribute_is_refused_and_null_clears_a_defined_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.define_attribute("good_blob").await;
    app.define_attribute("team").await;
    let id = app
        .create_user(json!({
            "userName": "u@example.com",
            "urn:omni:params:1.0:UserAttribute": {"good_blob": "yes", "team": "red"}
        }))
        .await;
    let undefined = app
        .put(
            &format!("/scim/v2/Users/{id}"),
            json!({"userName": "u@example.com", "urn:omni:params:1.0:UserAttribute": {"nope": "x"}}),
        )
        .await;
    assert_scim_error(&undefined, 400, Some("invalidValue"));
    assert!(
        undefined.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("nope")
    );

    let cleared = app
        .put(
            &format!("/scim/v2/Users/{id}"),
            json!({"userName": "u@example.com", "urn:omni:params:1.0:UserAttribute": {"team": null}}),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert_eq!(
        cleared.body["urn:omni:params:1.0:UserAttribute"],
        json!({"good_blob": "yes"})
    );

    let on_create = app
        .post(
            "/scim/v2/Users",
            json!({"userName": "v@example.com", "urn:omni:params:1.0:UserAttribute": {"nope": "x"}}),
        )
        .await;
    assert_scim_error(&on_create, 400, Some("invalidValue"));

    // PATCH: a key named in any case is checked; a PATCH that does not name the schema keeps
    // the defined keys already stored.
    let patch = |operations: Value| {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": operations})
    };
    let path = format!("/scim/v2/Users/{id}");
    let patched = |body: Value| app.request(reqwest::Method::PATCH, &path, Some(body));
    let shouted = patched(patch(json!([{"op": "add",
        "value": {"URN:OMNI:PARAMS:1.0:USERATTRIBUTE": {"nope": "x"}}}])))
    .await;
    assert_scim_error(&shouted, 400, Some("invalidValue"));
    let other = patched(patch(
        json!([{"op": "replace", "path": "displayName", "value": "U"}]),
    ))
    .await;
    assert_eq!(other.status, StatusCode::OK, "{:?}", other.body);
    assert_eq!(
        other.body["urn:omni:params:1.0:UserAttribute"],
        json!({"good_blob": "yes"})
    );
}

async fn password_is_stored_but_never_returned(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .post(
            "/scim/v2/Users",
            json!({"userName": "p@example.com", "password": "s3cret!"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED);
    assert!(response.body.get("password").is_none());
    let id = response.body["id"].as_str().expect("id").to_string();
    let read = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert!(read.body.get("password").is_none());
    assert!(!read.body.to_string().contains("s3cret"));

    let record = app
        .store
        .store
        .users()
        .get(
            org_id(&app).await,
            uuid::Uuid::parse_str(&id).expect("uuid"),
        )
        .await
        .expect("stored");
    let hash = record.password_hash.expect("hash stored");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!record.doc.map().unwrap().contains_key("password"));

    // A PUT without password keeps the hash.
    app.put(
        &format!("/scim/v2/Users/{id}"),
        json!({"userName": "p@example.com", "displayName": "P"}),
    )
    .await;
    let record = app
        .store
        .store
        .users()
        .get(
            org_id(&app).await,
            uuid::Uuid::parse_str(&id).expect("uuid"),
        )
        .await
        .expect("stored");
    assert_eq!(record.password_hash.as_deref(), Some(hash.as_str()));
}

async fn org_id(app: &TestApp) -> uuid::Uuid {
    app.store.store.org_by_slug(&app.org).await.expect("org").id
}

async fn core_attributes_are_stored_and_returned(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({
        "userName": "bjensen@example.com",
        "externalId": "ext-701984",
        "name": {"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane",
                 "honorificPrefix": "Ms.", "honorificSuffix": "III", "formatted": "Ms. Barbara J Jensen, III"},
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "title": "Tour Guide",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true},
                   {"value": "babs@jensen.org", "type": "home"}],
        "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
        "active": false
    });
    let id = app.create_user(body.clone()).await;
    let read = app.get(&format!("/scim/v2/Users/{id}")).await;
    for key in [
        "userName",
        "externalId",
        "name",
        "displayName",
        "nickName",
        "title",
        "preferredLanguage",
        "locale",
        "timezone",
        "emails",
        "phoneNumbers",
        "active",
    ] {
        assert_eq!(read.body[key], body[key], "{key}");
    }
}

async fn read_only_attributes_in_a_put_body_are_ignored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app.create_user(json!({"userName": "ro@example.com"})).await;
    let response = app
        .put(
            &format!("/scim/v2/Users/{id}"),
            json!({
                "userName": "ro@example.com",
                "id": "11111111-1111-1111-1111-111111111111",
                "meta": {"created": "2000-01-01T00:00:00.000Z", "resourceType": "Group"},
                "groups": [{"value": "x"}],
                "displayName": "RO"
            }),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.body["id"], id.as_str());
    assert_eq!(response.body["meta"]["resourceType"], "User");
    assert_ne!(response.body["meta"]["created"], "2000-01-01T00:00:00.000Z");
    assert_eq!(response.body["groups"], json!([]));
    assert_eq!(response.body["displayName"], "RO");
}

async fn concurrent_puts_setting_different_attributes_all_survive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys: Vec<String> = (0..20).map(|i| format!("attr_{i}")).collect();
    for key in &keys {
        app.define_attribute(key).await;
    }
    let id = app
        .create_user(json!({"userName": "race@example.com"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let puts = keys.iter().map(|key| {
        let body = json!({
            "userName": "race@example.com",
            "urn:omni:params:1.0:UserAttribute": {key.as_str(): "set"}
        });
        app.put(&path, body)
    });
    for response in futures::future::join_all(puts).await {
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    }
    let read = app.get(&path).await;
    let attributes = read.body["urn:omni:params:1.0:UserAttribute"]
        .as_object()
        .expect("attributes")
        .clone();
    for key in &keys {
        assert_eq!(
            attributes.get(key),
            Some(&Value::from("set")),
            "{key} was lost"
        );
    }
    assert_eq!(
        read.body["meta"]["version"],
        format!("W/\"{}\"", keys.len() + 1)
    );
}

async fn api_prefix_and_lowercase_resource_name_serve_the_same_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .post(
            "/api/scim/v2/users",
            json!({"userName": "prefix@example.com"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().expect("id");
    assert_eq!(
        created.header("location"),
        Some(format!("{}/api/scim/v2/Users/{id}", app.address).as_str())
    );
    for path in [
        format!("/scim/v2/Users/{id}"),
        format!("/scim/v2/users/{id}"),
        format!("/api/scim/v2/Users/{id}"),
        format!("/api/scim/v2/users/{id}"),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status, StatusCode::OK, "{path}");
        assert_eq!(response.body["userName"], "prefix@example.com");
    }
}

async fn put_on_an_unknown_user_is_404_and_creates_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = uuid::Uuid::now_v7();
    let response = app
        .put(
            &format!("/scim/v2/Users/{id}"),
            json!({"userName": "ghost@example.com"}),
        )
        .await;
    assert_scim_error(&response, 404, None);
    let get = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_scim_error(&get, 404, None);
    // The userName was not taken by the failed PUT.
    app.create_user(json!({"userName": "ghost@example.com"}))
        .await;
}
