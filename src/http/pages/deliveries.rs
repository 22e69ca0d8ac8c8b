//! The delivery log: every notification queued to a channel, newest first, with its
//! attempts, filtered by state and channel, paginated; "Send again" for dead letters.

use super::render::{
    error_page, fmt_time, not_found_page, redirect_with, render, take_flash, Flash, Nav, PageError,
    PageQuery, SelectOption,
};
use super::rules::{parse_id, require_viewer};
use super::session::{CsrfForm, Ctx};
use crate::http::api::deliveries::owned_delivery;
use crate::http::error::ApiError;
use crate::http::extract::Actor;
use crate::http::state::AppState;
use crate::store::{DeliveryFilter, Scope};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

pub const PAGE_SIZE: i64 = 50;
const STATES: [&str; 3] = ["pending", "delivered", "dead"];

#[derive(Deserialize, Default)]
pub struct DeliveriesQuery {
    pub state: Option<String>,
    pub channel: Option<String>,
    pub page: Option<i64>,
}

pub struct AttemptRow {
    pub attempt: i64,
    pub started: String,
    pub duration_ms: i64,
    pub status: String,
    pub error: String,
    pub outcome: String,
}

pub struct DeliveryRow {
    pub id: i64,
    pub created: String,
    pub channel: String,
    pub channel_kind: String,
    pub event: String,
    pub state: String,
    pub attempts: i64,
    pub last_status: String,
    pub last_error: String,
    /// When the next attempt is due (pending only).
    pub next: Option<String>,
    pub dead: bool,
    pub log: Vec<AttemptRow>,
}

pub struct DeliveriesData {
    pub rows: Vec<DeliveryRow>,
    pub state: String,
    pub channel: String,
    pub states: Vec<SelectOption>,
    pub channels: Vec<SelectOption>,
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    pub prev_query: Option<String>,
    pub next_query: Option<String>,
    pub self_query: String,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "pages/deliveries.html")]
pub struct DeliveriesPage {
    pub nav: Nav,
    pub flash: Option<Flash>,
    pub d: DeliveriesData,
}

#[derive(Template)]
#[template(path = "pages/deliveries.html", block = "table")]
pub struct DeliveriesTable {
    pub d: DeliveriesData,
}

fn query_string(state: &str, channel: &str, page: i64) -> String {
    serde_urlencoded::to_string([
        ("state", state),
        ("channel", channel),
        ("page", &page.to_string()),
    ])
    .unwrap_or_default()
}

/// What this session sees: everything in an admin session, else the user's own.
fn scope_of(ctx: &Ctx) -> Result<Scope, PageError> {
    require_viewer(ctx)?;
    Ok(match (&ctx.user, ctx.admin) {
        (_, true) => Scope::All,
        (Some(u), false) => Scope::Owner(u.id),
        (None, false) => return Err(PageError::LoginRequired { htmx: ctx.htmx }),
    })
}

/// The filters as links carry them; unknown values mean "all".
fn filters(state: Option<&str>, channel: Option<&str>) -> (Option<String>, Option<i64>) {
    (
        state.filter(|s| STATES.contains(s)).map(str::to_owned),
        channel.and_then(parse_id),
    )
}

pub async fn deliveries(
    State(state): State<AppState>,
    ctx: Ctx,
    PageQuery(q): PageQuery<DeliveriesQuery>,
) -> Result<Response, PageError> {
    let scope = scope_of(&ctx)?;
    let (state_f, channel_f) = filters(q.state.as_deref(), q.channel.as_deref());
    let filter = DeliveryFilter {
        state: state_f.clone(),
        channel_id: channel_f,
    };
    let page = q.page.unwrap_or(1).clamp(1, 1_000_000);
    let (mut rows, total) = state
        .store
        .list_deliveries(scope, &filter, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        .await?;
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    // A page past the end (an old link) shows the last page instead.
    let page = if page > pages {
        rows = state
            .store
            .list_deliveries(scope, &filter, PAGE_SIZE, (pages - 1) * PAGE_SIZE)
            .await?
            .0;
        pages
    } else {
        page
    };
    let mut out = Vec::with_capacity(rows.len());
    for d in rows {
        let log = state
            .store
            .delivery_attempts(d.id)
            .await?
            .into_iter()
            .map(|a| AttemptRow {
                attempt: a.attempt,
                started: fmt_time(a.started_at),
                duration_ms: a.duration_ms,
                status: a.status.map(|s| s.to_string()).unwrap_or_default(),
                error: a.error.unwrap_or_default(),
                outcome: a.outcome,
            })
            .collect();
        out.push(DeliveryRow {
            id: d.id,
            created: fmt_time(d.created_at),
            channel: d.channel_name,
            channel_kind: d.channel_kind,
            event: d.event,
            next: (d.state == "pending").then(|| fmt_time(d.next_attempt_at)),
            dead: d.state == "dead",
            state: d.state,
            attempts: d.attempts,
            last_status: d.last_status.map(|s| s.to_string()).unwrap_or_default(),
            last_error: d.last_error.unwrap_or_default(),
            log,
        });
    }
    let state_key = state_f.unwrap_or_else(|| "all".into());
    let channel_key = channel_f.map_or_else(|| "all".into(), |c| c.to_string());
    let mut channels = vec![SelectOption::new("all", "All", channel_f.is_none())];
    for c in state.store.list_channels(scope).await? {
        let label = if c.owner_id.is_none() {
            format!("{} (global)", c.name)
        } else {
            c.name
        };
        channels.push(SelectOption::new(
            c.id.to_string(),
            label,
            Some(c.id) == channel_f,
        ));
    }
    let mut states = vec![SelectOption::new("all", "All", state_key == "all")];
    states.extend(
        STATES
            .iter()
            .map(|s| SelectOption::new(*s, *s, state_key == *s)),
    );
    let d = DeliveriesData {
        rows: out,
        states,
        channels,
        page,
        pages,
        total,
        prev_query: (page > 1).then(|| query_string(&state_key, &channel_key, page - 1)),
        next_query: (page < pages).then(|| query_string(&state_key, &channel_key, page + 1)),
        self_query: query_string(&state_key, &channel_key, page),
        state: state_key,
        channel: channel_key,
        csrf: ctx.csrf.clone(),
    };
    if ctx.htmx {
        return Ok(render(&DeliveriesTable { d }));
    }
    Ok(render(&DeliveriesPage {
        nav: Nav::new(&ctx, "deliveries"),
        flash: take_flash(&ctx).await?,
        d,
    }))
}

/// "Send again" also carries the list's filters, to return to the same view.
#[derive(Deserialize)]
pub struct RetryForm {
    pub state: Option<String>,
    pub channel: Option<String>,
    pub page: Option<i64>,
}

pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<String>,
    f: CsrfForm<RetryForm>,
) -> Result<Response, PageError> {
    let CsrfForm { ctx, form } = f;
    scope_of(&ctx)?;
    let Some(id) = parse_id(&id) else {
        return Ok(not_found_page(&ctx));
    };
    // The admin session sees (and may resend) every delivery; a user only their own.
    let actor = match (&ctx.user, ctx.admin) {
        (_, true) => Actor::Admin,
        (Some(u), false) => Actor::User(u.clone()),
        (None, false) => return Err(PageError::LoginRequired { htmx: ctx.htmx }),
    };
    let delivery = match owned_delivery(&state, &actor, id).await {
        Ok(d) => d,
        Err(ApiError::NotFound(_)) => return Ok(not_found_page(&ctx)),
        Err(e) => return Err(e.into()),
    };
    if !state
        .store
        .retry_delivery(id, crate::domain::now_ms())
        .await?
    {
        return Ok(error_page(
            StatusCode::CONFLICT,
            "Only dead deliveries to enabled channels can be sent again: this one is pending or delivered, or its channel is disabled (enable it on the Channels page first).",
            &ctx,
        ));
    }
    state.notify_wake.notify_one();
    tracing::info!(
        delivery = id,
        "dead delivery queued again from the dashboard"
    );
    let (state_f, channel_f) = filters(form.state.as_deref(), form.channel.as_deref());
    let back = format!(
        "/dashboard/deliveries?{}",
        query_string(
            state_f.as_deref().unwrap_or("all"),
            &channel_f.map_or_else(|| "all".into(), |c| c.to_string()),
            form.page.unwrap_or(1).clamp(1, 1_000_000),
        )
    );
    redirect_with(
        &ctx,
        &back,
        Flash::new(format!(
            "Delivery {} to “{}” queued again (same message id).",
            delivery.id, delivery.channel_name
        )),
    )
    .await
}
