//! Helpers shared by the PATCH operations: adaptation notes, element identity for
//! multi-valued attributes (RFC 7644 §3.5.2.1 "already contains the value"), the single
//! `primary` rule (RFC 7643 §2.4), immutability checks and the element a value filter
//! describes.

use serde_json::{Map, Value};

use crate::scim::ScimError;
use crate::scim::doc::get_ci;
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::schema::{AttributeDef, Mutability};

type Object = Map<String, Value>;

// Names of the IdP-compatibility normalisations reported in `PatchOutcome::adaptations`.
/// Entra sends "True"/"False" strings for booleans.
pub(super) const BOOLEAN_COERCED: &str = "boolean string coerced";
/// Entra sends the enterprise `manager` as a bare id string.
pub(super) const MANAGER_WRAPPED: &str = "manager string wrapped";
/// A single value given where RFC 7643 §2.4 wants an array.
pub(super) const SINGLE_WRAPPED: &str = "single value wrapped in array";
/// Entra replaces `emails[type eq "work"].value` on users that have no work email.
pub(super) const REPLACE_ADDED: &str = "replace on missing filtered element added it";
/// Entra also adds through such a filtered path.
pub(super) const ADD_ADDED: &str = "add on missing filtered element added it";
/// Entra's `{"name.givenName": ...}` in a path-less value.
pub(super) const DOTTED_KEY: &str = "dotted key in path-less value";
/// Entra's `{"urn:...:User:employeeNumber": ...}` in a path-less value.
pub(super) const URN_KEY: &str = "URN-qualified key in path-less value";
/// Okta's group `id` repeated in a path-less replace.
pub(super) const ID_IGNORED: &str = "id in path-less value ignored";

/// What the operations of one request share: the adaptations performed so far, each named
/// once, and the most values a multi-valued attribute may reach (checked after every edit,
/// so a thousand operations cannot grow one attribute to a size that makes each later
/// duplicate check slow).
#[derive(Debug)]
pub(super) struct Notes {
    adaptations: Vec<&'static str>,
    pub max_values: usize,
}

impl Notes {
    pub fn new(max_values: usize) -> Notes {
        Notes {
            adaptations: Vec::new(),
            max_values,
        }
    }

    pub fn note(&mut self, what: &'static str) {
        if !self.adaptations.contains(&what) {
            self.adaptations.push(what);
        }
    }

    pub fn into_vec(self) -> Vec<&'static str> {
        self.adaptations
    }

    /// Records what normalisation did to a client value (`raw` as sent, `out` as
    /// normalised): string booleans, a bare-string complex value, a lone value wrapped.
    pub fn compare(&mut self, raw: &Value, out: &Value) {
        match (raw, out) {
            (Value::String(_), Value::Bool(_)) => self.note(BOOLEAN_COERCED),
            (Value::String(_), Value::Object(_)) => self.note(MANAGER_WRAPPED),
            (Value::Object(raw), Value::Object(out)) => {
                for (key, value) in out {
                    if let Some(given) = get_ci(raw, key) {
                        self.compare(given, value);
                    }
                }
            }
            (Value::Array(raw), Value::Array(out)) => {
                raw.iter().zip(out).for_each(|(r, o)| self.compare(r, o));
            }
            (raw, Value::Array(out)) => {
                self.note(SINGLE_WRAPPED);
                if let Some(first) = out.first() {
                    self.compare(raw, first);
                }
            }
            _ => {}
        }
    }
}

/// Takes the object under `key` out of `map` (an absent or non-object value gives an empty
/// one), to be edited and handed back with [`put_object`].
pub(super) fn take_object(map: &mut Object, key: &str) -> Object {
    match map.remove(key) {
        Some(Value::Object(inner)) => inner,
        _ => Object::new(),
    }
}

/// Puts an object back under `key`, leaving the key out when the object is empty: an
/// emptied complex value or extension is unassigned (RFC 7644 §3.5.2.2).
pub(super) fn put_object(map: &mut Object, key: &str, inner: Object) {
    if !inner.is_empty() {
        map.insert(key.to_string(), Value::Object(inner));
    }
}

/// RFC 7643 §2.2: an immutable value "SHALL NOT be updated" once set; setting it to the
/// value it already has, or where it was unset, is fine. `new` is `None` for a removal.
pub(super) fn check_immutable(
    def: &AttributeDef,
    shown: &str,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Result<(), ScimError> {
    let unset = old.is_none_or(Value::is_null);
    if def.mutability != Mutability::Immutable || unset || old == new {
        return Ok(());
    }
    Err(ScimError::mutability(format!(
        "'{shown}' is immutable: its {} cannot be changed once set (RFC 7643 §2.2)",
        def.name
    )))
}

fn same_scalar(a: &Value, b: &Value, case_exact: bool) -> bool {
    match (a, b) {
        // Compared char by char so that checking a large group's members allocates nothing.
        (Value::String(x), Value::String(y)) if !case_exact => x
            .chars()
            .flat_map(char::to_lowercase)
            .eq(y.chars().flat_map(char::to_lowercase)),
        _ => a == b,
    }
}

/// Whether `existing` already holds the value `given` of multi-valued attribute `def`
/// (RFC 7644 §3.5.2.1): complex elements are identified by their `value` sub-attribute,
/// compared per its caseExact, or by deep equality when `given` has no `value`.
pub(super) fn same_element(def: &AttributeDef, given: &Value, existing: &Value) -> bool {
    match (given, existing) {
        (Value::Object(g), Value::Object(e)) => match g.get("value") {
            Some(gv) => e.get("value").is_some_and(|ev| {
                let exact = def.sub_attribute("value").is_some_and(|s| s.case_exact);
                same_scalar(gv, ev, exact)
            }),
            None => g == e,
        },
        (g, e) => same_scalar(g, e, def.case_exact),
    }
}

fn is_primary(value: &Value) -> bool {
    value.get("primary") == Some(&Value::Bool(true))
}

/// RFC 7643 §2.4: "The primary attribute value 'true' MUST appear no more than once."
/// When the operation made one of the `touched` elements primary, the others lose it; if
/// it made several primary, the request is ambiguous → invalidValue.
pub(super) fn fix_primary(
    items: &mut [Value],
    touched: &[usize],
    shown: &str,
) -> Result<(), ScimError> {
    // Walks `touched`, not `items`: a large group gains members without a quadratic scan.
    let mut made_primary = touched
        .iter()
        .copied()
        .filter(|&i| items.get(i).is_some_and(is_primary));
    let Some(keep) = made_primary.next() else {
        return Ok(());
    };
    if made_primary.next().is_some() {
        return Err(ScimError::invalid_value(format!(
            "'{shown}': at most one primary value is allowed (RFC 7643 §2.4)"
        )));
    }
    for (i, item) in items.iter_mut().enumerate() {
        if i != keep
            && is_primary(item)
            && let Value::Object(element) = item
        {
            element.insert("primary".to_string(), Value::Bool(false));
        }
    }
    Ok(())
}

/// The element a value filter describes when it is a conjunction of `eq` comparisons,
/// e.g. `type eq "work"` → `{"type": "work"}`, with canonical sub-attribute names. `None`
/// for any other filter (or contradictory comparisons): there is no element to create.
pub(super) fn eq_template(def: &AttributeDef, filter: &Filter) -> Option<Object> {
    let mut out = Object::new();
    collect_eq(def, filter, &mut out).then_some(out)
}

fn collect_eq(def: &AttributeDef, filter: &Filter, out: &mut Object) -> bool {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.sub_attr.is_none() => {
            let Some(sub) = def.sub_attribute(&path.attr) else {
                return false;
            };
            let value = match value {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::Num(n) => Value::Number(n.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                // `eq null` means "absent": it describes no value to set.
                CompValue::Null => return false,
            };
            match out.get(sub.name) {
                Some(existing) => *existing == value,
                None => {
                    out.insert(sub.name.to_string(), value);
                    true
                }
            }
        }
        Filter::And(left, right) => collect_eq(def, left, out) && collect_eq(def, right, out),
        _ => false,
    }
}
