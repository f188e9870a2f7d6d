//! Concurrency without lost updates: IdPs retry and run in parallel; every acknowledged change
//! must survive and uniqueness must hold under races.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp};

backend_tests!(
    fifty_concurrent_merging_puts_all_survive,
    fifty_concurrent_patches_adding_emails_all_survive_with_one_primary,
    fifty_concurrent_patches_of_one_user_written_without_a_lock_all_survive,
    concurrent_puts_with_one_if_match_let_exactly_one_through,
    racing_creates_and_renames_onto_one_name_let_exactly_one_win,
    concurrent_member_patches_end_as_the_serial_result,
);

fn patch_body(operations: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
}

async fn fifty_concurrent_merging_puts_all_survive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let keys: Vec<String> = (0..50).map(|i| format!("attr_{i}")).collect();
    for key in &keys {
        app.define_attribute(key).await;
    }
    let id = app
        .create_user(json!({"userName": "race@example.com"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let puts = keys.iter().map(|key| {
        app.put(
            &path,
            json!({"userName": "race@example.com",
                              "urn:omni:params:1.0:UserAttribute": {key.as_str(): "set"}}),
        )
    });
    for response in join_all(puts).await {
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    }
    let read = app.get(&path).await;
    let attributes = read.body["urn:omni:params:1.0:UserAttribute"]
        .as_object()
        .expect("attributes")
        .clone();
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| attributes.get(*k) != Some(&json!("set")))
        .collect();
    assert!(missing.is_empty(), "lost updates: {missing:?}");
    assert_eq!(read.body["meta"]["version"], "W/\"51\"");
}

async fn fifty_concurrent_patches_adding_emails_all_survive_with_one_primary(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "mail@example.com"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let patches = (0..50).map(|i| {
        let email =
            json!({"value": format!("m{i}@example.com"), "type": "other", "primary": i % 7 == 0});
        let phone = json!({"value": format!("555-{i:04}"), "type": "work"});
        app.request(
            Method::PATCH,
            &path,
            Some(patch_body(json!([
                {"op": "add", "path": "emails", "value": [email]},
                {"op": "add", "path": "phoneNumbers", "value": [phone]}
            ]))),
        )
    });
    for response in join_all(patches).await {
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    }
    let read = app.get(&path).await;
    let emails = read.body["emails"].as_array().expect("emails");
    assert_eq!(emails.len(), 50);
    assert_eq!(read.body["phoneNumbers"].as_array().map(Vec::len), Some(50));
    let primaries = emails.iter().filter(|e| e["primary"] == true).count();
    assert_eq!(primaries, 1, "exactly one primary survives");
}

/// Changes that neither add a user-attribute key nor touch the emails are written by a
/// conditional statement on the version read (Postgres), retried and then handed to the
/// locked path when other writers win: every one must still land, once.
async fn fifty_concurrent_patches_of_one_user_written_without_a_lock_all_survive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "hot@example.com"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let patches = (0..50).map(|i| {
        let phone = json!({"value": format!("555-{i:04}"), "type": "work"});
        app.request(
            Method::PATCH,
            &path,
            Some(patch_body(json!([
                {"op": "add", "path": "phoneNumbers", "value": [phone]},
                {"op": "replace", "path": "title", "value": format!("t{i}")}
            ]))),
        )
    });
    let mut versions = Vec::new();
    for response in join_all(patches).await {
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        versions.push(response.body["meta"]["version"].clone());
    }
    // Each acknowledged PATCH answered with a version of its own.
    versions.sort_by_key(|v| v.to_string());
    versions.dedup();
    assert_eq!(versions.len(), 50, "two PATCHes answered the same version");
    let read = app.get(&path).await;
    let phones = read.body["phoneNumbers"].as_array().expect("phones");
    assert_eq!(phones.len(), 50, "lost updates");
    assert_eq!(read.body["meta"]["version"], "W/\"51\"");
}

async fn concurrent_puts_with_one_if_match_let_exactly_one_through(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "once@example.com"}))
        .await;
    let url = format!("{}/scim/v2/Users/{id}", app.address);
    let puts = (0..20).map(|i| {
        app.client
            .put(&url)
            .bearer_auth(&app.token)
            .header("if-match", "W/\"1\"")
            .json(&json!({"userName": "once@example.com", "displayName": format!("writer {i}")}))
            .send()
    });
    let statuses: Vec<StatusCode> = join_all(puts)
        .await
        .into_iter()
        .map(|r| r.expect("send").status())
        .collect();
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let stale = statuses
        .iter()
        .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
        .count();
    assert_eq!((ok, stale), (1, 19), "{statuses:?}");
}

async fn racing_creates_and_renames_onto_one_name_let_exactly_one_win(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let posts = (0..50).map(|i| {
        let name: String = "Race.Winner@Example.com"
            .chars()
            .enumerate()
            .map(|(j, c)| {
                if (i >> (j % 6)) & 1 == 1 {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            })
            .collect();
        app.post("/scim/v2/Users", json!({"userName": name}))
    });
    let statuses: Vec<u16> = join_all(posts)
        .await
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        49,
        "{statuses:?}"
    );

    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            app.create_user(json!({"userName": format!("renamer{i}@example.com")}))
                .await,
        );
    }
    let paths: Vec<String> = ids
        .iter()
        .map(|id| format!("/scim/v2/Users/{id}"))
        .collect();
    let renames = paths
        .iter()
        .map(|path| app.put(path, json!({"userName": "target@example.com"})));
    let statuses: Vec<u16> = join_all(renames)
        .await
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );

    let groups = (0..30).map(|i| {
        let name = if i % 2 == 0 {
            "Racing Team"
        } else {
            "RACING team"
        };
        app.post("/scim/v2/Groups", json!({"displayName": name}))
    });
    let statuses: Vec<u16> = join_all(groups)
        .await
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        29,
        "{statuses:?}"
    );
}

async fn concurrent_member_patches_end_as_the_serial_result(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(
            app.create_user(json!({"userName": format!("member{i}@example.com")}))
                .await,
        );
    }
    // Start with the odd users as members; add the evens and remove the odds concurrently.
    let odd: Vec<Value> = users
        .iter()
        .skip(1)
        .step_by(2)
        .map(|id| json!({"value": id}))
        .collect();
    let created = app
        .post(
            "/scim/v2/Groups",
            json!({"displayName": "Churn", "members": odd}),
        )
        .await;
    let path = format!(
        "/scim/v2/Groups/{}",
        created.body["id"].as_str().expect("id")
    );
    let patches = users.iter().enumerate().map(|(i, id)| {
        let op = if i % 2 == 0 {
            json!([{"op": "add", "path": "members", "value": [{"value": id}]}])
        } else {
            json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}])
        };
        app.request(Method::PATCH, &path, Some(patch_body(op)))
    });
    for response in join_all(patches).await {
        assert_eq!(
            response.status,
            StatusCode::NO_CONTENT,
            "{:?}",
            response.body
        );
    }
    let group = app.get(&path).await;
    let mut members: Vec<String> = group.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["value"].as_str().expect("value").to_string())
        .collect();
    members.sort();
    let mut want: Vec<String> = users.iter().step_by(2).cloned().collect();
    want.sort();
    assert_eq!(members, want);
}
