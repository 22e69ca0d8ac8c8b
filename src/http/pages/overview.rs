//! The overview: one card per host with current values and live SVG charts. The same
//! handler renders the whole page, or (for htmx polls) one host's card.

use super::render::{fmt_bytes, fmt_rate, fmt_time, fmt_uptime, render, Nav, PageError, PageQuery};
use super::session::Ctx;
use crate::charts::{build, ChartInput, ChartView, Unit};
use crate::domain::now_ms;
use crate::http::state::AppState;
use crate::store::{covering_tier, ChartBucket, Host, Sample, ThresholdPair, Tier};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

/// Chart ranges offered by the picker: (key, label, span ms, poll seconds). Long ranges
/// poll slowly: their data barely moves and each render scans more rows.
pub const RANGES: [(&str, &str, i64, u32); 6] = [
    ("15m", "15 min", 15 * 60_000, 2),
    ("1h", "1 hour", 3_600_000, 2),
    ("6h", "6 hours", 6 * 3_600_000, 10),
    ("24h", "24 hours", 24 * 3_600_000, 30),
    ("7d", "7 days", 7 * 86_400_000, 60),
    ("30d", "30 days", 30 * 86_400_000, 120),
];

/// One chart of a host card.
struct ChartSpec {
    title: &'static str,
    unit: Unit,
    /// The threshold line, for metrics that have one.
    threshold: Option<fn(&ThresholdPair) -> f64>,
    /// A bucket's minimum and maximum.
    bucket: fn(&ChartBucket) -> (f64, f64),
    /// The value in a single sample.
    current: fn(&Sample) -> f64,
}

const CHARTS: [ChartSpec; 7] = [
    ChartSpec {
        title: "CPU",
        unit: Unit::Percent,
        threshold: Some(|t| t.cpu),
        bucket: |b| (b.cpu_min, b.cpu_max),
        current: |s| s.cpu,
    },
    ChartSpec {
        title: "Memory",
        unit: Unit::Percent,
        threshold: Some(|t| t.memory),
        bucket: |b| (b.memory_min, b.memory_max),
        current: |s| s.memory,
    },
    ChartSpec {
        title: "Swap",
        unit: Unit::Percent,
        threshold: None,
        bucket: |b| (b.swap_min, b.swap_max),
        current: |s| s.swap,
    },
    ChartSpec {
        title: "Disk",
        unit: Unit::Percent,
        threshold: None,
        bucket: |b| (b.disk_min, b.disk_max),
        current: |s| s.disk,
    },
    ChartSpec {
        title: "Load (1 min)",
        unit: Unit::Plain,
        threshold: None,
        bucket: |b| (b.load1_min, b.load1_max),
        current: |s| s.load1,
    },
    ChartSpec {
        title: "Network in",
        unit: Unit::BytesPerSec,
        threshold: None,
        bucket: |b| (b.net_rx_min, b.net_rx_max),
        current: |s| s.net_rx_bps,
    },
    ChartSpec {
        title: "Network out",
        unit: Unit::BytesPerSec,
        threshold: None,
        bucket: |b| (b.net_tx_min, b.net_tx_max),
        current: |s| s.net_tx_bps,
    },
];

/// Points per chart line: enough for a crisp 600 px wide chart.
const CHART_BUCKETS: i64 = 200;

#[derive(Deserialize)]
pub struct OverviewQuery {
    pub range: Option<String>,
    pub host: Option<i64>,
}

pub struct RangeChoice {
    pub key: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

pub struct HostCard {
    pub id: i64,
    pub name: String,
    pub status: &'static str,
    pub last_seen: String,
    pub stats: Vec<(&'static str, String)>,
    pub charts: Vec<ChartView>,
    pub range: &'static str,
    pub poll_secs: u32,
}

#[derive(Template)]
#[template(path = "pages/overview.html")]
pub struct OverviewPage {
    pub nav: Nav,
    pub ranges: Vec<RangeChoice>,
    pub range_label: &'static str,
    pub hosts: Vec<HostCard>,
}

#[derive(Template)]
#[template(path = "partials/host_card.html")]
pub struct HostCardFragment {
    pub host: HostCard,
}

fn pick_range(key: Option<&str>) -> (&'static str, &'static str, i64, u32) {
    RANGES
        .iter()
        .find(|r| Some(r.0) == key)
        .copied()
        .unwrap_or(RANGES[1])
}

/// Turns min/max buckets into a line that keeps spikes: one point when a bucket is flat,
/// its minimum and maximum otherwise.
fn envelope(
    buckets: &[ChartBucket],
    bucket_ms: i64,
    pick: impl Fn(&ChartBucket) -> (f64, f64),
) -> Vec<(i64, f64)> {
    let mut out = Vec::with_capacity(buckets.len() * 2);
    for b in buckets {
        let (lo, hi) = pick(b);
        if (hi - lo).abs() < f64::EPSILON {
            out.push((b.ts, lo));
        } else {
            out.push((b.ts, lo));
            out.push((b.ts + bucket_ms / 2, hi));
        }
    }
    out
}

pub async fn host_card(
    state: &AppState,
    host: &Host,
    thresholds: ThresholdPair,
    range: (&'static str, &'static str, i64, u32),
    now: i64,
) -> Result<HostCard, PageError> {
    let (key, _, span, poll) = range;
    let start = now - span;
    let bucket_ms = (span / CHART_BUCKETS).max(1000);
    // The tier that fits the bucket width, or a coarser one where retention has already
    // deleted the start of the range from it (the chart then shows fewer, wider points).
    let tier = covering_tier(
        state.store.as_ref(),
        host.id,
        Tier::fitting(bucket_ms),
        start,
    )
    .await?;
    let buckets = state
        .store
        .chart_buckets(host.id, tier, start, now, bucket_ms)
        .await?;
    let latest: Option<Sample> = state
        .store
        .recent_samples(host.id, 1)
        .await?
        .into_iter()
        .next();
    // Agents report their own period; hosts a server samples run at ours.
    let interval = host
        .interval_ms
        .unwrap_or_else(|| i64::try_from(state.settings.interval_ms).unwrap_or(1000));
    let status = crate::domain::HostStatus::of(
        host.last_seen_at,
        interval,
        now,
        state.settings.host_stale_intervals,
        state.settings.host_down_intervals,
    )
    .as_str();
    let stats = match &latest {
        Some(s) => vec![
            ("CPU", format!("{:.1} %", s.cpu)),
            (
                "Memory",
                format!("{:.1} % of {}", s.memory, fmt_bytes(s.memory_total as f64)),
            ),
            ("Swap", format!("{:.1} %", s.swap)),
            ("Disk", format!("{:.1} %", s.disk)),
            (
                "Network",
                format!("↓ {} ↑ {}", fmt_rate(s.net_rx_bps), fmt_rate(s.net_tx_bps)),
            ),
            (
                "Load",
                format!("{:.2} {:.2} {:.2}", s.load1, s.load5, s.load15),
            ),
            ("Uptime", fmt_uptime(s.uptime)),
        ],
        None => Vec::new(),
    };
    let charts = CHARTS
        .iter()
        .map(|spec| {
            let mut points = envelope(&buckets, bucket_ms, spec.bucket);
            // The line ends on the latest sample itself, so the value the chart calls
            // "last" is the current one and not the maximum of the last bucket.
            if let Some(s) = latest.as_ref().filter(|s| s.ts >= start) {
                points.retain(|p| p.0 < s.ts);
                points.push((s.ts, (spec.current)(s)));
            }
            build(&ChartInput {
                title: spec.title,
                unit: spec.unit,
                start_ms: start,
                end_ms: now,
                points: &points,
                threshold: spec.threshold.map(|t| t(&thresholds)),
                max_points: 300,
            })
        })
        .collect();
    Ok(HostCard {
        id: host.id,
        name: host.name.clone(),
        status,
        last_seen: host
            .last_seen_at
            .map(fmt_time)
            .unwrap_or_else(|| "never".into()),
        stats,
        charts,
        range: key,
        poll_secs: poll,
    })
}

pub async fn overview(
    State(state): State<AppState>,
    ctx: Ctx,
    PageQuery(q): PageQuery<OverviewQuery>,
) -> Result<Response, PageError> {
    let user = ctx.require_user()?;
    let range = pick_range(q.range.as_deref());
    // Drawn as lines on the CPU and memory charts.
    let (thresholds, _) = state.store.effective_thresholds(user.id).await?;
    let now = now_ms();
    let hosts = state.store.list_hosts().await?;
    if let (true, Some(id)) = (ctx.htmx, q.host) {
        let host = hosts
            .iter()
            .find(|h| h.id == id)
            .ok_or(PageError::NotFound)?;
        let card = host_card(&state, host, thresholds, range, now).await?;
        let mut resp = render(&HostCardFragment { host: card });
        resp.headers_mut().insert(
            super::COMPRESSIBLE,
            axum::http::HeaderValue::from_static("1"),
        );
        return Ok(resp);
    }
    let mut cards = Vec::with_capacity(hosts.len());
    for h in &hosts {
        cards.push(host_card(&state, h, thresholds, range, now).await?);
    }
    Ok(render(&OverviewPage {
        nav: Nav::new(&ctx, "overview"),
        ranges: RANGES
            .iter()
            .map(|r| RangeChoice {
                key: r.0,
                label: r.1,
                selected: r.0 == range.0,
            })
            .collect(),
        range_label: range.1,
        hosts: cards,
    }))
}
