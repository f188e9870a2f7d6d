//! The bounds on what one SCIM request may ask of the server, checked on the parsed request
//! before any store call (RFC 7644 §3.12 `tooMany` / 413 style errors name the cap).
//!
//! Each cap is configurable (see the README's configuration table); the defaults keep one
//! request's memory and CPU small enough that no tenant can starve another.

/// Caps on request content and on the work one request may cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest stored document (a user or group as JSON, without server attributes), in bytes.
    pub max_document_bytes: usize,
    /// Most values of one multi-valued attribute (e.g. `emails`); group `members` excepted.
    pub max_multi_values: usize,
    /// Most operations in one PATCH request.
    pub max_patch_operations: usize,
    /// Most member ids one request may add, remove or set on a group.
    pub max_members_per_request: usize,
    /// Bytes of stored documents a list page may read before it stops early.
    pub list_byte_budget: usize,
    /// Most predicates on multi-valued attributes (which scan) in one filter.
    pub max_filter_multi_valued: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_document_bytes: 128 * 1024,
            max_multi_values: 100,
            max_patch_operations: 1_000,
            max_members_per_request: 10_000,
            list_byte_budget: 8 * 1024 * 1024,
            max_filter_multi_valued: 8,
        }
    }
}
