//! `GET /admin`: every organization with its users (active and inactive), groups, keys, last
//! change, a sparkline of its changes over the last 24 hours, and whether it is failing.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use uuid::Uuid;

use super::charts::{hour_of, sparkline};
use super::{AppState, SignedIn, html_response, page, when};
use crate::store::activity::{ActivityCount, ActivityKind, HOUR_MS};
use crate::store::admin::OrgSummary;
use crate::store::now_ms;

/// Over this share of an hour's write requests rejected, an organization is failing.
const FAILING_SHARE: f64 = 0.2;

/// What the overview counts of one organization from its hourly activity.
#[derive(Debug, Default, Clone, PartialEq)]
struct Recent {
    /// Changes in each of the last 24 hours, oldest first.
    changes_per_hour: Vec<i64>,
    writes_last_hour: i64,
    rejected_last_hour: i64,
    writes_last_day: i64,
}

/// Sums `counts` per organization over the 24 hours ending with `now_hour`; the "last hour"
/// is the current hour and the one before (an hour that just began would say little).
fn recent(counts: &[ActivityCount], now_hour: i64) -> HashMap<Uuid, Recent> {
    let mut by_org: HashMap<Uuid, Recent> = HashMap::new();
    for count in counts {
        let age = now_hour - count.hour;
        if !(0..24).contains(&age) {
            continue;
        }
        let recent = by_org.entry(count.org_id).or_insert_with(|| Recent {
            changes_per_hour: vec![0; 24],
            ..Recent::default()
        });
        match count.kind {
            ActivityKind::Change => recent.changes_per_hour[(23 - age) as usize] += count.count,
            ActivityKind::Write => {
                recent.writes_last_day += count.count;
                if age <= 1 {
                    recent.writes_last_hour += count.count;
                }
            }
            ActivityKind::Rejected if age <= 1 => recent.rejected_last_hour += count.count,
            _ => {}
        }
    }
    by_org
}

/// Why an organization is failing, if it is: over 20 % of its identity provider's write
/// requests in the last hour were rejected, or it had traffic (a change) once and no write
/// request in the last 24 hours.
fn failing(recent: &Recent, last_change_at: Option<i64>, now: i64) -> Option<String> {
    if recent.writes_last_hour > 0 {
        let share = recent.rejected_last_hour as f64 / recent.writes_last_hour as f64;
        if share > FAILING_SHARE {
            return Some(format!(
                "{} of {} writes rejected in the last hour",
                recent.rejected_last_hour, recent.writes_last_hour
            ));
        }
    }
    match last_change_at {
        Some(at) if recent.writes_last_day == 0 && now - at > 24 * HOUR_MS => {
            Some("no writes in the last 24 hours".into())
        }
        _ => None,
    }
}

pub(super) async fn overview(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    let now = now_ms();
    let now_hour = hour_of(now);
    let orgs: Vec<OrgSummary> = match state.store.org_summaries().await {
        Ok(orgs) => orgs,
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    let activity = match state.admin.activity(None, now_hour - 23).await {
        Ok(counts) => recent(&counts, now_hour),
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    let quiet = Recent {
        changes_per_hour: vec![0; 24],
        ..Recent::default()
    };
    let body = html! {
        (signed_in.header(html! {}))
        h2 { "Organizations" }
        table {
            thead { tr {
                th { "organization" } th { "state" } th { "users" } th { "inactive" }
                th { "groups" } th { "keys" } th { "last change" } th { "changes, 24 h" } th { "health" }
            } }
            tbody {
                @for org in &orgs {
                    @let recent = activity.get(&org.org.id).unwrap_or(&quiet);
                    @let failing = failing(recent, org.last_change_at, now);
                    tr class=[failing.as_ref().map(|_| "failing")] {
                        td { a href={ "/admin/orgs/" (org.org.slug) } { (org.org.slug) } }
                        td { @if org.org.deleted_at.is_some() { "deleting" } @else { "active" } }
                        td.n { (org.users - org.inactive_users) }
                        td.n { (org.inactive_users) }
                        td.n { (org.groups) }
                        td.n { (org.keys) }
                        td { (org.last_change_at.map_or_else(|| "-".to_string(), when)) }
                        td { (sparkline("changes in the last 24 hours", &recent.changes_per_hour)) }
                        td { @match &failing {
                            Some(why) => { strong.bad { "failing" } " · " (why) }
                            None => { "ok" }
                        } }
                    }
                }
            }
        }
    };
    html_response(StatusCode::OK, page("Organizations", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(org: Uuid, hour: i64, kind: ActivityKind, n: i64) -> ActivityCount {
        ActivityCount {
            org_id: org,
            hour,
            kind,
            label: String::new(),
            count: n,
        }
    }

    #[test]
    fn the_last_day_is_summed_per_organization_and_older_hours_are_left_out() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let counts = [
            count(a, 100, ActivityKind::Change, 3),
            count(a, 99, ActivityKind::Write, 10),
            count(a, 99, ActivityKind::Rejected, 4),
            count(a, 90, ActivityKind::Write, 5),
            count(a, 70, ActivityKind::Write, 50),
            count(b, 77, ActivityKind::Change, 1),
        ];
        let recent = recent(&counts, 100);
        let of_a = &recent[&a];
        assert_eq!(of_a.changes_per_hour[23], 3);
        assert_eq!(of_a.writes_last_hour, 10);
        assert_eq!(of_a.rejected_last_hour, 4);
        assert_eq!(of_a.writes_last_day, 15);
        assert_eq!(
            recent[&b].changes_per_hour[0], 1,
            "hour 77 is the oldest of the day"
        );
    }

    #[test]
    fn an_organization_fails_over_a_fifth_rejected_or_silent_for_a_day_after_traffic() {
        let now = 1_000 * HOUR_MS;
        let busy = |writes, rejected| Recent {
            writes_last_hour: writes,
            rejected_last_hour: rejected,
            writes_last_day: writes,
            ..Recent::default()
        };
        let cases = [
            (busy(10, 2), Some(now), false),
            (busy(10, 3), Some(now), true),
            (busy(0, 0), None, false),
            (busy(0, 0), Some(now - 2 * HOUR_MS), false),
            (busy(0, 0), Some(now - 25 * HOUR_MS), true),
            (busy(5, 0), Some(now - 25 * HOUR_MS), false),
        ];
        for (recent, last_change, want) in cases {
            assert_eq!(
                failing(&recent, last_change, now).is_some(),
                want,
                "{recent:?} {last_change:?}"
            );
        }
    }
}
