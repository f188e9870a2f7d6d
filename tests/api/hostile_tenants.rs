//! One hostile tenant, one innocent one: while organization `acme` sends the most expensive
//! requests the caps still allow (filters at the multi-valued cap, full list pages at the byte
//! budget, PATCHes at the operation cap, password changes), from more clients than its
//! concurrency allowance, organization `bystander`'s reads and writes keep being answered.
//!
//! The bar is the (generous for two cores and a debug build): at least 95 % of the
//! bystander's GETs and PUTs succeed, with a 99th percentile under 2 s.

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestResponse};
use scimd::scim::limits::Limits;
use scimd::store::StoreOptions;

backend_tests!(another_tenant_is_served_while_one_tenant_attacks);

/// How long the attack runs.
const ATTACK: Duration = Duration::from_secs(8);
/// Hostile clients of `acme` at once (more than its concurrency allowance).
const ATTACKERS: usize = 12;
/// Users `acme` owns, each with several emails for the filters to scan.
const HOSTILE_USERS: usize = 600;

fn patch_body(operations: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
}

/// `count` PATCH operations removing emails by a value filter (none of which match).
fn removals(count: usize) -> Value {
    let operations: Vec<Value> = (0..count)
        .map(|i| json!({"op": "remove", "path": format!("emails[value eq \"gone{i}@example.com\"]")}))
        .collect();
    json!(operations)
}

async fn patch_user(app: &TestApp, id: &str, operations: Value) -> TestResponse {
    app.request(
        Method::PATCH,
        &format!("/scim/v2/Users/{id}"),
        Some(patch_body(operations)),
    )
    .await
}

/// A filter with as many multi-valued predicates as the cap allows: each scans every email of
/// every user of the organization.
fn costliest_allowed_filter() -> String {
    (0..Limits::default().max_filter_multi_valued)
        .map(|i| format!("emails[value co \"nomatch{i}\"]"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The unbounded attacks, now refused by the caps: 40 multi-valued predicates in one
/// filter, and 5,000 value-filter removes in one PATCH (35 s of the SQLite writer before).
async fn unbounded_attack(app: &TestApp, round: usize, victim: &str) -> u16 {
    let response = if round.is_multiple_of(2) {
        let filter = (0..40)
            .map(|i| format!("emails[value co \"x{i}\" and type eq \"w\"]"))
            .collect::<Vec<_>>()
            .join(" or ");
        app.post(
            "/scim/v2/Users/.search",
            json!({"filter": filter, "count": 1000}),
        )
        .await
    } else {
        patch_user(app, victim, removals(5_000)).await
    };
    response.status.as_u16()
}

/// One hostile request, chosen by round: an expensive filter, a full list page, a PATCH at the
/// operation cap, a password change (argon2), or one of the unbounded attacks.
async fn attack_once(app: &TestApp, round: usize, victim: &str) {
    if round % 5 == 4 {
        let status = unbounded_attack(app, round / 5, victim).await;
        assert!(
            status == 400 || status == 413,
            "an attack beyond the caps must be refused, got {status}"
        );
        return;
    }
    let response = match round % 5 {
        0 => {
            app.post(
                "/scim/v2/Users/.search",
                json!({"filter": costliest_allowed_filter(), "count": 1000}),
            )
            .await
        }
        1 => app.get("/scim/v2/Users?count=1000").await,
        2 => {
            patch_user(
                app,
                victim,
                removals(Limits::default().max_patch_operations),
            )
            .await
        }
        _ => {
            let password =
                json!([{"op": "replace", "path": "password", "value": format!("pw-{round}")}]);
            patch_user(app, victim, password).await
        }
    };
    // Whatever the attacker gets (success, 4xx, 503, 504), the server must answer.
    assert!(
        response.status.as_u16() < 600,
        "hostile request {round}: {:?}",
        response.body
    );
}

async fn another_tenant_is_served_while_one_tenant_attacks(backend: Backend) {
    let settings = TestApp::settings();
    let options = StoreOptions {
        statement_timeout: Some(Duration::from_secs(5)),
    };
    let app = TestApp::spawn_full(backend, settings, options).await;

    // The hostile tenant's data: users with several emails each, created 8 at a time.
    let mut victim = String::new();
    for chunk in (0..HOSTILE_USERS).collect::<Vec<_>>().chunks(8) {
        let creates = chunk.iter().map(|i| {
            let emails: Vec<Value> = (0..8)
                .map(|e| json!({"value": format!("u{i}.e{e}@hostile.example"), "type": "work"}))
                .collect();
            app.create_user(json!({"userName": format!("u{i}@hostile.example"), "emails": emails}))
        });
        victim = join_all(creates).await.pop().expect("created");
    }

    // The bystander: its own organization, key and user.
    let bystander = app.other_org("bystander").await;
    let created = app
        .request_as(
            &bystander,
            Method::POST,
            "/scim/v2/Users",
            Some(json!({"userName": "calm@bystander.example"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let calm = format!(
        "/scim/v2/Users/{}",
        created.body["id"].as_str().expect("id")
    );

    let deadline = Instant::now() + ATTACK;
    let attackers = (0..ATTACKERS).map(|worker| {
        let app = &app;
        let victim = victim.as_str();
        async move {
            let mut round = worker;
            while Instant::now() < deadline {
                attack_once(app, round, victim).await;
                round += 1;
            }
        }
    });
    let bystanders = (0..2).map(|worker| {
        let app = &app;
        let bystander = bystander.as_str();
        let calm = calm.as_str();
        async move {
            let mut outcomes: Vec<(bool, Duration)> = Vec::new();
            let mut round = 0usize;
            // Starts after the attack is under way, ends with it.
            tokio::time::sleep(Duration::from_millis(500)).await;
            while Instant::now() < deadline {
                let started = Instant::now();
                let response = if worker == 0 {
                    app.request_as(bystander, Method::GET, calm, None).await
                } else {
                    app.request_as(
                        bystander,
                        Method::PUT,
                        calm,
                        Some(json!({"userName": "calm@bystander.example",
                                    "displayName": format!("Calm {round}")})),
                    )
                    .await
                };
                outcomes.push((response.status == StatusCode::OK, started.elapsed()));
                round += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            outcomes
        }
    });
    let (_, outcomes) = tokio::join!(join_all(attackers), join_all(bystanders));
    let mut outcomes: Vec<(bool, Duration)> = outcomes.into_iter().flatten().collect();

    assert!(
        outcomes.len() >= 10,
        "too few bystander requests: {}",
        outcomes.len()
    );
    let succeeded = outcomes.iter().filter(|(ok, _)| *ok).count();
    let rate = succeeded as f64 / outcomes.len() as f64;
    outcomes.sort_by_key(|(_, latency)| *latency);
    let p99 = outcomes[(outcomes.len() * 99 / 100).min(outcomes.len() - 1)].1;
    eprintln!(
        "{backend:?}: bystander {succeeded}/{} succeeded ({:.1} %), p99 {:?}",
        outcomes.len(),
        rate * 100.0,
        p99
    );
    assert!(rate >= 0.95, "bystander success rate {rate:.3}");
    assert!(p99 < Duration::from_secs(2), "bystander p99 {p99:?}");
}
