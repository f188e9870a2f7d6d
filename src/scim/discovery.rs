//! Discovery documents (RFC 7644 §4, RFC 7643 §5-7), generated from the same schema
//! definitions that validation and filtering use, so they cannot drift from behaviour.

use serde_json::{Value, json};

use super::schema::{
    AttrType, AttributeDef, Mutability, Returned, SchemaDef, USER_ATTRIBUTE, Uniqueness,
    all_schemas,
};

/// RFC 7643 §5: the ServiceProviderConfig schema URN.
pub const SERVICE_PROVIDER_CONFIG_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";

/// What one Bulk request may hold (RFC 7643 §5 `bulk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkLimits {
    pub max_operations: usize,
    pub max_payload_bytes: usize,
}

/// What scimd supports, truthfully (RFC 7643 §5), plus RFC 9865's pagination block and the
/// interoperability profile's `interopProfileConformant` (true only when `interop_conformant`:
/// the profile is served and clients reach scimd over TLS, which the profile requires), and
/// RFC 9865's `cursorTimeout`.
pub fn service_provider_config(
    base_url: &str,
    max_results: i64,
    default_count: i64,
    bulk: BulkLimits,
    interop_conformant: bool,
    cursor_timeout_s: u64,
) -> Value {
    json!({
        "interopProfileConformant": interop_conformant,
        "schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA],
        "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": bulk.max_operations,
            "maxPayloadSize": bulk.max_payload_bytes,
        },
        "filter": {"supported": true, "maxResults": max_results},
        "changePassword": {"supported": true},
        "sort": {"supported": true},
        "etag": {"supported": true},
        // RFC 9967 §4: the events this server publishes on its streams (RFC 8935 push, RFC
        // 8936 poll); no asynchronous requests.
        "securityEvents": {
            "asyncRequest": "none",
            "eventUris": crate::scim::events::EVENT_URIS,
        },
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": default_count,
            "maxPageSize": max_results,
            "cursorTimeout": cursor_timeout_s,
        },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication with an organization API key: Authorization: Bearer <key>",
            "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
            "primary": true,
        }],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": format!("{base_url}/ServiceProviderConfig"),
        },
    })
}

/// A schema's representation; the Omni user-attribute schema lists the organization's
/// defined keys as its attributes (they are data, not code).
pub fn schema_json(schema: &SchemaDef, base_url: &str, user_attribute_keys: &[String]) -> Value {
    let mut out = schema.to_json(base_url);
    if schema.id == USER_ATTRIBUTE.id {
        let attributes: Vec<Value> = user_attribute_keys
            .iter()
            .map(|key| user_attribute_def(key))
            .collect();
        out["attributes"] = Value::Array(attributes);
    }
    out
}

fn user_attribute_def(key: &str) -> Value {
    let mut def = AttributeDef {
        name: "",
        ty: AttrType::String,
        multi_valued: false,
        description: "An organization-defined user attribute",
        required: false,
        case_exact: true,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    }
    .to_json();
    def["name"] = json!(key);
    def
}

/// Every schema, by id (case-insensitive), or all of them.
pub fn find_schema(id: &str) -> Option<&'static SchemaDef> {
    all_schemas()
        .into_iter()
        .find(|s| s.id.eq_ignore_ascii_case(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_provider_config_is_truthful() {
        let bulk = BulkLimits {
            max_operations: 1000,
            max_payload_bytes: 1 << 20,
        };
        let config = service_provider_config("http://h/scim/v2", 1000, 100, bulk, false, 3600);
        assert_eq!(config["pagination"]["cursorTimeout"], 3600);
        assert_eq!(config["interopProfileConformant"], false);
        assert_eq!(config["bulk"]["supported"], true);
        assert_eq!(config["bulk"]["maxOperations"], 1000);
        assert_eq!(config["bulk"]["maxPayloadSize"], 1 << 20);
        assert_eq!(config["filter"]["maxResults"], 1000);
        assert_eq!(config["etag"]["supported"], true);
        assert_eq!(config["securityEvents"]["asyncRequest"], "none");
        assert!(
            config["securityEvents"]["eventUris"]
                .as_array()
                .unwrap()
                .len()
                >= 6
        );
        assert_eq!(
            config["authenticationSchemes"][0]["type"],
            "oauthbearertoken"
        );
        assert_eq!(
            config["meta"]["location"],
            "http://h/scim/v2/ServiceProviderConfig"
        );
    }

    #[test]
    fn user_attribute_schema_lists_the_org_keys() {
        let keys = vec!["good_blob".to_string(), "team".to_string()];
        let schema = schema_json(&USER_ATTRIBUTE, "http://h", &keys);
        let names: Vec<&str> = schema["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["good_blob", "team"]);
    }

    #[test]
    fn schemas_are_found_by_id_in_any_case() {
        assert!(find_schema("urn:ietf:params:scim:schemas:core:2.0:user").is_some());
        assert!(find_schema("urn:nope").is_none());
    }
}
