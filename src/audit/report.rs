//! `scimd audit`: which entries to read (`--since` as a position, a time or an age) and how
//! they are printed, as an aligned table or as JSON lines.

use std::fmt::Write as _;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat};

use crate::auth::parse_duration_ms;
use crate::store::{AuditQuery, ChangeEntry, RejectedWrite, now_ms};

/// Parses `--since`: a log position (digits), an RFC 3339 time, or an age such as `24h` or
/// `7d` (that long before now).
pub fn since(text: &str, query: &mut AuditQuery) -> anyhow::Result<()> {
    let text = text.trim();
    if let Ok(position) = text.parse::<i64>() {
        query.after_position = Some(position);
    } else if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        query.since_ms = Some(time.timestamp_millis());
    } else {
        let age = parse_duration_ms(text).with_context(|| {
            format!("--since {text:?}: expected a position, an RFC 3339 time or an age (24h)")
        })?;
        query.since_ms = Some(now_ms() - age);
    }
    Ok(())
}

/// Milliseconds since the epoch as an RFC 3339 UTC time, to the millisecond.
fn time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Millis, true),
    )
}

/// The key as a reader knows it: its name, else its id.
fn key(name: Option<&str>, id: Option<uuid::Uuid>) -> String {
    match (name, id) {
        (Some(name), _) => name.to_string(),
        (None, Some(id)) => id.to_string(),
        (None, None) => "-".to_string(),
    }
}

/// Rows of cells as columns padded to their widest cell, the last column unpadded.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The change log as a table: one line per entry, oldest first.
pub fn changes_table(entries: &[ChangeEntry]) -> String {
    let mut rows = vec![
        [
            "POSITION",
            "TIME",
            "KEY",
            "OPERATION",
            "RESOURCE",
            "VERSION",
            "CHANGED",
            "REQUEST",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for e in entries {
        let mut changed = e.attributes.join(",");
        if let Some(activation) = &e.activation {
            changed = format!("{activation} {changed}");
        }
        if let Some(m) = &e.memberships {
            let _ = write!(changed, " (members +{} -{})", m["added"], m["removed"]);
        }
        rows.push(vec![
            e.position.to_string(),
            time(e.at),
            key(e.key_name.as_deref(), e.key_id),
            e.operation.clone(),
            format!("{}/{}", e.resource_type, e.resource_id),
            e.version.to_string(),
            if changed.trim().is_empty() {
                "-".into()
            } else {
                changed.trim().to_string()
            },
            e.request_id.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    table(&rows)
}

/// Rejected writes as a table: one line per request, oldest first.
pub fn rejected_table(writes: &[RejectedWrite]) -> String {
    let mut rows = vec![
        [
            "TIME", "KEY", "REQUEST", "STATUS", "SCIMTYPE", "METHOD", "PATH", "DETAIL",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for w in writes {
        rows.push(vec![
            time(w.at),
            key(w.key_name.as_deref(), w.key_id),
            w.request_id.clone().unwrap_or_else(|| "-".into()),
            w.status.to_string(),
            w.scim_type.clone().unwrap_or_else(|| "-".into()),
            w.method.clone(),
            w.path.clone(),
            w.detail.clone().unwrap_or_default(),
        ]);
    }
    table(&rows)
}

/// One JSON object per line.
pub fn json_lines<T: serde::Serialize>(items: &[T]) -> anyhow::Result<String> {
    let mut out = String::new();
    for item in items {
        out.push_str(&serde_json::to_string(item)?);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_a_position_a_time_or_an_age() {
        let mut q = AuditQuery::default();
        since("42", &mut q).unwrap();
        assert_eq!(q.after_position, Some(42));
        let mut q = AuditQuery::default();
        since("2026-12-01T00:00:00Z", &mut q).unwrap();
        assert_eq!(q.since_ms, Some(1_796_083_200_000));
        let mut q = AuditQuery::default();
        since("1h", &mut q).unwrap();
        let age = now_ms() - q.since_ms.unwrap();
        assert!((3_600_000..3_700_000).contains(&age), "{age}");
        assert!(since("yesterday", &mut AuditQuery::default()).is_err());
    }

    #[test]
    fn table_pads_every_column_but_the_last() {
        let rows = vec![
            vec!["A".to_string(), "BB".into(), "C".into()],
            vec!["aaa".to_string(), "b".into(), "long last".into()],
        ];
        assert_eq!(table(&rows), "A    BB  C\naaa  b   long last\n");
    }
}
