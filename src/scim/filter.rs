//! SCIM filter expressions (RFC 7644 §3.4.2.2): parsing, canonical printing, in-memory
//! evaluation against a resource held as a JSON object (`eval`), and the check that a filter
//! fits a resource type's schema (`check`).
//!
//! The parser is a hand-written recursive descent over the RFC's ABNF. Its recursion is
//! bounded by [`MAX_FILTER_DEPTH`] and its input by [`MAX_FILTER_LEN`], so hostile filters
//! fail fast with `invalidFilter` instead of exhausting the stack.

use std::fmt;
use std::str::FromStr;

use serde_json::Number;

use super::ScimError;
use super::path::AttrPath;

pub mod check;
mod eval;

/// Longest accepted filter, in bytes; longer → `invalidFilter`.
pub const MAX_FILTER_LEN: usize = 8192;
/// Deepest accepted nesting of parentheses, `not`, `[ ]` and logical operators.
///
/// A flat chain of one operator (`a or b or c ...`) is one level: the grammar reads it as a
/// list, and clients do send long `id eq ... or id eq ...` lists; their size is bounded by
/// [`MAX_FILTER_LEN`] instead.
pub const MAX_FILTER_DEPTH: usize = 32;

/// The attribute operators of RFC 7644 §3.4.2.2, Table 3 (`pr` is [`Filter::Present`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    const ALL: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];

    /// The operator's keyword in canonical (lower) case.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// RFC 7644 §3.4.2.2: "Attribute names and attribute operators used in filters are case
    /// insensitive."
    fn from_keyword(word: &str) -> Option<CompareOp> {
        Self::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `compValue = false / null / true / number / string` (RFC 7644 §3.4.2.2, JSON syntax).
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Str(String),
    Num(Number),
    Bool(bool),
    Null,
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Str(s) => {
                let quoted = serde_json::to_string(s).map_err(|_| fmt::Error)?;
                f.write_str(&quoted)
            }
            CompValue::Num(n) => write!(f, "{n}"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Null => f.write_str("null"),
        }
    }
}

/// A parsed filter (RFC 7644 §3.4.2.2).
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: CompValue,
    },
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `emails[type eq "work" and value co "@example.com"]`: the inner filter's paths are
    /// relative to each element (their `attr` is the sub-attribute name, schema None).
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

impl FromStr for Filter {
    type Err = ScimError;

    fn from_str(s: &str) -> Result<Filter, ScimError> {
        parse(s, false)
    }
}

/// Parses the `valFilter` of a PATCH value path (RFC 7644 §3.5.2): paths are plain
/// sub-attribute names and no further `[` may appear.
pub(crate) fn parse_value_filter(s: &str) -> Result<Filter, ScimError> {
    parse(s, true)
}

fn parse(s: &str, in_value_path: bool) -> Result<Filter, ScimError> {
    if s.len() > MAX_FILTER_LEN {
        return Err(ScimError::invalid_filter(format!(
            "filter is {} bytes long; at most {MAX_FILTER_LEN} are allowed",
            s.len()
        )));
    }
    let mut parser = Parser {
        src: s,
        pos: 0,
        depth: 0,
        in_value_path,
    };
    parser.skip_ws();
    if parser.at_end() {
        return Err(ScimError::invalid_filter("empty filter"));
    }
    let filter = parser.parse_or()?;
    parser.skip_ws();
    if !parser.at_end() {
        return Err(parser.unexpected("'and', 'or' or the end of the filter"));
    }
    Ok(filter)
}

/// Canonical text: lower-case keywords, single spaces, JSON-escaped strings, and parentheses
/// only where precedence (not > and > or, both left-associative) needs them, so that
/// parsing the output yields an equal [`Filter`].
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::Or(left, right) => {
                write!(f, "{left} or ")?;
                write_grouped(f, right, matches!(**right, Filter::Or(..)))
            }
            Filter::And(left, right) => {
                write_grouped(f, left, matches!(**left, Filter::Or(..)))?;
                f.write_str(" and ")?;
                write_grouped(
                    f,
                    right,
                    matches!(**right, Filter::Or(..) | Filter::And(..)),
                )
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

fn write_grouped(f: &mut fmt::Formatter<'_>, filter: &Filter, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({filter})")
    } else {
        write!(f, "{filter}")
    }
}

/// Characters that end a bare token (attribute path, operator, keyword, number).
fn is_delimiter(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'(' | b')' | b'[' | b']' | b'"')
}

struct Parser<'a> {
    src: &'a str,
    /// Byte offset; only ever advanced over ASCII bytes or whole tokens, so it always sits on
    /// a UTF-8 boundary.
    pos: usize,
    depth: usize,
    in_value_path: bool,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    /// RFC 7644 §3.4.2.2 separates tokens with one SP; runs of spaces and tabs are tolerated.
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn error_at(&self, pos: usize, msg: impl fmt::Display) -> ScimError {
        ScimError::invalid_filter(format!("{msg} at position {pos}"))
    }

    fn unexpected(&self, wanted: &str) -> ScimError {
        let rest = &self.src[self.pos..];
        let found: String = match rest.chars().next() {
            None => return self.error_at(self.pos, format_args!("expected {wanted}, found end")),
            Some(c @ ('(' | ')' | '[' | ']' | '"')) => c.to_string(),
            Some(_) => rest
                .chars()
                .take_while(|&c| !c.is_whitespace() && !"()[]\"".contains(c))
                .take(20)
                .collect(),
        };
        self.error_at(self.pos, format_args!("expected {wanted}, found '{found}'"))
    }

    fn enter(&mut self) -> Result<(), ScimError> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH {
            return Err(self.error_at(
                self.pos,
                format_args!("filter is nested deeper than {MAX_FILTER_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn expect(&mut self, byte: u8) -> Result<(), ScimError> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{}'", byte as char)))
        }
    }

    /// Reads a bare token up to whitespace or a delimiter (possibly empty).
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|b| !is_delimiter(b)) {
            self.pos += 1;
        }
        &self.src[start..self.pos]
    }

    /// Consumes a logical keyword (case-insensitive) if it comes next.
    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let saved = self.pos;
        self.skip_ws();
        if self.token().eq_ignore_ascii_case(keyword) {
            return true;
        }
        self.pos = saved;
        false
    }

    /// `or` binds loosest (RFC 7644 §3.4.2.2, Table 5 precedence) and is left-associative.
    fn parse_or(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.parse_and()?;
        let mut entered = false;
        while self.eat_keyword("or") {
            if !entered {
                self.enter()?;
                entered = true;
            }
            let right = self.parse_and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        if entered {
            self.leave();
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Filter, ScimError> {
        let mut left = self.parse_atom()?;
        let mut entered = false;
        while self.eat_keyword("and") {
            if !entered {
                self.enter()?;
                entered = true;
            }
            let right = self.parse_atom()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        if entered {
            self.leave();
        }
        Ok(left)
    }

    /// `"(" FILTER ")"`, `not "(" FILTER ")"`, `attrExp` or `valuePath`.
    fn parse_atom(&mut self) -> Result<Filter, ScimError> {
        self.skip_ws();
        if self.peek() == Some(b'(') {
            return self.parse_group();
        }
        let start = self.pos;
        let word = self.token();
        if word.is_empty() {
            return Err(self.unexpected("an attribute path, 'not' or '('"));
        }
        if word.eq_ignore_ascii_case("not") {
            let after = self.pos;
            self.skip_ws();
            if self.peek() == Some(b'(') {
                return Ok(Filter::Not(Box::new(self.parse_group()?)));
            }
            // Not followed by '(': the word is an attribute that happens to be named "not".
            self.pos = after;
        }
        let path = self.attr_path(word, start)?;
        if self.peek() == Some(b'[') {
            return self.parse_value_path(path, start);
        }
        let after_path = self.pos;
        self.skip_ws();
        let op_start = self.pos;
        let op_word = self.token();
        if self.pos == after_path || op_word.is_empty() {
            self.pos = op_start;
            return Err(self.unexpected("an operator"));
        }
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let Some(op) = CompareOp::from_keyword(op_word) else {
            if word.eq_ignore_ascii_case("not") {
                return Err(self.error_at(start, "'not' must be followed by '('"));
            }
            return Err(self.error_at(op_start, format_args!("unknown operator '{op_word}'")));
        };
        self.skip_ws();
        let value_start = self.pos;
        let value = self.comp_value()?;
        check_operand(op, &value).map_err(|msg| self.error_at(value_start, msg))?;
        Ok(Filter::Compare { path, op, value })
    }

    fn parse_group(&mut self) -> Result<Filter, ScimError> {
        self.pos += 1; // the '(' the caller saw
        self.enter()?;
        let inner = self.parse_or()?;
        self.expect(b')')?;
        self.leave();
        Ok(inner)
    }

    fn attr_path(&self, word: &str, start: usize) -> Result<AttrPath, ScimError> {
        let path = AttrPath::parse(word).map_err(|e| self.error_at(start, e.detail))?;
        // Inside `[...]` paths name sub-attributes of each element (RFC 7644 §3.4.2.2
        // valFilter), which cannot themselves be schema-qualified or complex.
        if self.in_value_path && (path.schema.is_some() || path.sub_attr.is_some()) {
            return Err(self.error_at(
                start,
                format_args!("'{word}' inside a value filter must be a plain sub-attribute name"),
            ));
        }
        Ok(path)
    }

    fn parse_value_path(&mut self, path: AttrPath, start: usize) -> Result<Filter, ScimError> {
        if self.in_value_path {
            return Err(self.error_at(self.pos, "nested '[' is not allowed in a value filter"));
        }
        if path.sub_attr.is_some() {
            return Err(self.error_at(
                start,
                "'[' must follow a multi-valued attribute, not a sub-attribute",
            ));
        }
        self.pos += 1; // '['
        self.enter()?;
        self.in_value_path = true;
        let filter = self.parse_or()?;
        self.expect(b']')?;
        self.in_value_path = false;
        self.leave();
        Ok(Filter::ValuePath {
            path,
            filter: Box::new(filter),
        })
    }

    /// `compValue`: a JSON string, number, `true`, `false` or `null` (keywords
    /// case-insensitive, like all filter keywords).
    fn comp_value(&mut self) -> Result<CompValue, ScimError> {
        let start = self.pos;
        if self.peek() == Some(b'"') {
            return self.string_literal();
        }
        let word = self.token();
        if word.is_empty() {
            return Err(self.unexpected("a comparison value"));
        }
        if word.eq_ignore_ascii_case("true") {
            Ok(CompValue::Bool(true))
        } else if word.eq_ignore_ascii_case("false") {
            Ok(CompValue::Bool(false))
        } else if word.eq_ignore_ascii_case("null") {
            Ok(CompValue::Null)
        } else {
            // serde_json enforces the RFC 8259 §6 number grammar (no leading zeros, no
            // trailing '.', no NaN) and rejects values out of f64 range.
            Number::from_str(word).map(CompValue::Num).map_err(|e| {
                if word.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
                    self.error_at(start, format_args!("invalid number '{word}' ({e})"))
                } else {
                    self.error_at(
                        start,
                        format_args!(
                            "invalid comparison value '{word}' (expected a quoted string, \
                             a number, true, false or null)"
                        ),
                    )
                }
            })
        }
    }

    /// A JSON string (RFC 8259 §7): find the closing quote, then let serde_json decode the
    /// escapes (including `\uXXXX` surrogate pairs) and reject raw control characters.
    fn string_literal(&mut self) -> Result<CompValue, ScimError> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let mut i = start + 1;
        loop {
            match bytes.get(i) {
                None => return Err(self.error_at(start, "unterminated string")),
                Some(b'\\') => i += 2,
                Some(b'"') => break,
                Some(_) => i += 1,
            }
        }
        let literal = &self.src[start..=i];
        let s: String = serde_json::from_str(literal)
            .map_err(|e| self.error_at(start, format_args!("invalid string {literal}: {e}")))?;
        self.pos = i + 1;
        Ok(CompValue::Str(s))
    }
}

/// The parse-time semantic checks: ordering needs something ordered, and the substring
/// operators only make sense on strings (RFC 7644 §3.4.2.2, Table 3).
fn check_operand(op: CompareOp, value: &CompValue) -> Result<(), String> {
    match (op, value) {
        (CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le, CompValue::Bool(_))
        | (CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le, CompValue::Null) => {
            Err(format!("'{op}' cannot compare against {value}"))
        }
        (CompareOp::Co | CompareOp::Sw | CompareOp::Ew, v) if !matches!(v, CompValue::Str(_)) => {
            Err(format!("'{op}' needs a string value, not {value}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
// A failing expectation is exactly how a test should report a bug.
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use crate::scim::{ENTERPRISE_USER_SCHEMA, ScimType};
    use proptest::prelude::*;
    use std::time::{Duration, Instant};

    fn parse(s: &str) -> Result<Filter, ScimError> {
        s.parse()
    }

    fn ap(s: &str) -> AttrPath {
        AttrPath::parse(s).expect("test path")
    }

    fn cmp(path: &str, op: CompareOp, value: CompValue) -> Filter {
        Filter::Compare {
            path: ap(path),
            op,
            value,
        }
    }

    fn s(v: &str) -> CompValue {
        CompValue::Str(v.to_string())
    }

    fn b(f: Filter) -> Box<Filter> {
        Box::new(f)
    }

    #[test]
    fn filters_print_in_canonical_form_and_reparse_to_the_same_tree() {
        let cases = [
            // Every operator, keywords in any case.
            (r#"userName eq "bjensen""#, r#"userName eq "bjensen""#),
            (r#"userName EQ "x""#, r#"userName eq "x""#),
            (r#"userName Eq "x""#, r#"userName eq "x""#),
            (r#"userName ne "x""#, r#"userName ne "x""#),
            (
                r#"name.familyName co "O'Malley""#,
                r#"name.familyName co "O'Malley""#,
            ),
            (r#"userName SW "J""#, r#"userName sw "J""#),
            (r#"userName ew "n""#, r#"userName ew "n""#),
            ("loginCount gt 10", "loginCount gt 10"),
            ("loginCount GE -1", "loginCount ge -1"),
            ("score lt 2.5e3", "score lt 2500.0"),
            ("score le 0.25", "score le 0.25"),
            ("title pr", "title pr"),
            ("title PR", "title pr"),
            ("active eq TRUE", "active eq true"),
            ("active ne False", "active ne false"),
            ("manager eq NULL", "manager eq null"),
            // RFC 7644 §3.4.2.2 example filters.
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
                r#"userName sw "J""#,
            ),
            (
                r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
                r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            ),
            (
                r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
                r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            ),
            (
                r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
                r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            ),
            (
                r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
                r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            ),
            (
                r#"title pr and userType eq "Employee""#,
                r#"title pr and userType eq "Employee""#,
            ),
            (
                r#"title pr or userType eq "Intern""#,
                r#"title pr or userType eq "Intern""#,
            ),
            (
                r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
                r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            ),
            (
                r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
                r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            ),
            (
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
                r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            ),
            (
                r#"userType eq "Employee" and (emails.type eq "work")"#,
                r#"userType eq "Employee" and emails.type eq "work""#,
            ),
            (
                r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
                r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            ),
            (
                r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
                r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            ),
            // Precedence and grouping: not > and > or, left-associative.
            ("a eq 1 or b eq 2 and c eq 3", "a eq 1 or b eq 2 and c eq 3"),
            (
                "(a eq 1 or b eq 2) and c eq 3",
                "(a eq 1 or b eq 2) and c eq 3",
            ),
            ("a pr and (b pr and c pr)", "a pr and (b pr and c pr)"),
            ("a pr or (b pr or c pr)", "a pr or (b pr or c pr)"),
            ("((a pr))", "a pr"),
            ("NOT (a pr) AND b pr", "not (a pr) and b pr"),
            ("not(a pr)", "not (a pr)"),
            ("not (not (a pr))", "not (not (a pr))"),
            // An attribute literally called "not".
            ("not pr", "not pr"),
            // Complex value filters.
            (
                r#"emails[not (type eq "work") or primary eq true]"#,
                r#"emails[not (type eq "work") or primary eq true]"#,
            ),
            (
                r#"emails[(type eq "work" or type eq "home") and value pr]"#,
                r#"emails[(type eq "work" or type eq "home") and value pr]"#,
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
            ),
            // Tolerated whitespace.
            ("  a  pr \t and\tb   pr  ", "a pr and b pr"),
            (r#"a eq"x""#, r#"a eq "x""#),
            // Escapes.
            (r#"a eq "q\"b\\s\/""#, r#"a eq "q\"b\\s/""#),
            (r#"a eq "\b\f\n\r\t""#, r#"a eq "\b\f\n\r\t""#),
            (r#"a eq "\u00e9\u20AC""#, r#"a eq "é€""#),
            (r#"a eq "\ud83d\ude00""#, r#"a eq "😀""#),
            (r#"a eq "é and ] ) [""#, r#"a eq "é and ] ) [""#),
        ];
        for (input, canonical) in cases {
            let filter = parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(filter.to_string(), canonical, "input {input:?}");
            assert_eq!(parse(canonical), Ok(filter), "input {input:?}");
        }
    }

    #[test]
    fn the_parser_builds_the_expected_trees() {
        let num = |n: i64| CompValue::Num(n.into());
        let cases = [
            (
                "a eq 1 or b eq 2 and c eq 3",
                Filter::Or(
                    b(cmp("a", CompareOp::Eq, num(1))),
                    b(Filter::And(
                        b(cmp("b", CompareOp::Eq, num(2))),
                        b(cmp("c", CompareOp::Eq, num(3))),
                    )),
                ),
            ),
            (
                "a pr or b pr or c pr",
                Filter::Or(
                    b(Filter::Or(
                        b(Filter::Present(ap("a"))),
                        b(Filter::Present(ap("b"))),
                    )),
                    b(Filter::Present(ap("c"))),
                ),
            ),
            (
                "not (a pr) and b pr",
                Filter::And(
                    b(Filter::Not(b(Filter::Present(ap("a"))))),
                    b(Filter::Present(ap("b"))),
                ),
            ),
            (
                r#"emails.value eq "x""#,
                cmp("emails.value", CompareOp::Eq, s("x")),
            ),
            (
                r#"emails[type eq "work"]"#,
                Filter::ValuePath {
                    path: ap("emails"),
                    filter: b(cmp("type", CompareOp::Eq, s("work"))),
                },
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "x""#,
                Filter::Compare {
                    path: AttrPath {
                        schema: Some(ENTERPRISE_USER_SCHEMA.to_string()),
                        attr: "department".to_string(),
                        sub_attr: None,
                    },
                    op: CompareOp::Eq,
                    value: s("x"),
                },
            ),
            ("x eq null", cmp("x", CompareOp::Eq, CompValue::Null)),
            (
                "x ne false",
                cmp("x", CompareOp::Ne, CompValue::Bool(false)),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse(input), Ok(expected), "input {input:?}");
        }
    }

    #[test]
    fn malformed_filters_are_invalid_filter_errors_naming_the_problem() {
        let cases = [
            ("", "empty filter"),
            ("   ", "empty filter"),
            ("userName", "expected an operator, found end"),
            ("userName eq", "expected a comparison value, found end"),
            (r#"userName xx "a""#, "unknown operator 'xx' at position 9"),
            (
                r#"userName eq "a" junk"#,
                "expected 'and', 'or' or the end of the filter, found 'junk' at position 16",
            ),
            (
                r#"userName eq "a" and"#,
                "expected an attribute path, 'not' or '(', found end",
            ),
            (
                r#"userName eq "unterminated"#,
                "unterminated string at position 12",
            ),
            (
                r#"userName eq bjensen"#,
                "invalid comparison value 'bjensen'",
            ),
            (r#"userName eq 01"#, "invalid number '01'"),
            (r#"userName eq 1."#, "invalid number '1.'"),
            (r#"userName eq +1"#, "invalid comparison value '+1'"),
            (r#"userName eq -"#, "invalid number '-'"),
            (r#"userName eq 1e999"#, "invalid number"),
            (r#"a eq "\x""#, "invalid string"),
            (r#"a eq "\ud83d""#, "invalid string"),
            ("a eq \"tab\there\"", "invalid string"),
            ("(a pr", "expected ')', found end"),
            ("a pr)", "found ')'"),
            ("()", "expected an attribute path, 'not' or '(', found ')'"),
            ("not a pr", "'not' must be followed by '('"),
            (r#"emails[type eq "work""#, "expected ']', found end"),
            ("emails[]", "found ']'"),
            ("emails[type[value pr]]", "nested '['"),
            (r#"emails[name.x eq "a"]"#, "plain sub-attribute name"),
            ("name.givenName[value pr]", "not a sub-attribute"),
            (r#"emails[type eq "work"].value eq "x""#, "found '.value'"),
            (
                "a.b.c pr",
                "invalid attribute name 'b.c' in path 'a.b.c' at position 0",
            ),
            ("1abc pr", "invalid attribute name '1abc'"),
            ("active gt true", "'gt' cannot compare against true"),
            ("manager le null", "'le' cannot compare against null"),
            ("loginCount co 1", "'co' needs a string value, not 1"),
            ("active sw false", "'sw' needs a string value"),
            ("x ew null", "'ew' needs a string value"),
            ("a pr andb pr", "found 'andb'"),
        ];
        for (input, needle) in cases {
            let err = parse(input).expect_err(input);
            assert_eq!(
                err.scim_type,
                Some(ScimType::InvalidFilter),
                "input {input:?}"
            );
            assert_eq!(err.status, 400);
            assert!(
                err.detail.contains(needle),
                "input {input:?}: detail {:?} lacks {needle:?}",
                err.detail
            );
        }
    }

    #[test]
    fn nesting_up_to_the_depth_limit_is_accepted_and_beyond_it_rejected() {
        let nested = |n: usize| format!("{}a pr{}", "(".repeat(n), ")".repeat(n));
        assert!(parse(&nested(MAX_FILTER_DEPTH)).is_ok());
        let err = parse(&nested(MAX_FILTER_DEPTH + 1)).expect_err("too deep");
        assert!(
            err.detail.contains("nested deeper than 32"),
            "{}",
            err.detail
        );

        let nots = |n: usize| format!("{}a pr{}", "not (".repeat(n), ")".repeat(n));
        assert!(parse(&nots(MAX_FILTER_DEPTH)).is_ok());
        assert!(parse(&nots(MAX_FILTER_DEPTH + 1)).is_err());
    }

    #[test]
    fn ten_thousand_nested_parentheses_fail_quickly_without_overflowing_the_stack() {
        let start = Instant::now();
        for input in [
            format!("{}a pr{}", "(".repeat(10_000), ")".repeat(10_000)),
            "(".repeat(4_000),
            "not (".repeat(1_500),
            format!("{}a pr", "a pr and (".repeat(800)),
        ] {
            let err = parse(&input).expect_err("must be rejected");
            assert_eq!(err.scim_type, Some(ScimType::InvalidFilter));
        }
        assert!(start.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn long_flat_or_chains_are_bounded_by_length_not_depth() {
        let chain = vec![r#"id eq "2819c223-7f76-453a-919d-413861904646""#; 150].join(" or ");
        assert!(chain.len() <= MAX_FILTER_LEN);
        assert!(parse(&chain).is_ok());

        // The longest possible chain still prints, compares and evaluates without
        // exhausting a test thread's stack (the tree is left-deep).
        let longest = vec!["a pr"; 1_000].join(" or ");
        let filter = parse(&longest).expect("a flat chain is one nesting level");
        assert_eq!(filter.to_string(), longest);
        assert!(!filter.matches(&serde_json::Map::new(), &|_| false));

        let too_long = format!(r#"userName eq "{}""#, "x".repeat(MAX_FILTER_LEN));
        let err = parse(&too_long).expect_err("too long");
        assert!(err.detail.contains("at most 8192"), "{}", err.detail);
    }

    fn leaf(relative: bool) -> impl Strategy<Value = Filter> {
        let paths: Vec<&'static str> = if relative {
            vec!["value", "type", "primary", "display"]
        } else {
            vec![
                "userName",
                "name.givenName",
                "emails.value",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                "urn:omni:params:1.0:UserAttribute:good_blob",
                "not",
            ]
        };
        let string_ops = prop::sample::select(CompareOp::ALL.to_vec());
        let equality = prop::sample::select(vec![CompareOp::Eq, CompareOp::Ne]);
        let ordering = prop::sample::select(vec![
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ]);
        let op_value = prop_oneof![
            (string_ops, any::<String>()).prop_map(|(op, v)| (op, CompValue::Str(v))),
            (ordering.clone(), any::<i64>()).prop_map(|(op, n)| (op, CompValue::Num(n.into()))),
            // Quarter steps are exact in binary, so they survive text without float_roundtrip.
            (ordering, -4_000i32..4_000).prop_map(|(op, q)| {
                let n = Number::from_f64(f64::from(q) / 4.0 + 0.25).unwrap_or_else(|| 0.into());
                (op, CompValue::Num(n))
            }),
            (equality.clone(), any::<bool>()).prop_map(|(op, v)| (op, CompValue::Bool(v))),
            equality.prop_map(|op| (op, CompValue::Null)),
        ];
        let path = prop::sample::select(paths).prop_map(ap);
        prop_oneof![
            path.clone().prop_map(Filter::Present),
            (path, op_value).prop_map(|(path, (op, value))| Filter::Compare { path, op, value }),
        ]
    }

    fn tree(leaves: impl Strategy<Value = Filter> + 'static) -> impl Strategy<Value = Filter> {
        leaves.prop_recursive(4, 24, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::And(b(l), b(r))),
                (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::Or(b(l), b(r))),
                inner.prop_map(|f| Filter::Not(b(f))),
            ]
        })
    }

    fn filter_strategy() -> impl Strategy<Value = Filter> {
        let value_path = (
            prop::sample::select(vec!["emails", "addresses", "members"]),
            tree(leaf(true)),
        )
            .prop_map(|(attr, inner)| Filter::ValuePath {
                path: ap(attr),
                filter: b(inner),
            });
        tree(prop_oneof![3 => leaf(false), 1 => value_path])
    }

    proptest! {
        #[test]
        fn displaying_then_parsing_a_filter_gives_it_back(filter in filter_strategy()) {
            let text = filter.to_string();
            prop_assert_eq!(parse(&text), Ok(filter), "text {}", text);
        }

        #[test]
        fn arbitrary_input_never_panics(input in ".{0,64}") {
            let _ = parse(&input);
        }
    }
}

/// Inputs the fuzzer found (fuzz/fuzz_targets/filter.rs), kept as regression tests.
#[cfg(test)]
mod fuzz_regressions {
    use super::*;

    #[test]
    fn long_decimal_numbers_round_trip_exactly() {
        let filter: Filter =
            "            t gT        277777777777555577777777.00055555555555558238425958"
                .parse()
                .unwrap();
        let printed = filter.to_string();
        assert_eq!(printed.parse::<Filter>().unwrap(), filter, "{printed}");
    }
}
