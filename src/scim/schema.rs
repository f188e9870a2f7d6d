//! TEMPORARY stub until the schema module lands.
use super::ScimError;
use serde_json::{Map, Value};
pub struct ResourceTypeDef;
pub static USER_RESOURCE: ResourceTypeDef = ResourceTypeDef;
pub fn normalize_resource(
    _rt: &ResourceTypeDef,
    body: Map<String, Value>,
) -> Result<Map<String, Value>, ScimError> {
    let mut body = body;
    body.remove("schemas");
    body.remove("id");
    body.remove("meta");
    body.remove("groups");
    Ok(body)
}
