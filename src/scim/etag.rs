//! ETags (RFC 7644 §3.14): versions as weak ETags, `If-Match` / `If-None-Match` lists, and
//! the 412 for a stale `If-Match`.

use super::ScimError;

/// The weak ETag of a resource version: `W/"<n>"`.
pub fn etag(version: i64) -> String {
    // Written in parts: every response with a resource carries one.
    let mut digits = itoa::Buffer::new();
    ["W/\"", digits.format(version), "\""].concat()
}

/// A parsed `If-Match` or `If-None-Match` header (RFC 9110 §13.1.1-2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagCondition {
    /// `*`: any current representation.
    Any,
    /// A list of entity tags; only scimd's own versions can ever match.
    Versions(Vec<i64>),
}

impl EtagCondition {
    /// Parses a header value; tags that are not scimd versions are kept as "matches nothing".
    pub fn parse(header: &str) -> EtagCondition {
        if header.trim() == "*" {
            return EtagCondition::Any;
        }
        let versions = header
            .split(',')
            .filter_map(|tag| {
                let tag = tag.trim();
                // Weak comparison (RFC 9110 §8.8.3.2): the W/ prefix does not matter.
                let tag = tag.strip_prefix("W/").unwrap_or(tag);
                tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
            })
            .collect();
        EtagCondition::Versions(versions)
    }

    /// Does the resource at `version` satisfy this list?
    pub fn matches(&self, version: i64) -> bool {
        match self {
            EtagCondition::Any => true,
            EtagCondition::Versions(versions) => versions.contains(&version),
        }
    }
}

/// RFC 7644 §3.14: a write whose `If-Match` does not match the current version is 412 and
/// changes nothing.
pub fn check_if_match(condition: Option<&EtagCondition>, version: i64) -> Result<(), ScimError> {
    match condition {
        Some(c) if !c.matches(version) => Err(ScimError::precondition_failed(format!(
            "If-Match does not match the current version {}",
            etag(version)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_and_match_weakly() {
        let cases = [
            ("*", 7, true),
            ("W/\"7\"", 7, true),
            ("\"7\"", 7, true),
            ("W/\"6\"", 7, false),
            ("W/\"6\", W/\"7\"", 7, true),
            ("garbage", 7, false),
            ("\"abc\"", 7, false),
            ("", 7, false),
        ];
        for (header, version, want) in cases {
            assert_eq!(
                EtagCondition::parse(header).matches(version),
                want,
                "{header}"
            );
        }
    }

    #[test]
    fn etag_is_weak_and_quoted() {
        assert_eq!(etag(12), "W/\"12\"");
        assert!(EtagCondition::parse(&etag(12)).matches(12));
    }
}
