//! `POST /ingest`: agents push batches of samples with their host's agent token.

use crate::auth::tokens;
use crate::http::error::{error_response, ApiError, ErrorBody};
use crate::http::extract::{presented_token, ApiJson};
use crate::http::state::AppState;
use crate::ingest::wire::{BatchLimits, IngestBody, IngestResponse};
use crate::ingest::SubmitError;
use crate::store::{IngestBatch, IngestOutcome};
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The host whose agent token the request carries (`Authorization: Bearer`). User API
/// tokens are not agent tokens and get 401.
pub struct AgentHost {
    pub id: i64,
    pub name: String,
}

impl FromRequestParts<AppState> for AgentHost {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let refuse = |e: ApiError| {
            state.ingest_stats.count_rejected();
            e
        };
        let token = presented_token(parts).map_err(refuse)?;
        // Agent tokens are 64 hex characters; anything much longer cannot match.
        if token.len() > 256 {
            return Err(refuse(ApiError::Unauthorized("invalid agent token")));
        }
        // Looked up by digest: the comparison happens on hashes inside an index, so the
        // time taken says nothing about how much of a token was right.
        let hash = tokens::digest_hex(token);
        if let Some(host) = state.store.host_by_agent_token(&hash).await? {
            return Ok(AgentHost {
                id: host.id,
                name: host.name,
            });
        }
        if state.store.agent_token_retired(&hash).await? {
            return Err(refuse(ApiError::Forbidden("this host has been deleted")));
        }
        Err(refuse(ApiError::Unauthorized("invalid agent token")))
    }
}

/// Stores a batch of samples from a host's agent.
///
/// The whole batch is checked first: one bad sample (a time more than
/// `ingest_max_future_secs` ahead of the server's clock, a percentage outside 0–100, a
/// negative value) rejects all of it with 422 and nothing is stored. A batch is answered
/// only once it is durably committed. Sending a `batch_id` again (a retry after a lost
/// answer) stores nothing a second time and answers `duplicate: true`.
#[utoipa::path(post, path = "/ingest", tag = "ingest", request_body = IngestBody,
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "Stored (or already stored: `duplicate`)", body = IngestResponse),
        (status = 401, description = "Missing or invalid agent token", body = ErrorBody),
        (status = 403, description = "The host was deleted", body = ErrorBody),
        (status = 413, description = "Body larger than `ingest_max_body_bytes`", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid batch; nothing was stored", body = ErrorBody),
        (status = 503, description = "Queue full, commit failed or the server's disk is full; nothing was stored, retry after `Retry-After` seconds", body = ErrorBody,
            headers(("retry-after" = String, description = "Seconds to wait"))),
    ))]
pub async fn ingest(
    State(state): State<AppState>,
    host: AgentHost,
    body: Result<ApiJson<IngestBody>, ApiError>,
) -> Result<Json<IngestResponse>, Response> {
    let refuse = |e: ApiError| {
        state.ingest_stats.count_rejected();
        e.into_response()
    };
    let ApiJson(body) = body.map_err(refuse)?;
    let limits = BatchLimits {
        max_samples: state.settings.ingest_max_samples,
        max_future_ms: i64::try_from(state.settings.ingest_max_future_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX),
    };
    let batch = body
        .validate(host.id, crate::domain::now_ms(), limits)
        .map_err(|e| refuse(ApiError::Validation(e)))?;
    let batch_id = batch.batch_id.clone();
    let outcome = state
        .ingest
        .submit(IngestBatch {
            host_id: host.id,
            batch_id: batch.batch_id,
            agent_version: batch.agent_version,
            interval_ms: batch.interval_ms,
            samples: batch.samples,
        })
        .await;
    match outcome {
        Ok(IngestOutcome::Stored { accepted }) => Ok(Json(IngestResponse {
            accepted,
            duplicate: false,
            batch_id,
        })),
        Ok(IngestOutcome::Duplicate) => Ok(Json(IngestResponse {
            accepted: 0,
            duplicate: true,
            batch_id,
        })),
        Ok(IngestOutcome::HostGone) => {
            Err(ApiError::Forbidden("this host has been deleted").into_response())
        }
        Err(SubmitError::Busy) => {
            tracing::debug!(host = %host.name, "ingest queue full");
            let mut resp = error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "the ingest queue is full; retry shortly",
            );
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Err(resp)
        }
        Err(SubmitError::Failed) => Err(ApiError::Unavailable.into_response()),
        Err(SubmitError::DiskFull) => Err(ApiError::StorageFull.into_response()),
    }
}
