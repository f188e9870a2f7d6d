//! Writes the console's hourly activity counts (`store/activity.rs`) about once a minute.
//! A process that stops loses at most the last minute's counts: they feed charts, not the
//! record (the change log and the rejected writes are written with the request).

use std::sync::Arc;
use std::time::Duration;

use crate::store::Store;

/// How often the counts are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(60);

/// Writes the counts every [`FLUSH_EVERY`], for as long as the runtime runs.
pub fn spawn_flush(store: Arc<dyn Store>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(FLUSH_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            every.tick().await;
            if let Err(e) = store.flush_activity().await {
                tracing::warn!(error = %e, "activity counts could not be written; kept for the next try");
            }
        }
    });
}
