//! `attributes` / `excludedAttributes` projection (RFC 7644 §3.4.2.5, §3.9) applied to a
//! complete resource as the server would return it.
//!
//! Attributes with `returned: always` (RFC 7643 §7: `id`, `schemas`, plus whatever the
//! caller lists) survive both lists: the RFC says they are returned "regardless of the
//! contents of the attributes parameter" and excludedAttributes "has no effect" on them.

use serde_json::{Map, Value};

use super::ScimError;
use super::path::AttrPath;

/// Top-level attributes every resource returns (RFC 7643 §3.1 `id`, §3 `schemas`).
const ALWAYS_RETURNED: [&str; 2] = ["id", "schemas"];

/// Parsed `attributes` or `excludedAttributes` query/body parameter: a comma-separated list
/// of attribute paths (RFC 7644 §3.4.2.5). Empty or blank entries are ignored so that
/// `attributes=userName,` is harmless; a malformed entry is `invalidValue`, naming it.
/// A known extension URN on its own is accepted (it selects the whole extension).
pub fn parse_attribute_list(s: &str) -> Result<Vec<AttrPath>, ScimError> {
    s.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            AttrPath::parse_or_schema(entry).map_err(|e| {
                ScimError::invalid_value(format!(
                    "invalid attribute '{entry}' in attribute list: {}",
                    e.detail
                ))
            })
        })
        .collect()
}

/// Applies the projection to a complete resource as returned by the server.
///
/// - `id`, `schemas` and the top-level names in `always` are always kept;
/// - when `attributes` is non-empty only the named attributes are kept (`meta` included only
///   if named); `name.givenName` / `emails.value` keep just that sub-attribute (in every
///   element of a multi-valued attribute); a URN-qualified path selects inside the extension
///   object and a bare extension URN keeps the whole object;
/// - otherwise everything but `excluded` is kept, with the same path rules;
/// - complex values, array elements and extension objects left empty are removed;
/// - names match case-insensitively;
/// - if both lists are given `attributes` wins (RFC 7644 §3.4.2.5 makes them mutually
///   exclusive; we are lenient rather than failing the request).
pub fn project(
    resource: Map<String, Value>,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
    always: &[&str],
) -> Map<String, Value> {
    let is_always = |key: &str| {
        ALWAYS_RETURNED
            .iter()
            .chain(always)
            .any(|name| name.eq_ignore_ascii_case(key))
    };
    if !attributes.is_empty() {
        keep_only(resource, attributes, &is_always)
    } else {
        remove_excluded(resource, excluded, &is_always)
    }
}

fn is_urn(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
}

/// Paths that belong to the container whose schema is `schema` (None = core attributes).
fn paths_in<'a>(paths: &'a [AttrPath], schema: Option<&str>) -> Vec<&'a AttrPath> {
    paths
        .iter()
        .filter(|p| match (&p.schema, schema) {
            (None, None) => true,
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        })
        .collect()
}

fn keep_only(
    resource: Map<String, Value>,
    attributes: &[AttrPath],
    is_always: &dyn Fn(&str) -> bool,
) -> Map<String, Value> {
    let core = paths_in(attributes, None);
    let mut out = Map::new();
    for (key, value) in resource {
        if is_always(&key) {
            out.insert(key, value);
            continue;
        }
        let kept = match value {
            Value::Object(ext) if is_urn(&key) => {
                let selected = paths_in(attributes, Some(&key));
                if selected.iter().any(|p| p.is_schema_only()) {
                    Some(Value::Object(ext))
                } else {
                    Some(Value::Object(retain_paths(ext, &selected)))
                }
            }
            other => retain_attr(&key, other, &core),
        };
        if let Some(value) = kept.filter(|v| !is_empty_container(v)) {
            out.insert(key, value);
        }
    }
    out
}

/// Keeps the members of one container (the resource or an extension object) that `paths`
/// (already restricted to that container) select.
fn retain_paths(container: Map<String, Value>, paths: &[&AttrPath]) -> Map<String, Value> {
    container
        .into_iter()
        .filter_map(|(key, value)| {
            let kept = retain_attr(&key, value, paths)?;
            (!is_empty_container(&kept)).then_some((key, kept))
        })
        .collect()
}

/// The part of attribute `key` selected by `paths`: all of it if some path names it without
/// a sub-attribute, else only the named sub-attributes, else nothing.
fn retain_attr(key: &str, value: Value, paths: &[&AttrPath]) -> Option<Value> {
    let named: Vec<&AttrPath> = paths
        .iter()
        .copied()
        .filter(|p| p.attr.eq_ignore_ascii_case(key))
        .collect();
    if named.is_empty() {
        return None;
    }
    if named.iter().any(|p| p.sub_attr.is_none()) {
        return Some(value);
    }
    let subs: Vec<&str> = named.iter().filter_map(|p| p.sub_attr.as_deref()).collect();
    let keep = |map: Map<String, Value>| -> Map<String, Value> {
        map.into_iter()
            .filter(|(k, _)| subs.iter().any(|s| s.eq_ignore_ascii_case(k)))
            .collect()
    };
    match value {
        Value::Object(map) => Some(Value::Object(keep(map))),
        Value::Array(items) => Some(Value::Array(
            items
                .into_iter()
                .filter_map(|item| match item {
                    Value::Object(map) => Some(keep(map)),
                    _ => None,
                })
                .filter(|map| !map.is_empty())
                .map(Value::Object)
                .collect(),
        )),
        // A simple attribute has no sub-attributes to select.
        _ => None,
    }
}

fn remove_excluded(
    mut resource: Map<String, Value>,
    excluded: &[AttrPath],
    is_always: &dyn Fn(&str) -> bool,
) -> Map<String, Value> {
    for path in excluded {
        match &path.schema {
            None if is_always(&path.attr) => {}
            None => remove_attr(&mut resource, path),
            Some(urn) => {
                let Some(key) = find_key(&resource, urn) else {
                    continue;
                };
                if path.is_schema_only() {
                    resource.remove(&key);
                    continue;
                }
                if let Some(Value::Object(ext)) = resource.get_mut(&key) {
                    remove_attr(ext, path);
                    if ext.is_empty() {
                        resource.remove(&key);
                    }
                }
            }
        }
    }
    resource
}

fn find_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Removes `path.attr` (or just its sub-attribute) from `container`, dropping complex values
/// and array elements that end up empty.
fn remove_attr(container: &mut Map<String, Value>, path: &AttrPath) {
    let Some(key) = find_key(container, &path.attr) else {
        return;
    };
    let Some(sub) = &path.sub_attr else {
        container.remove(&key);
        return;
    };
    let strip = |map: &mut Map<String, Value>| {
        if let Some(k) = find_key(map, sub) {
            map.remove(&k);
        }
    };
    match container.get_mut(&key) {
        Some(Value::Object(map)) => strip(map),
        Some(Value::Array(items)) => {
            items.iter_mut().for_each(|item| {
                if let Value::Object(map) = item {
                    strip(map);
                }
            });
            items.retain(|item| !matches!(item, Value::Object(map) if map.is_empty()));
        }
        _ => return,
    }
    if container.get(&key).is_some_and(is_empty_container) {
        container.remove(&key);
    }
}

fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
// A failing expectation is exactly how a test should report a bug.
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use crate::scim::{ENTERPRISE_USER_SCHEMA, ScimType};
    use serde_json::json;

    const ENT: &str = ENTERPRISE_USER_SCHEMA;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test fixtures are objects"),
        }
    }

    fn user() -> Map<String, Value> {
        object(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
            "id": "42",
            "externalId": "e-42",
            "userName": "bjensen",
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [
                {"value": "b@example.com", "type": "work", "primary": true},
                {"value": "babs@example.org", "type": "home"},
                {"type": "other"}
            ],
            "meta": {"resourceType": "User", "version": "W/\"1\""},
            ENT: {
                "department": "Tour Operations",
                "manager": {"value": "7", "displayName": "John"}
            }
        }))
    }

    fn list(s: &str) -> Vec<AttrPath> {
        parse_attribute_list(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn attribute_lists_split_on_commas_and_skip_blank_entries() {
        let cases: [(&str, &[&str]); 7] = [
            ("", &[]),
            (" , ,", &[]),
            ("userName", &["userName"]),
            (
                "userName, name.givenName ,emails.value,",
                &["userName", "name.givenName", "emails.value"],
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                &["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"],
            ),
            (
                "URN:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                &["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            ),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
                &["userName"],
            ),
        ];
        for (input, expected) in cases {
            let shown: Vec<String> = list(input).iter().map(ToString::to_string).collect();
            assert_eq!(shown, expected, "input {input:?}");
        }
    }

    #[test]
    fn malformed_attribute_list_entries_are_invalid_value_errors_naming_them() {
        let cases = [
            ("userName,name.", "'name.'"),
            ("a.b.c", "'a.b.c'"),
            ("emails[type eq \"work\"]", "'emails[type eq \"work\"]'"),
            ("user name", "'user name'"),
            ("urn:ietf:params:scim:schemas:core:2.0:User", "core schema"),
        ];
        for (input, needle) in cases {
            let err = parse_attribute_list(input).expect_err(input);
            assert_eq!(
                err.scim_type,
                Some(ScimType::InvalidValue),
                "input {input:?}"
            );
            assert!(
                err.detail.contains(needle),
                "input {input:?}: {}",
                err.detail
            );
        }
    }

    #[test]
    fn attributes_keep_only_the_named_attributes_plus_always_returned_ones() {
        let cases = [
            (
                "userName",
                json!({"schemas": user()["schemas"], "id": "42", "userName": "bjensen"}),
            ),
            (
                "USERNAME,Meta",
                json!({
                    "schemas": user()["schemas"], "id": "42", "userName": "bjensen",
                    "meta": {"resourceType": "User", "version": "W/\"1\""}
                }),
            ),
            (
                "name.givenName",
                json!({"schemas": user()["schemas"], "id": "42", "name": {"givenName": "Barbara"}}),
            ),
            (
                "name.givenName,name",
                json!({
                    "schemas": user()["schemas"], "id": "42",
                    "name": {"givenName": "Barbara", "familyName": "Jensen"}
                }),
            ),
            (
                "emails.value",
                json!({
                    "schemas": user()["schemas"], "id": "42",
                    "emails": [{"value": "b@example.com"}, {"value": "babs@example.org"}]
                }),
            ),
            (
                "emails.value,emails.TYPE",
                json!({
                    "schemas": user()["schemas"], "id": "42",
                    "emails": [
                        {"value": "b@example.com", "type": "work"},
                        {"value": "babs@example.org", "type": "home"},
                        {"type": "other"}
                    ]
                }),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                json!({"schemas": user()["schemas"], "id": "42", ENT: {"department": "Tour Operations"}}),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName",
                json!({"schemas": user()["schemas"], "id": "42", ENT: {"manager": {"displayName": "John"}}}),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                json!({"schemas": user()["schemas"], "id": "42", ENT: user()[ENT]}),
            ),
            (
                // Selecting nothing that exists leaves no empty extension object behind.
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter,nickName,userName.x",
                json!({"schemas": user()["schemas"], "id": "42"}),
            ),
            (
                // An unqualified name never reaches into an extension.
                "department",
                json!({"schemas": user()["schemas"], "id": "42"}),
            ),
        ];
        for (attributes, expected) in cases {
            let got = project(user(), &list(attributes), &[], &[]);
            assert_eq!(Value::Object(got), expected, "attributes {attributes:?}");
        }
    }

    #[test]
    fn excluded_attributes_remove_only_the_named_attributes() {
        let full = || Value::Object(user());
        let without = |edit: &dyn Fn(&mut Map<String, Value>)| {
            let mut u = user();
            edit(&mut u);
            Value::Object(u)
        };
        let cases = [
            ("", full()),
            ("id,schemas,ID", full()),
            ("unknownAttr,name.middleName", full()),
            ("meta", without(&|u| drop(u.remove("meta")))),
            (
                "EMAILS,userName",
                without(&|u| {
                    u.remove("emails");
                    u.remove("userName");
                }),
            ),
            (
                "name.givenName",
                without(&|u| {
                    u["name"] = json!({"familyName": "Jensen"});
                }),
            ),
            (
                "name.givenName,name.familyName",
                without(&|u| drop(u.remove("name"))),
            ),
            (
                "emails.type",
                without(&|u| {
                    u["emails"] = json!([
                        {"value": "b@example.com", "primary": true},
                        {"value": "babs@example.org"}
                    ]);
                }),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                without(&|u| drop(u.remove(ENT))),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                without(&|u| {
                    u[ENT] = json!({"department": "Tour Operations"});
                }),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.VALUE",
                without(&|u| {
                    u[ENT]["manager"] = json!({"displayName": "John"});
                }),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                without(&|u| drop(u.remove(ENT))),
            ),
        ];
        for (excluded, expected) in cases {
            let got = project(user(), &[], &list(excluded), &[]);
            assert_eq!(
                Value::Object(got),
                expected,
                "excludedAttributes {excluded:?}"
            );
        }
    }

    #[test]
    fn caller_supplied_always_names_survive_both_lists() {
        let kept = project(user(), &list("userName"), &[], &["meta"]);
        assert!(kept.contains_key("meta"));
        let kept = project(user(), &[], &list("meta,userName"), &["META"]);
        assert!(kept.contains_key("meta"));
        assert!(!kept.contains_key("userName"));
    }

    #[test]
    fn attributes_win_when_both_lists_are_given() {
        let got = project(user(), &list("userName"), &list("userName"), &[]);
        assert_eq!(got.get("userName"), Some(&json!("bjensen")));
        assert!(!got.contains_key("emails"));
    }

    #[test]
    fn extension_keys_are_matched_case_insensitively() {
        let mut u = user();
        let ext = u.remove(ENT).unwrap_or_default();
        u.insert(ENT.to_lowercase(), ext);
        let got = project(u.clone(), &list(&format!("{ENT}:department")), &[], &[]);
        assert_eq!(
            got.get(&ENT.to_lowercase()),
            Some(&json!({"department": "Tour Operations"}))
        );
        let got = project(u, &[], &list(ENT), &[]);
        assert!(!got.contains_key(&ENT.to_lowercase()));
    }
}
