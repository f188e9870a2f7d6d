//! Lists and searches (RFC 7644 §3.4.2, §3.4.3, RFC 9865 cursors), the same for every
//! resource type: the caps applied before any store call, one page read, the next cursor.

use ring::hmac;
use uuid::Uuid;

use super::{Caller, Loaded, ResourceKind, ResourceResult, Resources};
use crate::scim::ScimError;
use crate::scim::cursor::{self, Position};
use crate::scim::filter::check::{validate, validate_sort};
use crate::scim::limits::{Limits, check_filter};
use crate::scim::schema::ResourceTypeDef;
use crate::store::{Cursor, ListQuery, Versioned, now_ms};

/// A list or search request, however it arrived (query string or `.search` body).
#[derive(Debug, Clone, PartialEq)]
pub struct ListRequest {
    pub query: ListQuery,
    /// RFC 9865: the request used cursor pagination (`cursor` present, even empty).
    pub cursor_mode: bool,
    /// The cursor as the client sent it, when not empty: opened by [`Resources::list`],
    /// which alone holds the key that seals cursors.
    pub cursor_text: Option<String>,
}

/// A page of a list, ready to render as a ListResponse.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<R> {
    pub items: Vec<Loaded<R>>,
    pub total: i64,
    /// `startIndex`; absent in cursor mode (RFC 9865).
    pub start_index: Option<i64>,
    pub cursors: PageCursors,
}

/// RFC 9865: the cursors of the pages after and before a page, where there are such pages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PageCursors {
    pub next: Option<String>,
    pub previous: Option<String>,
}

/// The positions [`ListRequest::cursor_positions`] finds for the pages around a page.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Around {
    next: Option<Position>,
    previous: Option<Position>,
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
    /// page exists beyond it in the direction read (RFC 9865 omits `nextCursor` on the last
    /// page). Returns the page size.
    pub(super) fn cursor_page_size(&mut self) -> i64 {
        let page_size = self.query.count;
        if self.cursor_mode && page_size > 0 {
            self.query.count += 1;
        }
        page_size
    }

    /// Trims the extra row read by [`ListRequest::cursor_page_size`] and finds the positions
    /// of the pages after and before this one; `key` gives a row's (created_at, id).
    ///
    /// Read forwards, a page has a next page when the extra row came or the byte budget cut
    /// it short, and a previous one when it was reached through a cursor (the first page is
    /// the one asked for with an empty cursor). Read backwards (`previousCursor`), the extra
    /// row lies before the page, and the page it was reached from lies after it.
    fn cursor_positions<T>(
        &self,
        rows: &mut Vec<T>,
        page_size: i64,
        truncated: bool,
        key: impl Fn(&T) -> (i64, Uuid),
    ) -> Around {
        if !self.cursor_mode {
            return Around::default();
        }
        let backward = self.query.cursor.is_some_and(|c| c.backward);
        let extra = rows.len() as i64 > page_size;
        let keep = page_size.max(0) as usize;
        if backward && extra {
            // Rows are in list order: the extra one is the first.
            rows.drain(..rows.len() - keep);
        } else {
            rows.truncate(keep);
        }
        let at = |row: Option<&T>, backward: bool| {
            row.map(|row| {
                let (created_at, id) = key(row);
                Position::creation(created_at, id, backward)
            })
        };
        let (has_next, has_previous) = if backward {
            (true, extra || truncated)
        } else {
            (extra || truncated, self.query.cursor.is_some())
        };
        Around {
            next: at(rows.last(), false).filter(|_| has_next),
            previous: at(rows.first(), true).filter(|_| has_previous),
        }
    }

    /// `startIndex` for the response; absent in cursor mode (RFC 9865).
    pub fn start_index(&self) -> Option<i64> {
        (!self.cursor_mode).then_some(self.query.start_index)
    }

    /// What a cursor of this request is bound to: the organization, the resource type and
    /// the filter (RFC 9865 §2: every parameter but the cursor stays the same across pages;
    /// `count` may change).
    fn digest(&self, org_id: Uuid, resource: &ResourceTypeDef) -> [u8; 8] {
        let filter = self
            .query
            .filter
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        cursor::query_digest(&[&org_id.to_string(), resource.id, &filter])
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
        let sealer = self.sealer(&request, caller, K::DEF).await?;
        if let Some(position) = sealer
            .as_ref()
            .map(|s| s.open(&request))
            .transpose()?
            .flatten()
        {
            let (created_at, id) = position.created();
            request.query.cursor = Some(Cursor {
                created_at,
                id,
                backward: position.backward,
            });
        }
        let page_size = request.cursor_page_size();
        let mut page = K::rows(&*self.store)
            .list(caller.org_id, &request.query)
            .await?;
        let around = request.cursor_positions(&mut page.rows, page_size, page.truncated, |row| {
            (row.created_at(), row.id())
        });
        let seal = |position: Option<Position>| Some(sealer.as_ref()?.seal(position?));
        Ok(Page {
            items: self.load::<K>(caller, page.rows, with_related).await?,
            total: page.total,
            start_index: request.start_index(),
            cursors: PageCursors {
                next: seal(around.next),
                previous: seal(around.previous),
            },
        })
    }

    /// What opens and seals the cursors of `request` (a list of `resource` by `caller`), in
    /// cursor mode; `None` in index mode.
    pub(super) async fn sealer(
        &self,
        request: &ListRequest,
        caller: &Caller,
        resource: &ResourceTypeDef,
    ) -> ResourceResult<Option<Sealer>> {
        if !request.cursor_mode {
            return Ok(None);
        }
        let now_s = now_ms() / 1000;
        Ok(Some(Sealer {
            key: self.cursor_key().await?,
            digest: request.digest(caller.org_id, resource),
            now_s,
            expires_s: now_s.saturating_add(self.settings.cursor_timeout.as_secs() as i64),
        }))
    }

    /// The key that seals cursors: one for every process on the database (a `settings`
    /// row, made by the first process that needs it), so a cursor from one replica opens on
    /// another. Read once per process.
    async fn cursor_key(&self) -> ResourceResult<hmac::Key> {
        let secret = self
            .cursor_secret
            .get_or_try_init(|| async {
                let fresh = crate::auth::random_hex(32);
                self.store.init_setting(CURSOR_KEY_SETTING, &fresh).await
            })
            .await?;
        Ok(hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()))
    }
}

/// The `settings` row holding the cursor key.
const CURSOR_KEY_SETTING: &str = "cursor_key";

/// Opens the cursor a list request brings and seals the ones its page gives: the server's
/// key, the query the cursors are bound to, and the time.
pub(super) struct Sealer {
    key: hmac::Key,
    digest: [u8; 8],
    now_s: i64,
    expires_s: i64,
}

impl Sealer {
    /// The position of the request's cursor, if it brought one (not the empty first one).
    pub(super) fn open(&self, request: &ListRequest) -> Result<Option<Position>, ScimError> {
        request
            .cursor_text
            .as_deref()
            .map(|text| cursor::open(&self.key, text, self.now_s, self.digest))
            .transpose()
    }

    /// The cursor of `position`, valid for `cursorTimeout`.
    pub(super) fn seal(&self, position: Position) -> String {
        cursor::seal(&self.key, position, self.expires_s, self.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(cursor_mode: bool, cursor: Option<Cursor>) -> ListRequest {
        ListRequest {
            query: ListQuery {
                filter: None,
                sort: None,
                start_index: 1,
                count: 3,
                cursor,
                byte_budget: None,
            },
            cursor_mode,
            cursor_text: None,
        }
    }

    #[test]
    fn the_cursors_around_a_page_follow_its_direction_and_the_extra_row() {
        let row = |i: u128| (i as i64, Uuid::from_u128(i));
        let at =
            |i: u128, backward: bool| Position::creation(i as i64, Uuid::from_u128(i), backward);
        let through = |backward| {
            Some(Cursor {
                created_at: 0,
                id: Uuid::nil(),
                backward,
            })
        };
        let first = request(true, None);
        let forward = request(true, through(false));
        let backward = request(true, through(true));
        let index_mode = request(false, None);
        // (request, rows read (ids), truncated) -> (ids kept, next, previous)
        let cases = [
            (
                "first page, more after",
                &first,
                vec![1, 2, 3, 4],
                false,
                vec![1, 2, 3],
                Around {
                    next: Some(at(3, false)),
                    previous: None,
                },
            ),
            (
                "first page, the only one",
                &first,
                vec![1, 2, 3],
                false,
                vec![1, 2, 3],
                Around::default(),
            ),
            (
                "first page cut by the byte budget",
                &first,
                vec![1, 2],
                true,
                vec![1, 2],
                Around {
                    next: Some(at(2, false)),
                    previous: None,
                },
            ),
            (
                "a later page, more after",
                &forward,
                vec![4, 5, 6, 7],
                false,
                vec![4, 5, 6],
                Around {
                    next: Some(at(6, false)),
                    previous: Some(at(4, true)),
                },
            ),
            (
                "the last page",
                &forward,
                vec![7],
                false,
                vec![7],
                Around {
                    next: None,
                    previous: Some(at(7, true)),
                },
            ),
            (
                "backwards, more before",
                &backward,
                vec![3, 4, 5, 6],
                false,
                vec![4, 5, 6],
                Around {
                    next: Some(at(6, false)),
                    previous: Some(at(4, true)),
                },
            ),
            (
                "backwards to the first page",
                &backward,
                vec![1, 2, 3],
                false,
                vec![1, 2, 3],
                Around {
                    next: Some(at(3, false)),
                    previous: None,
                },
            ),
        ];
        for (name, r, read, truncated, kept, want) in cases {
            let mut rows = read;
            let got = r.cursor_positions(&mut rows, 3, truncated, |&i| row(i));
            assert_eq!((rows, got), (kept, want), "{name}");
        }
        let mut rows = vec![1u128, 2];
        assert_eq!(
            index_mode.cursor_positions(&mut rows, 3, true, |&i| row(i)),
            Around::default()
        );
    }

    #[test]
    fn cursor_mode_reads_one_row_more_than_the_page() {
        let mut cursor_mode = request(true, None);
        assert_eq!(cursor_mode.cursor_page_size(), 3);
        assert_eq!(cursor_mode.query.count, 4);
        let mut index_mode = request(false, None);
        assert_eq!(index_mode.cursor_page_size(), 3);
        assert_eq!(index_mode.query.count, 3);
        assert_eq!(
            (cursor_mode.start_index(), index_mode.start_index()),
            (None, Some(1))
        );
    }
}
