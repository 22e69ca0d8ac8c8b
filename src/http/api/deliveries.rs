//! `/deliveries`: the delivery log of the outbox, with every attempt, and "send again"
//! for dead letters.

use crate::domain::format_rfc3339;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Actor, ApiQuery};
use crate::http::state::AppState;
use crate::store::{Delivery, DeliveryAttempt, DeliveryFilter};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptOut {
    pub attempt: i64,
    pub started_at: String,
    pub duration_ms: i64,
    /// HTTP or SMTP status code, when there was an answer.
    pub status: Option<i64>,
    pub error: Option<String>,
    /// `delivered`, `retry`, `dead` or `gone`.
    pub outcome: String,
}

impl From<DeliveryAttempt> for AttemptOut {
    fn from(a: DeliveryAttempt) -> Self {
        Self {
            attempt: a.attempt,
            started_at: format_rfc3339(a.started_at),
            duration_ms: a.duration_ms,
            status: a.status,
            error: a.error,
            outcome: a.outcome,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    pub id: i64,
    /// The `webhook-id`, the same on every attempt.
    pub message_id: String,
    pub channel_id: i64,
    pub channel_name: String,
    pub channel_kind: String,
    pub alert_id: Option<i64>,
    /// `firing`, `repeat`, `resolved` or `test`.
    pub event: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    pub attempts: i64,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<String>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// The body as sent.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub attempt_log: Vec<AttemptOut>,
}

pub fn delivery_out(d: Delivery, attempts: Vec<DeliveryAttempt>) -> DeliveryOut {
    DeliveryOut {
        id: d.id,
        message_id: d.message_id,
        channel_id: d.channel_id,
        channel_name: d.channel_name,
        channel_kind: d.channel_kind,
        alert_id: d.alert_id,
        event: d.event,
        next_attempt_at: (d.state == "pending").then(|| format_rfc3339(d.next_attempt_at)),
        state: d.state,
        attempts: d.attempts,
        last_status: d.last_status,
        last_error: d.last_error,
        created_at: format_rfc3339(d.created_at),
        finished_at: d.finished_at.map(format_rfc3339),
        payload: serde_json::from_str(&d.payload).unwrap_or(serde_json::Value::Null),
        attempt_log: attempts.into_iter().map(AttemptOut::from).collect(),
    }
}

/// Where a delivery stands (the schema of the `state` filter).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Dead,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// `pending`, `delivered` or `dead`; empty or omitted: all.
    #[param(value_type = Option<DeliveryState>)]
    pub state: Option<String>,
    pub channel_id: Option<i64>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// Deliveries to your channels, newest first (with `x-admin-token`: all). The total
/// matching is in the `x-total-count` header.
#[utoipa::path(get, path = "/deliveries", tag = "notifications", params(DeliveryQuery),
    security(("token" = []), ("bearer" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Deliveries with their attempts", body = Vec<DeliveryOut>,
            headers(("x-total-count" = i64, description = "Deliveries matching the filter"))),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 422, description = "Invalid filter", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> Result<(HeaderMap, Json<Vec<DeliveryOut>>), ApiError> {
    // An empty filter (as a form submits it) means no filter.
    let state_filter = q.state.filter(|s| !s.is_empty());
    if let Some(s) = &state_filter {
        if !matches!(s.as_str(), "pending" | "delivered" | "dead") {
            return Err(ApiError::Validation(
                "state must be pending, delivered or dead".into(),
            ));
        }
    }
    let (limit, offset) = super::page_bounds(q.limit, q.offset)?;
    let filter = DeliveryFilter {
        state: state_filter,
        channel_id: q.channel_id,
    };
    let (rows, total) = state
        .store
        .list_deliveries(actor.scope(), &filter, limit, offset)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for d in rows {
        let attempts = state.store.delivery_attempts(d.id).await?;
        out.push(delivery_out(d, attempts));
    }
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(total));
    Ok((headers, Json(out)))
}

/// A delivery the caller may see, or 404.
pub async fn owned_delivery(
    state: &AppState,
    actor: &Actor,
    id: i64,
) -> Result<Delivery, ApiError> {
    actor.owned(state.store.delivery(id).await?, |d| d.owner_id, "delivery")
}

/// One delivery with its attempts.
#[utoipa::path(get, path = "/deliveries/{id}", tag = "notifications",
    params(("id" = i64, Path, description = "Delivery id")),
    security(("token" = []), ("bearer" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The delivery", body = DeliveryOut),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 404, description = "No such delivery of yours", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> Result<Json<DeliveryOut>, ApiError> {
    let d = owned_delivery(&state, &actor, id).await?;
    let attempts = state.store.delivery_attempts(id).await?;
    Ok(Json(delivery_out(d, attempts)))
}

/// Send a dead letter again: a fresh series of attempts under the same message id.
#[utoipa::path(post, path = "/deliveries/{id}/retry", tag = "notifications",
    params(("id" = i64, Path, description = "Delivery id")),
    security(("token" = []), ("bearer" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Queued again", body = DeliveryOut),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 404, description = "No such delivery of yours", body = ErrorBody),
        (status = 409, description = "Not a dead letter, or its channel is disabled", body = ErrorBody),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> Result<Json<DeliveryOut>, ApiError> {
    owned_delivery(&state, &actor, id).await?;
    if !state
        .store
        .retry_delivery(id, crate::domain::now_ms())
        .await?
    {
        return Err(ApiError::Conflict(
            "only dead deliveries to enabled channels can be sent again",
        ));
    }
    state.notify_wake.notify_one();
    let d = owned_delivery(&state, &actor, id).await?;
    let attempts = state.store.delivery_attempts(id).await?;
    Ok(Json(delivery_out(d, attempts)))
}
