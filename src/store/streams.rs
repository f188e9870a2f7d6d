//! SCIM event streams and the keys that sign their events, as the store keeps them.
//!
//! A stream follows its organization's change log: `position` is the last entry its receiver
//! acknowledged, and delivery resumes after it. A push stream is delivered by whichever
//! process holds its lease, so two processes never deliver the same stream at once.

use serde::Serialize;
use uuid::Uuid;

/// How a stream's receiver gets its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    /// RFC 8935: scimd POSTs each SET to the receiver's endpoint.
    Push,
    /// RFC 8936: the receiver polls scimd with the stream's own token.
    Poll,
}

impl StreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Push => "push",
            StreamKind::Poll => "poll",
        }
    }

    pub fn parse(text: &str) -> Option<StreamKind> {
        match text {
            "push" => Some(StreamKind::Push),
            "poll" => Some(StreamKind::Poll),
            _ => None,
        }
    }
}

/// Whether a stream is delivering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    Active,
    /// Push deliveries have failed for longer than `SCIMD_STREAM_FAILING_AFTER_SECONDS`;
    /// delivery goes on and the stream is active again at the first acknowledgement.
    Failing,
    /// Nothing acknowledged for `SCIMD_STREAM_MAX_LAG_DAYS`: no longer delivered, and its
    /// backlog is left to retention.
    Disabled,
}

impl StreamState {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Active => "active",
            StreamState::Failing => "failing",
            StreamState::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<StreamState> {
        match text {
            "active" => Some(StreamState::Active),
            "failing" => Some(StreamState::Failing),
            "disabled" => Some(StreamState::Disabled),
            _ => None,
        }
    }
}

/// A stream as stored. The push `auth_header` and the poll token's hash are never listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventStream {
    pub org_id: Uuid,
    pub id: Uuid,
    pub kind: StreamKind,
    pub endpoint: Option<String>,
    /// The event names delivered (`scim::events::EVENT_NAMES`).
    pub events: Vec<String>,
    /// Full events (the request's data) instead of notices (the changed attribute names).
    pub full: bool,
    #[serde(skip)]
    pub auth_header: Option<String>,
    #[serde(skip)]
    pub poll_token_hash: Option<String>,
    /// The last change-log position acknowledged.
    pub position: i64,
    /// Poll: positions after `position` acknowledged out of order.
    #[serde(skip)]
    pub acked_ahead: Vec<i64>,
    pub state: StreamState,
    pub failing_since: Option<i64>,
    pub last_error: Option<String>,
    pub last_ack_at: i64,
    /// Events acknowledged so far.
    pub delivered: i64,
    pub created_at: i64,
    #[serde(skip)]
    pub lease_owner: Option<Uuid>,
    #[serde(skip)]
    pub lease_until: Option<i64>,
}

/// What a new stream is made of; it starts at the head of the log (no history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStream {
    pub kind: StreamKind,
    pub endpoint: Option<String>,
    pub events: Vec<String>,
    pub full: bool,
    pub auth_header: Option<String>,
    pub poll_token_hash: Option<String>,
}

/// Delivery acknowledged up to `position` (`acked_ahead`: poll acknowledgements beyond it),
/// `delivered` events more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamProgress {
    pub position: i64,
    pub acked_ahead: Vec<i64>,
    pub delivered: i64,
    pub at: i64,
}

/// A key that signs SETs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    pub kid: String,
    /// PKCS#8 DER of the P-256 private key, base64.
    pub private_key: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}
