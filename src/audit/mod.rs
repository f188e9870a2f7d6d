//! The audit trail around the change log: rejected write requests recorded off the request
//! path ([`rejections`]), the retention that prunes old entries in the background
//! ([`retention`]), the reading behind `scimd audit` ([`report`]), and the writing of the
//! console's hourly activity counts ([`activity`]).
//!
//! The change log itself is written by the store, in the transaction of each change
//! (`store/sql/changes.rs`).

pub mod activity;
pub mod rejections;
pub mod report;
pub mod retention;
