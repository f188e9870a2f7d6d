//! Bulk (RFC 7644 §3.7) in the resource layer: each operation is the same create, replace,
//! patch or delete as a single request (its own change-log entry; one that fails changes
//! nothing of its own), run in an order that satisfies the `bulkId` references
//! (`scim/bulk.rs`), until `failOnErrors` failures or the time budget. Each runs in its own
//! transaction, except that consecutive user creates share one, up to [`CREATE_BATCH`].

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use uuid::Uuid;

use super::{Caller, Groups, ResourceError, ResourceKind, Resources, Users};
use crate::scim::ScimError;
use crate::scim::bulk::{
    BulkEndpoint, BulkMethod, BulkOperation, BulkRequest, Unresolvable, duplicate_bulk_id,
};
use crate::scim::etag::EtagCondition;
use crate::store::{Doc, Versioned};

/// What became of one operation, in the order of the request.
#[derive(Debug)]
pub struct BulkOutcome {
    /// The method as the request gave it.
    pub method: Option<String>,
    pub bulk_id: Option<String>,
    pub endpoint: Option<BulkEndpoint>,
    pub result: BulkResult,
}

#[derive(Debug)]
pub enum BulkResult {
    /// Done: the resource's id and version (none after a delete), and the HTTP status a
    /// single request would have had.
    Done {
        id: Uuid,
        version: Option<i64>,
        status: u16,
    },
    Failed(ResourceError),
    /// Not started: the time budget ran out first (503).
    NotStarted,
}

impl BulkResult {
    fn failed(&self) -> bool {
        matches!(self, BulkResult::Failed(_))
    }
}

/// The most consecutive user creates written in one transaction. Each still succeeds or
/// fails on its own, with its own change-log entry; sharing the commit is what makes a
/// Bulk import several times faster than single POSTs (BENCHMARKS.md). Far below the change
/// log's room per transaction ([`crate::store`]'s `MAX_ENTRIES_PER_TRANSACTION`).
pub const CREATE_BATCH: usize = 100;

/// What the operations run so far came to: their outcomes, the bulkIds they resolved, and
/// how many failed.
struct Ledger {
    outcomes: Vec<Option<BulkOutcome>>,
    /// A declared bulkId: the id its POST created, or none when that POST failed.
    resolved: HashMap<String, Option<String>>,
    failures: usize,
}

impl Ledger {
    /// Records operation `index`'s `result`; `declares` is the bulkId of a POST that ran.
    fn settle(&mut self, index: usize, result: BulkResult, declares: Option<String>) {
        let slot = self.outcomes.get_mut(index).and_then(Option::as_mut);
        // A malformed POST's bulkId is resolved to nothing, like a failed POST's.
        let declared_id = declares.or_else(|| {
            slot.as_ref()
                .filter(|o| {
                    o.method
                        .as_deref()
                        .is_some_and(|m| m.eq_ignore_ascii_case("POST"))
                })
                .and_then(|o| o.bulk_id.clone())
        });
        if let Some(bulk_id) = declared_id {
            let id = match &result {
                BulkResult::Done { id, .. } => Some(id.to_string()),
                _ => None,
            };
            self.resolved.entry(bulk_id).or_insert(id);
        }
        if result.failed() {
            self.failures += 1;
        }
        if let Some(outcome) = slot {
            outcome.result = result;
        }
    }
}

/// Consecutive user creates waiting to be written together: (operation index, bulkId, body).
type CreateBatch = Vec<(usize, Option<String>, Doc)>;

impl Resources {
    /// Runs a Bulk request's operations for `caller` until done, until `failOnErrors`
    /// operations failed (the rest are left out of the outcome, as RFC 7644 §3.7.3 says), or
    /// until `deadline` (the operations not started are reported `NotStarted`).
    pub async fn bulk(
        &self,
        caller: &Caller,
        request: BulkRequest,
        deadline: Instant,
    ) -> Vec<Option<BulkOutcome>> {
        // Only a POST's bulkId can be referred to (it names what the POST creates); a
        // malformed POST still declares it, so a reference to it fails as a reference to a
        // failed operation does.
        let mut declared: HashSet<String> = HashSet::new();
        let mut pending: Vec<(usize, Result<BulkOperation, ResourceError>, HashSet<String>)> =
            Vec::new();
        let mut outcomes: Vec<Option<BulkOutcome>> = Vec::with_capacity(request.entries.len());
        for (index, entry) in request.entries.into_iter().enumerate() {
            let is_post = entry
                .method
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case("POST"));
            let mut operation = entry.operation.map_err(ResourceError::from);
            if let Some(id) = entry.bulk_id.as_ref().filter(|_| is_post)
                && !declared.insert(id.clone())
            {
                operation = Err(duplicate_bulk_id(id).into());
            }
            let references = operation
                .as_ref()
                .map(BulkOperation::references)
                .unwrap_or_default();
            outcomes.push(Some(BulkOutcome {
                method: entry.method,
                bulk_id: entry.bulk_id,
                endpoint: operation.as_ref().ok().map(|op| op.endpoint),
                result: BulkResult::NotStarted,
            }));
            pending.push((index, operation, references));
        }
        let stop_after = request.fail_on_errors.unwrap_or(usize::MAX);
        let mut ledger = Ledger {
            outcomes,
            resolved: HashMap::new(),
            failures: 0,
        };
        let mut batch: CreateBatch = Vec::new();
        // Each pass takes the operations in the request's order and runs every one whose
        // references are all resolved; one that waits for a later operation runs in a later
        // pass. A pass that runs nothing leaves only operations waiting on each other.
        loop {
            let mut progressed = false;
            let mut waiting = Vec::new();
            for (index, operation, references) in std::mem::take(&mut pending) {
                let user_post = matches!(&operation, Ok(op)
                    if op.method == BulkMethod::Post && op.endpoint == BulkEndpoint::Users);
                // Creates waiting in the batch are written before any other operation
                // runs, so the operations take effect in the request's order.
                if !user_post {
                    progressed |= self.write_batch(caller, &mut batch, &mut ledger).await;
                }
                let blocked = references
                    .iter()
                    .find_map(|r| match ledger.resolved.get(r) {
                        Some(Some(_)) => None,
                        Some(None) => Some(Some(Unresolvable::Failed(r.clone()))),
                        None if !declared.contains(r) => {
                            Some(Some(Unresolvable::Undeclared(r.clone())))
                        }
                        None => Some(None),
                    });
                if ledger.failures >= stop_after || Instant::now() >= deadline {
                    waiting.push((index, operation, references));
                    continue;
                }
                let (result, declares) = match (operation, blocked) {
                    (Err(e), _) => (BulkResult::Failed(e), None),
                    // Waiting for an operation that has not run yet.
                    (Ok(op), Some(None)) => {
                        waiting.push((index, Ok(op), references));
                        continue;
                    }
                    (Ok(op), Some(Some(why))) => {
                        (BulkResult::Failed(why.error().into()), op.bulk_id.clone())
                    }
                    (Ok(mut op), None) => {
                        // Only this operation's references (a map of all would make a
                        // Bulk of n operations cost n² copies).
                        let ids: HashMap<String, String> = references
                            .iter()
                            .filter_map(|r| Some((r.clone(), ledger.resolved.get(r)?.clone()?)))
                            .collect();
                        op.resolve(&ids);
                        if user_post {
                            batch.push((index, op.bulk_id, op.data.unwrap_or_default()));
                            // A batch never holds more creates than may still fail before
                            // failOnErrors stops the request, so none runs that a one-by-one
                            // run would not have.
                            let room = CREATE_BATCH.min(stop_after - ledger.failures);
                            if batch.len() >= room {
                                progressed |=
                                    self.write_batch(caller, &mut batch, &mut ledger).await;
                            }
                            continue;
                        }
                        let declares = op.bulk_id.clone().filter(|_| op.method == BulkMethod::Post);
                        (self.run(caller, &op).await, declares)
                    }
                };
                progressed = true;
                ledger.settle(index, result, declares);
            }
            progressed |= self.write_batch(caller, &mut batch, &mut ledger).await;
            pending = waiting;
            if pending.is_empty() || !progressed {
                break;
            }
        }
        let out_of_time = Instant::now() >= deadline;
        let mut outcomes = ledger.outcomes;
        for (index, _, _) in pending {
            let Some(slot) = outcomes.get_mut(index) else {
                continue;
            };
            if ledger.failures >= stop_after {
                // Not processed after failOnErrors: left out of the response.
                *slot = None;
            } else if let Some(outcome) = slot {
                outcome.result = if out_of_time {
                    BulkResult::NotStarted
                } else {
                    BulkResult::Failed(Unresolvable::Circular.error().into())
                };
            }
        }
        outcomes
    }

    /// Writes the creates waiting in `batch` (in one transaction: [`Resources::create_users`])
    /// and settles them; whether there were any.
    async fn write_batch(
        &self,
        caller: &Caller,
        batch: &mut CreateBatch,
        ledger: &mut Ledger,
    ) -> bool {
        if batch.is_empty() {
            return false;
        }
        let (settle, bodies): (Vec<_>, Vec<_>) = std::mem::take(batch)
            .into_iter()
            .map(|(index, bulk_id, body)| ((index, bulk_id), body))
            .unzip();
        let results = self.create_users(caller, bodies).await;
        for ((index, bulk_id), result) in settle.into_iter().zip(results) {
            let result = match result {
                Ok(id) => BulkResult::Done {
                    id,
                    version: Some(1),
                    status: 201,
                },
                Err(e) => BulkResult::Failed(e),
            };
            ledger.settle(index, result, bulk_id);
        }
        true
    }

    /// One operation, exactly as the single request would run it.
    async fn run(&self, caller: &Caller, op: &BulkOperation) -> BulkResult {
        let result = match op.endpoint {
            BulkEndpoint::Users => self.run_on::<Users>(caller, op).await,
            BulkEndpoint::Groups => self.run_on::<Groups>(caller, op).await,
        };
        match result {
            Ok(done) => done,
            Err(e) => BulkResult::Failed(e),
        }
    }

    async fn run_on<K: ResourceKind>(
        &self,
        caller: &Caller,
        op: &BulkOperation,
    ) -> Result<BulkResult, ResourceError> {
        let if_match = op.version.as_deref().map(EtagCondition::parse);
        let id = op.id.as_deref().unwrap_or_default();
        let data = || op.data.clone().unwrap_or_default();
        let done = |record: &K::Record, status: u16| BulkResult::Done {
            id: record.id(),
            version: Some(record.version()),
            status,
        };
        Ok(match op.method {
            BulkMethod::Post => done(&self.create::<K>(caller, data()).await?, 201),
            BulkMethod::Put => done(
                &self
                    .replace::<K>(caller, id, data(), if_match.as_ref())
                    .await?,
                200,
            ),
            BulkMethod::Patch => done(
                &self
                    .patch::<K>(caller, id, data(), if_match.as_ref())
                    .await?,
                200,
            ),
            BulkMethod::Delete => {
                self.delete::<K>(caller, id, if_match.as_ref()).await?;
                BulkResult::Done {
                    id: Uuid::parse_str(id)
                        .map_err(|_| ScimError::not_found("Resource not found"))?,
                    version: None,
                    status: 204,
                }
            }
        })
    }
}
