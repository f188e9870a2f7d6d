//! The bounds on what one SCIM request may ask of the server, checked on the parsed request
//! before any store call (RFC 7644 §3.12 `tooMany` / 413 style errors name the cap).
//!
//! Each cap is configurable (see the README's configuration table); the defaults keep one
//! request's memory and CPU small enough that no tenant can starve another.

use serde_json::{Map, Value};

use super::ScimError;
use super::filter::Filter;
use super::path::AttrPath;
use super::schema::ResourceTypeDef;

/// Caps on request content and on the work one request may cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest stored document (a user or group as JSON, without server attributes), in bytes.
    pub max_document_bytes: usize,
    /// Most values of one multi-valued attribute (e.g. `emails`); group `members` excepted.
    pub max_multi_values: usize,
    /// Most operations in one PATCH request.
    pub max_patch_operations: usize,
    /// Most member ids one request may add, remove or set on a group.
    pub max_members_per_request: usize,
    /// Bytes of stored documents a list page may read before it stops early.
    pub list_byte_budget: usize,
    /// Most predicates on multi-valued attributes (which scan) in one filter.
    pub max_filter_multi_valued: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_document_bytes: 128 * 1024,
            max_multi_values: 100,
            max_patch_operations: 1_000,
            max_members_per_request: 10_000,
            list_byte_budget: 8 * 1024 * 1024,
            max_filter_multi_valued: 8,
        }
    }
}

/// 413 for a size cap (RFC 7644 §3.12 lists 413 for a request too large to process).
fn too_large(detail: String) -> ScimError {
    ScimError {
        status: 413,
        scim_type: None,
        detail,
    }
}

/// The size of `doc` serialized as compact JSON, counted without building the text.
pub fn serialized_len(doc: &Map<String, Value>) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Writing a `Map` to an infallible writer cannot fail.
    let _ = serde_json::to_writer(&mut counter, doc);
    counter.0
}

/// Checks a document about to be stored (after a POST, PUT merge or PATCH): every
/// multi-valued attribute at any level holds at most `max_multi_values` values (a group's
/// `members` excepted: they are stored apart and bounded per request), then the whole is at
/// most `max_document_bytes` serialized. `kind` names the resource in the message.
pub fn check_document(
    kind: &str,
    doc: &Map<String, Value>,
    limits: &Limits,
) -> Result<(), ScimError> {
    let mut path = Vec::new();
    for (key, value) in doc {
        if kind == "group" && key.eq_ignore_ascii_case("members") {
            continue;
        }
        path.clear();
        path.push(key.as_str());
        check_values(&mut path, value, limits.max_multi_values)?;
    }
    let bytes = serialized_len(doc);
    if bytes > limits.max_document_bytes {
        return Err(too_large(format!(
            "the {kind} would be {bytes} bytes; at most {} are allowed \
             (max_document_bytes, SCIMD_MAX_DOCUMENT_BYTES)",
            limits.max_document_bytes
        )));
    }
    Ok(())
}

/// Walks a value; a normalized document holds arrays only for multi-valued attributes
/// (RFC 7643 §2.4), so every array is one such attribute, named by its `path` (joined only
/// for the message: every write walks every member).
fn check_values<'a>(
    path: &mut Vec<&'a str>,
    value: &'a Value,
    max: usize,
) -> Result<(), ScimError> {
    match value {
        Value::Array(items) => {
            if items.len() > max {
                return Err(ScimError::invalid_value(format!(
                    "{} has {} values; at most {max} are allowed per multi-valued \
                     attribute (max_multi_values, SCIMD_MAX_MULTI_VALUES)",
                    path.join("."),
                    items.len()
                )));
            }
            items.iter().try_for_each(|v| check_values(path, v, max))
        }
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            path.push(k);
            let checked = check_values(path, v, max);
            path.pop();
            checked
        }),
        _ => Ok(()),
    }
}

/// RFC 7644 §3.5.2 places no bound on `Operations`; each costs work inside the write
/// transaction, so one request may carry at most `max_patch_operations`.
pub fn check_patch_operations(count: usize, limits: &Limits) -> Result<(), ScimError> {
    if count > limits.max_patch_operations {
        return Err(ScimError::invalid_value(format!(
            "the request has {count} operations; at most {} are allowed per PATCH \
             (max_patch_operations, SCIMD_MAX_PATCH_OPERATIONS)",
            limits.max_patch_operations
        )));
    }
    Ok(())
}

/// Member ids one group request adds, removes or sets, summed over its operations.
pub fn check_members(count: usize, limits: &Limits) -> Result<(), ScimError> {
    if count > limits.max_members_per_request {
        return Err(ScimError::invalid_value(format!(
            "the request names {count} members; at most {} are allowed per request \
             (max_members_per_request, SCIMD_MAX_MEMBERS_PER_REQUEST); split it into several",
            limits.max_members_per_request
        )));
    }
    Ok(())
}

/// The predicates of `filter` on multi-valued attributes of any of `types`: each value
/// filter `emails[...]` counts once, and so does each comparison or presence test whose
/// path names a multi-valued attribute (`emails.value co "x"`). These are what scan.
pub fn multi_valued_predicates(filter: &Filter, types: &[&ResourceTypeDef]) -> usize {
    let multi = |path: &AttrPath| {
        types.iter().any(|rt| {
            rt.resolve(path.schema.as_deref(), &path.attr, None)
                .is_some_and(|(def, _)| def.multi_valued)
        })
    };
    match filter {
        Filter::Compare { path, .. } | Filter::Present(path) => usize::from(multi(path)),
        Filter::ValuePath { .. } => 1,
        Filter::And(a, b) | Filter::Or(a, b) => {
            multi_valued_predicates(a, types) + multi_valued_predicates(b, types)
        }
        Filter::Not(inner) => multi_valued_predicates(inner, types),
    }
}

/// Bounds the cost of one filter (issue 11 item 3): at most `max_filter_multi_valued`
/// predicates on multi-valued attributes → otherwise `400 invalidFilter` naming the cap.
pub fn check_filter(
    filter: &Filter,
    types: &[&ResourceTypeDef],
    limits: &Limits,
) -> Result<(), ScimError> {
    let count = multi_valued_predicates(filter, types);
    if count > limits.max_filter_multi_valued {
        return Err(ScimError::invalid_filter(format!(
            "the filter has {count} predicates on multi-valued attributes; at most {} are \
             allowed (max_filter_multi_valued, SCIMD_MAX_FILTER_MULTI_VALUED)",
            limits.max_filter_multi_valued
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::ScimType;
    use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
    use serde_json::json;

    fn small() -> Limits {
        Limits {
            max_document_bytes: 200,
            max_multi_values: 3,
            ..Limits::default()
        }
    }

    fn doc(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn serialized_len_is_the_compact_json_length() {
        let d = doc(json!({"userName": "a@b.co", "emails": [{"value": "é"}]}));
        assert_eq!(
            serialized_len(&d),
            serde_json::to_vec(&d).map_or(0, |v| v.len())
        );
    }

    #[test]
    fn documents_are_checked_for_values_and_size() {
        let emails = |n: usize| json!((0..n).map(|i| json!({"value": i})).collect::<Vec<_>>());
        let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        // (case, kind, document, expected (status, scimType, fragment) or None for Ok)
        type Want = Option<(u16, Option<ScimType>, &'static str)>;
        let cases: Vec<(&str, &str, Value, Want)> = vec![
            ("small", "user", json!({"userName": "a"}), None),
            ("3 values", "user", json!({"emails": emails(3)}), None),
            (
                "4 values",
                "user",
                json!({"emails": emails(4)}),
                Some((400, Some(ScimType::InvalidValue), "emails has 4 values")),
            ),
            (
                "nested in an extension",
                "user",
                json!({ent: {"x": [1, 2, 3, 4]}}),
                Some((400, Some(ScimType::InvalidValue), "User.x has 4 values")),
            ),
            (
                "group members are excepted",
                "group",
                json!({"members": [1, 2, 3, 4, 5]}),
                None,
            ),
            (
                "user members are not",
                "user",
                json!({"members": [1, 2, 3, 4, 5]}),
                Some((400, Some(ScimType::InvalidValue), "members")),
            ),
            (
                "too large",
                "user",
                json!({"displayName": "x".repeat(200)}),
                Some((413, None, "max_document_bytes")),
            ),
        ];
        for (case, kind, body, want) in cases {
            let got = check_document(kind, &doc(body), &small());
            match (got, want) {
                (Ok(()), None) => {}
                (Err(e), Some((status, ty, fragment))) => {
                    assert_eq!((e.status, e.scim_type), (status, ty), "{case}");
                    assert!(e.detail.contains(fragment), "{case}: {}", e.detail);
                }
                (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn counts_are_capped_at_their_limits() {
        let limits = Limits::default();
        assert!(check_patch_operations(1_000, &limits).is_ok());
        let e = check_patch_operations(1_001, &limits).unwrap_err();
        assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidValue)));
        assert!(e.detail.contains("1000"), "{}", e.detail);
        assert!(check_members(10_000, &limits).is_ok());
        let e = check_members(10_001, &limits).unwrap_err();
        assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidValue)));
        assert!(e.detail.contains("max_members_per_request"), "{}", e.detail);
    }

    #[test]
    fn multi_valued_predicates_are_counted_against_the_schema() {
        let users: &[&ResourceTypeDef] = &[&USER_RESOURCE];
        let both: &[&ResourceTypeDef] = &[&USER_RESOURCE, &GROUP_RESOURCE];
        let cases: Vec<(&str, &[&ResourceTypeDef], usize)> = vec![
            ("userName eq \"a\"", users, 0),
            ("name.givenName sw \"a\" and active eq true", users, 0),
            ("emails.value co \"x\"", users, 1),
            ("emails co \"x\"", users, 1),
            ("emails pr", users, 1),
            ("emails[value co \"x\" and type eq \"w\"]", users, 1),
            (
                "emails[type eq \"w\"] or not (phoneNumbers.value eq \"1\")",
                users,
                2,
            ),
            ("members.value eq \"x\"", users, 0),
            ("members.value eq \"x\"", both, 1),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"m\"",
                users,
                0,
            ),
        ];
        for (text, types, want) in cases {
            let filter: Filter = text.parse().unwrap();
            assert_eq!(multi_valued_predicates(&filter, types), want, "{text}");
        }
    }

    #[test]
    fn the_issues_forty_value_filters_are_refused() {
        let term = "emails[value co \"x\" and type eq \"w\"]";
        let text = vec![term; 40].join(" or ");
        let filter: Filter = text.parse().unwrap();
        let e = check_filter(&filter, &[&USER_RESOURCE], &Limits::default()).unwrap_err();
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(ScimType::InvalidFilter))
        );
        assert!(e.detail.contains("at most 8"), "{}", e.detail);
        let eight: Filter = [term; 8].join(" or ").parse().unwrap();
        assert!(check_filter(&eight, &[&USER_RESOURCE], &Limits::default()).is_ok());
    }
}
