//! The PATCH engine (RFC 7644 §3.5.2): parsing a PatchOp request body and applying its
//! operations to a resource document, with the leniency Okta and Microsoft Entra ID need.
//!
//! A document is the client-settable part of a resource as `normalize_resource` returns it:
//! canonical attribute names, core attributes at the top level, extension attributes under
//! their canonical URN. [`apply`] works on a copy, so a failing operation leaves the caller's
//! document untouched (RFC 7644 §3.5.2: "the operations are applied ... atomically").
//!
//! Layout: `path` parses a PATCH path, `target` turns it into schema definitions, `attr` performs one operation on
//! one attribute, `values` holds the comparison / normalisation helpers they share.

use serde_json::{Map, Value};

use super::PATCH_OP_SCHEMA;
use super::ScimError;
use super::doc::get_ci;
use super::limits::Limits;
use super::normalize::normalize_user_attributes;
use super::schema::{ResourceTypeDef, SchemaDef, USER_ATTRIBUTE};

mod attr;
mod path;
mod target;
mod values;

#[cfg(test)]
mod tests;

pub use path::PatchPath;
use target::{AttrTarget, Target};
use values::Notes;

type Object = Map<String, Value>;

/// The three PATCH operations (RFC 7644 §3.5.2.1–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

impl OpKind {
    /// The `op` keyword in the RFC's lower case.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Add => "add",
            OpKind::Remove => "remove",
            OpKind::Replace => "replace",
        }
    }

    /// RFC 7644 §3.5.2 spells the names in lower case, but Entra sends "Add", "Replace" and
    /// "Remove", so they are matched case-insensitively.
    fn from_name(name: &str) -> Option<OpKind> {
        [OpKind::Add, OpKind::Remove, OpKind::Replace]
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(name))
    }
}

/// One element of `Operations` (RFC 7644 §3.5.2). `value` keeps an explicit JSON `null`
/// (`Some(Value::Null)`), which means "unassign" in add/replace.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOp {
    pub op: OpKind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

/// The result of a successful [`apply`].
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutcome {
    /// The patched document.
    pub doc: Object,
    /// False when the operations changed nothing at all (e.g. an IdP retrying an add of
    /// values already present): RFC 7644 §3.5.2.1 says such an operation "SHALL NOT change
    /// the modify timestamp of the resource".
    pub changed: bool,
    /// Every IdP-compatibility normalisation performed, once each, for debug logging.
    pub adaptations: Vec<&'static str>,
}

/// Parses a PatchOp request body (RFC 7644 §3.5.2).
///
/// `Operations` (any key case) must be a non-empty array (missing or not an array →
/// invalidSyntax, empty → invalidValue). `schemas` is optional because some IdPs omit it,
/// but when present it must list the PatchOp URN (invalidSyntax). Operation names are
/// case-insensitive; an unknown one is invalidSyntax; a malformed path is invalidPath.
/// Errors name the offending operation as `Operations[i]`.
pub fn parse_request(body: &Object) -> Result<Vec<PatchOp>, ScimError> {
    if let Some(schemas) = get_ci(body, "schemas") {
        let lists_patch_op = match schemas {
            Value::Array(items) => items
                .iter()
                .any(|s| s.as_str().is_some_and(is_patch_op_urn)),
            // A lone string is not what RFC 7644 §3.5.2 shows, but it is unambiguous.
            Value::String(s) => is_patch_op_urn(s),
            _ => false,
        };
        if !lists_patch_op {
            return Err(ScimError::invalid_syntax(format!(
                "schemas must contain {PATCH_OP_SCHEMA} (RFC 7644 §3.5.2)"
            )));
        }
    }
    let ops = match get_ci(body, "Operations") {
        None => {
            return Err(ScimError::invalid_syntax(
                "Operations is required (RFC 7644 §3.5.2)",
            ));
        }
        Some(Value::Array(ops)) if ops.is_empty() => {
            return Err(ScimError::invalid_value(
                "Operations must contain at least one operation (RFC 7644 §3.5.2)",
            ));
        }
        Some(Value::Array(ops)) => ops,
        Some(_) => return Err(ScimError::invalid_syntax("Operations must be an array")),
    };
    ops.iter()
        .enumerate()
        .map(|(i, op)| parse_op(op).map_err(|e| at_operation(i, e)))
        .collect()
}

/// Refuses a request with more operations than `limits.max_patch_operations`, before any
/// of them is parsed (a missing or malformed `Operations` is left to [`parse_request`]).
pub fn check_operation_count(body: &Object, limits: &Limits) -> Result<(), ScimError> {
    match get_ci(body, "Operations") {
        Some(Value::Array(ops)) => super::limits::check_patch_operations(ops.len(), limits),
        _ => Ok(()),
    }
}

fn is_patch_op_urn(s: &str) -> bool {
    s.eq_ignore_ascii_case(PATCH_OP_SCHEMA)
}

fn parse_op(op: &Value) -> Result<PatchOp, ScimError> {
    let Value::Object(op) = op else {
        return Err(ScimError::invalid_syntax(
            "an operation must be a JSON object",
        ));
    };
    let kind = match get_ci(op, "op") {
        Some(Value::String(name)) => OpKind::from_name(name).ok_or_else(|| {
            ScimError::invalid_syntax(format!(
                "unknown op {name:?}; expected add, remove or replace (RFC 7644 §3.5.2)"
            ))
        })?,
        Some(_) => return Err(ScimError::invalid_syntax("op must be a string")),
        None => return Err(ScimError::invalid_syntax("op is required")),
    };
    let path = match get_ci(op, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(path)) => Some(PatchPath::parse(path)?),
        Some(_) => return Err(ScimError::invalid_path("path must be a string")),
    };
    Ok(PatchOp {
        op: kind,
        path,
        value: get_ci(op, "value").cloned(),
    })
}

/// The password the operations would leave set: the last add/replace of path `password`
/// or of a `password` key in a path-less value (a later remove or null clears it), so the
/// caller can hash it before opening its transaction.
pub fn requested_password(ops: &[PatchOp]) -> Option<String> {
    let mut found = None;
    for op in ops {
        match (&op.path, &op.value) {
            (Some(path), value) if is_password(path) => {
                found = match (op.op, value) {
                    (OpKind::Add | OpKind::Replace, Some(Value::String(s))) => Some(s.clone()),
                    _ => None,
                };
            }
            (None, Some(Value::Object(map))) if op.op != OpKind::Remove => {
                for (key, value) in map {
                    if PatchPath::parse(key).is_ok_and(|p| is_password(&p)) {
                        found = value.as_str().map(str::to_string);
                    }
                }
            }
            _ => {}
        }
    }
    found
}

fn is_password(path: &PatchPath) -> bool {
    path.attr.schema.is_none()
        && path.attr.attr.eq_ignore_ascii_case("password")
        && path.attr.sub_attr.is_none()
        && path.value_filter.is_none()
        && path.sub_attr.is_none()
}

/// Applies `ops` in order to a copy of `doc` (RFC 7644 §3.5.2). All or nothing: the first
/// failing operation makes the whole call fail (its detail names `Operations[i]`), and the
/// caller keeps its original document. A multi-valued attribute may not grow beyond
/// `limits.max_multi_values` (the caller checks the whole document's size afterwards).
pub fn apply(
    rt: &ResourceTypeDef,
    doc: &Object,
    ops: &[PatchOp],
    limits: &Limits,
) -> Result<PatchOutcome, ScimError> {
    let mut work = doc.clone();
    let mut notes = Notes::new(limits.max_multi_values);
    for (i, op) in ops.iter().enumerate() {
        apply_op(rt, &mut work, &mut notes, op).map_err(|e| at_operation(i, e))?;
    }
    // Comparing beats tracking every branch: an add of present values, a remove of absent
    // ones, or a replace with the current value all leave the document equal.
    let changed = work != *doc;
    Ok(PatchOutcome {
        doc: work,
        changed,
        adaptations: notes.into_vec(),
    })
}

fn at_operation(index: usize, err: ScimError) -> ScimError {
    ScimError {
        detail: format!("Operations[{index}]: {}", err.detail),
        ..err
    }
}

fn apply_op(
    rt: &ResourceTypeDef,
    doc: &mut Object,
    notes: &mut Notes,
    op: &PatchOp,
) -> Result<(), ScimError> {
    match &op.path {
        // RFC 7644 §3.5.2.2: "If "path" is unspecified, the operation fails with HTTP
        // status code 400 and a "scimType" error code of "noTarget"."
        None if op.op == OpKind::Remove => Err(ScimError::no_target(
            "remove requires a path (RFC 7644 §3.5.2.2)",
        )),
        None => path_less(rt, doc, notes, op.op, op.value.clone()),
        Some(path) => {
            let target = target::resolve(rt, path)?;
            apply_target(doc, notes, target, op.op, op.value.clone())
        }
    }
}

/// RFC 7644 §3.5.2.1 / §3.5.2.3: without a path "the target location is assumed to be the
/// resource itself" and `value` holds the attributes to add or replace. Each key is handled
/// as if it were the operation's path, which covers every shape IdPs send: plain names,
/// Entra's dotted `name.givenName` and URN-qualified keys, and whole extension objects.
fn path_less(
    rt: &ResourceTypeDef,
    doc: &mut Object,
    notes: &mut Notes,
    kind: OpKind,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let Some(Value::Object(attributes)) = value else {
        return Err(ScimError::invalid_value(format!(
            "a {} without a path needs an object of attributes as its value (RFC 7644 §3.5.2)",
            kind.as_str()
        )));
    };
    for (key, value) in attributes {
        // Okta repeats the group's own id in a path-less replace; the HTTP layer checks it
        // matches the URL, so here it is not an attempt to modify a readOnly attribute.
        if key.eq_ignore_ascii_case("id") {
            notes.note(values::ID_IGNORED);
            continue;
        }
        // The resource's schemas are derived from the attributes present (normalize.rs).
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let path = PatchPath::parse(&key)?;
        if path.attr.sub_attr.is_some() || path.value_filter.is_some() {
            notes.note(values::DOTTED_KEY);
        }
        if path.attr.schema.is_some() && !path.attr.is_schema_only() {
            notes.note(values::URN_KEY);
        }
        let target = target::resolve(rt, &path)?;
        apply_target(doc, notes, target, kind, Some(value))?;
    }
    Ok(())
}

fn apply_target(
    doc: &mut Object,
    notes: &mut Notes,
    target: Target,
    kind: OpKind,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let Some((kind, value)) = effective(kind, value) else {
        return Err(ScimError::invalid_syntax(format!(
            "{} requires a value (RFC 7644 §3.5.2.{})",
            kind.as_str(),
            if kind == OpKind::Add { 1 } else { 3 }
        )));
    };
    match target {
        Target::Attr(t) => attr::apply(doc, notes, &t, kind, value),
        Target::Extension(schema) => extension(doc, notes, schema, kind, value),
        Target::UserAttribute(key) => user_attribute(doc, &key, kind, value),
    }
}

/// Folds "unassigned" into remove: RFC 7644 §3.5.2 treats a null value in add/replace as
/// clearing the attribute. `None` when add/replace lacks its mandatory value. Add/replace
/// always come back with a value; a remove keeps a non-null one (Entra lists the members to
/// remove in it, RFC 7644 §3.5.2.2).
fn effective(kind: OpKind, value: Option<Value>) -> Option<(OpKind, Option<Value>)> {
    match (kind, value) {
        (OpKind::Remove, value) => Some((OpKind::Remove, value.filter(|v| !v.is_null()))),
        (_, Some(Value::Null)) => Some((OpKind::Remove, None)),
        (kind, Some(value)) => Some((kind, Some(value))),
        (_, None) => None,
    }
}

/// A whole extension object as target (bare URN path, or a URN key in a path-less value).
/// Removing drops the object; add/replace merge attribute by attribute, because an
/// extension behaves like a complex attribute, whose unspecified sub-attributes RFC 7644
/// §3.5.2.3 leaves unchanged.
fn extension(
    doc: &mut Object,
    notes: &mut Notes,
    schema: &'static SchemaDef,
    kind: OpKind,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let Some(value) = value.filter(|_| kind != OpKind::Remove) else {
        doc.remove(schema.id);
        return Ok(());
    };
    if std::ptr::eq(schema, &USER_ATTRIBUTE) {
        let Value::Object(given) = normalize_user_attributes(value)? else {
            return Err(ScimError::invalid_value(format!(
                "{} must be a JSON object",
                schema.id
            )));
        };
        let mut container = values::take_object(doc, schema.id);
        for (key, value) in given {
            set_or_clear(&mut container, key, value);
        }
        values::put_object(doc, schema.id, container);
        return Ok(());
    }
    let Value::Object(given) = value else {
        return Err(ScimError::invalid_value(format!(
            "{} must be a JSON object",
            schema.id
        )));
    };
    for (key, value) in given {
        // Some client libraries repeat `schemas` inside extension objects (normalize.rs).
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let def = schema.attribute(&key).ok_or_else(|| {
            ScimError::invalid_path(format!("unknown attribute '{}:{key}'", schema.id))
        })?;
        let target = AttrTarget::whole(Some(schema), def);
        let Some((kind, value)) = effective(kind, Some(value)) else {
            continue;
        };
        attr::apply(doc, notes, &target, kind, value)?;
    }
    Ok(())
}

/// One Omni user attribute (`urn:omni:params:1.0:UserAttribute:key`): keys are free-form
/// (the caller checks them against the organization's definitions), values scalar.
fn user_attribute(
    doc: &mut Object,
    key: &str,
    kind: OpKind,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let mut container = values::take_object(doc, USER_ATTRIBUTE.id);
    match value.filter(|_| kind != OpKind::Remove) {
        None => {
            container.remove(key);
        }
        Some(value) => {
            let mut single = Object::new();
            single.insert(key.to_string(), value);
            if let Value::Object(checked) = normalize_user_attributes(Value::Object(single))? {
                container.extend(checked);
            }
        }
    }
    values::put_object(doc, USER_ATTRIBUTE.id, container);
    Ok(())
}

fn set_or_clear(map: &mut Object, key: String, value: Value) {
    if value.is_null() {
        map.remove(&key);
    } else {
        map.insert(key, value);
    }
}
