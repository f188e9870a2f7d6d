//! Whether a parsed filter or sort key fits a resource type, before anything runs it.
//!
//! RFC 7644 §3.4.2.2: a filter naming an attribute the resource type does not have, or
//! comparing one with a value or operator its type does not allow, is `400 invalidFilter`;
//! a `sortBy` the server cannot sort by (RFC 7644 §3.4.2.3) is `400 invalidValue`. The
//! parser has already checked the grammar and the operator/value pairs that are wrong for
//! every type (`gt true`, `co 5`); this adds what depends on the schema. The store
//! translates what [`validate`] accepts and nothing else, so the rules live here once.

use chrono::DateTime;

use super::{CompValue, CompareOp, Filter};
use crate::scim::path::AttrPath;
use crate::scim::schema::{
    AttrType, AttributeDef, GROUP_RESOURCE, ResourceTypeDef, USER_ATTRIBUTE, USER_RESOURCE,
};
use crate::scim::{ScimError, USER_ATTRIBUTE_SCHEMA};

/// Checks every attribute `filter` names against `resource`: it exists (with its
/// sub-attribute), and the operator and value fit its type. Errors are `invalidFilter`
/// naming the first offending path, in the filter's left-to-right order.
pub fn validate(filter: &Filter, resource: &ResourceTypeDef) -> Result<(), ScimError> {
    match filter {
        Filter::And(l, r) | Filter::Or(l, r) => {
            validate(l, resource)?;
            validate(r, resource)
        }
        Filter::Not(inner) => validate(inner, resource),
        Filter::Present(path) => attribute(resource, path, None),
        Filter::Compare { path, op, value } => attribute(resource, path, Some((*op, value))),
        Filter::ValuePath { path, filter } => value_path(resource, path, filter),
    }
}

/// Checks a `sortBy` path (RFC 7644 §3.4.2.3): an attribute of `resource`, single-valued
/// (this server does not sort by a multi-valued attribute's primary value, as the RFC would
/// have it, nor by membership). Errors are `invalidValue`, as for any other bad `sortBy`.
pub fn validate_sort(path: &AttrPath, resource: &ResourceTypeDef) -> Result<(), ScimError> {
    match indexed(resource, path) {
        Some(Indexed::Membership) => {
            return Err(ScimError::invalid_value(format!("cannot sort by {path}")));
        }
        Some(_) => return Ok(()),
        None => {}
    }
    let target = resolve(resource, path).map_err(|e| ScimError::invalid_value(e.detail))?;
    if target.multi_valued {
        return Err(ScimError::invalid_value(format!(
            "cannot sort by the multi-valued attribute {path}"
        )));
    }
    Ok(())
}

/// The attributes this server indexes: the store keeps each in a column of its own and
/// compares it as a typed value, so it takes only an operand of its own kind, never `null`
/// (RFC 7644 §3.12: `invalidFilter` covers an "attribute and filter comparison combination"
/// that is not supported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indexed {
    /// `id`, `userName`, `externalId`, a group's `displayName`: a string, any operator.
    Text,
    /// `active`: `true` or `false`, with `eq` or `ne`.
    Boolean,
    /// `meta.created`, `meta.lastModified`: an RFC 3339 date-time, ordered operators.
    Instant,
    /// A user's `groups` / a group's `members`: only `eq "<id>"` (or `pr`).
    Membership,
}

/// (`attr` or `attr.sub`, lower-case) → how it is indexed; core paths only.
const USER_INDEXED: &[(&str, Indexed)] = &[
    ("id", Indexed::Text),
    ("username", Indexed::Text),
    ("externalid", Indexed::Text),
    ("active", Indexed::Boolean),
    ("meta.created", Indexed::Instant),
    ("meta.lastmodified", Indexed::Instant),
    ("groups", Indexed::Membership),
    ("groups.value", Indexed::Membership),
];

const GROUP_INDEXED: &[(&str, Indexed)] = &[
    ("id", Indexed::Text),
    ("displayname", Indexed::Text),
    ("externalid", Indexed::Text),
    ("meta.created", Indexed::Instant),
    ("meta.lastmodified", Indexed::Instant),
    ("members", Indexed::Membership),
    ("members.value", Indexed::Membership),
];

/// How `path` is indexed on `resource`, if it is (names match case-insensitively, RFC 7643
/// §2.1; a URN-qualified path is never indexed).
pub fn indexed(resource: &ResourceTypeDef, path: &AttrPath) -> Option<Indexed> {
    if path.schema.is_some() {
        return None;
    }
    let table = if std::ptr::eq(resource, &USER_RESOURCE) {
        USER_INDEXED
    } else if std::ptr::eq(resource, &GROUP_RESOURCE) {
        GROUP_INDEXED
    } else {
        &[]
    };
    let name = match &path.sub_attr {
        Some(sub) => format!("{}.{}", path.attr, sub),
        None => path.attr.clone(),
    }
    .to_ascii_lowercase();
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, kind)| *kind)
}

/// What a filter path names, with canonical names: what the check types and what the store
/// reads.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The attribute's definition; `None` for an organization-defined user attribute.
    pub def: Option<&'static AttributeDef>,
    /// The type compared: the sub-attribute's, or `value`'s for a complex attribute named
    /// without one (RFC 7644 §3.4.2.2's `emails co "example.com"`).
    pub ty: AttrType,
    pub case_exact: bool,
    pub multi_valued: bool,
    /// The extension's URN; `None` for core and common attributes.
    pub schema: Option<String>,
    pub attr: String,
    pub sub: Option<String>,
    /// A complex attribute compared without a sub-attribute: its `value` is compared.
    pub implicit_value: bool,
}

/// Resolves `path` against `resource`'s schemas and common attributes; an unknown
/// attribute or sub-attribute is `invalidFilter` "unknown attribute {path}".
pub fn resolve(resource: &ResourceTypeDef, path: &AttrPath) -> Result<Resolved, ScimError> {
    let unknown = || ScimError::invalid_filter(format!("unknown attribute {path}"));
    if let Some(schema) = &path.schema
        && schema.eq_ignore_ascii_case(USER_ATTRIBUTE_SCHEMA)
        && has_user_attributes(resource)
    {
        // Organization-defined keys: plain names (they become JSON keys), strings compared
        // exactly, no sub-attributes.
        let plain = !path.attr.is_empty()
            && path.sub_attr.is_none()
            && path
                .attr
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !plain {
            return Err(unknown());
        }
        return Ok(Resolved {
            def: None,
            ty: AttrType::String,
            case_exact: true,
            multi_valued: false,
            schema: Some(USER_ATTRIBUTE_SCHEMA.into()),
            attr: path.attr.clone(),
            sub: None,
            implicit_value: false,
        });
    }
    let (def, sub) = resource
        .resolve(path.schema.as_deref(), &path.attr, path.sub_attr.as_deref())
        .ok_or_else(unknown)?;
    let schema = path
        .schema
        .as_deref()
        .and_then(|urn| resource.schema_by_urn(urn))
        .filter(|s| !std::ptr::eq(*s, resource.schema))
        .map(|s| s.id.to_string());
    let value_def = if sub.is_none() && def.ty == AttrType::Complex {
        def.sub_attribute("value")
    } else {
        None
    };
    let leaf = sub.or(value_def).unwrap_or(def);
    Ok(Resolved {
        def: Some(def),
        ty: leaf.ty,
        case_exact: leaf.case_exact,
        multi_valued: def.multi_valued,
        schema,
        attr: def.name.to_string(),
        sub: sub.map(|s| s.name.to_string()),
        implicit_value: value_def.is_some(),
    })
}

fn has_user_attributes(resource: &ResourceTypeDef) -> bool {
    resource
        .extensions
        .iter()
        .any(|(schema, _)| std::ptr::eq(*schema, &USER_ATTRIBUTE))
}

/// A comparison (`op` Some) or a presence test (`op` None) on one attribute path.
fn attribute(
    resource: &ResourceTypeDef,
    path: &AttrPath,
    op: Option<(CompareOp, &CompValue)>,
) -> Result<(), ScimError> {
    if let Some(kind) = indexed(resource, path) {
        return indexed_operand(kind, op, path);
    }
    let target = resolve(resource, path)?;
    operand(target.ty, op, path)
}

fn indexed_operand(
    kind: Indexed,
    op: Option<(CompareOp, &CompValue)>,
    path: &AttrPath,
) -> Result<(), ScimError> {
    let Some((op, value)) = op else {
        return Ok(());
    };
    let fail = |detail: String| Err(ScimError::invalid_filter(detail));
    match (kind, value) {
        (Indexed::Text, CompValue::Str(_)) => Ok(()),
        (Indexed::Text, _) => fail(format!("{path} compares with a string")),
        (Indexed::Boolean, CompValue::Bool(_)) if is_equality(op) => Ok(()),
        (Indexed::Boolean, CompValue::Bool(_)) => fail(format!("{path} supports only eq and ne")),
        (Indexed::Boolean, _) => fail(format!("{path} compares with true or false")),
        (Indexed::Instant, CompValue::Str(text)) => {
            if DateTime::parse_from_rfc3339(text).is_err() {
                fail(format!("{text:?} is not an RFC 3339 date-time"))
            } else if is_ordering(op) {
                Ok(())
            } else {
                fail(format!("{path} supports eq, ne, gt, ge, lt and le"))
            }
        }
        (Indexed::Instant, _) => fail(format!("{path} compares with a date-time")),
        (Indexed::Membership, CompValue::Str(_)) if op == CompareOp::Eq => Ok(()),
        (Indexed::Membership, _) => fail(format!("{path} can be filtered only with eq \"<id>\"")),
    }
}

/// Whether an attribute of type `ty` takes `op` with its value (RFC 7644 §3.4.2.2: `eq`/`ne`
/// for booleans, no substring operators on numbers, strings for the string-like types).
fn operand(
    ty: AttrType,
    op: Option<(CompareOp, &CompValue)>,
    path: &AttrPath,
) -> Result<(), ScimError> {
    let Some((op, value)) = op else {
        return Ok(());
    };
    let fail = |detail: String| Err(ScimError::invalid_filter(detail));
    match (ty, value) {
        (_, CompValue::Null) if is_equality(op) => Ok(()),
        (_, CompValue::Null) => fail("null can only be compared with eq or ne".into()),
        (AttrType::Boolean, CompValue::Bool(_)) if is_equality(op) => Ok(()),
        (AttrType::Boolean, CompValue::Bool(_)) => fail(format!("{path} supports only eq and ne")),
        (AttrType::Integer | AttrType::Decimal, CompValue::Num(_)) if is_ordering(op) => Ok(()),
        (AttrType::Integer | AttrType::Decimal, CompValue::Num(_)) => {
            fail(format!("{path} is a number: co, sw and ew do not apply"))
        }
        (
            AttrType::String | AttrType::Reference | AttrType::DateTime | AttrType::Binary,
            CompValue::Str(_),
        ) => Ok(()),
        _ => fail(format!("{path} cannot be compared with {value}")),
    }
}

fn is_equality(op: CompareOp) -> bool {
    matches!(op, CompareOp::Eq | CompareOp::Ne)
}

/// The operators that compare by order or equality; not the substring ones.
fn is_ordering(op: CompareOp) -> bool {
    !matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
}

/// `emails[type eq "work" and value co "@x"]`: a complex attribute, and an inner filter on
/// its sub-attributes.
fn value_path(
    resource: &ResourceTypeDef,
    path: &AttrPath,
    inner: &Filter,
) -> Result<(), ScimError> {
    if indexed(resource, path) == Some(Indexed::Membership) {
        return membership_value_path(resource, path, inner);
    }
    let target = resolve(resource, path)?;
    let def = target
        .def
        .ok_or_else(|| ScimError::invalid_filter(format!("unknown attribute {path}")))?;
    if def.ty != AttrType::Complex {
        return Err(ScimError::invalid_filter(format!(
            "{path} is not a complex attribute and cannot take a [filter]"
        )));
    }
    element_filter(def, inner, path)
}

/// The inner filter of a value path, whose paths name sub-attributes of `parent`.
fn element_filter(
    parent: &AttributeDef,
    filter: &Filter,
    outer: &AttrPath,
) -> Result<(), ScimError> {
    match filter {
        Filter::And(l, r) | Filter::Or(l, r) => {
            element_filter(parent, l, outer)?;
            element_filter(parent, r, outer)
        }
        Filter::Not(inner) => element_filter(parent, inner, outer),
        Filter::ValuePath { .. } => Err(ScimError::invalid_filter("value filters cannot nest")),
        Filter::Present(p) | Filter::Compare { path: p, .. } => {
            let sub = parent.sub_attribute(&p.attr).ok_or_else(|| {
                ScimError::invalid_filter(format!("unknown attribute {outer}.{}", p.attr))
            })?;
            let op = match filter {
                Filter::Compare { op, value, .. } => Some((*op, value)),
                _ => None,
            };
            operand(sub.ty, op, p)
        }
    }
}

/// `members[value eq "id"]` / `groups[value eq "id"]`: the dotted form, or several of them
/// joined by `or`.
fn membership_value_path(
    resource: &ResourceTypeDef,
    path: &AttrPath,
    inner: &Filter,
) -> Result<(), ScimError> {
    match inner {
        Filter::Compare { path: p, op, value } if p.attr.eq_ignore_ascii_case("value") => {
            let dotted = AttrPath {
                schema: None,
                attr: path.attr.clone(),
                sub_attr: Some("value".into()),
            };
            attribute(resource, &dotted, Some((*op, value)))
        }
        Filter::Or(l, r) => {
            membership_value_path(resource, path, l)?;
            membership_value_path(resource, path, r)
        }
        _ => Err(ScimError::invalid_filter(format!(
            "{path} can be filtered only by value eq \"<id>\""
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Number;

    use super::*;
    use crate::scim::ScimType;
    use crate::scim::schema::{Mutability, Returned, SchemaDef, Uniqueness};

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn parse(filter: &str) -> Filter {
        filter.parse().unwrap()
    }

    fn path(s: &str) -> AttrPath {
        AttrPath::parse(s).unwrap()
    }

    fn compare(p: &str, op: CompareOp, value: CompValue) -> Filter {
        Filter::Compare {
            path: path(p),
            op,
            value,
        }
    }

    fn assert_outcome(
        got: Result<(), ScimError>,
        want: Result<(), &str>,
        scim_type: ScimType,
        what: &str,
    ) {
        match want {
            Ok(()) => assert_eq!(got, Ok(()), "{what}"),
            Err(detail) => {
                let err = got.expect_err(what);
                assert_eq!(
                    (err.status, err.scim_type, err.detail.as_str()),
                    (400, Some(scim_type), detail),
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn filters_that_fit_users_are_accepted() {
        let cases = [
            r#"userName eq "a@b.co""#,
            r#"USERNAME sw "A""#,
            "userName pr",
            r#"id eq "2819c223-7f76-453a-919d-413861904646""#,
            r#"id eq "not-a-uuid""#,
            r#"id co "2819""#,
            r#"externalId ne "E1""#,
            "active eq true",
            "active ne false",
            "active pr",
            r#"meta.created gt "2024-01-02T03:04:05Z""#,
            r#"meta.lastModified le "2024-01-02T03:04:05.123+02:00""#,
            r#"meta.version eq "W/\"1\"""#,
            r#"meta.resourceType eq "User""#,
            "meta pr",
            "meta eq null",
            r#"groups eq "2819c223-7f76-453a-919d-413861904646""#,
            r#"groups.value eq "not-a-uuid""#,
            r#"groups.display co "adm""#,
            "groups pr",
            r#"groups[value eq "a" or value eq "b"]"#,
            r#"name.givenName eq "Ann""#,
            "name eq null",
            r#"displayName co "x""#,
            "title eq null",
            "title ne null",
            r#"emails co "example.com""#,
            r#"emails.value eq "a@b.co""#,
            "emails.primary eq true",
            r#"emails[type eq "work" and value co "@x"]"#,
            "emails[not (primary eq true)]",
            "emails[value eq null]",
            r#"addresses[streetAddress sw "1"]"#,
            "addresses.primary ne false",
            r#"x509Certificates.value eq "AAAA""#,
            r#"photos.value sw "https:""#,
            r#"password eq "secret""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "R&D""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "m1""#,
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager[displayName pr]"#,
            r#"urn:omni:params:1.0:UserAttribute:good_blob eq "yes""#,
            "URN:OMNI:PARAMS:1.0:USERATTRIBUTE:team-1 pr",
            r#"urn:omni:params:scim:schemas:extension:user:2.0:lastLogin gt "2024""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "a""#,
            r#"not (userName eq "a") or (active eq true and title pr)"#,
        ];
        for filter in cases {
            assert_eq!(validate(&parse(filter), &USER_RESOURCE), Ok(()), "{filter}");
        }
    }

    #[test]
    fn filters_that_fit_groups_are_accepted() {
        let cases = [
            r#"displayName eq "Admins""#,
            r#"DISPLAYNAME co "adm""#,
            r#"externalId eq "G1""#,
            r#"id eq "2819c223-7f76-453a-919d-413861904646""#,
            r#"members eq "2819c223-7f76-453a-919d-413861904646""#,
            r#"members.value eq "x""#,
            r#"MEMBERS[VALUE eq "a" or value eq "b"]"#,
            r#"members.display co "Ann""#,
            r#"members.type eq "User""#,
            "members pr",
            r#"meta.created ge "2024-01-02T03:04:05Z""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "A""#,
        ];
        for filter in cases {
            assert_eq!(
                validate(&parse(filter), &GROUP_RESOURCE),
                Ok(()),
                "{filter}"
            );
        }
    }

    #[test]
    fn parsed_filters_that_do_not_fit_are_invalid_filters_naming_the_problem() {
        let user = &USER_RESOURCE;
        let group = &GROUP_RESOURCE;
        let cases: &[(&ResourceTypeDef, &str, &str)] = &[
            (user, r#"nosuch eq "x""#, "unknown attribute nosuch"),
            (
                user,
                r#"name.nosuch eq "x""#,
                "unknown attribute name.nosuch",
            ),
            (user, "id.x pr", "unknown attribute id.x"),
            (user, "title.x pr", "unknown attribute title.x"),
            (
                user,
                &format!(r#"{ENT}:nosuch eq "x""#),
                &format!("unknown attribute {ENT}:nosuch"),
            ),
            (
                user,
                r#"urn:acme:x:1.0:widget eq "x""#,
                "unknown attribute urn:acme:x:1.0:widget",
            ),
            (
                user,
                r#"urn:omni:params:1.0:UserAttribute:a.b eq "x""#,
                "unknown attribute urn:omni:params:1.0:UserAttribute:a.b",
            ),
            (
                user,
                r#"urn:omni:params:1.0:UserAttribute:good_blob[value eq "x"]"#,
                "unknown attribute urn:omni:params:1.0:UserAttribute:good_blob",
            ),
            (
                user,
                r#"emails[nosuch eq "x"]"#,
                "unknown attribute emails.nosuch",
            ),
            (
                user,
                r#"Emails[type eq "work" and nosuch pr]"#,
                "unknown attribute Emails.nosuch",
            ),
            // Indexed attributes take only an operand of their own kind.
            (user, "userName eq 5", "userName compares with a string"),
            (user, "USERNAME eq null", "USERNAME compares with a string"),
            (user, "id eq true", "id compares with a string"),
            (
                user,
                "externalId ne null",
                "externalId compares with a string",
            ),
            (
                user,
                r#"active eq "yes""#,
                "active compares with true or false",
            ),
            (user, "active eq null", "active compares with true or false"),
            (
                user,
                "meta.created eq 5",
                "meta.created compares with a date-time",
            ),
            (
                user,
                "meta.created eq null",
                "meta.created compares with a date-time",
            ),
            (
                user,
                r#"meta.lastModified gt "yesterday""#,
                r#""yesterday" is not an RFC 3339 date-time"#,
            ),
            (
                user,
                r#"meta.created co "2024-01-02T03:04:05Z""#,
                "meta.created supports eq, ne, gt, ge, lt and le",
            ),
            (
                user,
                r#"groups.value co "x""#,
                r#"groups.value can be filtered only with eq "<id>""#,
            ),
            (
                user,
                r#"groups ne "x""#,
                r#"groups can be filtered only with eq "<id>""#,
            ),
            (
                user,
                r#"groups[value ne "x"]"#,
                r#"groups.value can be filtered only with eq "<id>""#,
            ),
            (
                user,
                r#"groups[display eq "x"]"#,
                r#"groups can be filtered only by value eq "<id>""#,
            ),
            (
                user,
                r#"groups[value eq "a" and value eq "b"]"#,
                r#"groups can be filtered only by value eq "<id>""#,
            ),
            (
                user,
                r#"groups[value eq "a" or not (value eq "b")]"#,
                r#"groups can be filtered only by value eq "<id>""#,
            ),
            // The document's attributes are typed by their definitions.
            (user, "title eq 5", "title cannot be compared with 5"),
            (
                user,
                r#"name eq "x""#,
                r#"name cannot be compared with "x""#,
            ),
            (
                user,
                "emails eq true",
                "emails cannot be compared with true",
            ),
            (
                user,
                r#"emails.primary eq "yes""#,
                r#"emails.primary cannot be compared with "yes""#,
            ),
            (
                user,
                r#"emails[primary eq "yes"]"#,
                r#"primary cannot be compared with "yes""#,
            ),
            (
                user,
                "meta.version eq 1.5",
                "meta.version cannot be compared with 1.5",
            ),
            (
                user,
                r#"userName[value eq "x"]"#,
                "userName is not a complex attribute and cannot take a [filter]",
            ),
            (
                user,
                "title[value pr]",
                "title is not a complex attribute and cannot take a [filter]",
            ),
            // The first problem, left to right, is the one reported.
            (
                user,
                r#"userName eq "a" and (nosuch pr or title eq 5)"#,
                "unknown attribute nosuch",
            ),
            (
                user,
                r#"not (title eq 5) or nosuch pr"#,
                "title cannot be compared with 5",
            ),
            // Groups have neither the User attributes nor its extensions.
            (group, r#"userName eq "a""#, "unknown attribute userName"),
            (
                group,
                r#"emails.value co "x""#,
                "unknown attribute emails.value",
            ),
            (group, "active eq true", "unknown attribute active"),
            (
                group,
                r#"urn:omni:params:1.0:UserAttribute:good_blob eq "x""#,
                "unknown attribute urn:omni:params:1.0:UserAttribute:good_blob",
            ),
            (
                group,
                &format!(r#"{ENT}:department eq "x""#),
                &format!("unknown attribute {ENT}:department"),
            ),
            (
                group,
                "displayName eq null",
                "displayName compares with a string",
            ),
            (
                group,
                r#"members sw "x""#,
                r#"members can be filtered only with eq "<id>""#,
            ),
            (
                group,
                r#"members[type eq "User"]"#,
                r#"members can be filtered only by value eq "<id>""#,
            ),
            (
                group,
                r#"meta.lastModified lt "2024-13-01T00:00:00Z""#,
                r#""2024-13-01T00:00:00Z" is not an RFC 3339 date-time"#,
            ),
        ];
        for (resource, filter, detail) in cases {
            let what = format!("{filter} on {}", resource.name);
            assert_outcome(
                validate(&parse(filter), resource),
                Err(detail),
                ScimType::InvalidFilter,
                &what,
            );
        }
    }

    /// Filters the parser never produces (it refuses these operator/value pairs and nested
    /// value filters) are still refused when built by hand.
    #[test]
    fn filters_built_by_hand_that_the_parser_would_refuse_are_invalid_filters() {
        let user = &USER_RESOURCE;
        let relative = |attr: &str| AttrPath {
            schema: None,
            attr: attr.into(),
            sub_attr: None,
        };
        let nested = Filter::ValuePath {
            path: path("emails"),
            filter: Box::new(Filter::ValuePath {
                path: relative("type"),
                filter: Box::new(Filter::Present(relative("value"))),
            }),
        };
        let emails_primary_gt = Filter::ValuePath {
            path: path("emails"),
            filter: Box::new(Filter::Compare {
                path: relative("primary"),
                op: CompareOp::Gt,
                value: CompValue::Bool(true),
            }),
        };
        let cases = [
            (
                compare("active", CompareOp::Gt, CompValue::Bool(true)),
                "active supports only eq and ne",
            ),
            (
                compare("emails.primary", CompareOp::Lt, CompValue::Bool(false)),
                "emails.primary supports only eq and ne",
            ),
            (emails_primary_gt, "primary supports only eq and ne"),
            (
                compare("title", CompareOp::Gt, CompValue::Null),
                "null can only be compared with eq or ne",
            ),
            (
                compare("userName", CompareOp::Co, CompValue::Null),
                "userName compares with a string",
            ),
            (nested, "value filters cannot nest"),
        ];
        for (filter, detail) in cases {
            let what = filter.to_string();
            assert_outcome(
                validate(&filter, user),
                Err(detail),
                ScimType::InvalidFilter,
                &what,
            );
        }
    }

    /// None of our schemas has a number; a resource type made for the test does.
    #[test]
    fn numbers_take_equality_and_ordering_but_no_substring_operators() {
        const COUNT: AttributeDef = AttributeDef {
            name: "count",
            ty: AttrType::Integer,
            multi_valued: false,
            description: "",
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
        };
        const RATIO: AttributeDef = AttributeDef {
            name: "ratio",
            ty: AttrType::Decimal,
            ..COUNT
        };
        static THINGS: SchemaDef = SchemaDef {
            id: "urn:test:Thing",
            name: "Thing",
            description: "",
            attributes: &[COUNT, RATIO],
        };
        static THING: ResourceTypeDef = ResourceTypeDef {
            id: "Thing",
            name: "Thing",
            endpoint: "/Things",
            description: "",
            schema: &THINGS,
            extensions: &[],
        };
        let n = |i: i64| CompValue::Num(i.into());
        let half = CompValue::Num(Number::from_f64(0.5).unwrap());
        let cases = [
            (compare("count", CompareOp::Eq, n(3)), Ok(())),
            (compare("count", CompareOp::Le, n(-3)), Ok(())),
            (compare("ratio", CompareOp::Gt, half.clone()), Ok(())),
            (compare("ratio", CompareOp::Ne, CompValue::Null), Ok(())),
            (
                compare("count", CompareOp::Co, n(3)),
                Err("count is a number: co, sw and ew do not apply"),
            ),
            (
                compare("ratio", CompareOp::Sw, half),
                Err("ratio is a number: co, sw and ew do not apply"),
            ),
            (
                compare("count", CompareOp::Eq, CompValue::Str("3".into())),
                Err(r#"count cannot be compared with "3""#),
            ),
        ];
        for (filter, want) in cases {
            let what = filter.to_string();
            assert_outcome(
                validate(&filter, &THING),
                want,
                ScimType::InvalidFilter,
                &what,
            );
        }
    }

    #[test]
    fn sort_keys_must_be_single_valued_attributes_of_the_resource_type() {
        let user = &USER_RESOURCE;
        let group = &GROUP_RESOURCE;
        let cases: &[(&ResourceTypeDef, &str, Result<(), &str>)] = &[
            (user, "userName", Ok(())),
            (user, "id", Ok(())),
            (user, "active", Ok(())),
            (user, "meta.lastModified", Ok(())),
            (user, "meta.version", Ok(())),
            (user, "name.familyName", Ok(())),
            (user, "name", Ok(())),
            (user, "title", Ok(())),
            (user, &format!("{ENT}:department"), Ok(())),
            (user, "urn:omni:params:1.0:UserAttribute:good_blob", Ok(())),
            (group, "displayName", Ok(())),
            (group, "externalId", Ok(())),
            (user, "groups", Err("cannot sort by groups")),
            (user, "groups.value", Err("cannot sort by groups.value")),
            (group, "members", Err("cannot sort by members")),
            (group, "Members.Value", Err("cannot sort by Members.Value")),
            (
                user,
                "emails",
                Err("cannot sort by the multi-valued attribute emails"),
            ),
            (
                user,
                "emails.value",
                Err("cannot sort by the multi-valued attribute emails.value"),
            ),
            (
                group,
                "members.display",
                Err("cannot sort by the multi-valued attribute members.display"),
            ),
            (user, "nosuch", Err("unknown attribute nosuch")),
            (
                user,
                "urn:omni:params:1.0:UserAttribute:a.b",
                Err("unknown attribute urn:omni:params:1.0:UserAttribute:a.b"),
            ),
            (group, "userName", Err("unknown attribute userName")),
        ];
        for (resource, sort_by, want) in cases {
            let what = format!("{sort_by} on {}", resource.name);
            assert_outcome(
                validate_sort(&path(sort_by), resource),
                *want,
                ScimType::InvalidValue,
                &what,
            );
        }
    }

    #[test]
    fn indexed_paths_match_case_insensitively_and_never_with_a_urn() {
        let cases = [
            ("userName", Some(Indexed::Text)),
            ("USERNAME", Some(Indexed::Text)),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
                Some(Indexed::Text),
            ),
            ("Meta.LastModified", Some(Indexed::Instant)),
            ("active", Some(Indexed::Boolean)),
            ("groups.VALUE", Some(Indexed::Membership)),
            ("groups.display", None),
            ("displayName", None),
            ("urn:omni:params:1.0:UserAttribute:userName", None),
        ];
        for (p, want) in cases {
            assert_eq!(indexed(&USER_RESOURCE, &path(p)), want, "{p}");
        }
        assert_eq!(
            indexed(&GROUP_RESOURCE, &path("displayName")),
            Some(Indexed::Text)
        );
        assert_eq!(indexed(&GROUP_RESOURCE, &path("active")), None);
    }
}
