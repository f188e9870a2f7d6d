//! Who is asking for a change: the organization whose data it is, and what an audit trail
//! needs to name the client (the key, the request, the address and the `User-Agent`).

use std::net::IpAddr;
use std::sync::Arc;

use uuid::Uuid;

/// The caller of a resource operation. Every operation is scoped to `org_id`: another
/// organization's resources are not found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub org_id: Uuid,
    /// The API key the request authenticated with.
    pub key_id: Uuid,
    /// That key's name, as its creator gave it (e.g. "okta").
    pub key_name: Option<Arc<str>>,
    /// The request id (`x-request-id`), echoed to the client and written to the logs.
    pub request_id: Option<String>,
    /// The client's address, after trusted proxies.
    pub client_addr: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl Caller {
    /// A caller known only by organization and key (the command line, tests).
    pub fn for_org(org_id: Uuid, key_id: Uuid) -> Caller {
        Caller {
            org_id,
            key_id,
            key_name: None,
            request_id: None,
            client_addr: None,
            user_agent: None,
        }
    }
}
