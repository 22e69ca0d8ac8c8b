//! Alert rules: the user's rules (and, in an admin session, the global ones), a form to
//! create one, and an edit page per rule. Validation is the API's (`alerts::input`).

use super::render::{
    error_page, not_found_page, redirect_with, render, render_status, take_flash, Flash, Nav,
    PageError, SelectOption,
};
use super::session::{CsrfForm, Ctx};
use crate::alerts::input::{validate, RuleDraft};
use crate::alerts::model::{
    format_duration_secs, parse_duration_secs, Comparison, RuleMetric, Severity,
};
use crate::domain::now_ms;
use crate::http::api::rules::owned_rule;
use crate::http::extract::Actor;
use crate::http::state::AppState;
use crate::store::{Rule, Scope};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use std::collections::HashMap;

/// Pages that need a user or an admin session: the login page otherwise.
pub(super) fn require_viewer(ctx: &Ctx) -> Result<(), PageError> {
    if ctx.user.is_none() && !ctx.admin {
        return Err(PageError::LoginRequired { htmx: ctx.htmx });
    }
    Ok(())
}

/// Who acts on an item owned by `owner`: the admin for global items in an admin session,
/// else the logged-in user (whom the API's ownership checks then apply to).
pub(super) fn actor_for(ctx: &Ctx, owner: Option<i64>) -> Option<Actor> {
    if owner.is_none() && ctx.admin {
        return Some(Actor::Admin);
    }
    ctx.user.clone().map(Actor::User)
}

/// A dashboard path id: anything but a number is simply not there.
pub(super) fn parse_id(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

fn fmt_number(v: f64) -> String {
    format!("{v}")
}

pub struct RuleRow {
    pub id: i64,
    pub name: String,
    pub metric: String,
    pub condition: String,
    pub for_: String,
    pub severity: String,
    pub hosts: String,
    pub enabled: bool,
    pub managed: bool,
    /// Badge for a managed rule: `thresholds` or `built-in`.
    pub badge: &'static str,
    pub pending: usize,
    pub firing: usize,
}

pub struct RuleSection {
    pub id: &'static str,
    pub heading: &'static str,
    pub empty: &'static str,
    pub rows: Vec<RuleRow>,
}

#[derive(Template)]
#[template(path = "pages/rules.html")]
pub struct RulesPage {
    pub nav: Nav,
    pub flash: Option<Flash>,
    pub sections: Vec<RuleSection>,
}

fn rule_row(r: Rule, states: &HashMap<i64, (usize, usize)>) -> RuleRow {
    let (pending, firing) = states.get(&r.id).copied().unwrap_or((0, 0));
    RuleRow {
        id: r.id,
        condition: format!("{} {} {}", r.metric, r.comparison, fmt_number(r.threshold)),
        metric: RuleMetric::parse(&r.metric)
            .map(|m| m.label().to_owned())
            .unwrap_or_else(|| r.metric.clone()),
        name: r.name,
        for_: format_duration_secs(r.for_secs),
        severity: r.severity,
        hosts: if r.hosts.is_empty() {
            "all hosts".into()
        } else {
            r.hosts.join(", ")
        },
        enabled: r.enabled,
        managed: r.managed.is_some(),
        badge: if r.managed.as_deref() == Some("threshold") {
            "thresholds"
        } else {
            "built-in"
        },
        pending,
        firing,
    }
}

pub async fn rules(State(state): State<AppState>, ctx: Ctx) -> Result<Response, PageError> {
    require_viewer(&ctx)?;
    // (pending, firing) hosts per rule.
    let mut states: HashMap<i64, (usize, usize)> = HashMap::new();
    for s in state.store.rule_states().await? {
        let e = states.entry(s.rule_id).or_default();
        match s.state.as_str() {
            "pending" => e.0 += 1,
            "firing" => e.1 += 1,
            _ => {}
        }
    }
    let mut sections = Vec::new();
    if let Some(user) = &ctx.user {
        let rows = state.store.list_rules(Scope::Owner(user.id)).await?;
        sections.push(RuleSection {
            id: "my-rules",
            heading: "My rules",
            empty: "You have no rules yet. Saving your thresholds also creates two.",
            rows: rows.into_iter().map(|r| rule_row(r, &states)).collect(),
        });
    }
    if ctx.admin {
        let rows = state.store.list_rules(Scope::Global).await?;
        sections.push(RuleSection {
            id: "global-rules",
            heading: "Global rules",
            empty: "No global rules.",
            rows: rows.into_iter().map(|r| rule_row(r, &states)).collect(),
        });
    }
    Ok(render(&RulesPage {
        nav: Nav::new(&ctx, "rules"),
        flash: take_flash(&ctx).await?,
        sections,
    }))
}

/// The rule form as submitted (every field a string, so bad input can be shown back).
#[derive(Deserialize, Default)]
pub struct RuleForm {
    #[serde(default)]
    pub name: String,
    /// Absent for a managed rule (its select is disabled).
    pub metric: Option<String>,
    pub comparison: Option<String>,
    #[serde(default)]
    pub threshold: String,
    #[serde(default, rename = "for")]
    pub for_: String,
    #[serde(default)]
    pub hysteresis: String,
    #[serde(default)]
    pub keep_firing_for: String,
    #[serde(default)]
    pub repeat_interval: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub hosts: String,
    pub enabled: Option<String>,
    pub global: Option<String>,
}

pub struct RuleFormView {
    pub action: String,
    pub heading: String,
    /// Set on the edit page (for the delete form).
    pub id: Option<i64>,
    pub name: String,
    pub metrics: Vec<SelectOption>,
    pub comparisons: Vec<SelectOption>,
    pub severities: Vec<SelectOption>,
    pub threshold: String,
    pub for_: String,
    pub hysteresis: String,
    pub keep_firing_for: String,
    pub repeat_interval: String,
    pub hosts: String,
    pub enabled: bool,
    pub managed: bool,
    /// A built-in rule that is not a threshold mirror (the "host down" rule).
    pub builtin: bool,
    /// Offer the "global" checkbox (admin session, new rule).
    pub can_global: bool,
    pub global: bool,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "pages/rule_form.html")]
pub struct RuleFormPage {
    pub nav: Nav,
    pub form: RuleFormView,
}

struct Values<'a> {
    name: &'a str,
    metric: &'a str,
    comparison: &'a str,
    threshold: String,
    for_: String,
    hysteresis: String,
    keep_firing_for: String,
    repeat_interval: String,
    severity: &'a str,
    hosts: String,
    enabled: bool,
    global: bool,
}

fn form_view(
    v: Values<'_>,
    rule: Option<&Rule>,
    can_global: bool,
    error: Option<String>,
) -> RuleFormView {
    let (action, heading, id) = match rule {
        Some(r) => (
            format!("/dashboard/rules/{}", r.id),
            format!("Edit rule: {}", r.name),
            Some(r.id),
        ),
        None => ("/dashboard/rules/new".into(), "New rule".into(), None),
    };
    RuleFormView {
        action,
        heading,
        id,
        name: v.name.to_owned(),
        metrics: RuleMetric::ALL
            .iter()
            .map(|m| SelectOption::new(m.as_str(), m.label(), m.as_str() == v.metric))
            .collect(),
        comparisons: Comparison::ALL
            .iter()
            .map(|c| SelectOption::new(c.as_str(), c.as_str(), c.as_str() == v.comparison))
            .collect(),
        severities: [Severity::Warning, Severity::Critical]
            .iter()
            .map(|s| SelectOption::new(s.as_str(), s.as_str(), s.as_str() == v.severity))
            .collect(),
        threshold: v.threshold,
        for_: v.for_,
        hysteresis: v.hysteresis,
        keep_firing_for: v.keep_firing_for,
        repeat_interval: v.repeat_interval,
        hosts: v.hosts,
        enabled: v.enabled,
        managed: rule.is_some_and(|r| r.managed.is_some()),
        builtin: rule.is_some_and(|r| r.managed.as_deref().is_some_and(|m| m != "threshold")),
        can_global,
        global: v.global,
        error,
    }
}

/// The form filled from a stored rule.
fn view_of_rule(r: &Rule) -> RuleFormView {
    form_view(
        Values {
            name: &r.name,
            metric: &r.metric,
            comparison: &r.comparison,
            threshold: fmt_number(r.threshold),
            for_: format_duration_secs(r.for_secs),
            hysteresis: fmt_number(r.hysteresis),
            keep_firing_for: format_duration_secs(r.keep_firing_for_secs),
            repeat_interval: format_duration_secs(r.repeat_interval_secs),
            severity: &r.severity,
            hosts: r.hosts.join(", "),
            enabled: r.enabled,
            global: r.owner_id.is_none(),
        },
        Some(r),
        false,
        None,
    )
}

/// The form filled with what was submitted, and why it was refused.
fn view_of_input(
    f: &RuleForm,
    rule: Option<&Rule>,
    can_global: bool,
    error: String,
) -> RuleFormView {
    let metric = f
        .metric
        .as_deref()
        .or(rule.map(|r| r.metric.as_str()))
        .unwrap_or("");
    let comparison = f
        .comparison
        .as_deref()
        .or(rule.map(|r| r.comparison.as_str()))
        .unwrap_or("");
    form_view(
        Values {
            name: &f.name,
            metric,
            comparison,
            threshold: f.threshold.clone(),
            for_: f.for_.clone(),
            hysteresis: f.hysteresis.clone(),
            keep_firing_for: f.keep_firing_for.clone(),
            repeat_interval: f.repeat_interval.clone(),
            severity: &f.severity,
            hosts: f.hosts.clone(),
            enabled: f.enabled.is_some(),
            global: f.global.is_some(),
        },
        rule,
        can_global,
        Some(error),
    )
}

fn blank_view(can_global: bool) -> RuleFormView {
    form_view(
        Values {
            name: "",
            metric: "cpu",
            comparison: ">",
            threshold: String::new(),
            for_: "0s".into(),
            hysteresis: "0".into(),
            keep_firing_for: "0s".into(),
            repeat_interval: format_duration_secs(crate::alerts::input::DEFAULT_REPEAT_SECS),
            severity: "warning",
            hosts: String::new(),
            enabled: true,
            global: false,
        },
        None,
        can_global,
        None,
    )
}

fn duration_field(raw: &str, field: &str) -> Result<Option<i64>, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    parse_duration_secs(t)
        .map(Some)
        .map_err(|e| format!("{field}: {}", e.0))
}

/// Turns the form into a rule, with the API's validation. A managed rule's metric and
/// comparison come from the rule when the (disabled) selects sent nothing.
fn rule_input(f: &RuleForm, managed: Option<&Rule>) -> Result<crate::store::RuleInput, String> {
    let threshold = f
        .threshold
        .trim()
        .parse::<f64>()
        .map_err(|_| "threshold must be a number".to_owned())?;
    let hysteresis = match f.hysteresis.trim() {
        "" => None,
        h => Some(
            h.parse::<f64>()
                .map_err(|_| "hysteresis must be a number".to_owned())?,
        ),
    };
    let draft = RuleDraft {
        name: Some(f.name.clone()),
        metric: f
            .metric
            .clone()
            .or_else(|| managed.map(|r| r.metric.clone()))
            .unwrap_or_default(),
        comparison: f
            .comparison
            .clone()
            .or_else(|| managed.map(|r| r.comparison.clone())),
        threshold,
        for_secs: duration_field(&f.for_, "for")?,
        hysteresis,
        keep_firing_for_secs: duration_field(&f.keep_firing_for, "keep_firing_for")?,
        severity: Some(f.severity.clone()),
        repeat_interval_secs: duration_field(&f.repeat_interval, "repeat_interval")?,
        hosts: f
            .hosts
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect(),
        enabled: Some(f.enabled.is_some()),
    };
    validate(draft, managed).map_err(|e| e.0)
}

pub async fn new_rule(ctx: Ctx) -> Result<Response, PageError> {
    require_viewer(&ctx)?;
    let mut form = blank_view(ctx.admin);
    // An admin session without a user account can only create global rules.
    form.global = ctx.user.is_none();
    Ok(render(&RuleFormPage {
        nav: Nav::new(&ctx, "rules"),
        form,
    }))
}

pub async fn create_rule(
    State(state): State<AppState>,
    f: CsrfForm<RuleForm>,
) -> Result<Response, PageError> {
    let CsrfForm { ctx, form } = f;
    require_viewer(&ctx)?;
    let owner = if form.global.is_some() {
        if !ctx.admin {
            return Ok(error_page(
                StatusCode::FORBIDDEN,
                "Global rules need an admin session.",
                &ctx,
            ));
        }
        None
    } else {
        Some(ctx.require_user()?.id)
    };
    match rule_input(&form, None) {
        Ok(input) => {
            let rule = state.store.create_rule(owner, &input, now_ms()).await?;
            tracing::info!(rule_id = rule.id, owner = ?rule.owner_id, metric = %rule.metric, "rule created from the dashboard");
            redirect_with(
                &ctx,
                "/dashboard/rules",
                Flash::new(format!("Rule “{}” created.", rule.name)),
            )
            .await
        }
        Err(msg) => Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &RuleFormPage {
                nav: Nav::new(&ctx, "rules"),
                form: view_of_input(&form, None, ctx.admin, msg),
            },
        )),
    }
}

/// The rule at `id` if this session may change it; `None` shows the not-found page.
async fn page_rule(state: &AppState, ctx: &Ctx, id: &str) -> Result<Option<Rule>, PageError> {
    require_viewer(ctx)?;
    let Some(id) = parse_id(id) else {
        return Ok(None);
    };
    let Some(rule) = state.store.rule(id).await? else {
        return Ok(None);
    };
    let Some(actor) = actor_for(ctx, rule.owner_id) else {
        return Ok(None);
    };
    match owned_rule(state, &actor, id).await {
        Ok(r) => Ok(Some(r)),
        Err(crate::http::error::ApiError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub async fn edit_rule(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let Some(rule) = page_rule(&state, &ctx, &id).await? else {
        return Ok(not_found_page(&ctx));
    };
    Ok(render(&RuleFormPage {
        nav: Nav::new(&ctx, "rules"),
        form: view_of_rule(&rule),
    }))
}

pub async fn update_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    f: CsrfForm<RuleForm>,
) -> Result<Response, PageError> {
    let CsrfForm { ctx, form } = f;
    let Some(rule) = page_rule(&state, &ctx, &id).await? else {
        return Ok(not_found_page(&ctx));
    };
    let managed = rule.managed.is_some().then_some(&rule);
    match rule_input(&form, managed) {
        Ok(input) => {
            let Some(saved) = state.store.update_rule(rule.id, &input, now_ms()).await? else {
                return Ok(not_found_page(&ctx));
            };
            tracing::info!(rule_id = saved.id, "rule changed from the dashboard");
            redirect_with(
                &ctx,
                "/dashboard/rules",
                Flash::new(format!("Rule “{}” saved.", saved.name)),
            )
            .await
        }
        Err(msg) => Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &RuleFormPage {
                nav: Nav::new(&ctx, "rules"),
                form: view_of_input(&form, Some(&rule), false, msg),
            },
        )),
    }
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn delete_rule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    f: CsrfForm<Empty>,
) -> Result<Response, PageError> {
    let ctx = f.ctx;
    let Some(rule) = page_rule(&state, &ctx, &id).await? else {
        return Ok(not_found_page(&ctx));
    };
    if rule.managed.is_some() {
        return Ok(error_page(
            StatusCode::CONFLICT,
            "This is a built-in rule and cannot be deleted; disable it or change its threshold.",
            &ctx,
        ));
    }
    state.store.delete_rule(rule.id).await?;
    tracing::info!(rule_id = rule.id, "rule deleted from the dashboard");
    redirect_with(
        &ctx,
        "/dashboard/rules",
        Flash::new(format!("Rule “{}” deleted.", rule.name)),
    )
    .await
}
