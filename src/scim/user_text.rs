//! A stored user rendered straight from its JSON text into the response's text, without
//! parsing the document into a tree and serialising the tree again: the one rendering of a
//! user ([`super::user::render`] reads this text back into a map).
//!
//! Only the top level is read (and put in name order, as a map orders it), in one pass that
//! checks the text and copies each stored member's value as stored, without the white space
//! of Postgres's `jsonb` output (`json_text::compact_members`);
//! only `userName` is decoded (for the fallback email), and the members the server computes
//! are written as text. A nested object keeps its stored member order (for documents Postgres
//! kept as `jsonb`, before migration 0019: by length, then name) and a number its stored
//! spelling (`1.50`, where a parsed tree writes `1.5`): the same JSON.

use std::borrow::Cow;
use std::ops::Range;

use super::doc::write_timestamp;
use super::interop::Profile;
use super::json_text::{
    CompactMembers, checked_members, compact_members, is_non_empty_array, is_null_or_empty_object,
    string_value, write_escaped, write_string,
};
use super::user::{UserMeta, is_email};
use super::{OMNI_USER_EXTENSION_SCHEMA, USER_ATTRIBUTE_SCHEMA, USER_SCHEMA};

/// A stored document's JSON text, and whether the database checked that it is JSON as it
/// stored it (Postgres's `json` type): its rendering then follows only the top level
/// (`json_text::checked_members`), where other text is checked in full as it is read.
#[derive(Clone, Copy, Debug)]
pub struct StoredText<'a> {
    pub text: &'a str,
    pub checked: bool,
}

/// A member of the rendered user: as stored (its compact copy, at this range of the stored
/// values' buffer), a constant, or written here (into the rendering's one scratch buffer, at
/// this range).
#[derive(Clone)]
enum Member {
    Stored(Range<usize>),
    Constant(&'static [u8]),
    Written(Range<usize>),
}

/// The stored members: each name, and where its value's compact text is.
type Object<'a> = CompactMembers<'a>;

/// A member the server computes, and whether it replaces a stored member of its name or is
/// only there when none is stored.
struct Computed {
    name: &'static str,
    member: Member,
    replaces: bool,
}

/// Appends the user stored as `stored` (its document's JSON text) to `out`, rendered: in the
/// reference profile as the reference's response shows it (`active: true` when not stored,
/// `emails` from userName when none are stored and it is an address, both Omni extensions
/// always present); in the interop profile strictly as RFC 7643 §2.5 reads (what is not
/// stored is absent). Fails only when `stored` is not a JSON object.
///
/// The stored members, in name order, and the computed ones (built in name order) are merged
/// as they are written: inserting each computed member into the stored ones, keeping them in
/// order, was about a sixth of a rendering's instructions.
pub fn render_text(
    stored: StoredText<'_>,
    meta: &UserMeta<'_>,
    profile: Profile,
    out: &mut Vec<u8>,
) -> Result<(), serde_json::Error> {
    // The stored members' values, compact, one after another.
    let mut values = String::new();
    let mut user: Object<'_> = if stored.checked {
        checked_members(stored.text, &mut values)?
    } else {
        compact_members(stored.text, &mut values)?
    };
    let values = values.as_str();
    // A map keeps the last of two members of one name, as a parsed document does: the sort
    // is stable, so the later of two equal names stays the later, and is the one kept.
    // (Reversing first, to keep the first, made text already in name order, as scimd writes
    // it, the insertion sort's worst case.)
    user.sort_by(|a, b| a.0.cmp(&b.0));
    user.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            std::mem::swap(later, kept);
        }
        same
    });
    let reference = profile == Profile::Reference;
    if !reference {
        // RFC 7643 §2.5: an empty or null extension is unassigned, and is not shown.
        user.retain(|(name, value)| {
            !name.starts_with("urn:") || !is_null_or_empty_object(text(values, value))
        });
    }
    // The computed members' text, written one after another, sized for all of them.
    let groups_size = meta
        .groups
        .map_or(0, |groups| groups.len() * (128 + meta.base_url.len()));
    let mut scratch = Vec::with_capacity(384 + meta.base_url.len() + groups_size);
    let mut computed = Vec::with_capacity(8);
    if reference {
        add(&mut computed, "active", Member::Constant(b"true"), false);
        if let Some(address) = fallback_address(&user, values) {
            let emails = written(&mut scratch, |out| fallback_emails(&address, out));
            add(&mut computed, "emails", emails, true);
        }
    }
    if let Some(groups) = meta.groups {
        let groups = written(&mut scratch, |out| groups_text(groups, meta.base_url, out));
        add(&mut computed, "groups", groups, true);
    }
    let id = written(&mut scratch, |out| {
        // A UUID's text needs no escaping.
        out.push(b'"');
        write_uuid(meta.id, out);
        out.push(b'"');
    });
    add(&mut computed, "id", id, true);
    let meta_member = written(&mut scratch, |out| meta_text(meta, out));
    add(&mut computed, "meta", meta_member, true);
    // Written below, once the extensions present are known.
    let schemas_at = computed.len();
    add(&mut computed, "schemas", Member::Written(0..0), true);
    if reference {
        add(
            &mut computed,
            USER_ATTRIBUTE_SCHEMA,
            Member::Constant(b"{}"),
            false,
        );
        let omni = Member::Constant(br#"{"lastLogin":null}"#);
        add(&mut computed, OMNI_USER_EXTENSION_SCHEMA, omni, true);
    }
    debug_assert!(computed.is_sorted_by(|a, b| a.name < b.name));
    // RFC 7643 §3: `schemas` names the core schema and every extension present.
    let is_extension = |name: &str| name.starts_with("urn:");
    let extensions = merged(
        user.iter().filter(|(name, _)| is_extension(name)),
        computed.iter().filter(|c| is_extension(c.name)),
    );
    let schemas = written(&mut scratch, |out| {
        out.push(b'[');
        out.push(b'"');
        out.extend_from_slice(USER_SCHEMA.as_bytes());
        out.push(b'"');
        for (name, escaped, _) in extensions {
            out.push(b',');
            write_name(name, escaped, out);
        }
        out.push(b']');
    });
    computed[schemas_at].member = schemas;
    // The whole rendering, reserved once: the stored names and values with their quotes,
    // colons and commas, and the computed ones (their names and punctuation under 160 bytes).
    let names: usize = user.iter().map(|(name, _)| name.len() + 4).sum();
    out.reserve(values.len() + scratch.len() + names + 160);
    out.push(b'{');
    for (i, (name, escaped, member)) in merged(user.iter(), computed.iter()).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_name(name, escaped, out);
        out.push(b':');
        match member {
            Member::Stored(value) => out.extend_from_slice(text(values, &value).as_bytes()),
            Member::Constant(text) => out.extend_from_slice(text),
            Member::Written(range) => out.extend_from_slice(&scratch[range]),
        }
    }
    out.push(b'}');
    Ok(())
}

fn add(computed: &mut Vec<Computed>, name: &'static str, member: Member, replaces: bool) {
    computed.push(Computed {
        name,
        member,
        replaces,
    });
}

/// The rendered user's members in name order: the stored members (in name order) and the
/// computed ones (in name order) merged, a computed member taking its name's place when it
/// replaces the stored one. Each with its name, whether that name may need escaping, and
/// its value.
fn merged<'u, 'a: 'u>(
    stored: impl Iterator<Item = &'u (Cow<'a, str>, Range<usize>)>,
    computed: impl Iterator<Item = &'u Computed>,
) -> impl Iterator<Item = (&'u str, bool, Member)> {
    let (mut stored, mut computed) = (stored.peekable(), computed.peekable());
    std::iter::from_fn(move || {
        let order = match (stored.peek(), computed.peek()) {
            (None, None) => return None,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((name, _)), Some(c)) => name.as_ref().cmp(c.name),
        };
        let from_stored = |(name, value): &'u (Cow<'a, str>, Range<usize>)| {
            // A borrowed stored name had nothing to unescape (`compact_members` borrows only
            // those, and JSON has no raw control character in a string): nothing to escape.
            let escape = matches!(name, Cow::Owned(_));
            (name.as_ref(), escape, Member::Stored(value.clone()))
        };
        let from_computed = |c: &'u Computed| (c.name, false, c.member.clone());
        Some(match order {
            std::cmp::Ordering::Less => from_stored(stored.next()?),
            std::cmp::Ordering::Greater => from_computed(computed.next()?),
            std::cmp::Ordering::Equal => {
                let (own, theirs) = (computed.next()?, stored.next()?);
                if own.replaces {
                    from_computed(own)
                } else {
                    from_stored(theirs)
                }
            }
        })
    })
}

/// The user's address for its fallback email (`super::user::fallback_email`, read from the
/// members): `userName`, when it is an address and no email is stored.
fn fallback_address<'v>(user: &Object<'_>, values: &'v str) -> Option<Cow<'v, str>> {
    let has_emails = stored(user, values, "emails").is_some_and(is_non_empty_array);
    let name = stored(user, values, "userName").filter(|_| !has_emails)?;
    // A userName that is not a string has no fallback.
    string_value(name).filter(|name| is_email(name))
}

/// `super::user::fallback_emails`, written.
fn fallback_emails(address: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"[{"primary":true,"value":"#);
    write_string(address, out);
    out.extend_from_slice(b"}]");
}

/// The user's `groups` (RFC 7643 §4.1.2): direct memberships, each with its `$ref`.
fn groups_text(groups: &[super::group::MemberRef], base_url: &str, out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"$ref":""#);
        write_escaped(base_url, out);
        out.extend_from_slice(b"/Groups/");
        write_uuid(group.id, out);
        out.push(b'"');
        out.extend_from_slice(br#","display":"#);
        write_string(&group.display, out);
        out.extend_from_slice(br#","type":"direct","value":""#);
        write_uuid(group.id, out);
        out.extend_from_slice(br#""}"#);
    }
    out.push(b']');
}

fn write_uuid(id: uuid::Uuid, out: &mut Vec<u8>) {
    out.extend_from_slice(
        id.hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer())
            .as_bytes(),
    );
}

/// The user's `meta` (RFC 7643 §3.1): its `location` is `{base_url}/Users/{id}`, its
/// `version` the ETag (`super::etag::etag`).
fn meta_text(meta: &UserMeta<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"created":""#);
    write_timestamp(meta.created_ms, out);
    out.extend_from_slice(br#"","lastModified":""#);
    write_timestamp(meta.modified_ms, out);
    out.extend_from_slice(br#"","location":""#);
    write_escaped(meta.base_url, out);
    out.extend_from_slice(b"/Users/");
    write_uuid(meta.id, out);
    out.extend_from_slice(br#"","resourceType":"User","version":"W/\""#);
    out.extend_from_slice(itoa::Buffer::new().format(meta.version).as_bytes());
    out.extend_from_slice(br#"\""}"#);
}

/// Writes a computed member at the end of `scratch`.
fn written(scratch: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) -> Member {
    let start = scratch.len();
    write(scratch);
    Member::Written(start..scratch.len())
}

/// The compact text of a stored value.
fn text<'v>(values: &'v str, range: &Range<usize>) -> &'v str {
    &values[range.clone()]
}

fn stored<'v>(user: &Object<'_>, values: &'v str, name: &str) -> Option<&'v str> {
    let i = user.binary_search_by(|(n, _)| n.as_ref().cmp(name)).ok()?;
    Some(text(values, &user[i].1))
}

/// A member's name as a JSON string: escaped only when it may need to be (a name escaped
/// per member was about 5 % of a page's instructions).
fn write_name(name: &str, may_need_escape: bool, out: &mut Vec<u8>) {
    if may_need_escape {
        write_string(name, out);
    } else {
        debug_assert!(super::json_text::find_escape(name.as_bytes(), 0).is_none());
        out.push(b'"');
        out.extend_from_slice(name.as_bytes());
        out.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};
    use uuid::Uuid;

    use super::*;
    use crate::scim::doc::timestamp;
    use crate::scim::etag::etag;
    use crate::scim::group::MemberRef;
    use crate::scim::json_text::write_compact;
    use crate::scim::user::{fallback_email, fallback_emails};

    /// The rendering as a tree, built value by value: what the text must equal.
    fn render(
        doc: Map<String, Value>,
        meta: &UserMeta<'_>,
        profile: Profile,
    ) -> Map<String, Value> {
        let reference = profile == Profile::Reference;
        let fallback = fallback_email(&doc)
            .filter(|_| reference)
            .map(fallback_emails);
        let mut out = doc;
        out.insert("id".into(), Value::String(meta.id.to_string()));
        if reference {
            out.entry("active").or_insert(Value::Bool(true));
            if let Some(emails) = fallback {
                out.insert("emails".into(), emails);
            }
        }
        if let Some(groups) = meta.groups {
            let rendered: Vec<Value> = groups
                .iter()
                .map(|g| {
                    json!({
                        "value": g.id.to_string(),
                        "display": g.display,
                        "$ref": format!("{}/Groups/{}", meta.base_url, g.id),
                        "type": "direct",
                    })
                })
                .collect();
            out.insert("groups".into(), Value::Array(rendered));
        }
        if reference {
            out.entry(USER_ATTRIBUTE_SCHEMA).or_insert(json!({}));
            out.insert(
                OMNI_USER_EXTENSION_SCHEMA.into(),
                json!({ "lastLogin": null }),
            );
        } else {
            out.retain(|key, value| {
                !key.starts_with("urn:")
                    || !(value.is_null() || value.as_object().is_some_and(Map::is_empty))
            });
        }
        out.insert(
            "meta".into(),
            json!({
                "resourceType": "User",
                "created": timestamp(meta.created_ms),
                "lastModified": timestamp(meta.modified_ms),
                "location": format!("{}/Users/{}", meta.base_url, meta.id),
                "version": etag(meta.version),
            }),
        );
        let mut schemas = vec![json!(USER_SCHEMA)];
        schemas.extend(
            out.keys()
                .filter(|k| k.starts_with("urn:"))
                .map(|k| json!(k)),
        );
        out.insert("schemas".into(), Value::Array(schemas));
        out
    }

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn meta<'a>(groups: Option<&'a [MemberRef]>) -> UserMeta<'a> {
        UserMeta {
            id: Uuid::from_u128(0x9e8719d9_276a_4964_9395_a493189a247c),
            created_ms: 1_733_267_594_109,
            modified_ms: 1_733_267_600_000,
            version: 7,
            base_url: "http://h\"/scim/v2",
            groups,
        }
    }

    /// Stored documents with every member the rendering treats specially.
    fn documents() -> Vec<Value> {
        vec![
            json!({"userName": "blob.ross@blobsrus.co"}),
            json!({"userName": "not an address"}),
            json!({"userName": "a@b.co", "emails": []}),
            json!({"userName": "a@b.co", "emails": null}),
            json!({"userName": "a@b.co", "emails": [{"value": "other@b.co", "primary": true}]}),
            json!({"userName": "a@b.co", "active": false, "displayName": "A \"quoted\" name"}),
            json!({"userName": "a@b.co", "active": null, "name": {"givenName": "Ä", "familyName": "Ö"}}),
            json!({"userName": "a@b.co", USER_ATTRIBUTE_SCHEMA: {"k": "v"}, ENTERPRISE: {"department": "x"}}),
            json!({"userName": "a@b.co", USER_ATTRIBUTE_SCHEMA: {}, OMNI_USER_EXTENSION_SCHEMA: {}, ENTERPRISE: null}),
            json!({"userName": "a@b.co", "x-\u{1}-control": "line\nbreak\ttab", "n": 12, "f": 1.25}),
            json!({"userName": "a@b.co", "a \"quoted\" \\ name": true, "ünïcode": "ö"}),
            json!({"userName": "a@b.co", "id": "stored id", "meta": {"x": 1}, "schemas": ["x"], "groups": [1]}),
            json!({"userName": "é@b.co", "phoneNumbers": [{"value": "+1 555", "type": "work"}]}),
        ]
    }

    fn groups() -> Vec<MemberRef> {
        vec![
            MemberRef {
                id: Uuid::from_u128(1),
                display: "Admins".into(),
            },
            MemberRef {
                id: Uuid::from_u128(2),
                display: "é \"q\"".into(),
            },
        ]
    }

    /// The rendering of `stored`, read both ways: checked in full and as the database's
    /// checked text; the two must be the same.
    fn as_text(stored: &str, meta: &UserMeta<'_>, profile: Profile) -> String {
        let [full, checked] = [false, true].map(|checked| {
            let mut out = Vec::new();
            let text = StoredText {
                text: stored,
                checked,
            };
            render_text(text, meta, profile, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        });
        assert_eq!(full, checked, "{stored}");
        full
    }

    /// Postgres's `jsonb` output of a document: a space after every `:` and `,`, members by
    /// length then name.
    fn jsonb_text(doc: &Map<String, Value>) -> String {
        fn write(value: &Value) -> String {
            match value {
                Value::Object(map) => {
                    let mut members: Vec<_> = map.iter().collect();
                    members.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then(a.0.cmp(b.0)));
                    let inner: Vec<String> = members
                        .into_iter()
                        .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), write(v)))
                        .collect();
                    format!("{{{}}}", inner.join(", "))
                }
                Value::Array(items) => {
                    let inner: Vec<String> = items.iter().map(write).collect();
                    format!("[{}]", inner.join(", "))
                }
                other => other.to_string(),
            }
        }
        write(&Value::Object(doc.clone()))
    }

    #[test]
    fn the_text_is_what_rendering_the_parsed_document_writes_byte_for_byte_from_compact_text() {
        let groups = groups();
        for doc in documents() {
            let doc = doc.as_object().unwrap().clone();
            for profile in [Profile::Reference, Profile::Interop] {
                for listed in [None, Some(&groups[..0]), Some(&groups[..])] {
                    let meta = meta(listed);
                    let want = serde_json::to_string(&render(doc.clone(), &meta, profile)).unwrap();
                    let compact = serde_json::to_string(&doc).unwrap();
                    assert_eq!(
                        as_text(&compact, &meta, profile),
                        want,
                        "{doc:?} {profile:?}"
                    );
                    // As Postgres returns it: the same object, compact, with the members of
                    // nested objects in Postgres's order.
                    let spaced = jsonb_text(&doc);
                    let text = as_text(&spaced, &meta, profile);
                    let mut compact = String::new();
                    write_compact(&text, &mut compact);
                    assert_eq!(compact, text, "{spaced}");
                    let (got, want): (Value, Value) = (
                        serde_json::from_str(&text).unwrap(),
                        serde_json::from_str(&want).unwrap(),
                    );
                    assert_eq!(got, want, "{spaced} {profile:?}");
                }
            }
        }
    }

    #[test]
    fn of_two_stored_members_of_one_name_the_last_is_rendered_as_a_parsed_map_keeps_it() {
        let stored = r#"{"userName":"a@b.co","displayName":"first","displayName":"last"}"#;
        let text = as_text(stored, &meta(None), Profile::Interop);
        let rendered: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(rendered["displayName"], "last");
        let parsed: Map<String, Value> = serde_json::from_str(stored).unwrap();
        let want = serde_json::to_string(&render(parsed, &meta(None), Profile::Interop)).unwrap();
        assert_eq!(text, want);
    }

    #[test]
    fn the_map_rendering_is_the_text_read_back() {
        let groups = groups();
        for doc in documents() {
            let doc = doc.as_object().unwrap().clone();
            for profile in [Profile::Reference, Profile::Interop] {
                let meta = meta(Some(&groups));
                let stored = serde_json::to_string(&doc).unwrap();
                let text = StoredText {
                    text: &stored,
                    checked: false,
                };
                let map = crate::scim::user::render(text, &meta, profile).unwrap();
                assert_eq!(map, render(doc.clone(), &meta, profile), "{doc:?}");
            }
        }
    }

    #[test]
    fn a_stored_document_that_is_not_a_json_object_is_an_error() {
        let not_objects = [
            "[]",
            "null",
            r#""a""#,
            r#"{"a": 1"#,
            r#"{"a": 1} {}"#,
            "",
            r#"{"a": [1,]}"#,
            r#"{"a": "\q"}"#,
        ];
        for (i, stored) in not_objects.into_iter().enumerate() {
            // Text the database checked is JSON: only what is not one object is looked for.
            let checked = [false, true].into_iter().filter(|&c| !c || i < 6);
            for checked in checked {
                let mut out = Vec::new();
                let text = StoredText {
                    text: stored,
                    checked,
                };
                let rendered = render_text(text, &meta(None), Profile::Reference, &mut out);
                assert!(rendered.is_err(), "{stored} {checked}");
            }
        }
    }
}
