//! Render only what is true: what a user is shown with is what was stored or a default the
//! filters agree with.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, filter_users};
use scimd::scim::user::UserNameFormat;

backend_tests!(the_fallback_email_is_shown_only_for_an_address_and_filters_find_it);

/// The `userName`s a filter selects.
async fn selected(app: &TestApp, filter: &str) -> BTreeSet<String> {
    filter_users(app, filter).await["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .filter_map(|u| u["userName"].as_str().map(str::to_string))
        .collect()
}

fn patch(operations: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
}

async fn the_fallback_email_is_shown_only_for_an_address_and_filters_find_it(backend: Backend) {
    let mut settings = TestApp::settings();
    settings.user_name_format = UserNameFormat::Any;
    let app = TestApp::spawn_with(backend, settings).await;
    // Not an address: no email is shown, none is found.
    let plain = app
        .post("/scim/v2/Users", json!({"userName": "bjensen"}))
        .await;
    assert_eq!(plain.status, StatusCode::CREATED, "{:?}", plain.body);
    assert_eq!(plain.body.get("emails"), None, "{:?}", plain.body);
    assert!(
        selected(&app, "emails.value eq \"bjensen\"")
            .await
            .is_empty()
    );
    // An address: shown as the one email, and every emails filter finds it.
    let id = app
        .create_user(json!({"userName": "Babs.Jensen@Example.com"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    assert_eq!(
        app.get(&path).await.body["emails"],
        json!([{"primary": true, "value": "Babs.Jensen@Example.com"}])
    );
    let babs = BTreeSet::from(["Babs.Jensen@Example.com".to_string()]);
    for filter in [
        "emails.value eq \"babs.jensen@example.com\"",
        "emails eq \"BABS.JENSEN@EXAMPLE.COM\"",
        "emails[value eq \"Babs.Jensen@Example.com\"]",
        "emails[primary eq true]",
        "emails.value sw \"babs.\"",
        "emails pr",
    ] {
        assert_eq!(selected(&app, filter).await, babs, "{filter}");
    }
    // A stored email replaces it, in what is shown and in what filters find.
    let stored = app
        .request(
            Method::PATCH,
            &path,
            Some(patch(json!([{"op": "add", "path": "emails",
                               "value": [{"value": "babs@work.example.com", "type": "work"}]}]))),
        )
        .await;
    assert_eq!(stored.status, StatusCode::OK, "{:?}", stored.body);
    assert_eq!(stored.body["emails"].as_array().map(Vec::len), Some(1));
    assert!(
        selected(&app, "emails.value eq \"babs.jensen@example.com\"")
            .await
            .is_empty()
    );
    assert_eq!(
        selected(&app, "emails.value eq \"babs@work.example.com\"").await,
        babs
    );
    // Removing the stored emails brings the fallback back, findable again.
    let removed = app
        .request(
            Method::PATCH,
            &path,
            Some(patch(json!([{"op": "remove", "path": "emails"}]))),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    assert_eq!(
        selected(&app, "emails.value eq \"babs.jensen@example.com\"").await,
        babs
    );
}
