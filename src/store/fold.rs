//! One case-folding rule for both databases: Rust's `str::to_lowercase`.
//!
//! RFC 7643 §2.2: a string attribute with `caseExact: false` compares case-insensitively. SQLite's
//! `lower()` folds ASCII only and Postgres's depends on the database locale, so neither decides:
//! every write also stores `doc_folded`, the document with each caseExact=false string folded
//! here, and filters and sort keys read that copy and compare it with an operand folded the same
//! way (`filter_sql`). Case-exact values, unknown keys and non-strings are copied unchanged, so
//! `doc_folded` answers every comparison, exact or not.

use serde_json::Value;

use super::Doc;
use crate::scim::json_text::write_string;
use crate::scim::schema::{AttrType, AttributeDef, ResourceTypeDef, common_attribute};

/// The case-insensitive fold (the same as `fold_user_name` and the operand fold of filters).
pub fn fold(text: &str) -> String {
    folded(text).into_owned()
}

/// [`fold`] without a copy where the text is folded already: ASCII with no capital, as many
/// values an IdP sends (emails, ids, lowercase names) are, of which `to_lowercase` made a new
/// string each.
pub fn folded(text: &str) -> std::borrow::Cow<'_, str> {
    if text
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text.to_lowercase())
    }
}

/// A document's folded copy (`doc_folded`) as JSON text, written straight from the document:
/// building it as a second tree cost each write a copy of every key and value, dropped again
/// once the text was written for the database.
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedDoc(pub String);

impl FoldedDoc {
    /// `doc` with every caseExact=false string value folded, per `resource`'s schemas; where
    /// `replaced` names a member, its value is written in place of the document's (whose is
    /// left out), folded the same way.
    pub fn of(
        resource: &ResourceTypeDef,
        doc: &Doc,
        replaced: Option<(&str, &Value)>,
    ) -> FoldedDoc {
        let mut out = Vec::with_capacity(256);
        let members = doc
            .iter()
            .filter(|(key, _)| replaced.is_none_or(|(name, _)| name != key.as_str()))
            .map(|(key, value)| (key.as_str(), value))
            .chain(replaced);
        write_members(&mut out, members, |out, key, value| {
            match resource.schema_by_urn(key) {
                // An extension's attributes sit in an object under its URN.
                Some(ext) if !std::ptr::eq(ext, resource.schema) => match value {
                    Value::Object(object) => write_object(out, object, |k| ext.attribute(k)),
                    other => write_value(out, other),
                },
                _ => match resource
                    .schema
                    .attribute(key)
                    .or_else(|| common_attribute(key))
                {
                    Some(def) => write_folded(out, def, value),
                    None => write_value(out, value),
                },
            }
        });
        // Only whole UTF-8 strings and ASCII punctuation were written.
        FoldedDoc(String::from_utf8(out).unwrap_or_default())
    }

    /// The text, as bound for the `doc_folded` column.
    pub fn text(&self) -> &str {
        &self.0
    }
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    // Writing to a Vec cannot fail, and a Value always serializes.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// A JSON object of `members`, each value written by `write`.
fn write_members<'v>(
    out: &mut Vec<u8>,
    members: impl Iterator<Item = (&'v str, &'v Value)>,
    mut write: impl FnMut(&mut Vec<u8>, &str, &Value),
) {
    out.push(b'{');
    for (i, (key, value)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write(out, key, value);
    }
    out.push(b'}');
}

/// An object whose members are defined by `def_of` (unknown members written unchanged).
fn write_object<'a>(
    out: &mut Vec<u8>,
    object: &serde_json::Map<String, Value>,
    def_of: impl Fn(&str) -> Option<&'a AttributeDef>,
) {
    let members = object.iter().map(|(key, value)| (key.as_str(), value));
    write_members(out, members, |out, key, value| match def_of(key) {
        Some(def) => write_folded(out, def, value),
        None => write_value(out, value),
    });
}

/// `value` as an instance of `def`, folded (each element, for a multi-valued attribute).
fn write_folded(out: &mut Vec<u8>, def: &AttributeDef, value: &Value) {
    match value {
        Value::String(text) if !def.case_exact && def.ty != AttrType::Complex => {
            write_string(&folded(text), out);
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_folded(out, def, item);
            }
            out.push(b']');
        }
        Value::Object(object) if def.ty == AttrType::Complex => {
            write_object(out, object, |key| def.sub_attribute(key));
        }
        other => write_value(out, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
    use serde_json::json;

    /// The folded copy, read back as a tree.
    fn fold_doc(resource: &ResourceTypeDef, doc: &Doc) -> Value {
        serde_json::from_str(FoldedDoc::of(resource, doc, None).text()).unwrap()
    }

    fn doc(value: Value) -> Doc {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    #[test]
    fn folding_is_to_lowercase_whether_or_not_it_copies() {
        for (text, copies) in [
            ("", false),
            ("a@b.co", false),
            ("user-00042", false),
            ("A@B.CO", true),
            ("mixedCase", true),
            ("ÄNNE", true),
            ("änne", true),
            ("straße", true),
            ("ΣΑΣ", true),
        ] {
            let out = folded(text);
            assert_eq!(out, text.to_lowercase(), "{text}");
            assert_eq!(fold(text), text.to_lowercase(), "{text}");
            assert_eq!(matches!(out, std::borrow::Cow::Owned(_)), copies, "{text}");
        }
    }

    #[test]
    fn case_insensitive_strings_are_folded_and_the_rest_is_kept() {
        let user = doc(json!({
            "userName": "ÄNNE",
            "name": {"familyName": "ÖSTER", "givenName": "Änne"},
            "emails": [{"value": "Ä@X.DE", "type": "Work", "primary": true}],
            "active": true,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "FORSCHUNG",
                "manager": {"value": "ID-ABC"}
            },
            "urn:omni:params:1.0:UserAttribute": {"Custom": "KeepMe"},
            "unknownKey": "KEEP",
            "displayName": "Ä \"Q\" \\ \n\u{1}",
            "phoneNumbers": [],
            "x509Certificates": [{"value": "AbC"}, {"value": null}]
        }));
        let folded = fold_doc(&USER_RESOURCE, &user);
        assert_eq!(folded["userName"], "änne");
        assert_eq!(folded["name"]["familyName"], "öster");
        assert_eq!(folded["emails"][0]["value"], "ä@x.de");
        assert_eq!(folded["emails"][0]["type"], "work");
        assert_eq!(folded["emails"][0]["primary"], true);
        assert_eq!(folded["active"], true);
        let enterprise = &folded["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
        assert_eq!(enterprise["department"], "forschung");
        // Organization-defined attributes compare exactly; unknown keys are left alone.
        assert_eq!(
            folded["urn:omni:params:1.0:UserAttribute"]["Custom"],
            "KeepMe"
        );
        assert_eq!(folded["unknownKey"], "KEEP");
        // Written as serde_json writes strings: whatever needs escaping reads back the same.
        assert_eq!(folded["displayName"], "ä \"q\" \\ \n\u{1}");
        assert_eq!(folded["phoneNumbers"], json!([]));
        assert_eq!(
            folded["x509Certificates"],
            json!([{"value": "abc"}, {"value": null}])
        );
    }

    #[test]
    fn case_exact_attributes_keep_their_case() {
        let group = doc(json!({"displayName": "ÄRZTE", "externalId": "Ext-1"}));
        let folded = fold_doc(&GROUP_RESOURCE, &group);
        assert_eq!(folded["displayName"], "ärzte");
        assert_eq!(folded["externalId"], "Ext-1", "externalId is caseExact");
    }
}
