//! What the shared SQL skeleton needs of a sqlx database, stated once.
//!
//! sqlx's generic API is bounded by higher-ranked clauses (`for<'c> &'c mut Connection:
//! Executor<'c>`, `Encode`/`Decode` for every bound or read type) that Rust does not carry from
//! a trait to its users, so code generic over `sqlx::Database` repeats them on every function.
//! Here they are written on one blanket impl instead: [`SqlDb`] holds for Postgres and SQLite
//! alike, and the skeleton calls its methods without a where clause of its own. Only ids differ
//! in representation between the two (native `uuid` vs text) and are left to the dialect.

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use serde_json::Value;
use sqlx::database::HasStatementCache;
use sqlx::encode::Encode;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::types::Json;
use sqlx::{
    Arguments, ColumnIndex, Connection, Database, Decode, Executor, IntoArguments, Pool, Row,
    TransactionManager, Type,
};
use uuid::Uuid;

use super::super::Doc;
use super::doc_text::{DocJson, DocText, JsonbText};

/// A value bound to a statement parameter (`$n`), in order.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    /// An id: `uuid` on Postgres, hyphenated text on SQLite (the dialect binds it).
    Uuid(uuid::Uuid),
    /// An id or null (bound by the dialect, like [`Arg::Uuid`]).
    OptUuid(Option<uuid::Uuid>),
    /// A list of ids, used with the dialect's `in_ids` (an array on Postgres, JSON on SQLite).
    Ids(&'a [uuid::Uuid]),
    Text(&'a str),
    OptText(Option<&'a str>),
    Int(i64),
    OptInt(Option<i64>),
    Real(f64),
    Bool(bool),
    OptBool(Option<bool>),
    /// A JSON document (`jsonb` on Postgres, JSON text on SQLite).
    Doc(&'a Doc),
    /// A JSON document for a `json` column (Postgres's `users.doc`), text on SQLite.
    DocJson(&'a Doc),
    /// JSON text, written already (a folded copy), for a `jsonb` column; text on SQLite.
    JsonText(&'a str),
    /// Any JSON value, or null.
    Json(&'a Value),
    OptJson(Option<&'a Value>),
}

impl Arg<'_> {
    /// About how many bytes the value takes bound (Postgres's binary form, whose length word
    /// each value also has), so that the arguments' buffer is reserved once: grown value by
    /// value, it was about 3,000 instructions of a PATCH's 175,000 (callgrind, 2026-12-07).
    /// A document's serialized length is not known before it is written: a typical user's.
    pub fn size_hint(&self) -> usize {
        const DOCUMENT: usize = 512;
        4 + match self {
            Arg::Uuid(_) | Arg::OptUuid(_) => 16,
            Arg::Ids(ids) => 20 + 20 * ids.len(),
            Arg::Text(v) => v.len(),
            Arg::OptText(v) => v.map_or(0, str::len),
            Arg::Int(_) | Arg::OptInt(_) | Arg::Real(_) => 8,
            Arg::Bool(_) | Arg::OptBool(_) => 1,
            Arg::JsonText(v) => 1 + v.len(),
            Arg::Doc(_) | Arg::DocJson(_) | Arg::Json(_) | Arg::OptJson(_) => DOCUMENT,
        }
    }
}

/// An [`Arg`] that owns its value: for a statement run by another task than the one that
/// built it (a group's member changes, run together: `member_queue.rs`).
#[derive(Debug, Clone)]
pub enum OwnedArg {
    Uuid(uuid::Uuid),
    OptUuid(Option<uuid::Uuid>),
    Ids(Vec<uuid::Uuid>),
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Real(f64),
    Bool(bool),
    OptBool(Option<bool>),
    Doc(Doc),
    DocJson(Doc),
    JsonText(String),
    Json(Value),
    OptJson(Option<Value>),
}

impl OwnedArg {
    /// A copy of `arg`'s value.
    pub fn of(arg: Arg<'_>) -> OwnedArg {
        match arg {
            Arg::Uuid(v) => OwnedArg::Uuid(v),
            Arg::OptUuid(v) => OwnedArg::OptUuid(v),
            Arg::Ids(v) => OwnedArg::Ids(v.to_vec()),
            Arg::Text(v) => OwnedArg::Text(v.to_owned()),
            Arg::OptText(v) => OwnedArg::OptText(v.map(str::to_owned)),
            Arg::Int(v) => OwnedArg::Int(v),
            Arg::OptInt(v) => OwnedArg::OptInt(v),
            Arg::Real(v) => OwnedArg::Real(v),
            Arg::Bool(v) => OwnedArg::Bool(v),
            Arg::OptBool(v) => OwnedArg::OptBool(v),
            Arg::Doc(v) => OwnedArg::Doc(v.clone()),
            Arg::DocJson(v) => OwnedArg::DocJson(v.clone()),
            Arg::JsonText(v) => OwnedArg::JsonText(v.to_owned()),
            Arg::Json(v) => OwnedArg::Json(v.clone()),
            Arg::OptJson(v) => OwnedArg::OptJson(v.cloned()),
        }
    }

    /// The value to bind.
    pub fn as_arg(&self) -> Arg<'_> {
        match self {
            OwnedArg::Uuid(v) => Arg::Uuid(*v),
            OwnedArg::OptUuid(v) => Arg::OptUuid(*v),
            OwnedArg::Ids(v) => Arg::Ids(v),
            OwnedArg::Text(v) => Arg::Text(v),
            OwnedArg::OptText(v) => Arg::OptText(v.as_deref()),
            OwnedArg::Int(v) => Arg::Int(*v),
            OwnedArg::OptInt(v) => Arg::OptInt(*v),
            OwnedArg::Real(v) => Arg::Real(*v),
            OwnedArg::Bool(v) => Arg::Bool(*v),
            OwnedArg::OptBool(v) => Arg::OptBool(*v),
            OwnedArg::Doc(v) => Arg::Doc(v),
            OwnedArg::DocJson(v) => Arg::DocJson(v),
            OwnedArg::JsonText(v) => Arg::JsonText(v),
            OwnedArg::Json(v) => Arg::Json(v),
            OwnedArg::OptJson(v) => Arg::OptJson(v.as_ref()),
        }
    }
}

/// The statements and column reads the skeleton uses, for any sqlx database that has them.
pub trait SqlDb: Database {
    /// Binds every kind of [`Arg`] but ids, whose representation is the dialect's.
    fn push<'q>(args: &mut Self::Arguments<'q>, arg: Arg<'q>) -> Result<(), BoxDynError>;

    fn fetch_optional<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        sql: &'q str,
        args: Self::Arguments<'q>,
    ) -> BoxFuture<'e, Result<Option<Self::Row>, sqlx::Error>>;

    fn fetch_all<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        sql: &'q str,
        args: Self::Arguments<'q>,
    ) -> BoxFuture<'e, Result<Vec<Self::Row>, sqlx::Error>>;

    fn execute<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        sql: &'q str,
        args: Self::Arguments<'q>,
    ) -> BoxFuture<'e, Result<Self::QueryResult, sqlx::Error>>;

    /// Whether `conn` is inside a transaction (a statement that failed there cannot simply be
    /// run again: the transaction is aborted).
    fn in_transaction(conn: &Self::Connection) -> bool;

    /// Drops the statements `conn` has prepared when `error` says one of them is stale
    /// ([`is_stale_plan`]), so the next statement prepares afresh; whether it did.
    fn forget_stale_statements<'e>(
        conn: &'e mut Self::Connection,
        error: &'e sqlx::Error,
    ) -> BoxFuture<'e, bool>;

    /// The rows as they arrive, for pages that stop at a byte budget.
    fn fetch<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        sql: &'q str,
        args: Self::Arguments<'q>,
    ) -> BoxStream<'e, Result<Self::Row, sqlx::Error>>;

    fn text(row: &Self::Row, column: &str) -> Result<String, sqlx::Error>;
    fn opt_text(row: &Self::Row, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn int(row: &Self::Row, column: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(row: &Self::Row, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn flag(row: &Self::Row, column: &str) -> Result<bool, sqlx::Error>;
    fn opt_flag(row: &Self::Row, column: &str) -> Result<Option<bool>, sqlx::Error>;
    /// [`SqlDb::text`] of the column at `index`: for the rows read most (a user's, whose own
    /// columns come first in every statement that reads one), where looking each column up by
    /// its name was about 4 % of a page's instructions. Without sqlx's check of the column's
    /// type against the Rust type (about 4 % more): the statements are this store's own, a
    /// test holds their columns' order, and the tests read them on both databases; a value
    /// of another size or not UTF-8 still fails to decode.
    fn text_at(row: &Self::Row, index: usize) -> Result<String, sqlx::Error>;
    fn opt_text_at(row: &Self::Row, index: usize) -> Result<Option<String>, sqlx::Error>;
    fn int_at(row: &Self::Row, index: usize) -> Result<i64, sqlx::Error>;
    fn opt_flag_at(row: &Self::Row, index: usize) -> Result<Option<bool>, sqlx::Error>;
    fn doc_text_at(row: &Self::Row, index: usize) -> Result<Box<str>, sqlx::Error>;
    fn doc(row: &Self::Row, column: &str) -> Result<Doc, sqlx::Error>;
    /// A document column as its text, not checked as JSON ([`DocText`]): whatever uses the
    /// text parses it.
    fn doc_text(row: &Self::Row, column: &str) -> Result<Box<str>, sqlx::Error>;
    /// A JSON column the statement may not have selected: `None` when it is absent or null.
    fn opt_json(row: &Self::Row, column: &str) -> Result<Option<Value>, sqlx::Error>;
    /// A JSON array of `[id, name]` pairs in column `column`, which the statement selects at
    /// `index` or not at all (`None` then, or when null), decoded without a tree in between.
    fn opt_id_name_pairs_at(
        row: &Self::Row,
        index: usize,
        column: &str,
    ) -> Result<Option<Vec<(Uuid, String)>>, sqlx::Error>;

    /// Applies the migrations of `migrator` not yet applied, on `pool`.
    fn run_migrations<'e>(
        migrator: &'e Migrator,
        pool: &'e Pool<Self>,
    ) -> BoxFuture<'e, Result<(), MigrateError>>;
}

impl<DB> SqlDb for DB
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'a> &'a str: ColumnIndex<DB::Row> + Encode<'a, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
    for<'a> Option<&'a str>: Encode<'a, DB>,
    for<'a> Json<&'a Doc>: Encode<'a, DB> + Type<DB>,
    for<'a> DocJson<'a>: Encode<'a, DB> + Type<DB>,
    for<'a> JsonbText<'a>: Encode<'a, DB> + Type<DB>,
    for<'a> Json<&'a Value>: Encode<'a, DB> + Type<DB>,
    for<'a> Option<Json<&'a Value>>: Encode<'a, DB>,
    for<'r> Option<i64>: Encode<'r, DB>,
    for<'r> Option<bool>: Encode<'r, DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB> + Encode<'r, DB> + Type<DB>,
    for<'r> f64: Encode<'r, DB> + Type<DB>,
    for<'r> bool: Decode<'r, DB> + Encode<'r, DB> + Type<DB>,
    for<'r> Json<Doc>: Decode<'r, DB> + Type<DB>,
    for<'r> DocText: Decode<'r, DB> + Type<DB>,
    for<'r> Json<Value>: Decode<'r, DB> + Type<DB>,
    DB: HasStatementCache,
    DB::Connection: Migrate,
{
    fn push<'q>(args: &mut Self::Arguments<'q>, arg: Arg<'q>) -> Result<(), BoxDynError> {
        match arg {
            Arg::Text(v) => args.add(v),
            Arg::OptText(v) => args.add(v),
            Arg::Int(v) => args.add(v),
            Arg::OptInt(v) => args.add(v),
            Arg::Real(v) => args.add(v),
            Arg::Bool(v) => args.add(v),
            Arg::OptBool(v) => args.add(v),
            Arg::Doc(v) => args.add(Json(v)),
            Arg::DocJson(v) => args.add(DocJson(v)),
            Arg::JsonText(v) => args.add(JsonbText(v)),
            Arg::Json(v) => args.add(Json(v)),
            Arg::OptJson(v) => args.add(v.map(Json)),
            Arg::Uuid(_) | Arg::OptUuid(_) | Arg::Ids(_) => {
                Err("ids are bound by the dialect".into())
            }
        }
    }

    fn fetch_optional<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        sql: &'q str,
        args: Self::Arguments<'q>,
    ) -> BoxFuture<'e, Result<Option<Self::Row>, sqlx::Error>> {
        conn.fetch_optional(sqlx::query_with(sql, args))
    }

    fn fetch_all<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        sql: &'q str,
        args: Self::Arguments<'q>,
    ) -> BoxFuture<'e, Result<Vec<Self::Row>, sqlx::Error>> {
        conn.fetch_all(sqlx::query_with(sql, args))
    }

    fn execute<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        sql: &'q str,
        args: Self::Arguments<'q>,
    ) -> BoxFuture<'e, Result<Self::QueryResult, sqlx::Error>> {
        conn.execute(sqlx::query_with(sql, args))
    }

    fn in_transaction(conn: &Self::Connection) -> bool {
        <DB::TransactionManager as TransactionManager>::get_transaction_depth(conn) > 0
    }

    fn forget_stale_statements<'e>(
        conn: &'e mut Self::Connection,
        error: &'e sqlx::Error,
    ) -> BoxFuture<'e, bool> {
        Box::pin(async move {
            if !is_stale_plan(error) {
                return false;
            }
            // Closing statements is a protocol message Postgres takes even in an aborted
            // transaction; a connection that cannot do it fails its next statement instead.
            if let Err(e) = conn.clear_cached_statements().await {
                tracing::warn!(error = %e, "dropping stale prepared statements failed");
            }
            true
        })
    }

    fn fetch<'e, 'q: 'e>(
        conn: &'e mut Self::Connection,
        sql: &'q str,
        args: Self::Arguments<'q>,
    ) -> BoxStream<'e, Result<Self::Row, sqlx::Error>> {
        conn.fetch(sqlx::query_with(sql, args))
    }

    fn text(row: &Self::Row, column: &str) -> Result<String, sqlx::Error> {
        row.try_get(column)
    }

    fn opt_text(row: &Self::Row, column: &str) -> Result<Option<String>, sqlx::Error> {
        row.try_get(column)
    }

    fn int(row: &Self::Row, column: &str) -> Result<i64, sqlx::Error> {
        row.try_get(column)
    }

    fn opt_int(row: &Self::Row, column: &str) -> Result<Option<i64>, sqlx::Error> {
        row.try_get(column)
    }

    fn flag(row: &Self::Row, column: &str) -> Result<bool, sqlx::Error> {
        row.try_get(column)
    }

    fn opt_flag(row: &Self::Row, column: &str) -> Result<Option<bool>, sqlx::Error> {
        row.try_get(column)
    }

    fn text_at(row: &Self::Row, index: usize) -> Result<String, sqlx::Error> {
        row.try_get_unchecked(index)
    }

    fn opt_text_at(row: &Self::Row, index: usize) -> Result<Option<String>, sqlx::Error> {
        row.try_get_unchecked(index)
    }

    fn int_at(row: &Self::Row, index: usize) -> Result<i64, sqlx::Error> {
        row.try_get_unchecked(index)
    }

    fn opt_flag_at(row: &Self::Row, index: usize) -> Result<Option<bool>, sqlx::Error> {
        row.try_get_unchecked(index)
    }

    fn doc_text_at(row: &Self::Row, index: usize) -> Result<Box<str>, sqlx::Error> {
        row.try_get_unchecked::<DocText, _>(index)
            .map(|DocText(text)| text)
    }

    fn doc(row: &Self::Row, column: &str) -> Result<Doc, sqlx::Error> {
        row.try_get::<Json<Doc>, _>(column).map(|Json(doc)| doc)
    }

    fn doc_text(row: &Self::Row, column: &str) -> Result<Box<str>, sqlx::Error> {
        row.try_get::<DocText, _>(column).map(|DocText(text)| text)
    }

    fn opt_json(row: &Self::Row, column: &str) -> Result<Option<Value>, sqlx::Error> {
        match row.try_get::<Option<Json<Value>>, _>(column) {
            Ok(value) => Ok(value.map(|Json(v)| v)),
            Err(sqlx::Error::ColumnNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn opt_id_name_pairs_at(
        row: &Self::Row,
        index: usize,
        column: &str,
    ) -> Result<Option<Vec<(Uuid, String)>>, sqlx::Error> {
        // Not selected: no error built to be dropped (about 280 instructions a row of a page).
        if row
            .columns()
            .get(index)
            .is_none_or(|c| sqlx::Column::name(c) != column)
        {
            return Ok(None);
        }
        let Some(DocText(text)) = row.try_get::<Option<DocText>, _>(index)? else {
            return Ok(None);
        };
        crate::scim::json_text::id_name_pairs(&text)
            .map(Some)
            .map_err(|e| sqlx::Error::ColumnDecode {
                index: column.to_string(),
                source: Box::new(e),
            })
    }

    fn run_migrations<'e>(
        migrator: &'e Migrator,
        pool: &'e Pool<Self>,
    ) -> BoxFuture<'e, Result<(), MigrateError>> {
        Box::pin(migrator.run(pool))
    }
}

/// Whether `error` is Postgres refusing a prepared statement whose result changed type since
/// it was prepared (SQLSTATE 0A000, "cached plan must not change result type"): a migration
/// changed a column's type under a connection opened before it. sqlx keeps such a statement
/// in the connection's cache, where it would fail every time; SQLite prepares again by itself.
pub fn is_stale_plan(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(e) => {
            e.code().as_deref() == Some("0A000")
                && e.message()
                    .contains("cached plan must not change result type")
        }
        _ => false,
    }
}

/// Compile-time proof that both backends have what the skeleton needs.
#[allow(dead_code)]
fn both_backends_are_sql_dbs() {
    fn is_sql_db<DB: SqlDb>() {}
    is_sql_db::<sqlx::Postgres>();
    is_sql_db::<sqlx::Sqlite>();
}
