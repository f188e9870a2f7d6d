//! The access-log line: one per request, written straight into the log writer's buffer when
//! the JSON format is on, through `tracing` otherwise.
//!
//! Through `tracing`, the line cost about 7,200 of a GET by id's 75,000 instructions
//! (callgrind, 2026-12-07): the dispatcher's thread-local lookup, the event's trip through
//! the subscriber's layers and filter, and a visit of each field through `dyn Value`. With
//! the JSON format the line is written here instead, in exactly the shape `json_lines`
//! gives it (`tracing-subscriber`'s JSON shape, the request's id as its `request` span), and
//! appended to the batch writer as one line. The log filter (`RUST_LOG`) still decides: the
//! line is written only when an `INFO` event of [`TARGET`] would be. The text format, and a
//! process without `telemetry::init` (as the tests' servers), take the `tracing` path.

use std::io::Write as _;
use std::sync::OnceLock;

use tracing::Level;
use tracing_subscriber::fmt::MakeWriter;

use super::batch_writer::BatchWriter;
use super::json_lines::now;
use crate::scim::doc::rfc3339_text;
use crate::scim::json_text::write_string;

/// The target the access-log line is logged under, as it always was: the module that writes
/// it, so that `RUST_LOG=scimd::http::envelope=warn` turns it off.
pub const TARGET: &str = "scimd::http::envelope";

/// What one access-log line says (never headers, tokens or bodies).
#[derive(Debug, Clone, Copy)]
pub struct AccessLine<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub route: &'a str,
    pub status: u16,
    pub latency_ms: f64,
    pub org_id: &'a str,
}

/// The batch writer the JSON format writes through, once `telemetry::init` chose it.
static DIRECT: OnceLock<BatchWriter> = OnceLock::new();

/// Makes access-log lines go straight to `writer` (the JSON format's).
pub(super) fn write_directly_to(writer: BatchWriter) {
    let _ = DIRECT.set(writer);
}

/// Writes the request's access-log line.
pub fn access_log(line: &AccessLine<'_>) {
    let Some(writer) = DIRECT.get() else {
        tracing::info!(
            target: TARGET,
            request_id = line.request_id,
            method = line.method,
            route = line.route,
            status = line.status,
            latency_ms = line.latency_ms,
            org_id = line.org_id,
            "request"
        );
        return;
    };
    if !tracing::enabled!(target: TARGET, Level::INFO) {
        return;
    }
    let text = json_line(line, now());
    // The batch writer takes the whole line at once; it cannot fail.
    let _ = writer.make_writer().write_all(&text);
}

/// The line as `json_lines` writes the `tracing` event `access_log` would log, in its
/// request's span, stamped with the time given (seconds and microseconds since the epoch);
/// bytes are appended to one buffer (the renderings' JSON string writer, no `fmt::Write` per
/// piece).
fn json_line(line: &AccessLine<'_>, (secs, micros): (i64, u32)) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"{\"timestamp\":");
    // Digits and separators: nothing to escape.
    match rfc3339_text(secs, micros, 6) {
        Some(text) => {
            out.push(b'"');
            out.extend_from_slice(text.as_bytes());
            out.push(b'"');
        }
        None => write_string(&chrono::Utc::now().to_rfc3339(), &mut out),
    }
    out.extend_from_slice(
        b",\"level\":\"INFO\",\"fields\":{\"message\":\"request\",\"request_id\":",
    );
    // Written twice (a field, and the span's): escaped once.
    let request_id = out.len()..{
        write_string(line.request_id, &mut out);
        out.len()
    };
    out.extend_from_slice(b",\"method\":");
    write_string(line.method, &mut out);
    out.extend_from_slice(b",\"route\":");
    write_string(line.route, &mut out);
    out.extend_from_slice(b",\"status\":");
    out.extend_from_slice(itoa::Buffer::new().format(line.status).as_bytes());
    out.extend_from_slice(b",\"latency_ms\":");
    if line.latency_ms.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(line.latency_ms).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
    out.extend_from_slice(b",\"org_id\":");
    write_string(line.org_id, &mut out);
    out.extend_from_slice(b"},\"target\":");
    write_string(TARGET, &mut out);
    out.extend_from_slice(b",\"span\":{\"request_id\":");
    out.extend_from_within(request_id);
    out.extend_from_slice(b",\"name\":\"request\"}}\n");
    out
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::telemetry::json_lines::tests::raw_lines;
    use crate::telemetry::request_scope;

    fn direct(line: &AccessLine<'_>) -> String {
        let mut text = String::from_utf8(json_line(line, now())).unwrap();
        assert!(
            text.ends_with("}\n") && text.matches('\n').count() == 1,
            "{text}"
        );
        text.pop();
        text
    }

    /// The same line through `tracing` and the JSON line format, in the request's scope.
    fn through_tracing(line: &AccessLine<'_>) -> String {
        let id: &'static str = String::leak(line.request_id.to_string());
        let mut out = raw_lines(|| request_scope::sync_scope(id, || access_log(line)));
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    /// The line's timestamp (checked to be RFC 3339) and the rest of it.
    fn without_timestamp(text: &str) -> (String, String) {
        let parsed: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
        let timestamp = parsed["timestamp"].as_str().unwrap().to_string();
        assert!(
            chrono::DateTime::parse_from_rfc3339(&timestamp).is_ok(),
            "{timestamp}"
        );
        (timestamp.clone(), text.replacen(&timestamp, "", 1))
    }

    #[test]
    fn the_direct_line_is_the_line_tracing_would_write_but_for_its_timestamp() {
        for line in [
            AccessLine {
                request_id: "0f8fad5b-d9cb-469f-a165-70867728950e",
                method: "GET",
                route: "/scim/v2/Users/{id}",
                status: 200,
                latency_ms: 0.227_819_000_000_000_02,
                org_id: "01a2506b-9072-73e7-b753-bfefbc0b6ea2",
            },
            AccessLine {
                request_id: "a.b_c:d-e",
                method: "OTHER",
                route: "-",
                status: 404,
                latency_ms: 12.0,
                org_id: "-",
            },
            // Nothing the server passes needs escaping today; the line escapes all the same.
            AccessLine {
                request_id: "r\"1\\",
                method: "PATCH",
                route: "/x\n\u{1}\u{8}\u{c}",
                status: 500,
                latency_ms: f64::NAN,
                org_id: "é",
            },
        ] {
            let (_, direct) = without_timestamp(&direct(&line));
            let (_, traced) = without_timestamp(&through_tracing(&line));
            // Byte for byte, member order included, for whoever reads the raw lines.
            assert_eq!(direct, traced, "{line:?}");
        }
    }
}
