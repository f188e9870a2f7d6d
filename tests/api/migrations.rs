//! Migration parity: the Postgres and SQLite migrations carry the same numbered files and build
//! the same tables, columns (in order) and named indexes (same columns, same uniqueness), so a
//! query written once means the same on both databases. The differences that are intended are
//! listed, with the reason, in [`POSTGRES_ONLY_TABLES`] and [`SQLITE_ONLY_TABLES`]. And a
//! migration that changes a column's type under a running process's connections costs its
//! clients no read and at most one retried write.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::{Connection, Row};

use crate::helpers::{Backend, TestApp};
use crate::postgres_tests;

postgres_tests!(
    both_databases_build_the_same_tables_columns_and_indexes,
    a_column_type_changed_under_running_connections_costs_no_read,
);

/// Tables only Postgres has: the rate limiter keeps its state in the database there so several
/// processes share one limit; SQLite (one process owns the file) keeps it in memory.
const POSTGRES_ONLY_TABLES: &[&str] = &["rate_limit_buckets", "rate_limits"];

/// Tables only SQLite has: the change log's position counter. Postgres orders the log by
/// transaction id with a visibility watermark instead, so no write waits on a shared row.
const SQLITE_ONLY_TABLES: &[&str] = &["change_positions"];

/// What the comparison sees of one database: table → columns in order, and index name →
/// (table, unique, indexed columns). Primary keys and the databases' automatic names for
/// unique constraints are left out: their names differ by dialect, and the columns they
/// cover are part of each table's definition checked above.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    tables: BTreeMap<String, Vec<String>>,
    indexes: BTreeMap<String, (String, bool, Vec<String>)>,
}

fn migration_names(dialect: &str) -> Vec<String> {
    let dir = format!("{}/migrations/{dialect}", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("migrations dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();
    names
}

async fn sqlite_shape(url: &str) -> Shape {
    let mut conn = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
    let tables: Vec<String> = sqlx::query_scalar(
        "select name from sqlite_master where type = 'table' \
         and name not like 'sqlite_%' and name <> '_sqlx_migrations' order by name",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    let mut shape = Shape {
        tables: BTreeMap::new(),
        indexes: BTreeMap::new(),
    };
    for table in SQLITE_ONLY_TABLES {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} is listed as SQLite-only but does not exist: update the list"
        );
    }
    for table in tables {
        if SQLITE_ONLY_TABLES.contains(&table.as_str()) {
            continue;
        }
        // `table_xinfo`: `table_info` leaves generated columns out.
        let columns: Vec<String> = sqlx::query(&format!("pragma table_xinfo('{table}')"))
            .fetch_all(&mut conn)
            .await
            .expect("columns")
            .iter()
            .map(|row| row.get::<String, _>("name"))
            .collect();
        let indexes = sqlx::query(&format!("pragma index_list('{table}')"))
            .fetch_all(&mut conn)
            .await
            .expect("indexes");
        for index in indexes {
            let name: String = index.get("name");
            if name.starts_with("sqlite_autoindex_") {
                continue;
            }
            let unique: bool = index.get::<i64, _>("unique") == 1;
            let indexed: Vec<String> = sqlx::query(&format!("pragma index_info('{name}')"))
                .fetch_all(&mut conn)
                .await
                .expect("index columns")
                .iter()
                .filter_map(|row| row.get::<Option<String>, _>("name"))
                .collect();
            shape.indexes.insert(name, (table.clone(), unique, indexed));
        }
        shape.tables.insert(table, columns);
    }
    shape
}

async fn postgres_shape(url: &str) -> Shape {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("postgres");
    let mut shape = Shape {
        tables: BTreeMap::new(),
        indexes: BTreeMap::new(),
    };
    let columns = sqlx::query(
        "select table_name::text as t, column_name::text as c from information_schema.columns \
         where table_schema = 'public' and table_name <> '_sqlx_migrations' \
         order by table_name, ordinal_position",
    )
    .fetch_all(&mut conn)
    .await
    .expect("columns");
    for row in columns {
        shape
            .tables
            .entry(row.get("t"))
            .or_default()
            .push(row.get("c"));
    }
    // Indexed columns in key order; an expression's place (attnum 0) has no name and is left
    // out, as SQLite's `index_info` leaves it out.
    let indexes = sqlx::query(
        "select i.relname::text as name, t.relname::text as tbl, x.indisunique as uniq, \
                x.indisprimary as pkey, \
                coalesce(array_agg(a.attname::text order by k.n) \
                         filter (where a.attname is not null), '{}') as cols \
         from pg_index x \
         join pg_class i on i.oid = x.indexrelid \
         join pg_class t on t.oid = x.indrelid \
         join pg_namespace s on s.oid = t.relnamespace and s.nspname = 'public' \
         cross join lateral unnest(x.indkey) with ordinality as k(attnum, n) \
         left join pg_attribute a on a.attrelid = t.oid and a.attnum = k.attnum and k.attnum > 0 \
         where t.relname <> '_sqlx_migrations' \
         group by i.relname, t.relname, x.indisunique, x.indisprimary",
    )
    .fetch_all(&mut conn)
    .await
    .expect("indexes");
    for row in indexes {
        let name: String = row.get("name");
        // Primary keys and `unique` constraints get names of Postgres's making.
        if row.get::<bool, _>("pkey") || name.ends_with("_key") {
            continue;
        }
        let table: String = row.get("tbl");
        if POSTGRES_ONLY_TABLES.contains(&table.as_str()) {
            continue;
        }
        shape
            .indexes
            .insert(name, (table, row.get("uniq"), row.get("cols")));
    }
    for table in POSTGRES_ONLY_TABLES {
        assert!(
            shape.tables.remove(*table).is_some(),
            "{table} is listed as Postgres-only but does not exist: update the list"
        );
    }
    shape
}

#[test]
fn both_dialects_have_the_same_numbered_migrations() {
    let postgres = migration_names("postgres");
    assert!(!postgres.is_empty());
    assert_eq!(postgres, migration_names("sqlite"));
}

async fn both_databases_build_the_same_tables_columns_and_indexes() {
    let sqlite = TestApp::spawn(Backend::Sqlite).await;
    let postgres = TestApp::spawn(Backend::Postgres).await;
    let sqlite = sqlite_shape(&sqlite.database_url).await;
    let postgres = postgres_shape(&postgres.database_url).await;
    // The comparison sees what matters: e.g. the per-organization userName uniqueness.
    let user_name = sqlite.indexes.get("users_org_user_name").cloned();
    let expected = (
        "users".to_string(),
        true,
        vec!["org_id".to_string(), "user_name_folded".to_string()],
    );
    assert_eq!(user_name, Some(expected), "{:?}", sqlite.indexes);
    assert!(sqlite.tables["users"].contains(&"doc_folded".to_string()));
    assert_eq!(sqlite.tables, postgres.tables, "tables and columns differ");
    assert_eq!(sqlite.indexes, postgres.indexes, "indexes differ");
}

/// A newer release's migration changes the type of a column that scimd's statements return,
/// under connections that have those statements prepared: Postgres then refuses each of them
/// ("cached plan must not change result type", SQLSTATE 0A000), and sqlx keeps a refused
/// statement in its cache. Reads go on without an error, a write fails at most once, with a
/// 503 that asks for a retry, and the retry is applied.
async fn a_column_type_changed_under_running_connections_costs_no_read() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let id = app
        .create_user(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ann@example.com",
            "externalId": "e-1",
        }))
        .await;
    let path = format!("/scim/v2/Users/{id}");
    let patch = |name: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": name}],
        })
    };
    let page = "/scim/v2/Users?count=10";
    // Each statement prepared on the pool's connections (sequential requests reuse them).
    for _ in 0..2 {
        assert_eq!(app.get(&path).await.status, StatusCode::OK);
        assert_eq!(app.get(page).await.status, StatusCode::OK);
        let write = app.request(Method::PATCH, &path, Some(patch("Ann"))).await;
        assert_eq!(write.status, StatusCode::OK, "{:?}", write.body);
    }
    let mut other = sqlx::PgConnection::connect(&app.database_url)
        .await
        .expect("connect");
    sqlx::query("alter table users alter column external_id type varchar(1000)")
        .execute(&mut other)
        .await
        .expect("alter");

    let read = app.get(&path).await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    assert_eq!(read.body["externalId"], "e-1");
    let listed = app.get(page).await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    assert_eq!(listed.body["Resources"][0]["externalId"], "e-1");
    let first = app
        .request(Method::PATCH, &path, Some(patch("Ann B")))
        .await;
    let applied = if first.status == StatusCode::SERVICE_UNAVAILABLE {
        assert!(first.header("retry-after").is_some(), "{:?}", first.headers);
        app.request(Method::PATCH, &path, Some(patch("Ann B")))
            .await
    } else {
        first
    };
    assert_eq!(applied.status, StatusCode::OK, "{:?}", applied.body);
    assert_eq!(app.get(&path).await.body["displayName"], "Ann B");
}
