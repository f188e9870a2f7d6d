//! A new SQLite file gets the schema its migrations build in one transaction, instead of
//! running them one by one.
//!
//! Run in order on an empty file, the migrations cost most of a cold start: each is two
//! commits (the migration, then sqlx's record of its duration), and every `alter table`
//! makes SQLite parse the whole schema again to check it (`renameTableTest`), so their cost
//! grows with each migration added (callgrind, 2026-12-07: about two thirds of the
//! instructions from exec to the first `/healthz` answer went to parsing SQL). The baseline is
//! what those migrations leave in `sqlite_master` and in their tables, written once to
//! `migrations/sqlite-baseline.sql`; a test migrates an empty file step by step and checks
//! that the baseline is exactly what that built, so the two never differ. A file that holds
//! anything at all (an older scimd's schema, half of one) is migrated step by step as before.

use sqlx::migrate::Migrator;
use sqlx::{Executor, Pool, Sqlite, SqliteConnection};

use super::StoreResult;

/// The schema and rows the migrations in `migrations/sqlite` leave in an empty file, as the
/// tests' `dump` writes them (the test `the_baseline_is_what_the_migrations_build` checks it).
pub const BASELINE: &str = include_str!("../../migrations/sqlite-baseline.sql");

/// sqlx's record of applied migrations, created as sqlx 0.8 creates it (`sqlx-sqlite`'s
/// `ensure_migrations_table`), so that its migrator finds every migration applied.
const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// The last migration the baseline holds, from its `-- through migration N` line.
fn baseline_version() -> Option<i64> {
    BASELINE
        .lines()
        .find_map(|line| line.strip_prefix("-- through migration "))
        .and_then(|version| version.trim().parse().ok())
}

/// On a file without any table, index or trigger: the baseline, with the migrations of
/// `migrator` it holds recorded as applied, in one transaction; the migrator then runs any
/// later one as it would have. Whether it did; a file that holds anything is left to the
/// migrator. The write lock is taken before looking (`begin
/// immediate`), so two processes opening one new file cannot both apply it.
pub async fn apply_to_empty(pool: &Pool<Sqlite>, migrator: &Migrator) -> StoreResult<bool> {
    let mut conn = pool.acquire().await?;
    conn.execute("begin immediate").await?;
    let applied = fill_if_empty(&mut conn, migrator).await;
    let end = if matches!(applied, Ok(true)) {
        "commit"
    } else {
        "rollback"
    };
    conn.execute(end).await?;
    applied
}

async fn fill_if_empty(conn: &mut SqliteConnection, migrator: &Migrator) -> StoreResult<bool> {
    let (objects,): (i64,) = sqlx::query_as("select count(*) from sqlite_master")
        .fetch_one(&mut *conn)
        .await?;
    let Some(through) = baseline_version() else {
        return Ok(false);
    };
    if objects > 0 {
        return Ok(false);
    }
    conn.execute(BASELINE).await?;
    conn.execute(MIGRATIONS_TABLE).await?;
    // Only those the baseline holds: were it older than the migrations (the test that keeps
    // it equal to them fails then), the rest still run, none is recorded without its schema.
    for migration in migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration() && m.version <= through)
    {
        sqlx::query(
            "insert into _sqlx_migrations (version, description, success, checksum, \
             execution_time) values (?1, ?2, true, ?3, 0)",
        )
        .bind(migration.version)
        .bind(&*migration.description)
        .bind(&*migration.checksum)
        .execute(&mut *conn)
        .await?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    use super::*;
    use crate::store::sql::Dialect;
    use crate::store::sqlite::SqliteDialect;

    async fn empty_file() -> Pool<Sqlite> {
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(SqliteConnectOptions::new().in_memory(true))
            .await
            .unwrap()
    }

    /// A file's schema and rows as SQL that builds them again: its tables, indexes and triggers
    /// as `sqlite_master` holds them (SQLite's own indexes and sqlx's table left out), then an
    /// `insert` for every row. Objects and rows come in a fixed order, so two files built alike
    /// dump alike.
    async fn dump(conn: &mut SqliteConnection) -> sqlx::Result<String> {
        let mut out = String::from(
            "-- The schema and rows that migrations/sqlite/ leave in an empty SQLite file, applied in\n\
             -- one transaction to a new file (src/store/sqlite_baseline.rs). Written by the test\n\
             -- the_baseline_is_what_the_migrations_build (SCIMD_WRITE_BASELINE=1); never edited by hand.\n",
        );
        let (recorded,): (bool,) = sqlx::query_as(
            "select count(*) > 0 from sqlite_master where name = '_sqlx_migrations'",
        )
        .fetch_one(&mut *conn)
        .await?;
        if recorded {
            let (through,): (i64,) = sqlx::query_as("select max(version) from _sqlx_migrations")
                .fetch_one(&mut *conn)
                .await?;
            out.push_str(&format!("-- through migration {through}\n"));
        }
        let objects: Vec<(String, String, String)> = sqlx::query_as(
            "select type, name, sql from sqlite_master where sql is not null \
             and name not like 'sqlite_%' and name <> '_sqlx_migrations' \
             order by case type when 'table' then 0 when 'index' then 1 when 'view' then 2 \
             else 3 end, name",
        )
        .fetch_all(&mut *conn)
        .await?;
        for (_, _, sql) in &objects {
            out.push_str(sql);
            out.push_str(";\n");
        }
        for (kind, table, _) in &objects {
            if kind != "table" {
                continue;
            }
            let (columns,): (String,) = sqlx::query_as(
                "select group_concat('quote(\"' || name || '\")', ' || '','' || ') \
                 from pragma_table_info(?1)",
            )
            .bind(table)
            .fetch_one(&mut *conn)
            .await?;
            let rows = format!(
                "select 'insert into \"{table}\" values (' || {columns} || ');' \
                 from \"{table}\" order by rowid"
            );
            let inserts: Vec<(String,)> = sqlx::query_as(&rows).fetch_all(&mut *conn).await?;
            for (insert,) in inserts {
                out.push_str(&insert);
                out.push('\n');
            }
        }
        Ok(out)
    }

    async fn dumped(pool: &Pool<Sqlite>) -> String {
        dump(&mut pool.acquire().await.unwrap()).await.unwrap()
    }

    async fn applied(pool: &Pool<Sqlite>) -> Vec<(i64, String, Vec<u8>, bool)> {
        sqlx::query_as(
            "select version, description, checksum, success from _sqlx_migrations \
             order by version",
        )
        .fetch_all(pool)
        .await
        .unwrap()
    }

    /// The baseline file is a dump of an empty file migrated step by step. After adding a
    /// migration, `SCIMD_WRITE_BASELINE=1 cargo test the_baseline` writes it again.
    #[tokio::test]
    async fn the_baseline_is_what_the_migrations_build() {
        let stepwise = empty_file().await;
        SqliteDialect::migrator().run(&stepwise).await.unwrap();
        let expected = dumped(&stepwise).await;
        if std::env::var_os("SCIMD_WRITE_BASELINE").is_some() {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/migrations/sqlite-baseline.sql"
            );
            std::fs::write(path, &expected).unwrap();
        }
        assert!(
            BASELINE == expected,
            "migrations/sqlite-baseline.sql is not what the migrations build: run \
             SCIMD_WRITE_BASELINE=1 cargo test the_baseline, and review its diff"
        );

        let from_baseline = empty_file().await;
        let migrator = SqliteDialect::migrator();
        assert!(apply_to_empty(&from_baseline, migrator).await.unwrap());
        assert_eq!(dumped(&from_baseline).await, expected);
        // sqlx's migrator finds nothing to do, and both files record the same migrations.
        migrator.run(&from_baseline).await.unwrap();
        assert_eq!(dumped(&from_baseline).await, expected);
        assert_eq!(applied(&from_baseline).await, applied(&stepwise).await);
    }

    #[tokio::test]
    async fn a_file_that_holds_anything_is_left_to_the_migrator() {
        let pool = empty_file().await;
        sqlx::query("create table notes (body text)")
            .execute(&pool)
            .await
            .unwrap();
        let migrator = SqliteDialect::migrator();
        assert!(!apply_to_empty(&pool, migrator).await.unwrap());
        let before = dumped(&pool).await.to_lowercase();
        assert!(before.contains("create table notes"));
        assert!(!before.contains("create table users"));
        // And the lock it took is released: the file takes writes again.
        sqlx::query("insert into notes values ('x')")
            .execute(&pool)
            .await
            .unwrap();
    }

    /// A migration added without writing the baseline again is still run on a new file.
    #[tokio::test]
    async fn a_migration_newer_than_the_baseline_runs_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let ours = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
        for file in std::fs::read_dir(ours).unwrap() {
            let file = file.unwrap();
            std::fs::copy(file.path(), dir.path().join(file.file_name())).unwrap();
        }
        std::fs::write(
            dir.path().join("9999_later.sql"),
            "create table later (x text);",
        )
        .unwrap();
        let migrator = Migrator::new(dir.path()).await.unwrap();
        let pool = empty_file().await;
        assert!(apply_to_empty(&pool, &migrator).await.unwrap());
        assert!(!dumped(&pool).await.contains("later"));
        migrator.run(&pool).await.unwrap();
        assert!(dumped(&pool).await.contains("CREATE TABLE later"));
        let versions: Vec<i64> = applied(&pool).await.iter().map(|m| m.0).collect();
        assert_eq!(versions.last(), Some(&9999));
        assert_eq!(Some(versions[versions.len() - 2]), baseline_version());
    }

    #[tokio::test]
    async fn an_applied_baseline_is_not_applied_twice() {
        let pool = empty_file().await;
        let migrator = SqliteDialect::migrator();
        assert!(apply_to_empty(&pool, migrator).await.unwrap());
        let once = dumped(&pool).await;
        assert!(!apply_to_empty(&pool, migrator).await.unwrap());
        assert_eq!(dumped(&pool).await, once);
    }
}
