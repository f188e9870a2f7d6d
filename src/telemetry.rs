//! Logging: `tracing` with an `EnvFilter` (`RUST_LOG`, default `info`), pretty on a terminal
//! and JSON otherwise (`SCIMD_LOG_FORMAT=json|pretty` overrides). Logs go to stderr so that
//! stdout stays clean for `scimd key create`, through a writer thread: formatting stays on the
//! request, but the write(2) of every access-log line does not (one unbuffered write per
//! request cost about a third of a GET's CPU in BENCHMARKS.md's profile), and the thread
//! writes the lines it finds queued in one write(2).

mod json_lines;

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// The log writer's buffer: lines longer than this are written through at once.
const LOG_BUFFER_BYTES: usize = 64 * 1024;

/// Installs the global subscriber; a second call (as in tests) is a no-op. Keep the returned
/// guard alive until exit: dropping it flushes the lines still queued.
#[must_use = "dropping the guard stops the log writer"]
pub fn init() -> WorkerGuard {
    // Postgres' notices (e.g. "relation _sqlx_migrations already exists, skipping" at every
    // start and command) are not scimd's news: shown only when RUST_LOG asks for them.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=warn"));
    let json = match std::env::var("SCIMD_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("pretty") => false,
        _ => !std::io::stderr().is_terminal(),
    };
    // Not lossy: when the queue is full a request waits rather than losing its log line.
    // Buffered: the writer thread writes every line it finds queued into the buffer and
    // flushes once the queue is empty, so a busy server makes one write(2) per batch of
    // lines, not one per request (stderr itself is unbuffered).
    let (writer, guard) =
        NonBlockingBuilder::default()
            .lossy(false)
            .finish(std::io::BufWriter::with_capacity(
                LOG_BUFFER_BYTES,
                std::io::stderr(),
            ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = if json {
        // The request span (with its id) once per line, as `tracing-subscriber`'s JSON
        // format writes it, for a fraction of its cost (see `json_lines`).
        builder
            .event_format(json_lines::JsonLines)
            .fmt_fields(json_lines::JsonMembers)
            .try_init()
    } else {
        builder.try_init()
    };
    guard
}
