//! The admin API (`/admin/v1`) as an operator uses it: which keys reach it, organizations,
//! keys and their last use, user-attribute definitions (and a delete racing a PATCH),
//! organization deletion in the background, signing-secret rotation seen by a second
//! process, the audit trail, event streams, and the operators' own audit trail.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

use crate::backend_tests;
use crate::helpers::{Backend, SECRET, TestApp, TestResponse, assert_scim_error};

backend_tests!(
    only_admin_keys_reach_the_admin_api_and_they_reach_nothing_else,
    organizations_are_created_listed_renamed_and_refused_when_malformed,
    keys_are_created_listed_and_revoked_within_their_organization,
    a_key_records_its_last_use_at_most_once_a_minute,
    a_user_attribute_is_deleted_only_when_no_user_carries_it,
    an_attribute_delete_racing_a_patch_never_leaves_an_undefined_key,
    deleting_an_organization_refuses_its_keys_at_once_and_removes_its_data,
    a_rotated_secret_signs_new_keys_and_a_retired_one_refuses_its_keys,
    a_second_process_picks_up_a_rotation_and_a_retirement,
    the_audit_trail_and_event_streams_are_reached_through_the_admin_api,
    every_admin_action_is_in_the_admin_audit_trail_with_its_operator,
    every_admin_endpoint_refuses_other_keys_and_no_key,
    a_token_without_kid_belongs_to_the_initial_secret,
    the_command_line_offers_what_the_admin_api_does,
);

/// A new admin key's token.
async fn admin_key(app: &TestApp) -> String {
    scimd::app::create_admin_key(&app.store, Some("ops".into()), None)
        .await
        .expect("admin key")
}

/// An admin API request with `token` (and a `User-Agent` naming the operator's tool).
async fn admin(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> TestResponse {
    app.request_as(token, method, &format!("/admin/v1{path}"), body)
        .await
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `seconds`.
async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn only_admin_keys_reach_the_admin_api_and_they_reach_nothing_else(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = admin_key(&app).await;
    let ok = admin(&app, &token, Method::GET, "/orgs", None).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    assert_eq!(ok.header("content-type"), Some("application/json"));
    assert_eq!(ok.header("cache-control"), Some("no-store"));
    // A path segment that does not decode is a SCIM error too.
    let undecodable = admin(&app, &token, Method::GET, "/orgs/%FF", None).await;
    assert_scim_error(&undecodable, 400, Some("invalidValue"));

    // An organization key and a personal token are genuine but not admin keys: 403.
    let personal = app.key("acme", true).await;
    for other in [app.token.clone(), personal] {
        let refused = admin(&app, &other, Method::GET, "/orgs", None).await;
        assert_scim_error(&refused, 403, None);
    }
    // An admin key is not an organization key.
    let refused = app
        .request_as(&token, Method::GET, "/scim/v2/Users", None)
        .await;
    assert_scim_error(&refused, 403, None);
    // No key, a forged one, a revoked one: 401.
    let missing = admin(&app, "", Method::GET, "/orgs", None).await;
    assert_scim_error(&missing, 401, None);
    let forged = format!("{}x", &token[..token.len() - 1]);
    assert_scim_error(
        &admin(&app, &forged, Method::GET, "/orgs", None).await,
        401,
        None,
    );
    let listed = admin(&app, &token, Method::GET, "/admin-keys", None).await;
    let id = listed.body["keys"][0]["id"].as_str().unwrap().to_string();
    let second = admin_key(&app).await;
    let revoked = admin(
        &app,
        &second,
        Method::DELETE,
        &format!("/admin-keys/{id}"),
        None,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{:?}", revoked.body);
    assert_scim_error(
        &admin(&app, &token, Method::GET, "/orgs", None).await,
        401,
        None,
    );
    assert_eq!(
        admin(&app, &second, Method::GET, "/orgs", None)
            .await
            .status,
        StatusCode::OK
    );
}

async fn organizations_are_created_listed_renamed_and_refused_when_malformed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = admin_key(&app).await;
    app.create_user(json!({"userName": "ada@example.com"}))
        .await;

    let created = admin(
        &app,
        &token,
        Method::POST,
        "/orgs",
        Some(json!({"slug": "beta"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["slug"], "beta");
    assert_eq!(created.body["state"], "active");
    let again = admin(
        &app,
        &token,
        Method::POST,
        "/orgs",
        Some(json!({"slug": "beta"})),
    )
    .await;
    assert_scim_error(&again, 409, Some("uniqueness"));
    let bad = admin(
        &app,
        &token,
        Method::POST,
        "/orgs",
        Some(json!({"slug": "Not A Slug"})),
    )
    .await;
    assert_scim_error(&bad, 400, Some("invalidValue"));
    assert!(bad.body["detail"].as_str().unwrap().starts_with("slug:"));
    let unknown = admin(
        &app,
        &token,
        Method::POST,
        "/orgs",
        Some(json!({"slug": "gamma", "owner": "x"})),
    )
    .await;
    assert_scim_error(&unknown, 400, Some("invalidValue"));
    assert!(unknown.body["detail"].as_str().unwrap().contains("owner"));
    let missing = admin(&app, &token, Method::POST, "/orgs", Some(json!({}))).await;
    assert!(missing.body["detail"].as_str().unwrap().contains("slug"));

    let list = admin(&app, &token, Method::GET, "/orgs", None).await;
    let orgs = list.body["orgs"].as_array().unwrap();
    let slugs: Vec<&str> = orgs.iter().map(|o| o["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["acme", "beta"]);
    assert_eq!(orgs[0]["users"], 1);
    assert_eq!(orgs[0]["groups"], 0);
    assert_eq!(orgs[0]["keys"], 1);

    // A rename keeps the organization's keys and data.
    let renamed = admin(
        &app,
        &token,
        Method::PATCH,
        "/orgs/acme",
        Some(json!({"slug": "acme-corp"})),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    assert_eq!(renamed.body["users"], 1);
    assert_eq!(app.get("/scim/v2/Users").await.body["totalResults"], 1);
    assert_scim_error(
        &admin(&app, &token, Method::GET, "/orgs/acme", None).await,
        404,
        None,
    );
    let taken = admin(
        &app,
        &token,
        Method::PATCH,
        "/orgs/acme-corp",
        Some(json!({"slug": "beta"})),
    )
    .await;
    assert_scim_error(&taken, 409, Some("uniqueness"));
    let nowhere = admin(
        &app,
        &token,
        Method::PATCH,
        "/orgs/nowhere",
        Some(json!({"slug": "elsewhere"})),
    )
    .await;
    assert_scim_error(&nowhere, 404, None);
}

async fn keys_are_created_listed_and_revoked_within_their_organization(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = admin_key(&app).await;
    let created = admin(
        &app,
        &token,
        Method::POST,
        "/orgs/acme/keys",
        Some(json!({"name": "entra", "expiresIn": "30d"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let entra = created.body["token"].as_str().unwrap().to_string();
    let id = created.body["key"]["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["key"]["kind"], "organization");
    assert!(created.body["key"]["expiresAt"].is_i64());
    let works = app
        .request_as(&entra, Method::GET, "/scim/v2/Users", None)
        .await;
    assert_eq!(works.status, StatusCode::OK);

    let listed = admin(&app, &token, Method::GET, "/orgs/acme/keys", None).await;
    let keys = listed.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter().all(|k| k.get("token").is_none()),
        "tokens are shown once"
    );

    // Another organization's key is not found under this one.
    app.other_org("beta").await;
    let beta_key = admin(
        &app,
        &token,
        Method::POST,
        "/orgs/beta/keys",
        Some(json!({})),
    )
    .await;
    let beta_id = beta_key.body["key"]["id"].as_str().unwrap().to_string();
    let elsewhere = admin(
        &app,
        &token,
        Method::DELETE,
        &format!("/orgs/acme/keys/{beta_id}"),
        None,
    )
    .await;
    assert_scim_error(&elsewhere, 404, None);
    let beta_token = beta_key.body["token"].as_str().unwrap();
    let beta_works = app
        .request_as(beta_token, Method::GET, "/scim/v2/Users", None)
        .await;
    assert_eq!(beta_works.status, StatusCode::OK);

    let revoked = admin(
        &app,
        &token,
        Method::DELETE,
        &format!("/orgs/acme/keys/{id}"),
        None,
    )
    .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let refused = app
        .request_as(&entra, Method::GET, "/scim/v2/Users", None)
        .await;
    assert_scim_error(&refused, 401, None);
    let listed = admin(&app, &token, Method::GET, "/orgs/acme/keys", None).await;
    let states: Vec<&str> = listed.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["active", "revoked"]);

    for (body, field) in [
        (json!({"expiresIn": "soon"}), "expiresIn"),
        (json!({"expiresIn": "106751991167d"}), "expiresIn"),
        (json!({"name": ""}), "name"),
        (json!({"name": 5}), "name"),
        (json!({"scopes": []}), "scopes"),
    ] {
        let bad = admin(&app, &token, Method::POST, "/orgs/acme/keys", Some(body)).await;
        assert_scim_error(&bad, 400, Some("invalidValue"));
        let detail = bad.body["detail"].as_str().unwrap();
        assert!(detail.contains(field), "{detail} should name {field}");
    }
    let nowhere = admin(
        &app,
        &token,
        Method::POST,
        "/orgs/nowhere/keys",
        Some(json!({})),
    )
    .await;
    assert_scim_error(&nowhere, 404, None);
    let not_an_id = admin(&app, &token, Method::DELETE, "/orgs/acme/keys/xyz", None).await;
    assert_scim_error(&not_an_id, 404, None);
}

async fn a_key_records_its_last_use_at_most_once_a_minute(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = admin_key(&app).await;
    let key_of = |body: &Value| body["keys"][0].clone();
    let before = admin(&app, &token, Method::GET, "/orgs/acme/keys", None).await;
    assert_eq!(key_of(&before.body)["lastUsed"], Value::Null);

    let used = app
        .client
        .get(format!("{}/scim/v2/Users", app.address))
        .bearer_auth(&app.token)
        .header("user-agent", "Okta SCIM Client 1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), StatusCode::OK);
    let first = eventually(10, "the key's use to be recorded", || async {
        let listed = admin(&app, &token, Method::GET, "/orgs/acme/keys", None).await;
        let used = key_of(&listed.body)["lastUsed"].clone();
        (!used.is_null()).then_some(used)
    })
    .await;
    assert_eq!(first["userAgent"], "Okta SCIM Client 1.0");
    assert_eq!(first["clientAddr"], "127.0.0.1");

    // More requests within the minute write nothing: the record stays the first one.
    for _ in 0..5 {
        app.client
            .get(format!("{}/scim/v2/Users", app.address))
            .bearer_auth(&app.token)
            .header("user-agent", "Another Client")
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = admin(&app, &token, Method::GET, "/orgs/acme/keys", None).await;
    assert_eq!(key_of(&after.body)["lastUsed"], first);

    // Admin keys record their use too.
    let admins = admin(&app, &token, Method::GET, "/admin-keys", None).await;
    let admin_use = &admins.body["keys"][0]["lastUsed"];
    assert!(admin_use["at"].is_i64(), "{admins:?}");
}

async fn a_user_attribute_is_deleted_only_when_no_user_carries_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = admin_key(&app).await;
    let urn = "urn:omni:params:1.0:UserAttribute";
    let created = admin(
        &app,
        &token,
        Method::POST,
        "/orgs/acme/user-attributes",
        Some(json!({"key": "cost_center"})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let bad = admin(
        &app,
        &token,
        Method::POST,
        "/orgs/acme/user-attributes",
        Some(json!({"key": "no spaces"})),
    )
    .await;
    assert_scim_error(&bad, 400, Some("invalidValue"));
    assert!(bad.body["detail"].as_str().unwrap().starts_with("key:"));
    let listed = admin(
        &app,
        &token,
        Method::GET,
        "/orgs/acme/user-attributes",
        None,
    )
    .await;
    assert_eq!(listed.body["userAttributes"], json!(["cost_center"]));

    let id = app
        .create_user(json!({"userName": "ada@example.com", urn: {"cost_center": "42"}}))
        .await;
    let in_use = admin(
        &app,
        &token,
        Method::DELETE,
        "/orgs/acme/user-attributes/cost_center",
        None,
    )
    .await;
    assert_scim_error(&in_use, 409, None);
    assert!(in_use.body["detail"].as_str().unwrap().contains("1 user"));

    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": format!("{urn}:cost_center")}]
    });
    let removed = app
        .request(Method::PATCH, &format!("/scim/v2/Users/{id}"), Some(patch))
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    let deleted = admin(
        &app,
        &token,
        Method::DELETE,
        "/orgs/acme/user-attributes/cost_center",
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    let gone = admin(
        &app,
        &token,
        Method::DELETE,
        "/orgs/acme/user-attributes/cost_center",
        None,
    )
    .await;
    assert_scim_error(&gone, 404, None);

    // The key is no longer accepted.
    let refused = app
        .put(
            &format!("/scim/v2/Users/{id}"),
            json!({"userName": "ada@example.com", urn: {"cost_center": "7"}}),
        )
        .await;
    assert_scim_error(&refused, 400, Some("invalidValue"));
}

async fn an_attribute_delete_racing_a_patch_never_leaves_an_undefined_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = admin_key(&app).await;
    let urn = "urn:omni:params:1.0:UserAttribute";
    let id = app
        .create_user(json!({"userName": "ada@example.com"}))
        .await;
    let (mut patched, mut deleted) = (0, 0);
    for round in 0..20 {
        let key = format!("k{round}");
        app.define_attribute(&key).await;
        let patch = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": urn, "value": {key.as_str(): "v"}}]
        });
        let path = format!("/scim/v2/Users/{id}");
        let delete_path = format!("/orgs/acme/user-attributes/{key}");
        let (patch, delete) = tokio::join!(
            app.request(Method::PATCH, &path, Some(patch)),
            admin(&app, &token, Method::DELETE, &delete_path, None),
        );
        // Exactly one wins: the PATCH (the delete then finds the key in use) or the delete
        // (the PATCH then finds the key undefined).
        match (patch.status.as_u16(), delete.status.as_u16()) {
            (200, 409) => patched += 1,
            (400, 204) => deleted += 1,
            other => panic!(
                "round {round}: {other:?} {:?} {:?}",
                patch.body, delete.body
            ),
        }
        let user = app.get(&path).await;
        let defined = admin(
            &app,
            &token,
            Method::GET,
            "/orgs/acme/user-attributes",
            None,
        )
        .await;
        let carried = user.body[urn].get(&key).is_some();
        let still_defined = defined.body["userAttributes"]
            .as_array()
            .unwrap()
            .contains(&json!(key));
        assert_eq!(carried, still_defined, "round {round}: {:?}", user.body);
        if carried {
            // Clear it for the next round's user document.
            let clear = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "remove", "path": format!("{urn}:{key}")}]
            });
            app.request(Method::PATCH, &path, Some(clear)).await;
        }
    }
    eprintln!("PATCH won {patched} rounds, the delete {deleted}");
}

/// Rows of the organization `org_id` left in each table that holds an organization's data.
async fn rows_of_org(app: &TestApp, backend: Backend, org_id: &str) -> Vec<(&'static str, i64)> {
    let tables = [
        ("organizations", "id"),
        ("users", "org_id"),
        ("groups", "org_id"),
        ("user_emails", "org_id"),
        ("changes", "org_id"),
        ("rejected_writes", "org_id"),
        ("event_streams", "org_id"),
        ("api_keys", "org_id"),
        ("user_attribute_definitions", "org_id"),
        ("user_counts", "org_id"),
        ("org_activity", "org_id"),
    ];
    let mut counts = Vec::new();
    for (table, column) in tables {
        let sql = format!("select count(*) from {table} where cast({column} as text) = $1");
        let n: i64 = match backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
                    .await
                    .unwrap();
                sqlx::query_scalar(&sql)
                    .bind(org_id)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&app.database_url)
                    .await
                    .unwrap();
                sqlx::query_scalar(&sql)
                    .bind(org_id)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
        };
        counts.push((table, n));
    }
    counts
}

async fn deleting_an_organization_refuses_its_keys_at_once_and_removes_its_data(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = admin_key(&app).await;
    let beta = app.other_org("beta").await;
    let beta_id = admin(&app, &token, Method::GET, "/orgs/beta", None)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    scimd::app::create_user_attribute(&app.store, "beta", "team")
        .await
        .unwrap();
    let mut members = Vec::new();
    for i in 0..30 {
        let body = json!({"userName": format!("u{i}@beta.example"), "emails": [{"value": format!("u{i}@beta.example")}]});
        let created = app
            .request_as(&beta, Method::POST, "/scim/v2/Users", Some(body))
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
        members.push(json!({"value": created.body["id"]}));
    }
    let group = json!({"displayName": "everyone", "members": members});
    let created = app
        .request_as(&beta, Method::POST, "/scim/v2/Groups", Some(group))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let bad = app
        .request_as(&beta, Method::POST, "/scim/v2/Users", Some(json!({})))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Rejected writes are recorded off the request path: this one is stored before the delete.
    eventually(10, "the rejected write to be recorded", || async {
        let list = admin(&app, &token, Method::GET, "/orgs/beta/rejected", None).await;
        (!list.body["rejected"][0].is_null()).then_some(())
    })
    .await;
    app.create_user(json!({"userName": "stays@acme.example"}))
        .await;

    let deleted = admin(&app, &token, Method::DELETE, "/orgs/beta", None).await;
    assert_eq!(deleted.status, StatusCode::ACCEPTED, "{:?}", deleted.body);
    assert_eq!(deleted.body["slug"], "beta");
    // At once: the organization's keys are refused.
    let refused = app
        .request_as(&beta, Method::GET, "/scim/v2/Users", None)
        .await;
    assert_scim_error(&refused, 401, None);
    let again = admin(&app, &token, Method::DELETE, "/orgs/beta", None).await;
    assert_eq!(again.status.as_u16(), 404);

    let finished = eventually(60, "the deletion to finish", || async {
        let list = admin(&app, &token, Method::GET, "/deletions", None).await;
        let deletion = list.body["deletions"][0].clone();
        (!deletion["finishedAt"].is_null()).then_some(deletion)
    })
    .await;
    assert_eq!(finished["slug"], "beta");
    assert!(
        finished["rowsRemoved"].as_i64().unwrap() >= 60,
        "{finished:?}"
    );
    for (table, n) in rows_of_org(&app, backend, &beta_id).await {
        assert_eq!(n, 0, "{table} still holds rows of the deleted organization");
    }
    assert_scim_error(
        &admin(&app, &token, Method::GET, "/orgs/beta", None).await,
        404,
        None,
    );
    // Another organization is untouched, and the slug is free again.
    assert_eq!(app.get("/scim/v2/Users").await.body["totalResults"], 1);
    let reused = admin(
        &app,
        &token,
        Method::POST,
        "/orgs",
        Some(json!({"slug": "beta"})),
    )
    .await;
    assert_eq!(reused.status, StatusCode::CREATED);
    assert_eq!(reused.body["users"], 0);
    // The record of the deletion outlives the organization.
    let trail = admin(&app, &token, Method::GET, "/audit", None).await;
    let actions: Vec<&str> = trail.body["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["orgSlug"] == "beta")
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "org.create",
            "key.create",
            "user-attribute.create",
            "org.delete",
            "org.delete.finish",
            "org.create"
        ]
    );
}

async fn a_rotated_secret_signs_new_keys_and_a_retired_one_refuses_its_keys(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = admin_key(&app).await;
    let old_key = app.token.clone();
    let rotated = admin(&app, &token, Method::POST, "/secrets", None).await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{:?}", rotated.body);
    let secret = rotated.body["id"].as_str().unwrap().to_string();
    let new_admin = {
        let created = admin(
            &app,
            &token,
            Method::POST,
            "/admin-keys",
            Some(json!({"name": "ops2"})),
        )
        .await;
        assert_eq!(created.body["key"]["secret"], secret.as_str());
        created.body["token"].as_str().unwrap().to_string()
    };
    let new_key = app.key("acme", false).await;
    for key in [&old_key, &new_key] {
        let works = app
            .request_as(key, Method::GET, "/scim/v2/Users", None)
            .await;
        assert_eq!(works.status, StatusCode::OK);
    }

    // The initial secret still signs live keys: retiring it needs force, and says how many.
    let refused = admin(&app, &new_admin, Method::DELETE, "/secrets/initial", None).await;
    assert_scim_error(&refused, 409, None);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("2 live key")
    );
    let retired = admin(
        &app,
        &new_admin,
        Method::DELETE,
        "/secrets/initial?force=true",
        None,
    )
    .await;
    assert_eq!(retired.status, StatusCode::OK, "{:?}", retired.body);
    assert_eq!(retired.body["invalidatedKeys"], 2);
    let refused = app
        .request_as(&old_key, Method::GET, "/scim/v2/Users", None)
        .await;
    assert_scim_error(&refused, 401, None);
    assert_scim_error(
        &admin(&app, &token, Method::GET, "/orgs", None).await,
        401,
        None,
    );
    let works = app
        .request_as(&new_key, Method::GET, "/scim/v2/Users", None)
        .await;
    assert_eq!(works.status, StatusCode::OK);

    // The last active secret cannot be retired; an unknown one is not found.
    let last = admin(
        &app,
        &new_admin,
        Method::DELETE,
        &format!("/secrets/{secret}?force=true"),
        None,
    )
    .await;
    assert_scim_error(&last, 409, None);
    let unknown = admin(&app, &new_admin, Method::DELETE, "/secrets/nope", None).await;
    assert_scim_error(&unknown, 404, None);
    let bad = admin(
        &app,
        &new_admin,
        Method::DELETE,
        "/secrets/initial?force=maybe",
        None,
    )
    .await;
    assert_scim_error(&bad, 400, Some("invalidValue"));
    let listed = admin(&app, &new_admin, Method::GET, "/secrets", None).await;
    let secrets = listed.body["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2);
    assert!(secrets[0]["retiredAt"].is_i64());
    assert_eq!(secrets[1]["signing"], true);
    assert_eq!(secrets[1]["liveKeys"], 2);
}

async fn a_second_process_picks_up_a_rotation_and_a_retirement(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = admin_key(&app).await;
    // A second server on the same database, with its own caches (one second long).
    let config = scimd::config::StoreConfig {
        database_url: app.database_url.clone(),
        jwt_secret: Some(SECRET.to_string()),
    };
    let second = scimd::app::open_with(&config, Duration::from_secs(1), &Default::default())
        .await
        .unwrap();
    let state = scimd::http::AppState::new(
        second.store.clone(),
        second.auth.clone(),
        TestApp::settings(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(scimd::http::serve(listener, state, std::future::pending()));
    let on_second = |key: String| {
        let client = app.client.clone();
        let url = format!("{address}/scim/v2/Users");
        async move {
            client
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(on_second(app.token.clone()).await, StatusCode::OK);

    // A key signed with a secret rotated in through the first server works on the second.
    admin(&app, &token, Method::POST, "/secrets", None).await;
    let created = admin(
        &app,
        &token,
        Method::POST,
        "/orgs/acme/keys",
        Some(json!({})),
    )
    .await;
    let new_key = created.body["token"].as_str().unwrap().to_string();
    assert_eq!(on_second(new_key.clone()).await, StatusCode::OK);

    // Retiring the initial secret reaches the second server within its cache time.
    let retired = admin(
        &app,
        &token,
        Method::DELETE,
        "/secrets/initial?force=true",
        None,
    )
    .await;
    assert_eq!(retired.status, StatusCode::OK);
    eventually(
        10,
        "the second server to refuse the retired secret's key",
        || {
            let attempt = on_second(app.token.clone());
            async move { (attempt.await == StatusCode::UNAUTHORIZED).then_some(()) }
        },
    )
    .await;
    assert_eq!(on_second(new_key).await, StatusCode::OK);
}

async fn the_audit_trail_and_event_streams_are_reached_through_the_admin_api(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = admin_key(&app).await;
    let id = app
        .create_user(json!({"userName": "ada@example.com"}))
        .await;
    let refused = app.post("/scim/v2/Users", json!({"userName": 5})).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);

    // On Postgres an entry is visible once every older transaction of the cluster ended.
    let changes = eventually(60, "the change-log entry", || async {
        let path = format!("/orgs/acme/changes?resource={id}");
        let changes = admin(&app, &token, Method::GET, &path, None).await;
        assert_eq!(changes.status, StatusCode::OK, "{:?}", changes.body);
        (!changes.body["changes"][0].is_null()).then_some(changes)
    })
    .await;
    assert_eq!(changes.body["changes"][0]["operation"], "create");
    assert_eq!(changes.body["changes"][0]["keyName"], "test");
    let rejected = eventually(10, "the rejected write", || async {
        let list = admin(
            &app,
            &token,
            Method::GET,
            "/orgs/acme/rejected?since=1h",
            None,
        )
        .await;
        let first = list.body["rejected"][0].clone();
        (!first.is_null()).then_some(first)
    })
    .await;
    assert_eq!(rejected["status"], 400);
    for bad in [
        "since=tomorrowish",
        "resource=123",
        "limit=many",
        "colour=red",
    ] {
        let response = admin(
            &app,
            &token,
            Method::GET,
            &format!("/orgs/acme/changes?{bad}"),
            None,
        )
        .await;
        assert_scim_error(&response, 400, Some("invalidValue"));
        let name = bad.split('=').next().unwrap();
        assert!(
            response.body["detail"].as_str().unwrap().contains(name),
            "{:?}",
            response.body
        );
    }
    for unsupported in ["since=5", "resource=01a23d1e-bab9-72de-8c1f-5cd24712233a"] {
        let path = format!("/orgs/acme/rejected?{unsupported}");
        let refused = admin(&app, &token, Method::GET, &path, None).await;
        assert_scim_error(&refused, 400, Some("invalidValue"));
    }
    assert_scim_error(
        &admin(&app, &token, Method::GET, "/orgs/nowhere/changes", None).await,
        404,
        None,
    );

    let created = admin(
        &app,
        &token,
        Method::POST,
        "/orgs/acme/streams",
        Some(json!({"events": ["create", "delete"]})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert!(
        created.body["token"]
            .as_str()
            .unwrap()
            .starts_with("scimd_poll_")
    );
    let stream = created.body["stream"]["id"].as_str().unwrap().to_string();
    let listed = admin(&app, &token, Method::GET, "/orgs/acme/streams", None).await;
    assert_eq!(listed.body["streams"][0]["id"], stream.as_str());
    let bad = admin(
        &app,
        &token,
        Method::POST,
        "/orgs/acme/streams",
        Some(json!({"push": "ftp://x"})),
    )
    .await;
    assert_scim_error(&bad, 400, Some("invalidValue"));
    assert!(bad.body["detail"].as_str().unwrap().starts_with("push:"));
    // Another organization's stream is not found under this one.
    app.other_org("beta").await;
    let elsewhere = admin(
        &app,
        &token,
        Method::GET,
        &format!("/orgs/beta/streams/{stream}"),
        None,
    )
    .await;
    assert_scim_error(&elsewhere, 404, None);
    let gone = admin(
        &app,
        &token,
        Method::DELETE,
        &format!("/orgs/beta/streams/{stream}"),
        None,
    )
    .await;
    assert_scim_error(&gone, 404, None);
    let deleted = admin(
        &app,
        &token,
        Method::DELETE,
        &format!("/orgs/acme/streams/{stream}"),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = admin(
        &app,
        &token,
        Method::GET,
        &format!("/orgs/acme/streams/{stream}"),
        None,
    )
    .await;
    assert_scim_error(&gone, 404, None);
}

async fn every_admin_action_is_in_the_admin_audit_trail_with_its_operator(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = admin_key(&app).await;
    let response = app
        .client
        .post(format!("{}/admin/v1/orgs", app.address))
        .bearer_auth(&token)
        .header("user-agent", "terraform-provider-scimd/0.1")
        .header("x-request-id", "req-42")
        .json(&json!({"slug": "beta"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let trail = admin(&app, &token, Method::GET, "/audit", None).await;
    let actions = trail.body["actions"].as_array().unwrap();
    // The test's own fixtures came from the command line, then this request.
    let names: Vec<&str> = actions
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["org.create", "key.create", "admin-key.create", "org.create"]
    );
    assert_eq!(actions[0]["keyName"], "command line");
    let last = &actions[3];
    assert_eq!(last["orgSlug"], "beta");
    assert_eq!(last["keyName"], "ops");
    assert_eq!(last["userAgent"], "terraform-provider-scimd/0.1");
    assert_eq!(last["requestId"], "req-42");
    assert_eq!(last["clientAddr"], "127.0.0.1");
    // Paging on from an action.
    let after = actions[1]["id"].as_str().unwrap();
    let rest = admin(
        &app,
        &token,
        Method::GET,
        &format!("/audit?after={after}&limit=1"),
        None,
    )
    .await;
    assert_eq!(rest.body["actions"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["actions"][0]["action"], "admin-key.create");
}

/// Every operation of the admin API, with a path that names real things where it needs to.
const OPERATIONS: &[(&str, &str)] = &[
    ("GET", "/orgs"),
    ("POST", "/orgs"),
    ("GET", "/orgs/acme"),
    ("PATCH", "/orgs/acme"),
    ("DELETE", "/orgs/acme"),
    ("GET", "/orgs/acme/keys"),
    ("POST", "/orgs/acme/keys"),
    (
        "DELETE",
        "/orgs/acme/keys/01a23d1e-bab9-72de-8c1f-5cd24712233a",
    ),
    ("GET", "/orgs/acme/user-attributes"),
    ("POST", "/orgs/acme/user-attributes"),
    ("DELETE", "/orgs/acme/user-attributes/x"),
    ("GET", "/orgs/acme/changes"),
    ("GET", "/orgs/acme/rejected"),
    ("GET", "/orgs/acme/streams"),
    ("POST", "/orgs/acme/streams"),
    (
        "GET",
        "/orgs/acme/streams/01a23d1e-bab9-72de-8c1f-5cd24712233a",
    ),
    (
        "DELETE",
        "/orgs/acme/streams/01a23d1e-bab9-72de-8c1f-5cd24712233a",
    ),
    ("GET", "/deletions"),
    ("GET", "/admin-keys"),
    ("POST", "/admin-keys"),
    ("DELETE", "/admin-keys/01a23d1e-bab9-72de-8c1f-5cd24712233a"),
    ("GET", "/secrets"),
    ("POST", "/secrets"),
    ("DELETE", "/secrets/initial"),
    ("GET", "/audit"),
];

async fn every_admin_endpoint_refuses_other_keys_and_no_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let personal = app.key("acme", true).await;
    for (method, path) in OPERATIONS {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = (method == Method::POST || method == Method::PATCH).then(|| json!({}));
        for (token, status) in [(&app.token, 403), (&personal, 403), (&String::new(), 401)] {
            let refused = admin(&app, token, method.clone(), path, body.clone()).await;
            assert_scim_error(&refused, status, None);
        }
    }
    // Nothing was done: the organization and its key are as they were.
    assert_eq!(app.get("/scim/v2/Users").await.status, StatusCode::OK);
}

async fn a_token_without_kid_belongs_to_the_initial_secret(backend: Backend) {
    use base64::Engine;
    let app = TestApp::spawn(backend).await;
    // The claims of a key minted today, signed again without `kid` (as keys were minted
    // before secrets could rotate).
    let payload = app.token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    let without_kid = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    let works = app
        .request_as(&without_kid, Method::GET, "/scim/v2/Users", None)
        .await;
    assert_eq!(works.status, StatusCode::OK, "{:?}", works.body);

    // After a rotation it still works; once `initial` is retired it does not.
    let token = admin_key(&app).await;
    admin(&app, &token, Method::POST, "/secrets", None).await;
    let works = app
        .request_as(&without_kid, Method::GET, "/scim/v2/Users", None)
        .await;
    assert_eq!(works.status, StatusCode::OK);
    let retired = admin(
        &app,
        &token,
        Method::DELETE,
        "/secrets/initial?force=true",
        None,
    )
    .await;
    assert_eq!(retired.status, StatusCode::OK);
    let refused = app
        .request_as(&without_kid, Method::GET, "/scim/v2/Users", None)
        .await;
    assert_scim_error(&refused, 401, None);
}

/// Runs the `scimd` binary against the test's database; its stdout, or a panic with stderr.
fn cli(app: &TestApp, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_scimd"))
        .args(args)
        .env("DATABASE_URL", &app.database_url)
        .env("SCIMD_JWT_SECRET", SECRET)
        .env("RUST_LOG", "error")
        .output()
        .expect("run scimd");
    assert!(
        output.status.success(),
        "scimd {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

async fn the_command_line_offers_what_the_admin_api_does(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin_token = cli(&app, &["admin-key", "create", "--name", "cli-made"]);
    let token = admin_token.trim();
    assert_eq!(
        admin(&app, token, Method::GET, "/orgs", None).await.status,
        StatusCode::OK
    );
    cli(&app, &["org", "create", "beta"]);
    let beta = app.key("beta", false).await;
    app.request_as(
        &beta,
        Method::POST,
        "/scim/v2/Users",
        Some(json!({"userName": "b@beta.example"})),
    )
    .await;
    let listed = cli(&app, &["org", "list"]);
    assert!(
        listed.contains("acme") && listed.contains("beta"),
        "{listed}"
    );
    cli(&app, &["org", "rename", "beta", "beta-two"]);
    let one = cli(&app, &["org", "get", "beta-two"]);
    assert!(one.contains("users=1"), "{one}");
    cli(
        &app,
        &["user-attribute", "create", "--org", "beta-two", "team"],
    );
    cli(
        &app,
        &["user-attribute", "delete", "--org", "beta-two", "team"],
    );
    assert_eq!(
        cli(&app, &["user-attribute", "list", "--org", "beta-two"]),
        ""
    );
    let keys = cli(&app, &["key", "list", "--org", "acme"]);
    assert!(keys.contains("secret=initial"), "{keys}");

    let secret = cli(&app, &["secret", "rotate"]).trim().to_string();
    let secrets = cli(&app, &["secret", "list"]);
    assert!(
        secrets.contains(&secret) && secrets.contains("signs new keys"),
        "{secrets}"
    );

    // The deletion runs in the command itself; the servers' keys for it stop at once.
    cli(&app, &["org", "delete", "beta-two"]);
    assert_scim_error(
        &app.request_as(&beta, Method::GET, "/scim/v2/Users", None)
            .await,
        401,
        None,
    );
    let orgs = cli(&app, &["org", "list"]);
    assert!(!orgs.contains("beta"), "{orgs}");
    let log = cli(&app, &["admin-log"]);
    let actions: Vec<String> = log
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for expected in [
        "admin-key.create",
        "org.rename",
        "user-attribute.delete",
        "secret.rotate",
        "org.delete",
        "org.delete.finish",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }
    let admin_keys = cli(&app, &["admin-key", "list"]);
    let id = admin_keys.split('\t').next().unwrap().to_string();
    cli(&app, &["admin-key", "revoke", &id]);
    assert_scim_error(
        &admin(&app, token, Method::GET, "/orgs", None).await,
        401,
        None,
    );
}
