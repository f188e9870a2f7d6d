//! Membership at scale: single-member changes on a 10,000-member group cost about what they
//! cost on a 10-member group, and `excludedAttributes=members` never reads membership rows.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, seeded};
use scimd::scim::interop::Profile;
use scimd::store::{GroupWrite, UserWrite};

backend_tests!(single_member_changes_do_not_grow_with_the_group);

async fn seed_users(app: &TestApp, n: usize) -> Vec<Uuid> {
    let store = &app.store.store;
    let org = store.org_by_slug("acme").await.expect("org").id;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("member{i}@example.com");
        let doc = json!({"userName": name});
        let user = UserWrite::from_doc(
            doc.as_object().expect("object").clone(),
            None,
            Profile::Reference,
        );
        ids.push(
            store
                .create_user(org, &user, &seeded())
                .await
                .expect("create")
                .id,
        );
    }
    ids
}

async fn group_with(app: &TestApp, name: &str, members: &[Uuid]) -> String {
    let store = &app.store.store;
    let org = store.org_by_slug("acme").await.expect("org").id;
    let doc = json!({"displayName": name});
    let group = GroupWrite::from_doc(doc.as_object().expect("object").clone()).expect("group");
    store
        .create_group(org, &group, members, &seeded())
        .await
        .expect("group")
        .id
        .to_string()
}

/// Median time of `rounds` add-then-remove PATCH pairs of one member.
async fn member_churn(app: &TestApp, group: &str, member: Uuid, rounds: usize) -> Duration {
    let path = format!("/scim/v2/Groups/{group}");
    let mut times = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        for op in ["add", "remove"] {
            let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": op, "path": "members", "value": [{"value": member}]}]});
            let response = app.request(Method::PATCH, &path, Some(body)).await;
            assert_eq!(
                response.status,
                StatusCode::NO_CONTENT,
                "{:?}",
                response.body
            );
        }
        times.push(started.elapsed());
    }
    times.sort();
    times[rounds / 2]
}

async fn single_member_changes_do_not_grow_with_the_group(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let users = seed_users(&app, 10_012).await;
    let (big_members, rest) = users.split_at(10_000);
    let big = group_with(&app, "Big", big_members).await;
    let small = group_with(&app, "Small", &rest[..10]).await;
    let outsider = rest[10];

    // Warm up both paths, then measure alternately so machine noise hits both alike.
    member_churn(&app, &small, outsider, 3).await;
    member_churn(&app, &big, outsider, 3).await;
    let small_time = member_churn(&app, &small, outsider, 15).await;
    let big_time = member_churn(&app, &big, outsider, 15).await;
    eprintln!(
        "member add+remove median: 10-member group {small_time:?}, 10,000-member group {big_time:?}"
    );
    // Generous: a whole-list rewrite of 10,000 members would be orders of magnitude slower.
    assert!(
        big_time <= small_time * 5 + Duration::from_millis(20),
        "10,000-member group {big_time:?} vs 10-member group {small_time:?}"
    );

    // Reading the big group without members returns no member list and stays cheap.
    let lean = app
        .get(&format!("/scim/v2/Groups/{big}?excludedAttributes=members"))
        .await;
    assert_eq!(lean.status, StatusCode::OK);
    assert!(lean.body.get("members").is_none());
    let full = app.get(&format!("/scim/v2/Groups/{big}")).await;
    assert_eq!(full.body["members"].as_array().map(Vec::len), Some(10_000));
    let listed = app.get("/scim/v2/Groups?excludedAttributes=members").await;
    assert!(
        listed.body["Resources"]
            .as_array()
            .expect("Resources")
            .iter()
            .all(|g| g.get("members").is_none())
    );
    let _: Value = listed.body;
}

/// Postgres: with `group_members` locked exclusively by another transaction, a read that
/// excludes members completes, while one that includes them waits: proof that the first never
/// touches membership rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluded_members_never_read_membership_rows() {
    if crate::helpers::postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    }
    use sqlx::Connection;
    let app = TestApp::spawn(Backend::Postgres).await;
    let members = seed_users(&app, 5).await;
    let group = group_with(&app, "Locked", &members).await;
    let mut locker = sqlx::PgConnection::connect(&app.database_url)
        .await
        .expect("connect");
    sqlx::query("begin")
        .execute(&mut locker)
        .await
        .expect("begin");
    sqlx::query("lock table group_members in access exclusive mode")
        .execute(&mut locker)
        .await
        .expect("lock");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("client");
    let get = |query: &str| {
        client
            .get(format!("{}/scim/v2/Groups/{group}{query}", app.address))
            .bearer_auth(&app.token)
            .send()
    };
    let lean = get("?excludedAttributes=members")
        .await
        .expect("lean read completes under the lock");
    assert_eq!(lean.status(), StatusCode::OK);
    let lean_list = client
        .get(format!(
            "{}/scim/v2/Groups?excludedAttributes=members",
            app.address
        ))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("lean list completes under the lock");
    assert_eq!(lean_list.status(), StatusCode::OK);
    assert!(
        get("").await.is_err(),
        "a read with members must wait for the lock"
    );
    sqlx::query("rollback")
        .execute(&mut locker)
        .await
        .expect("rollback");
}
