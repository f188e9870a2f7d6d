//! The PATCH `path` (RFC 7644 §3.5.2: `PATH = attrPath / valuePath [subAttr]`), such as
//! `emails[type eq "work"].value`. PATCH owns this form: its attribute part is an
//! [`AttrPath`] and its value filter is parsed by the filter grammar, so `scim::path` stays
//! free of filters.

use std::fmt;

use crate::scim::ScimError;
use crate::scim::filter::{Filter, parse_value_filter};
use crate::scim::path::{AttrPath, check_name};

/// A PATCH operation path (RFC 7644 §3.5.2: `PATH = attrPath / valuePath [subAttr]`).
///
/// For a plain `attrPath`, a sub-attribute lives in `attr.sub_attr` and `sub_attr` is `None`;
/// `sub_attr` is only used after a value filter (`emails[type eq "work"].value`).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    /// The filter inside `[...]`; its paths are relative to each element of `attr`.
    pub value_filter: Option<Filter>,
    pub sub_attr: Option<String>,
}

impl PatchPath {
    /// Parses a PATCH `path`. All errors are `invalidPath` (RFC 7644 §3.5.2: "If the target
    /// location path specifies an attribute that does not exist ... invalidPath"), including a
    /// malformed value filter, whose problem is named in the detail.
    pub fn parse(s: &str) -> Result<PatchPath, ScimError> {
        let Some(open) = s.find('[') else {
            return Ok(PatchPath {
                attr: AttrPath::parse_or_schema(s)?,
                value_filter: None,
                sub_attr: None,
            });
        };
        let attr = AttrPath::parse(&s[..open])?;
        if attr.sub_attr.is_some() {
            return Err(ScimError::invalid_path(format!(
                "in path '{s}': a value filter must follow a multi-valued attribute, \
                 not a sub-attribute"
            )));
        }
        let close = closing_bracket(s, open + 1).ok_or_else(|| {
            ScimError::invalid_path(format!(
                "in path '{s}': '[' at position {open} is never closed"
            ))
        })?;
        let filter = parse_value_filter(&s[open + 1..close]).map_err(|e| {
            ScimError::invalid_path(format!("invalid value filter in path '{s}': {}", e.detail))
        })?;
        let rest = &s[close + 1..];
        let sub_attr = if rest.is_empty() {
            None
        } else if let Some(sub) = rest.strip_prefix('.') {
            check_name(sub, s)?;
            Some(sub.to_string())
        } else {
            return Err(ScimError::invalid_path(format!(
                "in path '{s}': unexpected '{rest}' after ']'"
            )));
        };
        Ok(PatchPath {
            attr,
            value_filter: Some(filter),
            sub_attr,
        })
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.value_filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// Byte offset of the `]` closing a value filter that starts at `from`, skipping `]` inside
/// JSON string literals (`emails[value eq "a]b"]`).
fn closing_bracket(s: &str, from: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut in_string = false;
    let mut i = from;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b']' if !in_string => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
// A failing expectation is exactly how a test should report a bug.
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use crate::scim::{ScimType, USER_SCHEMA};

    fn ap(schema: Option<&str>, attr: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            schema: schema.map(str::to_string),
            attr: attr.to_string(),
            sub_attr: sub.map(str::to_string),
        }
    }

    #[test]
    fn patch_paths_parse_and_display_canonically() {
        let cases = [
            ("userName", "userName"),
            ("name.givenName", "name.givenName"),
            (
                "emails[type eq \"work\"].value",
                "emails[type eq \"work\"].value",
            ),
            (
                "addresses[type eq \"work\"].streetAddress",
                "addresses[type eq \"work\"].streetAddress",
            ),
            (
                "phoneNumbers[type EQ \"mobile\"]",
                "phoneNumbers[type eq \"mobile\"]",
            ),
            (
                "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]",
                "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]",
            ),
            (
                "emails[type eq \"work\" and value co \"@example.com\"]",
                "emails[type eq \"work\" and value co \"@example.com\"]",
            ),
            (
                "emails[value eq \"a]b\"].display",
                "emails[value eq \"a]b\"].display",
            ),
            (
                "emails[not (primary eq true)]",
                "emails[not (primary eq true)]",
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            ),
            (
                "urn:omni:params:1.0:UserAttribute:good_blob",
                "urn:omni:params:1.0:UserAttribute:good_blob",
            ),
        ];
        for (input, shown) in cases {
            let p = PatchPath::parse(input).expect(input);
            assert_eq!(p.to_string(), shown, "input {input:?}");
            assert_eq!(PatchPath::parse(shown), Ok(p), "input {input:?}");
        }
    }

    #[test]
    fn a_value_path_keeps_its_filter_and_trailing_sub_attribute_apart() {
        let p = PatchPath::parse("emails[type eq \"work\"].value").expect("valid");
        assert_eq!(p.attr, ap(None, "emails", None));
        assert_eq!(p.sub_attr.as_deref(), Some("value"));
        let filter: Filter = "type eq \"work\"".parse().expect("valid");
        assert_eq!(p.value_filter, Some(filter));
    }

    #[test]
    fn invalid_patch_paths_are_rejected_with_a_useful_detail() {
        let cases = [
            ("", "empty attribute path"),
            ("name.", "empty attribute name"),
            (".x", "empty attribute name"),
            ("a.b.c", "invalid attribute name 'b.c'"),
            ("emails[type eq \"work\"", "never closed"),
            ("emails[]", "empty filter"),
            (
                "emails[type eq \"work\"].value.x",
                "invalid attribute name 'value.x'",
            ),
            (
                "emails[type eq \"work\"]value",
                "unexpected 'value' after ']'",
            ),
            ("emails[type eq \"work\"]]", "unexpected ']' after ']'"),
            ("emails[type eq]", "invalid value filter"),
            ("emails[type eq \"work\" and]", "invalid value filter"),
            ("emails[type[value pr]]", "nested"),
            ("emails[name.x eq \"a\"]", "sub-attribute"),
            ("name.givenName[value pr]", "not a sub-attribute"),
            ("user name", "invalid attribute name"),
            ("1abc", "invalid attribute name '1abc'"),
            (USER_SCHEMA, "core schema"),
        ];
        for (input, needle) in cases {
            let err = PatchPath::parse(input).expect_err(input);
            assert_eq!(
                err.scim_type,
                Some(ScimType::InvalidPath),
                "input {input:?}"
            );
            assert!(
                err.detail.contains(needle),
                "input {input:?}: detail {:?} lacks {needle:?}",
                err.detail
            );
        }
    }
}

/// Inputs the fuzzer found (fuzz/fuzz_targets/patch_path.rs), kept as regression tests.
#[cfg(test)]
mod fuzz_regressions {
    use super::*;

    #[test]
    fn an_unknown_urn_without_an_attribute_is_refused() {
        assert!(PatchPath::parse("URn:n;UR~:").is_err());
    }

    #[test]
    fn value_filter_numbers_round_trip_exactly() {
        let path = PatchPath::parse("eJ[e\t\tge\t7700000000000000000596395213\t]").unwrap();
        let printed = path.to_string();
        assert_eq!(PatchPath::parse(&printed).unwrap(), path, "{printed}");
    }
}
