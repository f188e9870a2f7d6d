//! DELETE, ETags (`If-Match`, `If-None-Match`) and the replace PUT mode.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error};
use scimd::config::{PutMode, Settings};

backend_tests!(
    delete_returns_204_and_the_user_is_gone_for_every_verb,
    stale_if_match_is_412_and_changes_nothing,
    matching_if_none_match_is_304,
    replace_put_mode_clears_attributes_not_given,
    active_false_keeps_the_user_readable_and_true_restores_it,
);

async fn delete_returns_204_and_the_user_is_gone_for_every_verb(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "bye@example.com"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let deleted = app.request(Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.body.is_null());
    assert_scim_error(&app.get(&path).await, 404, None);
    assert_scim_error(
        &app.put(&path, json!({"userName": "bye@example.com"})).await,
        404,
        None,
    );
    assert_scim_error(&app.request(Method::DELETE, &path, None).await, 404, None);
    // The userName is free again.
    app.create_user(json!({"userName": "bye@example.com"}))
        .await;
}

async fn stale_if_match_is_412_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "etag@example.com", "displayName": "v1"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let put = |etag: &'static str, name: &'static str| {
        app.client
            .put(format!("{}{path}", app.address))
            .bearer_auth(&app.token)
            .header("if-match", etag)
            .json(&json!({"userName": "etag@example.com", "displayName": name}))
            .send()
    };
    let ok = put("W/\"1\"", "v2").await.expect("send");
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["etag"], "W/\"2\"");
    let stale = put("W/\"1\"", "stale").await.expect("send");
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let star = put("*", "v3").await.expect("send");
    assert_eq!(star.status(), StatusCode::OK);
    assert_eq!(app.get(&path).await.body["displayName"], "v3");

    let stale_delete = app
        .client
        .delete(format!("{}{path}", app.address))
        .bearer_auth(&app.token)
        .header("if-match", "W/\"2\"")
        .send()
        .await
        .expect("send");
    assert_eq!(stale_delete.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(
        app.get(&path).await.status,
        StatusCode::OK,
        "a refused DELETE keeps the user"
    );
    let delete = app
        .client
        .delete(format!("{}{path}", app.address))
        .bearer_auth(&app.token)
        .header("if-match", "W/\"3\"")
        .send()
        .await
        .expect("send");
    assert_eq!(delete.status(), StatusCode::NO_CONTENT);
}

async fn matching_if_none_match_is_304(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "cache@example.com"}))
        .await;
    let url = format!("{}/scim/v2/Users/{id}", app.address);
    let get = |etag: &'static str| {
        app.client
            .get(&url)
            .bearer_auth(&app.token)
            .header("if-none-match", etag)
            .send()
    };
    let fresh = get("W/\"1\"").await.expect("send");
    assert_eq!(fresh.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(fresh.headers()["etag"], "W/\"1\"");
    let changed = get("W/\"0\"").await.expect("send");
    assert_eq!(changed.status(), StatusCode::OK);
}

async fn replace_put_mode_clears_attributes_not_given(backend: Backend) {
    let settings = Settings {
        put_mode: PutMode::Replace,
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let id = app
        .create_user(json!({"userName": "full@example.com", "displayName": "Full", "title": "T"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let replaced = app
        .put(
            &path,
            json!({"userName": "full@example.com", "nickName": "F"}),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK);
    assert!(
        replaced.body.get("displayName").is_none(),
        "{:?}",
        replaced.body
    );
    assert!(replaced.body.get("title").is_none());
    assert_eq!(replaced.body["nickName"], "F");
    assert_eq!(replaced.body["active"], true);
}

async fn active_false_keeps_the_user_readable_and_true_restores_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "soft@example.com"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let off = app
        .put(
            &path,
            json!({"userName": "soft@example.com", "active": false}),
        )
        .await;
    assert_eq!(off.body["active"], false);
    assert_eq!(app.get(&path).await.body["active"], false);
    // Entra ID sends booleans as strings.
    let on = app
        .put(
            &path,
            json!({"userName": "soft@example.com", "active": "True"}),
        )
        .await;
    assert_eq!(on.status, StatusCode::OK, "{:?}", on.body);
    assert_eq!(on.body["active"], true);
    assert_eq!(on.body["id"], id.as_str());
}
