//! Poll delivery (RFC 8936): the receiver POSTs `{"ack": [...], "maxEvents": n,
//! "returnImmediately": bool}` with its stream's own token and gets `{"sets": {jti: SET},
//! "moreAvailable": bool}`.
//!
//! SETs are handed out in log order after the stream's position. An acknowledged SET (in
//! `ack`, or reported in `setErrs`) never comes back: acknowledgements that arrive out of
//! order are kept on the stream until the position can move past them. Unacknowledged SETs
//! are handed out again at the next poll (at-least-once).

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::signing::EventSigner;
use super::{jti, position_of, set_claims};
use crate::store::{AuditQuery, ChangeEntry, EventStream, Store, StreamProgress, now_ms};

/// SETs returned by one poll when the receiver does not say (RFC 8936 §2.4: the
/// transmitter's choice), and at most.
pub const DEFAULT_MAX_EVENTS: usize = 100;
pub const MAX_EVENTS: usize = 1_000;
/// Acknowledgements taken from one poll, at most.
pub const MAX_ACKS: usize = 10_000;
/// How often a long poll looks for new entries.
const WAIT_STEP: Duration = Duration::from_millis(100);

/// RFC 8936 §2.4: a poll request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollRequest {
    #[serde(default)]
    pub ack: Vec<String>,
    #[serde(default)]
    pub set_errs: Map<String, Value>,
    pub max_events: Option<usize>,
    pub return_immediately: Option<bool>,
}

/// RFC 8936 §2.5: the answer.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PollResponse {
    pub sets: Map<String, Value>,
    pub more_available: bool,
}

/// Answers one poll of `stream`: records its acknowledgements, then returns the SETs that
/// follow, waiting up to `max_wait` for one unless the receiver asked to return at once.
pub async fn poll(
    store: &dyn Store,
    signer: &EventSigner,
    issuer: &str,
    audience: &str,
    stream: &EventStream,
    request: &PollRequest,
    max_wait: Duration,
) -> anyhow::Result<PollResponse> {
    let max_events = request
        .max_events
        .unwrap_or(DEFAULT_MAX_EVENTS)
        .min(MAX_EVENTS);
    let mut acked: BTreeSet<i64> = stream
        .acked_ahead
        .iter()
        .copied()
        .filter(|p| *p > stream.position)
        .collect();
    let newly: BTreeSet<i64> = request
        .ack
        .iter()
        .chain(request.set_errs.keys())
        .take(MAX_ACKS)
        .filter_map(|jti| position_of(stream.id, jti))
        .filter(|p| *p > stream.position && !acked.contains(p))
        .collect();
    acked.extend(&newly);
    let window = (acked.len() + max_events + 1) as i64;
    let deadline = tokio::time::Instant::now() + max_wait;
    let mut position = stream.position;
    let mut first_read = true;
    loop {
        let entries = read_after(store, stream, position, window).await?;
        // Each entry's SET claims, or none when this stream selects none of its events.
        let claims: Vec<Option<Value>> = entries
            .iter()
            .map(|e| set_claims(e, stream, issuer, audience))
            .collect();
        // The position moves past every leading entry that is acknowledged or that this
        // stream does not select.
        for (entry, claims) in entries.iter().zip(&claims) {
            if acked.contains(&entry.position) || claims.is_none() {
                position = entry.position;
                acked.remove(&entry.position);
            } else {
                break;
            }
        }
        // Acknowledgements of positions this window does not hold are not kept: they name no
        // SET that could come back.
        let known: BTreeSet<i64> = entries.iter().map(|e| e.position).collect();
        acked.retain(|p| known.contains(p));
        if first_read && (position != stream.position || !newly.is_empty()) {
            let progress = StreamProgress {
                position,
                acked_ahead: acked.iter().copied().collect(),
                delivered: newly.len() as i64,
                at: now_ms(),
            };
            store.advance_stream(stream.id, None, &progress).await?;
        }
        first_read = false;
        let mut sets = Map::new();
        let mut more = false;
        for (entry, claims) in entries.iter().zip(&claims) {
            if entry.position <= position || acked.contains(&entry.position) {
                continue;
            }
            let Some(claims) = claims else {
                continue;
            };
            if sets.len() == max_events {
                more = true;
                break;
            }
            sets.insert(
                jti(stream.id, entry.position),
                Value::String(signer.sign(claims)?),
            );
        }
        let waited_enough = request.return_immediately.unwrap_or(false)
            || max_events == 0
            || tokio::time::Instant::now() >= deadline;
        if !sets.is_empty() || waited_enough {
            return Ok(PollResponse {
                sets,
                more_available: more || entries.len() as i64 == window,
            });
        }
        tokio::time::sleep(WAIT_STEP).await;
    }
}

async fn read_after(
    store: &dyn Store,
    stream: &EventStream,
    position: i64,
    limit: i64,
) -> anyhow::Result<Vec<ChangeEntry>> {
    let query = AuditQuery {
        after_position: Some(position),
        limit,
        without_data: !stream.full,
        ..AuditQuery::default()
    };
    Ok(store.changes(stream.org_id, &query).await?)
}
