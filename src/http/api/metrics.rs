//! `/metrics` (newest samples) and `/metrics/history` (a time range, ascending).

use crate::domain::{format_rfc3339, now_ms, TimeRange};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiQuery, ApiUser};
use crate::http::state::AppState;
use crate::store::{covering_tier, Sample, Tier};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// One sample as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SampleOut {
    /// CPU busy, percent.
    pub cpu: f64,
    /// Memory in use, percent.
    pub memory: f64,
    /// RFC 3339 UTC.
    pub ts: String,
    pub host: String,
    pub memory_used_bytes: i64,
    pub memory_total_bytes: i64,
    /// Swap in use, percent.
    pub swap: f64,
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    /// Fullest real filesystem, percent used.
    pub disk: f64,
    pub disk_read_bps: f64,
    pub disk_write_bps: f64,
    pub net_rx_bps: f64,
    pub net_tx_bps: f64,
    pub processes: i64,
    pub uptime_secs: i64,
}

impl SampleOut {
    pub fn new(s: &Sample, host: &str) -> Self {
        Self {
            cpu: s.cpu,
            memory: s.memory,
            ts: format_rfc3339(s.ts),
            host: host.to_owned(),
            memory_used_bytes: s.memory_used,
            memory_total_bytes: s.memory_total,
            swap: s.swap,
            load1: s.load1,
            load5: s.load5,
            load15: s.load15,
            disk: s.disk,
            disk_read_bps: s.disk_read_bps,
            disk_write_bps: s.disk_write_bps,
            net_rx_bps: s.net_rx_bps,
            net_tx_bps: s.net_tx_bps,
            processes: s.processes,
            uptime_secs: s.uptime,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// Number of samples, 1–10000 (default 100).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
    /// Host name (default: the host this server runs on).
    pub host: Option<String>,
}

/// Resolves the `host` parameter to (id, name); unknown hosts are 404.
pub(crate) async fn resolve_host(
    state: &AppState,
    host: Option<&str>,
) -> Result<(i64, String), ApiError> {
    match host {
        None => Ok((state.local_host_id, state.local_host.to_string())),
        Some(name) if name == &*state.local_host => Ok((state.local_host_id, name.to_owned())),
        Some(name) => {
            if name.len() > 255 {
                return Err(ApiError::Validation("host name too long".into()));
            }
            let id = state
                .store
                .host_id(name)
                .await?
                .ok_or_else(|| ApiError::NotFound("unknown host".into()))?;
            Ok((id, name.to_owned()))
        }
    }
}

pub(crate) fn check_limit(limit: Option<i64>, default: i64, max: i64) -> Result<i64, ApiError> {
    let limit = limit.unwrap_or(default);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::Validation(format!(
            "limit must be between 1 and {max}"
        )))
    }
}

/// Latest samples, newest first.
#[utoipa::path(get, path = "/metrics", tag = "metrics", params(MetricsQuery),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Samples, newest first", body = [SampleOut]),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "Unknown host", body = ErrorBody),
        (status = 422, description = "Invalid limit", body = ErrorBody),
    ))]
pub async fn metrics(
    State(state): State<AppState>,
    _user: ApiUser,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> Result<Json<Vec<SampleOut>>, ApiError> {
    let limit = check_limit(q.limit, 100, 10_000)?;
    let (host_id, host) = resolve_host(&state, q.host.as_deref()).await?;
    let rows = state.store.recent_samples(host_id, limit).await?;
    Ok(Json(
        rows.iter().map(|s| SampleOut::new(s, &host)).collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Range start, RFC 3339 / ISO 8601; no offset means UTC (default: one hour before `end`).
    #[param(format = DateTime, example = "2026-01-31T11:00:00Z")]
    pub start: Option<String>,
    /// Range end, inclusive (default: now).
    #[param(format = DateTime, example = "2026-01-31T12:00:00Z")]
    pub end: Option<String>,
    /// Host name (default: the host this server runs on).
    pub host: Option<String>,
}

/// Samples in a time range, oldest first.
///
/// Short ranges come from the raw samples. A range holding more than `history_max_points`
/// (default 5000) samples is read from the rollups instead: the 1-minute tier while the
/// range spans at most that many minutes, else the 1-hour tier, with neighbouring buckets
/// merged further if there would still be too many. Each bucket is returned as one
/// averaged sample (maxima for counters such as processes and uptime), stamped with the
/// bucket's start; buckets starting inside the range are returned. The
/// `x-watchpost-bucket-ms` response header says the bucket width (60000, 3600000 or a
/// multiple) whenever rollups were returned. Where the raw samples (or the 1-minute
/// buckets) of the range were already deleted by retention, the next tier answers.
#[utoipa::path(get, path = "/metrics/history", tag = "metrics", params(HistoryQuery),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Samples, oldest first", body = [SampleOut],
            headers(("x-watchpost-bucket-ms" = String, description = "Bucket width in ms when rollups were returned"))),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "Unknown host", body = ErrorBody),
        (status = 422, description = "Unparsable timestamps or start after end", body = ErrorBody),
    ))]
pub async fn history(
    State(state): State<AppState>,
    _user: ApiUser,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<(HeaderMap, Json<Vec<SampleOut>>), ApiError> {
    let end_raw = q.end.unwrap_or_else(|| format_rfc3339(now_ms()));
    let end = crate::domain::parse_timestamp(&end_raw)?;
    let start_raw = q.start.unwrap_or_else(|| format_rfc3339(end - 3_600_000));
    let range = TimeRange::parse(&start_raw, &end_raw)?;
    let (host_id, host) = resolve_host(&state, q.host.as_deref()).await?;
    let max_points = i64::from(state.settings.history_max_points);
    let store = state.store.as_ref();

    let wanted = if buckets_in(range.start, range.end, Tier::Minute) > max_points {
        Tier::Hour
    } else {
        Tier::Raw
    };
    let mut tier = covering_tier(store, host_id, wanted, range.start).await?;
    // Counting stops one past the limit: the cost is bounded by max_points.
    if tier == Tier::Raw
        && store
            .count_samples_capped(host_id, range.start, range.end, max_points + 1)
            .await?
            > max_points
    {
        tier = covering_tier(store, host_id, Tier::Minute, range.start).await?;
    }

    let mut headers = HeaderMap::new();
    let rows = if tier == Tier::Raw {
        store
            .samples_between(host_id, range.start, range.end)
            .await?
    } else {
        // Whole tier buckets per point, as few as keep the answer within max_points.
        let buckets = buckets_in(range.start, range.end, tier);
        let per_point = ((buckets + max_points - 1) / max_points).max(1);
        let bucket = per_point.saturating_mul(tier.step_ms());
        headers.insert("x-watchpost-bucket-ms", HeaderValue::from(bucket));
        store
            .rollup_samples(tier, host_id, range.start, range.end, bucket)
            .await?
    };
    Ok((
        headers,
        Json(rows.iter().map(|s| SampleOut::new(s, &host)).collect()),
    ))
}

/// How many `tier` buckets start inside [start, end].
fn buckets_in(start: i64, end: i64, tier: Tier) -> i64 {
    let step = tier.step_ms();
    let first = start.div_euclid(step) + i64::from(start.rem_euclid(step) != 0);
    let last = end.div_euclid(step);
    (last - first + 1).max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::api::{alerts, deliveries, logs};
    use proptest::prelude::*;

    proptest! {
        /// Every JSON route's query struct takes any query string without a panic (axum's
        /// `Query` is `serde_urlencoded`), and a `limit` that parses is kept in bounds.
        #[test]
        fn query_strings_never_panic(
            q in "((limit|host|start|end|n|state|channel_id|offset|x)=[^&]{0,14}&?){0,5}|\\PC{0,40}"
        ) {
            let _ = serde_urlencoded::from_str::<HistoryQuery>(&q);
            let _ = serde_urlencoded::from_str::<alerts::AlertsQuery>(&q);
            let _ = serde_urlencoded::from_str::<alerts::SummaryQuery>(&q);
            let _ = serde_urlencoded::from_str::<deliveries::DeliveryQuery>(&q);
            let _ = serde_urlencoded::from_str::<logs::AnalysesQuery>(&q);
            if let Ok(m) = serde_urlencoded::from_str::<MetricsQuery>(&q) {
                if let Ok(n) = check_limit(m.limit, 100, 10_000) {
                    prop_assert!((1..=10_000).contains(&n));
                }
            }
        }
    }
}
