//! SCIM events (RFC 9967 §2.4): the event URIs this server publishes and how one change
//! becomes the `events` claim of a Security Event Token (RFC 8417). Pure: the caller supplies
//! what changed; signing and delivery live in `src/events/`.

use serde_json::{Map, Value, json};

/// RFC 9967 §2.4 provisioning events, by the short names streams select them with.
pub const EVENT_NAMES: [&str; 6] = ["create", "put", "patch", "delete", "activate", "deactivate"];

/// Every event URI this server can publish (RFC 9967 §4 `eventUris`).
pub const EVENT_URIS: [&str; 9] = [
    "urn:ietf:params:scim:event:prov:create:notice",
    "urn:ietf:params:scim:event:prov:create:full",
    "urn:ietf:params:scim:event:prov:put:notice",
    "urn:ietf:params:scim:event:prov:put:full",
    "urn:ietf:params:scim:event:prov:patch:notice",
    "urn:ietf:params:scim:event:prov:patch:full",
    "urn:ietf:params:scim:event:prov:delete",
    "urn:ietf:params:scim:event:prov:activate",
    "urn:ietf:params:scim:event:prov:deactivate",
];

const PREFIX: &str = "urn:ietf:params:scim:event:prov";

/// What a change was, as the events describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change<'a> {
    /// `create`, `put`, `patch` or `delete`.
    pub operation: &'a str,
    /// `activated` or `deactivated`, when `active` changed.
    pub activation: Option<&'a str>,
    pub attributes: &'a [String],
    /// The resource's ETag after the change.
    pub version: &'a str,
    /// The request's data (without passwords), for full events.
    pub data: Option<&'a Value>,
}

/// The `events` claim of the SET for `change`, keeping only the event names in `selected`
/// (see [`EVENT_NAMES`]); `full` events carry the data, notice events the attribute names
/// (RFC 9967 §2.4.1-2.4.3). `None` when no selected event applies.
pub fn events_claim(change: &Change<'_>, selected: &[String], full: bool) -> Option<Value> {
    let wanted = |name: &str| selected.iter().any(|s| s == name);
    let mut events = Map::new();
    match change.operation {
        op @ ("create" | "put" | "patch") if wanted(op) => {
            let (uri, payload) = if full {
                let data = change.data.cloned().unwrap_or_else(|| json!({}));
                (
                    format!("{PREFIX}:{op}:full"),
                    json!({"version": change.version, "data": data}),
                )
            } else {
                (
                    format!("{PREFIX}:{op}:notice"),
                    json!({"version": change.version, "attributes": change.attributes}),
                )
            };
            events.insert(uri, payload);
        }
        "delete" if wanted("delete") => {
            events.insert(format!("{PREFIX}:delete"), json!({}));
        }
        _ => {}
    }
    // RFC 9967 §2.4.5-2.4.6: in the same SET, as they arise from the same transaction.
    match change.activation {
        Some("activated") if wanted("activate") => {
            events.insert(format!("{PREFIX}:activate"), json!({}));
        }
        Some("deactivated") if wanted("deactivate") => {
            events.insert(format!("{PREFIX}:deactivate"), json!({}));
        }
        _ => {}
    }
    (!events.is_empty()).then_some(Value::Object(events))
}

/// RFC 9967 §2.1: the subject of an event, in the SCIM format.
pub fn subject(endpoint: &str, id: &str, external_id: Option<&str>) -> Value {
    let mut sub = json!({"format": "scim", "uri": format!("{endpoint}/{id}"), "id": id});
    if let Some(external_id) = external_id {
        sub["externalId"] = json!(external_id);
    }
    sub
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        EVENT_NAMES.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn events_follow_the_operation_the_mode_and_the_selection() {
        let attributes = vec!["active".to_string()];
        let data = json!({"Operations": []});
        let patch = Change {
            operation: "patch",
            activation: Some("deactivated"),
            attributes: &attributes,
            version: "W/\"3\"",
            data: Some(&data),
        };
        assert_eq!(
            events_claim(&patch, &all(), false),
            Some(json!({
                "urn:ietf:params:scim:event:prov:patch:notice":
                    {"version": "W/\"3\"", "attributes": ["active"]},
                "urn:ietf:params:scim:event:prov:deactivate": {},
            }))
        );
        assert_eq!(
            events_claim(&patch, &all(), true),
            Some(json!({
                "urn:ietf:params:scim:event:prov:patch:full":
                    {"version": "W/\"3\"", "data": {"Operations": []}},
                "urn:ietf:params:scim:event:prov:deactivate": {},
            }))
        );
        let only_deactivate = vec!["deactivate".to_string()];
        assert_eq!(
            events_claim(&patch, &only_deactivate, false),
            Some(json!({"urn:ietf:params:scim:event:prov:deactivate": {}}))
        );
        let only_create = vec!["create".to_string()];
        assert_eq!(events_claim(&patch, &only_create, false), None);
        let delete = Change {
            operation: "delete",
            activation: None,
            attributes: &[],
            version: "W/\"3\"",
            data: None,
        };
        assert_eq!(
            events_claim(&delete, &all(), true),
            Some(json!({"urn:ietf:params:scim:event:prov:delete": {}}))
        );
    }

    #[test]
    fn the_subject_is_the_resource_path_with_its_ids() {
        assert_eq!(
            subject("/Users", "u1", Some("okta-1")),
            json!({"format": "scim", "uri": "/Users/u1", "id": "u1", "externalId": "okta-1"})
        );
        assert_eq!(subject("/Groups", "g1", None)["uri"], "/Groups/g1");
    }
}
