//! The Group resource's own rules (RFC 7643 §4.2): displayName, members given as user ids,
//! and the response shape. Members are stored apart from the document, so the document
//! never holds `members`; they are passed in when a group is rendered.

use std::collections::HashSet;

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::doc::timestamp;
use super::filter::{CompValue, CompareOp, Filter};
use super::patch::{OpKind, PatchOp, PatchPath};
use super::path::AttrPath;
use super::schema::GROUP_MEMBERS_EXTENSION_SCHEMA;
use super::{GROUP_SCHEMA, ScimError};

type Doc = Map<String, Value>;

/// One end of a membership as rendered: a group's member (a user) or a user's group, with
/// its display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub id: Uuid,
    pub display: String,
}

/// A change to a group's membership, applied in order inside the group's update transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberOp {
    /// Adds users; ones already members are skipped (IdP retries are no-ops).
    Add(Vec<Uuid>),
    /// Removes users; ones not members are skipped.
    Remove(Vec<Uuid>),
    RemoveAll,
    /// Makes the membership exactly this list.
    Replace(Vec<Uuid>),
}

/// Splits a group PATCH (RFC 7644 §3.5.2) into operations on the group's own attributes,
/// for the PATCH engine, and membership changes, which the store applies row by row so a
/// group of 100,000 members is never rewritten whole. Handles what IdPs send:
/// - `{"op":"add","path":"members","value":[{"value":id}]}` (Okta, Entra);
/// - `{"op":"remove","path":"members[value eq \"id\"]"}` (Okta);
/// - `{"op":"remove","path":"members","value":[{"value":id}]}` (Entra);
/// - `{"op":"remove","path":"members"}`, `{"op":"replace","path":"members","value":[…]}`;
/// - a path-less value holding `members` alongside other attributes.
///
/// `group_id`: Okta sends the group's own `id` in a path-less replace; it must match.
pub fn split_member_ops(
    ops: Vec<PatchOp>,
    group_id: Uuid,
) -> Result<(Vec<PatchOp>, Vec<MemberOp>), ScimError> {
    let mut attribute_ops = Vec::new();
    let mut member_ops = Vec::new();
    for op in ops {
        match &op.path {
            Some(path) if is_members(&path.attr) => {
                member_ops.push(member_op(op.op, path, op.value.as_ref())?);
            }
            Some(_) => attribute_ops.push(op),
            None => {
                let Some(Value::Object(mut value)) = op.value else {
                    // The engine reports the missing or malformed value.
                    attribute_ops.push(op);
                    continue;
                };
                if let Some(id) = remove_ci(&mut value, "id") {
                    let same = id
                        .as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(&group_id.to_string()));
                    if !same {
                        return Err(ScimError::mutability(
                            "id is read-only and cannot be changed",
                        ));
                    }
                }
                if let Some(members) = remove_ci(&mut value, "members") {
                    let ids = member_list(&members)?;
                    member_ops.push(match op.op {
                        OpKind::Add => MemberOp::Add(ids),
                        _ => MemberOp::Replace(ids),
                    });
                }
                if !value.is_empty() {
                    attribute_ops.push(PatchOp {
                        op: op.op,
                        path: None,
                        value: Some(Value::Object(value)),
                    });
                }
            }
        }
    }
    Ok((attribute_ops, member_ops))
}

fn is_members(attr: &AttrPath) -> bool {
    attr.attr.eq_ignore_ascii_case("members")
        && attr
            .schema
            .as_deref()
            .is_none_or(|s| s.eq_ignore_ascii_case(GROUP_SCHEMA))
}

fn remove_ci(map: &mut Doc, name: &str) -> Option<Value> {
    let key = map.keys().find(|k| k.eq_ignore_ascii_case(name))?.clone();
    map.remove(&key)
}

fn member_list(value: &Value) -> Result<Vec<Uuid>, ScimError> {
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        single => vec![single],
    };
    unique_ids(items.into_iter().map(member_id))
}

/// Keeps the first of each id, in order. A set remembers what was seen, so 10,000 members
/// cost 10,000 lookups, not the 50 million comparisons a `Vec::contains` scan makes.
fn unique_ids(
    ids: impl IntoIterator<Item = Result<Uuid, ScimError>>,
) -> Result<Vec<Uuid>, ScimError> {
    let ids = ids.into_iter();
    let mut seen = HashSet::with_capacity(ids.size_hint().0);
    let mut out = Vec::with_capacity(ids.size_hint().0);
    for id in ids {
        let id = id?;
        if seen.insert(id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// The member ids a set of membership changes names, summed over the operations (what
/// `limits::check_members` bounds).
pub fn member_count(ops: &[MemberOp]) -> usize {
    ops.iter()
        .map(|op| match op {
            MemberOp::Add(ids) | MemberOp::Remove(ids) | MemberOp::Replace(ids) => ids.len(),
            MemberOp::RemoveAll => 0,
        })
        .sum()
}

/// One operation whose path names `members`.
fn member_op(kind: OpKind, path: &PatchPath, value: Option<&Value>) -> Result<MemberOp, ScimError> {
    if path.attr.sub_attr.is_some() || path.sub_attr.is_some() {
        return Err(ScimError::mutability(
            "member sub-attributes are immutable; add or remove the member instead",
        ));
    }
    if let Some(filter) = &path.value_filter {
        // Adding or replacing "the members matching a filter" has no clear meaning.
        if kind != OpKind::Remove {
            return Err(ScimError::invalid_path(
                "a members[...] filter path is only supported with remove",
            ));
        }
        return Ok(MemberOp::Remove(filter_member_ids(filter)?));
    }
    match (kind, value) {
        (OpKind::Add, Some(v)) => Ok(MemberOp::Add(member_list(v)?)),
        (OpKind::Add, None) => Err(ScimError::invalid_value("add members needs a value")),
        (OpKind::Replace, v) => Ok(MemberOp::Replace(match v {
            Some(v) => member_list(v)?,
            None => Vec::new(),
        })),
        (OpKind::Remove, None | Some(Value::Null)) => Ok(MemberOp::RemoveAll),
        (OpKind::Remove, Some(v)) => Ok(MemberOp::Remove(member_list(v)?)),
    }
}

/// The ids named by `members[value eq "a" or value eq "b"]`; other filters are refused.
fn filter_member_ids(filter: &Filter) -> Result<Vec<Uuid>, ScimError> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::Str(id),
        } if path.attr.eq_ignore_ascii_case("value") && path.sub_attr.is_none() => {
            Ok(vec![member_id(&Value::String(id.clone()))?])
        }
        Filter::Or(a, b) => {
            let mut ids = filter_member_ids(a)?;
            ids.extend(filter_member_ids(b)?);
            Ok(ids)
        }
        other => Err(ScimError::invalid_filter(format!(
            "members can be selected only by value eq \"<user id>\", not {other}"
        ))),
    }
}

/// Checks `displayName`: present, a non-empty string (RFC 7643 §4.2: required).
pub fn display_name(doc: &Doc) -> Result<String, ScimError> {
    match doc.get("displayName") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(Value::String(_)) => Err(ScimError::invalid_value("displayName must not be empty")),
        None | Some(Value::Null) => Err(ScimError::invalid_value("displayName is required")),
        Some(_) => Err(ScimError::invalid_value("displayName must be a string")),
    }
}

/// Takes `members` out of a normalised group body and returns the member user ids
/// (duplicates removed, order kept). A member value that is not a user id → invalidValue.
/// `None` when the body does not mention members.
pub fn take_member_ids(doc: &mut Doc) -> Result<Option<Vec<Uuid>>, ScimError> {
    let Some(members) = doc.remove("members") else {
        return Ok(None);
    };
    let items = match members {
        Value::Null => Vec::new(),
        Value::Array(items) => items,
        other => vec![other],
    };
    unique_ids(items.iter().map(member_id)).map(Some)
}

/// The user id in one member value: `{"value": "<id>", …}` (or, leniently, a bare id string).
pub fn member_id(item: &Value) -> Result<Uuid, ScimError> {
    let value = match item {
        Value::Object(m) => m
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("value"))
            .map(|(_, v)| v),
        other => Some(other),
    };
    let text = value
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_value("each member needs a \"value\" with a user id"))?;
    Uuid::parse_str(text.trim()).map_err(|_| {
        ScimError::invalid_value(format!(
            "member {text:?} is not a user of this organization"
        ))
    })
}

/// Server-managed facts of a rendered group.
#[derive(Debug, Clone)]
pub struct GroupMeta<'a> {
    pub id: &'a str,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub version: i64,
    pub location: String,
    /// Base URL of the SCIM API, for members' `$ref`.
    pub base_url: &'a str,
    /// The group has more members than are listed inline: `members` is left out and
    /// `membersMetadata` points at `/GroupMembers` (draft-zollner-scim-group-membership).
    pub members_listed_elsewhere: bool,
}

/// Renders a group; `members` is None when they were not loaded (projection excluded them).
pub fn render(doc: Doc, members: Option<&[MemberRef]>, meta: &GroupMeta<'_>) -> Doc {
    // The stored document is the response's base: moved, not copied.
    let mut out = doc;
    out.insert("id".into(), Value::String(meta.id.to_owned()));
    if let Some(members) = members {
        let rendered: Vec<Value> = members
            .iter()
            .map(|m| {
                json!({
                    "value": m.id.to_string(),
                    "display": m.display,
                    "$ref": format!("{}/Users/{}", meta.base_url, m.id),
                    "type": "User",
                })
            })
            .collect();
        out.insert("members".into(), Value::Array(rendered));
    }
    out.insert(
        "meta".into(),
        json!({
            "resourceType": "Group",
            "created": timestamp(meta.created_ms),
            "lastModified": timestamp(meta.modified_ms),
            "location": meta.location,
            "version": super::etag::etag(meta.version),
        }),
    );
    if meta.members_listed_elsewhere {
        // The draft's "external" policy; `ref` is `/GroupMembers` filtered to this group.
        let filter = format!("group.value%20eq%20%22{}%22", meta.id);
        out.insert(
            GROUP_MEMBERS_EXTENSION_SCHEMA.into(),
            json!({"membersMetadata": {
                "policy": "external",
                "ref": format!("{}/GroupMembers?filter={filter}", meta.base_url),
            }}),
        );
        out.insert(
            "schemas".into(),
            json!([GROUP_SCHEMA, GROUP_MEMBERS_EXTENSION_SCHEMA]),
        );
    } else {
        out.insert("schemas".into(), json!([GROUP_SCHEMA]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_name_rules() {
        let cases = [
            (json!({"displayName": "Admins"}), Some("Admins")),
            (json!({"displayName": "  Admins "}), Some("Admins")),
            (json!({"displayName": ""}), None),
            (json!({"displayName": 3}), None),
            (json!({}), None),
        ];
        for (body, want) in cases {
            let got = display_name(body.as_object().unwrap());
            assert_eq!(got.ok().as_deref(), want, "{body}");
        }
    }

    #[test]
    fn member_ids_are_parsed_deduplicated_and_checked() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let mut doc = json!({"members": [{"value": a.to_string(), "display": "A"},
                                         {"value": b.to_string(), "$ref": null},
                                         {"value": a.to_string()}]})
        .as_object()
        .unwrap()
        .clone();
        assert_eq!(take_member_ids(&mut doc).unwrap(), Some(vec![a, b]));
        assert!(!doc.contains_key("members"));
        let mut none = Map::new();
        assert_eq!(take_member_ids(&mut none).unwrap(), None);
        let mut bad = json!({"members": [{"value": "bob"}]})
            .as_object()
            .unwrap()
            .clone();
        let err = take_member_ids(&mut bad).unwrap_err();
        assert!(err.detail.contains("bob"));
        let mut missing = json!({"members": [{"display": "x"}]})
            .as_object()
            .unwrap()
            .clone();
        assert!(take_member_ids(&mut missing).is_err());
    }

    #[test]
    fn duplicate_member_ids_are_removed_in_linear_time() {
        // 40,000 ids, each given twice: the old `Vec::contains` scan made ~1.6 billion
        // comparisons (tens of seconds in a debug build); the set makes 80,000 lookups.
        let ids: Vec<Uuid> = (0..40_000u128).map(Uuid::from_u128).collect();
        let items: Vec<Value> = ids
            .iter()
            .chain(ids.iter())
            .map(|id| json!({"value": id.to_string()}))
            .collect();
        let mut doc = Map::new();
        doc.insert("members".into(), Value::Array(items.clone()));
        let started = std::time::Instant::now();
        assert_eq!(take_member_ids(&mut doc).unwrap(), Some(ids.clone()));
        assert_eq!(member_list(&Value::Array(items)).unwrap(), ids);
        // Generous: linear work takes milliseconds even in a debug build on a busy machine.
        assert!(started.elapsed() < std::time::Duration::from_secs(3));
    }

    fn ops(body: Value) -> Vec<PatchOp> {
        crate::scim::patch::parse_request(body.as_object().unwrap()).unwrap()
    }

    #[test]
    fn member_operations_are_split_from_attribute_operations() {
        let group = Uuid::now_v7();
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        let cases: Vec<(Value, Vec<MemberOp>, usize)> = vec![
            (
                json!([{"op": "add", "path": "members", "value": [{"value": a.to_string(), "display": "A"}]}]),
                vec![MemberOp::Add(vec![a])],
                0,
            ),
            (
                json!([{"op": "Add", "path": "members", "value": [{"value": a.to_string(), "$ref": null}, {"value": b.to_string()}]}]),
                vec![MemberOp::Add(vec![a, b])],
                0,
            ),
            (
                json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]),
                vec![MemberOp::Remove(vec![a])],
                0,
            ),
            (
                json!([{"op": "Remove", "path": "members", "value": [{"value": b.to_string()}]}]),
                vec![MemberOp::Remove(vec![b])],
                0,
            ),
            (
                json!([{"op": "remove", "path": "members"}]),
                vec![MemberOp::RemoveAll],
                0,
            ),
            (
                json!([{"op": "replace", "path": "members", "value": [{"value": a.to_string()}]}]),
                vec![MemberOp::Replace(vec![a])],
                0,
            ),
            (
                json!([{"op": "replace", "value": {"id": group.to_string(), "displayName": "New"}}]),
                vec![],
                1,
            ),
            (
                json!([{"op": "replace", "value": {"displayName": "New", "members": [{"value": a.to_string()}]}}]),
                vec![MemberOp::Replace(vec![a])],
                1,
            ),
            (
                json!([{"op": "replace", "path": "displayName", "value": "X"},
                    {"op": "add", "path": "members", "value": [{"value": b.to_string()}]}]),
                vec![MemberOp::Add(vec![b])],
                1,
            ),
        ];
        for (operations, want_members, want_attribute_ops) in cases {
            let body = json!({"schemas": [crate::scim::PATCH_OP_SCHEMA], "Operations": operations});
            let (attribute_ops, member_ops) = split_member_ops(ops(body.clone()), group).unwrap();
            assert_eq!(member_ops, want_members, "{body}");
            assert_eq!(attribute_ops.len(), want_attribute_ops, "{body}");
        }
    }

    #[test]
    fn bad_member_operations_are_refused() {
        let group = Uuid::now_v7();
        let cases = [
            (
                json!([{"op": "replace", "value": {"id": Uuid::now_v7().to_string()}}]),
                "mutability",
            ),
            (
                json!([{"op": "add", "path": "members", "value": [{"value": "bob"}]}]),
                "invalidValue",
            ),
            (
                json!([{"op": "remove", "path": "members[display eq \"x\"]"}]),
                "invalidFilter",
            ),
            (
                json!([{"op": "add", "path": "members[value eq \"x\"]", "value": []}]),
                "invalidPath",
            ),
            (
                json!([{"op": "replace", "path": "members.display", "value": "x"}]),
                "mutability",
            ),
        ];
        for (operations, want) in cases {
            let body = json!({"Operations": operations});
            let err = split_member_ops(ops(body.clone()), group).unwrap_err();
            assert_eq!(err.scim_type.map(|t| t.as_str()), Some(want), "{body}");
        }
    }

    #[test]
    fn render_includes_members_only_when_loaded() {
        let doc = json!({"displayName": "Admins"})
            .as_object()
            .unwrap()
            .clone();
        let meta = GroupMeta {
            id: "g1",
            created_ms: 0,
            modified_ms: 0,
            version: 3,
            location: "http://h/scim/v2/Groups/g1".into(),
            base_url: "http://h/scim/v2",
            members_listed_elsewhere: false,
        };
        let id = Uuid::now_v7();
        let members = [MemberRef {
            id,
            display: "Ann".into(),
        }];
        let out = Value::Object(render(doc.clone(), Some(&members), &meta));
        assert_eq!(out["members"][0]["value"], id.to_string());
        assert_eq!(
            out["members"][0]["$ref"],
            format!("http://h/scim/v2/Users/{id}")
        );
        assert_eq!(out["meta"]["version"], "W/\"3\"");
        assert_eq!(out["schemas"], json!([GROUP_SCHEMA]));
        let without = Value::Object(render(doc.clone(), None, &meta));
        assert!(without.get("members").is_none());
    }
}
