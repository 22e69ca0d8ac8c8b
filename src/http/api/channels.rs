//! `/channels`: where notifications go (webhooks, email). Users manage their own; the
//! admin (`x-admin-token`) manages the global ones, which receive global rules' alerts.

use crate::domain::{format_rfc3339, now_ms};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{Actor, ApiJson};
use crate::http::state::AppState;
use crate::store::{Channel, ChannelInput};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a channel is (its schema; bodies carry it as a string so a wrong value gets an
/// explanatory 422).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Webhook,
    Email,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelBody {
    #[schema(max_length = 100)]
    pub name: Option<String>,
    #[schema(value_type = ChannelKind)]
    pub kind: String,
    /// Webhooks: the http(s) URL to POST to. Private, loopback and link-local targets are
    /// refused unless the operator allows them.
    pub url: Option<String>,
    /// Email: recipients, comma separated.
    pub to: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelOut {
    pub id: i64,
    pub name: String,
    pub kind: String,
    /// `global` or `user`.
    pub scope: &'static str,
    pub owner_id: Option<i64>,
    pub url: Option<String>,
    pub to: Option<String>,
    /// The Standard Webhooks signing secret (`whsec_…`): verify `webhook-signature` with it.
    pub secret: Option<String>,
    /// `env` for the channels set by ALERT_* variables (not editable here), else `user`.
    pub source: String,
    pub enabled: bool,
    /// Why the channel was disabled, e.g. the receiver answered 410 Gone.
    pub disabled_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Channel> for ChannelOut {
    fn from(c: Channel) -> Self {
        let webhook = c.kind == "webhook";
        // The env webhook URL is operator configuration that may embed a token.
        let target = if c.source == "env" && webhook {
            redact_url(&c.target)
        } else {
            c.target
        };
        Self {
            id: c.id,
            name: c.name,
            kind: c.kind,
            scope: if c.owner_id.is_some() {
                "user"
            } else {
                "global"
            },
            owner_id: c.owner_id,
            url: webhook.then(|| target.clone()),
            to: (!webhook).then_some(target),
            secret: c.secret,
            source: c.source,
            enabled: c.enabled,
            disabled_reason: c.disabled_reason,
            created_at: format_rfc3339(c.created_at),
            updated_at: format_rfc3339(c.updated_at),
        }
    }
}

/// Scheme, host and port only.
fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/…",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(unparsable URL)".into(),
    }
}

/// Validates a channel as submitted (API and form): kind, target (SSRF-checked for
/// webhooks, parsed for email), name.
pub async fn check_channel(
    state: &AppState,
    name: Option<&str>,
    kind: &str,
    url: Option<&str>,
    to: Option<&str>,
    enabled: bool,
) -> Result<ChannelInput, ApiError> {
    let target = match kind {
        "webhook" => {
            let url = url
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .ok_or_else(|| ApiError::Validation("a webhook channel needs a url".into()))?;
            if url.chars().any(char::is_control) {
                return Err(ApiError::Validation(
                    "the webhook URL must not contain control characters".into(),
                ));
            }
            // Stored as parsed, so what is sent is exactly what was checked.
            crate::notify::ssrf::check_url(url, state.settings.allow_private_webhooks)
                .await
                .map_err(|e| ApiError::Validation(e.to_string()))?
                .to_string()
        }
        "email" => {
            if state.settings.alert_smtp_host.is_none() {
                return Err(ApiError::Validation(
                    "email notifications are not configured on this server (ALERT_SMTP_HOST)"
                        .into(),
                ));
            }
            let to = to.map(str::trim).filter(|t| !t.is_empty()).ok_or_else(|| {
                ApiError::Validation("an email channel needs recipients in to".into())
            })?;
            crate::notify::email::parse_recipients(to).map_err(ApiError::Validation)?;
            to.to_owned()
        }
        _ => return Err(ApiError::Validation("kind must be webhook or email".into())),
    };
    let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
        None => format!("{kind} channel"),
        Some(n) if n.chars().count() > 100 => {
            return Err(ApiError::Validation(
                "name must be at most 100 characters".into(),
            ))
        }
        Some(n) if n.chars().any(char::is_control) => {
            return Err(ApiError::Validation(
                "name must not contain control characters".into(),
            ))
        }
        Some(n) => n.to_owned(),
    };
    Ok(ChannelInput {
        name,
        kind: kind.to_owned(),
        target,
        enabled,
    })
}

/// A channel the caller may touch, or 404.
pub async fn owned_channel(state: &AppState, actor: &Actor, id: i64) -> Result<Channel, ApiError> {
    actor.owned(state.store.channel(id).await?, |c| c.owner_id, "channel")
}

/// Your notification channels (with `x-admin-token`: all).
#[utoipa::path(get, path = "/channels", tag = "notifications",
    security(("token" = []), ("bearer" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Channels", body = Vec<ChannelOut>),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<ChannelOut>>, ApiError> {
    let channels = state.store.list_channels(actor.scope()).await?;
    Ok(Json(channels.into_iter().map(ChannelOut::from).collect()))
}

/// Add a channel. Webhooks get a new signing secret, returned here and on every read.
#[utoipa::path(post, path = "/channels", tag = "notifications", request_body = ChannelBody,
    security(("token" = []), ("bearer" = []), ("admin_token" = [])),
    responses(
        (status = 201, description = "Channel created", body = ChannelOut),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid channel (including refused webhook targets)", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    actor: Actor,
    ApiJson(body): ApiJson<ChannelBody>,
) -> Result<(StatusCode, Json<ChannelOut>), ApiError> {
    let input = check_channel(
        &state,
        body.name.as_deref(),
        &body.kind,
        body.url.as_deref(),
        body.to.as_deref(),
        body.enabled.unwrap_or(true),
    )
    .await?;
    let secret = (input.kind == "webhook").then(crate::notify::sign::generate_secret);
    let channel = state
        .store
        .create_channel(actor.owner(), &input, secret.as_deref(), now_ms())
        .await?;
    tracing::info!(channel_id = channel.id, kind = %channel.kind, owner = ?channel.owner_id, "channel created");
    Ok((StatusCode::CREATED, Json(channel.into())))
}

/// One channel.
#[utoipa::path(get, path = "/channels/{id}", tag = "notifications",
    params(("id" = i64, Path, description = "Channel id")),
    security(("token" = []), ("bearer" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The channel", body = ChannelOut),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 404, description = "No such channel of yours", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> Result<Json<ChannelOut>, ApiError> {
    Ok(Json(owned_channel(&state, &actor, id).await?.into()))
}

/// Replace a channel's name, target and enabled flag (its kind and secret stay).
/// Enabling a channel that a 410 disabled clears the reason.
#[utoipa::path(put, path = "/channels/{id}", tag = "notifications", request_body = ChannelBody,
    params(("id" = i64, Path, description = "Channel id")),
    security(("token" = []), ("bearer" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "Channel replaced", body = ChannelOut),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 404, description = "No such channel of yours", body = ErrorBody),
        (status = 409, description = "Configured by the environment", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Invalid channel", body = ErrorBody),
    ))]
pub async fn replace(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ChannelBody>,
) -> Result<Json<ChannelOut>, ApiError> {
    let current = owned_channel(&state, &actor, id).await?;
    if current.source == "env" {
        return Err(ApiError::Conflict(
            "this channel is configured by ALERT_* environment variables",
        ));
    }
    if body.kind != current.kind {
        return Err(ApiError::Validation(
            "a channel's kind cannot change; create a new channel".into(),
        ));
    }
    let input = check_channel(
        &state,
        body.name.as_deref(),
        &body.kind,
        body.url.as_deref(),
        body.to.as_deref(),
        body.enabled.unwrap_or(true),
    )
    .await?;
    let channel = state
        .store
        .update_channel(id, &input, now_ms())
        .await?
        .ok_or_else(|| ApiError::NotFound("channel not found".into()))?;
    Ok(Json(channel.into()))
}

/// Delete a channel and its delivery log.
#[utoipa::path(delete, path = "/channels/{id}", tag = "notifications",
    params(("id" = i64, Path, description = "Channel id")),
    security(("token" = []), ("bearer" = []), ("admin_token" = [])),
    responses(
        (status = 204, description = "Channel deleted"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 404, description = "No such channel of yours", body = ErrorBody),
        (status = 409, description = "Configured by the environment", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let current = owned_channel(&state, &actor, id).await?;
    if current.source == "env" {
        return Err(ApiError::Conflict(
            "this channel is configured by ALERT_* environment variables",
        ));
    }
    state.store.delete_channel(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestQueued {
    pub delivery_id: i64,
    /// The `webhook-id` the test will carry.
    pub message_id: String,
}

/// Queue a test notification to the channel (see it in `/deliveries`).
#[utoipa::path(post, path = "/channels/{id}/test", tag = "notifications",
    params(("id" = i64, Path, description = "Channel id")),
    security(("token" = []), ("bearer" = []), ("admin_token" = [])),
    responses(
        (status = 202, description = "Test queued", body = TestQueued),
        (status = 429, description = "More than 5 tests in a minute", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 404, description = "No such channel of yours", body = ErrorBody),
    ))]
pub async fn test(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<TestQueued>), ApiError> {
    let channel = owned_channel(&state, &actor, id).await?;
    let queued = queue_test(&state, &channel).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)))
}

/// Test notifications one owner may queue per minute: a test goes to addresses of the
/// user's choosing through the operator's mail server, so it must not become a spam cannon.
pub const TESTS_PER_MINUTE: i64 = 5;

pub async fn queue_test(state: &AppState, channel: &Channel) -> Result<TestQueued, ApiError> {
    let now = now_ms();
    let recent = state
        .store
        .recent_test_count(channel.owner_id, now - 60_000)
        .await?;
    if recent >= TESTS_PER_MINUTE {
        return Err(ApiError::TooManyRequests {
            retry_after_secs: 60,
            detail: "too many test notifications; try again in a minute",
        });
    }
    let message_id = crate::notify::sign::new_message_id();
    let payload = crate::notify::worker::test_payload(&channel.name, now);
    let delivery_id = state
        .store
        .enqueue_test(channel.id, &payload, &message_id, now)
        .await?;
    state.notify_wake.notify_one();
    Ok(TestQueued {
        delivery_id,
        message_id,
    })
}

/// Replace a webhook channel's signing secret; the old one stops working at once.
#[utoipa::path(post, path = "/channels/{id}/rotate-secret", tag = "notifications",
    params(("id" = i64, Path, description = "Channel id")),
    security(("token" = []), ("bearer" = []), ("admin_token" = [])),
    responses(
        (status = 200, description = "The channel with its new secret", body = ChannelOut),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Wrong admin token", body = ErrorBody),
        (status = 429, description = "Too many wrong admin tokens", body = ErrorBody, headers(("retry-after" = u64, description = "Seconds"))),
        (status = 404, description = "No such channel of yours", body = ErrorBody),
        (status = 409, description = "Not a webhook, or configured by ALERT_WEBHOOK_SECRET", body = ErrorBody),
    ))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<i64>,
) -> Result<Json<ChannelOut>, ApiError> {
    let channel = owned_channel(&state, &actor, id).await?;
    if channel.kind != "webhook" {
        return Err(ApiError::Conflict("only webhook channels have a secret"));
    }
    if channel.source == "env" && state.settings.alert_webhook_secret.is_some() {
        return Err(ApiError::Conflict(
            "this secret is set by ALERT_WEBHOOK_SECRET",
        ));
    }
    state
        .store
        .set_channel_secret(id, &crate::notify::sign::generate_secret(), now_ms())
        .await?;
    let channel = owned_channel(&state, &actor, id).await?;
    Ok(Json(channel.into()))
}
