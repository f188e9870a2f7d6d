//! Per-organization hourly activity for the console's charts: write requests, changes by
//! operation, rejected writes by `scimType` and 429s, counted in memory as they happen and
//! added to the `org_activity` table about once a minute (by every process: rows add up).
//!
//! Counting from the change log or the rejected-writes table instead would scan them on every
//! page view (30 days of a busy organization are millions of entries), and would miss what
//! those tables do not keep: 429s, and rejected writes over their per-key bound.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

/// Milliseconds in an hour: counts are kept per hour since the Unix epoch.
pub const HOUR_MS: i64 = 3_600_000;

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActivityKind {
    /// A SCIM write request, whatever became of it (label: the method).
    Write,
    /// A change-log entry (label: its operation).
    Change,
    /// A write refused with a 4xx other than 401 and 429 (label: its `scimType`, else its
    /// status).
    Rejected,
    /// A request refused by the rate limit (429).
    Throttled,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Write => "write",
            ActivityKind::Change => "change",
            ActivityKind::Rejected => "rejected",
            ActivityKind::Throttled => "throttled",
        }
    }

    pub fn parse(text: &str) -> Option<ActivityKind> {
        [
            ActivityKind::Write,
            ActivityKind::Change,
            ActivityKind::Rejected,
            ActivityKind::Throttled,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// How many of one kind (and label) an organization had in one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityCount {
    pub org_id: Uuid,
    /// Hours since the Unix epoch.
    pub hour: i64,
    pub kind: ActivityKind,
    pub label: String,
    pub count: i64,
}

/// Labels are mostly static names (methods, operations, `scimType`s): counting one then
/// allocates nothing.
type Key = (Uuid, i64, ActivityKind, Cow<'static, str>);

/// Counts not yet added to the database.
#[derive(Debug, Default)]
pub struct Activity {
    pending: Mutex<HashMap<Key, i64>>,
}

impl Activity {
    /// Counts one `kind` (with `label`) for `org_id` at `at_ms`.
    pub fn count(
        &self,
        org_id: Uuid,
        at_ms: i64,
        kind: ActivityKind,
        label: impl Into<Cow<'static, str>>,
    ) {
        self.count_n(org_id, at_ms, kind, label, 1);
    }

    /// Counts `n` of one `kind` (with `label`) for `org_id` at `at_ms`.
    pub fn count_n(
        &self,
        org_id: Uuid,
        at_ms: i64,
        kind: ActivityKind,
        label: impl Into<Cow<'static, str>>,
        n: i64,
    ) {
        self.add(org_id, at_ms.div_euclid(HOUR_MS), kind, label.into(), n);
    }

    fn add(&self, org_id: Uuid, hour: i64, kind: ActivityKind, label: Cow<'static, str>, n: i64) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        *pending.entry((org_id, hour, kind, label)).or_default() += n;
    }

    /// Takes every pending count (to be added to the database).
    pub fn take(&self) -> Vec<ActivityCount> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut counts: Vec<ActivityCount> = pending
            .drain()
            .map(|((org_id, hour, kind, label), count)| ActivityCount {
                org_id,
                hour,
                kind,
                label: label.into_owned(),
                count,
            })
            .collect();
        counts.sort_by_key(|a| (a.org_id, a.hour, a.kind));
        counts
    }

    /// Puts back counts whose write failed, so they are added with the next ones.
    pub fn restore(&self, counts: &[ActivityCount]) {
        for c in counts {
            self.add(c.org_id, c.hour, c.kind, c.label.clone().into(), c.count);
        }
    }

    /// The pending counts of `org_id` (every organization: none) from `since_hour` on, so a
    /// page shows what happened in the last minute too.
    pub fn pending(&self, org_id: Option<Uuid>, since_hour: i64) -> Vec<ActivityCount> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending
            .iter()
            .filter(|((org, hour, _, _), _)| {
                *hour >= since_hour && org_id.is_none_or(|id| id == *org)
            })
            .map(|((org_id, hour, kind, label), count)| ActivityCount {
                org_id: *org_id,
                hour: *hour,
                kind: *kind,
                label: label.to_string(),
                count: *count,
            })
            .collect()
    }
}

/// Adds `more` into `counts`, one row per (organization, hour, kind, label).
pub fn merge(counts: &mut Vec<ActivityCount>, more: Vec<ActivityCount>) {
    let mut index: HashMap<(Uuid, i64, ActivityKind, String), usize> = counts
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.org_id, c.hour, c.kind, c.label.clone()), i))
        .collect();
    for c in more {
        match index.get(&(c.org_id, c.hour, c.kind, c.label.clone())) {
            Some(&i) => counts[i].count += c.count,
            None => {
                index.insert((c.org_id, c.hour, c.kind, c.label.clone()), counts.len());
                counts.push(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_organization_hour_kind_and_label() {
        let activity = Activity::default();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        activity.count(a, 10 * HOUR_MS + 5, ActivityKind::Change, "create");
        activity.count(a, 10 * HOUR_MS + 7, ActivityKind::Change, "create");
        activity.count(a, 11 * HOUR_MS, ActivityKind::Change, "create");
        activity.count(a, 10 * HOUR_MS, ActivityKind::Throttled, "");
        activity.count(b, 10 * HOUR_MS, ActivityKind::Change, "create");
        let of_a = activity.pending(Some(a), 0);
        assert_eq!(of_a.len(), 3);
        assert_eq!(activity.pending(Some(a), 11).len(), 1);
        let taken = activity.take();
        let creates_at_10: i64 = taken
            .iter()
            .filter(|c| c.org_id == a && c.hour == 10 && c.kind == ActivityKind::Change)
            .map(|c| c.count)
            .sum();
        assert_eq!(creates_at_10, 2);
        assert_eq!(taken.len(), 4);
        assert!(activity.pending(None, 0).is_empty(), "taken means gone");
    }

    #[test]
    fn counts_put_back_after_a_failed_write_are_added_to_the_new_ones() {
        let activity = Activity::default();
        let org = Uuid::now_v7();
        activity.count(org, 0, ActivityKind::Write, "POST");
        let failed = activity.take();
        activity.count(org, 0, ActivityKind::Write, "POST");
        activity.restore(&failed);
        assert_eq!(activity.take()[0].count, 2);
    }

    #[test]
    fn merging_adds_counts_of_the_same_row_and_keeps_the_others() {
        let org = Uuid::now_v7();
        let row = |kind, label: &str, count| ActivityCount {
            org_id: org,
            hour: 1,
            kind,
            label: label.into(),
            count,
        };
        let mut counts = vec![row(ActivityKind::Change, "create", 3)];
        merge(
            &mut counts,
            vec![
                row(ActivityKind::Change, "create", 2),
                row(ActivityKind::Change, "delete", 1),
            ],
        );
        assert_eq!(
            counts,
            [
                row(ActivityKind::Change, "create", 5),
                row(ActivityKind::Change, "delete", 1)
            ]
        );
    }

    #[test]
    fn kinds_read_back_as_written() {
        for kind in [
            ActivityKind::Write,
            ActivityKind::Change,
            ActivityKind::Rejected,
            ActivityKind::Throttled,
        ] {
            assert_eq!(ActivityKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ActivityKind::parse("other"), None);
    }
}
