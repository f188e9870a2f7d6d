//! Filters over real databases (RFC 7644 §3.4.2.2): a table of filters and the users each
//! must select, run through `GET /Users` on SQLite and Postgres, plus the index check.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error, enc, filter_users, seeded};

backend_tests!(
    filter_table_selects_the_right_users,
    bad_filters_are_invalid_filter_errors
);

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The four users every case filters, and the id of a group holding ann and cat.
async fn seed(app: &TestApp) -> (Vec<String>, String) {
    app.define_attribute("good_blob").await;
    let users = [
        json!({"userName": "ann@example.com", "displayName": "Ann Smith", "title": "Engineer",
               "name": {"givenName": "Ann", "familyName": "Smith"}, "externalId": "E-1", "userType": "Employee",
               "emails": [{"value": "ann@example.com", "type": "work", "primary": true},
                          {"value": "ann@home.org", "type": "home"}],
               "phoneNumbers": [{"value": "555-0001", "type": "mobile"}],
               ENT: {"department": "R&D", "employeeNumber": "100", "manager": {"value": "m1"}},
               "urn:omni:params:1.0:UserAttribute": {"good_blob": "yes"}}),
        json!({"userName": "bob@example.com", "displayName": "Bob Jones", "title": "Manager",
               "name": {"givenName": "Bob", "familyName": "Jones"}, "externalId": "e-2", "active": false,
               "emails": [{"value": "bob@example.com", "type": "work"}],
               ENT: {"department": "Sales", "employeeNumber": "200"},
               "urn:omni:params:1.0:UserAttribute": {"good_blob": "no"}}),
        json!({"userName": "cat@other.org", "displayName": "Cat O'Brien",
               "name": {"givenName": "Cat", "familyName": "O'Brien"},
               "emails": [{"value": "cat@other.org", "type": "home"}],
               "addresses": [{"type": "work", "locality": "Springfield"}],
               ENT: {"department": "R&D"}}),
        json!({"userName": "dan@example.com", "displayName": "dan", "title": "engineer"}),
    ];
    let mut ids = Vec::new();
    for user in users {
        ids.push(app.create_user(user).await);
    }
    let group = app
        .post(
            "/scim/v2/Groups",
            json!({"displayName": "G", "members": [{"value": ids[0]}, {"value": ids[2]}]}),
        )
        .await;
    (
        ids,
        group.body["id"].as_str().expect("group id").to_string(),
    )
}

async fn select(app: &TestApp, filter: &str) -> BTreeSet<String> {
    let body = filter_users(app, filter).await;
    let names: BTreeSet<String> = body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|u| {
            u["userName"]
                .as_str()
                .expect("userName")
                .split('@')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        body["totalResults"].as_u64(),
        Some(names.len() as u64),
        "{filter}"
    );
    names
}

async fn filter_table_selects_the_right_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ids, group) = seed(&app).await;
    let all = "ann bob cat dan";
    let cases: Vec<(String, &str)> = vec![
        (r#"userName eq "ann@example.com""#.into(), "ann"),
        (r#"userName eq "ANN@EXAMPLE.COM""#.into(), "ann"),
        (r#"USERNAME EQ "dan@example.com""#.into(), "dan"),
        (r#"userName Eq "dan@example.com""#.into(), "dan"),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "ann@example.com""#.into(),
            "ann",
        ),
        (r#"userName ne "ann@example.com""#.into(), "bob cat dan"),
        (r#"userName co "EXAMPLE""#.into(), "ann bob dan"),
        (r#"userName sw "b""#.into(), "bob"),
        (r#"userName ew ".org""#.into(), "cat"),
        (r#"userName gt "bob@example.com""#.into(), "cat dan"),
        (r#"userName ge "bob@example.com""#.into(), "bob cat dan"),
        (r#"userName lt "bob@example.com""#.into(), "ann"),
        (r#"userName le "bob@example.com""#.into(), "ann bob"),
        ("userName pr".into(), all),
        ("title pr".into(), "ann bob dan"),
        ("not (title pr)".into(), "cat"),
        (r#"title eq "engineer""#.into(), "ann dan"),
        (r#"title eq "ENGINEER""#.into(), "ann dan"),
        (r#"title ne "engineer""#.into(), "bob cat"),
        (r#"title sw "eng""#.into(), "ann dan"),
        (r#"title sw """#.into(), "ann bob dan"),
        ("title eq null".into(), "cat"),
        ("title ne null".into(), "ann bob dan"),
        (r#"externalId eq "E-1""#.into(), "ann"),
        (r#"externalId eq "e-1""#.into(), ""),
        (r#"externalId eq "e-2""#.into(), "bob"),
        ("externalId pr".into(), "ann bob"),
        ("active eq true".into(), "ann cat dan"),
        ("active eq false".into(), "bob"),
        ("active ne true".into(), "bob"),
        ("not (active eq true)".into(), "bob"),
        (r#"displayName co "o""#.into(), "bob cat"),
        (r#"displayName sw "ann""#.into(), "ann"),
        (r#"displayName ew "JONES""#.into(), "bob"),
        (r#"displayName eq "Cat O'Brien""#.into(), "cat"),
        (r#"name.familyName eq "smith""#.into(), "ann"),
        (r#"name.givenName sw "c""#.into(), "cat"),
        (r#"name.familyName co "'""#.into(), "cat"),
        (r#"name.familyName gt "k""#.into(), "ann cat"),
        ("name pr".into(), "ann bob cat"),
        (r#"emails.value eq "ann@home.org""#.into(), "ann"),
        (r#"emails.value eq "ANN@HOME.ORG""#.into(), "ann"),
        (r#"emails.value co "example.com""#.into(), "ann bob dan"),
        (r#"emails.type eq "home""#.into(), "ann cat"),
        (
            r#"emails[type eq "work" and value co "@example.com"]"#.into(),
            "ann bob",
        ),
        (
            r#"emails[type eq "home" and value ew ".org"]"#.into(),
            "ann cat",
        ),
        (r#"emails[type eq "work" and value co "other"]"#.into(), ""),
        (r#"emails[not (type eq "work")]"#.into(), "ann cat dan"),
        ("emails[primary eq true]".into(), "ann dan"),
        ("emails pr".into(), "ann bob cat dan"),
        ("not (emails pr)".into(), ""),
        (r#"emails co "bob""#.into(), "bob"),
        (r#"phoneNumbers[type eq "mobile"]"#.into(), "ann"),
        (r#"phoneNumbers.value sw "555""#.into(), "ann"),
        (r#"addresses[locality eq "springfield"]"#.into(), "cat"),
        (format!(r#"{ENT}:department eq "R&D""#), "ann cat"),
        (format!(r#"{ENT}:department eq "r&d""#), "ann cat"),
        (format!(r#"{ENT}:employeeNumber eq "200""#), "bob"),
        (format!(r#"{ENT}:manager.value eq "m1""#), "ann"),
        (format!("{ENT}:department pr"), "ann bob cat"),
        (format!(r#"{ENT}:department ne "Sales""#), "ann cat dan"),
        (
            r#"urn:omni:params:1.0:UserAttribute:good_blob eq "yes""#.into(),
            "ann",
        ),
        (
            r#"urn:omni:params:1.0:UserAttribute:good_blob eq "YES""#.into(),
            "",
        ),
        (
            "urn:omni:params:1.0:UserAttribute:good_blob pr".into(),
            "ann bob",
        ),
        (r#"userType eq "employee""#.into(), "ann"),
        (
            r#"title eq "engineer" and active eq true"#.into(),
            "ann dan",
        ),
        (
            r#"title eq "engineer" or active eq false"#.into(),
            "ann bob dan",
        ),
        (
            r#"userName sw "a" or userName sw "b" and active eq true"#.into(),
            "ann",
        ),
        (
            r#"(userName sw "a" or userName sw "b") and active eq false"#.into(),
            "bob",
        ),
        (
            r#"not (userName eq "ann@example.com" or userName eq "bob@example.com")"#.into(),
            "cat dan",
        ),
        ("not (not (title pr))".into(), "ann bob dan"),
        (
            r#"displayName eq "Ann Smith" and not (title eq "manager")"#.into(),
            "ann",
        ),
        (
            r#"userName co "@" and userName ew "example.com""#.into(),
            "ann bob dan",
        ),
        (r#"meta.created gt "2000-01-01T00:00:00Z""#.into(), all),
        (r#"meta.lastModified lt "2000-01-01T00:00:00Z""#.into(), ""),
        (r#"meta.created ge "2999-01-01T00:00:00+02:00""#.into(), ""),
        (format!(r#"id eq "{}""#, ids[0]), "ann"),
        (
            format!(r#"id eq "{}" or id eq "{}""#, ids[1], ids[3]),
            "bob dan",
        ),
        (r#"id eq "not-a-uuid""#.into(), ""),
        (r#"id ne "not-a-uuid""#.into(), all),
        (format!(r#"groups.value eq "{group}""#), "ann cat"),
        (format!(r#"not (groups.value eq "{group}")"#), "bob dan"),
        (r#"userName eq "x' or 1=1 --""#.into(), ""),
        (r#"displayName eq "'; drop table users; --""#.into(), ""),
        (r#"displayName co "%""#.into(), ""),
        (r#"displayName co "_""#.into(), ""),
    ];
    assert!(cases.len() >= 80, "the table keeps at least 80 cases");
    for (filter, want) in &cases {
        let want: BTreeSet<String> = want.split_whitespace().map(str::to_string).collect();
        assert_eq!(select(&app, filter).await, want, "{filter}");
    }
    // The injection attempts were data: the table is intact.
    assert_eq!(select(&app, "userName pr").await.len(), 4);
}

async fn bad_filters_are_invalid_filter_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    seed(&app).await;
    for filter in [
        r#"nosuch eq "x""#,
        r#"name.nosuch eq "x""#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:nosuch eq "x""#,
        r#"active eq "yes""#,
        r#"meta.created gt "yesterday""#,
        r#"emails[nosuch eq "x"]"#,
        r#"userName[value eq "x"]"#,
        "title gt true",
        r#"groups.value co "x""#,
        r#"userName eq "unterminated"#,
        r#"userName eq "a" and"#,
        "",
    ] {
        if filter.is_empty() {
            continue;
        }
        let response = app
            .get(&format!("/scim/v2/Users?filter={}", enc(filter)))
            .await;
        assert_scim_error(&response, 400, Some("invalidFilter"));
        assert!(
            response.body["detail"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{filter}"
        );
    }
}

/// RFC 7644 filters on userName and externalId, and pages deep in a list, must be index
/// lookups, not scans: the plan Postgres chooses for the very statement scimd runs, over a
/// few thousand users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_plans_filters_and_deep_pages_as_index_scans() {
    if crate::helpers::postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    use scimd::store::filter_sql::{Dialect, SqlValue, USERS, list_sql};
    use scimd::store::{ListQuery, UserWrite};
    use sqlx::Connection;

    let app = TestApp::spawn(Backend::Postgres).await;
    let store = &app.store.store;
    let org = store.org_by_slug("acme").await.expect("org").id;
    for i in 0..3000 {
        let doc: Value =
            json!({"userName": format!("u{i}@example.com"), "externalId": format!("x{i}")});
        let user = UserWrite::from_doc(
            doc.as_object().expect("object").clone(),
            None,
            Default::default(),
        );
        store
            .create_user(org, &user, &seeded())
            .await
            .expect("create");
    }
    let mut conn = sqlx::PgConnection::connect(&app.database_url)
        .await
        .expect("connect");
    // Enough rows that reading every one costs more than a hundred key lookups, as in an
    // organization a deep page matters for (written directly: only the plan is looked at).
    sqlx::query(
        "insert into users (id, org_id, user_name, user_name_folded, doc, doc_folded, \
         created_at, modified_at, version) \
         select gen_random_uuid(), $1, n, n, jsonb_build_object('userName', n), \
         jsonb_build_object('userName', n), i, i, 1 \
         from generate_series(1, 15000) i, lateral (select 'bulk' || i || '@example.com') t(n)",
    )
    .bind(org)
    .execute(&mut conn)
    .await
    .expect("bulk users");
    sqlx::query("analyze users")
        .execute(&mut conn)
        .await
        .expect("analyze");
    // A page deep in the list reads its rows by primary key once the index walk found them.
    for (filter, start_index) in [
        (Some(r#"userName eq "u1234@example.com""#), 1),
        (Some(r#"externalId eq "x777""#), 1),
        (None, 10001),
    ] {
        let query = ListQuery {
            filter: filter.map(|f| f.parse().expect("filter")),
            sort: None,
            start_index,
            count: 100,
            cursor: None,
            byte_budget: None,
        };
        let statements = list_sql(Dialect::Postgres, &USERS, "users", "*", &query).expect("sql");
        let sql = format!("explain (format json) {}", statements.select);
        let mut explain = sqlx::query_scalar::<_, Value>(&sql).bind(org);
        for value in &statements.values {
            explain = match value {
                SqlValue::Text(v) => explain.bind(v.clone()),
                SqlValue::Int(v) => explain.bind(*v),
                SqlValue::Real(v) => explain.bind(*v),
                SqlValue::Bool(v) => explain.bind(*v),
                SqlValue::Uuid(v) => explain.bind(*v),
            };
        }
        let plan = explain
            .fetch_one(&mut conn)
            .await
            .expect("explain")
            .to_string();
        assert!(
            plan.contains("Index"),
            "{filter:?} from {start_index} is not index-backed: {plan}"
        );
        assert!(
            !plan.contains("Seq Scan"),
            "{filter:?} from {start_index} scans the table: {plan}"
        );
    }
}
