//! Ready to distribute by organization: every table that holds an organization's data carries
//! `org_id`, and each of its primary keys, unique indexes and foreign keys includes it; the
//! other tables are the reference tables listed, with why, in `scimd::store::REFERENCE_TABLES`.
//! Checked on the schema the migrations build on each database.

use std::collections::BTreeMap;

use sqlx::{Connection, Row};

use crate::backend_tests;
use crate::helpers::{Backend, TestApp, TestDb};
use scimd::store::REFERENCE_TABLES;

backend_tests!(
    every_key_of_an_organizations_table_includes_the_organization,
    a_database_of_the_previous_release_is_re_keyed_with_every_membership_and_email,
);

/// One table as the check sees it: its columns, and its keys as (kind and name, columns).
#[derive(Debug, Default)]
struct Table {
    columns: Vec<String>,
    keys: Vec<(String, Vec<String>)>,
}

async fn postgres_tables(url: &str) -> BTreeMap<String, Table> {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("postgres");
    let mut tables: BTreeMap<String, Table> = BTreeMap::new();
    let columns = sqlx::query(
        "select table_name::text as t, column_name::text as c from information_schema.columns \
         where table_schema = 'public' and table_name <> '_sqlx_migrations' \
         order by table_name, ordinal_position",
    )
    .fetch_all(&mut conn)
    .await
    .expect("columns");
    for row in columns {
        tables
            .entry(row.get("t"))
            .or_default()
            .columns
            .push(row.get("c"));
    }
    // Unique indexes (primary keys among them) and foreign keys, each with its columns.
    let keys = sqlx::query(
        "select t.relname::text as tbl, \
                case when x.indisprimary then 'primary key ' else 'unique index ' end \
                  || i.relname as name, \
                array(select a.attname::text from unnest(x.indkey) with ordinality k(n, o) \
                      join pg_attribute a on a.attrelid = t.oid and a.attnum = k.n \
                      order by k.o) as cols \
         from pg_index x join pg_class i on i.oid = x.indexrelid \
         join pg_class t on t.oid = x.indrelid \
         join pg_namespace s on s.oid = t.relnamespace and s.nspname = 'public' \
         where x.indisunique and t.relname <> '_sqlx_migrations' \
         union all \
         select c.conrelid::regclass::text, 'foreign key ' || c.conname, \
                array(select a.attname::text from unnest(c.conkey) with ordinality k(n, o) \
                      join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n \
                      order by k.o) \
         from pg_constraint c where c.contype = 'f' \
           and c.connamespace = 'public'::regnamespace",
    )
    .fetch_all(&mut conn)
    .await
    .expect("keys");
    for row in keys {
        let table: String = row.get(0);
        tables
            .entry(table)
            .or_default()
            .keys
            .push((row.get(1), row.get(2)));
    }
    tables
}

async fn sqlite_tables(url: &str) -> BTreeMap<String, Table> {
    let mut conn = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
    let names: Vec<String> = sqlx::query_scalar(
        "select name from sqlite_master where type = 'table' \
         and name not like 'sqlite_%' and name <> '_sqlx_migrations' order by name",
    )
    .fetch_all(&mut conn)
    .await
    .expect("tables");
    let mut tables = BTreeMap::new();
    for name in names {
        let mut table = Table::default();
        let mut primary: Vec<(i64, String)> = Vec::new();
        for row in sqlx::query(&format!("pragma table_info('{name}')"))
            .fetch_all(&mut conn)
            .await
            .expect("columns")
        {
            let column: String = row.get("name");
            let pk: i64 = row.get("pk");
            if pk > 0 {
                primary.push((pk, column.clone()));
            }
            table.columns.push(column);
        }
        primary.sort();
        if !primary.is_empty() {
            let columns = primary.into_iter().map(|(_, c)| c).collect();
            table.keys.push(("primary key".into(), columns));
        }
        for index in sqlx::query(&format!("pragma index_list('{name}')"))
            .fetch_all(&mut conn)
            .await
            .expect("indexes")
        {
            if index.get::<i64, _>("unique") != 1 {
                continue;
            }
            let index_name: String = index.get("name");
            let columns = sqlx::query(&format!("pragma index_info('{index_name}')"))
                .fetch_all(&mut conn)
                .await
                .expect("index columns")
                .iter()
                .filter_map(|row| row.get::<Option<String>, _>("name"))
                .collect();
            table
                .keys
                .push((format!("unique index {index_name}"), columns));
        }
        let mut foreign: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for row in sqlx::query(&format!("pragma foreign_key_list('{name}')"))
            .fetch_all(&mut conn)
            .await
            .expect("foreign keys")
        {
            foreign
                .entry(row.get("id"))
                .or_default()
                .push(row.get("from"));
        }
        for (id, columns) in foreign {
            table.keys.push((format!("foreign key #{id}"), columns));
        }
        tables.insert(name, table);
    }
    tables
}

async fn every_key_of_an_organizations_table_includes_the_organization(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tables = match backend {
        Backend::Postgres => postgres_tables(&app.database_url).await,
        Backend::Sqlite => sqlite_tables(&app.database_url).await,
    };
    let reference = |name: &str| REFERENCE_TABLES.iter().any(|(table, _)| *table == name);
    let mut faults = Vec::new();
    for (name, table) in &tables {
        if reference(name) {
            continue;
        }
        if !table.columns.iter().any(|c| c == "org_id") {
            faults.push(format!("{name} has no org_id"));
            continue;
        }
        for (key, columns) in &table.keys {
            if !columns.iter().any(|c| c == "org_id") {
                faults.push(format!("{name}: {key} {columns:?} lacks org_id"));
            }
        }
    }
    assert!(faults.is_empty(), "{faults:#?}");
    // The check saw the tables that matter, with the keys that were missing before.
    let members = &tables["group_members"];
    assert!(
        members
            .keys
            .iter()
            .any(|(kind, columns)| kind.starts_with("primary key")
                && columns == &["org_id", "group_id", "user_id"]),
        "{members:?}"
    );
    for name in ["users", "groups", "user_emails", "changes", "event_streams"] {
        assert!(tables.contains_key(name), "{name} missing");
    }
    // Every table listed as a reference table exists on one of the databases at least
    // (two are Postgres's only, one SQLite's).
    let only_elsewhere = match backend {
        Backend::Postgres => ["change_positions"].as_slice(),
        Backend::Sqlite => ["rate_limit_buckets", "rate_limits"].as_slice(),
    };
    for (table, _) in REFERENCE_TABLES {
        assert!(
            tables.contains_key(*table) || only_elsewhere.contains(table),
            "{table} is listed as a reference table but does not exist"
        );
    }
}

/// The release before the re-keying, then this one: memberships get their organization,
/// emails keep finding their users, and (Postgres, during a rolling upgrade) a member added
/// the old way, without `org_id`, still lands.
async fn a_database_of_the_previous_release_is_re_keyed_with_every_membership_and_email(
    backend: Backend,
) {
    let db = TestDb::create(backend).await;
    let dialect = match backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    let dir = format!("{}/migrations/{dialect}", env!("CARGO_MANIFEST_DIR"));
    let mut before = sqlx::migrate::Migrator::new(std::path::Path::new(&dir))
        .await
        .expect("migrations");
    let earlier: Vec<_> = before
        .migrations
        .iter()
        .filter(|m| m.version < 15)
        .cloned()
        .collect();
    before.migrations = std::borrow::Cow::Owned(earlier);
    let org = uuid::Uuid::now_v7().to_string();
    let (u1, u2, g) = (
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    );
    let seed = [
        format!("insert into organizations (id, slug, created_at) values ('{org}', 'old', 1)"),
        format!(
            "insert into users (id, org_id, user_name, user_name_folded, active, doc, \
             created_at, modified_at, version, doc_folded) values \
             ('{u1}', '{org}', 'a@example.com', 'a@example.com', true, \
              '{{\"userName\": \"a@example.com\"}}', 1, 1, 1, '{{\"userName\": \"a@example.com\"}}'), \
             ('{u2}', '{org}', 'b@example.com', 'b@example.com', true, \
              '{{\"userName\": \"b@example.com\"}}', 1, 1, 1, '{{\"userName\": \"b@example.com\"}}')"
        ),
        format!(
            "insert into groups (id, org_id, display_name, display_name_folded, doc, created_at, \
             modified_at, version, doc_folded) values ('{g}', '{org}', 'Old', 'old', \
             '{{\"displayName\": \"Old\"}}', 1, 1, 1, '{{\"displayName\": \"old\"}}')"
        ),
        format!(
            "insert into group_members (group_id, user_id, created_at) values ('{g}', '{u1}', 1)"
        ),
        format!(
            "insert into user_emails (user_id, org_id, value_folded) \
             values ('{u1}', '{org}', 'a@example.com'), ('{u2}', '{org}', 'b@example.com')"
        ),
    ];
    let count = "select (select count(*) from group_members where cast(org_id as text) = $1) \
                 * 10 + (select count(*) from user_emails e join users u \
                 on u.org_id = e.org_id and u.id = e.user_id where cast(u.org_id as text) = $1)";
    let old_style_member = format!(
        "insert into group_members (group_id, user_id, created_at) values ('{g}', '{u2}', 2)"
    );
    match backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
            before.run(&mut conn).await.expect("earlier migrations");
            for sql in &seed {
                sqlx::query(sql).execute(&mut conn).await.expect(sql);
            }
            reopen(&db.url).await;
            let n: i64 = sqlx::query_scalar(count)
                .bind(&org)
                .fetch_one(&mut conn)
                .await
                .expect("count");
            assert_eq!(
                n, 12,
                "one membership and two emails, each with its organization"
            );
            // A process of the previous release adds a member without org_id.
            sqlx::query(&old_style_member)
                .execute(&mut conn)
                .await
                .expect("an insert of the previous release");
            let n: i64 = sqlx::query_scalar(count)
                .bind(&org)
                .fetch_one(&mut conn)
                .await
                .expect("count");
            assert_eq!(n, 22);
        }
        Backend::Sqlite => {
            use std::str::FromStr;
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(&db.url)
                .expect("url")
                .create_if_missing(true)
                .foreign_keys(true);
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .expect("connect");
            before.run(&mut conn).await.expect("earlier migrations");
            for sql in &seed {
                sqlx::query(sql).execute(&mut conn).await.expect(sql);
            }
            conn.close().await.expect("close");
            reopen(&db.url).await;
            let mut conn = sqlx::SqliteConnection::connect_with(&options)
                .await
                .expect("connect");
            let n: i64 = sqlx::query_scalar(count)
                .bind(&org)
                .fetch_one(&mut conn)
                .await
                .expect("count");
            assert_eq!(
                n, 12,
                "one membership and two emails, each with its organization"
            );
            // Deleting a user still takes its membership and emails with it.
            sqlx::query(&format!("delete from users where id = '{u1}'"))
                .execute(&mut conn)
                .await
                .expect("delete");
            let n: i64 = sqlx::query_scalar(count)
                .bind(&org)
                .fetch_one(&mut conn)
                .await
                .expect("count");
            assert_eq!(n, 1);
        }
    }
}

/// Opens the database as `scimd serve` does: the remaining migrations run.
async fn reopen(url: &str) {
    let config = scimd::config::StoreConfig {
        database_url: url.to_string(),
        jwt_secret: Some("x".repeat(48)),
    };
    scimd::app::open_with(
        &config,
        std::time::Duration::ZERO,
        &scimd::store::StoreOptions::default(),
    )
    .await
    .expect("open and migrate");
}
