//! Identity-provider scenarios: the request sequences Okta's SCIM 2.0 integration and
//! Microsoft Entra ID's provisioning service send, step by step, asserting each response as
//! the IdP reads it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error};

backend_tests!(
    okta_user_lifecycle,
    okta_group_push,
    entra_user_lifecycle,
    entra_group_sync
);

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn enc(filter: &str) -> String {
    filter
        .replace('%', "%25")
        .replace(' ', "%20")
        .replace('"', "%22")
        .replace('&', "%26")
        .replace('+', "%2B")
}

/// Okta reads these as JSON integers.
fn assert_list_counts(body: &Value, total: i64, items: i64) {
    assert_eq!(body["totalResults"].as_i64(), Some(total), "{body}");
    assert_eq!(body["itemsPerPage"].as_i64(), Some(items), "{body}");
    assert!(body["startIndex"].is_i64(), "{body}");
}

async fn okta_user_lifecycle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // 1. Connection test / import check: a userName that does not exist.
    let probe = app
        .get(&format!(
            "/scim/v2/Users?filter={}&startIndex=1&count=100",
            enc("userName eq \"okta.probe@example.com\"")
        ))
        .await;
    assert_eq!(probe.status, StatusCode::OK);
    assert_list_counts(&probe.body, 0, 0);

    // 2. Create.
    let created = app
        .post(
            "/scim/v2/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "isaac.brock@example.com",
                "name": {"givenName": "Isaac", "familyName": "Brock"},
                "emails": [{"primary": true, "value": "isaac.brock@example.com", "type": "work"}],
                "displayName": "Isaac Brock",
                "locale": "en-US",
                "externalId": "00ujl29u0le5T6Aj10h7",
                "groups": [],
                "password": "1mz050nq",
                "active": true
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();
    assert!(created.body.get("password").is_none());

    // 3. Okta looks the user up by userName before assigning again.
    let found = app
        .get(&format!(
            "/scim/v2/Users?filter={}&startIndex=1&count=100",
            enc("userName eq \"isaac.brock@example.com\"")
        ))
        .await;
    assert_list_counts(&found.body, 1, 1);
    assert_eq!(found.body["Resources"][0]["id"], id.as_str());

    // 4. Read.
    let path = format!("/scim/v2/Users/{id}");
    let read = app.get(&path).await;
    assert_eq!(read.body["name"]["familyName"], "Brock");

    // 5. Full PUT with a changed name (app-wizard integrations send the whole user).
    let put = app
        .put(
            &path,
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": id,
                "userName": "isaac.brock@example.com",
                "name": {"givenName": "Isaac", "familyName": "Brock-Smith"},
                "emails": [{"primary": true, "value": "isaac.brock@example.com", "type": "work"}],
                "displayName": "Isaac Brock-Smith",
                "locale": "en-US",
                "externalId": "00ujl29u0le5T6Aj10h7",
                "groups": [],
                "active": true,
                "meta": {"resourceType": "User"}
            }),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert_eq!(put.body["name"]["familyName"], "Brock-Smith");

    // 6. Deactivate, then 7. reactivate, with Okta's path-less replace.
    for active in [false, true] {
        let patch = app
            .request(
                Method::PATCH,
                &path,
                Some(json!({"schemas": [PATCH_OP],
                            "Operations": [{"op": "replace", "value": {"active": active}}]})),
            )
            .await;
        assert_eq!(patch.status, StatusCode::OK, "{:?}", patch.body);
        assert_eq!(patch.body["active"], active);
        assert_eq!(patch.body["id"], id.as_str(), "soft delete keeps the id");
    }
    let deactivated_listing = app
        .get(&format!(
            "/scim/v2/Users?filter={}",
            enc("externalId eq \"00ujl29u0le5T6Aj10h7\"")
        ))
        .await;
    assert_list_counts(&deactivated_listing.body, 1, 1);
}

async fn okta_group_push(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_user(json!({"userName": "ann@example.com", "displayName": "Ann"}))
        .await;
    let bob = app
        .create_user(json!({"userName": "bob@example.com"}))
        .await;
    // Okta checks whether the group exists by displayName.
    let probe = app
        .get(&format!(
            "/scim/v2/Groups?filter={}&startIndex=1&count=100",
            enc("displayName eq \"Test SCIMv2\"")
        ))
        .await;
    assert_eq!(probe.status, StatusCode::OK, "{:?}", probe.body);
    assert_list_counts(&probe.body, 0, 0);
    let created = app
        .post(
            "/scim/v2/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                   "displayName": "Test SCIMv2", "members": []}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();
    let path = format!("/scim/v2/Groups/{id}");
    let add = app
        .request(
            Method::PATCH,
            &path,
            Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members",
                "value": [{"value": ann, "display": "ann@example.com"}, {"value": bob, "display": "bob@example.com"}]}]})),
        )
        .await;
    assert_eq!(add.status, StatusCode::NO_CONTENT, "{:?}", add.body);
    let rename = app
        .request(
            Method::PATCH,
            &path,
            Some(
                json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace",
                "value": {"id": id, "displayName": "Test SCIMv2 renamed"}}]}),
            ),
        )
        .await;
    assert_eq!(rename.status, StatusCode::NO_CONTENT, "{:?}", rename.body);
    let remove = app
        .request(
            Method::PATCH,
            &path,
            Some(
                json!({"schemas": [PATCH_OP], "Operations": [{"op": "remove",
                "path": format!("members[value eq \"{ann}\"]")}]}),
            ),
        )
        .await;
    assert_eq!(remove.status, StatusCode::NO_CONTENT);
    let group = app.get(&path).await;
    assert_eq!(group.body["displayName"], "Test SCIMv2 renamed");
    let members: Vec<&str> = group.body["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["value"].as_str().expect("value"))
        .collect();
    assert_eq!(members, [bob.as_str()]);
    let bob_user = app.get(&format!("/scim/v2/Users/{bob}")).await;
    assert_eq!(bob_user.body["groups"][0]["display"], "Test SCIMv2 renamed");
    let ann_user = app.get(&format!("/scim/v2/Users/{ann}")).await;
    assert_eq!(ann_user.body["groups"], json!([]));
    let deleted = app.request(Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let bob_user = app.get(&format!("/scim/v2/Users/{bob}")).await;
    assert_eq!(bob_user.body["groups"], json!([]));
}

async fn entra_user_lifecycle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Entra's connection test filters on a random, non-existent value.
    let probe = app
        .get(&format!(
            "/scim/v2/Users?filter={}",
            enc("userName eq \"7a5f0b1e-4bd2-4a3f-9a3e-0d5cbd1ab3d7\"")
        ))
        .await;
    assert_eq!(probe.status, StatusCode::OK);
    assert_list_counts(&probe.body, 0, 0);
    let manager = app
        .create_user(json!({"userName": "boss@contoso.com"}))
        .await;

    let created = app
        .post(
            "/scim/v2/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
                "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
                "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com",
                "active": true,
                "displayName": "Test User",
                "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@contoso.com"}],
                "meta": {"resourceType": "User"},
                "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
                "roles": [],
                ENTERPRISE: {"employeeNumber": "1234", "department": "Sales", "manager": {"value": manager}}
            }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();
    assert_eq!(created.body[ENTERPRISE]["department"], "Sales");

    // Entra matches on externalId (or userName) before updating.
    let matched = app
        .get(&format!(
            "/scim/v2/Users?filter={}",
            enc("externalId eq \"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef\"")
        ))
        .await;
    assert_list_counts(&matched.body, 1, 1);

    let path = format!("/scim/v2/Users/{id}");
    let update = app
        .request(
            Method::PATCH,
            &path,
            Some(json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "Replace", "path": "displayName", "value": "Test User 2"},
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updated@contoso.com"},
                {"op": "Replace", "path": "name.givenName", "value": "Given2"},
                {"op": "Replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0100"},
                {"op": "Add", "path": format!("{ENTERPRISE}:manager"), "value": manager},
                {"op": "Replace", "value": {"name.familyName": "Family2", format!("{ENTERPRISE}:employeeNumber"): "5678"}}
            ]})),
        )
        .await;
    assert_eq!(update.status, StatusCode::OK, "{:?}", update.body);
    let user = &update.body;
    assert_eq!(user["displayName"], "Test User 2");
    assert_eq!(user["emails"][0]["value"], "updated@contoso.com");
    assert_eq!(user["name"]["givenName"], "Given2");
    assert_eq!(user["name"]["familyName"], "Family2");
    assert_eq!(
        user["phoneNumbers"][0],
        json!({"type": "mobile", "value": "+1 555 0100"})
    );
    assert_eq!(user[ENTERPRISE]["manager"]["value"], manager.as_str());
    assert_eq!(user[ENTERPRISE]["employeeNumber"], "5678");

    // Disable with a boolean sent as a string, then remove the manager.
    let disable = app
        .request(
            Method::PATCH,
            &path,
            Some(json!({"schemas": [PATCH_OP],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})),
        )
        .await;
    assert_eq!(disable.body["active"], false);
    let no_manager = app
        .request(
            Method::PATCH,
            &path,
            Some(json!({"schemas": [PATCH_OP],
            "Operations": [{"op": "Remove", "path": format!("{ENTERPRISE}:manager")}]})),
        )
        .await;
    assert_eq!(no_manager.status, StatusCode::OK);
    assert!(
        no_manager.body[ENTERPRISE].get("manager").is_none(),
        "{}",
        no_manager.body
    );
    assert_eq!(no_manager.body[ENTERPRISE]["department"], "Sales");

    let deleted = app.request(Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_scim_error(&app.get(&path).await, 404, None);
}

async fn entra_group_sync(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ann = app
        .create_user(json!({"userName": "ann@contoso.com"}))
        .await;
    let bob = app
        .create_user(json!({"userName": "bob@contoso.com"}))
        .await;
    let created = app
        .post(
            "/scim/v2/Groups",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                   "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                   "displayName": "Group1DisplayName", "members": []}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().expect("id").to_string();
    // Entra reads groups without members, constantly.
    let listed = app
        .get(&format!(
            "/scim/v2/Groups?excludedAttributes=members&filter={}",
            enc("displayName eq \"Group1DisplayName\"")
        ))
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_list_counts(&listed.body, 1, 1);
    assert!(listed.body["Resources"][0].get("members").is_none());
    let path = format!("/scim/v2/Groups/{id}");
    let add = app
        .request(Method::PATCH, &path, Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "Add", "path": "members", "value": [{"$ref": null, "value": ann}, {"$ref": null, "value": bob}]}
        ]})))
        .await;
    assert_eq!(add.status, StatusCode::NO_CONTENT, "{:?}", add.body);
    let with_member = app
        .get(&format!(
            "/scim/v2/Groups?filter={}",
            enc(&format!("members.value eq \"{ann}\""))
        ))
        .await;
    assert_eq!(with_member.status, StatusCode::OK, "{:?}", with_member.body);
    assert_list_counts(&with_member.body, 1, 1);
    let remove = app
        .request(
            Method::PATCH,
            &path,
            Some(json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "Remove", "path": "members", "value": [{"value": ann}]}
            ]})),
        )
        .await;
    assert_eq!(remove.status, StatusCode::NO_CONTENT);
    let users_in_group = app
        .get(&format!(
            "/scim/v2/Users?filter={}",
            enc(&format!("groups.value eq \"{id}\""))
        ))
        .await;
    assert_eq!(
        users_in_group.status,
        StatusCode::OK,
        "{:?}",
        users_in_group.body
    );
    assert_list_counts(&users_in_group.body, 1, 1);
    assert_eq!(users_in_group.body["Resources"][0]["id"], bob.as_str());
    let deleted = app.request(Method::DELETE, &path, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}
