//! The audit trail around the change log: rejected write requests recorded off the request
//! path ([`rejections`]), the retention that prunes old entries in the background
//! ([`retention`]), and the reading behind `scimd audit` ([`report`]).
//!
//! The change log itself is written by the store, in the transaction of each change
//! (`store/sql/changes.rs`).

pub mod rejections;
pub mod report;
pub mod retention;
