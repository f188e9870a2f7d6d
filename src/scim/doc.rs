//! Document helpers shared by every resource type: a resource held as a JSON object
//! (`serde_json::Map`), as `normalize` returns it and the store keeps it.
//!
//! These know nothing of Users or Groups, so `user`, `group`, `patch` and `filter` can all
//! use them without depending on one another.

use chrono::{DateTime, SecondsFormat};
use serde_json::{Map, Value};

type Doc = Map<String, Value>;

/// Case-insensitive key lookup (RFC 7643 §2.1: attribute names are case-insensitive),
/// trying the exact key first (the common, canonical case).
pub fn get_ci<'a>(map: &'a Doc, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// RFC 3339 with milliseconds, UTC: `2024-12-03T23:13:14.109Z` (`meta.created` and
/// `meta.lastModified`, RFC 7643 §3.1).
pub fn timestamp(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The reference's PUT: "sets the values of the parameters provided and leaving all other
/// properties of the user unchanged", for users and groups alike. Each attribute given
/// replaces the stored one; an extension object is a container, so its attributes merge one
/// by one; `null` clears.
pub fn merge(current: &Doc, incoming: Doc) -> Doc {
    let mut merged = current.clone();
    for (key, value) in incoming {
        match (merged.get_mut(&key), value) {
            (_, Value::Null) => {
                merged.remove(&key);
            }
            (Some(Value::Object(stored)), Value::Object(given)) if key.starts_with("urn:") => {
                for (attr, v) in given {
                    if v.is_null() {
                        stored.remove(&attr);
                    } else {
                        stored.insert(attr, v);
                    }
                }
                if stored.is_empty() {
                    merged.remove(&key);
                }
            }
            (_, value) => {
                merged.insert(key, strip_nulls(value));
            }
        }
    }
    merged
}

/// Null members of an object mean "unassigned" (RFC 7644 §3.5.1): they are not stored.
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Doc {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn get_ci_prefers_the_exact_key_and_otherwise_ignores_case() {
        let map = doc(json!({"userName": 1, "USERNAME": 2, "Emails": 3}));
        let cases = [
            ("userName", Some(1)),
            ("USERNAME", Some(2)),
            ("emails", Some(3)),
            ("EMAILS", Some(3)),
            ("title", None),
        ];
        for (key, want) in cases {
            assert_eq!(get_ci(&map, key), want.map(Value::from).as_ref(), "{key}");
        }
    }

    #[test]
    fn timestamps_are_rfc_3339_utc_with_milliseconds() {
        assert_eq!(timestamp(1_733_267_594_109), "2024-12-03T23:13:14.109Z");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn merge_sets_given_attributes_and_keeps_the_rest() {
        let current = doc(json!({
            "userName": "a@x.co", "displayName": "A", "title": "Boss",
            "urn:omni:params:1.0:UserAttribute": {"good_blob": "yes", "team": "red"}
        }));
        let incoming = doc(json!({
            "userName": "b@x.co", "title": null,
            "urn:omni:params:1.0:UserAttribute": {"team": null, "level": "3"}
        }));
        let merged = merge(&current, incoming);
        assert_eq!(
            Value::Object(merged),
            json!({
                "userName": "b@x.co", "displayName": "A",
                "urn:omni:params:1.0:UserAttribute": {"good_blob": "yes", "level": "3"}
            })
        );
    }

    #[test]
    fn merge_drops_an_extension_emptied_by_nulls_and_nested_nulls() {
        let current = doc(json!({"urn:x:ext": {"a": 1}}));
        let merged = merge(
            &current,
            doc(json!({"urn:x:ext": {"a": null}, "name": {"givenName": "G", "familyName": null}})),
        );
        assert_eq!(Value::Object(merged), json!({"name": {"givenName": "G"}}));
    }
}
