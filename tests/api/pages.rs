//! On Postgres, an update of a user that changes no indexed column is written on the page of
//! the row it replaces, even in a table loaded full: the new version is then a heap-only
//! tuple and none of the table's indexes is written (migration 0020, `users`' fillfactor).
//! SQLite's tables have no such setting.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, TestApp, sql};
use crate::postgres_tests;

postgres_tests!(a_patched_user_stays_on_its_page_of_a_table_loaded_full);

/// The heap page a user's current row is on (the block of its `ctid`).
async fn page_of(app: &TestApp, id: &str) -> String {
    sql(
        app,
        Backend::Postgres,
        &format!(
            "select split_part(trim('()' from ctid::text), ',', 1) from users where id = '{id}'"
        ),
    )
    .await
    .expect("the user's row")
}

async fn a_patched_user_stays_on_its_page_of_a_table_loaded_full() {
    let app = TestApp::spawn(Backend::Postgres).await;
    // Rows of one size, so that a full page's leftover is smaller than a row and the first
    // page is full before the second starts.
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(
            app.create_user(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": format!("user{i:03}@example.com"),
                "displayName": format!("User {i:03}"),
                "name": {"givenName": "Given", "familyName": format!("Family{i:03}")},
                "emails": [{"value": format!("user{i:03}@example.com"), "primary": true}],
            }))
            .await,
        );
    }
    let first = &ids[0];
    assert_ne!(
        page_of(&app, first).await,
        page_of(&app, &ids[39]).await,
        "the users span more than one page"
    );

    let before = page_of(&app, first).await;
    // A longer displayName: the new version is larger than the row it replaces.
    let response = app
        .request(
            Method::PATCH,
            &format!("/scim/v2/Users/{first}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName",
                                "value": "A display name longer than the one it replaces"}],
            })),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(page_of(&app, first).await, before);
}
