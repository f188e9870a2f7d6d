//! Resolution of a PATCH path against the resource type's schemas (RFC 7644 §3.5.2:
//! "If the target location path specifies an attribute that does not exist, the service
//! provider SHALL return ... invalidPath") and the path-level mutability rules.

use crate::scim::ScimError;
use crate::scim::filter::Filter;
use crate::scim::schema::{AttributeDef, Mutability, ResourceTypeDef, SchemaDef, USER_ATTRIBUTE};

use super::{OpKind, PatchPath};

/// What a path designates.
#[derive(Debug)]
pub(super) enum Target {
    /// A whole extension object (the path is a bare extension URN).
    Extension(&'static SchemaDef),
    /// One free-form key of the Omni user-attribute extension.
    UserAttribute(String),
    /// A schema attribute, possibly narrowed by a value filter and/or a sub-attribute.
    Attr(AttrTarget),
}

/// A schema attribute as PATCH target, with canonical definitions.
#[derive(Debug)]
pub(super) struct AttrTarget {
    /// The extension holding the attribute; `None` for core and common attributes.
    pub schema: Option<&'static SchemaDef>,
    pub def: &'static AttributeDef,
    /// `name.givenName`, `emails.value`, or the `.value` after a value filter.
    pub sub: Option<&'static AttributeDef>,
    /// `emails[type eq "work"]`: only on multi-valued attributes.
    pub filter: Option<Filter>,
    /// The path as text, for error details.
    pub shown: String,
}

impl AttrTarget {
    /// The whole attribute `def` (no sub-attribute, no filter).
    pub fn whole(schema: Option<&'static SchemaDef>, def: &'static AttributeDef) -> AttrTarget {
        let shown = match schema {
            Some(s) => format!("{}:{}", s.id, def.name),
            None => def.name.to_string(),
        };
        AttrTarget {
            schema,
            def,
            sub: None,
            filter: None,
            shown,
        }
    }

    /// Path-level mutability (RFC 7643 §2.2, RFC 7644 §3.5.2): readOnly attributes and
    /// sub-attributes are never PATCH targets; a required attribute cannot be removed.
    ///
    /// RFC 7644 §3.5.2.2 allows either `mutability` or `invalidValue` for removing a
    /// required attribute; `mutability` is used because the attribute is not ill-formed,
    /// it simply may not be unassigned. Immutable values are checked where the data is.
    pub fn check_mutability(&self, kind: OpKind) -> Result<(), ScimError> {
        let read_only = |d: &AttributeDef| d.mutability == Mutability::ReadOnly;
        if read_only(self.def) || self.sub.is_some_and(read_only) {
            return Err(ScimError::mutability(format!(
                "'{}' is readOnly and cannot be modified (RFC 7643 §2.2)",
                self.shown
            )));
        }
        if kind == OpKind::Remove
            && self.def.required
            && self.sub.is_none()
            && self.filter.is_none()
        {
            return Err(ScimError::mutability(format!(
                "'{}' is required and cannot be removed (RFC 7644 §3.5.2.2)",
                self.shown
            )));
        }
        Ok(())
    }
}

/// Resolves `path` for resource type `rt`, canonicalising names case-insensitively
/// (RFC 7643 §2.1). Unknown schemas, attributes and sub-attributes → invalidPath naming
/// the path; `schemas` (server-computed) → mutability.
pub(super) fn resolve(rt: &ResourceTypeDef, path: &PatchPath) -> Result<Target, ScimError> {
    let shown = path.to_string();
    let unknown = || ScimError::invalid_path(format!("unknown attribute '{shown}'"));
    let schema = match &path.attr.schema {
        None => None,
        Some(urn) => Some(
            rt.extensions
                .iter()
                .map(|(s, _)| *s)
                .find(|s| s.id.eq_ignore_ascii_case(urn))
                .ok_or_else(|| {
                    ScimError::invalid_path(format!(
                        "unknown schema '{urn}' in path '{shown}' for {} resources",
                        rt.name
                    ))
                })?,
        ),
    };
    if path.attr.is_schema_only() {
        return schema.map(Target::Extension).ok_or_else(unknown);
    }
    if schema.is_some_and(|s| std::ptr::eq(s, &USER_ATTRIBUTE)) {
        // Omni user attributes are scalar key/value pairs: nothing to descend into.
        if path.attr.sub_attr.is_some() || path.value_filter.is_some() {
            return Err(ScimError::invalid_path(format!(
                "'{shown}': user attributes have no sub-attributes or values to filter"
            )));
        }
        return Ok(Target::UserAttribute(path.attr.attr.clone()));
    }
    if schema.is_none() && path.attr.attr.eq_ignore_ascii_case("schemas") {
        return Err(ScimError::mutability(
            "'schemas' is computed by the server and cannot be modified",
        ));
    }
    let (def, sub) = rt
        .resolve(
            schema.map(|s| s.id),
            &path.attr.attr,
            path.attr.sub_attr.as_deref(),
        )
        .ok_or_else(unknown)?;
    let sub = match (&path.value_filter, &path.sub_attr) {
        (Some(_), Some(name)) => Some(def.sub_attribute(name).ok_or_else(unknown)?),
        _ => sub,
    };
    if let Some(filter) = &path.value_filter {
        if !def.multi_valued {
            return Err(ScimError::invalid_path(format!(
                "'{shown}': a value filter needs a multi-valued attribute (RFC 7644 §3.5.2)"
            )));
        }
        check_filter(def, filter, &shown)?;
    }
    Ok(Target::Attr(AttrTarget {
        schema,
        def,
        sub,
        filter: path.value_filter.clone(),
        shown,
    }))
}

/// Every attribute a value filter mentions must be a sub-attribute of `def`: a typo would
/// otherwise silently match nothing (and a replace would then add a malformed element).
fn check_filter(def: &AttributeDef, filter: &Filter, shown: &str) -> Result<(), ScimError> {
    let check_path = |p: &crate::scim::path::AttrPath| {
        if p.schema.is_none() && p.sub_attr.is_none() && def.sub_attribute(&p.attr).is_some() {
            Ok(())
        } else {
            Err(ScimError::invalid_path(format!(
                "'{shown}': '{}' is not a sub-attribute of {}",
                p, def.name
            )))
        }
    };
    match filter {
        Filter::Compare { path, .. } | Filter::Present(path) => check_path(path),
        Filter::And(l, r) | Filter::Or(l, r) => {
            check_filter(def, l, shown)?;
            check_filter(def, r, shown)
        }
        Filter::Not(inner) => check_filter(def, inner, shown),
        Filter::ValuePath { .. } => Err(ScimError::invalid_path(format!(
            "'{shown}': value filters cannot be nested"
        ))),
    }
}
