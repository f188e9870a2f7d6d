//! The User resource's own rules: userName format and the response shape (RFC 7643 §4.1,
//! §3.1 meta; the Omni reference's example response). The PUT merge is generic: `super::doc`.
//!
//! A stored user is its document (client-settable attributes, extensions under their URN);
//! id, meta, groups and schemas are computed here when the user is rendered.

use serde_json::{Map, Value, json};

use super::group::MemberRef;
use super::interop::Profile;
use super::{ScimError, USER_ATTRIBUTE_SCHEMA};

type Doc = Map<String, Value>;

/// The keys a user carries under `urn:omni:params:1.0:UserAttribute`.
pub fn user_attribute_keys(doc: &Doc) -> impl Iterator<Item = &String> {
    doc.get(USER_ATTRIBUTE_SCHEMA)
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|attributes| attributes.keys())
}

/// Refuses a user-attribute key the organization has not defined, naming it: `invalidValue`
/// in the reference profile; `invalidSyntax` in the interop profile, whose attribute rule
/// refuses every attribute the schema (here the organization's `/Schemas` entry) lacks so.
pub fn undefined_user_attribute(key: &str, profile: Profile) -> ScimError {
    let detail = format!(
        "User attribute {key:?} is not defined for this organization ({USER_ATTRIBUTE_SCHEMA})"
    );
    match profile {
        Profile::Reference => ScimError::invalid_value(detail),
        Profile::Interop => ScimError::invalid_syntax(detail),
    }
}

/// Which userNames are accepted (`SCIMD_USERNAME_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserNameFormat {
    /// The reference's rule: userName is the user's email address.
    #[default]
    Email,
    /// RFC 7643 §4.1.1: any non-empty string.
    Any,
}

/// Extracts and checks `userName` from a normalised body: required, a string, non-empty, and
/// an email address unless the format is `Any`.
pub fn user_name(doc: &Doc, format: UserNameFormat) -> Result<String, ScimError> {
    let name = match doc.get("userName") {
        None | Some(Value::Null) => {
            return Err(ScimError::invalid_value("userName is required"));
        }
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => return Err(ScimError::invalid_value("userName must be a string")),
    };
    if name.is_empty() {
        return Err(ScimError::invalid_value("userName must not be empty"));
    }
    if format == UserNameFormat::Email && !is_email(&name) {
        return Err(ScimError::invalid_value(format!(
            "userName must be an email address, got {name:?}"
        )));
    }
    Ok(name)
}

/// A deliberately simple address check: one `@`, a non-empty local part, a dotted domain and
/// no white space. Deliverability is the IdP's business, not ours.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(char::is_whitespace)
}

/// The address rendered as the user's one email when none is stored (the reference's shape,
/// where `userName` is an address): `userName`, and only when it is a valid address, so an
/// invalid email is never shown. Rendering, the stored folded copy behind filters and the
/// `user_emails` lookup all take it from here, so `emails.value eq` finds what is shown.
pub fn fallback_email(doc: &Doc) -> Option<&str> {
    let has_emails = matches!(doc.get("emails"), Some(Value::Array(a)) if !a.is_empty());
    if has_emails {
        return None;
    }
    doc.get("userName")
        .and_then(Value::as_str)
        .filter(|name| is_email(name))
}

/// The rendered fallback email of [`fallback_email`].
pub fn fallback_emails(address: &str) -> Value {
    json!([{ "primary": true, "value": address }])
}

/// The reference's PUT merge, the same for every resource type: [`super::doc::merge`].
pub use super::doc::merge;

/// The server-managed facts a rendered user needs besides its document.
#[derive(Debug, Clone)]
pub struct UserMeta<'a> {
    pub id: uuid::Uuid,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub version: i64,
    /// Base URL of the SCIM API: `meta.location` is `{base_url}/Users/{id}`, and the
    /// groups' `$ref` are under it.
    pub base_url: &'a str,
    /// The user's groups (RFC 7643 §4.1.2, read-only); None when not loaded.
    pub groups: Option<&'a [MemberRef]>,
}

/// Renders a stored user (all attributes; projection happens later) from its stored JSON
/// text, as [`super::user_text::render_text`] writes it, read back into a map: one rendering
/// for both.
pub fn render(
    stored: super::user_text::StoredText<'_>,
    meta: &UserMeta<'_>,
    profile: Profile,
) -> Result<Doc, serde_json::Error> {
    let mut out = Vec::new();
    super::user_text::render_text(stored, meta, profile, &mut out)?;
    serde_json::from_slice(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::{OMNI_USER_EXTENSION_SCHEMA, USER_SCHEMA};

    fn text(doc: &Doc) -> String {
        serde_json::to_string(doc).unwrap()
    }

    fn as_stored(text: &str) -> crate::scim::user_text::StoredText<'_> {
        crate::scim::user_text::StoredText {
            text,
            checked: false,
        }
    }

    fn doc(v: Value) -> Doc {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn user_name_rules() {
        let cases = [
            (
                json!({"userName": "a@b.co"}),
                UserNameFormat::Email,
                Ok("a@b.co"),
            ),
            (
                json!({"userName": " a@b.co "}),
                UserNameFormat::Email,
                Ok("a@b.co"),
            ),
            (
                json!({"userName": "alice"}),
                UserNameFormat::Any,
                Ok("alice"),
            ),
            (
                json!({"userName": "alice"}),
                UserNameFormat::Email,
                Err("email"),
            ),
            (json!({"userName": ""}), UserNameFormat::Any, Err("empty")),
            (json!({"userName": 7}), UserNameFormat::Any, Err("string")),
            (
                json!({"userName": null}),
                UserNameFormat::Any,
                Err("required"),
            ),
            (json!({}), UserNameFormat::Email, Err("required")),
        ];
        for (body, format, want) in cases {
            let got = user_name(&doc(body.clone()), format);
            match want {
                Ok(name) => assert_eq!(got.as_deref(), Ok(name), "{body}"),
                Err(fragment) => {
                    let e = got.expect_err(&body.to_string());
                    assert!(e.detail.contains(fragment), "{body}: {}", e.detail);
                }
            }
        }
    }

    #[test]
    fn is_email_accepts_addresses_and_refuses_the_rest() {
        for ok in ["blob.ross@blobsrus.co", "a+b@x.io", "ä@exämple.de"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "@x.co", "a@", "a@x", "a@@x.co", "a b@x.co", "a@.co", "a@x.",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn render_matches_the_reference_shape() {
        let stored = doc(json!({
            "userName": "blob.ross@blobsrus.co", "displayName": "Blob Ross",
            "urn:omni:params:1.0:UserAttribute": {"good_blob": "yes"}
        }));
        let meta = UserMeta {
            id: uuid::Uuid::from_u128(0x9e8719d9_276a_4964_9395_a493189a247c),
            created_ms: 1_733_267_594_109,
            modified_ms: 1_733_267_594_109,
            version: 1,
            base_url: "http://h/scim/v2",
            groups: Some(&[]),
        };
        let out =
            Value::Object(render(as_stored(&text(&stored)), &meta, Profile::Reference).unwrap());
        assert_eq!(out["active"], json!(true));
        assert_eq!(
            out["emails"],
            json!([{"primary": true, "value": "blob.ross@blobsrus.co"}])
        );
        assert_eq!(out["groups"], json!([]));
        assert_eq!(out["meta"]["created"], "2024-12-03T23:13:14.109Z");
        assert_eq!(out["meta"]["resourceType"], "User");
        assert_eq!(out["meta"]["version"], "W/\"1\"");
        assert_eq!(
            out["urn:omni:params:1.0:UserAttribute"],
            json!({"good_blob": "yes"})
        );
        assert_eq!(
            out["urn:omni:params:scim:schemas:extension:user:2.0"],
            json!({"lastLogin": null})
        );
        assert_eq!(out["schemas"][0], USER_SCHEMA);
    }

    #[test]
    fn the_interop_profile_renders_only_what_is_stored() {
        let meta = UserMeta {
            id: uuid::Uuid::from_u128(0x9e8719d9_276a_4964_9395_a493189a247c),
            created_ms: 0,
            modified_ms: 0,
            version: 1,
            base_url: "http://h/scim/v2",
            groups: None,
        };
        let bare = doc(json!({
            "userName": "blob.ross@blobsrus.co", USER_ATTRIBUTE_SCHEMA: {},
            OMNI_USER_EXTENSION_SCHEMA: {}, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": null
        }));
        let out = render(as_stored(&text(&bare)), &meta, Profile::Interop).unwrap();
        for absent in [
            "active",
            "emails",
            USER_ATTRIBUTE_SCHEMA,
            OMNI_USER_EXTENSION_SCHEMA,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ] {
            assert!(!out.contains_key(absent), "{absent} rendered: {out:?}");
        }
        assert_eq!(out["schemas"], json!([USER_SCHEMA]));
        let full = doc(json!({
            "userName": "blob.ross@blobsrus.co", "active": false,
            "emails": [{"value": "b@x.co"}], USER_ATTRIBUTE_SCHEMA: {"good_blob": "yes"}
        }));
        let out = render(as_stored(&text(&full)), &meta, Profile::Interop).unwrap();
        assert_eq!(out["active"], json!(false));
        assert_eq!(out["emails"], json!([{"value": "b@x.co"}]));
        assert_eq!(out[USER_ATTRIBUTE_SCHEMA], json!({"good_blob": "yes"}));
        assert_eq!(out["schemas"], json!([USER_SCHEMA, USER_ATTRIBUTE_SCHEMA]));
    }
}
