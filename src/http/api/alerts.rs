//! `/alerts` and `/summary`.

use super::metrics::check_limit;
use crate::domain::{format_rfc3339, now_ms, MetricKind};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiQuery, ApiUser};
use crate::http::state::AppState;
use crate::store::Alert;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// One breach episode.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertOut {
    pub id: i64,
    /// The metric: `cpu`, `memory`, or any other metric a rule watches.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    /// Value of the sample that started the episode.
    pub value: f64,
    pub threshold: f64,
    /// Start of the episode, RFC 3339 UTC.
    pub ts: String,
    pub host: String,
    /// `global` (admin thresholds) or `user` (your own thresholds).
    pub scope: &'static str,
    /// `firing` or `resolved`.
    pub state: &'static str,
    /// End of the episode, RFC 3339 UTC, when resolved.
    pub resolved_at: Option<String>,
    /// Highest value seen during the episode (lowest for `<` rules; final at resolution).
    pub peak: f64,
    /// The rule that raised it (null if the rule was deleted).
    pub rule_id: Option<i64>,
    pub rule: String,
    /// `>`, `>=`, `<` or `<=`.
    pub comparison: String,
    /// `warning` or `critical`.
    pub severity: String,
}

impl From<&Alert> for AlertOut {
    fn from(a: &Alert) -> Self {
        Self {
            id: a.id,
            kind: a.metric.clone(),
            value: a.value,
            threshold: a.threshold,
            ts: format_rfc3339(a.ts),
            host: a.host.clone(),
            scope: if a.owner_id.is_some() {
                "user"
            } else {
                "global"
            },
            state: if a.resolved_at.is_some() {
                "resolved"
            } else {
                "firing"
            },
            resolved_at: a.resolved_at.map(format_rfc3339),
            peak: a.peak,
            rule_id: a.rule_id,
            rule: a.rule_name.clone(),
            comparison: a.comparison.clone(),
            severity: a.severity.clone(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Number of alerts, 1–10000 (default 100).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
}

/// Alerts, newest first: the global ones and those raised by your own thresholds.
#[utoipa::path(get, path = "/alerts", tag = "alerts", params(AlertsQuery),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Alerts, newest first", body = [AlertOut]),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 422, description = "Invalid limit", body = ErrorBody),
    ))]
pub async fn alerts(
    State(state): State<AppState>,
    user: ApiUser,
    ApiQuery(q): ApiQuery<AlertsQuery>,
) -> Result<Json<Vec<AlertOut>>, ApiError> {
    let limit = check_limit(q.limit, 100, 10_000)?;
    let rows = state.store.list_alerts(user.user.id, limit).await?;
    Ok(Json(rows.iter().map(AlertOut::from).collect()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// How many recent alert timestamps to list, 1–1000 (default 5).
    #[param(minimum = 1, maximum = 1000)]
    pub n: Option<i64>,
    /// Host whose samples the load figures describe (default: the host this server runs on).
    pub host: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    pub total_alerts: i64,
    /// Alert count per metric (every metric present, zero included).
    pub breakdown: BTreeMap<String, i64>,
    /// Newest first, RFC 3339 UTC.
    pub last_alert_timestamps: Vec<String>,
    /// Mean CPU percent of the last 10 samples of `host` (null without samples).
    pub avg_last_10_cpu: Option<f64>,
    pub avg_last_10_memory: Option<f64>,
    /// Alerts still firing.
    pub open_alerts: i64,
    pub peak_cpu_24h: Option<f64>,
    pub peak_memory_24h: Option<f64>,
    pub samples_24h: i64,
    pub last_sample_at: Option<String>,
    pub host: String,
    pub host_count: i64,
    pub generated_at: String,
}

fn round2(v: Option<f64>) -> Option<f64> {
    v.map(|x| (x * 100.0).round() / 100.0)
}

/// Alert totals and recent load.
#[utoipa::path(get, path = "/summary", tag = "alerts", params(SummaryQuery),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Summary", body = Summary),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "Unknown host", body = ErrorBody),
        (status = 422, description = "Invalid n", body = ErrorBody),
    ))]
pub async fn summary(
    State(state): State<AppState>,
    user: ApiUser,
    ApiQuery(q): ApiQuery<SummaryQuery>,
) -> Result<Json<Summary>, ApiError> {
    let n = match q.n {
        None => 5,
        Some(n) if (1..=1000).contains(&n) => n,
        Some(_) => return Err(ApiError::Validation("n must be between 1 and 1000".into())),
    };
    let now = now_ms();
    let stats = state.store.alert_stats(user.user.id, n).await?;
    let (host_id, host) =
        crate::http::api::metrics::resolve_host(&state, q.host.as_deref()).await?;
    let samples = state
        .store
        .sample_stats(host_id, 10, now - 86_400_000)
        .await?;
    let host_count = state.store.host_count().await?;
    let mut breakdown: BTreeMap<String, i64> = MetricKind::ALL
        .iter()
        .map(|m| (m.as_str().to_owned(), 0))
        .collect();
    breakdown.extend(stats.breakdown);
    Ok(Json(Summary {
        total_alerts: stats.total,
        breakdown,
        last_alert_timestamps: stats
            .last_timestamps
            .into_iter()
            .map(format_rfc3339)
            .collect(),
        avg_last_10_cpu: round2(samples.avg_last_cpu),
        avg_last_10_memory: round2(samples.avg_last_memory),
        open_alerts: stats.open,
        peak_cpu_24h: samples.peak_cpu_24h,
        peak_memory_24h: samples.peak_memory_24h,
        samples_24h: samples.count_24h,
        last_sample_at: samples.latest_ts.map(format_rfc3339),
        host,
        host_count,
        generated_at: format_rfc3339(now),
    }))
}
