//! The alerts table: filter by metric and state, paginated, refreshed by htmx. One handler
//! answers the full page or, for htmx, the table alone.

use super::render::{fmt_time, render, Nav, PageError, PageQuery};
use super::session::Ctx;
use crate::domain::MetricKind;
use crate::http::state::AppState;
use crate::store::AlertFilter;
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;

pub const PAGE_SIZE: i64 = 25;

#[derive(Deserialize, Default)]
pub struct AlertsQuery {
    pub metric: Option<String>,
    pub state: Option<String>,
    pub page: Option<i64>,
}

pub struct AlertRow {
    pub metric: String,
    pub host: String,
    pub value: String,
    pub threshold: String,
    pub peak: String,
    pub started: String,
    pub resolved: String,
    pub firing: bool,
    pub scope: &'static str,
}

pub struct AlertsData {
    pub rows: Vec<AlertRow>,
    pub metric: String,
    pub state: String,
    pub metrics: Vec<&'static str>,
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    pub prev_query: Option<String>,
    pub next_query: Option<String>,
    pub self_query: String,
}

#[derive(Template)]
#[template(path = "pages/alerts.html")]
pub struct AlertsPage {
    pub nav: Nav,
    pub d: AlertsData,
}

#[derive(Template)]
#[template(path = "pages/alerts.html", block = "table")]
pub struct AlertsTable {
    pub d: AlertsData,
}

fn query_string(metric: &str, state: &str, page: i64) -> String {
    serde_urlencoded::to_string([
        ("metric", metric),
        ("state", state),
        ("page", &page.to_string()),
    ])
    .unwrap_or_default()
}

pub async fn alerts(
    State(state): State<AppState>,
    ctx: Ctx,
    PageQuery(q): PageQuery<AlertsQuery>,
) -> Result<Response, PageError> {
    let user = ctx.require_user()?;
    // Unknown filter values fall back to "all" rather than erroring: they come from links.
    let metric = q
        .metric
        .as_deref()
        .and_then(MetricKind::parse)
        .map(|m| m.as_str().to_owned());
    let (firing, state_key) = match q.state.as_deref() {
        Some("firing") => (Some(true), "firing"),
        Some("resolved") => (Some(false), "resolved"),
        _ => (None, "all"),
    };
    let page = q.page.unwrap_or(1).clamp(1, 1_000_000);
    let filter = AlertFilter {
        metric: metric.clone(),
        firing,
    };
    let (mut alerts, total) = state
        .store
        .list_alerts_filtered(user.id, &filter, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        .await?;
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    // A page past the end (an old link, alerts gone) shows the last page instead.
    let page = if page > pages {
        alerts = state
            .store
            .list_alerts_filtered(user.id, &filter, PAGE_SIZE, (pages - 1) * PAGE_SIZE)
            .await?
            .0;
        pages
    } else {
        page
    };
    let metric_key = metric.unwrap_or_else(|| "all".into());
    let d = AlertsData {
        rows: alerts
            .iter()
            .map(|a| AlertRow {
                metric: a.metric.clone(),
                host: a.host.clone(),
                value: format!("{:.1}", a.value),
                threshold: format!("{:.1}", a.threshold),
                peak: format!("{:.1}", a.peak),
                started: fmt_time(a.ts),
                resolved: a.resolved_at.map(fmt_time).unwrap_or_default(),
                firing: a.resolved_at.is_none(),
                scope: if a.owner_id.is_some() {
                    "mine"
                } else {
                    "global"
                },
            })
            .collect(),
        metric: metric_key.clone(),
        state: state_key.to_owned(),
        metrics: MetricKind::ALL.iter().map(|m| m.as_str()).collect(),
        page,
        pages,
        total,
        prev_query: (page > 1).then(|| query_string(&metric_key, state_key, page - 1)),
        next_query: (page < pages).then(|| query_string(&metric_key, state_key, page + 1)),
        self_query: query_string(&metric_key, state_key, page),
    };
    if ctx.htmx {
        return Ok(render(&AlertsTable { d }));
    }
    Ok(render(&AlertsPage {
        nav: Nav::new(&ctx, "alerts"),
        d,
    }))
}
