//! Reading and writing JSON text without building a tree: an object's top-level members,
//! checked and copied compactly in one pass, and strings escaped as `serde_json` escapes
//! them. For resources rendered straight from their stored text (`user_text`).

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{Deserializer, Visitor};

/// An object's members read in one pass that also checks the text and copies each value
/// compactly: each name (borrowed unless it has escapes) and where its value's compact text
/// is in the buffer given to [`compact_members`].
pub type CompactMembers<'a> = Vec<(Cow<'a, str>, Range<usize>)>;

/// The members of the JSON object `text`, each value appended to `values` without its white
/// space outside strings (as [`write_compact`] writes it); an error when `text` is not one
/// JSON object (RFC 8259 grammar; nesting deeper than serde_json allows is refused as
/// serde_json refuses it).
///
/// One pass instead of serde_json's members and a compact copy of each value: on a page of
/// users those two were about half of the server's instructions.
pub fn compact_members<'a>(
    text: &'a str,
    values: &mut String,
) -> Result<CompactMembers<'a>, serde_json::Error> {
    members::<false>(text, values)
}

/// The members of `text`, JSON that the database checked as it stored it (Postgres's `json`
/// and `jsonb` types), as [`compact_members`] reads them: the same members and the same
/// compact copies. Only the top level is followed; each value's end is found by its strings
/// and brackets, without checking the grammar inside it (the database did), which cost about
/// a quarter of the server's instructions for a page of users. An error when `text` is not
/// one object.
pub fn checked_members<'a>(
    text: &'a str,
    values: &mut String,
) -> Result<CompactMembers<'a>, serde_json::Error> {
    members::<true>(text, values)
}

/// [`compact_members`], or [`checked_members`] when `CHECKED`.
fn members<'a, const CHECKED: bool>(
    text: &'a str,
    values: &mut String,
) -> Result<CompactMembers<'a>, serde_json::Error> {
    let mut scan = Scan::new(text);
    values.reserve(text.len());
    scan.white_space();
    scan.expect(b'{')?;
    let mut members = Vec::with_capacity(16);
    scan.white_space();
    if scan.peek() == Some(b'}') {
        scan.at += 1;
    } else {
        loop {
            let name = if CHECKED {
                if scan.peek() != Some(b'"') {
                    return Err(scan.error("expected a member name"));
                }
                let from = scan.at;
                scan.skip_string()?;
                from..scan.at
            } else {
                scan.string_range()?
            };
            let name = member_name(&text[name])?;
            scan.white_space();
            scan.expect(b':')?;
            scan.white_space();
            let (start, from) = (values.len(), scan.at);
            scan.spaced = false;
            if CHECKED {
                scan.skip_value()?;
            } else {
                // Checked first without copying: a value with no white space in it (every
                // value scimd writes) is then copied whole, where copying it part by part as
                // it is checked cost about a third of this function.
                scan.value(&mut Unwritten, 1)?;
            }
            if !scan.spaced {
                values.push_str(&text[from..scan.at]);
            } else if CHECKED {
                write_compact(&text[from..scan.at], values);
            } else {
                scan.at = from;
                scan.value(values, 1)?;
            }
            members.push((name, start..values.len()));
            scan.white_space();
            match scan.next()? {
                b',' => scan.white_space(),
                b'}' => break,
                _ => return Err(scan.error("expected `,` or `}`")),
            }
        }
    }
    scan.end()?;
    Ok(members)
}

/// The pairs of a JSON array of `[id, name]` arrays: a user's groups as its row keeps them
/// (`users.member_of`). Read here rather than by serde, whose machinery for a sequence of
/// tuples cost about 1,400 instructions per user of a page. Any other shape is an error.
pub fn id_name_pairs(text: &str) -> Result<Vec<(uuid::Uuid, String)>, serde_json::Error> {
    let mut scan = Scan::new(text);
    let mut pairs = Vec::new();
    scan.white_space();
    scan.expect(b'[')?;
    scan.white_space();
    if scan.peek() == Some(b']') {
        scan.at += 1;
    } else {
        loop {
            scan.expect(b'[')?;
            scan.white_space();
            let id = scan.string_range()?;
            let id = uuid::Uuid::try_parse(&text[id.start + 1..id.end - 1])
                .map_err(|_| scan.error("expected a group id"))?;
            scan.white_space();
            scan.expect(b',')?;
            scan.white_space();
            let name = scan.string_range()?;
            let name = member_name(&text[name])?.into_owned();
            scan.white_space();
            scan.expect(b']')?;
            pairs.push((id, name));
            scan.white_space();
            match scan.next()? {
                b',' => scan.white_space(),
                b']' => break,
                _ => return Err(scan.error("expected `,` or `]`")),
            }
        }
    }
    scan.end()?;
    Ok(pairs)
}

/// A member name's text (with its quotes), unescaped only when it has escapes.
fn member_name(quoted: &str) -> Result<Cow<'_, str>, serde_json::Error> {
    if quoted.as_bytes().contains(&b'\\') {
        serde_json::from_str::<String>(quoted).map(Cow::Owned)
    } else {
        Ok(Cow::Borrowed(&quoted[1..quoted.len() - 1]))
    }
}

/// serde_json's limit on nesting: 127 levels, the outer object one of them.
const MAX_DEPTH: usize = 127;

/// A position in JSON text being checked and copied. Every place it splits the text at is
/// an ASCII byte (a quote, a bracket, a comma, a colon, white space, the end of a literal or
/// a number), so each part it copies is text of its own.
struct Scan<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// Whether white space was skipped since this was last cleared.
    spaced: bool,
}

/// Where [`Scan::value`] copies the parts of a value it checks.
trait Copied {
    fn part(&mut self, part: &str);
    fn byte(&mut self, byte: u8);
}

impl Copied for String {
    fn part(&mut self, part: &str) {
        self.push_str(part);
    }
    fn byte(&mut self, byte: u8) {
        self.push(char::from(byte));
    }
}

/// A check that copies nothing.
struct Unwritten;

impl Copied for Unwritten {
    fn part(&mut self, _: &str) {}
    fn byte(&mut self, _: u8) {}
}

impl<'a> Scan<'a> {
    fn new(text: &'a str) -> Scan<'a> {
        Scan {
            text,
            bytes: text.as_bytes(),
            at: 0,
            spaced: false,
        }
    }

    /// Only white space may follow the value read.
    fn end(&mut self) -> Result<(), serde_json::Error> {
        self.white_space();
        if self.at < self.bytes.len() {
            return Err(self.error("trailing characters"));
        }
        Ok(())
    }

    fn error(&self, what: &str) -> serde_json::Error {
        <serde_json::Error as serde::de::Error>::custom(format_args!(
            "{what} at byte {} of a stored document",
            self.at
        ))
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Result<u8, serde_json::Error> {
        let byte = self.peek().ok_or_else(|| self.error("unexpected end"))?;
        self.at += 1;
        Ok(byte)
    }

    fn expect(&mut self, want: u8) -> Result<(), serde_json::Error> {
        if self.peek() == Some(want) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error("unexpected character"))
        }
    }

    fn white_space(&mut self) {
        let start = self.at;
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
        self.spaced |= self.at != start;
    }

    /// The range of the string starting here, quotes included, checked: no raw control
    /// character, and only JSON's escapes.
    fn string_range(&mut self) -> Result<Range<usize>, serde_json::Error> {
        let start = self.at;
        self.expect(b'"')?;
        // Byte by byte: a stored document's strings are short, and looking at eight bytes at
        // a time (`find_escape`) cost more than it saved on them.
        let bytes = self.bytes;
        let mut i = self.at;
        while let Some(&byte) = bytes.get(i) {
            i += 1;
            match byte {
                b'"' => {
                    self.at = i;
                    return Ok(start..i);
                }
                b'\\' => {
                    self.at = i;
                    self.escape()?;
                    i = self.at;
                }
                0..0x20 => {
                    self.at = i - 1;
                    return Err(self.error("control character in a string"));
                }
                _ => {}
            }
        }
        self.at = i;
        Err(self.error("unterminated string"))
    }

    /// The rest of an escape, after its backslash: one of JSON's (RFC 8259 §7).
    fn escape(&mut self) -> Result<(), serde_json::Error> {
        match self.next()? {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(()),
            b'u' => {
                let hex = self.bytes.get(self.at..self.at + 4);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return Err(self.error("invalid \\u escape"));
                }
                self.at += 4;
                Ok(())
            }
            _ => Err(self.error("invalid escape")),
        }
    }

    /// Checks the value starting here and appends it to `out` without white space.
    fn value(&mut self, out: &mut impl Copied, depth: usize) -> Result<(), serde_json::Error> {
        let start = self.at;
        match self.peek() {
            Some(b'"') => {
                let range = self.string_range()?;
                out.part(&self.text[range]);
                return Ok(());
            }
            Some(open @ (b'{' | b'[')) => {
                if depth >= MAX_DEPTH {
                    return Err(self.error("recursion limit exceeded"));
                }
                let close = if open == b'{' { b'}' } else { b']' };
                self.at += 1;
                out.byte(open);
                self.white_space();
                if self.peek() == Some(close) {
                    self.at += 1;
                    out.byte(close);
                    return Ok(());
                }
                loop {
                    if open == b'{' {
                        let name = self.string_range()?;
                        out.part(&self.text[name]);
                        self.white_space();
                        self.expect(b':')?;
                        out.byte(b':');
                        self.white_space();
                    }
                    self.value(out, depth + 1)?;
                    self.white_space();
                    match self.next()? {
                        b',' => {
                            out.byte(b',');
                            self.white_space();
                        }
                        byte if byte == close => {
                            out.byte(close);
                            return Ok(());
                        }
                        _ => return Err(self.error("expected `,` or the end of a value")),
                    }
                }
            }
            Some(b't') => self.literal(b"true")?,
            Some(b'f') => self.literal(b"false")?,
            Some(b'n') => self.literal(b"null")?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return Err(self.error("expected a value")),
        }
        // A literal or a number: copied as written.
        out.part(&self.text[start..self.at]);
        Ok(())
    }

    /// Moves past the string starting here (at its quote), found by its closing quote alone.
    fn skip_string(&mut self) -> Result<(), serde_json::Error> {
        let mut i = self.at + 1;
        while let Some(rest) = self.bytes.get(i..) {
            match memchr::memchr2(b'"', b'\\', rest) {
                Some(j) if rest[j] == b'"' => {
                    self.at = i + j + 1;
                    return Ok(());
                }
                // An escape: its next byte is never the end.
                Some(j) => i += j + 2,
                None => break,
            }
        }
        self.at = self.bytes.len();
        Err(self.error("unterminated string"))
    }

    /// Moves past the value starting here, found by its strings and brackets (or, for a
    /// number or a literal, by what ends it), noting white space outside its strings.
    fn skip_value(&mut self) -> Result<(), serde_json::Error> {
        let bytes = self.bytes;
        match self.peek() {
            Some(b'"') => self.skip_string(),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                while let Some(&byte) = bytes.get(self.at) {
                    match byte {
                        b'"' => {
                            self.skip_string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Ok(());
                            }
                        }
                        b' ' | b'\n' | b'\r' | b'\t' => self.spaced = true,
                        _ => {}
                    }
                    self.at += 1;
                }
                Err(self.error("unexpected end"))
            }
            Some(_) => {
                let start = self.at;
                while let Some(&byte) = bytes.get(self.at) {
                    if matches!(byte, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                        break;
                    }
                    self.at += 1;
                }
                if self.at == start {
                    return Err(self.error("expected a value"));
                }
                Ok(())
            }
            None => Err(self.error("unexpected end")),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), serde_json::Error> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(self.error("expected a value"))
        }
    }

    /// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Result<(), serde_json::Error> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.required_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.required_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn required_digits(&mut self) -> Result<(), serde_json::Error> {
        let start = self.at;
        self.digits();
        if self.at == start {
            Err(self.error("invalid number"))
        } else {
            Ok(())
        }
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
/// [`checked_members`]' copy of a value with white space, and the tests' reference for
/// [`compact_members`]'s copies, written the other way round (it only skips white space,
/// where `compact_members` follows the grammar).
pub fn write_compact(text: &str, out: &mut String) {
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
            // Split at ASCII white space only: each part is text of its own.
            out.push_str(&text[start..i]);
            start = i + 1;
        }
    }
    out.push_str(&text[start..]);
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

    /// `compact_members` of `text`, as (name, compact value, whether the name is borrowed).
    fn compact(text: &str) -> Result<Vec<(String, String, bool)>, serde_json::Error> {
        read_with(compact_members, text)
    }

    fn read_with(
        read: for<'a> fn(&'a str, &mut String) -> Result<CompactMembers<'a>, serde_json::Error>,
        text: &str,
    ) -> Result<Vec<(String, String, bool)>, serde_json::Error> {
        let mut values = String::new();
        let members = read(text, &mut values)?;
        Ok(members
            .into_iter()
            .map(|(name, range)| {
                let value = values[range].to_string();
                (name.to_string(), value, matches!(name, Cow::Borrowed(_)))
            })
            .collect())
    }

    #[test]
    fn id_name_pairs_read_as_serde_reads_them() {
        let (a, b) = (
            "01a24de2-9e65-745a-a591-21a3879ffecc",
            "01a24de3-1b7f-72af-a2dd-a57c4ea783ca",
        );
        let pairs = [
            "[]".to_string(),
            " [ ] ".to_string(),
            format!(r#"[["{a}","Admins"]]"#),
            format!(r#"[["{a}", "Admins"], ["{b}", "a \"quoted\" \\ n\u00e9"]]"#),
            format!("[ [ \"{a}\" ,\n\"x\" ] ]"),
        ];
        for text in &pairs {
            let want: Vec<(uuid::Uuid, String)> = serde_json::from_str(text).unwrap();
            assert_eq!(id_name_pairs(text).unwrap(), want, "{text}");
        }
        let not_pairs = [
            "".to_string(),
            "{}".to_string(),
            "[1]".to_string(),
            format!(r#"[["{a}"]]"#),
            format!(r#"[["{a}", 1]]"#),
            r#"[["not an id", "x"]]"#.to_string(),
            format!(r#"[["{a}", "x"]"#),
            format!(r#"[["{a}", "x"]] []"#),
            format!(r#"[["{a}", "x", "y"]]"#),
        ];
        for text in &not_pairs {
            assert!(id_name_pairs(text).is_err(), "{text}");
            assert!(serde_json::from_str::<Vec<(uuid::Uuid, String)>>(text).is_err());
        }
    }

    #[test]
    fn text_the_database_checked_reads_as_text_checked_in_full() {
        let value = serde_json::json!({
            "userName": "a@b.co",
            "a \"quoted\" \\ name": "ends in a backslash \\",
            "brackets": "{[ in ]} a string, with: commas",
            "nested": {"list": [1, -2.5e3, true, false, null, [], {}, [[{"x": "]"}]]]},
            "empty": {},
            "none": [],
            "n": 0,
            "escapes": "tab\t nl\n \u{1} é \"",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "x"},
        });
        let mut texts = vec![
            value.to_string(),
            serde_json::to_string_pretty(&value).unwrap(),
            "{}".to_string(),
            " { } ".to_string(),
            r#"{"a":1}"#.to_string(),
            "{\"a\" :\n[ 1 ,2 ] ,\t\"b\":\"\\\\\" }".to_string(),
        ];
        // As Postgres's `jsonb` writes it: a space after every `:` and `,`.
        texts.push(
            value
                .to_string()
                .replace(r#"":"#, r#"": "#)
                .replace(",\"", ", \""),
        );
        for text in &texts {
            let full = compact(text).unwrap();
            assert_eq!(read_with(checked_members, text).unwrap(), full, "{text}");
        }
        for not_one_object in [
            "",
            "[]",
            "null",
            r#""a""#,
            r#"{"a": 1"#,
            r#"{"a": 1} {}"#,
            r#"{"a": "x}"#,
            "{1: 2}",
        ] {
            assert!(
                read_with(checked_members, not_one_object).is_err(),
                "{not_one_object}"
            );
        }
    }

    #[test]
    fn members_come_in_the_order_written_with_names_borrowed_unless_escaped() {
        let text = r#" {"b": [1, 2], "a\u00e9": {"x": "y"}, "c":null, "b": -0.5e+3 } "#;
        let got = compact(text).unwrap();
        let want = [
            ("b", "[1,2]", true),
            ("aé", r#"{"x":"y"}"#, false),
            ("c", "null", true),
            ("b", "-0.5e+3", true),
        ];
        let want: Vec<(String, String, bool)> = want
            .iter()
            .map(|(n, v, b)| (n.to_string(), v.to_string(), *b))
            .collect();
        assert_eq!(got, want);
        assert_eq!(compact("{}").unwrap(), []);
        assert_eq!(compact(" { \n } ").unwrap(), []);
    }

    #[test]
    fn only_text_that_is_one_json_object_has_members() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(126), "]".repeat(126));
        let too_deep = format!("{{\"a\":{}1{}}}", "[".repeat(127), "]".repeat(127));
        let refused = [
            "",
            " ",
            "[]",
            "1",
            r#""a""#,
            "null",
            "{",
            "}",
            r#"{"a"}"#,
            r#"{"a" 1}"#,
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a":1} {}"#,
            r#"{"a":1}x"#,
            r#"{a:1}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":True}"#,
            r#"{"a":01}"#,
            r#"{"a":-}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":1e+}"#,
            r#"{"a":+1}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":[,1]}"#,
            r#"{"a":[1 2]}"#,
            r#"{"a":{"b"}}"#,
            r#"{"a":{"b":1,}}"#,
            r#"{"a":"\q"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"\u12g4"}"#,
            "{\"a\":\"\u{1}\"}",
            "{\"a\":\"tab\there\"}",
            r#"{"a":"open}"#,
            r#"{"a\":1}"#,
            r#"{"a":[}"#,
            r#"{"a":[1}"#,
            &too_deep,
        ];
        for text in refused {
            assert!(compact(text).is_err(), "{text}");
            // The same texts serde_json refuses as an object.
            assert!(
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text).is_err(),
                "{text}"
            );
        }
        let accepted = [
            r#"{"a":0,"b":-0,"c":10.25,"d":1E5,"e":1e-7,"f":-12.5E+2}"#,
            r#"{"a":"\"\\\/\b\f\n\r\t\u00E9\ud83d\ude00"}"#,
            r#"{"a":[[],{},[{}],{"b":[]}],"c":true,"d":false,"e":null}"#,
            "{\"é\":\"😀\"}",
            &deep,
        ];
        for text in accepted {
            assert!(compact(text).is_ok(), "{text}");
            assert!(
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text).is_ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn a_compact_copy_is_what_skipping_white_space_outside_strings_gives() {
        // Pretty-printed documents whose parts fall at every place of a word, and jsonb's
        // spacing.
        let mut texts: Vec<String> = (0..9)
            .map(|pad| {
                serde_json::to_string_pretty(&serde_json::json!({
                    "k": "x".repeat(pad),
                    "a \"quoted\" name": ["e\\s c", pad, {"n": null, "t": "\u{1}é"}],
                    "nested": {"deeper": [{"x": [1.5, -2, "a, b: c"]}], "e": {}},
                }))
                .unwrap()
            })
            .collect();
        texts.push(r#"{"name": {"givenName": "Bench", "familyName": "User0"}, "active": true, "emails": [{"type": "work", "value": "u@b.co", "primary": true}]}"#.into());
        for text in texts {
            let members = compact(&text).unwrap();
            let raw: std::collections::BTreeMap<String, &serde_json::value::RawValue> =
                serde_json::from_str(&text).unwrap();
            assert_eq!(members.len(), raw.len(), "{text}");
            for (name, value, _) in &members {
                let mut want = String::new();
                write_compact(raw[name].get(), &mut want);
                assert_eq!(value, &want, "{text}");
            }
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
            let mut out = String::new();
            write_compact(text, &mut out);
            assert_eq!(out, want, "{text}");
        }
        // Against serde_json's own compact text, for values whose parts fall at every place of
        // a word.
        for pad in 0..9 {
            let value = serde_json::json!({
                "k": "x".repeat(pad),
                "a \"quoted\" name": ["e\\s c", pad, {"n": null, "t": "\u{1}é"}],
            });
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            let mut out = String::new();
            write_compact(&pretty, &mut out);
            assert_eq!(out, value.to_string(), "{pretty}");
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
