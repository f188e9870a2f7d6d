//! The floor: the least any Rust server on this stack (axum + sqlx + Postgres) can do for a
//! read. `GET /floor/{id}` makes one primary-key `select id, doc from users where org_id = $1
//! and id = $2` and answers the row as JSON; no auth, no rate limit, no SCIM rendering. The
//! organization is the one the seeded database holds, read at start (scimd knows it from the
//! key, cached).
//!
//! `GET /floor_statement/{id}` is the same with scimd's own read-by-id statement (the user's
//! ten columns and its groups), so BENCHMARKS.md can tell what the statement costs from what
//! scimd does around it.
//!
//! `PATCH /floor_write/{id}` is the floor for a write: it takes the request's body (and leaves
//! it unread), then runs exactly what `pgbench_user_write` runs (bench.sh's `user_write.sql`):
//! the row read, then one statement that writes the document back at the next version only if
//! the row is still at the version read, appends the change-log entry and returns the row.
//! It answers the written row as JSON. What separates it from scimd's PATCH is everything
//! SCIM: auth, the limiter, parsing and applying the operations, folding, rendering, logging.
//!
//! Usage: floor DATABASE_URL PORT [POOL]   (listens on 127.0.0.1:PORT; POOL defaults to 16,
//! the size of scimd's main Postgres pool, so both servers get the same number of backends).
//! The connections come from scimd's own pool (`store/sql/conns.rs`, which returns a
//! connection without sqlx's ping), so the floor keeps what scimd's pool saves.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use scimd::store::conns::Conns;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;
use sqlx::types::Json as SqlJson;
use sqlx::{Postgres, Row};
use uuid::Uuid;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        (3..=4).contains(&args.len()),
        "usage: floor DATABASE_URL PORT [POOL]"
    );
    let port: u16 = args[2].parse()?;
    let pool_size: u32 = args.get(3).map_or(Ok(16), |s| s.parse())?;
    // The same pool settings and allocator as scimd, so the floor is what scimd could be.
    let options: PgConnectOptions = args[1].parse()?;
    let pool = Conns::<Postgres>::own(options, pool_size, std::time::Duration::from_secs(3));
    let (org_id,): (Uuid,) = sqlx::query_as("select org_id from users limit 1")
        .fetch_one(&mut *pool.acquire().await?)
        .await?;
    let app = Router::new()
        .route("/floor/{id}", get(floor))
        .route("/floor_statement/{id}", get(floor_statement))
        .route("/floor_write/{id}", patch(floor_write))
        .with_state((pool, org_id));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn floor(
    State((pool, org_id)): State<(Conns<Postgres>, Uuid)>,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>, StatusCode> {
    let unavailable = |_| StatusCode::SERVICE_UNAVAILABLE;
    let mut conn = pool.acquire().await.map_err(unavailable)?;
    let row: Option<(Uuid, SqlJson<Value>)> =
        sqlx::query_as("select id, doc from users where org_id = $1 and id = $2")
            .bind(org_id)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(unavailable)?;
    let (id, SqlJson(doc)) = row.ok_or(StatusCode::NOT_FOUND)?;
    Ok(Json(json!({"id": id, "doc": doc})))
}

/// The floor with scimd's own read-by-id statement: the user's ten columns and its groups
/// (RFC 7643 §4.1.2 returns them by default), so the difference between the floor and this
/// is what the statement costs, and between this and scimd's GET what scimd does around it.
async fn floor_statement(
    State((pool, org_id)): State<(Conns<Postgres>, Uuid)>,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>, StatusCode> {
    let unavailable = |_| StatusCode::SERVICE_UNAVAILABLE;
    let mut conn = pool.acquire().await.map_err(unavailable)?;
    let row = sqlx::query(scimd::store::POSTGRES_USER_BY_ID)
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(unavailable)?
        .ok_or(StatusCode::NOT_FOUND)?;
    let broken = |_| StatusCode::INTERNAL_SERVER_ERROR;
    let doc: SqlJson<Value> = row.try_get("doc").map_err(broken)?;
    let groups: SqlJson<Value> = row.try_get("groups").map_err(broken)?;
    Ok(Json(json!({"id": id, "doc": doc.0, "groups": groups.0})))
}

/// `pgbench_user_write`'s second statement (bench.sh's `user_write.sql`, with the document
/// and the version read bound as parameters where pgbench sets variables).
const USER_WRITE: &str = "with written as (update users set doc = $3::json, \
    doc_folded = $3::jsonb, modified_at = modified_at + 1, version = version + 1 \
    where org_id = $1 and id = $2 and version = $4 \
    returning id, org_id, user_name, external_id, active, doc, password_hash, created_at, \
    modified_at, version, users.member_of as groups), \
  logged as (insert into changes (org_id, position, at, resource_type, resource_id, \
    external_id, operation, activation, attributes, version, key_id, key_name, request_id, \
    client_addr, user_agent, memberships, data) \
  select org_id, pg_current_xact_id()::text::bigint * 1024, 1796407888392, 'User', id, \
    external_id, 'patch', null, '[\"displayName\"]', version, \
    '01a2423f-e79c-700b-b12d-a7fdc77f460a', 'default', \
    'f0c2b9a4-3c55-4c86-9f1c-5b9a7e1d2a33', '127.0.0.1', 'wrk/4.2', null, \
    '{\"schemas\":[\"urn-ietf-params-scim-api-messages-2.0-PatchOp\"],\"Operations\":\
[{\"op\":\"replace\",\"path\":\"displayName\",\"value\":\"Bench 12345\"}]}' \
  from written) \
select * from written";

/// Reads and writes before a write that keeps losing to others answers 409.
const WRITE_ATTEMPTS: usize = 8;

/// The floor for a write: `pgbench_user_write`'s two statements behind an HTTP PATCH.
async fn floor_write(
    State((pool, org_id)): State<(Conns<Postgres>, Uuid)>,
    Path(id): Path<Uuid>,
    _body: Bytes,
) -> Result<Json<Value>, StatusCode> {
    let unavailable = |_| StatusCode::SERVICE_UNAVAILABLE;
    let mut conn = pool.acquire().await.map_err(unavailable)?;
    // A write that lost to another (the version moved) reads again, as scimd's does.
    let mut written = None;
    for _ in 0..WRITE_ATTEMPTS {
        let (doc, version): (String, i64) = sqlx::query_as(
            "select doc::text as doc, version from users where org_id = $1 and id = $2",
        )
        .bind(org_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(unavailable)?
        .ok_or(StatusCode::NOT_FOUND)?;
        written = sqlx::query(USER_WRITE)
            .bind(org_id)
            .bind(id)
            .bind(&doc)
            .bind(version)
            .fetch_optional(&mut *conn)
            .await
            .map_err(unavailable)?;
        if written.is_some() {
            break;
        }
    }
    let row = written.ok_or(StatusCode::CONFLICT)?;
    let broken = |_| StatusCode::INTERNAL_SERVER_ERROR;
    let doc: SqlJson<Box<serde_json::value::RawValue>> = row.try_get("doc").map_err(broken)?;
    let version: i64 = row.try_get("version").map_err(broken)?;
    Ok(Json(json!({"id": id, "version": version, "doc": doc.0})))
}
