//! The console's charts, drawn on the server as inline SVG (no script; the strict CSP allows
//! it): a sparkline for the overview and stacked bars per hour or day. Colours come from the
//! stylesheet's `.s0`…`.s7` classes; every bar carries a `<title>` (its counts, shown on
//! hover and read by screen readers), and every chart an `aria-label`.

use std::collections::BTreeMap;

use maud::{Markup, html};

use crate::store::activity::{ActivityCount, ActivityKind, HOUR_MS};

/// One column of a chart: its label and its count per series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Column {
    pub label: String,
    pub parts: BTreeMap<String, i64>,
}

impl Column {
    fn total(&self) -> i64 {
        self.parts.values().sum()
    }
}

/// The columns of `kinds` counts: `n` buckets ending with the one holding `now_hour`, each
/// `hours_per_bucket` hours wide (1: per hour; 24: per day, on UTC days), labelled by
/// `label(first hour of the bucket)`. A count's series is its label, or `series` when given
/// (e.g. every 429 as "429").
pub fn columns(
    counts: &[ActivityCount],
    kinds: &[(ActivityKind, Option<&str>)],
    now_hour: i64,
    n: usize,
    hours_per_bucket: i64,
    label: impl Fn(i64) -> String,
) -> Vec<Column> {
    let last = now_hour.div_euclid(hours_per_bucket);
    let first = last - n as i64 + 1;
    let mut columns: Vec<Column> = (first..=last)
        .map(|bucket| Column {
            label: label(bucket * hours_per_bucket),
            parts: BTreeMap::new(),
        })
        .collect();
    for count in counts {
        let Some((_, series)) = kinds.iter().find(|(kind, _)| *kind == count.kind) else {
            continue;
        };
        let bucket = count.hour.div_euclid(hours_per_bucket);
        let Some(column) = usize::try_from(bucket - first)
            .ok()
            .and_then(|i| columns.get_mut(i))
        else {
            continue;
        };
        let name = series.map_or_else(|| count.label.clone(), str::to_string);
        *column.parts.entry(name).or_default() += count.count;
    }
    columns
}

/// The hour (since the Unix epoch) of `ms`.
pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS)
}

/// `HH:00` of an hour since the Unix epoch (UTC).
pub fn hour_label(hour: i64) -> String {
    chrono::DateTime::from_timestamp_millis(hour * HOUR_MS)
        .map_or_else(String::new, |t| t.format("%H:00").to_string())
}

/// `MM-DD` of the day starting at an hour since the Unix epoch (UTC).
pub fn day_label(hour: i64) -> String {
    chrono::DateTime::from_timestamp_millis(hour * HOUR_MS)
        .map_or_else(String::new, |t| t.format("%m-%d").to_string())
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 140.0;
/// Room under the bars for the column labels.
const AXIS: f64 = 16.0;

/// Stacked bars, one per column, series in a fixed order (colour `s{i}` by that order), with
/// a legend; `caption` names the chart.
pub fn stacked_bars(caption: &str, columns: &[Column]) -> Markup {
    let series: Vec<&String> = {
        let mut names: Vec<&String> = columns.iter().flat_map(|c| c.parts.keys()).collect();
        names.sort();
        names.dedup();
        names
    };
    let top = columns.iter().map(Column::total).max().unwrap_or(0).max(1) as f64;
    let total: i64 = columns.iter().map(Column::total).sum();
    let slot = WIDTH / columns.len().max(1) as f64;
    let bar = (slot * 0.8).max(1.0);
    let plot = HEIGHT - AXIS;
    // Label every column when few, else about twelve of them.
    let label_every = columns.len().div_ceil(12).max(1);
    html! {
        figure.chart {
            figcaption { (caption) " — " (total) " in all, at most " (top as i64) " in one" }
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
                aria-label={ (caption) ": " (total) " in all" } {
                line.axis x1="0" y1=(plot) x2=(WIDTH) y2=(plot) {}
                @for (i, column) in columns.iter().enumerate() {
                    @let x = i as f64 * slot + (slot - bar) / 2.0;
                    g {
                        title { (column.label) ": " (describe(column)) }
                        // An empty column still has a hover target.
                        rect.hover x=(fmt(x)) y="0" width=(fmt(bar)) height=(fmt(plot)) {}
                        @for (class, y, h) in stack(column, &series, top, plot - 4.0, plot) {
                            rect class=(class) x=(fmt(x)) y=(fmt(y)) width=(fmt(bar)) height=(fmt(h)) {}
                        }
                        @if i % label_every == 0 {
                            text x=(fmt(x)) y=(fmt(HEIGHT - 3.0)) { (column.label) }
                        }
                    }
                }
            }
            @if !series.is_empty() {
                ul.legend {
                    @for (s, name) in series.iter().enumerate() {
                        li { span class={ "swatch s" (s % 8) } {} (name) }
                    }
                }
            }
        }
    }
}

/// A column's bars, bottom up: (colour class, top, height), series scaled so that `top`
/// fills `room` above the baseline at `base`.
fn stack(
    column: &Column,
    series: &[&String],
    top: f64,
    room: f64,
    base: f64,
) -> Vec<(String, f64, f64)> {
    let mut y = base;
    let mut bars = Vec::new();
    for (s, name) in series.iter().enumerate() {
        let n = column.parts.get(*name).copied().unwrap_or(0);
        if n > 0 {
            let h = (n as f64 / top * room).max(1.0);
            y -= h;
            bars.push((format!("s{}", s % 8), y, h));
        }
    }
    bars
}

/// A small line of `values` (oldest first) for a table cell.
pub fn sparkline(label: &str, values: &[i64]) -> Markup {
    let (w, h) = (120.0, 24.0);
    let top = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = w / (values.len().max(2) - 1) as f64;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let y = h - 2.0 - (*v as f64 / top) * (h - 4.0);
            format!("{},{}", fmt(i as f64 * step), fmt(y))
        })
        .collect();
    let total: i64 = values.iter().sum();
    html! {
        svg.spark viewBox={ "0 0 " (w) " " (h) } width="120" height="24" role="img"
            aria-label={ (label) ": " (total) } {
            title { (label) ": " (total) }
            polyline points=(points.join(" ")) {}
        }
    }
}

/// `create 3, patch 1` (the counts of a column, largest series first).
fn describe(column: &Column) -> String {
    if column.parts.is_empty() {
        return "none".into();
    }
    let mut parts: Vec<(&String, &i64)> = column.parts.iter().collect();
    parts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    parts
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A coordinate with at most one decimal.
fn fmt(v: f64) -> String {
    let rounded = (v * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{}", rounded as i64)
    } else {
        format!("{rounded:.1}")
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn count(hour: i64, kind: ActivityKind, label: &str, n: i64) -> ActivityCount {
        ActivityCount {
            org_id: Uuid::nil(),
            hour,
            kind,
            label: label.into(),
            count: n,
        }
    }

    #[test]
    fn counts_fall_in_the_column_of_their_hour_or_day_and_older_ones_are_left_out() {
        let counts = [
            count(100, ActivityKind::Change, "create", 2),
            count(100, ActivityKind::Change, "patch", 1),
            count(99, ActivityKind::Change, "create", 4),
            count(70, ActivityKind::Change, "create", 9),
            count(100, ActivityKind::Throttled, "", 5),
        ];
        let changes = [(ActivityKind::Change, None)];
        let hourly = columns(&counts, &changes, 100, 24, 1, |h| h.to_string());
        assert_eq!(hourly.len(), 24);
        assert_eq!(hourly[23].label, "100");
        assert_eq!(hourly[23].parts["create"], 2);
        assert_eq!(hourly[23].parts["patch"], 1);
        assert_eq!(hourly[22].parts["create"], 4);
        let all: i64 = hourly.iter().map(Column::total).sum();
        assert_eq!(
            all, 7,
            "hour 70 is more than 24 hours back; 429s are not changes"
        );

        // Hours 96..=119 are day 4: 100, 99 fall in it, 70 in day 2.
        let daily = columns(&counts, &changes, 100, 3, 24, |h| (h / 24).to_string());
        let totals: Vec<(String, i64)> =
            daily.iter().map(|c| (c.label.clone(), c.total())).collect();
        assert_eq!(totals, [("2".into(), 9), ("3".into(), 0), ("4".into(), 7)]);

        let refused = [(ActivityKind::Throttled, Some("429"))];
        let throttled = columns(&counts, &refused, 100, 1, 1, |h| h.to_string());
        assert_eq!(throttled[0].parts["429"], 5);
    }

    #[test]
    fn bars_are_stacked_and_titled_with_their_counts() {
        let mut column = Column {
            label: "10:00".into(),
            parts: BTreeMap::new(),
        };
        column.parts.insert("create".into(), 3);
        column.parts.insert("patch".into(), 1);
        let empty = Column {
            label: "11:00".into(),
            parts: BTreeMap::new(),
        };
        let svg = stacked_bars("Changes per hour", &[column, empty]).into_string();
        assert!(
            svg.contains("<title>10:00: create 3, patch 1</title>"),
            "{svg}"
        );
        assert!(svg.contains("<title>11:00: none</title>"), "{svg}");
        assert!(svg.contains("class=\"s0\""), "{svg}");
        assert!(svg.contains("class=\"s1\""), "{svg}");
        assert!(svg.contains("4 in all, at most 4 in one"), "{svg}");
        assert!(
            svg.contains("aria-label=\"Changes per hour: 4 in all\""),
            "{svg}"
        );
    }

    #[test]
    fn a_sparkline_spans_its_width_and_scales_to_its_highest_value() {
        let svg = sparkline("changes", &[0, 5, 10]).into_string();
        assert!(svg.contains("points=\"0,22 60,12 120,2\""), "{svg}");
        let flat = sparkline("changes", &[0, 0]).into_string();
        assert!(flat.contains("points=\"0,22 120,22\""), "{flat}");
    }

    #[test]
    fn coordinates_keep_one_decimal_at_most() {
        assert_eq!(fmt(2.0), "2");
        assert_eq!(fmt(2.25), "2.3");
        assert_eq!(fmt(0.04), "0");
    }
}
