//! Logging: `tracing` with an `EnvFilter` (`RUST_LOG`, default `info`), pretty on a terminal
//! and JSON otherwise (`SCIMD_LOG_FORMAT=json|pretty` overrides). Logs go to stderr so that
//! stdout stays clean for `scimd key create`, through a writer thread: formatting stays on the
//! request, but the write(2) of every access-log line does not (one unbuffered write per
//! request cost about a third of a GET's CPU in BENCHMARKS.md's profile). The thread writes
//! batches of lines gathered for a few milliseconds, and is not woken per line (see
//! `batch_writer`). With the JSON format the access-log line skips `tracing` and goes
//! straight to that writer (see `access_line`).

mod access_line;
mod batch_writer;
mod json_lines;
mod request_scope;

use std::io::IsTerminal;

pub use access_line::{AccessLine, access_log};
pub use batch_writer::BatchWriterGuard;
pub use request_scope::in_request;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call (as in tests) is a no-op. Keep the returned
/// guard alive until exit: dropping it writes the lines still queued. Fails only when the
/// writer thread cannot be started.
#[must_use = "dropping the guard stops the log writer"]
pub fn init() -> std::io::Result<BatchWriterGuard> {
    // Postgres' notices (e.g. "relation _sqlx_migrations already exists, skipping" at every
    // start and command) are not scimd's news: shown only when RUST_LOG asks for them.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=warn"));
    let json = match std::env::var("SCIMD_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("pretty") => false,
        _ => !std::io::stderr().is_terminal(),
    };
    // Lines gather in one buffer that a thread writes out in batches (see `batch_writer`).
    let (writer, guard) = batch_writer::batch_writer(std::io::stderr(), Default::default())?;
    let direct = writer.clone();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    // The text format shows the request's span through tracing-subscriber's formatter; the
    // JSON format writes it from the request's id alone (see `request_scope`).
    request_scope::use_spans(!json);
    let installed = if json {
        // The request span (with its id) once per line, as `tracing-subscriber`'s JSON
        // format writes it, for a fraction of its cost (see `json_lines`).
        builder
            .event_format(json_lines::JsonLines)
            .fmt_fields(json_lines::JsonMembers)
            .try_init()
    } else {
        builder.try_init()
    };
    if json && installed.is_ok() {
        // The access-log line skips `tracing` for the JSON format (see `access_line`).
        access_line::write_directly_to(direct);
    }
    Ok(guard)
}
