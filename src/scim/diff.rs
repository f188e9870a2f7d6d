//! What a change did to a resource, for the change log and SCIM events (RFC 9967 §2.4.2:
//! "the list of modified attributes"): the names of the attributes that differ between two
//! documents, and a request's data with every password taken out.

use serde_json::{Map, Value};

type Doc = Map<String, Value>;

/// The attributes whose values differ between `before` and `after`, by name, sorted: core
/// attributes by their name (`emails`, `name`), extension attributes by their full path
/// (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`), as RFC 7644
/// §3.10 writes them. An attribute added or removed counts as changed.
pub fn changed_attributes(before: &Doc, after: &Doc) -> Vec<String> {
    let mut names = Vec::new();
    for key in union_of_keys(before, after) {
        let (old, new) = (before.get(key), after.get(key));
        if old == new {
            continue;
        }
        if key.starts_with("urn:") {
            let empty = Doc::new();
            let as_object = |v: Option<&Value>| v.and_then(Value::as_object).cloned();
            let (old, new) = (as_object(old), as_object(new));
            let (old, new) = (
                old.as_ref().unwrap_or(&empty),
                new.as_ref().unwrap_or(&empty),
            );
            for sub in union_of_keys(old, new) {
                if old.get(sub) != new.get(sub) {
                    names.push(format!("{key}:{sub}"));
                }
            }
        } else {
            names.push(key.clone());
        }
    }
    names.sort();
    names
}

/// Every key of either document, once.
fn union_of_keys<'a>(a: &'a Doc, b: &'a Doc) -> Vec<&'a String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The attribute names of a new resource (every attribute it was created with), sorted.
pub fn created_attributes(doc: &Doc) -> Vec<String> {
    changed_attributes(&Doc::new(), doc)
}

/// `value` with every object key that names a password (`password`, or a path ending in
/// `:password`, in any case) removed at any depth, and the `value` of any PATCH operation
/// whose `path` names one: the change log keeps requests, never passwords.
pub fn without_password(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let path_is_password = map.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("path") && v.as_str().is_some_and(names_password)
            });
            Value::Object(
                map.iter()
                    .filter(|(k, _)| !names_password(k))
                    .filter(|(k, _)| !(path_is_password && k.eq_ignore_ascii_case("value")))
                    .map(|(k, v)| (k.clone(), without_password(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(without_password).collect()),
        other => other.clone(),
    }
}

/// Whether an attribute name or path names the password.
fn names_password(name: &str) -> bool {
    let last = name.rsplit(':').next().unwrap_or(name);
    last.trim().eq_ignore_ascii_case("password")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(value: Value) -> Doc {
        value.as_object().cloned().expect("object")
    }

    #[test]
    fn changed_attributes_names_what_differs_and_nothing_else() {
        let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let cases: Vec<(Value, Value, Vec<String>)> = vec![
            (json!({"userName": "a"}), json!({"userName": "a"}), vec![]),
            (
                json!({"userName": "a", "active": true}),
                json!({"userName": "b", "active": true}),
                vec!["userName".into()],
            ),
            (
                json!({"userName": "a"}),
                json!({"userName": "a", "emails": [{"value": "x@y"}]}),
                vec!["emails".into()],
            ),
            (
                json!({"userName": "a", "title": "t"}),
                json!({"userName": "a"}),
                vec!["title".into()],
            ),
            (
                json!({enterprise: {"department": "d", "division": "v"}}),
                json!({enterprise: {"department": "e", "division": "v"}}),
                vec![format!("{enterprise}:department")],
            ),
            (
                json!({}),
                json!({enterprise: {"department": "d"}}),
                vec![format!("{enterprise}:department")],
            ),
            (
                json!({"name": {"givenName": "A"}, "active": true}),
                json!({"name": {"givenName": "B"}, "active": false}),
                vec!["active".into(), "name".into()],
            ),
        ];
        for (before, after, want) in cases {
            assert_eq!(
                changed_attributes(&doc(before.clone()), &doc(after.clone())),
                want,
                "{before} → {after}"
            );
        }
    }

    #[test]
    fn created_attributes_lists_every_attribute_given() {
        let created = created_attributes(&doc(json!({"userName": "a", "active": true})));
        assert_eq!(created, ["active", "userName"]);
    }

    #[test]
    fn without_password_removes_passwords_wherever_a_request_carries_them() {
        let cases = [
            (
                json!({"userName": "a", "password": "s"}),
                json!({"userName": "a"}),
            ),
            (
                json!({"Operations": [{"op": "replace", "path": "password", "value": "s"}]}),
                json!({"Operations": [{"op": "replace", "path": "password"}]}),
            ),
            (
                json!({"Operations": [{"op": "Replace", "Path": "PASSWORD", "Value": "s"}]}),
                json!({"Operations": [{"op": "Replace", "Path": "PASSWORD"}]}),
            ),
            (
                json!({"Operations": [{"op": "replace", "value": {"Password": "s", "active": true}}]}),
                json!({"Operations": [{"op": "replace", "value": {"active": true}}]}),
            ),
            (
                json!({"Operations": [{"op": "replace", "value": {
                    "urn:ietf:params:scim:schemas:core:2.0:User:password": "s"}}]}),
                json!({"Operations": [{"op": "replace", "value": {}}]}),
            ),
            (
                json!({"Operations": [{"op": "add", "path": "title", "value": "password"}]}),
                json!({"Operations": [{"op": "add", "path": "title", "value": "password"}]}),
            ),
        ];
        for (given, want) in cases {
            assert_eq!(without_password(&given), want, "{given}");
        }
    }
}
