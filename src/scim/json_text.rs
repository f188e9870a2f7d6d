//! Reading and writing JSON text without building a tree: an object's top-level members as
//! borrowed text, and a value copied compactly. For resources rendered straight from their
//! stored text (`user_text`).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// An object's members in the order written: each name (borrowed unless it has escapes) and
/// its value's text as written.
pub struct Members<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

/// The members of the JSON object `text`; an error when it is not an object.
pub fn members(text: &str) -> Result<Members<'_>, serde_json::Error> {
    serde_json::from_str(text)
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(Name(name)) = map.next_key()? {
                    members.push((name, map.next_value()?));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// The JSON value `text` (valid JSON) as a string, borrowed unless it had to be unescaped;
/// `None` when the value is not a string.
pub fn string_value(text: &str) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Name<'_>>(text).ok().map(|Name(s)| s)
}

/// A member name (or any string): borrowed from the text unless it had to be unescaped.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(name)))
            }
            fn visit_str<E>(self, name: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(name.to_owned())))
            }
            fn visit_string<E>(self, name: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(name)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// Appends the JSON value `text` (valid JSON) without its white space outside strings, as
/// `serde_json` writes JSON: Postgres's `jsonb` output has a space after every `:` and `,`.
pub fn write_compact(text: &str, out: &mut Vec<u8>) {
    // Byte by byte: skipping eight bytes at a time where none is special (as `find_escape`
    // does) measured slower here, inside strings and out: jsonb's text has a space or a
    // quote every few bytes, and a user's strings are short.
    let bytes = text.as_bytes();
    let (mut in_string, mut escaped, mut start) = (false, false, 0);
    for (i, &byte) in bytes.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if byte == b'"' {
            in_string = true;
        } else if matches!(byte, b' ' | b'\n' | b'\r' | b'\t') {
            out.extend_from_slice(&bytes[start..i]);
            start = i + 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `s` as a JSON string, escaped as `serde_json` escapes it: `"`, `\` and the
/// control characters, with the short forms where JSON has them.
pub fn write_string(s: &str, out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_escaped(s, out);
    out.push(b'"');
}

/// Appends `s` escaped as [`write_string`] does, without the quotes: one part of a string
/// written in several.
pub fn write_escaped(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = find_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        let byte = bytes[i];
        match ESCAPE[usize::from(byte)] {
            b'u' => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
            }
            escape => {
                out.push(b'\\');
                out.push(escape);
            }
        }
    }
    out.extend_from_slice(&bytes[start..]);
}

/// The place of the first byte at or after `from` that a JSON string must escape (a quote, a
/// backslash or a control character), looking at eight bytes at a time while none can be:
/// most text has none, and a page of users escapes every name and string it writes. Each
/// such byte is ASCII, so text split there splits between characters.
pub fn find_escape(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        if let Some(word) = bytes[i..].first_chunk::<8>()
            && !may_need_escape(u64::from_le_bytes(*word))
        {
            i += 8;
            continue;
        }
        if ESCAPE[usize::from(bytes[i])] != 0 {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Whether any of the eight bytes of `word` may be a quote, a backslash or below 0x20: never
/// false when one is (a borrow can only add a false alarm, in a byte after a true one, and the
/// caller then looks at the bytes one by one).
fn may_need_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte's high bit ends up set where it is below `n` (and not itself >= 0x80).
    let below = |word: u64, n: u64| word.wrapping_sub(ONES * n) & !word & HIGH;
    let control = below(word, 0x20);
    let quote = below(word ^ (ONES * u64::from(b'"')), 1);
    let backslash = below(word ^ (ONES * u64::from(b'\\')), 1);
    control | quote | backslash != 0
}

/// How each byte is escaped in a JSON string: 0 not at all, `u` as `\u00XX`, else after a
/// backslash.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Whether the JSON value `text` is `null` or an empty object: an unassigned extension
/// (RFC 7643 §2.5).
pub fn is_null_or_empty_object(text: &str) -> bool {
    let text = text.trim();
    text == "null"
        || text
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
            .is_some_and(|inside| inside.trim().is_empty())
}

/// Whether the JSON value `text` is an array with at least one element.
pub fn is_non_empty_array(text: &str) -> bool {
    text.trim()
        .strip_prefix('[')
        .is_some_and(|rest| !rest.trim_start().starts_with(']'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_value_is_borrowed_unless_escaped_and_other_values_are_none() {
        let cases: [(&str, Option<&str>, bool); 6] = [
            (r#""a@example.com""#, Some("a@example.com"), true),
            (r#""a\"b@example.com""#, Some("a\"b@example.com"), false),
            (r#""caf\u00e9""#, Some("café"), false),
            ("12", None, false),
            ("null", None, false),
            (r#"{"a": "b"}"#, None, false),
        ];
        for (text, want, borrowed) in cases {
            let got = string_value(text);
            assert_eq!(got.as_deref(), want, "{text}");
            assert_eq!(matches!(got, Some(Cow::Borrowed(_))), borrowed, "{text}");
        }
    }

    #[test]
    fn members_borrow_their_names_and_values_from_the_text() {
        let text = r#"{"b": [1, 2], "a\u00e9": {"x": "y"}, "c":null}"#;
        let Members(members) = members(text).unwrap();
        let got: Vec<(&str, &str, bool)> = members
            .iter()
            .map(|(name, value)| (name.as_ref(), value.get(), matches!(name, Cow::Borrowed(_))))
            .collect();
        assert_eq!(
            got,
            [
                ("b", "[1, 2]", true),
                ("aé", r#"{"x": "y"}"#, false),
                ("c", "null", true)
            ]
        );
    }

    #[test]
    fn only_an_object_has_members() {
        for text in ["[]", "1", r#""a""#, "null"] {
            assert!(members(text).is_err(), "{text}");
        }
    }

    #[test]
    fn compact_copies_leave_out_white_space_outside_strings_only() {
        let cases = [
            (
                r#"{"a": 1, "b": [true, null]}"#,
                r#"{"a":1,"b":[true,null]}"#,
            ),
            (r#"{"a b": "c, d: e"}"#, r#"{"a b":"c, d: e"}"#),
            (r#""quote \" then space ""#, r#""quote \" then space ""#),
            (r#""backslash \\" , 2"#, r#""backslash \\",2"#),
            ("[\n\t1 ,\r\n2 ]", "[1,2]"),
            (r#"{"a":1}"#, r#"{"a":1}"#),
            (
                r#"{"givenName": "Bench", "familyName": "User1234567890"}"#,
                r#"{"givenName":"Bench","familyName":"User1234567890"}"#,
            ),
            (
                r#"["0123456789\"abcdef   \\", "ééééééé\\\"x y", 12345678901234567890]"#,
                r#"["0123456789\"abcdef   \\","ééééééé\\\"x y",12345678901234567890]"#,
            ),
        ];
        for (text, want) in cases {
            let mut out = Vec::new();
            write_compact(text, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{text}");
        }
        // Against serde_json's own compact text, for values whose parts fall at every place of
        // a word.
        for pad in 0..9 {
            let value = serde_json::json!({
                "k": "x".repeat(pad),
                "a \"quoted\" name": ["e\\s c", pad, {"n": null, "t": "\u{1}é"}],
            });
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            let mut out = Vec::new();
            write_compact(&pretty, &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                value.to_string(),
                "{pretty}"
            );
        }
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let all_ascii: String = (0u8..=0x7f).map(char::from).collect();
        for s in [
            "",
            "plain",
            "é ü 😀",
            "a\"b\\c/d",
            "\u{2028}",
            all_ascii.as_str(),
            "long plain text, longer than a word or two",
            "0123456\"89abcdef\\0123456\u{1f}89abcdef\n",
            "éééé\tüüüü\u{7f}😀😀😀\"",
        ] {
            let mut out = Vec::new();
            write_string(s, &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap()
            );
        }
        // Each byte that needs escaping, at every place of the first three words.
        for byte in (0u8..0x20).chain([b'"', b'\\']) {
            for at in 0..24 {
                let mut s = "x".repeat(24);
                s.replace_range(at..=at, &char::from(byte).to_string());
                let mut out = Vec::new();
                write_string(&s, &mut out);
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    serde_json::to_string(&s).unwrap(),
                    "{byte:#x} at {at}"
                );
            }
        }
    }

    #[test]
    fn unassigned_and_non_empty_values_are_told_from_their_text() {
        let cases = [
            ("null", true, false),
            ("{}", true, false),
            ("{ }", true, false),
            (r#"{"a": 1}"#, false, false),
            ("[]", false, false),
            ("[ ]", false, false),
            ("[1]", false, true),
            (r#"[{"value": "a"}]"#, false, true),
            (r#""{}""#, false, false),
        ];
        for (text, unassigned, non_empty_array) in cases {
            assert_eq!(is_null_or_empty_object(text), unassigned, "{text}");
            assert_eq!(is_non_empty_array(text), non_empty_array, "{text}");
        }
    }
}
