//! Prometheus metrics: request counts and latencies by route template, rate limiting,
//! authentication failures by reason, refusals per key, the change log and rejected writes,
//! database pool state and resources (in total, or per organization when
//! `SCIMD_METRICS_PER_ORG` asks for it).
//!
//! Every label value comes from a short fixed set (method, route template, status, reason):
//! nothing a client sends becomes a label, or `/metrics` and memory grow with every request.
//! Recorded through the `metrics` facade and rendered by `metrics-exporter-prometheus`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use axum::http::Method;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: SCIM calls are milliseconds when healthy, seconds when not.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide recorder (installed once; later calls, as in tests, share it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("scimd_http_request_duration_seconds".into()),
                LATENCY_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("scimd_event_delivery_seconds".into()),
                    LATENCY_BUCKETS,
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed; the handle still renders ours.
        let _ = metrics::set_global_recorder(recorder);
        let upkept = handle.clone();
        let started = std::thread::Builder::new()
            .name("scimd-metrics".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkept.run_upkeep();
                }
            });
        if let Err(e) = started {
            tracing::warn!(error = %e, "metrics upkeep thread could not start");
        }
        handle
    })
}

/// How often recorded histogram samples are folded into their buckets. The recorder keeps
/// every sample until then (or until `/metrics` is scraped): with nothing scraping, a
/// server's memory grew by about 21 bytes per request, without bound (measured: 2 MB per
/// 94,000 GETs, given back at the first scrape).
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The method as a label: the nine of RFC 9110 §9, anything else `other` (any token is a valid
/// method name, e.g. 100 KB of letters).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// The request metrics of one method, route and status.
struct RequestHandles {
    method: &'static str,
    status: u16,
    count: metrics::Counter,
    duration: metrics::Histogram,
}

thread_local! {
    /// This thread's handles of the request metrics, by route template: looking a labelled
    /// metric up through the facade builds and hashes its labels on every request (two
    /// metrics, four label strings). The keys come from short fixed sets (see the module).
    static REQUEST_HANDLES: RefCell<HashMap<Box<str>, Vec<RequestHandles>>> =
        RefCell::new(HashMap::new());
}

/// One finished HTTP request (`method` from [`method_label`]).
pub fn request(method: &'static str, route: &str, status: u16, seconds: f64) {
    REQUEST_HANDLES.with_borrow_mut(|routes| {
        if let Some(known) = routes
            .get(route)
            .and_then(|h| h.iter().find(|h| h.method == method && h.status == status))
        {
            known.count.increment(1);
            known.duration.record(seconds);
            return;
        }
        let labels = [
            ("method", method.to_string()),
            ("route", route.to_string()),
            ("status", status.to_string()),
        ];
        let handle = RequestHandles {
            method,
            status,
            count: metrics::counter!("scimd_http_requests_total", &labels),
            duration: metrics::histogram!(
                "scimd_http_request_duration_seconds",
                "method" => method,
                "route" => route.to_string()
            ),
        };
        handle.count.increment(1);
        handle.duration.record(seconds);
        routes.entry(route.into()).or_default().push(handle);
    });
}

/// A request refused by a limiter (`scope`: "key", "auth_failures" or "org_concurrency").
pub fn rate_limited(scope: &'static str) {
    metrics::counter!("scimd_rate_limited_total", "scope" => scope).increment(1);
}

/// A refused authentication, by reason (never the token).
pub fn auth_failure(reason: &'static str) {
    metrics::counter!("scimd_auth_failures_total", "reason" => reason).increment(1);
}

/// Gauges read at scrape time: pool state and resources per organization.
pub fn pool(size: u32, idle: u32) {
    metrics::gauge!("scimd_db_pool_connections", "state" => "open").set(f64::from(size));
    metrics::gauge!("scimd_db_pool_connections", "state" => "idle").set(f64::from(idle));
}

/// A change-log entry committed with its change.
pub fn changes_recorded(n: u64) {
    metrics::counter!("scimd_changes_recorded_total").increment(n);
}

/// Rejected write requests stored (`recorded`) or only counted because their key was over
/// the bound or the queue was full (`dropped`).
pub fn rejected_writes(outcome: &'static str, n: u64) {
    metrics::counter!("scimd_rejected_writes_total", "outcome" => outcome).increment(n);
}

/// A request refused with 401 or 429 although its key is known (its signature verified):
/// these are not stored as rejected writes, only counted per key. Key ids are bounded by the
/// keys this server issued, never chosen by a client.
pub fn refused_for_key(key_id: uuid::Uuid, status: u16) {
    metrics::counter!(
        "scimd_key_refusals_total",
        "key" => key_id.to_string(),
        "status" => status.to_string()
    )
    .increment(1);
}

/// SETs a stream's receiver acknowledged.
pub fn events_delivered(stream: &str, n: u64) {
    metrics::counter!("scimd_events_delivered_total", "stream" => stream.to_string()).increment(n);
}

/// A failed push attempt (`retried`) or a SET the receiver refused for good (`refused`).
pub fn events_failed(stream: &str, outcome: &'static str) {
    metrics::counter!(
        "scimd_events_failed_total",
        "stream" => stream.to_string(),
        "outcome" => outcome
    )
    .increment(1);
}

/// How far a stream is behind: the age of its oldest undelivered entry and the entries not
/// yet acknowledged (0 when unknown at this point).
pub fn stream_lag(stream: &str, seconds: f64, entries: i64) {
    metrics::gauge!("scimd_stream_lag_seconds", "stream" => stream.to_string()).set(seconds);
    if entries > 0 || seconds == 0.0 {
        metrics::gauge!("scimd_stream_lag_entries", "stream" => stream.to_string())
            .set(entries as f64);
    }
}

/// From a change's commit to its receiver's acknowledgement, in milliseconds.
pub fn delivery_latency(ms: i64) {
    metrics::histogram!("scimd_event_delivery_seconds").record(ms.max(0) as f64 / 1000.0);
}

/// A request that had to wait for one of its organization's concurrency permits.
pub fn org_queued() {
    metrics::counter!("scimd_org_concurrency_waits_total").increment(1);
}

/// Users and groups in all organizations.
pub fn resource_totals(users: i64, groups: i64) {
    metrics::gauge!("scimd_users").set(users as f64);
    metrics::gauge!("scimd_groups").set(groups as f64);
}

/// Users and groups of one organization (only with `SCIMD_METRICS_PER_ORG`: the labels name
/// every tenant to whoever can scrape).
pub fn resources(org: &str, users: i64, groups: i64) {
    metrics::gauge!("scimd_users", "org" => org.to_string()).set(users as f64);
    metrics::gauge!("scimd_groups", "org" => org.to_string()).set(groups as f64);
}

/// The text exposition of every metric.
pub fn render() -> String {
    handle().render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let long = Method::from_bytes("X".repeat(10_000).as_bytes()).unwrap();
        assert_eq!(method_label(&long), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }

    /// The count of one route and status in the text exposition.
    fn requests_counted(route: &str, status: u16) -> Option<String> {
        render()
            .lines()
            .find(|l| {
                l.starts_with("scimd_http_requests_total{")
                    && l.contains(&format!("route=\"{route}\""))
                    && l.contains(&format!("status=\"{status}\""))
            })
            .and_then(|l| l.rsplit(' ').next().map(str::to_string))
    }

    #[test]
    fn requests_are_counted_by_route_and_status_from_every_thread() {
        handle();
        let route = "/metrics-test/{id}";
        request("GET", route, 200, 0.001);
        request("GET", route, 200, 0.002);
        request("GET", route, 404, 0.001);
        std::thread::spawn(move || request("GET", route, 200, 0.003))
            .join()
            .unwrap();
        assert_eq!(requests_counted(route, 200).as_deref(), Some("3"));
        assert_eq!(requests_counted(route, 404).as_deref(), Some("1"));
        let durations = render()
            .lines()
            .filter(|l| l.starts_with("scimd_http_request_duration_seconds_count{"))
            .find(|l| l.contains("route=\"/metrics-test/{id}\""))
            .map(str::to_string);
        assert!(durations.is_some_and(|l| l.ends_with(" 4")));
    }
}
