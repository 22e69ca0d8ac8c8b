//! `/healthz` (process up) and `/readyz` (database reachable and writable), both
//! unauthenticated.

use crate::http::error::{error_response, ApiError, ErrorBody};
use crate::http::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Below this much free space on the SQLite database's filesystem the replica reports
/// itself degraded: the next WAL growth or checkpoint may fail, and writes with it.
pub const MIN_FREE_DISK_BYTES: u64 = 1 << 20;

/// Where the disk cannot be measured (PostgreSQL's is on its server), the replica stays
/// degraded for this long after a write failed for a full disk (SQLSTATE 53100).
pub const DISK_FULL_MEMORY_MS: i64 = 10_000;

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Why writes would fail now for lack of disk space, if they would. SQLite: the free
/// space of the database's filesystem, measured now, so readiness comes back the moment
/// space is freed (a commit that failed for want of space has taken what was left for its
/// WAL frames, so it shows here too). PostgreSQL: a recent disk-full error.
fn disk_problem(state: &AppState) -> Option<String> {
    if let Some(free) = state.store.free_disk_bytes() {
        return (free < MIN_FREE_DISK_BYTES).then(|| {
            format!(
                "database writes are failing: disk full ({free} bytes free on the database's filesystem)"
            )
        });
    }
    let recent = crate::store::last_disk_full_ms()
        .is_some_and(|at| crate::domain::now_ms().saturating_sub(at) < DISK_FULL_MEMORY_MS);
    recent.then(|| "database writes are failing: disk full".to_owned())
}

/// Readiness: the database answers, and its disk is not full. While the disk is full,
/// reads still work but writes get 503, so the replica reports itself degraded (503 with
/// the reason in `detail`) and recovers by itself once space is freed.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Database unreachable, or its disk is full (writes failing)", body = ErrorBody),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, Response> {
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "readiness check failed");
        return Err(ApiError::Unavailable.into_response());
    }
    if let Some(detail) = disk_problem(&state) {
        tracing::warn!(reason = %detail, "readiness: degraded");
        return Err(error_response(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            detail,
        ));
    }
    Ok(Json(Health { status: "ready" }))
}
