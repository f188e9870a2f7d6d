//! The request a task is serving, for its log lines: its id in a task-local, which the JSON
//! line format writes as the `request` span `tracing-subscriber` would show.
//!
//! A `tracing` span per request cost about 5,000 of a GET by id's 94,500 instructions: it is
//! created and closed through the subscriber's registry, its fields formatted into a string,
//! and it is entered and left through the dispatcher at every poll of the request (a page of
//! users is polled a few hundred times as its rows arrive). A task-local is a thread-local
//! swapped in and out at each poll. The text (pretty) format, for terminals, keeps the real
//! span: its lines show spans through `tracing-subscriber`'s own formatter.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::HeaderValue;
use tracing::Instrument;

tokio::task_local! {
    /// The id of the request the current task serves.
    static REQUEST_ID: HeaderValue;
}

/// Whether requests run in a `tracing` span (the text format) rather than with their id in
/// the task-local alone (the JSON format, and wherever no subscriber was installed).
static SPANS: AtomicBool = AtomicBool::new(false);

/// Chooses how requests carry their id into log lines: set once, by `telemetry::init`.
pub(super) fn use_spans(spans: bool) {
    SPANS.store(spans, Ordering::Relaxed);
}

/// Runs `work` as the request `id`: every line it logs names the request.
pub async fn in_request<F: Future>(id: HeaderValue, work: F) -> F::Output {
    if SPANS.load(Ordering::Relaxed) {
        let span = tracing::info_span!("request", request_id = id.to_str().unwrap_or("-"));
        work.instrument(span).await
    } else {
        REQUEST_ID.scope(id, work).await
    }
}

/// Calls `write` with the id of the request the current task serves, if it serves one.
pub(super) fn with_request_id<T>(write: impl FnOnce(&str) -> T) -> Option<T> {
    REQUEST_ID
        .try_with(|id| write(id.to_str().unwrap_or("-")))
        .ok()
}

#[cfg(test)]
pub(super) fn sync_scope<T>(id: &'static str, f: impl FnOnce() -> T) -> T {
    REQUEST_ID.sync_scope(HeaderValue::from_static(id), f)
}
