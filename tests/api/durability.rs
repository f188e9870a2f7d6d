//! Durability: a write load against a real `scimd` process, SIGKILL in the middle of it, a
//! restart, and a check that every acknowledged write is there and nothing unacknowledged is
//! half-applied. `SCIMD_DURABILITY_SECONDS` lengthens the load (default: a short CI run).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, start_scimd};
use scimd::store::{AuditQuery, ChangeEntry};

backend_tests!(acknowledged_writes_survive_sigkill);

/// What the clients saw acknowledged.
#[derive(Default)]
struct Ledger {
    created: Vec<(String, String)>,
    deleted: Vec<String>,
    /// DELETEs sent whose answer never came: the server may or may not have committed them.
    delete_unanswered: Vec<String>,
    patched: Vec<(String, String)>,
}

async fn acknowledged_writes_survive_sigkill(backend: Backend) {
    // The test's own server only prepares the database (org, key); the load goes to a child.
    let app = TestApp::spawn(backend).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let server = start_scimd(&app.database_url, &listen).await;
    let base = format!("http://{listen}/scim/v2");
    let seconds: f64 = std::env::var("SCIMD_DURABILITY_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.5);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");

    let mut workers = Vec::new();
    for worker in 0..4 {
        let (client, base, token, ledger) = (
            client.clone(),
            base.clone(),
            app.token.clone(),
            ledger.clone(),
        );
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("w{worker}-{i}@example.com");
                let Ok(created) = client
                    .post(format!("{base}/Users"))
                    .bearer_auth(&token)
                    .json(&json!({"userName": name}))
                    .send()
                    .await
                else {
                    return;
                };
                if created.status() != StatusCode::CREATED {
                    return;
                }
                let Ok(body) = created.json::<Value>().await else {
                    return;
                };
                let id = body["id"].as_str().unwrap_or_default().to_string();
                ledger
                    .lock()
                    .expect("ledger")
                    .created
                    .push((id.clone(), name.clone()));
                // One PATCH sets two attributes together: both or neither may survive.
                let tag = format!("t{worker}-{i}");
                let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": "nickName", "value": tag},
                                   {"op": "add", "path": "title", "value": tag}]});
                let Ok(patched) = client
                    .patch(format!("{base}/Users/{id}"))
                    .bearer_auth(&token)
                    .json(&patch)
                    .send()
                    .await
                else {
                    return;
                };
                if patched.status() == StatusCode::OK {
                    ledger
                        .lock()
                        .expect("ledger")
                        .patched
                        .push((id.clone(), tag));
                }
                if i % 3 == 0 {
                    let Ok(deleted) = client
                        .delete(format!("{base}/Users/{id}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                    else {
                        ledger.lock().expect("ledger").delete_unanswered.push(id);
                        return;
                    };
                    if deleted.status() == StatusCode::NO_CONTENT {
                        ledger.lock().expect("ledger").deleted.push(id);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    drop(server); // SIGKILL while the workers are mid-request.
    for worker in workers {
        let _ = worker.await;
    }

    let _restarted = start_scimd(&app.database_url, &listen).await;
    let ledger = std::mem::take(&mut *ledger.lock().expect("ledger"));
    assert!(
        ledger.created.len() > 10,
        "the load ran ({} creates)",
        ledger.created.len()
    );
    let deleted: std::collections::HashSet<&String> = ledger.deleted.iter().collect();
    for (id, name) in &ledger.created {
        if ledger.delete_unanswered.contains(id) {
            continue; // the kill raced its DELETE: either outcome is correct
        }
        let response = client
            .get(format!("{base}/Users/{id}"))
            .bearer_auth(&app.token)
            .send()
            .await
            .expect("get");
        if deleted.contains(id) {
            assert_eq!(
                response.status(),
                StatusCode::NOT_FOUND,
                "acknowledged delete of {id} was lost"
            );
            continue;
        }
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "acknowledged create of {name} was lost"
        );
        let user: Value = response.json().await.expect("json");
        assert_eq!(user["userName"], name.as_str());
        // Never half-applied: nickName and title were written by one PATCH.
        assert_eq!(
            user.get("nickName"),
            user.get("title"),
            "half-applied PATCH on {id}"
        );
    }
    for (id, tag) in &ledger.patched {
        if deleted.contains(id) || ledger.delete_unanswered.contains(id) {
            continue;
        }
        let user: Value = client
            .get(format!("{base}/Users/{id}"))
            .bearer_auth(&app.token)
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(
            user["nickName"],
            tag.as_str(),
            "acknowledged PATCH of {id} was lost"
        );
    }
    change_log_matches_the_data(&app, &client, &base, &ledger).await;
    eprintln!(
        "durability ({backend:?}): {} creates, {} patches, {} deletes acknowledged; all present after SIGKILL",
        ledger.created.len(),
        ledger.patched.len(),
        ledger.deleted.len()
    );
}

/// After the kill, the change log and the data agree: every acknowledged write has its entry;
/// each user's entries run version 1, 2, … without a gap or a duplicate (so no entry exists
/// for a write that never committed); a user's last entry is its current version, or a
/// delete when it is gone; and a user without entries does not exist.
async fn change_log_matches_the_data(
    app: &TestApp,
    client: &reqwest::Client,
    base: &str,
    ledger: &Ledger,
) {
    let store = &app.store.store;
    let org = store.org_by_slug(&app.org).await.expect("org").id;
    let query = AuditQuery {
        limit: 1_000_000,
        ..AuditQuery::default()
    };
    // On Postgres an entry is visible once every older transaction of the cluster has ended
    // (other tests run in the same cluster, a slow one for many seconds): wait for the
    // acknowledged ones.
    let acknowledged = ledger.created.len() + ledger.patched.len() + ledger.deleted.len();
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let mut entries = store.changes(org, &query).await.expect("change log");
    while entries.len() < acknowledged && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        entries = store.changes(org, &query).await.expect("change log");
    }
    let mut by_user: std::collections::HashMap<String, Vec<&ChangeEntry>> = Default::default();
    for entry in &entries {
        by_user
            .entry(entry.resource_id.to_string())
            .or_default()
            .push(entry);
    }
    let has = |id: &str, operation: &str| {
        by_user
            .get(id)
            .is_some_and(|e| e.iter().any(|e| e.operation == operation))
    };
    for (id, _) in &ledger.created {
        assert!(
            has(id, "create"),
            "acknowledged create of {id} has no entry"
        );
    }
    for (id, _) in &ledger.patched {
        assert!(has(id, "patch"), "acknowledged PATCH of {id} has no entry");
    }
    for id in &ledger.deleted {
        assert!(
            has(id, "delete"),
            "acknowledged delete of {id} has no entry"
        );
    }
    for (id, user_entries) in &by_user {
        let versions: Vec<i64> = user_entries
            .iter()
            .filter(|e| e.operation != "delete")
            .map(|e| e.version)
            .collect();
        let expected: Vec<i64> = (1..=versions.len() as i64).collect();
        assert_eq!(
            versions, expected,
            "entries of {id} skip or repeat a version"
        );
        let response = client
            .get(format!("{base}/Users/{id}"))
            .bearer_auth(&app.token)
            .send()
            .await
            .expect("get");
        let last = user_entries.last().expect("an entry");
        if last.operation == "delete" {
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{id} deleted");
        } else {
            let user: Value = response.json().await.expect("json");
            assert_eq!(
                user["meta"]["version"],
                format!("W/\"{}\"", last.version),
                "the last entry of {id} is not its current version"
            );
        }
    }
    // Every page of users (a page holds at most SCIMD_MAX_RESULTS).
    let mut start = 1;
    loop {
        let page: Value = client
            .get(format!("{base}/Users?startIndex={start}&count=1000"))
            .bearer_auth(&app.token)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        let users = page["Resources"].as_array().cloned().unwrap_or_default();
        if users.is_empty() {
            break;
        }
        for user in &users {
            let id = user["id"].as_str().expect("id");
            assert!(has(id, "create"), "user {id} exists without a create entry");
        }
        start += users.len();
    }
}
