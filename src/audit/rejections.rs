//! Rejected writes: a write request refused with a 4xx (other than 401 and 429) is recorded
//! with who sent it and why it was refused, never its body.
//!
//! Recording is off the request path and bounded: the handler only offers the record to a
//! queue ([`RejectionRecorder::offer`]); a background task writes what arrives in batches.
//! Each key may have `per_key_per_minute` records stored (a GCRA bucket, as for the rate
//! limit); beyond that, and whenever the queue is full, a record is only counted
//! (`scimd_rejected_writes_total{outcome="dropped"}`). A misbehaving IdP therefore cannot
//! fill the database, nor hold SQLite's single writer for longer than one batch at a time.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::ratelimit::{MemoryLimiter, RateLimit, now_ns};
use crate::store::{RejectedWrite, Store};

/// Records waiting to be written, at most.
const QUEUE: usize = 1_024;
/// Records written per transaction, at most.
const BATCH: usize = 100;
/// Longest `detail` kept, in bytes.
const MAX_DETAIL_BYTES: usize = 512;
/// Longest `path` kept, in bytes.
const MAX_PATH_BYTES: usize = 256;

/// Takes rejected writes from request handlers and stores them in the background.
#[derive(Debug)]
pub struct RejectionRecorder {
    queue: mpsc::Sender<RejectedWrite>,
    per_key: MemoryLimiter,
    /// Records stored per key per minute; 0 stores none (they are still counted).
    per_key_per_minute: u64,
}

impl RejectionRecorder {
    /// A recorder whose writer task runs on the current runtime until the recorder is dropped.
    pub fn start(store: Arc<dyn Store>, per_key_per_minute: u64) -> RejectionRecorder {
        let (queue, received) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(store, received));
        RejectionRecorder {
            queue,
            per_key: MemoryLimiter::default(),
            per_key_per_minute,
        }
    }

    /// Queues `write` to be stored if its key is within the bound and the queue has room;
    /// never waits.
    pub fn offer(&self, mut write: RejectedWrite) {
        let bucket = match write.key_id {
            Some(key) => format!("rejected:{key}"),
            None => "rejected:-".to_string(),
        };
        let within_bound = self.per_key_per_minute > 0
            && self
                .per_key
                .check(
                    &bucket,
                    now_ns(),
                    RateLimit::per_minute(self.per_key_per_minute),
                )
                .allowed;
        if !within_bound {
            crate::metrics::rejected_writes("dropped", 1);
            return;
        }
        truncate(&mut write.path, MAX_PATH_BYTES);
        if let Some(detail) = &mut write.detail {
            truncate(detail, MAX_DETAIL_BYTES);
        }
        if self.queue.try_send(write).is_err() {
            crate::metrics::rejected_writes("dropped", 1);
        }
    }
}

/// Cuts `text` to at most `max` bytes, on a character boundary (also for the `User-Agent`
/// the change log keeps).
pub fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// Writes what the queue brings, up to [`BATCH`] records per transaction, until every
/// sender is gone.
async fn write_batches(store: Arc<dyn Store>, mut received: mpsc::Receiver<RejectedWrite>) {
    let mut batch = Vec::with_capacity(BATCH);
    while received.recv_many(&mut batch, BATCH).await > 0 {
        let n = batch.len() as u64;
        match store.record_rejected(&batch).await {
            Ok(()) => crate::metrics::rejected_writes("recorded", n),
            Err(e) => {
                tracing::warn!(error = %e, records = n, "rejected writes could not be stored");
                crate::metrics::rejected_writes("dropped", n);
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keeps_whole_characters() {
        let cases = [
            ("abc", 5, "abc"),
            ("abcdef", 3, "abc"),
            ("ééé", 3, "é"),
            ("", 0, ""),
        ];
        for (text, max, want) in cases {
            let mut text = text.to_string();
            truncate(&mut text, max);
            assert_eq!(text, want);
        }
    }
}
