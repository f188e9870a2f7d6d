//! The `GroupMember` resource of the group-membership draft (draft-zollner-scim-group-membership):
//! one membership, with its own id, created, read and deleted but never changed.
//!
//! A membership's id is its group's and member's ids side by side (64 hex digits): opaque
//! to clients, as the draft asks, and needing no column of its own, since the pair is the
//! membership's key. Lists filter on `group.value` and `member.value` with `eq`, joined by
//! `and` (the draft's "MUST support filtering on"); anything else is `invalidFilter`.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::doc::timestamp;
use super::filter::{CompValue, CompareOp, Filter};
use super::normalize::normalize_resource;
use super::schema::{GROUP_MEMBER_RESOURCE, GROUP_MEMBER_SCHEMA};
use super::{ScimError, ScimType};

/// The id of the membership of `member` in `group`.
pub fn id(group: Uuid, member: Uuid) -> String {
    format!("{}{}", group.simple(), member.simple())
}

/// The (group, member) a membership id names; None when it is not one.
pub fn parse_id(id: &str) -> Option<(Uuid, Uuid)> {
    if id.len() != 64 || !id.is_ascii() {
        return None;
    }
    let (group, member) = id.split_at(32);
    Some((Uuid::try_parse(group).ok()?, Uuid::try_parse(member).ok()?))
}

/// The (group, member) a POST body names (`group.value`, `member.value`), checked against
/// the schema like any resource body (unknown attributes are `invalidSyntax`; read-only
/// `$ref` and `type` are ignored). An id that is not a UUID names nothing: `invalidValue`,
/// as the draft answers a group or member that does not exist.
pub fn parse_new(body: Map<String, Value>) -> Result<(Uuid, Uuid), ScimError> {
    let doc = normalize_resource(&GROUP_MEMBER_RESOURCE, body)?;
    let value = |attribute: &str| -> Result<Uuid, ScimError> {
        let text = doc
            .get(attribute)
            .and_then(|v| v.get("value"))
            .and_then(Value::as_str)
            .ok_or_else(|| ScimError::invalid_value(format!("{attribute}.value is required")))?;
        Uuid::try_parse(text.trim()).map_err(|_| {
            ScimError::invalid_value(format!("{attribute}.value {text:?} does not exist"))
        })
    };
    Ok((value("group")?, value("member")?))
}

/// What a list filter selects: one group, one member, or both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection {
    pub group: Option<Uuid>,
    pub member: Option<Uuid>,
}

/// The selection a list filter makes. A value that is not a UUID matches no membership:
/// it selects the nil id, which none has.
pub fn selection(filter: &Filter) -> Result<Selection, ScimError> {
    let mut selected = Selection::default();
    select(filter, &mut selected)?;
    Ok(selected)
}

fn select(filter: &Filter, selected: &mut Selection) -> Result<(), ScimError> {
    let unsupported = || {
        ScimError::bad_request(
            ScimType::InvalidFilter,
            "GroupMembers are filtered by group.value eq \"<id>\" and/or member.value eq \
             \"<id>\", joined by and",
        )
    };
    match filter {
        Filter::And(left, right) => {
            select(left, selected)?;
            select(right, selected)
        }
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: CompValue::Str(text),
        } if path.schema.is_none() && path.sub_attr.as_deref() == Some("value") => {
            let id = Uuid::try_parse(text.trim()).unwrap_or(Uuid::nil());
            let slot = match path.attr.to_ascii_lowercase().as_str() {
                "group" => &mut selected.group,
                "member" => &mut selected.member,
                _ => return Err(unsupported()),
            };
            // Two different values for one attribute select nothing.
            *slot = match *slot {
                Some(earlier) if earlier != id => Some(Uuid::nil()),
                _ => Some(id),
            };
            Ok(())
        }
        _ => Err(unsupported()),
    }
}

/// A membership as the client sees it (`meta.lastModified` is its creation: it never
/// changes).
pub fn render(base_url: &str, group: Uuid, member: Uuid, created_ms: i64) -> Value {
    let id = id(group, member);
    let created = timestamp(created_ms);
    json!({
        "schemas": [GROUP_MEMBER_SCHEMA],
        "id": id,
        "group": {"value": group.to_string(), "$ref": format!("{base_url}/Groups/{group}")},
        "member": {
            "value": member.to_string(),
            "$ref": format!("{base_url}/Users/{member}"),
            "type": "User",
        },
        "meta": {
            "resourceType": "GroupMember",
            "created": created,
            "lastModified": created,
            "location": format!("{base_url}/GroupMembers/{id}"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Uuid = Uuid::from_u128(0x0193_a2b4_5c6d_7e8f_9a0b_1c2d_3e4f_5a6b);
    const M: Uuid = Uuid::from_u128(0x2819_c223_7f76_453a_919d_4138_6190_4646);

    #[test]
    fn ids_round_trip_and_nothing_else_is_one() {
        assert_eq!(parse_id(&id(G, M)), Some((G, M)));
        for bad in ["", "abc", &id(G, M)[1..], &format!("{}x", &id(G, M)[1..])] {
            assert_eq!(parse_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_new_membership_names_a_group_and_a_member() {
        let body = |v: Value| v.as_object().unwrap().clone();
        let ok = body(json!({
            "schemas": [GROUP_MEMBER_SCHEMA],
            "group": {"value": G.to_string(), "$ref": "ignored"},
            "member": {"value": M.to_string(), "type": "User"},
        }));
        assert_eq!(parse_new(ok), Ok((G, M)));
        let cases = [
            (
                "no member",
                json!({"group": {"value": G.to_string()}}),
                ScimType::InvalidValue,
            ),
            (
                "a group that cannot exist",
                json!({"group": {"value": "nope"}, "member": {"value": M.to_string()}}),
                ScimType::InvalidValue,
            ),
            (
                "an unknown attribute",
                json!({"group": {"value": G.to_string()}, "member": {"value": M.to_string()}, "role": "x"}),
                ScimType::InvalidSyntax,
            ),
        ];
        for (name, value, want) in cases {
            assert_eq!(
                parse_new(body(value)).unwrap_err().scim_type,
                Some(want),
                "{name}"
            );
        }
    }

    #[test]
    fn filters_select_a_group_a_member_or_both() {
        let filter = |text: &str| text.parse::<Filter>().unwrap();
        let cases = [
            (
                format!("group.value eq \"{G}\""),
                Some(Selection {
                    group: Some(G),
                    member: None,
                }),
            ),
            (
                format!("member.value eq \"{M}\""),
                Some(Selection {
                    group: None,
                    member: Some(M),
                }),
            ),
            (
                format!("group.value eq \"{G}\" and member.value eq \"{M}\""),
                Some(Selection {
                    group: Some(G),
                    member: Some(M),
                }),
            ),
            (
                "group.value eq \"not-an-id\"".to_string(),
                Some(Selection {
                    group: Some(Uuid::nil()),
                    member: None,
                }),
            ),
            (
                format!("group.value eq \"{G}\" and group.value eq \"{M}\""),
                Some(Selection {
                    group: Some(Uuid::nil()),
                    member: None,
                }),
            ),
            (
                format!("group.value eq \"{G}\" or member.value eq \"{M}\""),
                None,
            ),
            ("group.value pr".to_string(), None),
            ("member.display eq \"x\"".to_string(), None),
        ];
        for (text, want) in cases {
            let got = selection(&filter(&text));
            match want {
                Some(want) => assert_eq!(got, Ok(want), "{text}"),
                None => assert_eq!(
                    got.unwrap_err().scim_type,
                    Some(ScimType::InvalidFilter),
                    "{text}"
                ),
            }
        }
    }

    #[test]
    fn a_membership_renders_with_its_links() {
        let out = render("http://h/scim/v2", G, M, 0);
        assert_eq!(out["id"], id(G, M));
        assert_eq!(out["member"]["type"], "User");
        assert_eq!(
            out["meta"]["location"],
            format!("http://h/scim/v2/GroupMembers/{}", id(G, M))
        );
        assert_eq!(out["group"]["$ref"], format!("http://h/scim/v2/Groups/{G}"));
    }
}
