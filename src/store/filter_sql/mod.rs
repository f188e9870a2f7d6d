//! SCIM filters (RFC 7644 §3.4.2.2) and sort keys translated to SQL, once, for both backends.
//!
//! Translation only: whether a filter fits the resource type is decided before, by
//! `scim::filter::check` (which also names the indexed attributes these columns hold). What
//! the check refuses is refused here too, with a plain error, never translated by guess.
//!
//! The output is a boolean SQL expression with `$n` placeholders plus the values to bind in
//! order; every value is bound, never spliced in. Attribute names are resolved through the
//! schema (an allow-list), so only known attributes reach SQL, and JSON keys are bound too.
//! Indexed columns (`id`, `userName`, `externalId`, `displayName`, `meta.*`, `active`) are
//! compared directly so their indexes apply; everything else is read from `doc_folded`, the
//! document with its caseExact=false strings folded in Rust (see `store::fold`), and compared
//! with an operand folded the same way: no SQL `lower()`, whose rules differ between SQLite
//! (ASCII only) and Postgres (locale). Multi-valued attributes match when any element does
//! (`exists` over the array).
//!
//! Layout: `table` maps attributes to columns and JSON keys, `builder` accumulates SQL text
//! and bound values, `compare` translates filters, `list` builds sort keys and page
//! statements.

mod builder;
mod compare;
mod list;
mod table;

#[cfg(test)]
mod tests;

pub use builder::SqlBuilder;
pub use compare::filter_sql;
pub use list::{ListSql, at_most_one, list_sql, sort_sql};
pub use table::{GROUPS, Table, USERS};

use uuid::Uuid;

/// The SQL dialect differences that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

/// A value to bind; each backend binds these in order.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
    Real(f64),
    Bool(bool),
    Uuid(Uuid),
}
