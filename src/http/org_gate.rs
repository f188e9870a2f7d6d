//! The per-organization concurrency limit: at most `org_concurrency` requests of one
//! organization run at once in this process; more wait (holding no database connection) for
//! a bounded time, then are answered 503 with `Retry-After`. Without it one tenant's slow
//! requests could hold every pooled connection and starve all the others (issue 11).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// One semaphore per organization with requests in flight.
#[derive(Debug)]
pub struct OrgGate {
    per_org: usize,
    gates: Mutex<HashMap<Uuid, Arc<Semaphore>>>,
}

/// Organizations remembered before idle ones are forgotten.
const PRUNE_ABOVE: usize = 10_000;

impl OrgGate {
    pub fn new(per_org: usize) -> OrgGate {
        OrgGate {
            per_org: per_org.clamp(1, Semaphore::MAX_PERMITS),
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// A permit for one request of `org`, waiting at most `wait`; None when none came free.
    /// The common case is one map lookup and one uncontended atomic.
    pub async fn enter(&self, org: Uuid, wait: Duration) -> Option<OwnedSemaphorePermit> {
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
            if gates.len() > PRUNE_ABOVE {
                // Only the map holds an idle organization's semaphore (a permit holds one too).
                gates.retain(|_, gate| Arc::strong_count(gate) > 1);
            }
            gates
                .entry(org)
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_org)))
                .clone()
        };
        if let Ok(permit) = gate.clone().try_acquire_owned() {
            return Some(permit);
        }
        crate::metrics::org_queued();
        // The semaphore is fair (FIFO), so a waiting request is not overtaken by later ones.
        tokio::time::timeout(wait, gate.acquire_owned())
            .await
            .ok()?
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_organization_waits_for_its_own_permits_only() {
        let gate = OrgGate::new(1);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let held = gate.enter(a, Duration::ZERO).await;
        assert!(held.is_some());
        assert!(gate.enter(a, Duration::from_millis(20)).await.is_none());
        assert!(gate.enter(b, Duration::ZERO).await.is_some());
        drop(held);
        assert!(gate.enter(a, Duration::ZERO).await.is_some());
    }
}
