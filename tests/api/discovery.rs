//! Discovery (RFC 7644 §4): generated from the schema definitions, authenticated, 405 for
//! other methods, 404 for unknown ids.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, assert_scim_error};

backend_tests!(
    service_provider_config_tells_what_is_supported,
    resource_types_list_user_and_group_with_their_extensions,
    schemas_include_core_enterprise_and_omni_with_the_orgs_attribute_keys,
    discovery_needs_a_key_refuses_writes_and_404s_unknown_ids,
);

async fn service_provider_config_tells_what_is_supported(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.get("/scim/v2/ServiceProviderConfig").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.header("content-type"),
        Some("application/scim+json")
    );
    let body = &response.body;
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(body["patch"]["supported"], true);
    assert_eq!(
        body["bulk"],
        json!({"supported": true, "maxOperations": 1000, "maxPayloadSize": 1_048_576})
    );
    assert_eq!(body["filter"]["supported"], true);
    assert_eq!(body["filter"]["maxResults"], 1000);
    assert_eq!(body["sort"]["supported"], true);
    assert_eq!(body["etag"]["supported"], true);
    assert_eq!(body["changePassword"]["supported"], true);
    assert_eq!(body["pagination"]["cursor"], true);
    assert_eq!(body["authenticationSchemes"][0]["type"], "oauthbearertoken");
}

async fn resource_types_list_user_and_group_with_their_extensions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let list = app.get("/scim/v2/ResourceTypes").await;
    assert_eq!(list.body["totalResults"], 3);
    let ids: Vec<&str> = list.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["User", "Group", "GroupMember"]);
    let user = app.get("/scim/v2/ResourceTypes/User").await;
    assert_eq!(user.body["endpoint"], "/Users");
    assert_eq!(
        user.body["schema"],
        "urn:ietf:params:scim:schemas:core:2.0:User"
    );
    let extensions: Vec<&str> = user.body["schemaExtensions"]
        .as_array()
        .expect("schemaExtensions")
        .iter()
        .map(|e| e["schema"].as_str().expect("schema"))
        .collect();
    assert!(extensions.contains(&"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
    assert!(extensions.contains(&"urn:omni:params:1.0:UserAttribute"));
}

async fn schemas_include_core_enterprise_and_omni_with_the_orgs_attribute_keys(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.define_attribute("good_blob").await;
    let list = app.get("/scim/v2/Schemas").await;
    let ids: Vec<&str> = list.body["Resources"]
        .as_array()
        .expect("Resources")
        .iter()
        .map(|r| r["id"].as_str().expect("id"))
        .collect();
    for want in [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "urn:omni:params:1.0:UserAttribute",
        "urn:omni:params:scim:schemas:extension:user:2.0",
    ] {
        assert!(ids.contains(&want), "{want} in {ids:?}");
    }
    let user = app
        .get("/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
        .await;
    let attribute = |name: &str| -> Value {
        user.body["attributes"]
            .as_array()
            .expect("attributes")
            .iter()
            .find(|a| a["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(attribute("userName")["uniqueness"], "server");
    assert_eq!(attribute("userName")["caseExact"], false);
    assert_eq!(attribute("password")["returned"], "never");
    assert_eq!(attribute("password")["mutability"], "writeOnly");
    let omni = app
        .get("/scim/v2/Schemas/urn:omni:params:1.0:UserAttribute")
        .await;
    assert_eq!(omni.body["attributes"][0]["name"], "good_blob");
}

async fn discovery_needs_a_key_refuses_writes_and_404s_unknown_ids(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anonymous = app
        .request_as("", Method::GET, "/scim/v2/Schemas", None)
        .await;
    assert_scim_error(&anonymous, 401, None);
    for path in [
        "/scim/v2/ServiceProviderConfig",
        "/scim/v2/Schemas",
        "/scim/v2/ResourceTypes",
    ] {
        let post = app.request(Method::POST, path, Some(json!({}))).await;
        assert_scim_error(&post, 405, None);
    }
    assert_scim_error(&app.get("/scim/v2/Schemas/urn:nope").await, 404, None);
    assert_scim_error(&app.get("/scim/v2/ResourceTypes/Nope").await, 404, None);
}
