//! `/rules`: alert rules. Users see and change their own; the admin (`x-admin-token`)
//! sees all and creates global ones.

use crate::alerts::input::{validate, RuleDraft};
use crate::domain::{format_rfc3339, now_ms};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Actor, ApiJson};
use crate::http::state::AppState;
use crate::store::Rule;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A duration: whole seconds, or a string such as `"90s"`, `"5m"`, `"4h"`, `"1d"`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum DurationIn {
    /// Whole seconds (`217` and `217.0` alike).
    #[schema(value_type = u32)]
    Seconds(f64),
    Text(String),
}

impl DurationIn {
    fn secs(&self, field: &str) -> Result<i64, ApiError> {
        match self {
            DurationIn::Seconds(n) => {
                if n.fract() != 0.0 || !(0.0..=f64::from(u32::MAX)).contains(n) {
                    return Err(ApiError::Validation(format!(
                        "{field} must be a whole number of seconds or a duration like 5m"
                    )));
                }
                // Checked above: integral and within u32.
                Ok(*n as i64)
            }
            DurationIn::Text(s) => crate::alerts::model::parse_duration_secs(s)
                .map_err(|e| ApiError::Validation(format!("{field}: {e}"))),
        }
    }
}

fn secs(v: &Option<DurationIn>, field: &str) -> Result<Option<i64>, ApiError> {
    v.as_ref().map(|d| d.secs(field)).transpose()
}

/// A rule to create, or to replace an existing one with (omitted fields take defaults).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    /// Defaults to e.g. `cpu > 90`.
    #[schema(max_length = 100)]
    pub name: Option<String>,
    /// `cpu`, `memory`, `swap`, `disk` (percent); `load1`, `load5`, `load15`;
    /// `disk_read_bps`, `disk_write_bps`, `net_rx_bps`, `net_tx_bps` (bytes/s);
    /// `processes`; `memory_used` (bytes).
    // Strings on the wire (so a wrong value gets our explanatory 422), enums in the schema.
    #[schema(value_type = crate::alerts::RuleMetric)]
    pub metric: String,
    /// `>` (default), `>=`, `<` or `<=`.
    #[schema(value_type = Option<crate::alerts::Comparison>)]
    pub comparison: Option<String>,
    /// 0–100 for percentages, otherwise ≥ 0.
    pub threshold: f64,
    /// How long the condition must hold before the alert fires (default 0: at once).
    #[serde(rename = "for")]
    #[schema(rename = "for")]
    pub for_: Option<DurationIn>,
    /// The value must cross back over `threshold ∓ hysteresis` to clear (default 0).
    #[schema(minimum = 0)]
    pub hysteresis: Option<f64>,
    /// How long the clear condition must hold before the alert resolves (default 0).
    pub keep_firing_for: Option<DurationIn>,
    /// `warning` (default) or `critical`.
    #[schema(value_type = Option<crate::alerts::Severity>)]
    pub severity: Option<String>,
    /// Notify again this often while firing (default 4h, 10s–30d).
    pub repeat_interval: Option<DurationIn>,
    /// Host names the rule applies to; omitted or empty: every host.
    pub hosts: Option<Vec<String>>,
    /// Default true.
    pub enabled: Option<bool>,
}

impl RuleBody {
    fn draft(&self) -> Result<RuleDraft, ApiError> {
        Ok(RuleDraft {
            name: self.name.clone(),
            metric: self.metric.clone(),
            comparison: self.comparison.clone(),
            threshold: self.threshold,
            for_secs: secs(&self.for_, "for")?,
            hysteresis: self.hysteresis,
            keep_firing_for_secs: secs(&self.keep_firing_for, "keep_firing_for")?,
            severity: self.severity.clone(),
            repeat_interval_secs: secs(&self.repeat_interval, "repeat_interval")?,
            hosts: self.hosts.clone().unwrap_or_default(),
            enabled: self.enabled,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleOut {
    pub id: i64,
    pub name: String,
    /// `global` (admin) or `user`.
    pub scope: &'static str,
    /// The owning user; null for global rules.
    pub owner_id: Option<i64>,
    pub metric: String,
    pub comparison: String,
    pub threshold: f64,
    /// Seconds.
    #[serde(rename = "for")]
    #[schema(rename = "for")]
    pub for_: i64,
    pub hysteresis: f64,
    /// Seconds.
    pub keep_firing_for: i64,
    pub severity: String,
    /// Seconds.
    pub repeat_interval: i64,
    /// Empty: every host.
    pub hosts: Vec<String>,
    pub enabled: bool,
    /// True for the rules that mirror `/thresholds` and `/admin/thresholds`: change
    /// them freely except metric and comparison; they cannot be deleted.
    pub managed: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Rule> for RuleOut {
    fn from(r: Rule) -> Self {
        Self {
            id: r.id,
            name: r.name,
            scope: if r.owner_id.is_some() {
                "user"
            } else {
                "global"
            },
            owner_id: r.owner_id,
            metric: r.metric,
            comparison: r.comparison,
            threshold: r.threshold,
            for_: r.for_secs,
            hysteresis: r.hysteresis,
            keep_firing_for: r.keep_firing_for_secs,
            severity: r.severity,
            repeat_interval: r.repeat_interval_secs,
            hosts: r.hosts,
            enabled: r.enabled,
            managed: r.managed.is_some(),
            created_at: format_rfc3339(r.created_at),
            updated_at: format_rfc3339(r.updated_at),
        }
    }
}

/// A rule the caller may touch, or 404 (other users' rules do not exist for them).
pub async fn owned_rule(state: &AppState, actor: &Actor, id: i64) -> Result<Rule, ApiError> {
    actor.owned(state.store.rule(id).await?, |r| r.owner_id, "rule")
}

/// Your rules (with `x-admin-token`: every rule).
#[utoipa::path(get, path = "/rules", tag = "rules",
    security(("token" = []), ("bearer" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Rules", body = Vec<RuleOut>),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<RuleOut>>, ApiError> {
    let rules = state.store.list_rules(actor.scope()).await?;
    Ok(Json(rules.into_iter().map(RuleOut::from).collect()))
}

/// Create a rule (yours; with `x-admin-token` a global one).
#[utoipa::path(post, path = "/rules", tag = "rules", request_body = RuleBody,
    security(("token" = []), ("bearer" = []), ("admin_token" = [])),
    responses(
        (status = 201, description = "Rule created", body = RuleOut),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid rule", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<RuleBody>,
) -> Result<(StatusCode, Json<RuleOut>), ApiError> {
    let input = validate(body.draft()?, None)?;
    let rule = state
        .store
        .create_rule(actor.owner(), &input, now_ms())
        .await?;
    tracing::info!(rule_id = rule.id, owner = ?rule.owner_id, metric = %rule.metric, "rule created");
    Ok((StatusCode::CREATED, Json(rule.into())))
}

/// One rule.
#[utoipa::path(get, path = "/rules/{id}", tag = "rules",
    params(("id" = i64, Path, description = "Rule id")),
    security(("token" = []), ("bearer" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The rule", body = RuleOut),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 404, description = "No such rule of yours", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> Result<Json<RuleOut>, ApiError> {
    Ok(Json(owned_rule(&state, &actor, id).await?.into()))
}

/// Replace a rule. A threshold rule keeps its metric and comparison, and its threshold
/// is written back to the thresholds it mirrors.
#[utoipa::path(put, path = "/rules/{id}", tag = "rules", request_body = RuleBody,
    params(("id" = i64, Path, description = "Rule id")),
    security(("token" = []), ("bearer" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Rule replaced", body = RuleOut),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 404, description = "No such rule of yours", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid rule", body = ErrorBody),
    ))]
pub async fn replace(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<RuleBody>,
) -> Result<Json<RuleOut>, ApiError> {
    let current = owned_rule(&state, &actor, id).await?;
    let input = validate(body.draft()?, current.managed.is_some().then_some(&current))?;
    let rule = state
        .store
        .update_rule(id, &input, now_ms())
        .await?
        .ok_or_else(|| ApiError::NotFound("rule not found".into()))?;
    tracing::info!(rule_id = id, "rule replaced");
    Ok(Json(rule.into()))
}

/// Delete a rule; its firing alerts resolve (and say so) on the next evaluation.
#[utoipa::path(delete, path = "/rules/{id}", tag = "rules",
    params(("id" = i64, Path, description = "Rule id")),
    security(("token" = []), ("bearer" = []), ("admin_token" = [])),
    responses(
        (status = 204, description = "Rule deleted"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 404, description = "No such rule of yours", body = ErrorBody),
        (status = 409, description = "A threshold rule: change the thresholds instead", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let rule = owned_rule(&state, &actor, id).await?;
    if rule.managed.is_some() {
        return Err(ApiError::Conflict(
            "this is a built-in rule and cannot be deleted; disable it or change its threshold",
        ));
    }
    state.store.delete_rule(id).await?;
    tracing::info!(rule_id = id, "rule deleted");
    Ok(StatusCode::NO_CONTENT)
}
