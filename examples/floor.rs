//! The floor: the least any Rust server on this stack (axum + sqlx + Postgres) can do for a
//! read — `GET /floor/{id}` answers one primary-key select of a user row as JSON.
//! Usage: floor DATABASE_URL LISTEN

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use sqlx::postgres::PgPoolOptions;
use sqlx::types::Json as SqlJson;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(args.len() == 3, "usage: floor DATABASE_URL LISTEN");
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(&args[1])
        .await?;
    let app = Router::new()
        .route("/floor/{id}", get(floor))
        .with_state(pool);
    let listener = tokio::net::TcpListener::bind(&args[2]).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

async fn floor(
    State(pool): State<sqlx::PgPool>,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<serde_json::Value>, axum::http::StatusCode> {
    let row: Option<(SqlJson<serde_json::Value>,)> =
        sqlx::query_as("select doc from users where id = $1")
            .bind(id)
            .fetch_optional(&pool)
            .await
            .map_err(|_| axum::http::StatusCode::SERVICE_UNAVAILABLE)?;
    row.map(|(SqlJson(doc),)| Json(doc))
        .ok_or(axum::http::StatusCode::NOT_FOUND)
}
