//! Retention: change-log entries and rejected writes older than `SCIMD_CHANGE_RETENTION_DAYS`
//! are deleted in the background, a small batch per statement with a pause between batches,
//! so pruning never holds a lock (or SQLite's writer) for long and never blocks a write.

use std::sync::Arc;
use std::time::Duration;

use crate::store::{Store, now_ms};

/// Rows deleted per statement.
const BATCH: i64 = 500;
/// Pause between two batches while there is more to prune.
const BETWEEN_BATCHES: Duration = Duration::from_millis(50);
/// How often the pruner wakes up when there is nothing to prune.
const EVERY: Duration = Duration::from_secs(600);

/// Prunes until there is nothing older than `retention`; the number of rows deleted.
pub async fn prune_once(store: &dyn Store, retention: Duration) -> anyhow::Result<u64> {
    let before = now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let mut pruned = 0;
    loop {
        let deleted = store.prune_audit(before, BATCH).await?;
        pruned += deleted;
        if deleted == 0 {
            return Ok(pruned);
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}

/// Runs [`prune_once`] now and then every ten minutes, for as long as the runtime runs.
pub fn spawn(store: Arc<dyn Store>, retention: Duration) {
    tokio::spawn(async move {
        loop {
            match prune_once(&*store, retention).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "change log: old entries pruned"),
                Err(e) => tracing::warn!(error = %e, "change log: pruning failed"),
            }
            tokio::time::sleep(EVERY).await;
        }
    });
}
