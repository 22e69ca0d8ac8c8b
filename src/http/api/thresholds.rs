//! `/thresholds` (the caller's own) and `/admin/thresholds` (global).

use crate::domain::{now_ms, Threshold};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{AdminGuard, ApiJson, ApiUser};
use crate::http::state::AppState;
use crate::store::ThresholdPair;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Thresholds {
    /// CPU percent above which an alert fires.
    pub cpu_threshold: f64,
    /// Memory percent above which an alert fires.
    pub memory_threshold: f64,
}

impl From<ThresholdPair> for Thresholds {
    fn from(t: ThresholdPair) -> Self {
        Self {
            cpu_threshold: t.cpu,
            memory_threshold: t.memory,
        }
    }
}

/// New thresholds; an omitted field keeps its current value (so `{}` changes nothing).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdsUpdate {
    #[serde(default, deserialize_with = "number")]
    #[schema(minimum = 0, maximum = 100, nullable = false)]
    pub cpu_threshold: Option<f64>,
    #[serde(default, deserialize_with = "number")]
    #[schema(minimum = 0, maximum = 100, nullable = false)]
    pub memory_threshold: Option<f64>,
}

/// A present field must be a number: `null` is refused rather than read as "omitted".
fn number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    f64::deserialize(d).map(Some)
}

impl ThresholdsUpdate {
    fn apply(&self, current: ThresholdPair) -> Result<ThresholdPair, ApiError> {
        let pick = |v: Option<f64>, cur: f64, name: &str| -> Result<f64, ApiError> {
            match v {
                None => Ok(cur),
                Some(v) => Threshold::parse(v).map(Threshold::get).map_err(|_| {
                    ApiError::Validation(format!("{name} must be a number between 0 and 100"))
                }),
            }
        };
        Ok(ThresholdPair {
            cpu: pick(self.cpu_threshold, current.cpu, "cpu_threshold")?,
            memory: pick(self.memory_threshold, current.memory, "memory_threshold")?,
        })
    }
}

async fn effective(state: &AppState, user_id: i64) -> Result<ThresholdPair, ApiError> {
    Ok(state.store.effective_thresholds(user_id).await?.0)
}

/// Your thresholds (the global ones until you set your own).
#[utoipa::path(get, path = "/thresholds", tag = "thresholds",
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Effective thresholds", body = Thresholds),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
    ))]
pub async fn get_own(
    State(state): State<AppState>,
    user: ApiUser,
) -> Result<Json<Thresholds>, ApiError> {
    Ok(Json(effective(&state, user.user.id).await?.into()))
}

/// Set your own thresholds; alerts for them are raised for you alone.
#[utoipa::path(post, path = "/thresholds", tag = "thresholds", request_body = ThresholdsUpdate,
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Thresholds saved", body = Thresholds),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Values outside 0–100 or not numbers", body = ErrorBody),
    ))]
pub async fn set_own(
    State(state): State<AppState>,
    user: ApiUser,
    ApiJson(body): ApiJson<ThresholdsUpdate>,
) -> Result<Json<Thresholds>, ApiError> {
    let current = effective(&state, user.user.id).await?;
    let next = body.apply(current)?;
    state
        .store
        .set_user_thresholds(user.user.id, next, now_ms())
        .await?;
    tracing::info!(
        user_id = user.user.id,
        cpu = next.cpu,
        memory = next.memory,
        "user thresholds set"
    );
    Ok(Json(next.into()))
}

/// Global thresholds (admin).
#[utoipa::path(get, path = "/admin/thresholds", tag = "admin",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Global thresholds", body = Thresholds),
        (status = 403, description = "Admin disabled or wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody),
    ))]
pub async fn get_global(
    State(state): State<AppState>,
    _admin: AdminGuard,
) -> Result<Json<Thresholds>, ApiError> {
    Ok(Json(state.store.global_thresholds().await?.into()))
}

/// Set the global thresholds (admin).
#[utoipa::path(post, path = "/admin/thresholds", tag = "admin", request_body = ThresholdsUpdate,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Global thresholds saved", body = Thresholds),
        (status = 403, description = "Admin disabled or wrong admin token", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Values outside 0–100 or not numbers", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody),
    ))]
pub async fn set_global(
    State(state): State<AppState>,
    _admin: AdminGuard,
    ApiJson(body): ApiJson<ThresholdsUpdate>,
) -> Result<Json<Thresholds>, ApiError> {
    let current = state.store.global_thresholds().await?;
    let next = body.apply(current)?;
    state.store.set_global_thresholds(next, now_ms()).await?;
    tracing::info!(
        cpu = next.cpu,
        memory = next.memory,
        "global thresholds set"
    );
    Ok(Json(next.into()))
}
