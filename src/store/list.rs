//! Which page of a list to read (RFC 7644 §3.4.2, RFC 9865 cursors) and how a page is read:
//! rows streamed until the count or the byte budget, whichever comes first.

use serde_json::Value;
use uuid::Uuid;

use super::{Doc, StoreResult};
use crate::scim::filter::Filter;
use crate::scim::path::AttrPath;

/// Sort order of a list (RFC 7644 §3.4.2.3).
#[derive(Debug, Clone, PartialEq)]
pub struct Sort {
    pub path: AttrPath,
    pub descending: bool,
}

/// A keyset position in creation order, (created_at, id): the page read starts after it,
/// or ends before it when `backward` (RFC 9865 cursors; their signed text form is
/// `scim::cursor`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: i64,
    pub id: Uuid,
    pub backward: bool,
}

/// Which page of a list to read (RFC 7644 §3.4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub filter: Option<Filter>,
    /// Default order: creation order (created_at, id), stable so pages never skip or repeat.
    pub sort: Option<Sort>,
    /// 1-based index of the first result (ignored when `cursor` is set).
    pub start_index: i64,
    /// Maximum number of results; 0 asks only for `total`.
    pub count: i64,
    /// Keyset pagination: start after this position (default order only).
    pub cursor: Option<Cursor>,
    /// Stop reading rows once their stored documents add up to this many bytes (at least one
    /// row is always returned); the page then says `truncated`. None: no budget.
    pub byte_budget: Option<usize>,
}

impl ListQuery {
    /// `totalResults` when the page itself shows it, so the count statement can be skipped: a
    /// page that is not full is the last one, and the `startIndex - 1` results before it
    /// exist when the page is not empty (or there are none before it). Cursor pages do not
    /// know how many results precede them.
    pub fn total_from_page(&self, rows: usize) -> Option<i64> {
        let rows = rows as i64;
        let last_page = self.count > 0 && rows < self.count;
        let before = (self.start_index - 1).max(0);
        (self.cursor.is_none() && last_page && (rows > 0 || before == 0)).then_some(before + rows)
    }
}

/// A cheap estimate of the memory a decoded document holds, for a list's byte budget: the
/// lengths of its keys and strings plus a few bytes per value. It walks the document once
/// (no allocation), which costs far less than decoding it did.
pub fn doc_bytes(doc: &Doc) -> usize {
    fn value_bytes(value: &Value) -> usize {
        8 + match value {
            Value::String(s) => s.len(),
            Value::Array(items) => items.iter().map(value_bytes).sum(),
            Value::Object(map) => map.iter().map(|(k, v)| k.len() + value_bytes(v)).sum(),
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        }
    }
    doc.iter().map(|(k, v)| k.len() + value_bytes(v)).sum()
}

/// Collects the rows of a list page from `rows` until `query.count` of them or, with a byte
/// budget, until their documents add up to the budget (at least one row is always taken).
/// Returns the page and whether the budget stopped it while more rows followed.
pub(super) async fn take_page<R, T>(
    mut rows: impl futures_util::Stream<Item = Result<R, sqlx::Error>> + Unpin,
    query: &ListQuery,
    decode: impl Fn(&R) -> StoreResult<T>,
    bytes: impl Fn(&T) -> usize,
) -> StoreResult<(Vec<T>, bool)> {
    use futures_util::TryStreamExt;
    let mut page = Vec::new();
    let mut read = 0usize;
    while let Some(row) = rows.try_next().await? {
        let item = decode(&row)?;
        read = read.saturating_add(bytes(&item));
        page.push(item);
        if query.byte_budget.is_some_and(|budget| read >= budget) {
            // Over budget: the page ends here, and it is short only if another row follows.
            let more = page.len() < query.count.max(0) as usize && rows.try_next().await?.is_some();
            return Ok((page, more));
        }
    }
    Ok((page, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_that_is_not_full_gives_the_total_without_counting() {
        let page = |start_index, count, cursor: bool| ListQuery {
            filter: None,
            sort: None,
            start_index,
            count,
            cursor: cursor.then_some(Cursor {
                created_at: 1,
                id: Uuid::nil(),
                backward: false,
            }),
            byte_budget: None,
        };
        let cases = [
            // (startIndex, count, cursor, rows on the page, total known from the page)
            (1, 100, false, 0, Some(0)),
            (1, 100, false, 1, Some(1)),
            (1, 100, false, 99, Some(99)),
            (1, 100, false, 100, None), // full page: more may follow
            (51, 100, false, 7, Some(57)),
            (51, 100, false, 0, None), // past the end: how far past is unknown
            (0, 10, false, 3, Some(3)), // startIndex < 1 is read as 1
            (1, 0, false, 0, None),    // count=0 asks only for the total
            (1, 100, true, 5, None),   // a cursor page does not know what precedes it
        ];
        for (start_index, count, cursor, rows, want) in cases {
            assert_eq!(
                page(start_index, count, cursor).total_from_page(rows),
                want,
                "startIndex={start_index} count={count} cursor={cursor} rows={rows}"
            );
        }
    }

    #[test]
    fn doc_bytes_grows_with_the_strings_a_document_holds() {
        let doc = |value: Value| match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        let empty = doc_bytes(&Doc::new());
        let small = doc_bytes(&doc(serde_json::json!({"userName": "ann"})));
        let emails: Vec<Value> = (0..1000)
            .map(|i| serde_json::json!({"value": format!("user{i}@example.com"), "type": "work"}))
            .collect();
        let big = doc_bytes(&doc(
            serde_json::json!({"userName": "ann", "emails": emails}),
        ));
        assert_eq!(empty, 0);
        assert_eq!(small, "userName".len() + 8 + "ann".len());
        // At least the text the document holds, and not wildly more.
        let text: usize = (0..1000)
            .map(|i| format!("user{i}@example.com").len() + "valuetypework".len())
            .sum();
        assert!(big >= text && big < text * 3, "{big} vs {text}");
    }
}
