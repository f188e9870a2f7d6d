//! JSON log lines written straight into the line buffer, in the shape of `tracing-subscriber`'s
//! JSON format (`timestamp`, `level`, `fields`, `target`, and the current `span` with its
//! fields and `name`).
//!
//! Every request writes an access-log line. `tracing-subscriber`'s JSON format keeps a span's
//! fields as a JSON text, parses that text back into a map for every line written in the
//! span, and builds each line through a map of its own: about a tenth of the server's CPU on
//! a GET. Here a span's fields are kept as a ready JSON fragment (`"key":value,…`) that each
//! line copies, and an event's fields are escaped into the line as they are visited. Outside
//! any span, a line written for a request shows the request's span all the same, from its id
//! in `request_scope`.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use super::request_scope;
use crate::scim::json_text::find_escape;

/// The event format: one JSON object per line.
pub struct JsonLines;

/// The field format: a span's fields as the members of a JSON object, without its braces.
pub struct JsonMembers;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writer.write_str("{\"timestamp\":\"")?;
        write_now(&mut writer)?;
        let metadata = event.metadata();
        write!(
            writer,
            "\",\"level\":\"{}\",\"fields\":{{",
            metadata.level()
        )?;
        let mut members = Members::new(&mut writer);
        event.record(&mut members);
        members.result?;
        writer.write_str("},\"target\":")?;
        write_str(&mut writer, metadata.target())?;
        if let Some(span) = ctx.lookup_current() {
            writer.write_str(",\"span\":{")?;
            let extensions = span.extensions();
            if let Some(fields) = extensions.get::<FormattedFields<N>>()
                && !fields.fields.is_empty()
            {
                writer.write_str(&fields.fields)?;
                writer.write_char(',')?;
            }
            writer.write_str("\"name\":")?;
            write_str(&mut writer, span.name())?;
            writer.write_char('}')?;
        } else if let Some(written) = request_scope::with_request_id(|id| {
            // The request's id as the span `request_scope` stands in for shows it.
            writer.write_str(",\"span\":{\"request_id\":")?;
            write_str(&mut writer, id)?;
            writer.write_str(",\"name\":\"request\"}")
        }) {
            written?;
        }
        writer.write_str("}\n")
    }
}

impl<'writer> FormatFields<'writer> for JsonMembers {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut members = Members::new(&mut writer);
        fields.record(&mut members);
        members.result
    }

    /// Fields recorded on a span after its creation: more members, after a comma.
    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut more = String::new();
        let mut members = Members::new(&mut more);
        fields.record(&mut members);
        members.result?;
        if !more.is_empty() {
            if !current.fields.is_empty() {
                current.fields.push(',');
            }
            current.fields.push_str(&more);
        }
        Ok(())
    }
}

/// Writes visited fields as JSON object members, comma-separated.
struct Members<'w, W: Write> {
    out: &'w mut W,
    first: bool,
    result: fmt::Result,
}

impl<'w, W: Write> Members<'w, W> {
    fn new(out: &'w mut W) -> Self {
        Members {
            out,
            first: true,
            result: Ok(()),
        }
    }

    /// The member's key and colon; the caller writes its value.
    fn key(&mut self, field: &Field) -> fmt::Result {
        self.out.write_str(if self.first { "\"" } else { ",\"" })?;
        self.first = false;
        Escaped(self.out).write_str(field.name())?;
        self.out.write_str("\":")
    }

    fn member(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| value(self.out));
        }
    }
}

impl<W: Write> Visit for Members<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |out| write_str(out, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |out| {
            out.write_str(itoa::Buffer::new().format(value))
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |out| {
            out.write_str(itoa::Buffer::new().format(value))
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |out| write!(out, "{value}"));
    }

    /// As serde_json writes a float: the shortest text that reads back as the same number
    /// (by `ryu`, as the latency of every access-log line is written), `null` when it is not
    /// finite.
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.member(field, |out| {
            if value.is_finite() {
                out.write_str(ryu::Buffer::new().format_finite(value))
            } else {
                out.write_str("null")
            }
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |out| {
            out.write_char('"')?;
            write!(Escaped(out), "{value:?}")?;
            out.write_char('"')
        });
    }
}

/// The time now, as `tracing-subscriber`'s `SystemTime` writes it (RFC 3339, UTC,
/// microseconds), digit by digit: its formatter was a fiftieth of a GET's instructions.
fn write_now(writer: &mut Writer<'_>) -> fmt::Result {
    let (secs, micros) = now();
    match crate::scim::doc::rfc3339_text(secs, micros, 6) {
        Some(text) => writer.write_str(text.as_str()),
        None => SystemTime.format_time(writer),
    }
}

/// The time now: seconds since the epoch and microseconds.
pub(super) fn now() -> (i64, u32) {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX);
    (secs, since_epoch.subsec_micros())
}

/// A JSON string: quoted and escaped.
fn write_str(out: &mut impl Write, value: &str) -> fmt::Result {
    out.write_str("\"")?;
    Escaped(out).write_str(value)?;
    out.write_str("\"")
}

/// Escapes what it is given for the inside of a JSON string (RFC 8259 §7).
struct Escaped<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        let mut plain = 0;
        while let Some(i) = find_escape(bytes, plain) {
            self.0.write_str(&s[plain..i])?;
            plain = i + 1;
            match bytes[i] {
                b'"' => self.0.write_str("\\\"")?,
                b'\\' => self.0.write_str("\\\\")?,
                b'\n' => self.0.write_str("\\n")?,
                b'\r' => self.0.write_str("\\r")?,
                b'\t' => self.0.write_str("\\t")?,
                0x08 => self.0.write_str("\\b")?,
                0x0c => self.0.write_str("\\f")?,
                byte => write!(self.0, "\\u{byte:04x}")?,
            }
        }
        self.0.write_str(&s[plain..])
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// A writer into a shared buffer, for one test's subscriber.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'a self) -> Buffer {
            self.clone()
        }
    }

    /// The lines `log` writes, each parsed.
    fn lines(log: impl FnOnce()) -> Vec<Value> {
        raw_lines(log)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// The lines `log` writes, as written.
    pub(in crate::telemetry) fn raw_lines(log: impl FnOnce()) -> Vec<String> {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .fmt_fields(JsonMembers)
            .with_writer(buffer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn an_event_in_a_span_is_one_json_line_with_its_fields_and_the_span() {
        let out = lines(|| {
            let span = tracing::info_span!("request", request_id = "r-1");
            let _in = span.enter();
            tracing::info!(
                method = "GET",
                status = 200u16,
                latency_ms = 0.25,
                errors = -3i64,
                cached = false,
                "request"
            );
        });
        assert_eq!(out.len(), 1);
        let line = &out[0];
        assert_eq!(line["level"], "INFO");
        assert_eq!(
            line["fields"],
            json!({"message": "request", "method": "GET", "status": 200,
                   "latency_ms": 0.25, "errors": -3, "cached": false})
        );
        assert_eq!(line["target"], module_path!());
        assert_eq!(
            line["span"],
            json!({"request_id": "r-1", "name": "request"})
        );
        let timestamp = line["timestamp"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
            "{timestamp}"
        );
    }

    #[test]
    fn a_line_written_for_a_request_outside_any_span_shows_the_request_span() {
        let out = lines(|| {
            request_scope::sync_scope("r-3\"x", || tracing::info!(status = 200u16, "request"))
        });
        assert_eq!(
            out[0]["span"],
            json!({"request_id": "r-3\"x", "name": "request"})
        );
        // A real span, where there is one, is the one shown.
        let out = lines(|| {
            request_scope::sync_scope("r-3", || {
                let span = tracing::info_span!("inner", step = 1u8);
                let _in = span.enter();
                tracing::info!("inside");
            })
        });
        assert_eq!(out[0]["span"], json!({"step": 1, "name": "inner"}));
    }

    #[test]
    fn quotes_backslashes_and_control_characters_are_escaped() {
        let nasty = "a \"quoted\" \\ back\nnew\tline\u{1} and é";
        let out = lines(|| {
            let span = tracing::info_span!("request", request_id = nasty);
            let _in = span.enter();
            tracing::warn!(error = %nasty, detail = nasty, "failed: {nasty}");
        });
        let line = &out[0];
        assert_eq!(line["fields"]["error"], nasty);
        assert_eq!(line["fields"]["detail"], nasty);
        assert_eq!(line["fields"]["message"], format!("failed: {nasty}"));
        assert_eq!(line["span"]["request_id"], nasty);
    }

    #[test]
    fn a_line_outside_any_span_has_no_span_and_a_float_that_is_not_finite_is_null() {
        let out = lines(|| {
            tracing::info!(ratio = f64::NAN, "started");
        });
        let line = &out[0];
        assert!(line.get("span").is_none());
        assert_eq!(line["fields"]["ratio"], Value::Null);
    }

    #[test]
    fn fields_recorded_later_join_the_span() {
        let out = lines(|| {
            let span =
                tracing::info_span!("request", request_id = "r-2", org = tracing::field::Empty);
            span.record("org", "acme");
            let _in = span.enter();
            tracing::info!("done");
        });
        assert_eq!(
            out[0]["span"],
            json!({"request_id": "r-2", "org": "acme", "name": "request"})
        );
    }
}
