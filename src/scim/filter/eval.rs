//! In-memory evaluation of a parsed [`Filter`] against a resource held as a JSON object
//! (RFC 7644 §3.4.2.2 matching rules), for stores that cannot push a filter down to SQL and
//! for PATCH value-path selection (RFC 7644 §3.5.2).

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::{DateTime, FixedOffset};
use serde_json::{Map, Number, Value};

use super::{CompValue, CompareOp, Filter};
use crate::scim::doc::get_ci;
use crate::scim::path::AttrPath;

impl Filter {
    /// In-memory evaluation against a resource (a JSON object keyed by attribute names,
    /// extensions nested under their URN). `case_exact(&path)` tells whether string
    /// comparison on that attribute is case-sensitive (RFC 7643 §2.2 `caseExact`).
    ///
    /// Semantics (RFC 7644 §3.4.2.2):
    /// - names and URN keys match case-insensitively;
    /// - a multi-valued attribute matches if ANY value matches, `ne` included;
    /// - a complex value compared without a sub-attribute uses its `value` sub-attribute, as
    ///   in the RFC's example `emails co "example.com"`;
    /// - an absent (or null) attribute matches `eq null` and `ne <anything but null>`, and no
    ///   other comparison: it is "not equal" to every value, so `ne` is true;
    /// - values of different JSON types never compare equal (so `ne` is true).
    pub fn matches(
        &self,
        resource: &Map<String, Value>,
        case_exact: &dyn Fn(&AttrPath) -> bool,
    ) -> bool {
        match self {
            Filter::Compare { path, op, value } => {
                let values = resolve(resource, path);
                match (op, value) {
                    (CompareOp::Eq, CompValue::Null) => values.is_empty(),
                    (CompareOp::Ne, CompValue::Null) => !values.is_empty(),
                    (CompareOp::Ne, _) if values.is_empty() => true,
                    _ => {
                        let exact = case_exact(path);
                        values
                            .iter()
                            .any(|actual| compare(comparable(actual), *op, value, exact))
                    }
                }
            }
            Filter::Present(path) => resolve(resource, path).into_iter().any(is_present),
            Filter::And(left, right) => {
                left.matches(resource, case_exact) && right.matches(resource, case_exact)
            }
            Filter::Or(left, right) => {
                left.matches(resource, case_exact) || right.matches(resource, case_exact)
            }
            Filter::Not(inner) => !inner.matches(resource, case_exact),
            Filter::ValuePath { path, filter } => {
                let Some(value) = lookup(resource, path) else {
                    return false;
                };
                // Inner paths are relative; report them to the caller as `attr.sub`.
                let inner_case = |inner: &AttrPath| {
                    case_exact(&AttrPath {
                        schema: path.schema.clone(),
                        attr: path.attr.clone(),
                        sub_attr: Some(inner.attr.clone()),
                    })
                };
                elements(value)
                    .iter()
                    .filter_map(Value::as_object)
                    .any(|element| filter.matches(element, &inner_case))
            }
        }
    }
}

/// The attribute's raw value (before sub-attribute selection), looking under the extension
/// object for URN-qualified paths.
fn lookup<'a>(resource: &'a Map<String, Value>, path: &AttrPath) -> Option<&'a Value> {
    let container = match &path.schema {
        None => resource,
        Some(urn) => get_ci(resource, urn)?.as_object()?,
    };
    get_ci(container, &path.attr)
}

fn elements(value: &Value) -> &[Value] {
    match value {
        Value::Array(items) => items,
        other => std::slice::from_ref(other),
    }
}

/// All non-null values the path designates, multi-valued attributes flattened.
fn resolve<'a>(resource: &'a Map<String, Value>, path: &AttrPath) -> Vec<&'a Value> {
    let Some(value) = lookup(resource, path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |v: &'a Value| out.extend(elements(v).iter().filter(|e| !e.is_null()));
    match &path.sub_attr {
        None => push(value),
        Some(sub) => elements(value)
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|element| get_ci(element, sub))
            .for_each(push),
    }
    out
}

/// `pr`: "If the attribute has a non-empty value, or if it contains a non-empty node for
/// complex attributes, there is a match" (RFC 7644 §3.4.2.2).
fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// The value a comparison looks at: a complex value stands for its `value` sub-attribute.
fn comparable(value: &Value) -> &Value {
    match value {
        Value::Object(map) => get_ci(map, "value").unwrap_or(value),
        other => other,
    }
}

fn compare(actual: &Value, op: CompareOp, expected: &CompValue, case_exact: bool) -> bool {
    match (actual, expected) {
        (Value::String(a), CompValue::Str(b)) => compare_strings(a, op, b, case_exact),
        (Value::Number(a), CompValue::Num(b)) => {
            compare_numbers(a, b).is_some_and(|ord| accepts(op, ord))
        }
        (Value::Bool(a), CompValue::Bool(b)) => match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            _ => false,
        },
        _ => op == CompareOp::Ne,
    }
}

fn fold(s: &str, case_exact: bool) -> Cow<'_, str> {
    if case_exact {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

fn parse_date_time(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

fn compare_strings(actual: &str, op: CompareOp, expected: &str, case_exact: bool) -> bool {
    let (a, b) = (fold(actual, case_exact), fold(expected, case_exact));
    match op {
        CompareOp::Co => a.contains(b.as_ref()),
        CompareOp::Sw => a.starts_with(b.as_ref()),
        CompareOp::Ew => a.ends_with(b.as_ref()),
        _ => {
            // RFC 7644 §3.4.2.2: dateTime attributes compare chronologically, so
            // "2011-05-13T06:42:34+02:00" equals "2011-05-13T04:42:34Z".
            let ord = match (parse_date_time(actual), parse_date_time(expected)) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => a.cmp(&b),
            };
            accepts(op, ord)
        }
    }
}

fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// Whether an ordering between the attribute value and the filter value satisfies an
/// equality or ordering operator. The substring operators never match an ordering.
fn accepts(op: CompareOp, ord: Ordering) -> bool {
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

#[cfg(test)]
// A failing expectation is exactly how a test should report a bug.
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Result<Filter, crate::scim::ScimError> {
        s.parse()
    }

    fn user() -> Map<String, Value> {
        let value = json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "AbC",
            "userName": "bjensen",
            "name": {"familyName": "O'Malley", "givenName": "Barbara"},
            "title": "Tour Guide",
            "nickName": "",
            "userType": "Employee",
            "active": true,
            "loginCount": 42,
            "score": 2.5,
            "tags": [],
            "extra": {},
            "nothing": null,
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "ims": [{"value": "babs@foo.com", "type": "xmpp"}],
            "meta": {
                "created": "2010-01-23T04:56:22Z",
                "lastModified": "2011-05-13T04:42:34Z"
            },
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
            }
        });
        match value {
            Value::Object(map) => map,
            _ => unreachable!("fixture is an object"),
        }
    }

    /// `id`, `externalId` and `emails.type` are caseExact in this fixture schema.
    fn case_exact(path: &AttrPath) -> bool {
        path.attr.eq_ignore_ascii_case("id")
            || path.attr.eq_ignore_ascii_case("externalId")
            || (path.attr.eq_ignore_ascii_case("emails")
                && path.sub_attr.as_deref() == Some("type"))
    }

    #[test]
    fn filters_evaluate_against_a_resource_per_rfc_7644_semantics() {
        let cases = [
            // RFC 7644 §3.4.2.2 examples.
            (r#"userName eq "bjensen""#, true),
            (r#"name.familyName co "O'Malley""#, true),
            (r#"userName sw "J""#, false),
            (r#"userName sw "B""#, true),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bj""#,
                true,
            ),
            ("title pr", true),
            (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, false),
            (r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, true),
            (r#"meta.lastModified lt "2011-05-13T04:42:34Z""#, false),
            (r#"meta.lastModified le "2011-05-13T04:42:34Z""#, true),
            (r#"title pr and userType eq "Employee""#, true),
            (r#"title pr or userType eq "Intern""#, true),
            (
                r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
                true,
            ),
            (
                r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
                true,
            ),
            (
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
                false,
            ),
            (
                r#"userType eq "Employee" and (emails.type eq "work")"#,
                true,
            ),
            (
                r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
                true,
            ),
            (
                r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
                true,
            ),
            // Case sensitivity: names and non-caseExact values fold, caseExact ones do not.
            (r#"USERNAME eq "BJENSEN""#, true),
            (r#"externalId eq "abc""#, false),
            (r#"externalId eq "AbC""#, true),
            (r#"emails[type eq "WORK"]"#, false),
            (r#"emails[TYPE eq "work"]"#, true),
            (r#"userName ne "BJensen""#, false),
            (r#"title co "GUIDE""#, true),
            (r#"title ew "guide""#, true),
            (r#"title sw "guide""#, false),
            // Ordering on strings, numbers, dates with other offsets.
            (r#"userName gt "a""#, true),
            (r#"userName lt "B""#, false),
            ("loginCount gt 41", true),
            ("loginCount ge 42.0", true),
            ("loginCount lt 42", false),
            ("loginCount le 42", true),
            ("loginCount eq 42", true),
            ("loginCount ne 42", false),
            ("score gt 2", true),
            ("score eq 2.5", true),
            (r#"meta.created eq "2010-01-23T06:56:22+02:00""#, true),
            (r#"meta.created lt "2010-01-23T05:00:00+01:00""#, false),
            (r#"meta.created gt "2010-01-22T23:59:59-05:00""#, false),
            (r#"meta.created lt "2010-01-23T04:56:22.5Z""#, true),
            // Booleans and null.
            ("active eq true", true),
            ("active ne true", false),
            ("active eq false", false),
            ("nothing eq null", true),
            ("missing eq null", true),
            ("userName eq null", false),
            ("userName ne null", true),
            ("missing ne null", false),
            // Absent attributes: only ne matches (documented choice).
            (r#"missing eq "x""#, false),
            (r#"missing ne "x""#, true),
            (r#"missing co "x""#, false),
            ("missing gt 1", false),
            // Type mismatches never compare equal.
            (r#"loginCount eq "42""#, false),
            (r#"loginCount ne "42""#, true),
            // Presence.
            ("nickName pr", false),
            ("tags pr", false),
            ("extra pr", false),
            ("nothing pr", false),
            ("missing pr", false),
            ("emails pr", true),
            ("emails.primary pr", true),
            ("name.middleName pr", false),
            ("not (title pr)", false),
            // Multi-valued: any element matches.
            (r#"emails.type eq "home""#, true),
            (r#"emails.type ne "work""#, true),
            (r#"emails.value ew ".org""#, true),
            (r#"emails[type eq "home" and primary eq true]"#, false),
            (r#"emails[type eq "work" and primary eq true]"#, true),
            (r#"emails[not (primary pr)]"#, true),
            (r#"name[givenName sw "barb"]"#, true),
            (r#"missing[value pr]"#, false),
            // Extensions, URN keys case-insensitive.
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "tour operations""#,
                true,
            ),
            (
                r#"URN:IETF:params:scim:schemas:extension:enterprise:2.0:user:manager.value sw "26118915""#,
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter pr"#,
                false,
            ),
            (r#"urn:omni:params:1.0:UserAttribute:good_blob pr"#, false),
            // Precedence: a or (b and c).
            (
                r#"userName eq "nobody" or title pr and active eq true"#,
                true,
            ),
            (
                r#"(userName eq "nobody" or title pr) and active eq false"#,
                false,
            ),
            (
                r#"userName eq "bjensen" or missing pr and active eq false"#,
                true,
            ),
        ];
        let resource = user();
        for (input, expected) in cases {
            let filter = parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(
                filter.matches(&resource, &case_exact),
                expected,
                "filter {input:?}"
            );
        }
    }

    #[test]
    fn value_filters_report_the_full_path_to_the_case_exact_callback() {
        let seen = std::cell::RefCell::new(Vec::new());
        let record = |p: &AttrPath| {
            seen.borrow_mut().push(p.to_string());
            false
        };
        let filter = parse(r#"emails[type eq "x"]"#).expect("valid");
        assert!(!filter.matches(&user(), &record));
        assert_eq!(
            seen.borrow().first().map(String::as_str),
            Some("emails.type")
        );
    }
}
