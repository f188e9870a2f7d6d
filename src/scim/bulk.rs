//! Bulk (RFC 7644 §3.7): the request's shape, its operations, the `bulkId` references between
//! them and the order that satisfies them, and the response. No I/O: the resource layer runs
//! the operations (`resources/bulk.rs`).
//!
//! An operation that references `bulkId:X` (in its path, or as any string value of its data,
//! e.g. a group member's `value`) runs after the POST that declared `bulkId` X, whatever their
//! order in the request (RFC 7644 §3.7.2). References that can never be satisfied because
//! they form a cycle are answered 409 (§3.7.1 allows stopping there); a reference to an
//! operation that failed fails too.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::ScimError;

/// The schema of a Bulk request (RFC 7644 §3.7).
pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// The schema of a Bulk response.
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
/// How a value refers to the resource another operation of the request creates.
const BULK_ID_PREFIX: &str = "bulkId:";
/// Longest `bulkId`, in bytes.
const MAX_BULK_ID_BYTES: usize = 256;

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkMethod {
    Post,
    Put,
    Patch,
    Delete,
}

impl BulkMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            BulkMethod::Post => "POST",
            BulkMethod::Put => "PUT",
            BulkMethod::Patch => "PATCH",
            BulkMethod::Delete => "DELETE",
        }
    }

    fn parse(text: &str) -> Option<BulkMethod> {
        match text.to_ascii_uppercase().as_str() {
            "POST" => Some(BulkMethod::Post),
            "PUT" => Some(BulkMethod::Put),
            "PATCH" => Some(BulkMethod::Patch),
            "DELETE" => Some(BulkMethod::Delete),
            _ => None,
        }
    }
}

/// The resource type an operation's path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkEndpoint {
    Users,
    Groups,
}

impl BulkEndpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            BulkEndpoint::Users => "/Users",
            BulkEndpoint::Groups => "/Groups",
        }
    }
}

/// One operation as the request gave it, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOperation {
    pub method: BulkMethod,
    pub bulk_id: Option<String>,
    /// `If-Match` of the operation (RFC 7644 §3.7: `version`).
    pub version: Option<String>,
    pub endpoint: BulkEndpoint,
    /// The resource id of the path (PUT, PATCH, DELETE), perhaps `bulkId:X`.
    pub id: Option<String>,
    pub data: Option<Map<String, Value>>,
}

/// An operation of the request: checked, or refused on its own (the others still run).
#[derive(Debug, Clone, PartialEq)]
pub struct BulkEntry {
    /// The method as given (echoed in the response), when it was a string.
    pub method: Option<String>,
    pub bulk_id: Option<String>,
    pub operation: Result<BulkOperation, ScimError>,
}

/// A Bulk request.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    /// Stop after this many failed operations (RFC 7644 §3.7.3); none: run them all.
    pub fail_on_errors: Option<usize>,
    pub entries: Vec<BulkEntry>,
}

/// Reads the request's shape: its schema, `failOnErrors` and the `Operations` array (at
/// most `max_operations`, else 413 as RFC 7644 §3.7.4 says). An operation that is malformed
/// is refused on its own.
pub fn parse_request(
    body: &Map<String, Value>,
    max_operations: usize,
) -> Result<BulkRequest, ScimError> {
    let schemas = body.get("schemas").and_then(Value::as_array);
    let declared =
        schemas.is_some_and(|s| s.iter().any(|v| v.as_str() == Some(BULK_REQUEST_SCHEMA)));
    if !declared {
        return Err(ScimError::invalid_syntax(format!(
            "A Bulk request must declare the schema {BULK_REQUEST_SCHEMA}"
        )));
    }
    let fail_on_errors = match body.get("failOnErrors") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_u64() {
            Some(n) if n >= 1 => Some(n as usize),
            _ => {
                return Err(ScimError::invalid_value(
                    "failOnErrors must be a positive integer",
                ));
            }
        },
    };
    let operations = body
        .get("Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("A Bulk request needs an Operations array"))?;
    if operations.len() > max_operations {
        return Err(too_many_operations(operations.len(), max_operations));
    }
    let entries = operations.iter().map(parse_entry).collect();
    Ok(BulkRequest {
        fail_on_errors,
        entries,
    })
}

/// 413 for a request with more operations than `maxOperations` (RFC 7644 §3.7.4).
pub fn too_many_operations(given: usize, max: usize) -> ScimError {
    ScimError {
        status: 413,
        scim_type: None,
        detail: format!(
            "The Bulk request has {given} operations; maxOperations is {max} \
             (ServiceProviderConfig.bulk)"
        ),
    }
}

fn parse_entry(value: &Value) -> BulkEntry {
    let object = value.as_object();
    let text = |name: &str| {
        object
            .and_then(|o| o.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    BulkEntry {
        method: text("method"),
        bulk_id: text("bulkId"),
        operation: object
            .ok_or_else(|| ScimError::invalid_syntax("Each operation must be a JSON object"))
            .and_then(parse_operation),
    }
}

fn parse_operation(op: &Map<String, Value>) -> Result<BulkOperation, ScimError> {
    let string = |name: &str| -> Result<Option<String>, ScimError> {
        match op.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ScimError::invalid_syntax(format!(
                "{name} must be a string"
            ))),
        }
    };
    let method = string("method")?
        .and_then(|m| BulkMethod::parse(&m))
        .ok_or_else(|| {
            ScimError::invalid_value("method must be one of POST, PUT, PATCH and DELETE")
        })?;
    let bulk_id = string("bulkId")?;
    if let Some(id) = &bulk_id
        && (id.is_empty() || id.len() > MAX_BULK_ID_BYTES)
    {
        return Err(ScimError::invalid_value(format!(
            "bulkId must be 1-{MAX_BULK_ID_BYTES} bytes"
        )));
    }
    if method == BulkMethod::Post && bulk_id.is_none() {
        // RFC 7644 §3.7: "bulkId … REQUIRED when method is POST".
        return Err(ScimError::invalid_value("A POST operation needs a bulkId"));
    }
    let path = string("path")?.ok_or_else(|| ScimError::invalid_value("path is required"))?;
    let (endpoint, id) = parse_path(&path)?;
    match (method, &id) {
        (BulkMethod::Post, Some(_)) => {
            return Err(ScimError::invalid_path(format!(
                "A POST goes to {} without an id",
                endpoint.as_str()
            )));
        }
        (BulkMethod::Put | BulkMethod::Patch | BulkMethod::Delete, None) => {
            return Err(ScimError::invalid_path(format!(
                "{} needs a resource id in its path",
                method.as_str()
            )));
        }
        _ => {}
    }
    let data = match op.get("data") {
        None | Some(Value::Null) => None,
        Some(Value::Object(data)) => Some(data.clone()),
        Some(_) => return Err(ScimError::invalid_syntax("data must be a JSON object")),
    };
    if method != BulkMethod::Delete && data.is_none() {
        return Err(ScimError::invalid_value(format!(
            "{} needs data",
            method.as_str()
        )));
    }
    Ok(BulkOperation {
        method,
        bulk_id,
        version: string("version")?,
        endpoint,
        id,
        data,
    })
}

/// `/Users`, `/Users/{id}`, `/Groups`, `/Groups/{id}` (either case of the endpoint).
fn parse_path(path: &str) -> Result<(BulkEndpoint, Option<String>), ScimError> {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let endpoint = match parts.next().unwrap_or_default() {
        "Users" | "users" => BulkEndpoint::Users,
        "Groups" | "groups" => BulkEndpoint::Groups,
        _ => {
            return Err(ScimError::invalid_path(format!(
                "path {path:?} must name /Users or /Groups"
            )));
        }
    };
    match parts.next() {
        None => Ok((endpoint, None)),
        Some(id) if !id.is_empty() && !id.contains('/') => Ok((endpoint, Some(id.to_string()))),
        Some(_) => Err(ScimError::invalid_path(format!(
            "path {path:?} must be {}/{{id}}",
            endpoint.as_str()
        ))),
    }
}

impl BulkOperation {
    /// The bulkIds this operation needs resolved: in its path and anywhere in its data.
    pub fn references(&self) -> HashSet<String> {
        let mut found = HashSet::new();
        if let Some(reference) = self.id.as_deref().and_then(bulk_reference) {
            found.insert(reference.to_string());
        }
        if let Some(data) = &self.data {
            for value in data.values() {
                collect_references(value, &mut found);
            }
        }
        found
    }

    /// Replaces every `bulkId:X` of the path and data with the id X's POST created.
    pub fn resolve(&mut self, ids: &HashMap<String, String>) {
        if let Some(id) = &self.id
            && let Some(resolved) = bulk_reference(id).and_then(|r| ids.get(r))
        {
            self.id = Some(resolved.clone());
        }
        if let Some(data) = &mut self.data {
            for value in data.values_mut() {
                replace_references(value, ids);
            }
        }
    }
}

fn bulk_reference(text: &str) -> Option<&str> {
    text.strip_prefix(BULK_ID_PREFIX)
}

fn collect_references(value: &Value, found: &mut HashSet<String>) {
    match value {
        Value::String(s) => {
            if let Some(reference) = bulk_reference(s) {
                found.insert(reference.to_string());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, found)),
        Value::Object(map) => map.values().for_each(|v| collect_references(v, found)),
        _ => {}
    }
}

fn replace_references(value: &mut Value, ids: &HashMap<String, String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = bulk_reference(s).and_then(|r| ids.get(r)) {
                *s = id.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| replace_references(v, ids)),
        Value::Object(map) => map.values_mut().for_each(|v| replace_references(v, ids)),
        _ => {}
    }
}

/// Why an operation could not run because of its references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolvable {
    /// No POST of the request declares the bulkId.
    Undeclared(String),
    /// The POST that declares it failed (or was refused).
    Failed(String),
    /// The references form a cycle: nothing can run first (RFC 7644 §3.7.1: 409).
    Circular,
}

impl Unresolvable {
    pub fn error(&self) -> ScimError {
        match self {
            Unresolvable::Undeclared(id) => ScimError::invalid_value(format!(
                "bulkId:{id} is not declared by any POST of this request"
            )),
            Unresolvable::Failed(id) => {
                ScimError::conflict(format!("bulkId:{id} refers to an operation that failed"))
            }
            Unresolvable::Circular => ScimError::conflict(
                "Circular bulkId references: these operations each wait for another",
            ),
        }
    }
}

/// A bulkId declared twice: the later declarations are refused.
pub fn duplicate_bulk_id(id: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "bulkId {id:?} is declared by more than one operation"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(operations: Value) -> Map<String, Value> {
        json!({"schemas": [BULK_REQUEST_SCHEMA], "Operations": operations})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn operations_are_checked_one_by_one() {
        let body = request(json!([
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "x"}},
            {"method": "GET", "path": "/Users/1"},
            {"method": "POST", "path": "/Users", "data": {}},
            {"method": "PUT", "path": "/Users"},
            {"method": "DELETE", "path": "/Users/1"},
            {"method": "PATCH", "path": "/Others/1", "data": {}},
            {"method": "POST", "path": "/Groups/1", "bulkId": "b", "data": {}},
            "nonsense",
        ]));
        let parsed = parse_request(&body, 100).unwrap();
        let ok: Vec<bool> = parsed.entries.iter().map(|e| e.operation.is_ok()).collect();
        assert_eq!(ok, [true, false, false, false, true, false, false, false]);
        assert_eq!(parsed.entries[1].method.as_deref(), Some("GET"));
    }

    #[test]
    fn the_request_itself_must_be_a_bulk_request_within_max_operations() {
        let missing_schema = json!({"Operations": []}).as_object().unwrap().clone();
        assert_eq!(parse_request(&missing_schema, 10).unwrap_err().status, 400);
        let too_many = request(json!([{}, {}, {}]));
        assert_eq!(parse_request(&too_many, 2).unwrap_err().status, 413);
        let mut bad_fail = request(json!([]));
        bad_fail.insert("failOnErrors".into(), json!(0));
        assert_eq!(parse_request(&bad_fail, 2).unwrap_err().status, 400);
    }

    #[test]
    fn references_are_found_in_path_and_data_and_resolved() {
        let body = request(json!([{
            "method": "PATCH", "path": "/Groups/bulkId:g",
            "data": {"Operations": [{"op": "add", "path": "members",
                "value": [{"value": "bulkId:u1"}, {"value": "bulkId:u2"}, {"value": "plain"}]}]}
        }]));
        let mut op = parse_request(&body, 10).unwrap().entries[0]
            .operation
            .clone()
            .unwrap();
        let refs = op.references();
        assert_eq!(refs.len(), 3);
        assert!(refs.contains("g") && refs.contains("u1") && refs.contains("u2"));
        let ids: HashMap<String, String> = [("g", "G"), ("u1", "U1"), ("u2", "U2")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        op.resolve(&ids);
        assert_eq!(op.id.as_deref(), Some("G"));
        assert_eq!(
            op.data.unwrap()["Operations"][0]["value"],
            json!([{"value": "U1"}, {"value": "U2"}, {"value": "plain"}])
        );
    }
}
