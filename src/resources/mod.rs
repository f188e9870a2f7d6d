//! The resource layer: the one place a User or Group changes. No axum here: HTTP handlers
//! and Bulk operations (`bulk.rs`) call [`Resources`] with a [`Caller`] and get records or an
//! error back.
//!
//! What is the same for every resource type (reading by id, list and search, delete, the PUT
//! mode, `If-Match`) is written once, generic over [`ResourceKind`]; `users.rs` and
//! `groups.rs` hold only what differs (validation, passwords, members). Each change is one
//! store transaction around a pure closure built here from `src/scim`.

mod bulk;
mod caller;
mod error;
mod groups;
mod kind;
mod list;
mod memberships;
mod password;
mod search;
mod users;

use std::sync::Arc;

use tokio::sync::{OnceCell, Semaphore};

pub use bulk::{BulkOutcome, BulkResult};
pub use caller::Caller;
pub use error::{ResourceError, ResourceResult};
pub use groups::Groups;
pub use kind::{Loaded, Related, ResourceKind, View};
pub use list::{ListRequest, Page, PageCursors};
pub use memberships::MembershipPage;
pub use search::RootPage;
pub use users::Users;

use crate::config::Settings;
use crate::store::Store;

/// The resource layer's shared state: the store, the settings that shape a change (PUT
/// mode, caps, userName format) and the permits for password hashing.
#[derive(Clone)]
pub struct Resources {
    store: Arc<dyn Store>,
    settings: Arc<Settings>,
    /// Permits for argon2 hashing (`Settings::password_hash_concurrency`).
    password_hashes: Arc<Semaphore>,
    /// The secret that seals list cursors (`list.rs`), read from the store once.
    cursor_secret: Arc<OnceCell<String>>,
}

impl Resources {
    pub fn new(store: Arc<dyn Store>, settings: Arc<Settings>) -> Resources {
        Resources {
            password_hashes: Arc::new(Semaphore::new(settings.password_hash_concurrency.max(1))),
            cursor_secret: Arc::default(),
            store,
            settings,
        }
    }
}
