//! Pure SCIM protocol logic (RFC 7643 / RFC 7644): schema, filters, paths, PATCH, projection.
//!
//! Nothing in this module does I/O: no axum, sqlx or tokio imports (CI greps for them).
//! Resources are handled as JSON objects (`serde_json::Map`) keyed by canonical attribute
//! names, with extension attributes nested under their schema URN, exactly as on the wire.

pub mod bulk;
pub mod cursor;
pub mod diff;
pub mod discovery;
pub mod doc;
pub mod error;
pub mod etag;
pub mod events;
pub mod filter;
pub mod group;
pub mod group_member;
pub mod interop;
pub mod json_text;
pub mod limits;
pub mod normalize;
pub mod patch;
pub mod path;
pub mod project;
pub mod schema;
pub mod user;
pub mod user_text;

pub use error::{ScimError, ScimType};

/// RFC 7643 §8.7.1: core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// RFC 7643 §8.7.1: core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// RFC 7643 §4.3: enterprise User extension.
pub const ENTERPRISE_USER_SCHEMA: &str =
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Omni's user-attribute extension: org-defined key → value pairs.
pub const USER_ATTRIBUTE_SCHEMA: &str = "urn:omni:params:1.0:UserAttribute";
/// Omni's user metadata extension (`lastLogin`).
pub const OMNI_USER_EXTENSION_SCHEMA: &str = "urn:omni:params:scim:schemas:extension:user:2.0";
/// RFC 7644 §3.4.2: list response message.
pub const LIST_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// RFC 7644 §3.12: error message.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// RFC 7644 §3.5.2: PATCH request message.
pub const PATCH_OP_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// RFC 7644 §3.4.3: search request message.
pub const SEARCH_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
