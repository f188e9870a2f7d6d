//! Hostile tenants, storage: statement timeouts free abandoned connections, one case-folding
//! rule on both databases, a stored document changed into something else, database files private to their owner, list pages within a byte
//! budget, and bulk membership changes in a bounded number of statements.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error, sql};
use scimd::store::{ListQuery, StoreOptions};

backend_tests!(
    a_statement_past_the_timeout_is_stopped_and_frees_its_connection,
    non_ascii_values_compare_case_insensitively_with_the_rust_fold,
    rows_without_folded_copies_are_refolded_at_start,
    a_stored_document_that_is_not_an_object_fails_reads_and_writes_and_stays_as_it_is,
    a_byte_budget_cuts_a_list_page_short_and_the_total_is_counted,
    ten_thousand_members_are_added_in_one_request,
);

/// Users seeded straight into the database (the API would take minutes): `users` users with
/// `emails` addresses each, in one statement.
async fn seed_users(app: &TestApp, backend: Backend, users: u32, emails: u32) {
    let org = app.store.store.org_by_slug(&app.org).await.expect("org").id;
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .expect("connect");
            sqlx::query(
                "with recursive n(i) as (select 1 union all select i + 1 from n where i < $2), \
                 e(j) as (select 1 union all select j + 1 from e where j < $3) \
                 insert into users (id, org_id, user_name, user_name_folded, active, doc, \
                 created_at, modified_at, version, doc_folded) \
                 select printf('00000000-0000-7000-8000-%012d', i), $1, 'seed' || i, 'seed' || i, \
                 1, d, i, i, 1, d from (select i, json_object('userName', 'seed' || i, 'emails', \
                 (select json_group_array(json_object('value', 'user' || i || '.' || j || \
                 '@example.com', 'type', 'work')) from e)) as d from n)",
            )
            .bind(org.to_string())
            .bind(users)
            .bind(emails)
            .execute(&mut conn)
            .await
            .expect("seed");
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&app.database_url)
                .await
                .expect("connect");
            sqlx::query(
                "insert into users (id, org_id, user_name, user_name_folded, active, doc, \
                 created_at, modified_at, version, doc_folded) \
                 select ('00000000-0000-7000-8000-' || lpad(i::text, 12, '0'))::uuid, $1, \
                 'seed' || i, 'seed' || i, true, d, i, i, 1, d from (select i, \
                 jsonb_build_object('userName', 'seed' || i, 'emails', (select \
                 jsonb_agg(jsonb_build_object('value', 'user' || i || '.' || j || '@example.com', \
                 'type', 'work')) from generate_series(1, $3) j)) as d \
                 from generate_series(1, $2) i) s",
            )
            .bind(org)
            .bind(users as i32)
            .bind(emails as i32)
            .execute(&mut conn)
            .await
            .expect("seed");
        }
    }
}

fn seeded_id(i: u32) -> Uuid {
    Uuid::parse_str(&format!("00000000-0000-7000-8000-{i:012}")).expect("uuid")
}

async fn a_statement_past_the_timeout_is_stopped_and_frees_its_connection(backend: Backend) {
    let mut settings = TestApp::settings();
    // This test is about the database's timeout, not the filter cost cap or the org limit.
    settings.limits.max_filter_multi_valued = 1_000;
    settings.org_concurrency = 64;
    let options = StoreOptions {
        statement_timeout: Some(Duration::from_secs(1)),
    };
    let app = TestApp::spawn_full(backend, settings, options).await;
    seed_users(&app, backend, 20_000, 30).await;
    // 30 scans of every user's 30 emails, none matching: tens of seconds of work.
    let filter = (0..30)
        .map(|i| format!("emails[value co \"nomatch{i}\"]"))
        .collect::<Vec<_>>()
        .join(" or ");
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": filter,
    });
    // As many at once as the SQLite read pool has connections: without a timeout, each would
    // hold one until its scan ended, and the GET below would wait for them.
    let started = Instant::now();
    let searches = (0..8).map(|_| app.post("/scim/v2/Users/.search", body.clone()));
    for response in futures::future::join_all(searches).await {
        assert_scim_error(&response, 503, None);
        assert!(response.header("retry-after").is_some(), "{:?}", response);
    }
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(8), "searches took {waited:?}");

    let started = Instant::now();
    let next = app.get("/scim/v2/Users?count=1").await;
    assert_eq!(next.status, StatusCode::OK, "{:?}", next.body);
    assert_eq!(next.body["totalResults"], 20_000);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the next request waited {:?}",
        started.elapsed()
    );
}

async fn non_ascii_values_compare_case_insensitively_with_the_rust_fold(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let oster = app
        .create_user(json!({
            "userName": "oester@example.com",
            "displayName": "ÄRZTE Team",
            "name": {"familyName": "ÖSTER", "givenName": "Änne"},
        }))
        .await;
    app.create_user(json!({"userName": "other@example.com", "name": {"familyName": "Oster"}}))
        .await;
    for filter in [
        r#"name.familyName eq "ÖSTER""#,
        r#"name.familyName eq "öster""#,
        r#"name.familyName eq "Öster""#,
        r#"name.familyName sw "ös""#,
        r#"name.givenName co "NN""#,
        r#"displayName sw "ärzte""#,
    ] {
        let found = app
            .get(&format!("/scim/v2/Users?filter={}", urlencode(filter)))
            .await;
        assert_eq!(found.status, StatusCode::OK, "{filter}: {:?}", found.body);
        assert_eq!(found.body["totalResults"], 1, "{filter}: {:?}", found.body);
        assert_eq!(found.body["Resources"][0]["id"], oster.as_str(), "{filter}");
    }
    // Uniqueness folds the same way: ÄRZTE and ärzte are one displayName.
    let first = app
        .post("/scim/v2/Groups", json!({"displayName": "ÄRZTE"}))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let second = app
        .post("/scim/v2/Groups", json!({"displayName": "ärzte"}))
        .await;
    assert_scim_error(&second, 409, Some("uniqueness"));
    let found = app
        .get(&format!(
            "/scim/v2/Groups?filter={}",
            urlencode(r#"displayName eq "Ärzte""#)
        ))
        .await;
    assert_eq!(found.body["totalResults"], 1, "{:?}", found.body);
}

async fn rows_without_folded_copies_are_refolded_at_start(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let oster = app
        .create_user(json!({"userName": "oester@example.com", "name": {"familyName": "ÖSTER"}}))
        .await;
    let group = app
        .post(
            "/scim/v2/Groups",
            json!({"displayName": "Team", "externalId": "ÄX"}),
        )
        .await;
    assert_eq!(group.status, StatusCode::CREATED, "{:?}", group.body);
    // A row as written before doc_folded existed.
    let forget = [
        "update users set doc_folded = null",
        "update groups set doc_folded = null",
    ];
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .expect("connect");
            for sql in forget {
                sqlx::query(sql).execute(&mut conn).await.expect("forget");
            }
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&app.database_url)
                .await
                .expect("connect");
            for sql in forget {
                sqlx::query(sql).execute(&mut conn).await.expect("forget");
            }
        }
    }
    let path = format!(
        "/scim/v2/Users?filter={}",
        urlencode(r#"name.familyName eq "öster""#)
    );
    assert_eq!(app.get(&path).await.body["totalResults"], 0);

    // What a restart does after the SQL migrations.
    app.store.store.migrate().await.expect("migrate");
    let found = app.get(&path).await;
    assert_eq!(found.body["totalResults"], 1, "{:?}", found.body);
    assert_eq!(found.body["Resources"][0]["id"], oster.as_str());
    let group = app
        .get(&format!(
            "/scim/v2/Groups?filter={}",
            urlencode(r#"externalId eq "ÄX""#)
        ))
        .await;
    assert_eq!(group.body["totalResults"], 1, "{:?}", group.body);
}

async fn a_byte_budget_cuts_a_list_page_short_and_the_total_is_counted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for i in 0..5 {
        app.create_user(
            json!({"userName": format!("u{i}@example.com"), "title": "x".repeat(1000)}),
        )
        .await;
    }
    let org = app.store.store.org_by_slug(&app.org).await.expect("org").id;
    let query = |byte_budget| ListQuery {
        filter: None,
        sort: None,
        start_index: 1,
        count: 100,
        cursor: None,
        byte_budget,
    };
    // Each document is a little over 1,000 bytes: a 2,500-byte budget stops after three.
    let page = app
        .store
        .store
        .users()
        .list(org, &query(Some(2_500)))
        .await
        .expect("list");
    assert_eq!(page.rows.len(), 3);
    assert!(page.truncated);
    assert_eq!(page.total, 5);
    // At least one row, however small the budget.
    let page = app
        .store
        .store
        .users()
        .list(org, &query(Some(1)))
        .await
        .expect("list");
    assert_eq!((page.rows.len(), page.truncated, page.total), (1, true, 5));
    // A budget the page fits in changes nothing.
    let page = app
        .store
        .store
        .users()
        .list(org, &query(Some(1 << 20)))
        .await
        .expect("list");
    assert_eq!((page.rows.len(), page.truncated, page.total), (5, false, 5));
    // The budget reached exactly at the last row: nothing follows, so not truncated.
    let filtered = ListQuery {
        filter: Some("userName eq \"u4@example.com\"".parse().expect("filter")),
        ..query(Some(1))
    };
    let page = app
        .store
        .store
        .users()
        .list(org, &filtered)
        .await
        .expect("list");
    assert_eq!((page.rows.len(), page.truncated, page.total), (1, false, 1));
}

async fn ten_thousand_members_are_added_in_one_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    seed_users(&app, backend, 10_000, 1).await;
    let members: Vec<_> = (1..=10_000u32)
        .chain([1, 2]) // duplicates are ignored
        .map(|i| json!({"value": seeded_id(i).to_string()}))
        .collect();
    let started = Instant::now();
    let group = app
        .post(
            "/scim/v2/Groups",
            json!({"displayName": "Everyone", "members": members}),
        )
        .await;
    let took = started.elapsed();
    assert_eq!(group.status, StatusCode::CREATED, "{:?}", group.body);
    eprintln!("{backend:?}: 10,000 members added in {took:?}");
    let id = group.body["id"].as_str().expect("id").to_string();
    let stored = app.get(&format!("/scim/v2/Groups/{id}")).await;
    assert_eq!(
        stored.body["members"].as_array().map(Vec::len),
        Some(10_000)
    );
    // One stranger among many known ids rejects the whole change, naming the stranger.
    let stranger = Uuid::now_v7();
    let patch = app
        .request(
            reqwest::Method::PATCH,
            &format!("/scim/v2/Groups/{id}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "members", "value":
                    [{"value": seeded_id(1).to_string()}, {"value": stranger.to_string()}]}],
            })),
        )
        .await;
    assert_scim_error(&patch, 400, Some("invalidValue"));
    assert!(
        patch.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&stranger.to_string())),
        "{:?}",
        patch.body
    );
    let stored = app.get(&format!("/scim/v2/Groups/{id}")).await;
    assert_eq!(
        stored.body["members"].as_array().map(Vec::len),
        Some(10_000)
    );
}

async fn a_stored_document_that_is_not_an_object_fails_reads_and_writes_and_stays_as_it_is(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "odd@example.com"}))
        .await;
    // Something other than scimd writes the row: valid JSON, but no document.
    sql(&app, backend, "update users set doc = '[1, 2]'").await;
    let path = format!("/scim/v2/Users/{id}");
    assert_scim_error(&app.get(&path).await, 500, None);
    assert_scim_error(
        &app.get(&format!("{path}?attributes=userName")).await,
        500,
        None,
    );
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Odd"}]
    });
    assert_scim_error(
        &app.request(reqwest::Method::PATCH, &path, Some(patch))
            .await,
        500,
        None,
    );
    let put = json!({"userName": "odd@example.com", "displayName": "Odd"});
    assert_scim_error(&app.put(&path, put).await, 500, None);
    // Neither write took the document for an empty one: the row is as it was left.
    let doc = sql(&app, backend, "select cast(doc as text) from users").await;
    let doc: serde_json::Value = serde_json::from_str(&doc.expect("doc")).expect("json");
    assert_eq!(doc, json!([1, 2]));
    let version = sql(&app, backend, "select cast(version as text) from users").await;
    assert_eq!(version.as_deref(), Some("1"));
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(unix)]
mod files {
    use std::os::unix::fs::PermissionsExt;

    use serde_json::json;

    use crate::helpers::{Backend, TestApp};
    use scimd::store::StoreOptions;

    fn mode(path: &str) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[tokio::test]
    async fn a_new_sqlite_database_and_its_wal_are_private() {
        let app = TestApp::spawn(Backend::Sqlite).await;
        app.create_user(json!({"userName": "ann@example.com"}))
            .await;
        let file = app.database_url.trim_start_matches("sqlite://").to_string();
        assert_eq!(mode(&file), 0o600, "{file}");
        for companion in ["-wal", "-shm"] {
            let path = format!("{file}{companion}");
            assert_eq!(mode(&path), 0o600, "{path}");
        }
    }

    #[tokio::test]
    async fn an_existing_world_readable_database_is_made_private() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("old.db");
        std::fs::write(&file, b"").expect("create");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let url = format!("sqlite://{}", file.display());
        let store = scimd::store::connect(&url, &StoreOptions::default())
            .await
            .expect("open");
        assert_eq!(mode(&file.to_string_lossy()), 0o600);
        assert!(store.migrations_current().await.expect("migrations"));
    }
}
