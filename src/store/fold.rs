//! One case-folding rule for both databases: Rust's `str::to_lowercase`.
//!
//! RFC 7643 §2.2: a string attribute with `caseExact: false` compares case-insensitively. SQLite's
//! `lower()` folds ASCII only and Postgres's depends on the database locale, so neither decides:
//! every write also stores `doc_folded`, the document with each caseExact=false string folded
//! here, and filters and sort keys read that copy and compare it with an operand folded the same
//! way (`filter_sql`). Case-exact values, unknown keys and non-strings are copied unchanged, so
//! `doc_folded` answers every comparison, exact or not.

use serde_json::Value;

use super::Doc;
use crate::scim::schema::{AttrType, AttributeDef, ResourceTypeDef, SchemaDef, common_attribute};

/// The case-insensitive fold (the same as `fold_user_name` and the operand fold of filters).
pub fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// `doc` with every caseExact=false string value folded, per `resource`'s schemas.
pub fn fold_doc(resource: &ResourceTypeDef, doc: &Doc) -> Doc {
    doc.iter()
        .map(|(key, value)| {
            let folded = match resource.schema_by_urn(key) {
                // An extension's attributes sit in an object under its URN.
                Some(ext) if !std::ptr::eq(ext, resource.schema) => fold_schema(ext, value),
                _ => match resource
                    .schema
                    .attribute(key)
                    .or_else(|| common_attribute(key))
                {
                    Some(def) => fold_value(def, value),
                    None => value.clone(),
                },
            };
            (key.clone(), folded)
        })
        .collect()
}

fn fold_schema(schema: &SchemaDef, value: &Value) -> Value {
    match value {
        Value::Object(object) => fold_object(object, |key| schema.attribute(key)),
        other => other.clone(),
    }
}

/// An object whose members are defined by `def_of` (unknown members copied unchanged).
fn fold_object<'a>(
    object: &serde_json::Map<String, Value>,
    def_of: impl Fn(&str) -> Option<&'a AttributeDef>,
) -> Value {
    Value::Object(
        object
            .iter()
            .map(|(key, value)| {
                let folded = match def_of(key) {
                    Some(def) => fold_value(def, value),
                    None => value.clone(),
                };
                (key.clone(), folded)
            })
            .collect(),
    )
}

/// Folds `value` as an instance of `def` (each element, for a multi-valued attribute).
fn fold_value(def: &AttributeDef, value: &Value) -> Value {
    match value {
        Value::String(text) if !def.case_exact && def.ty != AttrType::Complex => {
            Value::String(fold(text))
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| fold_value(def, v)).collect()),
        Value::Object(object) if def.ty == AttrType::Complex => {
            fold_object(object, |key| def.sub_attribute(key))
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
    use serde_json::json;

    fn doc(value: Value) -> Doc {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn case_insensitive_strings_are_folded_and_the_rest_is_kept() {
        let user = doc(json!({
            "userName": "ÄNNE",
            "name": {"familyName": "ÖSTER", "givenName": "Änne"},
            "emails": [{"value": "Ä@X.DE", "type": "Work", "primary": true}],
            "active": true,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "FORSCHUNG",
                "manager": {"value": "ID-ABC"}
            },
            "urn:omni:params:1.0:UserAttribute": {"Custom": "KeepMe"},
            "unknownKey": "KEEP"
        }));
        let folded = fold_doc(&USER_RESOURCE, &user);
        assert_eq!(folded["userName"], "änne");
        assert_eq!(folded["name"]["familyName"], "öster");
        assert_eq!(folded["emails"][0]["value"], "ä@x.de");
        assert_eq!(folded["emails"][0]["type"], "work");
        assert_eq!(folded["emails"][0]["primary"], true);
        assert_eq!(folded["active"], true);
        let enterprise = &folded["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
        assert_eq!(enterprise["department"], "forschung");
        // Organization-defined attributes compare exactly; unknown keys are left alone.
        assert_eq!(
            folded["urn:omni:params:1.0:UserAttribute"]["Custom"],
            "KeepMe"
        );
        assert_eq!(folded["unknownKey"], "KEEP");
    }

    #[test]
    fn case_exact_attributes_keep_their_case() {
        let group = doc(json!({"displayName": "ÄRZTE", "externalId": "Ext-1"}));
        let folded = fold_doc(&GROUP_RESOURCE, &group);
        assert_eq!(folded["displayName"], "ärzte");
        assert_eq!(folded["externalId"], "Ext-1", "externalId is caseExact");
    }
}
