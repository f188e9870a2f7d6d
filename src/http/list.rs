//! List and search parameters (RFC 7644 §3.4.2, §3.4.3, RFC 9865 cursors) and the
//! `attributes` / `excludedAttributes` projection shared by every read.
//!
//! Parameters are parsed by hand, not through serde's `Query` rejection, so that a bad filter
//! is `400 invalidFilter` and a bad number `400 invalidValue`, in SCIM JSON.

use axum::extract::RawQuery;
use serde_json::{Map, Value};

use super::extract::JsonBody;
use crate::resources::{ListRequest, PageCursors};
use crate::scim::filter::Filter;
use crate::scim::json_text::write_string;
use crate::scim::path::AttrPath;
use crate::scim::project::{parse_attribute_list, project};
use crate::scim::{LIST_RESPONSE_SCHEMA, ScimError};
use crate::store::{ListQuery, Sort};

/// Default page size (RFC 7644 leaves it to the server; Okta and Entra page explicitly).
pub const DEFAULT_COUNT: i64 = 100;

/// `attributes` / `excludedAttributes` of a request (RFC 7644 §3.4.2.5).
#[derive(Debug, Clone, Default)]
pub struct Projection {
    pub attributes: Vec<AttrPath>,
    pub excluded: Vec<AttrPath>,
}

impl Projection {
    /// Applies the projection; `id` and `schemas` are always returned.
    pub fn apply(&self, resource: Map<String, Value>) -> Map<String, Value> {
        if self.attributes.is_empty() && self.excluded.is_empty() {
            return resource;
        }
        project(resource, &self.attributes, &self.excluded, &[])
    }

    /// Whether the request asked for a projection at all.
    pub fn is_requested(&self) -> bool {
        !self.attributes.is_empty() || !self.excluded.is_empty()
    }

    /// Whether the core attribute `name` survives this projection, so expensive attributes
    /// (`members`, `groups`) are loaded only when they will be returned.
    pub fn includes(&self, name: &str) -> bool {
        let names = |p: &AttrPath| p.schema.is_none() && p.attr.eq_ignore_ascii_case(name);
        if !self.attributes.is_empty() {
            return self.attributes.iter().any(names);
        }
        !self
            .excluded
            .iter()
            .any(|p| names(p) && p.sub_attr.is_none())
    }

    /// Reads `attributes` / `excludedAttributes` from the query string.
    pub fn from_query(RawQuery(query): &RawQuery) -> Result<Projection, ScimError> {
        let params = query_params(query.as_deref());
        Projection::from_params(&params)
    }

    fn from_params(params: &QueryParams) -> Result<Projection, ScimError> {
        Ok(Projection {
            attributes: list_param(params.get("attributes"))?,
            excluded: list_param(params.get("excludedattributes"))?,
        })
    }
}

fn list_param(value: Option<&String>) -> Result<Vec<AttrPath>, ScimError> {
    value.map_or(Ok(Vec::new()), |v| parse_attribute_list(v))
}

/// A parsed list or search request: what to list, and how to project each resource.
#[derive(Debug, Clone)]
pub struct ListParams {
    pub request: ListRequest,
    pub projection: Projection,
}

/// Query parameters, named without regard to case (`sortBy` = `sortby`), the last value of a
/// name winning. A query that is not valid form encoding yields no parameters rather than an
/// error: the values that matter (filter, numbers) are validated one by one afterwards.
/// A list, not a map: a query has a handful of parameters, and every list request and every
/// read (for its projection) builds one.
struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn get(&self, name: &str) -> Option<&String> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }
}

/// Splits a query as `application/x-www-form-urlencoded` parsing does (WHATWG URL §5.1: pairs
/// on `&`, empty ones skipped, the name up to the first `=`), each part decoded in one pass
/// ([`form_decoded`]): through serde_urlencoded, decoding was about 3,400 instructions of
/// every `userName eq` lookup (callgrind), a twentieth of the request.
fn query_params(query: Option<&str>) -> QueryParams {
    QueryParams(
        query
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (form_decoded(name), form_decoded(value))
            })
            .collect(),
    )
}

/// One name or value of a form-encoded query: `+` is a space, `%XX` the byte XX, and a `%`
/// not followed by two hex digits stays as it is; bytes that are not UTF-8 become U+FFFD
/// (WHATWG URL §5.1, as the `form_urlencoded` crate decodes).
fn form_decoded(part: &str) -> String {
    if !part.contains(['+', '%']) {
        return part.to_string();
    }
    fn hex(byte: u8) -> Option<u8> {
        (byte as char).to_digit(16).map(|digit| digit as u8)
    }
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        match byte {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|&b| hex(b)),
                bytes.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            _ => out.push(byte),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

impl ListParams {
    /// From a GET query string (RFC 7644 §3.4.2).
    pub fn from_query(query: &RawQuery, max_results: i64) -> Result<ListParams, ScimError> {
        let params = query_params(query.0.as_deref());
        let number = |name: &str| -> Result<Option<i64>, ScimError> {
            params
                .get(name)
                .map(|v| {
                    v.trim().parse::<i64>().map_err(|_| {
                        ScimError::invalid_value(format!("{name} must be an integer, got {v:?}"))
                    })
                })
                .transpose()
        };
        let raw = RawParams {
            filter: params.get("filter").cloned(),
            sort_by: params.get("sortby").cloned(),
            sort_order: params.get("sortorder").cloned(),
            start_index: number("startindex")?,
            count: number("count")?,
            cursor: params.get("cursor").cloned(),
        };
        raw.into_params(Projection::from_params(&params)?, max_results)
    }

    /// From a `POST …/.search` body (RFC 7644 §3.4.3): the same parameters as JSON members.
    pub fn from_search_body(
        body: &Map<String, Value>,
        max_results: i64,
    ) -> Result<ListParams, ScimError> {
        let get = |name: &str| {
            body.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let string = |name: &str| -> Result<Option<String>, ScimError> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ScimError::invalid_value(format!("{name} must be a string"))),
            }
        };
        let number =
            |name: &str| -> Result<Option<i64>, ScimError> {
                match get(name) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
                        ScimError::invalid_value(format!("{name} must be an integer"))
                    }),
                    Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| {
                        ScimError::invalid_value(format!("{name} must be an integer"))
                    }),
                    Some(_) => Err(ScimError::invalid_value(format!(
                        "{name} must be an integer"
                    ))),
                }
            };
        // `attributes` is an array of strings in a search body; a comma list is tolerated.
        let paths = |name: &str| -> Result<Vec<AttrPath>, ScimError> {
            match get(name) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::String(s)) => parse_attribute_list(s),
                Some(Value::Array(items)) => {
                    let mut out = Vec::new();
                    for item in items {
                        let Value::String(s) = item else {
                            return Err(ScimError::invalid_value(format!(
                                "{name} must list strings"
                            )));
                        };
                        out.extend(parse_attribute_list(s)?);
                    }
                    Ok(out)
                }
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{name} must be an array of strings"
                ))),
            }
        };
        let projection = Projection {
            attributes: paths("attributes")?,
            excluded: paths("excludedAttributes")?,
        };
        let raw = RawParams {
            filter: string("filter")?,
            sort_by: string("sortBy")?,
            sort_order: string("sortOrder")?,
            start_index: number("startIndex")?,
            count: number("count")?,
            cursor: string("cursor")?,
        };
        raw.into_params(projection, max_results)
    }
}

/// Parameters before validation, whichever way they arrived.
struct RawParams {
    filter: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
    cursor: Option<String>,
}

impl RawParams {
    fn into_params(
        self,
        projection: Projection,
        max_results: i64,
    ) -> Result<ListParams, ScimError> {
        let filter = match self.filter.as_deref().map(str::trim) {
            None | Some("") => None,
            // Postgres cannot compare with U+0000; no stored value can contain it either.
            Some(text) if text.contains('\0') => {
                return Err(ScimError::invalid_filter(
                    "filters must not contain the NUL character (U+0000)",
                ));
            }
            Some(text) => Some(text.parse::<Filter>()?),
        };
        let descending = match self
            .sort_order
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") | Some("ascending") => false,
            Some("descending") => true,
            Some(other) => {
                return Err(ScimError::invalid_value(format!(
                    "sortOrder must be \"ascending\" or \"descending\", got {other:?}"
                )));
            }
        };
        let sort = match self.sort_by.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(Sort {
                path: AttrPath::parse(text).map_err(|e| ScimError::invalid_value(e.detail))?,
                descending,
            }),
        };
        // RFC 7644 §3.4.2.4: startIndex < 1 is 1; a negative count is 0; the server may cap it.
        let start_index = self.start_index.unwrap_or(1).max(1);
        let count = self.count.unwrap_or(DEFAULT_COUNT).clamp(0, max_results);
        let cursor_mode = self.cursor.is_some();
        // Opened (verified) by the resource layer, which holds the key that seals cursors.
        let cursor_text = self
            .cursor
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_string);
        if cursor_mode && sort.is_some() {
            return Err(ScimError::invalid_value(
                "cursor pagination uses the default order; sortBy cannot be combined with cursor",
            ));
        }
        Ok(ListParams {
            request: ListRequest {
                query: ListQuery {
                    filter,
                    sort,
                    start_index,
                    count,
                    cursor: None,
                    byte_budget: None,
                },
                cursor_mode,
                cursor_text,
            },
            projection,
        })
    }
}

/// The RFC 7644 §3.4.2 ListResponse. `itemsPerPage` is the number actually returned;
/// `nextCursor` and `previousCursor` (RFC 9865) where there are such pages.
pub fn list_response(
    resources: Vec<JsonBody>,
    total: i64,
    start_index: Option<i64>,
    cursors: PageCursors,
) -> JsonBody {
    let text_bytes: usize = resources
        .iter()
        .map(|resource| match resource {
            JsonBody::Text(text) => text.len() + 1,
            JsonBody::Tree(_) => 512,
        })
        .sum();
    let mut body = ListBody::with_capacity(text_bytes);
    for resource in &resources {
        resource.write_to(body.next_resource());
    }
    body.finish(total, start_index, cursors)
}

/// A ListResponse written as text, members in name order (as a map would write them), its
/// resources appended one after another: a resource rendered as text is written once, into
/// the response, not parsed or copied.
pub struct ListBody {
    out: Vec<u8>,
    resources: usize,
}

impl ListBody {
    /// Room for `bytes` of resources besides the envelope.
    pub fn with_capacity(bytes: usize) -> ListBody {
        let mut out = Vec::with_capacity(bytes + 256);
        out.extend_from_slice(b"{\"Resources\":[");
        ListBody { out, resources: 0 }
    }

    /// Where the next resource's JSON is appended.
    pub fn next_resource(&mut self) -> &mut Vec<u8> {
        if self.resources > 0 {
            self.out.push(b',');
        }
        self.resources += 1;
        &mut self.out
    }

    /// The response, with `itemsPerPage` the number of resources appended.
    pub fn finish(self, total: i64, start_index: Option<i64>, cursors: PageCursors) -> JsonBody {
        let ListBody { mut out, resources } = self;
        // Pushed piece by piece: a `format!` per member was about 2,100 instructions of
        // every filter and page.
        let mut digits = itoa::Buffer::new();
        out.extend_from_slice(b"],\"itemsPerPage\":");
        out.extend_from_slice(digits.format(resources).as_bytes());
        for (name, cursor) in [
            ("nextCursor", cursors.next),
            ("previousCursor", cursors.previous),
        ] {
            if let Some(cursor) = cursor {
                out.extend_from_slice(b",\"");
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"\":");
                write_string(&cursor, &mut out);
            }
        }
        out.extend_from_slice(b",\"schemas\":[\"");
        out.extend_from_slice(LIST_RESPONSE_SCHEMA.as_bytes());
        out.extend_from_slice(b"\"]");
        if let Some(start) = start_index {
            out.extend_from_slice(b",\"startIndex\":");
            out.extend_from_slice(digits.format(start).as_bytes());
        }
        out.extend_from_slice(b",\"totalResults\":");
        out.extend_from_slice(digits.format(total).as_bytes());
        out.push(b'}');
        JsonBody::Text(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scim::limits::{Limits, check_filter};
    use crate::scim::schema::ResourceTypeDef;

    fn params(query: &str) -> Result<ListParams, ScimError> {
        ListParams::from_query(&RawQuery(Some(query.to_string())), 1000)
    }

    #[test]
    fn query_parameter_names_ignore_case_and_the_last_value_wins() {
        let params = query_params(Some("sortBy=userName&SORTBY=name.familyName&count=2"));
        assert_eq!(
            params.get("sortby").map(String::as_str),
            Some("name.familyName")
        );
        assert_eq!(params.get("Count").map(String::as_str), Some("2"));
        assert_eq!(params.get("filter"), None);
        let decoded = query_params(Some("filter=userName%20eq%20%22a%2Bb%22"));
        assert_eq!(
            decoded.get("filter").map(String::as_str),
            Some("userName eq \"a+b\"")
        );
        assert_eq!(
            query_params(Some("a=%ZZ%")).get("a").map(String::as_str),
            Some("%ZZ%")
        );
        assert_eq!(query_params(None).get("count"), None);
    }

    #[test]
    fn a_query_splits_and_decodes_as_form_urlencoded_does() {
        let cases = [
            "",
            "&",
            "filter=userName%20eq%20%22user01%40example.com%22&count=2",
            "filter=userName+eq+%22a%2Bb%22",
            "a=%ZZ%&b=%4&c=%41%4g%",
            "a=1=2&&b&=c",
            "%E2%82%AC=%e2%82%ac&x=%FF%FE+%C3",
            "sortBy=name.familyName&SORTBY=emails%5Btype%20eq%20%22work%22%5D.value",
            "caf\u{e9}=na\u{ef}ve",
        ];
        for query in cases {
            let ours = query_params(Some(query)).0;
            // serde_urlencoded parses with `form_urlencoded`, the decoding this replaced.
            let theirs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
            assert_eq!(ours, theirs, "{query}");
        }
        assert_eq!(form_decoded("%e2%82%ac+%41"), "\u{20ac} A");
        assert_eq!(form_decoded("%FF"), "\u{fffd}");
    }

    #[test]
    fn query_parameters_parse_with_defaults_and_limits() {
        let p = params("").unwrap();
        assert_eq!(
            (p.request.query.start_index, p.request.query.count),
            (1, DEFAULT_COUNT)
        );
        let p = params("startIndex=0&count=-3").unwrap();
        assert_eq!((p.request.query.start_index, p.request.query.count), (1, 0));
        let p = params("count=5000").unwrap();
        assert_eq!(p.request.query.count, 1000);
        let p =
            params("filter=userName%20eq%20%22a%40b.co%22&sortBy=userName&sortOrder=descending")
                .unwrap();
        assert!(p.request.query.filter.is_some());
        assert!(p.request.query.sort.unwrap().descending);
        let p = params("filter=userName+eq+%22x%22").unwrap();
        assert_eq!(
            p.request.query.filter.unwrap().to_string(),
            "userName eq \"x\""
        );
        let p = params("attributes=userName,name.givenName").unwrap();
        assert_eq!(p.projection.attributes.len(), 2);
        let p = params("cursor=").unwrap();
        assert!(p.request.cursor_mode && p.request.cursor_text.is_none());
        // Opened by the resource layer, which holds the key.
        let p = params("cursor=AbC-_9").unwrap();
        assert_eq!(p.request.cursor_text.as_deref(), Some("AbC-_9"));
    }

    #[test]
    fn bad_parameters_are_scim_errors() {
        let cases = [
            ("filter=userName%20zz%20%22x%22", "invalidFilter"),
            ("filter=(((", "invalidFilter"),
            ("count=ten", "invalidValue"),
            ("startIndex=1.5", "invalidValue"),
            ("sortOrder=sideways", "invalidValue"),
            ("sortBy=a..b", "invalidValue"),
            ("cursor=&sortBy=userName", "invalidValue"),
        ];
        for (query, want) in cases {
            let err = params(query).unwrap_err();
            assert_eq!(err.scim_type.map(|t| t.as_str()), Some(want), "{query}");
        }
    }

    #[test]
    fn limited_checks_the_filter_and_sets_the_byte_budget() {
        use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
        let limits = Limits::default();
        let p = params("filter=userName%20eq%20%22a%22").unwrap();
        let p = p.request.limited(&limits, &[&USER_RESOURCE]).unwrap();
        assert_eq!(p.query.byte_budget, Some(limits.list_byte_budget));
        let many = ["emails.value co \"x\""; 9].join(" or ");
        let query = serde_urlencoded::to_string([("filter", many.as_str())]).unwrap();
        let err = params(&query)
            .unwrap()
            .request
            .limited(&limits, &[&USER_RESOURCE])
            .unwrap_err();
        assert_eq!(err.scim_type.map(|t| t.as_str()), Some("invalidFilter"));
        // Groups have no emails: the same filter costs nothing there, and does not fit them.
        let filter = params(&query).unwrap().request.query.filter.unwrap();
        assert!(check_filter(&filter, &[&GROUP_RESOURCE], &limits).is_ok());
        let err = params(&query)
            .unwrap()
            .request
            .limited(&limits, &[&GROUP_RESOURCE])
            .unwrap_err();
        assert_eq!(
            (err.scim_type.map(|t| t.as_str()), err.detail.as_str()),
            (Some("invalidFilter"), "unknown attribute emails.value")
        );
    }

    #[test]
    fn limited_checks_filter_and_sort_against_one_resource_type_only() {
        use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
        let limits = Limits::default();
        let both: &[&ResourceTypeDef] = &[&USER_RESOURCE, &GROUP_RESOURCE];
        // (query, resource types) -> the refusal, if any
        let cases = [
            ("filter=userName%20pr", &[&USER_RESOURCE][..], None),
            (
                "filter=userName%20pr",
                &[&GROUP_RESOURCE][..],
                Some("invalidFilter"),
            ),
            ("filter=userName%20pr", both, None),
            ("filter=nosuch%20pr", both, None),
            ("sortBy=displayName", &[&GROUP_RESOURCE][..], None),
            ("sortBy=emails", &[&USER_RESOURCE][..], Some("invalidValue")),
            (
                "sortBy=members",
                &[&GROUP_RESOURCE][..],
                Some("invalidValue"),
            ),
            ("sortBy=nosuch", both, None),
        ];
        for (query, types, want) in cases {
            let got = params(query).unwrap().request.limited(&limits, types);
            let refusal = got.err().and_then(|e| e.scim_type).map(|t| t.as_str());
            assert_eq!(refusal, want, "{query} on {} types", types.len());
        }
    }

    #[test]
    fn includes_tells_whether_an_attribute_is_returned() {
        let cases = [
            ("", "members", true),
            ("excludedAttributes=members", "members", false),
            ("excludedAttributes=MEMBERS", "members", false),
            ("excludedAttributes=members.display", "members", true),
            ("attributes=displayName", "members", false),
            ("attributes=members.value", "members", true),
            (
                "attributes=userName&excludedAttributes=groups",
                "groups",
                false,
            ),
        ];
        for (query, name, want) in cases {
            assert_eq!(
                params(query).unwrap().projection.includes(name),
                want,
                "{query}"
            );
        }
    }

    #[test]
    fn search_bodies_parse_like_queries() {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "userName sw \"a\"", "startIndex": 2, "count": "10",
            "attributes": ["userName", "displayName"], "sortBy": "userName"
        });
        let p = ListParams::from_search_body(body.as_object().unwrap(), 1000).unwrap();
        assert_eq!(
            (p.request.query.start_index, p.request.query.count),
            (2, 10)
        );
        assert_eq!(p.projection.attributes.len(), 2);
        assert!(p.request.query.sort.is_some());
    }

    #[test]
    fn a_list_response_is_written_as_its_map_would_be_with_text_resources_copied_in() {
        let cursors = |next: Option<&str>, previous: Option<&str>| PageCursors {
            next: next.map(str::to_owned),
            previous: previous.map(str::to_owned),
        };
        let cases = [
            (None, cursors(None, None)),
            (Some(11), cursors(None, None)),
            (None, cursors(Some("n\"x"), Some("p"))),
        ];
        for (start_index, cursors) in cases {
            let resources = vec![
                JsonBody::Tree(json!({"id": "a"})),
                JsonBody::Text(br#"{"id":"b"}"#.to_vec()),
            ];
            let mut want = Map::new();
            want.insert("schemas".into(), json!([LIST_RESPONSE_SCHEMA]));
            want.insert("totalResults".into(), json!(40));
            want.insert("itemsPerPage".into(), json!(2));
            want.insert("Resources".into(), json!([{"id": "a"}, {"id": "b"}]));
            if let Some(start) = start_index {
                want.insert("startIndex".into(), json!(start));
            }
            if let Some(next) = &cursors.next {
                want.insert("nextCursor".into(), json!(next));
            }
            if let Some(previous) = &cursors.previous {
                want.insert("previousCursor".into(), json!(previous));
            }
            let got = list_response(resources, 40, start_index, cursors).into_bytes();
            assert_eq!(
                String::from_utf8(got).unwrap(),
                serde_json::to_string(&want).unwrap()
            );
        }
    }
}
