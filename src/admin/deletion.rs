//! Removing a deleted organization's data: in batches, each its own short transaction (no
//! long transaction holds locks, no statement comes near the statement timeout), with its
//! progress in the deletion's record. Every serving process runs the worker; it resumes an
//! unfinished deletion after a restart, and several processes on one deletion only share
//! the batches.

use std::time::Duration;

use serde_json::json;

use super::{Admin, command_line};
use crate::store::admin::OrgDeletion;

/// Rows removed per transaction.
pub const DELETE_BATCH: i64 = 1_000;
/// How often the worker looks for deletions started by other processes.
const POLL: Duration = Duration::from_secs(30);
/// A pause between batches, so a large deletion leaves the database to the requests.
const BETWEEN_BATCHES: Duration = Duration::from_millis(5);

impl Admin {
    /// Removes a deleted organization's data to the end, batch by batch, calling `progress`
    /// after each batch with the rows removed so far by this call. Records the end in the
    /// admin audit trail when this call finished it.
    pub async fn run_deletion(
        &self,
        deletion: &OrgDeletion,
        batch: i64,
        mut progress: impl FnMut(u64),
    ) -> anyhow::Result<()> {
        let mut removed = 0;
        loop {
            match self.store.delete_org_batch(deletion.org_id, batch).await? {
                Some(0) => {
                    let detail = json!({"rowsRemoved": deletion.rows_removed as u64 + removed});
                    let target = Some(deletion.org_id.to_string());
                    self.record(
                        &command_line_or_worker(),
                        "org.delete.finish",
                        Some(&deletion.slug),
                        target,
                        Some(detail),
                    )
                    .await?;
                    return Ok(());
                }
                Some(n) => {
                    removed += n;
                    progress(removed);
                    tokio::time::sleep(BETWEEN_BATCHES).await;
                }
                // Finished by another process.
                None => return Ok(()),
            }
        }
    }
}

/// Who finishes a deletion: the server itself, not an operator's request.
fn command_line_or_worker() -> crate::store::Actor {
    crate::store::Actor {
        key_name: Some(std::sync::Arc::from("deletion worker")),
        ..command_line()
    }
}

/// Starts this process's deletion worker: every unfinished deletion, now, when one is
/// started here, and every [`POLL`].
pub fn spawn_deletions(admin: Admin) {
    tokio::spawn(async move {
        loop {
            match admin.store.org_deletions(super::MAX_PAGE).await {
                Ok(deletions) => {
                    for deletion in deletions.iter().filter(|d| d.finished_at.is_none()) {
                        tracing::info!(org = %deletion.slug, "removing a deleted organization's data");
                        if let Err(e) = admin.run_deletion(deletion, DELETE_BATCH, |_| {}).await {
                            tracing::warn!(org = %deletion.slug, error = %e, "organization deletion paused");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not read organization deletions"),
            }
            tokio::select! {
                _ = admin.deletions.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    });
}
