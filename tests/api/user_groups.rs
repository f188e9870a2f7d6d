//! A user's `groups` (RFC 7643 §4.1.2) are kept on its row by the database (migration 0018
//! `user_member_of`): every way a membership or a group's name changes shows in the user's
//! reads, by id, in a page and in a filter, and the migration's backfill rebuilds them from
//! the memberships held before it. A member's `display` in a group follows the user's
//! displayName (a column computed from the document, migration 0019).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{Backend, TestApp, filter_users, sql};
use crate::{backend_tests, postgres_tests};

postgres_tests!(a_member_change_rolled_back_to_end_a_deadlock_is_a_503_and_its_retry_is_applied);

backend_tests!(
    a_users_groups_follow_every_change_of_its_memberships_and_of_their_names,
    the_migration_gives_every_user_the_groups_it_was_a_member_of,
);

/// The `(display, value)` of each of a user's groups, in the order given.
fn groups_of(user: &Value) -> Vec<(String, String)> {
    user["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("no groups in {user}"))
        .iter()
        .map(|g| {
            (
                g["display"].as_str().unwrap_or_default().to_string(),
                g["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The user's groups as a read by id, the unfiltered first page and a `userName eq` filter
/// each show them; the three must agree.
async fn groups_everywhere(app: &TestApp, id: &str, user_name: &str) -> Vec<(String, String)> {
    let by_id = app.get(&format!("/scim/v2/Users/{id}")).await;
    assert_eq!(by_id.status, StatusCode::OK, "{:?}", by_id.body);
    let page = app.get("/scim/v2/Users?count=50").await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    let in_page = page.body["Resources"]
        .as_array()
        .and_then(|users| users.iter().find(|u| u["id"] == json!(id)))
        .cloned()
        .unwrap_or_else(|| panic!("{id} not in {:?}", page.body));
    let filtered = filter_users(app, &format!("userName eq \"{user_name}\"")).await;
    let groups = groups_of(&by_id.body);
    assert_eq!(groups_of(&in_page), groups, "page against read by id");
    assert_eq!(
        groups_of(&filtered["Resources"][0]),
        groups,
        "filter against read by id"
    );
    groups
}

fn member_patch(op: &str, value: Value) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": op, "path": "members", "value": value}],
    })
}

async fn a_users_groups_follow_every_change_of_its_memberships_and_of_their_names(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_user(json!({"userName": "ann@example.com"}))
        .await;
    let bob = app
        .create_user(json!({"userName": "bob@example.com"}))
        .await;
    let created = app
        .post(
            "/scim/v2/Groups",
            json!({"displayName": "Staff", "members": [{"value": ann}]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let staff = created.body["id"].as_str().expect("id").to_string();
    let other = app
        .post("/scim/v2/Groups", json!({"displayName": "admins"}))
        .await;
    let admins = other.body["id"].as_str().expect("id").to_string();
    let group_path = |id: &str| format!("/scim/v2/Groups/{id}");
    let named = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(d, v)| (d.to_string(), v.to_string()))
            .collect()
    };

    // Created with a member; a new user is in no group.
    assert_eq!(
        groups_everywhere(&app, &ann, "ann@example.com").await,
        named(&[("Staff", &staff)])
    );
    assert!(
        groups_everywhere(&app, &bob, "bob@example.com")
            .await
            .is_empty()
    );
    // A member's display in the group is the user's displayName, else its userName.
    let member_display = |group: Value| group["members"][0]["display"].clone();
    let read = app.get(&group_path(&staff)).await;
    assert_eq!(member_display(read.body), json!("ann@example.com"));
    let named_ann = app
        .request(
            Method::PATCH,
            &format!("/scim/v2/Users/{ann}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "displayName", "value": "Ann A"}],
            })),
        )
        .await;
    assert_eq!(named_ann.status, StatusCode::OK, "{:?}", named_ann.body);
    let read = app.get(&group_path(&staff)).await;
    assert_eq!(member_display(read.body), json!("Ann A"));

    // Added by PATCH, to two groups: in name order, whatever the case.
    for group in [&staff, &admins] {
        let added = app
            .request(
                Method::PATCH,
                &group_path(group),
                Some(member_patch("add", json!([{"value": bob}]))),
            )
            .await;
        assert!(added.status.is_success(), "{:?}", added.body);
    }
    assert_eq!(
        groups_everywhere(&app, &bob, "bob@example.com").await,
        named(&[("admins", &admins), ("Staff", &staff)])
    );

    // A group renamed by PATCH: each member shows the new name.
    let renamed = app
        .request(
            Method::PATCH,
            &group_path(&staff),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "Team"}],
            })),
        )
        .await;
    assert!(renamed.status.is_success(), "{:?}", renamed.body);
    assert_eq!(
        groups_everywhere(&app, &ann, "ann@example.com").await,
        named(&[("Team", &staff)])
    );
    assert_eq!(
        groups_everywhere(&app, &bob, "bob@example.com").await,
        named(&[("admins", &admins), ("Team", &staff)])
    );

    // A PUT that renames the group and replaces its members: the member it drops loses it.
    let put = app
        .put(
            &group_path(&staff),
            json!({"displayName": "Crew", "members": [{"value": bob}]}),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert!(
        groups_everywhere(&app, &ann, "ann@example.com")
            .await
            .is_empty()
    );
    assert_eq!(
        groups_everywhere(&app, &bob, "bob@example.com").await,
        named(&[("admins", &admins), ("Crew", &staff)])
    );

    // Removed by PATCH, and a group deleted.
    let removed = app
        .request(
            Method::PATCH,
            &group_path(&admins),
            Some(member_patch("remove", json!([{"value": bob}]))),
        )
        .await;
    assert!(removed.status.is_success(), "{:?}", removed.body);
    assert_eq!(
        groups_everywhere(&app, &bob, "bob@example.com").await,
        named(&[("Crew", &staff)])
    );
    let deleted = app.request(Method::DELETE, &group_path(&staff), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(
        groups_everywhere(&app, &bob, "bob@example.com")
            .await
            .is_empty()
    );
}

/// The last statement of migration 0018 of `dialect`: the backfill of every user's groups.
fn backfill_sql(dialect: &str) -> String {
    let path = format!(
        "{}/migrations/{dialect}/0018_user_member_of.sql",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("migration 0018");
    let last = text
        .split(";\n")
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .last()
        .expect("a statement");
    assert!(last.starts_with("update users"), "{last}");
    last.to_string()
}

async fn the_migration_gives_every_user_the_groups_it_was_a_member_of(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_user(json!({"userName": "ann@example.com"}))
        .await;
    let bob = app
        .create_user(json!({"userName": "bob@example.com"}))
        .await;
    let mut groups = Vec::new();
    for (name, members) in [
        ("One", json!([{"value": ann}, {"value": bob}])),
        ("Two", json!([{"value": ann}])),
    ] {
        let created = app
            .post(
                "/scim/v2/Groups",
                json!({"displayName": name, "members": members}),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        groups.push(created.body["id"].as_str().expect("id").to_string());
    }
    // The rows as the release before kept them (no groups on them), then the backfill.
    sql(&app, backend, "update users set member_of = '[]'").await;
    let read = app.get(&format!("/scim/v2/Users/{ann}")).await;
    assert!(groups_of(&read.body).is_empty(), "{:?}", read.body);
    let dialect = match backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    sql(&app, backend, &backfill_sql(dialect)).await;
    let expect = |pairs: &[(&str, &String)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(d, v)| (d.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        groups_everywhere(&app, &ann, "ann@example.com").await,
        expect(&[("One", &groups[0]), ("Two", &groups[1])])
    );
    assert_eq!(
        groups_everywhere(&app, &bob, "bob@example.com").await,
        expect(&[("One", &groups[0])])
    );
}

/// Adding two users to a group locks their rows (the trigger that keeps their groups) in id
/// order. A transaction that holds the second and then asks for the first closes a cycle,
/// which Postgres breaks by rolling one of the two back: when that is scimd's, the client
/// gets a 503 with `Retry-After`, nothing of the change is written, and the same request
/// made again is applied.
async fn a_member_change_rolled_back_to_end_a_deadlock_is_a_503_and_its_retry_is_applied() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let mut users = vec![
        app.create_user(json!({"userName": "ann@example.com"}))
            .await,
        app.create_user(json!({"userName": "bob@example.com"}))
            .await,
    ];
    users.sort();
    let created = app
        .post("/scim/v2/Groups", json!({"displayName": "Staff"}))
        .await;
    let path = format!(
        "/scim/v2/Groups/{}",
        created.body["id"].as_str().expect("id")
    );
    let add = member_patch("add", json!([{"value": users[0]}, {"value": users[1]}]));

    let mut other = sqlx::PgConnection::connect(&app.database_url)
        .await
        .expect("connect");
    let touch = "update users set modified_at = modified_at where id = $1::uuid";
    sqlx::query("begin")
        .execute(&mut other)
        .await
        .expect("begin");
    sqlx::query(touch)
        .bind(&users[1])
        .execute(&mut other)
        .await
        .expect("hold the second user");
    let cycle = async {
        // Once scimd's statement waits for the second user (holding the first), ask for the
        // first. Its own wait, not any: were another session's brief lock wait taken for it,
        // the other transaction would ask first, wait first, and be the one rolled back.
        let mut watcher = sqlx::PgConnection::connect(&app.database_url)
            .await
            .expect("connect");
        for _ in 0..500 {
            let waiting: i64 = sqlx::query_scalar(
                "select count(*) from pg_stat_activity where datname = current_database() \
                 and wait_event_type = 'Lock' and query like '%insert into group_members%'",
            )
            .fetch_one(&mut watcher)
            .await
            .expect("activity");
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Postgres looks for a cycle `deadlock_timeout` (1 s) after a backend starts to
        // wait: asking a while after scimd's wait began keeps scimd's look first even when a
        // loaded machine wakes its backend late.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let closed = sqlx::query(touch).bind(&users[0]).execute(&mut other).await;
        sqlx::query("rollback")
            .execute(&mut other)
            .await
            .expect("rollback");
        closed.is_ok()
    };
    let (answer, other_went_on) =
        tokio::join!(app.request(Method::PATCH, &path, Some(add.clone())), cycle);
    // Postgres rolled scimd's transaction back: the first to wait is the first to look for a
    // cycle (after `deadlock_timeout`), and it ends the cycle with its own transaction.
    assert!(
        other_went_on,
        "the other transaction was rolled back instead"
    );
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        answer.body
    );
    assert!(
        answer.header("retry-after").is_some(),
        "{:?}",
        answer.headers
    );
    for user in &users {
        let read = app.get(&format!("/scim/v2/Users/{user}")).await;
        assert!(groups_of(&read.body).is_empty(), "{:?}", read.body);
    }
    let again = app.request(Method::PATCH, &path, Some(add)).await;
    assert!(again.status.is_success(), "{:?}", again.body);
    for user in &users {
        let read = app.get(&format!("/scim/v2/Users/{user}")).await;
        assert_eq!(groups_of(&read.body).len(), 1, "{:?}", read.body);
    }
}
