//! Validation and canonicalisation of client-supplied resource bodies (POST/PUT) and
//! attribute values (PATCH) against the static definitions of `super::schema`.
//!
//! The output uses canonical attribute-name case (RFC 7643 §2.1 makes names
//! case-insensitive) with extension attributes nested under their canonical schema URN
//! (RFC 7643 §3.3), so every later layer can compare keys byte for byte.
//!
//! What is deliberately *not* checked here:
//! - required attributes (`userName`, Group `displayName`): the HTTP layer checks them, since
//!   a PATCH or a partial internal update legitimately lacks them;
//! - mutability beyond dropping readOnly values (immutable / readOnly PATCH targets are the
//!   caller's call, RFC 7644 §3.5.2), uniqueness and canonical `type` values (RFC 7643 §2.4
//!   makes canonical values a SHOULD, and IdPs send their own);
//! - the keys of the Omni user-attribute extension, which another layer checks against the
//!   organization's definitions.

use chrono::DateTime;
use serde_json::{Map, Value};

use super::error::ScimError;
use super::schema::{
    AttrType, AttributeDef, Mutability, ResourceTypeDef, SchemaDef, USER_ATTRIBUTE,
    common_attribute,
};

type Object = Map<String, Value>;

/// Top-level keys the server computes itself; a client copy is ignored rather than rejected
/// (RFC 7644 §3.5.1: readOnly values in a PUT "SHALL be ignored"; `schemas` is rebuilt from
/// the attributes actually present).
const SERVER_KEYS: [&str; 3] = ["schemas", "id", "meta"];

/// Validates and canonicalises a request body for resource type `rt` (RFC 7643 §2, §3.1;
/// RFC 7644 §3.3, §3.5.1).
/// Returns the object with canonical attribute-name case, extensions nested under their
/// canonical URN.
///
/// `schemas`, `id`, `meta` and readOnly attributes are dropped; unknown attributes,
/// sub-attributes and extension URNs fail with `invalidSyntax` naming all of them; type
/// mismatches fail with `invalidValue` naming the attribute. Required attributes are not
/// checked (see the module documentation).
pub fn normalize_resource(rt: &ResourceTypeDef, body: Object) -> Result<Object, ScimError> {
    let mut cx = Checker::default();
    let mut out = Object::new();
    for (key, value) in body {
        if SERVER_KEYS.iter().any(|k| k.eq_ignore_ascii_case(&key)) {
            continue;
        }
        // Only the resource type's extensions may appear as URN keys (RFC 7643 §3.3); the
        // core URN is not a valid key, core attributes sit at the top level.
        let extension = rt
            .extensions
            .iter()
            .find(|(s, _)| s.id.eq_ignore_ascii_case(&key));
        if let Some((schema, _)) = extension {
            let value = cx.extension(schema, value);
            cx.insert(&mut out, schema.id, schema.id.to_string(), value);
            continue;
        }
        match rt.schema.attribute(&key).or_else(|| common_attribute(&key)) {
            None => cx.unknown(key),
            Some(def) if def.mutability == Mutability::ReadOnly => {}
            Some(def) => {
                let value = cx.attribute(def, def.name, value);
                cx.insert(&mut out, def.name, def.name.to_string(), value);
            }
        }
    }
    cx.finish(out)
}

/// Validates/coerces one attribute value (for PATCH): `sub` is Some when the value is for a
/// sub-attribute.
///
/// A value for a multi-valued attribute always comes back as an array (a single value is
/// wrapped, RFC 7644 §3.5.2.1 lets "add" carry one or more values); use
/// [`normalize_element`] for a value that replaces one element selected by a value filter.
/// `null` is returned as `null` ("unassigned", RFC 7644 §3.5.1). ReadOnly sub-attributes
/// inside a complex value are dropped unless `attr` itself is readOnly; whether a readOnly
/// or immutable target may be modified at all is the caller's decision.
pub fn normalize_value(
    attr: &AttributeDef,
    sub: Option<&AttributeDef>,
    value: Value,
) -> Result<Value, ScimError> {
    let mut cx = Checker::default();
    let out = match sub {
        Some(sub) => cx.attribute(sub, &format!("{}.{}", attr.name, sub.name), value),
        None => cx.attribute(attr, attr.name, value),
    };
    cx.finish(out)
}

/// Validates/coerces one element of a multi-valued attribute, e.g. the value of a PATCH
/// "replace" whose path selects `emails[type eq "work"]` (RFC 7644 §3.5.2.3): the result
/// is never wrapped in an array.
pub fn normalize_element(attr: &AttributeDef, value: Value) -> Result<Value, ScimError> {
    let mut cx = Checker::default();
    let out = cx.single(attr, attr.name, value);
    cx.finish(out)
}

/// Validates the Omni user-attribute extension object: every value must be a string,
/// number, boolean or null; keys are kept as given (checked against the organization's
/// definitions elsewhere). `null` (remove them all) is returned as is.
pub fn normalize_user_attributes(value: Value) -> Result<Value, ScimError> {
    let mut cx = Checker::default();
    let out = cx.user_attributes(value);
    cx.finish(out)
}

/// Collects every problem of a body instead of stopping at the first, so one error response
/// can name every unknown attribute (invalidSyntax); the first type error (invalidValue) is
/// reported only when the syntax is otherwise fine.
#[derive(Default)]
struct Checker {
    unknown: Vec<String>,
    duplicate: Vec<String>,
    invalid: Option<ScimError>,
}

impl Checker {
    fn unknown(&mut self, path: String) {
        if !self.unknown.contains(&path) {
            self.unknown.push(path);
        }
    }

    /// Records an invalidValue problem; the returned placeholder keeps the walk going.
    fn invalid(&mut self, detail: String) -> Value {
        if self.invalid.is_none() {
            self.invalid = Some(ScimError::invalid_value(detail));
        }
        Value::Null
    }

    /// Inserts under the canonical name; two keys that differ only in case (RFC 7643 §2.1)
    /// are the same attribute given twice, which is ambiguous.
    fn insert(&mut self, out: &mut Object, name: &str, path: String, value: Value) {
        if out.contains_key(name) {
            if !self.duplicate.contains(&path) {
                self.duplicate.push(path);
            }
        } else {
            out.insert(name.to_string(), value);
        }
    }

    fn finish<T>(self, out: T) -> Result<T, ScimError> {
        let mut problems = Vec::new();
        if !self.unknown.is_empty() {
            problems.push(format!("unknown attribute(s): {}", self.unknown.join(", ")));
        }
        if !self.duplicate.is_empty() {
            problems.push(format!(
                "attribute(s) given more than once (names are case-insensitive): {}",
                self.duplicate.join(", ")
            ));
        }
        if !problems.is_empty() {
            return Err(ScimError::invalid_syntax(problems.join("; ")));
        }
        match self.invalid {
            Some(err) => Err(err),
            None => Ok(out),
        }
    }

    /// A whole attribute value: `null`, a single value or (multi-valued) an array.
    fn attribute(&mut self, def: &AttributeDef, path: &str, value: Value) -> Value {
        match value {
            Value::Null => Value::Null,
            Value::Array(items) if def.multi_valued => self.multi(def, path, items),
            Value::Array(_) => self.invalid(format!("{path} is single-valued, not an array")),
            // Lenient for IdPs that send one object where RFC 7643 §2.4 wants an array.
            other if def.multi_valued => self.multi(def, path, vec![other]),
            other => self.single(def, path, other),
        }
    }

    fn multi(&mut self, def: &AttributeDef, path: &str, items: Vec<Value>) -> Value {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if item.is_null() {
                out.push(self.invalid(format!("{path} must not contain null values")));
            } else {
                out.push(self.single(def, path, item));
            }
        }
        // RFC 7643 §2.4: the primary value "true" MUST appear no more than once. Counted
        // after coercion so that two "True" strings are caught too.
        let primaries = out
            .iter()
            .filter(|v| v.get("primary") == Some(&Value::Bool(true)))
            .count();
        if primaries > 1 {
            return self.invalid(format!(
                "{path}: at most one primary value is allowed (RFC 7643 §2.4)"
            ));
        }
        Value::Array(out)
    }

    /// One value of the attribute's type (RFC 7643 §2.3).
    fn single(&mut self, def: &AttributeDef, path: &str, value: Value) -> Value {
        if value.is_null() {
            return Value::Null;
        }
        match def.ty {
            AttrType::Complex => match value {
                Value::Object(map) => Value::Object(self.complex(def, path, map)),
                // Microsoft Entra ID sends the enterprise `manager` as a bare id; a
                // single-valued complex attribute with a `value` sub-attribute takes it as that.
                Value::String(id) if !def.multi_valued && def.sub_attribute("value").is_some() => {
                    let mut map = Object::new();
                    map.insert("value".to_string(), Value::String(id));
                    Value::Object(map)
                }
                _ => self.invalid(format!("{path} must be a complex (JSON object) value")),
            },
            AttrType::String | AttrType::Reference | AttrType::Binary => match value {
                Value::String(_) => value,
                _ => self.invalid(format!("{path} must be a string")),
            },
            // RFC 7643 §2.3.5: xsd:dateTime, which we accept in its RFC 3339 profile.
            AttrType::DateTime => match &value {
                Value::String(s) if DateTime::parse_from_rfc3339(s).is_ok() => value,
                _ => self.invalid(format!("{path} must be an RFC 3339 dateTime string")),
            },
            // RFC 7643 §2.3.2 wants JSON true/false, but Microsoft Entra ID sends "True" /
            // "False" strings in PATCH values, so those are coerced.
            AttrType::Boolean => match value {
                Value::Bool(_) => value,
                Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
                Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
                _ => self.invalid(format!("{path} must be a boolean")),
            },
            // RFC 7643 §2.3.4: no fractional part or exponent.
            AttrType::Integer => match &value {
                Value::Number(n) if n.is_i64() || n.is_u64() => value,
                _ => self.invalid(format!("{path} must be an integer")),
            },
            AttrType::Decimal => match value {
                Value::Number(_) => value,
                _ => self.invalid(format!("{path} must be a number")),
            },
        }
    }

    fn complex(&mut self, def: &AttributeDef, path: &str, map: Object) -> Object {
        let mut out = Object::new();
        for (key, value) in map {
            match def.sub_attribute(&key) {
                None => self.unknown(format!("{path}.{key}")),
                // RFC 7644 §3.5.1: readOnly values supplied by the client are ignored. Under a
                // readOnly parent (only reachable through normalize_value) they are kept so the
                // caller sees the value as given.
                Some(sub)
                    if sub.mutability == Mutability::ReadOnly
                        && def.mutability != Mutability::ReadOnly => {}
                Some(sub) => {
                    let sub_path = format!("{path}.{}", sub.name);
                    let value = self.attribute(sub, &sub_path, value);
                    self.insert(&mut out, sub.name, sub_path, value);
                }
            }
        }
        out
    }

    /// An extension object keyed by its URN (RFC 7643 §3.3); attribute paths in messages use
    /// the RFC 7644 §3.10 `urn:...:attribute` notation.
    fn extension(&mut self, schema: &SchemaDef, value: Value) -> Value {
        if schema.id == USER_ATTRIBUTE.id {
            return self.user_attributes(value);
        }
        let map = match value {
            Value::Null => return Value::Null,
            Value::Object(map) => map,
            _ => return self.invalid(format!("{} must be a JSON object", schema.id)),
        };
        let mut out = Object::new();
        for (key, value) in map {
            if key.eq_ignore_ascii_case("schemas") && names_extension(&value, schema.id) {
                continue;
            }
            match schema.attribute(&key) {
                None => self.unknown(format!("{}:{key}", schema.id)),
                Some(def) if def.mutability == Mutability::ReadOnly => {}
                Some(def) => {
                    let path = format!("{}:{}", schema.id, def.name);
                    let value = self.attribute(def, &path, value);
                    self.insert(&mut out, def.name, path, value);
                }
            }
        }
        Value::Object(out)
    }

    fn user_attributes(&mut self, value: Value) -> Value {
        let mut map = match value {
            Value::Null => return Value::Null,
            Value::Object(map) => map,
            _ => return self.invalid(format!("{} must be a JSON object", USER_ATTRIBUTE.id)),
        };
        map.retain(|key, value| {
            !(key.eq_ignore_ascii_case("schemas") && names_extension(value, USER_ATTRIBUTE.id))
        });
        for (key, value) in &map {
            if matches!(value, Value::Array(_) | Value::Object(_)) {
                self.invalid(format!(
                    "{}:{key} must be a string, number, boolean or null",
                    USER_ATTRIBUTE.id
                ));
            }
        }
        Value::Object(map)
    }
}

/// Whether a `schemas` member inside an extension object names that extension, as some
/// client libraries send it (e.g. `"schemas": ["urn:…:UserAttribute"]` in a PATCH value): it
/// carries nothing the URN key does not, so it is ignored like the top-level one. Any other
/// `schemas` there is an unknown attribute like any other.
fn names_extension(value: &Value, urn: &str) -> bool {
    let names = |v: &Value| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn));
    match value {
        Value::Array(items) => items.iter().any(names),
        other => names(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{
        ENTERPRISE_USER, GROUP, GROUP_RESOURCE, OMNI_USER, USER, USER_RESOURCE,
    };
    use crate::scim::{
        ENTERPRISE_USER_SCHEMA, OMNI_USER_EXTENSION_SCHEMA, ScimType, USER_ATTRIBUTE_SCHEMA,
        USER_SCHEMA,
    };
    use serde_json::json;

    const ENT: &str = ENTERPRISE_USER_SCHEMA;
    const UA: &str = USER_ATTRIBUTE_SCHEMA;

    enum Expect {
        /// The normalised output.
        Yields(Value),
        /// The error type and fragments its detail must contain.
        Fails(ScimType, &'static [&'static str]),
    }
    use Expect::{Fails, Yields};

    fn check<T: std::fmt::Debug + PartialEq<Value>>(
        name: &str,
        got: Result<T, ScimError>,
        expect: &Expect,
    ) {
        match (got, expect) {
            (Ok(out), Yields(want)) => assert_eq!(&out, want, "{name}"),
            (Err(err), Fails(ty, fragments)) => {
                assert_eq!(err.scim_type, Some(*ty), "{name}: {err}");
                assert_eq!(err.status, 400, "{name}");
                for fragment in *fragments {
                    assert!(
                        err.detail.contains(fragment),
                        "{name}: {:?} lacks {fragment:?}",
                        err.detail
                    );
                }
            }
            (Ok(out), Fails(..)) => panic!("{name}: expected an error, got {out:?}"),
            (Err(err), Yields(_)) => panic!("{name}: unexpected error {err}"),
        }
    }

    fn attribute_of(schema: &'static SchemaDef, name: &str) -> &'static AttributeDef {
        let Some(def) = schema.attribute(name) else {
            panic!("{} has no attribute {name}", schema.id)
        };
        def
    }

    fn succeed<T>(result: Result<T, ScimError>) -> T {
        match result {
            Ok(value) => value,
            Err(err) => panic!("unexpected error: {err}"),
        }
    }

    fn object(value: Value) -> Object {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn normalize_resource_applies_every_rule_in_the_table() {
        use ScimType::{InvalidSyntax, InvalidValue};
        let user = &USER_RESOURCE;
        let group = &GROUP_RESOURCE;
        let cases: Vec<(&str, &ResourceTypeDef, Value, Expect)> = vec![
            (
                "an empty body stays empty",
                user,
                json!({}),
                Yields(json!({})),
            ),
            (
                "top-level names get their canonical case",
                user,
                json!({"USERNAME": "bjensen", "displayname": "Babs", "NickName": "B"}),
                Yields(json!({"userName": "bjensen", "displayName": "Babs", "nickName": "B"})),
            ),
            (
                "schemas, id and meta are dropped silently",
                user,
                json!({"schemas": [USER_SCHEMA], "ID": "x", "meta": {"created": "2010-01-23T04:56:22Z"}, "userName": "b"}),
                Yields(json!({"userName": "b"})),
            ),
            (
                "readOnly groups are dropped silently",
                user,
                json!({"userName": "b", "groups": [{"value": "g1"}]}),
                Yields(json!({"userName": "b"})),
            ),
            (
                "externalId is kept with canonical case",
                user,
                json!({"EXTERNALID": "701984"}),
                Yields(json!({"externalId": "701984"})),
            ),
            (
                "externalId is accepted on groups too",
                group,
                json!({"externalId": "g-1", "displayName": "Ops"}),
                Yields(json!({"externalId": "g-1", "displayName": "Ops"})),
            ),
            (
                "writeOnly password is kept",
                user,
                json!({"password": "t1meMa$heen"}),
                Yields(json!({"password": "t1meMa$heen"})),
            ),
            (
                "sub-attribute names get their canonical case",
                user,
                json!({"name": {"GIVENNAME": "Barbara", "familyname": "Jensen"}}),
                Yields(json!({"name": {"givenName": "Barbara", "familyName": "Jensen"}})),
            ),
            (
                "sub-attribute names inside multi-valued elements get their canonical case",
                user,
                json!({"emails": [{"VALUE": "b@example.com", "Type": "work", "PRIMARY": true}]}),
                Yields(
                    json!({"emails": [{"value": "b@example.com", "type": "work", "primary": true}]}),
                ),
            ),
            (
                "an extension key in another case is nested under the canonical URN",
                user,
                json!({"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER": {"EMPLOYEENUMBER": "701984"}}),
                Yields(json!({ENT: {"employeeNumber": "701984"}})),
            ),
            (
                "readOnly manager.displayName is dropped silently",
                user,
                json!({ENT: {"manager": {"value": "m1", "displayName": "John Smith"}}}),
                Yields(json!({ENT: {"manager": {"value": "m1"}}})),
            ),
            (
                "a bare-string manager from Entra becomes an object",
                user,
                json!({ENT: {"manager": "m1"}}),
                Yields(json!({ENT: {"manager": {"value": "m1"}}})),
            ),
            (
                "readOnly lastLogin of the Omni extension is dropped silently",
                user,
                json!({OMNI_USER_EXTENSION_SCHEMA: {"lastLogin": "2024-01-01T00:00:00Z"}}),
                Yields(json!({OMNI_USER_EXTENSION_SCHEMA: {}})),
            ),
            (
                "a schemas member inside an extension object is ignored",
                user,
                json!({ENT: {"schemas": [ENT], "division": "Theme Park"}}),
                Yields(json!({ENT: {"division": "Theme Park"}})),
            ),
            (
                "a schemas member naming another schema is an unknown attribute",
                user,
                json!({ENT: {"schemas": [USER_SCHEMA], "division": "Theme Park"}}),
                Fails(ScimType::InvalidSyntax, &["enterprise:2.0:User:schemas"]),
            ),
            (
                "a schemas member inside the user-attribute object is ignored",
                user,
                json!({UA: {"schemas": [UA], "good_blob": "x"}}),
                Yields(json!({UA: {"good_blob": "x"}})),
            ),
            (
                "a schemas member of user attributes naming another schema stays a bad value",
                user,
                json!({UA: {"schemas": [ENT], "good_blob": "x"}}),
                Fails(ScimType::InvalidValue, &["UserAttribute:schemas"]),
            ),
            (
                "an extension set to null is kept as null",
                user,
                json!({ENT: null}),
                Yields(json!({ENT: null})),
            ),
            (
                "an extension that is not an object is an invalid value",
                user,
                json!({ENT: "701984"}),
                Fails(InvalidValue, &[ENT]),
            ),
            (
                "an unknown top-level attribute is invalid syntax naming it",
                user,
                json!({"userName": "b", "favouriteColour": "blue"}),
                Fails(InvalidSyntax, &["favouriteColour"]),
            ),
            (
                "an unknown sub-attribute is invalid syntax naming its path",
                user,
                json!({"name": {"givenName": "B", "nick": "x"}}),
                Fails(InvalidSyntax, &["name.nick"]),
            ),
            (
                "an unknown sub-attribute in a multi-valued element is named once",
                user,
                json!({"emails": [{"value": "a", "label": "x"}, {"value": "b", "label": "y"}]}),
                Fails(InvalidSyntax, &["emails.label"]),
            ),
            (
                "an unknown extension URN is invalid syntax naming it",
                user,
                json!({"urn:example:params:scim:schemas:extension:acme:2.0:User": {}}),
                Fails(
                    InvalidSyntax,
                    &["urn:example:params:scim:schemas:extension:acme:2.0:User"],
                ),
            ),
            (
                "an extension of another resource type is unknown",
                group,
                json!({"displayName": "Ops", ENT: {"department": "x"}}),
                Fails(InvalidSyntax, &[ENT]),
            ),
            (
                "the core URN is not a valid key",
                user,
                json!({USER_SCHEMA: {"userName": "b"}}),
                Fails(InvalidSyntax, &[USER_SCHEMA]),
            ),
            (
                "an unknown extension attribute is named with its URN",
                user,
                json!({ENT: {"badge": "x", "manager": {"value": "m", "level": 2}}}),
                Fails(
                    InvalidSyntax,
                    &[
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:badge",
                        "enterprise:2.0:User:manager.level",
                    ],
                ),
            ),
            (
                "every unknown attribute is named in one error",
                user,
                json!({"foo": 1, "name": {"bar": 1}, ENT: {"baz": 1}, "urn:x:y": {}, "active": "maybe"}),
                Fails(InvalidSyntax, &["foo", "name.bar", "User:baz", "urn:x:y"]),
            ),
            (
                "the same attribute in two cases is invalid syntax",
                user,
                json!({"userName": "a", "USERNAME": "b"}),
                Fails(InvalidSyntax, &["userName", "more than once"]),
            ),
            (
                "user attributes keep their keys and scalar values",
                user,
                json!({"urn:omni:params:1.0:userattribute": {"Shoe Size": 42, "badge": "B-1", "remote": true, "cleared": null}}),
                Yields(
                    json!({UA: {"Shoe Size": 42, "badge": "B-1", "remote": true, "cleared": null}}),
                ),
            ),
            (
                "a user attribute that is an array is an invalid value naming the key",
                user,
                json!({UA: {"ok": "x", "tags": ["a"]}}),
                Fails(InvalidValue, &["tags"]),
            ),
            (
                "a user attribute that is an object is an invalid value naming the key",
                user,
                json!({UA: {"nested": {"a": 1}}}),
                Fails(InvalidValue, &["nested"]),
            ),
            (
                "a user-attribute extension that is not an object is an invalid value",
                user,
                json!({UA: ["a"]}),
                Fails(InvalidValue, &[UA]),
            ),
            (
                "a user-attribute extension set to null is kept",
                user,
                json!({UA: null}),
                Yields(json!({UA: null})),
            ),
            (
                "a string attribute given a number is an invalid value naming it",
                user,
                json!({"userName": 42}),
                Fails(InvalidValue, &["userName", "string"]),
            ),
            (
                "a reference given a boolean is an invalid value",
                user,
                json!({"profileUrl": true}),
                Fails(InvalidValue, &["profileUrl"]),
            ),
            (
                "a binary sub-attribute given a number is an invalid value",
                user,
                json!({"x509Certificates": [{"value": 1}]}),
                Fails(InvalidValue, &["x509Certificates.value"]),
            ),
            (
                "a boolean is kept",
                user,
                json!({"active": false}),
                Yields(json!({"active": false})),
            ),
            (
                "the string True from Entra becomes a boolean",
                user,
                json!({"active": "True"}),
                Yields(json!({"active": true})),
            ),
            (
                "the string false becomes a boolean",
                user,
                json!({"active": "false"}),
                Yields(json!({"active": false})),
            ),
            (
                "another string for a boolean is an invalid value",
                user,
                json!({"active": "yes"}),
                Fails(InvalidValue, &["active", "boolean"]),
            ),
            (
                "a number for a boolean is an invalid value",
                user,
                json!({"active": 1}),
                Fails(InvalidValue, &["active"]),
            ),
            (
                "a complex attribute given a string is an invalid value",
                user,
                json!({"name": "Barbara Jensen"}),
                Fails(InvalidValue, &["name", "complex"]),
            ),
            (
                "a multi-valued complex element given a string is an invalid value",
                user,
                json!({"emails": ["b@example.com"]}),
                Fails(InvalidValue, &["emails"]),
            ),
            (
                "a single object for a multi-valued attribute is wrapped in an array",
                user,
                json!({"emails": {"value": "b@example.com"}}),
                Yields(json!({"emails": [{"value": "b@example.com"}]})),
            ),
            (
                "an array for a single-valued attribute is an invalid value",
                user,
                json!({"displayName": ["a", "b"]}),
                Fails(InvalidValue, &["displayName", "single-valued"]),
            ),
            (
                "null for an attribute is kept as unassigned",
                user,
                json!({"displayName": null, "emails": null, "name": null}),
                Yields(json!({"displayName": null, "emails": null, "name": null})),
            ),
            (
                "null for a sub-attribute is kept as unassigned",
                user,
                json!({"name": {"middleName": null}}),
                Yields(json!({"name": {"middleName": null}})),
            ),
            (
                "a null element inside a multi-valued attribute is an invalid value",
                user,
                json!({"phoneNumbers": [null]}),
                Fails(InvalidValue, &["phoneNumbers"]),
            ),
            (
                "two primary values are an invalid value",
                user,
                json!({"emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
                Fails(InvalidValue, &["emails", "at most one primary"]),
            ),
            (
                "two primary values given as strings are caught after coercion",
                user,
                json!({"addresses": [{"primary": "True"}, {"primary": "true"}]}),
                Fails(InvalidValue, &["addresses", "at most one primary"]),
            ),
            (
                "one primary value among others is fine",
                user,
                json!({"phoneNumbers": [{"value": "1", "primary": true}, {"value": "2", "primary": false}]}),
                Yields(
                    json!({"phoneNumbers": [{"value": "1", "primary": true}, {"value": "2", "primary": false}]}),
                ),
            ),
            (
                "a canonical type value is not enforced",
                user,
                json!({"ims": [{"value": "x", "type": "signal"}]}),
                Yields(json!({"ims": [{"value": "x", "type": "signal"}]})),
            ),
            (
                "group members keep value, $ref and type and drop the computed display",
                group,
                json!({"DisplayName": "Tour Guides", "members": [{"VALUE": "u1", "$REF": "../Users/u1", "display": "Babs", "type": "User"}]}),
                Yields(
                    json!({"displayName": "Tour Guides", "members": [{"value": "u1", "$ref": "../Users/u1", "type": "User"}]}),
                ),
            ),
            (
                "a single group member object is wrapped in an array",
                group,
                json!({"members": {"value": "u1"}}),
                Yields(json!({"members": [{"value": "u1"}]})),
            ),
            (
                "a user attribute on a group is unknown",
                group,
                json!({"displayName": "Ops", "userName": "x"}),
                Fails(InvalidSyntax, &["userName"]),
            ),
            (
                "unknown attributes win over type errors",
                user,
                json!({"active": "maybe", "nope": 1}),
                Fails(InvalidSyntax, &["nope"]),
            ),
        ];
        assert!(cases.len() >= 40);
        for (name, rt, body, expect) in &cases {
            let got = normalize_resource(rt, object(body.clone())).map(Value::Object);
            check(name, got, expect);
        }
    }

    /// Test-only definitions: none of our schemas has an integer or decimal attribute.
    static COUNT: AttributeDef = AttributeDef {
        name: "count",
        ty: AttrType::Integer,
        multi_valued: false,
        description: "",
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: crate::scim::schema::Returned::Default,
        uniqueness: crate::scim::schema::Uniqueness::None,
        canonical_values: &[],
        reference_types: &[],
        sub_attributes: &[],
    };
    static RATIO: AttributeDef = AttributeDef {
        name: "ratio",
        ty: AttrType::Decimal,
        ..COUNT
    };

    #[test]
    fn normalize_value_applies_every_rule_in_the_table() {
        use ScimType::{InvalidSyntax, InvalidValue};
        let attr = attribute_of;
        let emails = attr(&USER, "emails");
        let name = attr(&USER, "name");
        let manager = attr(&ENTERPRISE_USER, "manager");
        let last_login = attr(&OMNI_USER, "lastLogin");
        let members = attr(&GROUP, "members");
        let groups = attr(&USER, "groups");
        let sub = |a: &'static AttributeDef, s: &str| a.sub_attribute(s);
        let cases: Vec<(&str, &AttributeDef, Option<&AttributeDef>, Value, Expect)> = vec![
            (
                "a single email is wrapped in an array",
                emails,
                None,
                json!({"value": "a"}),
                Yields(json!([{"value": "a"}])),
            ),
            (
                "an email array keeps canonical sub-attribute names",
                emails,
                None,
                json!([{"Value": "a", "TYPE": "home"}]),
                Yields(json!([{"value": "a", "type": "home"}])),
            ),
            (
                "two primary emails are an invalid value",
                emails,
                None,
                json!([{"primary": true}, {"primary": "True"}]),
                Fails(InvalidValue, &["at most one primary"]),
            ),
            (
                "a primary string for a sub-attribute is coerced",
                emails,
                sub(emails, "primary"),
                json!("True"),
                Yields(json!(true)),
            ),
            (
                "a number for givenName is an invalid value naming the path",
                name,
                sub(name, "givenName"),
                json!(5),
                Fails(InvalidValue, &["name.givenName"]),
            ),
            (
                "a sub-attribute value is never wrapped",
                emails,
                sub(emails, "value"),
                json!("a@b"),
                Yields(json!("a@b")),
            ),
            (
                "an unknown sub-attribute inside a value is invalid syntax",
                name,
                None,
                json!({"givenName": "B", "nick": "x"}),
                Fails(InvalidSyntax, &["name.nick"]),
            ),
            (
                "a bare manager id becomes an object",
                manager,
                None,
                json!("m1"),
                Yields(json!({"value": "m1"})),
            ),
            (
                "a manager object drops its readOnly displayName",
                manager,
                None,
                json!({"VALUE": "m1", "displayName": "J"}),
                Yields(json!({"value": "m1"})),
            ),
            (
                "a readOnly parent keeps its readOnly sub-attributes for the caller to judge",
                groups,
                None,
                json!([{"value": "g1"}]),
                Yields(json!([{"value": "g1"}])),
            ),
            (
                "an RFC 3339 dateTime is accepted",
                last_login,
                None,
                json!("2024-05-06T07:08:09.123+02:00"),
                Yields(json!("2024-05-06T07:08:09.123+02:00")),
            ),
            (
                "a free-text dateTime is an invalid value",
                last_login,
                None,
                json!("yesterday"),
                Fails(InvalidValue, &["lastLogin", "dateTime"]),
            ),
            (
                "a numeric dateTime is an invalid value",
                last_login,
                None,
                json!(1714979289),
                Fails(InvalidValue, &["lastLogin"]),
            ),
            (
                "null is kept as unassigned",
                name,
                None,
                Value::Null,
                Yields(Value::Null),
            ),
            (
                "null for a sub-attribute is kept",
                name,
                sub(name, "givenName"),
                Value::Null,
                Yields(Value::Null),
            ),
            (
                "a member type outside the canonical values is kept",
                members,
                None,
                json!([{"value": "u1", "type": "Device"}]),
                Yields(json!([{"value": "u1", "type": "Device"}])),
            ),
            (
                "an integer is accepted",
                &COUNT,
                None,
                json!(3),
                Yields(json!(3)),
            ),
            (
                "a negative integer is accepted",
                &COUNT,
                None,
                json!(-3),
                Yields(json!(-3)),
            ),
            (
                "a fractional number for an integer is an invalid value",
                &COUNT,
                None,
                json!(3.5),
                Fails(InvalidValue, &["count", "integer"]),
            ),
            (
                "a string for an integer is an invalid value",
                &COUNT,
                None,
                json!("3"),
                Fails(InvalidValue, &["count"]),
            ),
            (
                "a fractional decimal is accepted",
                &RATIO,
                None,
                json!(0.25),
                Yields(json!(0.25)),
            ),
            (
                "an integral decimal is accepted",
                &RATIO,
                None,
                json!(2),
                Yields(json!(2)),
            ),
            (
                "a string for a decimal is an invalid value",
                &RATIO,
                None,
                json!("0.25"),
                Fails(InvalidValue, &["ratio", "number"]),
            ),
        ];
        for (case, attr, sub, value, expect) in cases {
            check(case, normalize_value(attr, sub, value), &expect);
        }
    }

    #[test]
    fn normalize_element_and_user_attributes_follow_the_same_rules() {
        let emails = attribute_of(&USER, "emails");
        let cases: Vec<(&str, Result<Value, ScimError>, Expect)> = vec![
            (
                "an element is not wrapped",
                normalize_element(emails, json!({"VALUE": "a", "primary": "false"})),
                Yields(json!({"value": "a", "primary": false})),
            ),
            (
                "an element that is not an object is an invalid value",
                normalize_element(emails, json!(["a"])),
                Fails(ScimType::InvalidValue, &["emails"]),
            ),
            (
                "user attributes accept scalars",
                normalize_user_attributes(json!({"a": 1, "b": "x"})),
                Yields(json!({"a": 1, "b": "x"})),
            ),
            (
                "user attributes reject nested values",
                normalize_user_attributes(json!({"a": {"b": 1}})),
                Fails(
                    ScimType::InvalidValue,
                    &["urn:omni:params:1.0:UserAttribute:a"],
                ),
            ),
        ];
        for (name, got, expect) in cases {
            check(name, got, &expect);
        }
    }

    /// RFC 7643 §8.3 (the full User of §8.2 plus the enterprise extension), minus id and meta.
    fn rfc_7643_enterprise_user() -> Value {
        json!({
            "schemas": [USER_SCHEMA, ENT],
            "externalId": "701984",
            "userName": "bjensen@example.com",
            "name": {
                "formatted": "Ms. Barbara J Jensen, III",
                "familyName": "Jensen",
                "givenName": "Barbara",
                "middleName": "Jane",
                "honorificPrefix": "Ms.",
                "honorificSuffix": "III"
            },
            "displayName": "Babs Jensen",
            "nickName": "Babs",
            "profileUrl": "https://login.example.com/bjensen",
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "addresses": [
                {
                    "streetAddress": "100 Universal City Plaza",
                    "locality": "Hollywood",
                    "region": "CA",
                    "postalCode": "91608",
                    "country": "USA",
                    "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
                    "type": "work",
                    "primary": true
                },
                {
                    "streetAddress": "456 Hollywood Blvd",
                    "locality": "Hollywood",
                    "region": "CA",
                    "postalCode": "91608",
                    "country": "USA",
                    "formatted": "456 Hollywood Blvd\nHollywood, CA 91608 USA",
                    "type": "home"
                }
            ],
            "phoneNumbers": [
                {"value": "555-555-5555", "type": "work"},
                {"value": "555-555-4444", "type": "mobile"}
            ],
            "ims": [{"value": "someaimhandle", "type": "aim"}],
            "photos": [
                {"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"},
                {"value": "https://photos.example.com/profilephoto/72930000000Ccne/T", "type": "thumbnail"}
            ],
            "userType": "Employee",
            "title": "Tour Guide",
            "preferredLanguage": "en-US",
            "locale": "en-US",
            "timezone": "America/Los_Angeles",
            "active": true,
            "password": "t1meMa$heen",
            "groups": [
                {"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "$ref": "../Groups/e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides"},
                {"value": "fc348aa8-3835-40eb-a20b-c726e15c55b5", "$ref": "../Groups/fc348aa8-3835-40eb-a20b-c726e15c55b5", "display": "Employees"},
                {"value": "71ddacd2-a8e7-49b8-a5db-ae50d0a5bfd7", "$ref": "../Groups/71ddacd2-a8e7-49b8-a5db-ae50d0a5bfd7", "display": "US Employees"}
            ],
            "x509Certificates": [{
                "value": concat!(
                    "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx",
                    "EzARBgNVBAgMCkNhbGlmb3JuaWExFDASBgNVBAoMC2V4YW1wbGUuY29tMRQwEgYD",
                    "VQQDDAtleGFtcGxlLmNvbTAeFw0xMTEwMjIwNjI0MzFaFw0xMjEwMDQwNjI0MzFa",
                    "MH8xCzAJBgNVBAYTAlVTMRMwEQYDVQQIDApDYWxpZm9ybmlhMRQwEgYDVQQKDAtl",
                    "eGFtcGxlLmNvbTEhMB8GA1UEAwwYTXMuIEJhcmJhcmEgSiBKZW5zZW4gSUlJMSIw",
                    "IAYJKoZIhvcNAQkBFhNiamVuc2VuQGV4YW1wbGUuY29tMIIBIjANBgkqhkiG9w0B",
                    "AQEFAAOCAQ8AMIIBCgKCAQEA7Kr+Dcds/JQ5GwejJFcBIP682X3xpjis56AK02bc",
                    "1FLgzdLI8auoR+cC9/Vrh5t66HkQIOdA4unHh0AaZ4xL5PhVbXIPMB5vAPKpzz5i",
                    "PSi8xO8SL7I7SDhcBVJhqVqr3HgllEG6UClDdHO7nkLuwXq8HcISKkbT5WFTVfFZ",
                    "zidPl8HZ7DhXkZIRtJwBweq4bvm3hM1Os7UQH05ZS6cVDgweKNwdLLrT51ikSQG3",
                    "DYrl+ft781UQRIqxgwqCfXEuDiinPh0kkvIi5jivVu1Z9QiwlYEdRbLJ4zJQBmDr",
                    "SGTMYn4lRc2HgHO4DqB/bnMVorHB0CC6AV1QoFK4GPe1LwIDAQABo3sweTAJBgNV",
                    "HRMEAjAAMCwGCWCGSAGG+EIBDQQfFh1PcGVuU1NMIEdlbmVyYXRlZCBDZXJ0aWZp",
                    "Y2F0ZTAdBgNVHQ4EFgQU8pD0U0vsZIsaA16lL8En8bx0F/gwHwYDVR0jBBgwFoAU",
                    "dGeKitcaF7gnzsNwDx708kqaVt0wDQYJKoZIhvcNAQEFBQADgYEAA81SsFnOdYJt",
                    "Ng5Tcq+/ByEDrBgnusx0jloUhByPMEVkoMZ3J7j1ZgI8rAbOkNngX8+pKfTiDz1R",
                    "C4+dx8oU6Za+4NJXUjlL5CvV6BEYb1+QAEJwitTVvxB/A67g42/vzgAtoRUeDov1",
                    "+GFiBZ+GNF/cAYKcMtGcrs2i97ZkJMo="
                )
            }],
            ENT: {
                "employeeNumber": "701984",
                "costCenter": "4130",
                "organization": "Universal Studios",
                "division": "Theme Park",
                "department": "Tour Operations",
                "manager": {
                    "value": "26118915-6090-4610-87e4-49d8ca9f808d",
                    "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
                    "displayName": "John Smith"
                }
            }
        })
    }

    #[test]
    fn the_rfc_7643_enterprise_user_example_keeps_every_writable_attribute() {
        let body = object(rfc_7643_enterprise_user());
        let out = succeed(normalize_resource(&USER_RESOURCE, body.clone()));

        // Exactly the server-computed and readOnly parts go away (RFC 7644 §3.5.1).
        let mut expected = body;
        expected.remove("schemas");
        expected.remove("groups");
        if let Some(Value::Object(ext)) = expected.get_mut(ENT)
            && let Some(Value::Object(manager)) = ext.get_mut("manager")
        {
            manager.remove("displayName");
        }
        assert_eq!(out, expected);
        // Every writable User attribute appears in the example, except the two RFC 7643 §8.3
        // does not use.
        let writable = USER
            .attributes
            .iter()
            .filter(|d| d.mutability != Mutability::ReadOnly);
        for def in writable.filter(|d| !["entitlements", "roles"].contains(&d.name)) {
            assert!(out.contains_key(def.name), "{} was lost", def.name);
        }
        assert_eq!(
            out[ENT].as_object().map(|e| e.len()),
            Some(ENTERPRISE_USER.attributes.len())
        );
    }

    #[test]
    fn the_full_example_normalises_to_itself_a_second_time() {
        let once = succeed(normalize_resource(
            &USER_RESOURCE,
            object(rfc_7643_enterprise_user()),
        ));
        let twice = succeed(normalize_resource(&USER_RESOURCE, once.clone()));
        assert_eq!(once, twice);
    }
}
