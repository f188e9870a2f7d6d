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
//! Usage: floor DATABASE_URL PORT [POOL]   (listens on 127.0.0.1:PORT; POOL defaults to 16,
//! the size of scimd's main Postgres pool, so both servers get the same number of backends).
//! The connections come from scimd's own pool (`store/sql/conns.rs`, which returns a
//! connection without sqlx's ping), so the floor keeps what scimd's pool saves.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
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
