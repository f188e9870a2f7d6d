//! The Group resource's own rules (RFC 7643 §4.2): displayName, members given as user ids,
//! and the response shape. Members are stored apart from the document, so the document
//! never holds `members`; they are passed in when a group is rendered.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{GROUP_SCHEMA, ScimError};

type Doc = Map<String, Value>;

/// One end of a membership as rendered: a group's member (a user) or a user's group, with
/// its display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRef {
    pub id: Uuid,
    pub display: String,
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
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let id = member_id(&item)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(Some(ids))
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
}

/// Renders a group; `members` is None when they were not loaded (projection excluded them).
pub fn render(doc: &Doc, members: Option<&[MemberRef]>, meta: &GroupMeta<'_>) -> Doc {
    let mut out = doc.clone();
    out.insert("id".into(), json!(meta.id));
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
            "created": super::user::timestamp(meta.created_ms),
            "lastModified": super::user::timestamp(meta.modified_ms),
            "location": meta.location,
            "version": super::etag::etag(meta.version),
        }),
    );
    out.insert("schemas".into(), json!([GROUP_SCHEMA]));
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
        };
        let id = Uuid::now_v7();
        let members = [MemberRef {
            id,
            display: "Ann".into(),
        }];
        let out = Value::Object(render(&doc, Some(&members), &meta));
        assert_eq!(out["members"][0]["value"], id.to_string());
        assert_eq!(
            out["members"][0]["$ref"],
            format!("http://h/scim/v2/Users/{id}")
        );
        assert_eq!(out["meta"]["version"], "W/\"3\"");
        assert_eq!(out["schemas"], json!([GROUP_SCHEMA]));
        let without = Value::Object(render(&doc, None, &meta));
        assert!(without.get("members").is_none());
    }
}
