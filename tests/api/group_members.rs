//! `/GroupMembers` (draft-zollner-scim-group-membership): memberships created, read,
//! listed and deleted one by one, always agreeing with `Group.members` and the change log;
//! paging that sees every member once while others change; a group too large to list inline.

use std::collections::HashSet;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error, enc};
use scimd::store::AuditQuery;

backend_tests!(
    memberships_are_created_read_listed_and_deleted_in_step_with_the_group,
    cursor_pages_of_a_group_see_each_lasting_member_once_while_others_come_and_go,
    a_response_over_the_inline_limit_points_at_the_memberships,
    group_members_are_announced_in_discovery,
);

const GROUP_MEMBER: &str = "urn:ietf:params:scim:schemas:core:2.0:GroupMember";

async fn users(app: &TestApp, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            app.create_user(json!({"userName": format!("{prefix}{i:03}@example.com")}))
                .await,
        );
    }
    ids
}

async fn group(app: &TestApp, name: &str, members: &[String]) -> String {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    let response = app
        .post(
            "/scim/v2/Groups",
            json!({"displayName": name, "members": members}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    response.body["id"].as_str().unwrap().to_string()
}

fn membership(group: &str, member: &str) -> Value {
    json!({"schemas": [GROUP_MEMBER], "group": {"value": group}, "member": {"value": member}})
}

/// The member ids of every membership of a list response.
fn members_of(body: &Value) -> Vec<String> {
    body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["member"]["value"].as_str().unwrap().to_string())
        .collect()
}

async fn group_member_ids(app: &TestApp, group: &str) -> HashSet<String> {
    let body = app.get(&format!("/scim/v2/Groups/{group}")).await.body;
    body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_string())
        .collect()
}

async fn memberships_are_created_read_listed_and_deleted_in_step_with_the_group(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let people = users(&app, "m", 2).await;
    let (ann, bob) = (&people[0], &people[1]);
    let admins = group(&app, "Admins", std::slice::from_ref(ann)).await;

    let created = app
        .post("/scim/v2/GroupMembers", membership(&admins, bob))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        created.header("location"),
        Some(format!("{}/scim/v2/GroupMembers/{id}", app.address).as_str())
    );
    assert_eq!(created.body["group"]["value"], admins.as_str());
    assert_eq!(created.body["member"]["value"], bob.as_str());
    assert_eq!(created.body["member"]["type"], "User");
    assert_eq!(created.body["meta"]["resourceType"], "GroupMember");
    assert_eq!(
        group_member_ids(&app, &admins).await,
        HashSet::from([ann.clone(), bob.clone()])
    );
    let read = app.get(&format!("/scim/v2/GroupMembers/{id}")).await;
    assert_eq!(read.body, created.body);

    // A duplicate, an unknown group, a stranger: refused, nothing changes.
    let duplicate = app
        .post("/scim/v2/GroupMembers", membership(&admins, bob))
        .await;
    assert_scim_error(&duplicate, 409, Some("uniqueness"));
    let nowhere = app
        .post(
            "/scim/v2/GroupMembers",
            membership(&uuid::Uuid::now_v7().to_string(), bob),
        )
        .await;
    assert_scim_error(&nowhere, 400, Some("invalidValue"));
    let stranger = app
        .post(
            "/scim/v2/GroupMembers",
            membership(&admins, &uuid::Uuid::now_v7().to_string()),
        )
        .await;
    assert_scim_error(&stranger, 400, Some("invalidValue"));
    let patch = app
        .request(
            Method::PUT,
            &format!("/scim/v2/GroupMembers/{id}"),
            Some(membership(&admins, ann)),
        )
        .await;
    assert_scim_error(&patch, 405, None);

    // Listed by group, by member, and both.
    let by_group = app
        .get(&format!(
            "/scim/v2/GroupMembers?filter={}",
            enc(&format!("group.value eq \"{admins}\""))
        ))
        .await;
    assert_eq!(by_group.body["totalResults"], 2, "{:?}", by_group.body);
    let mut listed = members_of(&by_group.body);
    listed.sort();
    let mut both = vec![ann.clone(), bob.clone()];
    both.sort();
    assert_eq!(listed, both);
    let by_member = app
        .get(&format!(
            "/scim/v2/GroupMembers?filter={}",
            enc(&format!("member.value eq \"{bob}\""))
        ))
        .await;
    assert_eq!(members_of(&by_member.body), [bob.as_str()]);
    let bad = app
        .get(&format!(
            "/scim/v2/GroupMembers?filter={}",
            enc("member.display eq \"x\"")
        ))
        .await;
    assert_scim_error(&bad, 400, Some("invalidFilter"));

    // Deleted: the member leaves the group; a second delete finds nothing.
    let deleted = app
        .request(Method::DELETE, &format!("/scim/v2/GroupMembers/{id}"), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        group_member_ids(&app, &admins).await,
        HashSet::from([ann.clone()])
    );
    assert_scim_error(
        &app.get(&format!("/scim/v2/GroupMembers/{id}")).await,
        404,
        None,
    );
    let again = app
        .request(Method::DELETE, &format!("/scim/v2/GroupMembers/{id}"), None)
        .await;
    assert_scim_error(&again, 404, None);

    // A PATCH of the group shows in the memberships too.
    let removed = app
        .request(
            Method::PATCH,
            &format!("/scim/v2/Groups/{admins}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "remove", "path": format!("members[value eq \"{ann}\"]")}]
            })),
        )
        .await;
    assert!(removed.status.is_success(), "{:?}", removed.body);
    let none = app
        .get(&format!(
            "/scim/v2/GroupMembers?filter={}",
            enc(&format!("group.value eq \"{admins}\""))
        ))
        .await;
    assert_eq!(none.body["totalResults"], 0);

    // The change log names each membership change as the group's patch.
    let store = &app.store.store;
    let org = store.org_by_slug(&app.org).await.unwrap().id;
    let query = AuditQuery {
        resource_id: Some(admins.parse().unwrap()),
        limit: 100,
        ..AuditQuery::default()
    };
    // On Postgres an entry shows once no older transaction is still open (other tests' too).
    let mut operations = Vec::new();
    for _ in 0..200 {
        operations = store
            .changes(org, &query)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.operation)
            .collect();
        if operations.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(operations, ["create", "patch", "patch", "patch"]);
}

async fn cursor_pages_of_a_group_see_each_lasting_member_once_while_others_come_and_go(
    backend: Backend,
) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let lasting = users(&app, "l", 30).await;
    let passing = users(&app, "p", 10).await;
    let team = group(&app, "Team", &lasting).await;
    let filter = enc(&format!("group.value eq \"{team}\""));

    // Other members join and leave the group while the pages are read.
    let churn = {
        let (app, team, passing) = (app.clone(), team.clone(), passing.clone());
        tokio::spawn(async move {
            for round in 0..4 {
                for user in &passing {
                    let path = "/scim/v2/GroupMembers";
                    let response = app.post(path, membership(&team, user)).await;
                    assert_eq!(response.status, StatusCode::CREATED, "round {round}");
                }
                for user in &passing {
                    let id = format!("{}{}", team.replace('-', ""), user.replace('-', ""));
                    let response = app
                        .request(Method::DELETE, &format!("/scim/v2/GroupMembers/{id}"), None)
                        .await;
                    assert_eq!(response.status, StatusCode::NO_CONTENT, "round {round}");
                }
            }
        })
    };
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for _ in 0..100 {
        let page = app
            .get(&format!(
                "/scim/v2/GroupMembers?count=4&cursor={cursor}&filter={filter}"
            ))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        seen.extend(members_of(&page.body));
        match page.body.get("nextCursor").and_then(Value::as_str) {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    churn.await.unwrap();
    let lasting_seen: Vec<&String> = seen.iter().filter(|m| lasting.contains(m)).collect();
    assert_eq!(
        lasting_seen.len(),
        lasting.len(),
        "each lasting member once"
    );
    let distinct: HashSet<&String> = lasting_seen.into_iter().collect();
    assert_eq!(distinct.len(), lasting.len());
    // Index pages, once the group is still: every member once, in (group, member) order.
    let mut by_index = Vec::new();
    for start in (1..=30).step_by(7) {
        let page = app
            .get(&format!(
                "/scim/v2/GroupMembers?startIndex={start}&count=7&filter={filter}"
            ))
            .await;
        assert_eq!(page.body["totalResults"], 30);
        by_index.extend(members_of(&page.body));
    }
    let mut sorted = lasting.clone();
    sorted.sort();
    assert_eq!(by_index, sorted);
}

async fn a_response_over_the_inline_limit_points_at_the_memberships(backend: Backend) {
    let settings = scimd::config::Settings {
        group_inline_members: 3,
        put_mode: scimd::config::PutMode::Replace,
        ..TestApp::settings()
    };
    let app = TestApp::spawn_with(backend, settings).await;
    let people = users(&app, "g", 4).await;
    let small = group(&app, "Small", &people[..3]).await;
    let large = group(&app, "Large", &people).await;

    let shown = app.get(&format!("/scim/v2/Groups/{small}")).await.body;
    assert_eq!(shown["members"].as_array().unwrap().len(), 3);
    assert_eq!(
        shown["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:Group"])
    );

    let shown = app.get(&format!("/scim/v2/Groups/{large}")).await.body;
    assert!(shown.get("members").is_none(), "{shown}");
    let extension = "urn:ietf:params:scim:schemas:extension:groupMembers:2.0:Group";
    let metadata = &shown[extension]["membersMetadata"];
    assert_eq!(metadata["policy"], "external");
    assert!(
        shown["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(extension))
    );
    // `ref` lists the group's memberships.
    let reference = metadata["ref"].as_str().unwrap();
    let path = reference.strip_prefix(&app.address).unwrap();
    let listed = app.get(path).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_eq!(listed.body["totalResults"], 4);
    // The pointer goes with `members` through a projection.
    let projected = app
        .get(&format!("/scim/v2/Groups/{large}?attributes=members"))
        .await
        .body;
    assert_eq!(
        projected[extension]["membersMetadata"]["policy"],
        "external"
    );
    let without = app
        .get(&format!(
            "/scim/v2/Groups/{large}?excludedAttributes=members"
        ))
        .await
        .body;
    assert!(without.get(extension).is_none(), "{without}");
    // Echoed back by a PUT (replace mode clears what a body leaves out), the group keeps its
    // members: they were not listed, not absent.
    let mut echoed = shown.clone();
    echoed["displayName"] = json!("Larger");
    let put = app.put(&format!("/scim/v2/Groups/{large}"), echoed).await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    let still = app.get(path).await;
    assert_eq!(still.body["totalResults"], 4);
    // A page of groups lists at most as many members in all: Small's three fill it, so a
    // second small group after it points at its memberships too.
    let pair = group(&app, "Pair", &people[..2]).await;
    let all = app.get("/scim/v2/Groups").await.body;
    let mut listed = 0;
    let mut elsewhere = Vec::new();
    for group in all["Resources"].as_array().unwrap() {
        match group.get("members").and_then(Value::as_array) {
            Some(members) => listed += members.len(),
            None => elsewhere.push(group["id"].as_str().unwrap().to_string()),
        }
    }
    assert_eq!(listed, 3, "{all}");
    assert_eq!(elsewhere, [large.as_str(), pair.as_str()]);
    // Alone, the pair is listed.
    let shown = app.get(&format!("/scim/v2/Groups/{pair}")).await.body;
    assert_eq!(shown["members"].as_array().unwrap().len(), 2);
}

async fn group_members_are_announced_in_discovery(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let types = app.get("/scim/v2/ResourceTypes/GroupMember").await;
    assert_eq!(types.status, StatusCode::OK, "{:?}", types.body);
    assert_eq!(types.body["endpoint"], "/GroupMembers");
    assert_eq!(types.body["schema"], GROUP_MEMBER);
    let schema = app.get(&format!("/scim/v2/Schemas/{GROUP_MEMBER}")).await;
    assert_eq!(schema.status, StatusCode::OK);
    let names: Vec<&str> = schema.body["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["group", "member"]);
}
