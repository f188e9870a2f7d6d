//! The resource layer without HTTP: what Bulk, the change log and the admin API will call.
//! Changes made through it are what the API serves; its errors are the API's errors; a caller
//! of another organization finds nothing.

use std::sync::Arc;

use reqwest::StatusCode;
use scimd::resources::{Caller, Groups, ListRequest, ResourceError, Resources, Users};
use scimd::scim::etag::EtagCondition;
use scimd::store::{ListQuery, StoreError, Versioned};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Backend, TestApp};

crate::backend_tests!(
    changes_made_without_http_are_what_the_api_serves,
    a_stale_if_match_is_refused_and_changes_nothing,
    another_organization_finds_nothing,
    bad_ids_and_bodies_are_scim_errors_and_change_nothing,
);

fn doc(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().cloned().expect("an object")
}

async fn layer(app: &TestApp) -> (Resources, Caller) {
    let store = app.store.store.clone();
    let org = store.org_by_slug(&app.org).await.expect("org").id;
    let resources = Resources::new(store, Arc::new(TestApp::settings()));
    (resources, Caller::for_org(org, Uuid::now_v7()))
}

fn list_all() -> ListRequest {
    ListRequest {
        query: ListQuery {
            filter: None,
            sort: None,
            start_index: 1,
            count: 100,
            cursor: None,
            byte_budget: None,
        },
        cursor_mode: false,
        cursor_text: None,
    }
}

/// The SCIM error a refused operation carries: (status, scimType).
fn scim_error(e: ResourceError) -> (u16, Option<&'static str>) {
    match e {
        ResourceError::Scim(e) => (e.status, e.scim_type.map(|t| t.as_str())),
        other => panic!("not a SCIM error: {other:?}"),
    }
}

async fn changes_made_without_http_are_what_the_api_serves(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (res, caller) = layer(&app).await;
    let user = res
        .create::<Users>(&caller, doc(json!({"userName": "ada@example.com"})))
        .await
        .expect("created");
    let id = user.id.to_string();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Ada"}]});
    let patched = res
        .patch::<Users>(&caller, &id, doc(patch), None)
        .await
        .expect("patched");
    assert_eq!(patched.version(), user.version() + 1);
    let group = res
        .create::<Groups>(
            &caller,
            doc(json!({"displayName": "Engineers", "members": [{"value": id}]})),
        )
        .await
        .expect("group created");

    let served = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.body["displayName"], "Ada");
    assert_eq!(served.body["groups"][0]["display"], "Engineers");
    assert_eq!(
        served.header("etag"),
        Some(format!("W/\"{}\"", patched.version()).as_str())
    );

    // Deleting the user takes it out of its group, in the same transaction.
    res.delete::<Users>(&caller, &id, None)
        .await
        .expect("deleted");
    let gone = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let group = app.get(&format!("/scim/v2/Groups/{}", group.id)).await;
    assert_eq!(group.body["members"], json!([]));
    let page = res
        .list::<Users>(&caller, list_all(), false)
        .await
        .expect("listed");
    assert_eq!((page.total, page.items.len()), (0, 0));
}

async fn a_stale_if_match_is_refused_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (res, caller) = layer(&app).await;
    let user = res
        .create::<Users>(&caller, doc(json!({"userName": "bo@example.com"})))
        .await
        .expect("created");
    let id = user.id.to_string();
    let stale = EtagCondition::Versions(vec![user.version() + 7]);
    let put = doc(json!({"userName": "bo@example.com", "title": "Boss"}));
    let refused = res
        .replace::<Users>(&caller, &id, put, Some(&stale))
        .await
        .expect_err("stale");
    assert_eq!(scim_error(refused), (412, None));
    let refused = res
        .delete::<Users>(&caller, &id, Some(&stale))
        .await
        .expect_err("stale");
    assert_eq!(scim_error(refused), (412, None));
    let served = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(served.status, StatusCode::OK);
    assert!(served.body.get("title").is_none(), "{}", served.body);
    let current = res.get::<Users>(&caller, &id).await.expect("read");
    assert_eq!(current.version(), user.version());
}

async fn another_organization_finds_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (res, caller) = layer(&app).await;
    let user = res
        .create::<Users>(&caller, doc(json!({"userName": "cy@example.com"})))
        .await
        .expect("created");
    let other_org = app.store.store.create_org("other").await.expect("org").id;
    let stranger = Caller::for_org(other_org, Uuid::now_v7());
    let id = user.id.to_string();
    let not_found = |e: ResourceError| matches!(e, ResourceError::Store(StoreError::NotFound));
    assert!(not_found(
        res.get::<Users>(&stranger, &id).await.expect_err("hidden")
    ));
    let put = doc(json!({"userName": "taken-over@example.com"}));
    assert!(not_found(
        res.replace::<Users>(&stranger, &id, put, None)
            .await
            .expect_err("hidden")
    ));
    assert!(not_found(
        res.delete::<Users>(&stranger, &id, None)
            .await
            .expect_err("hidden")
    ));
    let page = res
        .list::<Users>(&stranger, list_all(), false)
        .await
        .expect("listed");
    assert_eq!(page.total, 0);
    let served = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(served.body["userName"], "cy@example.com");
}

async fn bad_ids_and_bodies_are_scim_errors_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (res, caller) = layer(&app).await;
    let refused = res
        .get::<Groups>(&caller, "not-a-uuid")
        .await
        .expect_err("no such id");
    assert_eq!(scim_error(refused), (404, None));
    let refused = res
        .create::<Users>(&caller, doc(json!({"displayName": "no userName"})))
        .await
        .expect_err("invalid");
    assert_eq!(scim_error(refused).0, 400);
    let refused = res
        .create::<Groups>(
            &caller,
            doc(json!({"displayName": "G", "members": [{"value": Uuid::now_v7()}]})),
        )
        .await
        .expect_err("a stranger as member");
    assert_eq!(scim_error(refused), (400, Some("invalidValue")));
    let listed = app.get("/scim/v2/Groups").await;
    assert_eq!(listed.body["totalResults"], 0);
    let listed = app.get("/scim/v2/Users").await;
    assert_eq!(listed.body["totalResults"], 0);
}
