//! Why a resource operation did not happen: the request was refused (a SCIM error), the
//! store said no or could not be reached, or something broke that is nobody's request's
//! fault. `http/error.rs` turns each into its response, once.

use crate::scim::ScimError;
use crate::scim::interop::Profile;
use crate::scim::user::undefined_user_attribute;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// The request is refused; nothing changed.
    #[error(transparent)]
    Scim(#[from] ScimError),
    /// The store refused (not found, a uniqueness conflict) or failed.
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for ResourceError {
    /// A refusal of the update closure is the request's own error.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Rejected(e) => ResourceError::Scim(e),
            other => ResourceError::Store(other),
        }
    }
}

impl ResourceError {
    /// A store error, with an undefined user attribute refused as `profile` words it.
    pub fn in_profile(e: StoreError, profile: Profile) -> ResourceError {
        match e {
            StoreError::UndefinedUserAttribute(key) => {
                ResourceError::Scim(undefined_user_attribute(&key, profile))
            }
            other => other.into(),
        }
    }
}

pub type ResourceResult<T> = Result<T, ResourceError>;
