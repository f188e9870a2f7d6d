//! Protocol errors of the pure SCIM layer (RFC 7644 §3.12), free of any HTTP framework.
//!
//! `src/http/error.rs` is the one place that turns these into responses.

use std::fmt;

/// The `scimType` keywords of RFC 7644 §3.12, Table 9 (plus the RFC 7644 §3.14 precondition case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
    /// RFC 9865 §2.1: not a cursor the server gave for this query.
    InvalidCursor,
    /// RFC 9865 §2.1: a cursor past its `cursorTimeout`.
    ExpiredCursor,
}

impl ScimType {
    /// The keyword exactly as it appears in the `scimType` member of an error response.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
            ScimType::InvalidCursor => "invalidCursor",
            ScimType::ExpiredCursor => "expiredCursor",
        }
    }
}

/// A SCIM protocol error: an HTTP status, an optional `scimType` and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<ScimType>,
    pub detail: String,
}

impl ScimError {
    /// A 400 error with the given `scimType`.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        ScimError {
            status: 400,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }

    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }

    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }

    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidFilter, detail)
    }

    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }

    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::NoTarget, detail)
    }

    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::Mutability, detail)
    }

    /// 409 with `scimType: uniqueness` (RFC 7644 §3.3).
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        ScimError {
            status: 409,
            scim_type: Some(ScimType::Uniqueness),
            detail: detail.into(),
        }
    }

    /// 409 without a `scimType`: the request conflicts with the state of the server (an
    /// admin action that would break something else, e.g. deleting a definition in use).
    pub fn conflict(detail: impl Into<String>) -> Self {
        ScimError {
            status: 409,
            scim_type: None,
            detail: detail.into(),
        }
    }

    /// 404: the resource does not exist (or belongs to another organization).
    pub fn not_found(detail: impl Into<String>) -> Self {
        ScimError {
            status: 404,
            scim_type: None,
            detail: detail.into(),
        }
    }

    /// 500: the server cannot do what was asked with what it holds (a stored document that
    /// cannot be read); nothing changed.
    pub fn internal(detail: impl Into<String>) -> Self {
        ScimError {
            status: 500,
            scim_type: None,
            detail: detail.into(),
        }
    }

    /// 412: the `If-Match` precondition failed (RFC 7644 §3.14).
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        ScimError {
            status: 412,
            scim_type: None,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scim_type {
            Some(t) => write!(f, "{} {}: {}", self.status, t.as_str(), self.detail),
            None => write!(f, "{}: {}", self.status, self.detail),
        }
    }
}

impl std::error::Error for ScimError {}
