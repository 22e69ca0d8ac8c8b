//! Hosts: everyone signed in can list them with their status; the admin (`x-admin-token`)
//! creates agent hosts, rotates their tokens and deletes them.

use crate::auth::tokens;
use crate::domain::{format_rfc3339, now_ms, HostName, HostStatus};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{AdminGuard, ApiJson, ApiUser};
use crate::http::state::AppState;
use crate::store::{Host, StoreError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A host as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostOut {
    pub id: i64,
    pub name: String,
    /// `agent`: fed by `watchpost agent` through `POST /ingest`; `server`: sampled by a
    /// watchpost server itself.
    #[schema(example = "agent")]
    pub kind: String,
    /// The host this server runs on.
    pub local: bool,
    /// `up`; `stale` after `host_stale_intervals` missed intervals; `down` after
    /// `host_down_intervals`, or if it never reported.
    #[schema(example = "up")]
    pub status: String,
    /// Last time the host reported (an agent's last request; a server's last sample),
    /// RFC 3339 UTC; null if never.
    pub last_seen: Option<String>,
    /// As the agent last reported it.
    pub agent_version: Option<String>,
    /// The host's collection period in ms (the agent's report, else this server's).
    pub interval_ms: i64,
    pub created_at: String,
    /// `admin-api` or `admin-dashboard` for agent hosts.
    pub created_by: Option<String>,
}

/// How the API and the pages describe a host, status included.
pub(crate) fn host_out(state: &AppState, h: &Host, now: i64) -> HostOut {
    let interval_ms = h
        .interval_ms
        .unwrap_or_else(|| i64::try_from(state.settings.interval_ms).unwrap_or(1000));
    let status = HostStatus::of(
        h.last_seen_at,
        interval_ms,
        now,
        state.settings.host_stale_intervals,
        state.settings.host_down_intervals,
    );
    HostOut {
        id: h.id,
        name: h.name.clone(),
        kind: if h.has_agent_token { "agent" } else { "server" }.into(),
        local: h.id == state.local_host_id,
        status: status.as_str().into(),
        last_seen: h.last_seen_at.map(format_rfc3339),
        agent_version: h.agent_version.clone(),
        interval_ms,
        created_at: format_rfc3339(h.created_at),
        created_by: h.created_by.clone(),
    }
}

async fn all_hosts(state: &AppState) -> Result<Vec<HostOut>, ApiError> {
    let now = now_ms();
    Ok(state
        .store
        .list_hosts()
        .await?
        .iter()
        .map(|h| host_out(state, h, now))
        .collect())
}

/// Every host with its status, by name.
#[utoipa::path(get, path = "/hosts", tag = "hosts",
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Hosts by name", body = [HostOut]),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    _user: ApiUser,
) -> Result<Json<Vec<HostOut>>, ApiError> {
    Ok(Json(all_hosts(&state).await?))
}

/// Every host with its status, by name (the admin's view; the same list).
#[utoipa::path(get, path = "/admin/hosts", tag = "hosts",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Hosts by name", body = [HostOut]),
        (status = 403, description = "Missing or wrong admin token, or admin disabled", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody),
    ))]
pub async fn admin_list(
    State(state): State<AppState>,
    _admin: AdminGuard,
) -> Result<Json<Vec<HostOut>>, ApiError> {
    Ok(Json(all_hosts(&state).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHost {
    /// 1–64 characters of letters, digits, `.`, `_` and `-`, starting with a letter or
    /// digit; unique.
    #[schema(
        example = "web-1",
        max_length = 64,
        pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
    )]
    pub name: String,
}

/// A host with its agent token. The token is shown only here: the server keeps its
/// SHA-256 digest.
#[derive(Debug, Serialize, ToSchema)]
pub struct HostWithToken {
    #[serde(flatten)]
    pub host: HostOut,
    /// Give it to the agent (`WATCHPOST_AGENT_TOKEN`); it cannot be shown again.
    pub token: String,
}

/// Creates an agent host and its token; `created_by` records where.
pub(crate) async fn create_host(
    state: &AppState,
    raw_name: &str,
    created_by: &str,
) -> Result<(Host, String), ApiError> {
    let name = HostName::parse(raw_name)?;
    let (token, token_hash) = tokens::generate();
    let host = match state
        .store
        .create_agent_host(name.as_str(), &token_hash, created_by, now_ms())
        .await
    {
        Ok(h) => h,
        Err(StoreError::Conflict) => {
            return Err(ApiError::Conflict("a host with this name already exists"))
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(host = %host.name, host_id = host.id, created_by, "agent host created");
    Ok((host, token))
}

/// Gives a host a new agent token; the old one stops working at once.
pub(crate) async fn rotate_host_token(
    state: &AppState,
    id: i64,
) -> Result<(Host, String), ApiError> {
    if id == state.local_host_id {
        return Err(ApiError::Conflict(
            "this server samples its own host; it takes no agent token",
        ));
    }
    let (token, token_hash) = tokens::generate();
    if !state.store.set_agent_token(id, &token_hash).await? {
        return Err(ApiError::NotFound("host not found".into()));
    }
    let host = state
        .store
        .host(id)
        .await?
        .ok_or_else(|| ApiError::NotFound("host not found".into()))?;
    tracing::info!(host = %host.name, host_id = id, "agent token rotated");
    Ok((host, token))
}

/// Deletes a host and everything stored about it.
pub(crate) async fn delete_host(state: &AppState, id: i64) -> Result<(), ApiError> {
    if id == state.local_host_id {
        return Err(ApiError::Conflict(
            "this server's own host cannot be deleted while the server runs",
        ));
    }
    if !state.store.delete_host(id, now_ms()).await? {
        return Err(ApiError::NotFound("host not found".into()));
    }
    tracing::info!(host_id = id, "host deleted");
    Ok(())
}

/// Creates a host for an agent and returns its token, once.
#[utoipa::path(post, path = "/admin/hosts", tag = "hosts", request_body = NewHost,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "The host and its agent token (shown only now)", body = HostWithToken),
        (status = 403, description = "Missing or wrong admin token, or admin disabled", body = ErrorBody),
        (status = 409, description = "A host with this name exists", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid name", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    _admin: AdminGuard,
    ApiJson(body): ApiJson<NewHost>,
) -> Result<(StatusCode, Json<HostWithToken>), ApiError> {
    let (host, token) = create_host(&state, &body.name, "admin-api").await?;
    Ok((
        StatusCode::CREATED,
        Json(HostWithToken {
            host: host_out(&state, &host, now_ms()),
            token,
        }),
    ))
}

/// Replaces a host's agent token and returns the new one, once.
#[utoipa::path(post, path = "/admin/hosts/{id}/token", tag = "hosts",
    params(("id" = i64, Path, description = "Host id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The host and its new agent token (shown only now)", body = HostWithToken),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 403, description = "Missing or wrong admin token, or admin disabled", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
        (status = 409, description = "This server's own host", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody),
    ))]
pub async fn rotate_token(
    State(state): State<AppState>,
    _admin: AdminGuard,
    Path(id): Path<i64>,
) -> Result<Json<HostWithToken>, ApiError> {
    let (host, token) = rotate_host_token(&state, id).await?;
    Ok(Json(HostWithToken {
        host: host_out(&state, &host, now_ms()),
        token,
    }))
}

/// Deletes a host with its samples, rollups, alerts and rule state; its agent is refused
/// from then on (403).
#[utoipa::path(delete, path = "/admin/hosts/{id}", tag = "hosts",
    params(("id" = i64, Path, description = "Host id")),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 403, description = "Missing or wrong admin token, or admin disabled", body = ErrorBody),
        (status = 404, description = "No such host", body = ErrorBody),
        (status = 409, description = "This server's own host", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    _admin: AdminGuard,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    delete_host(&state, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
