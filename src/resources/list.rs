//! Lists and searches (RFC 7644 §3.4.2, §3.4.3, RFC 9865 cursors), the same for every
//! resource type: the caps applied before any store call, one page read, the next cursor.

use uuid::Uuid;

use super::{Caller, Loaded, ResourceKind, ResourceResult, Resources};
use crate::scim::ScimError;
use crate::scim::filter::check::{validate, validate_sort};
use crate::scim::limits::{Limits, check_filter};
use crate::scim::schema::ResourceTypeDef;
use crate::store::{Cursor, ListQuery, Versioned};

/// A list or search request, however it arrived (query string or `.search` body).
#[derive(Debug, Clone, PartialEq)]
pub struct ListRequest {
    pub query: ListQuery,
    /// RFC 9865: the request used cursor pagination (`cursor` present, even empty).
    pub cursor_mode: bool,
}

/// A page of a list, ready to render as a ListResponse.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<R> {
    pub items: Vec<Loaded<R>>,
    pub total: i64,
    /// `startIndex`; absent in cursor mode (RFC 9865).
    pub start_index: Option<i64>,
    pub next_cursor: Option<String>,
}

impl ListRequest {
    /// Applies the request caps (issue 11): the filter's cost, counted against the resource
    /// types it runs on, before any store call; and the byte budget that stops a page early.
    /// With one resource type, the filter and sort key must also fit it (a root search
    /// checks each type itself).
    pub fn limited(
        mut self,
        limits: &Limits,
        types: &[&ResourceTypeDef],
    ) -> Result<ListRequest, ScimError> {
        if let Some(filter) = &self.query.filter {
            check_filter(filter, types, limits)?;
        }
        if let [resource] = types {
            if let Some(filter) = &self.query.filter {
                validate(filter, resource)?;
            }
            if let Some(sort) = &self.query.sort {
                validate_sort(&sort.path, resource)?;
            }
        }
        self.query.byte_budget = Some(limits.list_byte_budget);
        Ok(self)
    }

    /// Prepares cursor pagination: one row more than the page is read, which tells whether a
    /// next page exists (RFC 9865 omits `nextCursor` on the last page). Returns the page size.
    fn cursor_page_size(&mut self) -> i64 {
        let page_size = self.query.count;
        if self.cursor_mode && page_size > 0 {
            self.query.count += 1;
        }
        page_size
    }

    /// Trims the extra row read by [`ListRequest::cursor_page_size`] and returns the cursor of
    /// the next page, if there is one; `key` gives a row's (created_at, id). A page the byte
    /// budget stopped early (`truncated`) has more rows after its last one, so it gets a
    /// cursor from that last row.
    fn next_cursor<T>(
        &self,
        rows: &mut Vec<T>,
        page_size: i64,
        truncated: bool,
        key: impl Fn(&T) -> (i64, Uuid),
    ) -> Option<String> {
        let more = truncated || rows.len() as i64 > page_size;
        if !self.cursor_mode || !more {
            return None;
        }
        rows.truncate(page_size.max(0) as usize);
        rows.last().map(|row| {
            let (created_at, id) = key(row);
            Cursor { created_at, id }.encode()
        })
    }

    /// `startIndex` for the response; absent in cursor mode (RFC 9865).
    pub fn start_index(&self) -> Option<i64> {
        (!self.cursor_mode).then_some(self.query.start_index)
    }
}

impl Resources {
    /// GET /Users, POST /Users/.search and the same for Groups: filter, sort, index or
    /// cursor paging; related resources only when `with_related`.
    pub async fn list<K: ResourceKind>(
        &self,
        caller: &Caller,
        request: ListRequest,
        with_related: bool,
    ) -> ResourceResult<Page<K::Record>> {
        let mut request = request.limited(&self.settings.limits, &[K::DEF])?;
        let page_size = request.cursor_page_size();
        let mut page = K::rows(&*self.store)
            .list(caller.org_id, &request.query)
            .await?;
        let next_cursor = request.next_cursor(&mut page.rows, page_size, page.truncated, |row| {
            (row.created_at(), row.id())
        });
        Ok(Page {
            items: self.load::<K>(caller, page.rows, with_related).await?,
            total: page.total,
            start_index: request.start_index(),
            next_cursor,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cursor_mode: bool) -> ListRequest {
        ListRequest {
            query: ListQuery {
                filter: None,
                sort: None,
                start_index: 1,
                count: 3,
                cursor: None,
                byte_budget: None,
            },
            cursor_mode,
        }
    }

    #[test]
    fn next_cursor_follows_the_extra_row_or_a_truncated_page() {
        let row = |i: u128| (i as i64, Uuid::from_u128(i));
        let cursor = |i: u128| {
            let (created_at, id) = row(i);
            Cursor { created_at, id }.encode()
        };
        let cursor_mode = request(true);
        let index_mode = request(false);
        // (request, rows read, page size, truncated) -> (rows kept, cursor)
        let cases = [
            (&cursor_mode, 4, 3, false, 3, Some(cursor(2))),
            (&cursor_mode, 3, 3, false, 3, None),
            (&cursor_mode, 2, 3, true, 2, Some(cursor(1))),
            (&cursor_mode, 0, 3, true, 0, None),
            (&index_mode, 2, 3, true, 2, None),
        ];
        for (r, read, size, truncated, kept, want) in cases {
            let mut rows: Vec<u128> = (0..read).collect();
            let got = r.next_cursor(&mut rows, size, truncated, |&i| row(i));
            assert_eq!((rows.len(), got), (kept, want), "{read} {size} {truncated}");
        }
    }

    #[test]
    fn cursor_mode_reads_one_row_more_than_the_page() {
        let mut cursor_mode = request(true);
        assert_eq!(cursor_mode.cursor_page_size(), 3);
        assert_eq!(cursor_mode.query.count, 4);
        let mut index_mode = request(false);
        assert_eq!(index_mode.cursor_page_size(), 3);
        assert_eq!(index_mode.query.count, 3);
        assert_eq!(
            (cursor_mode.start_index(), index_mode.start_index()),
            (None, Some(1))
        );
    }
}
