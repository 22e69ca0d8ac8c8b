//! `GET /metrics/prometheus`: every host's newest sample and the service's own metrics in
//! the Prometheus text exposition format, public or behind an optional bearer token.

use crate::auth::tokens::secrets_equal;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::state::AppState;
use crate::ingest::IngestStatsSnapshot;
use crate::prom::text::{Encoder, Kind, CONTENT_TYPE};
use crate::store::{Backend, HostSample, OutboxStats, PoolStats, Sample};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

/// One gauge per collected metric, labelled by host. Percentages become 0–1 ratios
/// (Prometheus base units), so `_ratio` gauges read 0.42 where the JSON API says 42.
type HostGauge = (&'static str, &'static str, fn(&Sample) -> f64);

/// A pool gauge: name, help, and the count it shows.
type PoolGauge = (&'static str, &'static str, fn(&PoolStats) -> u32);

const HOST_GAUGES: &[HostGauge] = &[
    (
        "watchpost_host_cpu_usage_ratio",
        "CPU busy across all cores in the newest sample, 0-1.",
        |s| s.cpu / 100.0,
    ),
    (
        "watchpost_host_memory_usage_ratio",
        "Memory in use (total minus available) in the newest sample, 0-1.",
        |s| s.memory / 100.0,
    ),
    (
        "watchpost_host_memory_used_bytes",
        "Memory in use (total minus available) in the newest sample.",
        |s| s.memory_used as f64,
    ),
    (
        "watchpost_host_memory_total_bytes",
        "Physical memory in the newest sample.",
        |s| s.memory_total as f64,
    ),
    (
        "watchpost_host_swap_usage_ratio",
        "Swap in use in the newest sample, 0-1.",
        |s| s.swap / 100.0,
    ),
    (
        "watchpost_host_load1",
        "1-minute load average in the newest sample.",
        |s| s.load1,
    ),
    (
        "watchpost_host_load5",
        "5-minute load average in the newest sample.",
        |s| s.load5,
    ),
    (
        "watchpost_host_load15",
        "15-minute load average in the newest sample.",
        |s| s.load15,
    ),
    (
        "watchpost_host_disk_usage_ratio",
        "Used fraction of the fullest real filesystem in the newest sample, 0-1.",
        |s| s.disk / 100.0,
    ),
    (
        "watchpost_host_disk_read_bytes_per_second",
        "Disk read rate over the newest sample's interval.",
        |s| s.disk_read_bps,
    ),
    (
        "watchpost_host_disk_write_bytes_per_second",
        "Disk write rate over the newest sample's interval.",
        |s| s.disk_write_bps,
    ),
    (
        "watchpost_host_network_receive_bytes_per_second",
        "Network receive rate (loopback excluded) over the newest sample's interval.",
        |s| s.net_rx_bps,
    ),
    (
        "watchpost_host_network_transmit_bytes_per_second",
        "Network transmit rate (loopback excluded) over the newest sample's interval.",
        |s| s.net_tx_bps,
    ),
    (
        "watchpost_host_processes",
        "Processes in the newest sample.",
        |s| s.processes as f64,
    ),
    (
        "watchpost_host_uptime_seconds",
        "Host uptime in the newest sample.",
        |s| s.uptime as f64,
    ),
    (
        "watchpost_host_sample_timestamp_seconds",
        "When the newest sample was taken, Unix time.",
        |s| s.ts as f64 / 1000.0,
    ),
];

/// Prometheus scrape: host gauges and the service's own metrics.
///
/// The newest sample of every host as gauges labelled `host` (percentages as 0–1 ratios),
/// the age of that sample, HTTP requests by route template and status with a duration
/// histogram, ingest batches and rows, alert evaluations, outbox deliveries by state and
/// database pool connections. Public unless `WATCHPOST_PROMETHEUS_TOKEN` is set; then it
/// takes `Authorization: Bearer <that token>` (API tokens from `/login` are not accepted).
#[utoipa::path(get, path = "/metrics/prometheus", tag = "metrics",
    security((), ("prometheus_token" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4",
            content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 401, description = "A token is configured and the request did not present it",
            body = ErrorBody,
            headers(("www-authenticate" = String, description = "Bearer"))),
    ))]
pub async fn scrape(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(expected) = &state.settings.prometheus_token {
        authorize(&headers, expected.expose())?;
    }
    // Two queries whatever the number of hosts, run side by side.
    let (latest, outbox) = tokio::join!(state.store.latest_samples(), state.store.outbox_stats());
    // A database outage must not blank the scrape: the HTTP metrics (full of 503s then)
    // are what tells the operator, and `watchpost_database_up` says what is missing.
    let latest = latest
        .inspect_err(|e| tracing::warn!(error = %e, "scrape: reading latest samples failed"))
        .ok();
    let outbox = outbox
        .inspect_err(|e| tracing::warn!(error = %e, "scrape: reading outbox stats failed"))
        .ok();
    let body = render(&Scrape {
        now_ms: crate::domain::now_ms(),
        backend: state.store.backend(),
        latest: latest.as_deref(),
        outbox: outbox.as_ref(),
        pools: &state.store.pool_stats(),
        metrics: &state.metrics,
        ingest: state.ingest_stats.snapshot(),
    });
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
        .into_response())
}

/// `Authorization: Bearer <token>`, compared in constant time.
fn authorize(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match presented {
        Some(token) if secrets_equal(token, expected) => Ok(()),
        // Scrapers retry every interval: debug, not warn, to keep a misconfigured one
        // from flooding the log.
        Some(_) => {
            tracing::debug!("prometheus scrape with a wrong token");
            Err(ApiError::Unauthorized("invalid bearer token"))
        }
        None => Err(ApiError::Unauthorized("missing bearer token")),
    }
}

/// Everything one scrape shows; `None` where the database did not answer.
pub struct Scrape<'a> {
    pub now_ms: i64,
    pub backend: Backend,
    pub latest: Option<&'a [HostSample]>,
    pub outbox: Option<&'a OutboxStats>,
    pub pools: &'a [PoolStats],
    pub metrics: &'a crate::prom::Metrics,
    pub ingest: IngestStatsSnapshot,
}

/// Renders a scrape. Every family is announced even when it has no samples, so the set of
/// names does not change with the database's state.
pub fn render(s: &Scrape<'_>) -> String {
    let hosts = s.latest.map_or(0, <[HostSample]>::len);
    let mut enc = Encoder::with_capacity(8 * 1024 + hosts * HOST_GAUGES.len() * 96);

    enc.family(
        "watchpost_build_info",
        Kind::Gauge,
        "Always 1; the labels name the running version and database engine.",
    );
    let engine = match s.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    enc.sample(
        "watchpost_build_info",
        &[("version", env!("CARGO_PKG_VERSION")), ("engine", engine)],
        1.0,
    );
    enc.family(
        "watchpost_database_up",
        Kind::Gauge,
        "1 if this scrape could read the database, else 0 (host and outbox gauges are then missing).",
    );
    let up = s.latest.is_some() && s.outbox.is_some();
    enc.sample("watchpost_database_up", &[], if up { 1.0 } else { 0.0 });

    let latest = s.latest.unwrap_or_default();
    for (name, help, value) in HOST_GAUGES {
        enc.family(name, Kind::Gauge, help);
        for h in latest {
            enc.sample(name, &[("host", &h.host)], value(&h.sample));
        }
    }
    enc.family(
        "watchpost_host_sample_age_seconds",
        Kind::Gauge,
        "Seconds since the newest sample was taken, at scrape time (grows while a host is silent).",
    );
    for h in latest {
        let age = (s.now_ms - h.sample.ts) as f64 / 1000.0;
        enc.sample(
            "watchpost_host_sample_age_seconds",
            &[("host", &h.host)],
            age,
        );
    }

    enc.family(
        "watchpost_outbox_deliveries",
        Kind::Gauge,
        "Notification deliveries in the outbox, by state (pending, delivered, dead).",
    );
    enc.family(
        "watchpost_outbox_oldest_pending_age_seconds",
        Kind::Gauge,
        "Age of the oldest pending delivery; 0 when none is pending.",
    );
    if let Some(o) = s.outbox {
        for (state, n) in [
            ("pending", o.pending),
            ("delivered", o.delivered),
            ("dead", o.dead),
        ] {
            enc.sample("watchpost_outbox_deliveries", &[("state", state)], n as f64);
        }
        let oldest = o
            .oldest_pending_at
            .map_or(0.0, |t| (s.now_ms - t).max(0) as f64 / 1000.0);
        enc.sample("watchpost_outbox_oldest_pending_age_seconds", &[], oldest);
    }

    let pool_gauges: [PoolGauge; 3] = [
        (
            "watchpost_db_pool_connections",
            "Open database connections (idle or in use), by pool.",
            |p| p.size,
        ),
        (
            "watchpost_db_pool_idle_connections",
            "Idle database connections, by pool.",
            |p| p.idle,
        ),
        (
            "watchpost_db_pool_max_connections",
            "Configured maximum of database connections, by pool.",
            |p| p.max,
        ),
    ];
    for (name, help, value) in pool_gauges {
        enc.family(name, Kind::Gauge, help);
        for p in s.pools {
            enc.sample_u64(name, &[("pool", p.pool)], u64::from(value(p)));
        }
    }

    let i = &s.ingest;
    let ingest_counters: [(&str, &str, u64); 7] = [
        (
            "watchpost_ingest_batches_total",
            "Agent batches stored by POST /ingest (retries not counted).",
            i.batches,
        ),
        (
            "watchpost_ingest_rows_total",
            "Sample rows stored by POST /ingest.",
            i.rows,
        ),
        (
            "watchpost_ingest_duplicate_batches_total",
            "Retried agent batches recognised by their batch id and not stored again.",
            i.duplicates,
        ),
        (
            "watchpost_ingest_rejected_total",
            "Ingest requests refused before queueing (bad token, deleted host, invalid batch).",
            i.rejected,
        ),
        (
            "watchpost_ingest_busy_total",
            "Ingest requests answered 503 because the writer's queue was full.",
            i.busy,
        ),
        (
            "watchpost_ingest_commits_total",
            "Group-commit transactions committed by the ingest writer.",
            i.commits,
        ),
        (
            "watchpost_ingest_failed_commits_total",
            "Ingest transactions that failed (every request in them got a 503).",
            i.failed_commits,
        ),
    ];
    for (name, help, value) in ingest_counters {
        enc.family(name, Kind::Counter, help);
        enc.sample_u64(name, &[], value);
    }

    s.metrics.render(&mut enc);
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prom::Metrics;

    #[test]
    fn host_gauges_carry_escaped_host_labels_and_ratios() {
        let latest = [HostSample {
            host: "we\"ird\\host\nname".into(),
            sample: Sample {
                host_id: 1,
                ts: 10_000,
                cpu: 42.5,
                memory_total: 8 << 30,
                ..Default::default()
            },
        }];
        let metrics = Metrics::new();
        let out = render(&Scrape {
            now_ms: 12_500,
            backend: Backend::Sqlite,
            latest: Some(&latest),
            outbox: None,
            pools: &[],
            metrics: &metrics,
            ingest: IngestStatsSnapshot::default(),
        });
        let label = r#"{host="we\"ird\\host\nname"}"#;
        assert!(
            out.contains(&format!("watchpost_host_cpu_usage_ratio{label} 0.425\n")),
            "{out}"
        );
        assert!(out.contains(&format!(
            "watchpost_host_memory_total_bytes{label} 8589934592\n"
        )));
        assert!(out.contains(&format!("watchpost_host_sample_age_seconds{label} 2.5\n")));
        assert!(out.contains(&format!(
            "watchpost_host_sample_timestamp_seconds{label} 10\n"
        )));
        assert!(out.contains("watchpost_database_up 0\n"));
        // No raw line feed from the host name reached the output.
        assert!(
            out.lines()
                .all(|l| l.starts_with('#') || l.starts_with("watchpost_")),
            "{out}"
        );
    }

    #[test]
    fn wrong_or_missing_bearer_is_refused() {
        let mut h = HeaderMap::new();
        assert!(authorize(&h, "0123456789abcdef").is_err());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nope"),
        );
        assert!(authorize(&h, "0123456789abcdef").is_err());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic MDEyMzQ1Njc4OWFiY2RlZg=="),
        );
        assert!(authorize(&h, "0123456789abcdef").is_err());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  0123456789abcdef "),
        );
        assert!(authorize(&h, "0123456789abcdef").is_ok());
    }
}
