//! The service's own metrics (HTTP requests, ingest, alert evaluations) and their rendering
//! for `GET /metrics/prometheus`.
//!
//! Hand-rolled rather than the `metrics`/`prometheus-client` crates: every `App` owns its
//! registry (tests run many servers in one process, and a global recorder would mix their
//! counters), the host gauges are read from the database at scrape time rather than
//! recorded, and the request path needs no allocation per request.

pub mod text;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;
use text::{Encoder, Kind};

/// The `route` label of requests that matched no route (404s from the fallback). Route
/// templates always start with `/`, so this cannot collide with one.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Upper bounds of the request duration buckets, in seconds, with their `le` spelling.
/// From 1 ms (cached API reads) to 5 min (log uploads may run for minutes).
const BUCKETS: [(f64, &str); 16] = [
    (0.001, "0.001"),
    (0.0025, "0.0025"),
    (0.005, "0.005"),
    (0.01, "0.01"),
    (0.025, "0.025"),
    (0.05, "0.05"),
    (0.1, "0.1"),
    (0.25, "0.25"),
    (0.5, "0.5"),
    (1.0, "1"),
    (2.5, "2.5"),
    (5.0, "5"),
    (10.0, "10"),
    (30.0, "30"),
    (60.0, "60"),
    (300.0, "300"),
];

pub const HTTP_REQUESTS: &str = "watchpost_http_requests_total";
pub const HTTP_DURATION: &str = "watchpost_http_request_duration_seconds";
pub const ALERT_EVALUATIONS: &str = "watchpost_alert_evaluations_total";
pub const ALERT_EVALUATION_FAILURES: &str = "watchpost_alert_evaluation_failures_total";
pub const LEASE_HELD: &str = "watchpost_lease_held";

/// Counters and histograms of one running service. Cheap to update from any task: atomics,
/// and one uncontended mutex per request.
#[derive(Debug, Default)]
pub struct Metrics {
    http: HttpMetrics,
    alert_evaluations: AtomicU64,
    alert_evaluation_failures: AtomicU64,
    /// Whether this process holds the lease of each one-replica job (1/0).
    leases: Mutex<std::collections::BTreeMap<&'static str, bool>>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one answered request. `route` is the matched route template (never the raw
    /// path, which would give every id its own series); `None` for requests no route
    /// matched.
    pub fn record_request(
        &self,
        route: Option<&str>,
        method: &str,
        status: u16,
        elapsed: Duration,
    ) {
        self.http
            .record(route, method_label(method), status, elapsed.as_secs_f64());
    }

    /// Counts one evaluation round of the alert engine (samples against the rules, then the
    /// clock); `ok` is false when its outcome could not be read or persisted.
    pub fn record_alert_evaluation(&self, ok: bool) {
        self.alert_evaluations.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.alert_evaluation_failures
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records whether this process holds the lease `name` (a job runs once per
    /// deployment; the gauge shows which replica runs it).
    pub fn set_lease_held(&self, name: &'static str, held: bool) {
        self.leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, held);
    }

    /// Appends every family this registry holds.
    pub fn render(&self, enc: &mut Encoder) {
        self.http.render(enc);
        let leases = self
            .leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if !leases.is_empty() {
            enc.family(
                LEASE_HELD,
                Kind::Gauge,
                "1 while this replica holds the lease of a job that runs on one replica at a time.",
            );
            for (name, held) in leases {
                enc.sample(LEASE_HELD, &[("lease", name)], if held { 1.0 } else { 0.0 });
            }
        }
        enc.family(
            ALERT_EVALUATIONS,
            Kind::Counter,
            "Alert rule evaluation rounds (new samples against every rule, then the clock).",
        );
        enc.sample_u64(
            ALERT_EVALUATIONS,
            &[],
            self.alert_evaluations.load(Ordering::Relaxed),
        );
        enc.family(
            ALERT_EVALUATION_FAILURES,
            Kind::Counter,
            "Alert evaluation rounds whose rules could not be read or whose outcome could not be stored (retried with the next samples).",
        );
        enc.sample_u64(
            ALERT_EVALUATION_FAILURES,
            &[],
            self.alert_evaluation_failures.load(Ordering::Relaxed),
        );
    }
}

/// Methods as labels: the standard ones by name, anything else (extension methods are
/// client-chosen strings) folded into one value so clients cannot mint series.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "OTHER",
    }
}

#[derive(Debug, Default)]
struct HttpMetrics {
    /// Keyed by route template. The set is bounded by the router's routes, so it needs no
    /// eviction; it is written only the first time a route answers.
    routes: RwLock<HashMap<Box<str>, RouteStats>>,
    unmatched: RouteStats,
}

#[derive(Debug, Default)]
struct RouteStats(Mutex<RouteData>);

/// One route's counters behind one lock, so a scrape sees counts, buckets and sum that
/// agree with each other (`_count` equals the `+Inf` bucket and the requests counted).
#[derive(Debug, Default, Clone)]
struct RouteData {
    /// Requests per (method, status). A route answers a handful of combinations, so a
    /// scanned vector beats a map and allocates only when a new one appears.
    by_status: Vec<(&'static str, u16, u64)>,
    /// Non-cumulative counts per bucket; the last slot holds durations above every bound.
    buckets: [u64; BUCKETS.len() + 1],
    sum_secs: f64,
}

impl RouteStats {
    fn observe(&self, method: &'static str, status: u16, secs: f64) {
        let mut d = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match d
            .by_status
            .iter_mut()
            .find(|(m, s, _)| *m == method && *s == status)
        {
            Some(entry) => entry.2 += 1,
            None => d.by_status.push((method, status, 1)),
        }
        let slot = BUCKETS
            .iter()
            .position(|(bound, _)| secs <= *bound)
            .unwrap_or(BUCKETS.len());
        d.buckets[slot] += 1;
        d.sum_secs += secs;
    }

    fn snapshot(&self) -> RouteData {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl HttpMetrics {
    fn record(&self, route: Option<&str>, method: &'static str, status: u16, secs: f64) {
        let Some(route) = route else {
            self.unmatched.observe(method, status, secs);
            return;
        };
        {
            let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(stats) = routes.get(route) {
                stats.observe(method, status, secs);
                return;
            }
        }
        let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
        routes
            .entry(route.into())
            .or_default()
            .observe(method, status, secs);
    }

    fn render(&self, enc: &mut Encoder) {
        let mut rows: Vec<(String, RouteData)> = {
            let routes = self.routes.read().unwrap_or_else(PoisonError::into_inner);
            routes
                .iter()
                .map(|(k, v)| (k.to_string(), v.snapshot()))
                .collect()
        };
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let unmatched = self.unmatched.snapshot();
        if !unmatched.by_status.is_empty() {
            rows.push((UNMATCHED_ROUTE.to_owned(), unmatched));
        }

        enc.family(
            HTTP_REQUESTS,
            Kind::Counter,
            "HTTP requests answered, by route template (\"unmatched\" when no route matched), method and status code.",
        );
        for (route, data) in &mut rows {
            data.by_status.sort_unstable();
            for (method, status, n) in &data.by_status {
                let status = status.to_string();
                enc.sample_u64(
                    HTTP_REQUESTS,
                    &[("route", route), ("method", method), ("status", &status)],
                    *n,
                );
            }
        }

        enc.family(
            HTTP_DURATION,
            Kind::Histogram,
            "Time from receiving a request to its response headers, by route template.",
        );
        let bucket = format!("{HTTP_DURATION}_bucket");
        let sum = format!("{HTTP_DURATION}_sum");
        let count = format!("{HTTP_DURATION}_count");
        for (route, data) in &rows {
            let mut cumulative = 0u64;
            for ((_, le), n) in BUCKETS.iter().zip(data.buckets.iter()) {
                cumulative += n;
                enc.sample_u64(&bucket, &[("route", route), ("le", le)], cumulative);
            }
            cumulative += data.buckets[BUCKETS.len()];
            enc.sample_u64(&bucket, &[("route", route), ("le", "+Inf")], cumulative);
            enc.sample(&sum, &[("route", route)], data.sum_secs);
            enc.sample_u64(&count, &[("route", route)], cumulative);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(m: &Metrics) -> String {
        let mut enc = Encoder::default();
        m.render(&mut enc);
        enc.finish()
    }

    fn value(out: &str, series: &str) -> Option<f64> {
        out.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn requests_are_counted_by_route_method_and_status() {
        let m = Metrics::new();
        let ms = Duration::from_millis;
        m.record_request(Some("/rules/{id}"), "GET", 200, ms(3));
        m.record_request(Some("/rules/{id}"), "GET", 200, ms(30));
        m.record_request(Some("/rules/{id}"), "DELETE", 404, ms(2));
        m.record_request(None, "BREW", 404, ms(0));
        m.record_request(Some("/x"), "GET", 200, Duration::from_secs(1000));
        let out = render(&m);
        let req = |labels: &str| value(&out, &format!("{HTTP_REQUESTS}{{{labels}}}"));
        assert_eq!(
            req(r#"route="/rules/{id}",method="GET",status="200""#),
            Some(2.0)
        );
        assert_eq!(
            req(r#"route="/rules/{id}",method="DELETE",status="404""#),
            Some(1.0)
        );
        assert_eq!(
            req(r#"route="unmatched",method="OTHER",status="404""#),
            Some(1.0)
        );
        let b = |route: &str, le: &str| {
            value(
                &out,
                &format!("{HTTP_DURATION}_bucket{{route=\"{route}\",le=\"{le}\"}}"),
            )
        };
        assert_eq!(b("/rules/{id}", "0.0025"), Some(1.0));
        assert_eq!(b("/rules/{id}", "0.005"), Some(2.0));
        assert_eq!(b("/rules/{id}", "0.025"), Some(2.0));
        assert_eq!(b("/rules/{id}", "0.05"), Some(3.0));
        assert_eq!(b("/rules/{id}", "+Inf"), Some(3.0));
        // Longer than the largest bound: only in +Inf.
        assert_eq!(b("/x", "300"), Some(0.0));
        assert_eq!(b("/x", "+Inf"), Some(1.0));
        let count = value(
            &out,
            &format!("{HTTP_DURATION}_count{{route=\"/rules/{{id}}\"}}"),
        );
        assert_eq!(count, Some(3.0));
        let sum = value(
            &out,
            &format!("{HTTP_DURATION}_sum{{route=\"/rules/{{id}}\"}}"),
        )
        .expect("sum");
        assert!((sum - 0.035).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn alert_counters_start_at_zero() {
        let m = Metrics::new();
        let out = render(&m);
        assert_eq!(value(&out, ALERT_EVALUATIONS), Some(0.0));
        m.record_alert_evaluation(true);
        m.record_alert_evaluation(false);
        let out = render(&m);
        assert_eq!(value(&out, ALERT_EVALUATIONS), Some(2.0));
        assert_eq!(value(&out, ALERT_EVALUATION_FAILURES), Some(1.0));
    }

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("PROPFIND"), "OTHER");
        assert_eq!(method_label("get"), "OTHER");
    }
}
