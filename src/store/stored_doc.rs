//! A document as the store read it: its JSON text, parsed into a map only when something
//! needs the map (a write, a projection, the change log).
//!
//! A read that returns the whole resource renders it straight from the text
//! (`scim::user_text`); building the map, rendering into it and serialising it again was
//! about two thirds of the server's CPU on a page of users (BENCHMARKS.md).

use std::sync::OnceLock;

use super::{Doc, StoreError, StoreResult};
use crate::scim::user_text::StoredText;

/// A stored document: its text, and its map once asked for.
#[derive(Debug, Clone)]
pub struct StoredDoc {
    text: Box<str>,
    map: OnceLock<Doc>,
    /// The database checked that the text is JSON as it stored it (Postgres's `json`).
    checked: bool,
}

impl StoredDoc {
    /// The document read from a row: its text, which scimd has not checked as JSON (the
    /// database did when `checked`). Whatever uses it parses it and fails on text that is
    /// not a JSON object.
    pub fn from_text(text: Box<str>, checked: bool) -> StoredDoc {
        StoredDoc {
            text,
            map: OnceLock::new(),
            checked,
        }
    }

    /// The text, and whether the database checked it, for a rendering straight from it.
    pub fn stored_text(&self) -> StoredText<'_> {
        StoredText {
            text: &self.text,
            checked: self.checked,
        }
    }

    /// The document's JSON text as stored: Postgres returns `jsonb` with a space after each
    /// `:` and `,`, SQLite the text as it was written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The document as a map, parsed on the first call. Fails only for a document that is
    /// not a JSON object or holds a number a map cannot (written to the database by
    /// something else than scimd).
    pub fn map(&self) -> StoreResult<&Doc> {
        if let Some(map) = self.map.get() {
            return Ok(map);
        }
        let parsed = parse(&self.text)?;
        Ok(self.map.get_or_init(|| parsed))
    }

    /// The document as a map, owned.
    pub fn into_map(self) -> StoreResult<Doc> {
        match self.map.into_inner() {
            Some(map) => Ok(map),
            None => parse(&self.text),
        }
    }

    /// What the document weighs against a list's byte budget: its text's length, the
    /// memory a read holds for it.
    pub fn budget_bytes(&self) -> usize {
        self.text.len()
    }
}

fn parse(text: &str) -> StoreResult<Doc> {
    serde_json::from_str(text).map_err(|e| StoreError::Backend(sqlx::Error::Decode(Box::new(e))))
}

/// Two stored documents are equal when their maps are (Postgres and SQLite write the same
/// map as different text); an unreadable one equals nothing.
impl PartialEq for StoredDoc {
    fn eq(&self, other: &StoredDoc) -> bool {
        match (self.map(), other.map()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stored(text: &str) -> StoredDoc {
        StoredDoc::from_text(text.into(), false)
    }

    #[test]
    fn the_map_is_the_text_parsed_whatever_its_spacing() {
        let compact = stored(r#"{"userName":"a@example.com","name":{"givenName":"A"}}"#);
        let spaced = stored(r#"{"name": {"givenName": "A"}, "userName": "a@example.com"}"#);
        let want = json!({"userName": "a@example.com", "name": {"givenName": "A"}});
        assert_eq!(
            serde_json::Value::Object(compact.map().unwrap().clone()),
            want
        );
        assert_eq!(compact, spaced);
        assert_eq!(serde_json::Value::Object(spaced.into_map().unwrap()), want);
    }

    #[test]
    fn a_document_a_map_cannot_hold_is_an_error_not_an_empty_map() {
        // Not an object, a number a map cannot hold, not JSON at all (the read does not
        // check it), JSON followed by more.
        let texts = [
            "[1, 2]",
            r#"{"n": 1e400}"#,
            r#""text""#,
            r#"{"n": 1"#,
            r#"{"n": 1} {}"#,
            "",
        ];
        for text in texts {
            let doc = stored(text);
            assert!(doc.map().is_err(), "{text}");
            assert!(doc.clone().into_map().is_err(), "{text}");
            assert_ne!(
                doc,
                doc.clone(),
                "{text}: an unreadable document equals nothing"
            );
        }
    }
}
