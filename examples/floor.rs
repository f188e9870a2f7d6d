//! The floor: the least any Rust server on this stack (axum + sqlx + Postgres) can do for a
//! read. `GET /floor/{id}` makes one primary-key `select id, doc from users where org_id = $1
//! and id = $2` and answers the row as JSON; no auth, no rate limit, no SCIM rendering. The
//! organization is the one the seeded database holds, read at start (scimd knows it from the
//! key, cached).
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
use sqlx::Postgres;
use sqlx::postgres::PgConnectOptions;
use sqlx::types::Json as SqlJson;
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
