//! One add / replace / remove on one schema attribute (RFC 7644 §3.5.2.1–3), after the
//! path has been resolved (`target`) and a null value folded into remove (`super::effective`).
//!
//! Values are taken out of the document, edited and put back, so an emptied complex value,
//! array or extension object simply is not put back (RFC 7644 §3.5.2.2: "If no other values
//! remain after removal of the selected values, the multi-valued attribute SHALL be
//! considered unassigned").

use serde_json::{Map, Value};

use crate::scim::ScimError;
use crate::scim::filter::Filter;
use crate::scim::normalize::{normalize_element, normalize_value};
use crate::scim::path::AttrPath;
use crate::scim::schema::{AttrType, AttributeDef};

use super::OpKind;
use super::target::AttrTarget;
use super::values::{
    self, ADD_ADDED, Notes, REPLACE_ADDED, check_immutable, eq_template, fix_primary, same_element,
};

type Object = Map<String, Value>;

/// Applies one operation. `value` is `None` exactly for a remove without a value;
/// a remove may carry values to remove from a multi-valued attribute (Entra).
pub(super) fn apply(
    doc: &mut Object,
    notes: &mut Notes,
    t: &AttrTarget,
    kind: OpKind,
    value: Option<Value>,
) -> Result<(), ScimError> {
    t.check_mutability(kind)?;
    match t.schema {
        None => in_container(doc, notes, t, kind, value),
        Some(schema) => {
            // Removing from an absent extension is a no-op; creating it is not.
            if kind == OpKind::Remove && !doc.contains_key(schema.id) {
                return Ok(());
            }
            let mut container = values::take_object(doc, schema.id);
            in_container(&mut container, notes, t, kind, value)?;
            // RFC 7644 §3.5.2.2: an extension left without attributes is unassigned.
            values::put_object(doc, schema.id, container);
            Ok(())
        }
    }
}

fn in_container(
    container: &mut Object,
    notes: &mut Notes,
    t: &AttrTarget,
    kind: OpKind,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let name = t.def.name;
    if !t.def.multi_valued {
        return single(container, notes, t, kind, value);
    }
    let mut items = match container.remove(name) {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => vec![other],
    };
    let touched = multi(&mut items, notes, t, kind, value)?;
    // Group members never get here (the HTTP layer splits them off), so every attribute
    // here is under the per-attribute cap.
    if items.len() > notes.max_values {
        return Err(ScimError::invalid_value(format!(
            "'{}' would have {} values; at most {} are allowed per multi-valued attribute \
             (max_multi_values, SCIMD_MAX_MULTI_VALUES)",
            t.shown,
            items.len(),
            notes.max_values
        )));
    }
    fix_primary(&mut items, &touched, &t.shown)?;
    if !items.is_empty() {
        container.insert(name.to_string(), Value::Array(items));
    }
    Ok(())
}

/// Normalises a client value for `def` (or its sub-attribute), noting coercions.
fn normalized(
    notes: &mut Notes,
    def: &AttributeDef,
    sub: Option<&AttributeDef>,
    raw: Value,
) -> Result<Value, ScimError> {
    let out = normalize_value(def, sub, raw.clone())?;
    notes.compare(&raw, &out);
    Ok(out)
}

/// Like [`normalized`] for one element of a multi-valued attribute (never wrapped).
fn normalized_element(
    notes: &mut Notes,
    def: &AttributeDef,
    raw: Value,
) -> Result<Object, ScimError> {
    let out = normalize_element(def, raw.clone())?;
    notes.compare(&raw, &out);
    match out {
        Value::Object(element) => Ok(element),
        _ => Err(ScimError::invalid_value(format!(
            "{} elements must be complex (JSON object) values",
            def.name
        ))),
    }
}

// ---------------------------------------------------------------------------------------
// Single-valued attributes.
// ---------------------------------------------------------------------------------------

fn single(
    container: &mut Object,
    notes: &mut Notes,
    t: &AttrTarget,
    kind: OpKind,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let def = t.def;
    let name = def.name;
    match (value.filter(|_| kind != OpKind::Remove), t.sub) {
        (None, None) => {
            check_immutable(def, &t.shown, container.get(name), None)?;
            container.remove(name);
        }
        (None, Some(sub)) => {
            if container.get(name).is_some_and(Value::is_object) {
                let mut object = values::take_object(container, name);
                check_immutable(sub, &t.shown, object.get(sub.name), None)?;
                object.remove(sub.name);
                values::put_object(container, name, object);
            }
        }
        // RFC 7644 §3.5.2.1 and §3.5.2.3 agree for a complex attribute: the given
        // sub-attributes are set and "Sub-attributes that are not specified in the "value"
        // parameter are left unchanged", so add and replace both merge.
        (Some(raw), None) if def.ty == AttrType::Complex => {
            let Value::Object(given) = normalized(notes, def, None, raw)? else {
                return Ok(());
            };
            let mut object = values::take_object(container, name);
            merge(def, &t.shown, &mut object, given)?;
            values::put_object(container, name, object);
        }
        (Some(raw), None) => {
            let new = normalized(notes, def, None, raw)?;
            check_immutable(def, &t.shown, container.get(name), Some(&new))?;
            set_or_clear(container, name, new);
        }
        (Some(raw), Some(sub)) => {
            let new = normalized(notes, def, Some(sub), raw)?;
            let mut object = values::take_object(container, name);
            check_immutable(sub, &t.shown, object.get(sub.name), Some(&new))?;
            set_or_clear(&mut object, sub.name, new);
            values::put_object(container, name, object);
        }
    }
    Ok(())
}

/// Merges normalised sub-attributes into a complex value; null unassigns.
fn merge(
    def: &AttributeDef,
    shown: &str,
    target: &mut Object,
    given: Object,
) -> Result<(), ScimError> {
    for (key, value) in given {
        if let Some(sub) = def.sub_attribute(&key) {
            check_immutable(sub, shown, target.get(&key), Some(&value))?;
        }
        set_or_clear(target, &key, value);
    }
    Ok(())
}

fn set_or_clear(map: &mut Object, key: &str, value: Value) {
    if value.is_null() {
        map.remove(key);
    } else {
        map.insert(key.to_string(), value);
    }
}

// ---------------------------------------------------------------------------------------
// Multi-valued attributes. Each branch returns the indices of the elements it added or
// modified, so that `fix_primary` can keep `primary: true` on at most one element.
// ---------------------------------------------------------------------------------------

fn multi(
    items: &mut Vec<Value>,
    notes: &mut Notes,
    t: &AttrTarget,
    kind: OpKind,
    value: Option<Value>,
) -> Result<Vec<usize>, ScimError> {
    let def = t.def;
    let selected = t.filter.as_ref().map(|f| matching(def, f, items));
    match (kind, value, selected) {
        (OpKind::Remove, value, selected) => {
            remove(items, t, value, selected)?;
            Ok(Vec::new())
        }
        (_, None, _) => Ok(Vec::new()),
        // A filter that selects nothing (RFC 7644 §3.5.2.3: noTarget, with one exception).
        (kind, Some(raw), Some(selected)) if selected.is_empty() => {
            add_described_element(items, notes, t, kind, raw)
        }
        (kind, Some(raw), selected) => match (t.sub, selected) {
            // `emails[type eq "work"].value`: "the matching sub-attribute of all matching
            // records SHALL be replaced" (§3.5.2.3); add sets it the same way.
            // `emails.value` without a filter addresses every element.
            (Some(sub), selected) => {
                let new = normalized(notes, def, Some(sub), raw)?;
                if items.is_empty() {
                    // Nothing to set it on: the attribute "does not exist", so the
                    // operation is an add (§3.5.2.3) of an element holding just that.
                    let mut element = Object::new();
                    set_or_clear(&mut element, sub.name, new);
                    items.push(Value::Object(element));
                    return Ok(vec![0]);
                }
                let selected = selected.unwrap_or_else(|| (0..items.len()).collect());
                for &i in &selected {
                    if let Some(item) = items.get_mut(i) {
                        let mut element = take_element(item);
                        check_immutable(sub, &t.shown, element.get(sub.name), Some(&new))?;
                        set_or_clear(&mut element, sub.name, new.clone());
                        *item = Value::Object(element);
                    }
                }
                Ok(selected)
            }
            (None, None) if kind == OpKind::Add => append(items, notes, def, raw),
            // RFC 7644 §3.5.2.3: "If the target location is a multi-valued attribute and
            // no filter is specified, the attribute and all values are replaced."
            (None, None) => {
                *items = match normalized(notes, def, None, raw)? {
                    Value::Array(new) => new,
                    _ => Vec::new(),
                };
                Ok(Vec::new())
            }
            // `emails[type eq "work"]` with an element as value: replace swaps each matching
            // element for it ("all matching record values SHALL be replaced"); add merges
            // the given sub-attributes into each.
            (None, Some(selected)) => {
                let given = normalized_element(notes, def, raw)?;
                for &i in &selected {
                    if let Some(item) = items.get_mut(i) {
                        if kind == OpKind::Replace {
                            // Replacing an element is removing it and adding another, so
                            // its immutable sub-attributes do not constrain the new one.
                            *item = Value::Object(given.clone());
                        } else {
                            let mut element = take_element(item);
                            merge(def, &t.shown, &mut element, given.clone())?;
                            *item = Value::Object(element);
                        }
                    }
                }
                Ok(selected)
            }
        },
    }
}

fn take_element(item: &mut Value) -> Object {
    match std::mem::take(item) {
        Value::Object(element) => element,
        _ => Object::new(),
    }
}

/// Indices of the elements a value filter selects; string comparisons follow each
/// sub-attribute's caseExact (RFC 7644 §3.4.2.2).
fn matching(def: &AttributeDef, filter: &Filter, items: &[Value]) -> Vec<usize> {
    let case_exact = |p: &AttrPath| def.sub_attribute(&p.attr).is_some_and(|s| s.case_exact);
    items
        .iter()
        .enumerate()
        .filter(|(_, item)| {
            item.as_object()
                .is_some_and(|element| filter.matches(element, &case_exact))
        })
        .map(|(i, _)| i)
        .collect()
}

/// RFC 7644 §3.5.2.1: "a new value is added", but "If the target location already contains
/// the value specified, no changes SHOULD be made", so values already present are skipped.
fn append(
    items: &mut Vec<Value>,
    notes: &mut Notes,
    def: &AttributeDef,
    raw: Value,
) -> Result<Vec<usize>, ScimError> {
    let Value::Array(new) = normalized(notes, def, None, raw)? else {
        return Ok(Vec::new());
    };
    let mut touched = Vec::new();
    for value in new {
        if !items
            .iter()
            .any(|existing| same_element(def, &value, existing))
        {
            touched.push(items.len());
            items.push(value);
        }
    }
    Ok(touched)
}

/// A value filter matched nothing. RFC 7644 §3.5.2.3 says noTarget, but Entra replaces
/// (and adds through) `emails[type eq "work"].value` on users without a work email and
/// expects the email to appear, so when the filter is a conjunction of `eq` comparisons the
/// element it describes is created from them plus the value.
fn add_described_element(
    items: &mut Vec<Value>,
    notes: &mut Notes,
    t: &AttrTarget,
    kind: OpKind,
    raw: Value,
) -> Result<Vec<usize>, ScimError> {
    let def = t.def;
    let template = t.filter.as_ref().and_then(|f| eq_template(def, f));
    let Some(mut element) = template else {
        return Err(ScimError::no_target(format!(
            "no value matches '{}' (RFC 7644 §3.5.2.3)",
            t.shown
        )));
    };
    match t.sub {
        Some(sub) => {
            let new = normalized(notes, def, Some(sub), raw)?;
            set_or_clear(&mut element, sub.name, new);
        }
        None => element.extend(normalized_element(notes, def, raw)?),
    }
    // The comparisons came from the path, not through normalisation: validate the whole.
    let element = normalize_element(def, Value::Object(element))?;
    notes.note(if kind == OpKind::Add {
        ADD_ADDED
    } else {
        REPLACE_ADDED
    });
    items.push(element);
    Ok(vec![items.len() - 1])
}

/// RFC 7644 §3.5.2.2. Removing what is not there succeeds without change, because IdPs
/// retry removals. Entra removes members by listing them in `value`
/// (`{"op":"remove","path":"members","value":[{"value":"id"}]}`): only those go.
fn remove(
    items: &mut Vec<Value>,
    t: &AttrTarget,
    value: Option<Value>,
    selected: Option<Vec<usize>>,
) -> Result<(), ScimError> {
    let def = t.def;
    match (t.sub, selected) {
        (Some(sub), selected) => {
            let selected = selected.unwrap_or_else(|| (0..items.len()).collect());
            for &i in &selected {
                if let Some(Value::Object(element)) = items.get_mut(i) {
                    check_immutable(sub, &t.shown, element.get(sub.name), None)?;
                    element.remove(sub.name);
                }
            }
            // An element without any sub-attribute carries nothing.
            items.retain(|item| item.as_object().is_none_or(|e| !e.is_empty()));
        }
        (None, Some(selected)) => {
            let mut keep = vec![true; items.len()];
            for i in selected {
                if let Some(k) = keep.get_mut(i) {
                    *k = false;
                }
            }
            let mut keep = keep.into_iter();
            items.retain(|_| keep.next().unwrap_or(true));
        }
        (None, None) => match value {
            Some(value) => {
                let gone = match normalize_value(def, None, value)? {
                    Value::Array(gone) => gone,
                    _ => Vec::new(),
                };
                items.retain(|item| !gone.iter().any(|g| same_element(def, g, item)));
            }
            None => items.clear(),
        },
    }
    Ok(())
}
