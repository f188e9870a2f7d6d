//! The change log: every acknowledged write has exactly one entry, written in its own
//! transaction, naming the key and the request; a write that failed or changed nothing has
//! none; concurrent writers never make a follower skip an entry; rejected writes are recorded
//! within their bound and printed by `scimd audit`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestResponse};
use scimd::store::{AuditQuery, ChangeEntry, RejectedWrite};

backend_tests!(
    every_acknowledged_write_has_exactly_one_entry,
    a_put_that_repeats_the_password_changes_nothing,
    group_membership_changes_are_counted_and_named,
    concurrent_writers_never_make_a_follower_skip_an_entry,
    rejected_writes_are_recorded_with_the_key_and_the_scim_type,
    a_flood_of_bad_requests_stays_within_the_bound,
    scimd_audit_prints_changes_and_rejected_writes,
    positions_keep_rising_after_retention_pruned_everything,
    member_patches_are_logged_with_their_counts_and_ids,
    concurrent_member_changes_of_one_group_keep_their_own_versions_entries_and_refusals,
);

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

async fn org_id(app: &TestApp) -> Uuid {
    app.store.store.org_by_slug(&app.org).await.expect("org").id
}

/// Every entry of the test's organization, in log order, once at least `n` are visible.
/// On Postgres an entry becomes visible when every transaction of the cluster older than
/// it has ended, and other tests' transactions run in the same cluster: hence the wait.
async fn log(app: &TestApp, n: usize) -> Vec<ChangeEntry> {
    let org = org_id(app).await;
    settled(app, org, None, n).await
}

/// The entries after `position`, once at least `n` are visible. A slow test elsewhere in the
/// cluster (a bulk seed, a debug build under load) can hold the watermark back for many
/// seconds, so the wait is long; when it runs out, the failure names what held it.
async fn settled(app: &TestApp, org: Uuid, position: Option<i64>, n: usize) -> Vec<ChangeEntry> {
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let entries = log_after(app, org, position).await;
        if entries.len() >= n {
            return entries;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "{} of {n} entries visible after 180 s; transactions holding the watermark: {}",
                entries.len(),
                oldest_writers(app).await
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Postgres: the transactions of the cluster that hold an id, oldest first (what keeps the
/// change log's watermark where it is).
async fn oldest_writers(app: &TestApp) -> String {
    use sqlx::Connection;
    if !app.database_url.starts_with("postgres") {
        return "none (SQLite)".into();
    }
    let Ok(mut conn) = sqlx::PgConnection::connect(&app.database_url).await else {
        return "unknown (no connection)".into();
    };
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "select backend_xid::text, coalesce(datname, ''), left(coalesce(query, ''), 120) \
         from pg_stat_activity where backend_xid is not null \
         order by age(backend_xid) desc limit 5",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap_or_default();
    format!("{rows:?}")
}

/// The entries after `position` (a follower's next read).
async fn log_after(app: &TestApp, org: Uuid, position: Option<i64>) -> Vec<ChangeEntry> {
    let query = AuditQuery {
        after_position: position,
        limit: 100_000,
        ..AuditQuery::default()
    };
    app.store.store.changes(org, &query).await.expect("changes")
}

/// A request with a request id and a `User-Agent`, as an IdP sends them.
async fn send(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> TestResponse {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(&app.token)
        .header("x-request-id", "req-1")
        .header("user-agent", "Okta SCIM Client 1.0");
    if let Some(body) = body {
        request = request
            .header("content-type", "application/scim+json")
            .body(body.to_string());
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    TestResponse {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn patch(operations: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": operations})
}

async fn every_acknowledged_write_has_exactly_one_entry(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = send(
        &app,
        Method::POST,
        "/scim/v2/Users",
        Some(
            json!({"userName": "ada@example.com", "externalId": "okta-1",
                    "title": "Engineer", "password": "s3cret-Passw0rd"}),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().expect("id").to_string();
    let path = format!("/scim/v2/Users/{id}");

    // A PUT that changes the title; the same PUT again (an IdP retry) changes nothing.
    let put = json!({"userName": "ada@example.com", "title": "Manager"});
    assert_eq!(
        send(&app, Method::PUT, &path, Some(put.clone()))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, Method::PUT, &path, Some(put)).await.status,
        StatusCode::OK
    );
    // A deactivation, then the same PATCH again.
    let deactivate = patch(json!([{"op": "replace", "path": "active", "value": false}]));
    for _ in 0..2 {
        let response = send(&app, Method::PATCH, &path, Some(deactivate.clone())).await;
        assert_eq!(response.status, StatusCode::OK);
    }
    // Writes that fail: a taken userName, a bad PATCH, an unknown id.
    app.create_user(json!({"userName": "grace@example.com"}))
        .await;
    let taken = json!({"userName": "grace@example.com"});
    assert_eq!(
        send(&app, Method::PUT, &path, Some(taken)).await.status,
        StatusCode::CONFLICT
    );
    let bad = patch(json!([{"op": "replace", "path": "nonsense[", "value": 1}]));
    assert_eq!(
        send(&app, Method::PATCH, &path, Some(bad)).await.status,
        StatusCode::BAD_REQUEST
    );
    let missing = format!("/scim/v2/Users/{}", Uuid::now_v7());
    assert_eq!(
        send(&app, Method::DELETE, &missing, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&app, Method::DELETE, &path, None).await.status,
        StatusCode::NO_CONTENT
    );

    let entries: Vec<ChangeEntry> = log(&app, 5)
        .await
        .into_iter()
        .filter(|e| e.resource_id.to_string() == id)
        .collect();
    let seen: Vec<(&str, i64, Option<&str>, Vec<&str>)> = entries
        .iter()
        .map(|e| {
            (
                e.operation.as_str(),
                e.version,
                e.activation.as_deref(),
                e.attributes.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "create",
                1,
                None,
                vec!["externalId", "password", "title", "userName"]
            ),
            ("put", 2, None, vec!["title"]),
            ("patch", 3, Some("deactivated"), vec!["active"]),
            ("delete", 3, None, vec![]),
        ]
    );
    let first = &entries[0];
    assert_eq!(first.resource_type, "User");
    assert_eq!(first.external_id.as_deref(), Some("okta-1"));
    assert_eq!(first.key_name.as_deref(), Some("test"));
    assert!(first.key_id.is_some());
    assert_eq!(first.request_id.as_deref(), Some("req-1"));
    assert_eq!(first.user_agent.as_deref(), Some("Okta SCIM Client 1.0"));
    assert_eq!(first.client_addr.as_deref(), Some("127.0.0.1"));
    let data = first.data.as_ref().expect("data");
    assert_eq!(data["title"], "Engineer");
    let all = serde_json::to_string(&entries).expect("json");
    assert!(
        !all.contains("s3cret"),
        "a password reached the change log: {all}"
    );
    assert!(
        !all.contains("argon2"),
        "a password hash reached the change log"
    );
    let positions: Vec<i64> = entries.iter().map(|e| e.position).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
}

async fn a_put_that_repeats_the_password_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({"userName": "ada@example.com", "password": "first-Passw0rd"});
    let id = app.create_user(body.clone()).await;
    let path = format!("/scim/v2/Users/{id}");
    let again = app.put(&path, body).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        again.body["meta"]["version"], "W/\"1\"",
        "a retried PUT made a version"
    );
    let changed = app
        .put(
            &path,
            json!({"userName": "ada@example.com", "password": "second-Passw0rd"}),
        )
        .await;
    assert_eq!(changed.body["meta"]["version"], "W/\"2\"");
    let patched = app
        .request(
            Method::PATCH,
            &path,
            Some(patch(json!([{"op": "replace", "path": "password",
                               "value": "third-Passw0rd"}]))),
        )
        .await;
    assert_eq!(patched.body["meta"]["version"], "W/\"3\"");
    let entries = log(&app, 3).await;
    let attributes: Vec<(&str, Vec<String>)> = entries
        .iter()
        .map(|e| (e.operation.as_str(), e.attributes.clone()))
        .collect();
    assert_eq!(
        attributes,
        [
            ("create", vec!["password".to_string(), "userName".into()]),
            ("put", vec!["password".to_string()]),
            ("patch", vec!["password".to_string()]),
        ]
    );
    let patch_data = entries[2].data.as_ref().expect("data");
    assert_eq!(
        patch_data["Operations"][0],
        json!({"op": "replace", "path": "password"}),
        "the password's value must not be kept"
    );
}

async fn group_membership_changes_are_counted_and_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut users = Vec::new();
    for i in 0..3 {
        users.push(
            app.create_user(json!({"userName": format!("u{i}@example.com")}))
                .await,
        );
    }
    let member = |id: &String| json!({"value": id});
    let created = app
        .post(
            "/scim/v2/Groups",
            json!({"displayName": "Ops", "members": [member(&users[0]), member(&users[1])]}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let group = created.body["id"].as_str().expect("id").to_string();
    let path = format!("/scim/v2/Groups/{group}");
    // A PUT with the same members (Entra retries) changes nothing; one with another set
    // replaces one member.
    let same = json!({"displayName": "Ops", "members": [member(&users[1]), member(&users[0])]});
    assert_eq!(app.put(&path, same).await.status, StatusCode::OK);
    let other = json!({"displayName": "Ops", "members": [member(&users[0]), member(&users[2])]});
    assert_eq!(app.put(&path, other).await.status, StatusCode::OK);
    // Deleting a member user records the group it left, on the user's entry.
    let user_path = format!("/scim/v2/Users/{}", users[0]);
    let deleted = app.request(Method::DELETE, &user_path, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    let entries = log(&app, 6).await;
    let group_entries: Vec<&ChangeEntry> = entries
        .iter()
        .filter(|e| e.resource_id.to_string() == group)
        .collect();
    assert_eq!(group_entries.len(), 2, "{group_entries:#?}");
    let create = group_entries[0];
    assert_eq!(create.attributes, ["displayName", "members"]);
    assert_eq!(
        create.memberships.as_ref().expect("memberships")["added"],
        2
    );
    let replace = group_entries[1];
    assert_eq!(replace.operation, "put");
    assert_eq!(replace.attributes, ["members"]);
    assert_eq!(
        replace.memberships,
        Some(json!({"added": 1, "removed": 1, "addedIds": [users[2]], "removedIds": [users[1]]}))
    );
    let user_delete = entries
        .iter()
        .find(|e| e.resource_id.to_string() == users[0] && e.operation == "delete")
        .expect("the user's delete entry");
    assert_eq!(
        user_delete.memberships,
        Some(json!({"added": 0, "removed": 1, "addedIds": [], "removedIds": [group]}))
    );
}

async fn concurrent_writers_never_make_a_follower_skip_an_entry(backend: Backend) {
    let app = std::sync::Arc::new(TestApp::spawn(backend).await);
    let org = org_id(&app).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(
            app.create_user(json!({"userName": format!("u{i}@example.com")}))
                .await,
        );
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The follower reads what is new after the last position it saw, again and again,
    // while the writers commit in whatever order the database lets them.
    let follower = {
        let (app, done) = (app.clone(), done.clone());
        tokio::spawn(async move {
            let mut seen: Vec<ChangeEntry> = Vec::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let last = seen.last().map(|e| e.position);
                seen.extend(log_after(&app, org, last).await);
                if finished {
                    // One more read after the writers stopped: everything is visible now.
                    let last = seen.last().map(|e| e.position);
                    seen.extend(log_after(&app, org, last).await);
                    return seen;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut writers = Vec::new();
    for writer in 0..8 {
        let (app, ids) = (app.clone(), ids.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = 0;
            for round in 0..15 {
                // Half the writers share users (row-lock waits), half write their own.
                let id = &ids[if writer % 2 == 0 { round % 8 } else { writer }];
                let body = patch(json!([{"op": "replace", "path": "title",
                                         "value": format!("w{writer}-r{round}")}]));
                let response = app
                    .request(Method::PATCH, &format!("/scim/v2/Users/{id}"), Some(body))
                    .await;
                assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
                acknowledged += 1;
            }
            acknowledged
        }));
    }
    let mut acknowledged = 8; // the creates
    for writer in writers {
        acknowledged += writer.await.expect("writer");
    }
    // Wait until everything committed is visible (Postgres: other transactions of the
    // cluster may hold the watermark back for a moment).
    settled(&app, org, None, acknowledged).await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let followed = follower.await.expect("follower");
    let everything = log_after(&app, org, None).await;
    assert_eq!(
        everything.len(),
        acknowledged,
        "one entry per acknowledged write"
    );
    let followed_positions: Vec<i64> = followed.iter().map(|e| e.position).collect();
    let all_positions: Vec<i64> = everything.iter().map(|e| e.position).collect();
    assert_eq!(
        followed_positions, all_positions,
        "the follower skipped or repeated an entry"
    );
    // Entries of one resource are in commit order: their versions rise by one.
    let mut versions: HashMap<Uuid, Vec<i64>> = HashMap::new();
    for entry in &everything {
        versions
            .entry(entry.resource_id)
            .or_default()
            .push(entry.version);
    }
    for (id, versions) in versions {
        let expected: Vec<i64> = (1..=versions.len() as i64).collect();
        assert_eq!(versions, expected, "entries of {id} out of commit order");
    }
}

/// The rejected writes of the test's organization, once `n` of them were stored (they are
/// written in the background).
async fn rejected(app: &TestApp, n: usize) -> Vec<RejectedWrite> {
    let org = org_id(app).await;
    let query = AuditQuery {
        limit: 10_000,
        ..AuditQuery::default()
    };
    for _ in 0..300 {
        let writes = app
            .store
            .store
            .rejected_writes(org, &query)
            .await
            .expect("rejected writes");
        if writes.len() >= n {
            return writes;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} rejected writes were recorded");
}

async fn rejected_writes_are_recorded_with_the_key_and_the_scim_type(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "ada@example.com"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    // Three refused writes…
    let taken = send(
        &app,
        Method::POST,
        "/scim/v2/Users",
        Some(json!({"userName": "ada@example.com"})),
    );
    assert_eq!(taken.await.status, StatusCode::CONFLICT);
    let bad = patch(json!([{"op": "replace", "path": "emails[type eq", "value": 1}]));
    assert_eq!(
        send(&app, Method::PATCH, &path, Some(bad)).await.status,
        StatusCode::BAD_REQUEST
    );
    let missing = format!("/scim/v2/Groups/{}", Uuid::now_v7());
    assert_eq!(
        send(&app, Method::DELETE, &missing, None).await.status,
        StatusCode::NOT_FOUND
    );
    // …and requests that are not recorded: a read, a search, a bad key.
    assert_eq!(app.get(&missing).await.status, StatusCode::NOT_FOUND);
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                        "filter": "nonsense"});
    assert_eq!(
        app.post("/scim/v2/Users/.search", search).await.status,
        StatusCode::BAD_REQUEST
    );
    let unauthorized = app
        .request_as("not-a-key", Method::POST, "/scim/v2/Users", Some(json!({})))
        .await;
    assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);

    let writes = rejected(&app, 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let writes_now = rejected(&app, 3).await;
    assert_eq!(
        writes_now.len(),
        3,
        "only the refused writes: {writes_now:#?}"
    );
    let seen: Vec<(&str, u16, Option<&str>)> = writes
        .iter()
        .map(|w| (w.method.as_str(), w.status, w.scim_type.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("POST", 409, Some("uniqueness")),
            ("PATCH", 400, Some("invalidPath")),
            ("DELETE", 404, None),
        ]
    );
    for write in &writes {
        assert_eq!(write.key_name.as_deref(), Some("test"));
        assert_eq!(write.request_id.as_deref(), Some("req-1"));
        assert_eq!(write.user_agent.as_deref(), Some("Okta SCIM Client 1.0"));
        assert!(write.detail.as_deref().is_some_and(|d| !d.is_empty()));
    }
    assert_eq!(writes[1].path, path);
}

async fn a_flood_of_bad_requests_stays_within_the_bound(backend: Backend) {
    let settings = scimd::config::Settings {
        rejected_writes_per_key_per_minute: 5,
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let other_key = app.key(&app.org, false).await;
    for _ in 0..60 {
        let response = app.post("/scim/v2/Users", json!({"userName": ""})).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
    }
    // Another key of the same organization has a bound of its own.
    let response = app
        .request_as(&other_key, Method::POST, "/scim/v2/Users", Some(json!({})))
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    rejected(&app, 6).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let writes = rejected(&app, 6).await;
    let keys: HashSet<Option<Uuid>> = writes.iter().map(|w| w.key_id).collect();
    assert_eq!(writes.len(), 6, "5 for the flooding key, 1 for the other");
    assert_eq!(keys.len(), 2);
    // What was over the bound is counted, not stored.
    let text = metrics_text(&app).await;
    assert!(
        text.contains("scimd_rejected_writes_total{outcome=\"dropped\"}"),
        "{text}"
    );
    assert!(
        text.contains("scimd_rejected_writes_total{outcome=\"recorded\"}"),
        "{text}"
    );
}

/// `/metrics` as text.
async fn metrics_text(app: &TestApp) -> String {
    app.client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

async fn scimd_audit_prints_changes_and_rejected_writes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_user(json!({"userName": "ada@example.com"}))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let deactivate = patch(json!([{"op": "replace", "path": "active", "value": false}]));
    assert_eq!(
        send(&app, Method::PATCH, &path, Some(deactivate))
            .await
            .status,
        StatusCode::OK
    );
    let taken = json!({"userName": "ada@example.com"});
    assert_eq!(
        send(&app, Method::POST, "/scim/v2/Users", Some(taken))
            .await
            .status,
        StatusCode::CONFLICT
    );
    rejected(&app, 1).await;
    log(&app, 2).await;

    let audit = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_scimd"))
            .arg("audit")
            .args(["--org", "acme"])
            .args(args)
            .env("DATABASE_URL", &app.database_url)
            .env("SCIMD_JWT_SECRET", crate::helpers::SECRET)
            .env("RUST_LOG", "error")
            .output()
            .expect("run scimd audit");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    };
    let table = audit(&["--resource", &id]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("POSITION"), "{table}");
    assert!(
        lines[1].contains("create") && lines[1].contains("test"),
        "{table}"
    );
    assert!(
        lines[2].contains("patch") && lines[2].contains("deactivated active"),
        "{table}"
    );
    assert!(lines[2].contains("req-1"), "{table}");

    let json_lines = audit(&["--json"]);
    let entries: Vec<Value> = json_lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(entries.len(), 2);
    let first_position = entries[0]["position"].as_i64().expect("position");
    let after_first = audit(&["--json", "--since", &first_position.to_string()]);
    assert_eq!(after_first.lines().count(), 1, "{after_first}");
    assert_eq!(audit(&["--json", "--since", "1h"]).lines().count(), 2);

    let failed = audit(&["--failed"]);
    assert!(
        failed.contains("409") && failed.contains("uniqueness"),
        "{failed}"
    );
    assert!(
        failed.contains("test") && failed.contains("POST"),
        "{failed}"
    );
    let key_id = entries[0]["keyId"].as_str().expect("key id");
    assert_eq!(audit(&["--json", "--key", key_id]).lines().count(), 2);
    assert_eq!(
        audit(&["--json", "--key", &Uuid::now_v7().to_string()])
            .lines()
            .count(),
        0
    );
}

async fn positions_keep_rising_after_retention_pruned_everything(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_user(json!({"userName": "ada@example.com"}))
        .await;
    let before = log(&app, 1).await;
    assert_eq!(before.len(), 1);
    let store = &app.store.store;
    // Everything is older than "a day from now".
    let pruned = scimd::audit::retention::prune_once(&**store, Duration::ZERO)
        .await
        .expect("prune");
    let future = scimd::store::now_ms() + 86_400_000;
    let more = store.prune_audit(future, 10).await.expect("prune");
    assert_eq!(pruned + more, 1);
    assert!(log(&app, 0).await.is_empty());
    app.create_user(json!({"userName": "grace@example.com"}))
        .await;
    let after = log(&app, 1).await;
    assert_eq!(after.len(), 1);
    assert!(
        after[0].position > before[0].position,
        "a follower at {} would skip {}",
        before[0].position,
        after[0].position
    );
}

/// Postgres: a transaction that took its position (its id) before a later one committed
/// holds followers back until it ends, so they read both, in order, instead of passing it by.
/// With a plain sequence or a timestamp as the position, the follower would read the later
/// entry first and never see the earlier one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_holds_followers_back_instead_of_letting_them_skip() {
    use sqlx::Connection;
    if crate::helpers::postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let org = org_id(&app).await;
    let id = app
        .create_user(json!({"userName": "ada@example.com"}))
        .await;
    let mut slow = sqlx::PgConnection::connect(&app.database_url)
        .await
        .expect("connect");
    let mut slow_tx = slow.begin().await.expect("begin");
    // The slow writer takes its position first and appends an entry as the store does...
    sqlx::query(
        "insert into changes (org_id, position, at, resource_type, resource_id, operation, \
         attributes, version) values ($1, pg_current_xact_id()::text::bigint * 1024, 0, 'User', $2, \
         'patch', '[\"title\"]', 2)",
    )
    .bind(org)
    .bind(Uuid::parse_str(&id).expect("uuid"))
    .execute(&mut *slow_tx)
    .await
    .expect("slow entry");
    // ...while a later write commits first.
    let fast = app
        .create_user(json!({"userName": "grace@example.com"}))
        .await;
    let create = settled(&app, org, None, 1).await;
    assert_eq!(
        create.len(),
        1,
        "only the first create is visible: {create:#?}"
    );
    let last = create.last().map(|e| e.position);
    slow_tx.commit().await.expect("commit");
    let next = settled(&app, org, last, 2).await;
    let order: Vec<(String, String)> = next
        .iter()
        .map(|e| (e.operation.clone(), e.resource_id.to_string()))
        .collect();
    assert_eq!(
        order,
        [("patch".to_string(), id), ("create".to_string(), fast)],
        "the follower must read the slow entry, then the fast one"
    );
}

/// A PATCH that only adds or only removes members (how IdPs maintain groups) is written by
/// one statement on Postgres: its entry, version and refusals must be those of any change.
async fn member_patches_are_logged_with_their_counts_and_ids(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut users = Vec::new();
    for i in 0..3 {
        users.push(
            app.create_user(json!({"userName": format!("m{i}@example.com")}))
                .await,
        );
    }
    let created = app
        .post("/scim/v2/Groups", json!({"displayName": "Eng"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let group = created.body["id"].as_str().expect("id").to_string();
    let path = format!("/scim/v2/Groups/{group}");
    let members = |op: &str, ids: &[&String]| {
        let value: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
        patch(json!([{"op": op, "path": "members", "value": value}]))
    };
    let send_patch = |body: Value| app.request(Method::PATCH, &path, Some(body));
    // Two added; then one of them again and a stranger: refused, nothing written.
    let added = send_patch(members("add", &[&users[0], &users[1]])).await;
    assert_eq!(added.status, StatusCode::NO_CONTENT, "{:?}", added.body);
    let stranger = Uuid::now_v7().to_string();
    let refused = send_patch(members("add", &[&users[2], &stranger])).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{:?}",
        refused.body
    );
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains(&stranger)
    );
    // Adding a member again and removing a non-member change nothing.
    let again = send_patch(members("add", &[&users[0]])).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    let absent = send_patch(members("remove", &[&users[2]])).await;
    assert_eq!(absent.status, StatusCode::NO_CONTENT);
    let removed = send_patch(members("remove", &[&users[1]])).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);

    let read = app.get(&path).await;
    assert_eq!(read.body["meta"]["version"], "W/\"3\"");
    let ids: Vec<&str> = read.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["value"].as_str())
        .collect();
    assert_eq!(ids, [users[0].as_str()]);
    let entries = log(&app, 6).await;
    let group_entries: Vec<&ChangeEntry> = entries
        .iter()
        .filter(|e| e.resource_id.to_string() == group)
        .collect();
    assert_eq!(group_entries.len(), 3, "{group_entries:#?}");
    let (add, remove) = (group_entries[1], group_entries[2]);
    assert_eq!((add.operation.as_str(), add.version), ("patch", 2));
    assert_eq!(add.attributes, ["members"]);
    let mut added_ids = add.memberships.as_ref().expect("memberships")["addedIds"]
        .as_array()
        .expect("ids")
        .clone();
    added_ids.sort_by_key(|v| v.to_string());
    let mut expected = vec![json!(users[0]), json!(users[1])];
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(added_ids, expected);
    assert_eq!(add.memberships.as_ref().expect("memberships")["added"], 2);
    assert_eq!(add.memberships.as_ref().expect("memberships")["removed"], 0);
    assert_eq!((remove.operation.as_str(), remove.version), ("patch", 3));
    assert_eq!(
        remove.memberships,
        Some(json!({"added": 0, "removed": 1, "addedIds": [], "removedIds": [users[1]]}))
    );
    assert!(add.position < remove.position);
}

/// Member changes of one group that arrive together are written together on Postgres (one
/// transaction for those queued behind a running one): each must still be answered as if it
/// ran alone, with its own version, its own entry at its own position, and a stranger to add
/// refused without failing the others.
async fn concurrent_member_changes_of_one_group_keep_their_own_versions_entries_and_refusals(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let mut users = Vec::new();
    for i in 0..30 {
        users.push(
            app.create_user(json!({"userName": format!("crowd{i}@example.com")}))
                .await,
        );
    }
    let created = app
        .post("/scim/v2/Groups", json!({"displayName": "Crowd"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let group = created.body["id"].as_str().expect("id").to_string();
    let path = format!("/scim/v2/Groups/{group}");
    let stranger = Uuid::now_v7().to_string();
    let mut ids: Vec<&String> = users.iter().collect();
    ids.insert(15, &stranger);
    let add = |id: &String| {
        let body = patch(json!([{"op": "add", "path": "members", "value": [{"value": id}]}]));
        app.request(Method::PATCH, &path, Some(body))
    };
    let answers = futures::future::join_all(ids.iter().map(|id| add(id))).await;
    for (id, answer) in ids.iter().zip(&answers) {
        if **id == stranger {
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{:?}", answer.body);
            assert_eq!(answer.body["scimType"], "invalidValue");
        } else {
            assert_eq!(answer.status, StatusCode::NO_CONTENT, "{:?}", answer.body);
        }
    }

    let read = app.get(&path).await;
    assert_eq!(read.body["meta"]["version"], "W/\"31\"");
    let mut members: Vec<&str> = read.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["value"].as_str())
        .collect();
    members.sort_unstable();
    let mut want: Vec<&str> = users.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(members, want);

    let entries = log(&app, 30 + 31).await;
    let patches: Vec<&ChangeEntry> = entries
        .iter()
        .filter(|e| e.resource_id.to_string() == group && e.operation == "patch")
        .collect();
    let versions: Vec<i64> = patches.iter().map(|e| e.version).collect();
    assert_eq!(versions, (2..=31).collect::<Vec<i64>>(), "in log order");
    let mut named: Vec<String> = patches
        .iter()
        .map(|e| {
            let memberships = e.memberships.as_ref().expect("memberships");
            assert_eq!(memberships["added"], 1);
            memberships["addedIds"][0].as_str().expect("id").to_string()
        })
        .collect();
    named.sort_unstable();
    assert_eq!(named, want, "each entry names its own member");
    let positions: HashSet<i64> = patches.iter().map(|e| e.position).collect();
    assert_eq!(positions.len(), 30);
    if backend == Backend::Postgres {
        // An entry's position is its transaction's id × 1024 plus its place in it: changes
        // that queued behind another were committed together.
        let transactions: HashSet<i64> = patches.iter().map(|e| e.position / 1024).collect();
        assert!(
            transactions.len() < patches.len(),
            "30 concurrent changes in {} transactions",
            transactions.len()
        );
    }
}
