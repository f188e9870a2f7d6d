//! Who is asking for a change: the organization whose data it is, and the [`Actor`] the
//! change log names (the key, the request, the address and the `User-Agent`).

use std::sync::Arc;

use serde_json::Value;
use uuid::Uuid;

use crate::store::{Actor, ChangeRequest, Operation};

/// The caller of a resource operation. Every operation is scoped to `org_id`: another
/// organization's resources are not found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub org_id: Uuid,
    /// Shared with the middleware that records refused writes: built once per request.
    pub actor: Arc<Actor>,
}

impl Caller {
    /// A caller known only by organization and key (the command line, tests).
    pub fn for_org(org_id: Uuid, key_id: Uuid) -> Caller {
        Caller {
            org_id,
            actor: Arc::new(Actor {
                key_id: Some(key_id),
                ..Actor::default()
            }),
        }
    }

    /// The change-log request of an `operation` by this caller, with the request's data.
    pub(super) fn change(&self, operation: Operation, data: Option<Value>) -> ChangeRequest<'_> {
        ChangeRequest {
            actor: &self.actor,
            operation,
            data,
        }
    }
}
