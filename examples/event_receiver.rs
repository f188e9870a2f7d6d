//! A push receiver for benchmarks (RFC 8935): answers every SET 202 and measures, per SET,
//! the time from the change's commit (`toe`) to its arrival. `GET /stats` answers the count
//! and the latency percentiles so far, in milliseconds, as JSON.
//!
//! Usage: event_receiver PORT   (listens on 127.0.0.1:PORT)

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};

#[derive(Default)]
struct Seen {
    latencies_ms: Vec<f64>,
    unreadable: u64,
}

type Shared = Arc<Mutex<Seen>>;

/// The `toe` claim (seconds since the epoch) of a compact SET, unverified.
fn toe(set: &[u8]) -> Option<f64> {
    let payload = set.split(|b| *b == b'.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?["toe"].as_f64()
}

async fn receive(State(seen): State<Shared>, body: Bytes) -> StatusCode {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    match toe(&body) {
        Some(toe) => seen.latencies_ms.push((now - toe) * 1000.0),
        None => seen.unreadable += 1,
    }
    StatusCode::ACCEPTED
}

async fn stats(State(seen): State<Shared>) -> Json<Value> {
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    let mut sorted = seen.latencies_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        sorted[((sorted.len() - 1) as f64 * q).round() as usize]
    };
    Json(json!({
        "count": sorted.len(),
        "unreadable": seen.unreadable,
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "max_ms": at(1.0),
    }))
}

// One thread: the receiver stands in for an application on another machine, and here it
// shares the benchmark's two cores, so it takes as little of them as it can.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: event_receiver PORT"))?
        .parse()?;
    let seen: Shared = Arc::default();
    let app = Router::new()
        .route("/", post(receive))
        .route("/stats", get(stats))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
