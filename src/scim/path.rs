//! Attribute paths: the `attrPath` of RFC 7644 §3.4.2.2, used by filters, `sortBy`,
//! `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5) and as the attribute part of a
//! PATCH path (whose value-filter form, RFC 7644 §3.5.2, is `super::patch::PatchPath`).
//!
//! Parsing is purely syntactic: attribute names are kept as written and callers canonicalise
//! them against the schema (RFC 7643 §2.1 makes names case-insensitive).

use std::fmt;

use super::schema::all_schemas;
use super::{GROUP_SCHEMA, ScimError, USER_SCHEMA};

/// Schema URNs we know (those of the schema definitions), so that a URN containing dots
/// (`...:2.0:User`) is not mistaken for an `attr.sub` split. Matching tries the longest first
/// so a URN that is a prefix of another can never shadow it.
fn known_schemas() -> impl Iterator<Item = &'static str> {
    let mut urns = all_schemas().map(|schema| schema.id);
    urns.sort_by_key(|urn| std::cmp::Reverse(urn.len()));
    urns.into_iter()
}

/// An attribute reference (RFC 7644 §3.10 / the attrPath ABNF of §3.4.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN when the path was URN-qualified, e.g.
    /// `Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")`.
    /// A path qualified with the core User/Group schema URN normalises to `None`.
    pub schema: Option<String>,
    /// Attribute name as written (matching is case-insensitive; callers canonicalise). Empty
    /// only when the path names a whole extension schema (see [`AttrPath::parse_or_schema`]).
    pub attr: String,
    /// Sub-attribute, e.g. `givenName` in `name.givenName`.
    pub sub_attr: Option<String>,
}

impl AttrPath {
    /// Parses `[URN ":"] attr ["." subAttr]`. A bare schema URN is rejected: it names no
    /// attribute, which filters (RFC 7644 §3.4.2.2) always need.
    pub fn parse(s: &str) -> Result<AttrPath, ScimError> {
        let path = Self::parse_or_schema(s)?;
        if path.is_schema_only() {
            return Err(ScimError::invalid_path(format!(
                "'{s}' names a schema, not an attribute"
            )));
        }
        Ok(path)
    }

    /// Like [`AttrPath::parse`], but also accepts a known extension schema URN on its own
    /// (giving an empty `attr`): a PATCH may target a whole extension (RFC 7644 §3.5.2) and
    /// `attributes` may name one (RFC 7644 §3.4.2.5).
    pub fn parse_or_schema(s: &str) -> Result<AttrPath, ScimError> {
        if s.is_empty() {
            return Err(ScimError::invalid_path("empty attribute path"));
        }
        let (schema, rest) = split_schema(s)?;
        if rest.is_empty() {
            return Ok(AttrPath {
                schema,
                attr: String::new(),
                sub_attr: None,
            });
        }
        // The RFC grammar has exactly one optional level of sub-attribute, so `a.b.c` is
        // rejected by the name check on `b.c` (a '.' is not a nameChar).
        let (attr, sub_attr) = match rest.split_once('.') {
            Some((attr, sub)) => (attr, Some(sub)),
            None => (rest, None),
        };
        check_name(attr, s)?;
        if let Some(sub) = sub_attr {
            check_name(sub, s)?;
        }
        Ok(AttrPath {
            schema,
            attr: attr.to_string(),
            sub_attr: sub_attr.map(str::to_string),
        })
    }

    /// True when the path names a whole extension schema rather than an attribute.
    pub fn is_schema_only(&self) -> bool {
        self.attr.is_empty()
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            f.write_str(schema)?;
            if self.attr.is_empty() {
                return Ok(());
            }
            f.write_str(":")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// ASCII case-insensitive `starts_with`, safe on any UTF-8 input.
fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// Splits an optional schema URN (RFC 7644 §3.10: "urn:...:attr") off a path, returning the
/// canonical schema (None for the core schemas) and the remaining `attr[.sub]` text.
fn split_schema(s: &str) -> Result<(Option<String>, &str), ScimError> {
    if !starts_with_ci(s, "urn:") {
        return Ok((None, s));
    }
    for urn in known_schemas() {
        let core = urn == USER_SCHEMA || urn == GROUP_SCHEMA;
        if s.len() == urn.len() && s.eq_ignore_ascii_case(urn) {
            if core {
                return Err(ScimError::invalid_path(format!(
                    "'{s}' names the core schema, not an attribute"
                )));
            }
            return Ok((Some(urn.to_string()), ""));
        }
        if starts_with_ci(s, urn) && s.as_bytes().get(urn.len()) == Some(&b':') {
            let schema = (!core).then(|| urn.to_string());
            return Ok((schema, &s[urn.len() + 1..]));
        }
    }
    // An unknown URN: the attribute is whatever follows the last ':' (attribute names
    // cannot contain ':'). "urn:" alone has no namespace, so require one; and only a known
    // extension may be named bare, so an unknown one needs an attribute after it.
    match s.rfind(':') {
        Some(i) if i > "urn:".len() && i + 1 < s.len() => {
            Ok((Some(s[..i].to_string()), &s[i + 1..]))
        }
        _ => Err(ScimError::invalid_path(format!(
            "'{s}' is not a schema-qualified attribute path"
        ))),
    }
}

/// RFC 7644 §3.4.2.2 / RFC 7643 §2.1: `ATTRNAME = ALPHA *(nameChar)`,
/// `nameChar = "-" / "_" / DIGIT / ALPHA`. `$ref` is also accepted because RFC 7643 itself
/// defines sub-attributes with that name (§2.3.7, e.g. `members.$ref`). `whole` is the path
/// the name came from, for the error.
pub(super) fn check_name(name: &str, whole: &str) -> Result<(), ScimError> {
    let mut chars = name.chars();
    let valid = name.eq_ignore_ascii_case("$ref")
        || (chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    if valid {
        Ok(())
    } else if name.is_empty() {
        Err(ScimError::invalid_path(format!(
            "empty attribute name in path '{whole}'"
        )))
    } else {
        Err(ScimError::invalid_path(format!(
            "invalid attribute name '{name}' in path '{whole}'"
        )))
    }
}

#[cfg(test)]
// A failing expectation is exactly how a test should report a bug.
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use crate::scim::ScimType;
    use crate::scim::{ENTERPRISE_USER_SCHEMA, OMNI_USER_EXTENSION_SCHEMA, USER_ATTRIBUTE_SCHEMA};

    fn ap(schema: Option<&str>, attr: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            schema: schema.map(str::to_string),
            attr: attr.to_string(),
            sub_attr: sub.map(str::to_string),
        }
    }

    #[test]
    fn valid_attribute_paths_parse_into_their_parts() {
        let cases = [
            ("userName", ap(None, "userName", None)),
            ("name.givenName", ap(None, "name", Some("givenName"))),
            ("members.$ref", ap(None, "members", Some("$ref"))),
            ("x509Certificates", ap(None, "x509Certificates", None)),
            ("a-b_c", ap(None, "a-b_c", None)),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
                ap(None, "userName", None),
            ),
            (
                "URN:IETF:PARAMS:SCIM:SCHEMAS:CORE:2.0:USER:name.familyName",
                ap(None, "name", Some("familyName")),
            ),
            (
                "urn:ietf:params:scim:schemas:core:2.0:Group:displayName",
                ap(None, "displayName", None),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                ap(Some(ENTERPRISE_USER_SCHEMA), "department", None),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                ap(Some(ENTERPRISE_USER_SCHEMA), "manager", Some("value")),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:ENTERPRISE:2.0:user:manager.value",
                ap(Some(ENTERPRISE_USER_SCHEMA), "manager", Some("value")),
            ),
            (
                "urn:omni:params:1.0:UserAttribute:good_blob",
                ap(Some(USER_ATTRIBUTE_SCHEMA), "good_blob", None),
            ),
            (
                "urn:omni:params:scim:schemas:extension:user:2.0:lastLogin",
                ap(Some(OMNI_USER_EXTENSION_SCHEMA), "lastLogin", None),
            ),
            (
                "urn:acme:params:1.0:Thing:widget.size",
                ap(Some("urn:acme:params:1.0:Thing"), "widget", Some("size")),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(AttrPath::parse(input), Ok(expected), "input {input:?}");
        }
    }

    #[test]
    fn invalid_attribute_paths_are_rejected_as_invalid_path() {
        let cases = [
            "",
            "name.",
            ".x",
            "a.b.c",
            "user name",
            " userName",
            "1abc",
            "_abc",
            "emails[type eq \"work\"]",
            "urn:",
            "urn:x",
            "urn:acme:thing:",
            ENTERPRISE_USER_SCHEMA,
            USER_SCHEMA,
            "urn:ietf:params:scim:schemas:core:2.0:User:",
            "urn:ietf:params:scim:schemas:core:2.0:User:urn:x",
            "näme",
        ];
        for input in cases {
            let err = AttrPath::parse(input).expect_err(input);
            assert_eq!(
                err.scim_type,
                Some(ScimType::InvalidPath),
                "input {input:?}"
            );
            assert_eq!(err.status, 400);
        }
    }

    #[test]
    fn a_bare_extension_urn_is_accepted_only_by_parse_or_schema() {
        for urn in [
            ENTERPRISE_USER_SCHEMA,
            USER_ATTRIBUTE_SCHEMA,
            OMNI_USER_EXTENSION_SCHEMA,
        ] {
            let p = AttrPath::parse_or_schema(&urn.to_uppercase()).expect(urn);
            assert_eq!(p, ap(Some(urn), "", None));
            assert!(p.is_schema_only());
            assert_eq!(p.to_string(), urn);
        }
        assert!(AttrPath::parse_or_schema(USER_SCHEMA).is_err());
    }

    #[test]
    fn attribute_paths_display_in_a_form_that_parses_back() {
        let cases = [
            ("userName", "userName"),
            ("name.givenName", "name.givenName"),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
                "userName",
            ),
            (
                "URN:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            ),
            ("urn:acme:x:1.0:a.b", "urn:acme:x:1.0:a.b"),
        ];
        for (input, shown) in cases {
            let p = AttrPath::parse(input).expect(input);
            assert_eq!(p.to_string(), shown);
            assert_eq!(AttrPath::parse(shown), Ok(p));
        }
    }
}

/// Inputs the fuzzer found (fuzz/fuzz_targets/patch_path.rs), kept as regression tests.
#[cfg(test)]
mod fuzz_regressions {
    use super::*;

    #[test]
    fn an_unknown_urn_without_an_attribute_is_refused() {
        assert!(AttrPath::parse("urn:x:y:").is_err());
    }
}
