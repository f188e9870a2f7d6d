//! The two profiles scimd serves (`SCIMD_PROFILE`), and the request rules only the SCIM
//! interoperability profile has (draft-zollner-scim-interop-profile, "the draft" below).
//!
//! - **Reference** (the default): the shape of the Omni reference and what Okta and Entra send
//!   today: `active` defaults to true, the two Omni extensions are always shown, the
//!   `userName` stands in as the email when none is stored, path-less PATCH is accepted.
//! - **Interop**: rendering is strict RFC 7643 (what is not stored is absent, so a `remove`
//!   is observable) and the draft's server requirements are enforced: every PATCH operation
//!   has a `path` (§"Mandatory Use of the 'path' Attribute"), an `add` or `replace` through a
//!   value filter names a sub-attribute (§"Filtering Constraints"), and attributes the
//!   schemas do not define are refused with `invalidSyntax` (§"Attribute and Schema
//!   Handling"), including a `schemas` member inside an extension's value.

use serde_json::{Map, Value};

use super::ScimError;
use super::patch::{OpKind, PatchOp};
use super::schema::ResourceTypeDef;

/// Which profile the server follows (`SCIMD_PROFILE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// The reference's shape (see the module documentation).
    #[default]
    Reference,
    /// The SCIM interoperability profile, with strict RFC 7643 rendering.
    Interop,
}

impl Profile {
    /// The name kept in the database beside the data derived under it, and `SCIMD_PROFILE`'s.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Reference => "reference",
            Profile::Interop => "interop",
        }
    }

    /// The profile named `name` (as [`Profile::as_str`] spells it).
    pub fn from_name(name: &str) -> Option<Profile> {
        [Profile::Reference, Profile::Interop]
            .into_iter()
            .find(|p| p.as_str() == name)
    }

    pub fn is_interop(self) -> bool {
        self == Profile::Interop
    }
}

/// The draft's PATCH constraints, checked on parsed operations before any is applied. The
/// errors carry the `scimType` the draft's "Error Handling" names: `invalidSyntax` for a
/// missing path, `invalidPath` for a value filter that does not name a sub-attribute.
///
/// A `remove` through a value filter (`members[value eq "…"]`) stays allowed: it is how a
/// group's member or one email is removed, and the draft lets a server accept it ("MAY
/// return 400").
pub fn check_patch_ops(ops: &[PatchOp]) -> Result<(), ScimError> {
    for (i, op) in ops.iter().enumerate() {
        let Some(path) = &op.path else {
            return Err(ScimError::invalid_syntax(format!(
                "Operations[{i}]: every operation needs a path (SCIM interoperability profile; \
                 path-less operations are refused)"
            )));
        };
        let whole_element = path.value_filter.is_some() && path.sub_attr.is_none();
        if whole_element && op.op != OpKind::Remove {
            return Err(ScimError::invalid_path(format!(
                "Operations[{i}]: {} through a value filter must name a sub-attribute, e.g. \
                 '{path}.value' (SCIM interoperability profile)",
                op.op.as_str()
            )));
        }
        if path.attr.is_schema_only()
            && let Some(Value::Object(value)) = &op.value
        {
            refuse_schemas_member(path.attr.schema.as_deref().unwrap_or_default(), value)?;
        }
    }
    Ok(())
}

/// A POST or PUT body of `rt`: an extension's object may not carry a `schemas` member (the
/// reference profile ignores one naming the extension; the draft refuses any attribute the
/// schema does not define).
pub fn check_body(rt: &ResourceTypeDef, body: &Map<String, Value>) -> Result<(), ScimError> {
    for (key, value) in body {
        let is_extension = rt
            .extensions
            .iter()
            .any(|(schema, _)| schema.id.eq_ignore_ascii_case(key));
        if is_extension && let Value::Object(value) = value {
            refuse_schemas_member(key, value)?;
        }
    }
    Ok(())
}

fn refuse_schemas_member(urn: &str, value: &Map<String, Value>) -> Result<(), ScimError> {
    if value.keys().any(|k| k.eq_ignore_ascii_case("schemas")) {
        return Err(ScimError::invalid_syntax(format!(
            "unknown attribute(s): {urn}:schemas (SCIM interoperability profile: attributes \
             the schema does not define are refused)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::ScimType;
    use crate::scim::patch::parse_request;
    use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
    use crate::scim::{PATCH_OP_SCHEMA, USER_ATTRIBUTE_SCHEMA};
    use serde_json::json;

    fn ops(operations: Value) -> Vec<PatchOp> {
        let body = json!({"schemas": [PATCH_OP_SCHEMA], "Operations": operations});
        parse_request(body.as_object().unwrap()).unwrap()
    }

    #[test]
    fn the_profile_names_round_trip() {
        for profile in [Profile::Reference, Profile::Interop] {
            assert_eq!(Profile::from_name(profile.as_str()), Some(profile));
        }
        assert_eq!(Profile::from_name("strict"), None);
        assert_eq!(Profile::default(), Profile::Reference);
    }

    #[test]
    fn patch_operations_follow_the_drafts_constraints() {
        let cases: [(&str, Value, Option<ScimType>); 8] = [
            (
                "an operation with a path passes",
                json!([{"op": "replace", "path": "active", "value": false}]),
                None,
            ),
            (
                "a path-less operation is invalid syntax",
                json!([{"op": "replace", "value": {"active": false}}]),
                Some(ScimType::InvalidSyntax),
            ),
            (
                "a later path-less operation is found too",
                json!([
                    {"op": "add", "path": "title", "value": "x"},
                    {"op": "add", "value": {"title": "y"}}
                ]),
                Some(ScimType::InvalidSyntax),
            ),
            (
                "replace through a filter naming a sub-attribute passes",
                json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "a@b.co"}]),
                None,
            ),
            (
                "replace of a whole filtered element is an invalid path",
                json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "a@b.co"}}]),
                Some(ScimType::InvalidPath),
            ),
            (
                "remove of a filtered element passes (how a member is removed)",
                json!([{"op": "remove", "path": "members[value eq \"2819c223\"]"}]),
                None,
            ),
            (
                "an extension value with a schemas member is invalid syntax",
                json!([{"op": "add", "path": USER_ATTRIBUTE_SCHEMA,
                        "value": {"schemas": [USER_ATTRIBUTE_SCHEMA], "good_blob": "x"}}]),
                Some(ScimType::InvalidSyntax),
            ),
            (
                "an extension value without one passes",
                json!([{"op": "add", "path": USER_ATTRIBUTE_SCHEMA, "value": {"good_blob": "x"}}]),
                None,
            ),
        ];
        for (name, operations, want) in cases {
            let got = check_patch_ops(&ops(operations)).err().map(|e| e.scim_type);
            assert_eq!(got, want.map(Some), "{name}");
        }
    }

    #[test]
    fn bodies_may_not_carry_schemas_inside_an_extension() {
        let cases = [
            (
                "a schemas member inside an extension is refused",
                &USER_RESOURCE,
                json!({"userName": "a@b.co", USER_ATTRIBUTE_SCHEMA: {"schemas": [USER_ATTRIBUTE_SCHEMA]}}),
                false,
            ),
            (
                "the top-level schemas is fine",
                &USER_RESOURCE,
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a@b.co"}),
                true,
            ),
            (
                "an extension without one is fine",
                &USER_RESOURCE,
                json!({"userName": "a@b.co", USER_ATTRIBUTE_SCHEMA: {"good_blob": "x"}}),
                true,
            ),
            (
                "a group body has no extension to check",
                &GROUP_RESOURCE,
                json!({"displayName": "Admins"}),
                true,
            ),
        ];
        for (name, rt, body, ok) in cases {
            let got = check_body(rt, body.as_object().unwrap());
            assert_eq!(got.is_ok(), ok, "{name}: {got:?}");
            if let Err(e) = got {
                assert_eq!(e.scim_type, Some(ScimType::InvalidSyntax), "{name}");
                assert!(e.detail.contains("schemas"), "{name}: {}", e.detail);
            }
        }
    }
}
