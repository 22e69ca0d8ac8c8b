//! Notification channels: the user's webhooks and email channels (and, in an admin
//! session, the global ones), with test, secret rotation, enable/disable and delete.
//! Validation (including the SSRF check) is the API's `check_channel`.

use super::render::{
    not_found_page, redirect_with, render, render_status, take_flash, Flash, Nav, PageError,
};
use super::rules::{actor_for, parse_id, require_viewer, Empty};
use super::session::{CsrfForm, Ctx};
use crate::domain::now_ms;
use crate::http::api::channels::{check_channel, owned_channel, queue_test, ChannelOut};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::{Channel, ChannelInput, Scope};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

pub struct ChannelRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    /// The URL (an env webhook's redacted) or the recipients.
    pub target: String,
    pub source: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub secret: Option<String>,
    pub env: bool,
    pub can_rotate: bool,
}

pub struct ChannelSection {
    pub id: &'static str,
    pub heading: &'static str,
    pub empty: &'static str,
    pub rows: Vec<ChannelRow>,
}

pub struct ChannelFormView {
    pub kind: String,
    pub name: String,
    pub url: String,
    pub to: String,
    pub global: bool,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "pages/channels.html")]
pub struct ChannelsPage {
    pub nav: Nav,
    pub flash: Option<Flash>,
    /// A refused action, shown above the lists.
    pub error: Option<String>,
    pub sections: Vec<ChannelSection>,
    pub form: ChannelFormView,
    pub email_available: bool,
    pub can_global: bool,
}

fn channel_row(state: &AppState, c: Channel) -> ChannelRow {
    let env = c.source == "env";
    let webhook = c.kind == "webhook";
    let can_rotate = webhook && !(env && state.settings.alert_webhook_secret.is_some());
    // The API's view redacts what must not be shown (an env webhook URL may hold a token).
    let out = ChannelOut::from(c);
    ChannelRow {
        id: out.id,
        target: out.url.or(out.to).unwrap_or_default(),
        name: out.name,
        kind: out.kind,
        source: out.source,
        enabled: out.enabled,
        disabled_reason: out.disabled_reason,
        secret: out.secret,
        env,
        can_rotate,
    }
}

fn blank_form(ctx: &Ctx) -> ChannelFormView {
    ChannelFormView {
        kind: "webhook".into(),
        name: String::new(),
        url: String::new(),
        to: String::new(),
        global: ctx.user.is_none(),
        error: None,
    }
}

async fn channels_page(
    state: &AppState,
    ctx: &Ctx,
    form: Option<ChannelFormView>,
    error: Option<String>,
) -> Result<ChannelsPage, PageError> {
    let mut sections = Vec::new();
    if let Some(user) = &ctx.user {
        let rows = state.store.list_channels(Scope::Owner(user.id)).await?;
        sections.push(ChannelSection {
            id: "my-channels",
            heading: "My channels",
            empty: "You have no channels yet: your alerts are only shown here.",
            rows: rows.into_iter().map(|c| channel_row(state, c)).collect(),
        });
    }
    if ctx.admin {
        let rows = state.store.list_channels(Scope::Global).await?;
        sections.push(ChannelSection {
            id: "global-channels",
            heading: "Global channels",
            empty: "No global channels.",
            rows: rows.into_iter().map(|c| channel_row(state, c)).collect(),
        });
    }
    Ok(ChannelsPage {
        nav: Nav::new(ctx, "channels"),
        flash: take_flash(ctx).await?,
        error,
        sections,
        form: form.unwrap_or_else(|| blank_form(ctx)),
        email_available: state.settings.alert_smtp_host.is_some(),
        can_global: ctx.admin,
    })
}

pub async fn channels(State(state): State<AppState>, ctx: Ctx) -> Result<Response, PageError> {
    require_viewer(&ctx)?;
    Ok(render(&channels_page(&state, &ctx, None, None).await?))
}

#[derive(Deserialize)]
pub struct ChannelForm {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub to: String,
    pub global: Option<String>,
}

pub async fn create_channel(
    State(state): State<AppState>,
    f: CsrfForm<ChannelForm>,
) -> Result<Response, PageError> {
    let CsrfForm { ctx, form } = f;
    require_viewer(&ctx)?;
    let global = form.global.is_some();
    let refuse = |msg: String| ChannelFormView {
        kind: form.kind.clone(),
        name: form.name.clone(),
        url: form.url.clone(),
        to: form.to.clone(),
        global,
        error: Some(msg),
    };
    let owner = if global {
        if !ctx.admin {
            let page = channels_page(
                &state,
                &ctx,
                Some(refuse("Global channels need an admin session.".into())),
                None,
            )
            .await?;
            return Ok(render_status(StatusCode::FORBIDDEN, &page));
        }
        None
    } else {
        Some(ctx.require_user()?.id)
    };
    let checked = check_channel(
        &state,
        Some(&form.name),
        form.kind.trim(),
        Some(&form.url),
        Some(&form.to),
        true,
    )
    .await;
    let input = match checked {
        Ok(input) => input,
        Err(ApiError::Validation(msg)) => {
            let page = channels_page(&state, &ctx, Some(refuse(msg)), None).await?;
            return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
        Err(e) => return Err(e.into()),
    };
    let secret = (input.kind == "webhook").then(crate::notify::sign::generate_secret);
    let channel = state
        .store
        .create_channel(owner, &input, secret.as_deref(), now_ms())
        .await?;
    tracing::info!(channel_id = channel.id, kind = %channel.kind, owner = ?channel.owner_id, "channel created from the dashboard");
    let text = if channel.kind == "webhook" {
        format!(
            "Channel “{}” added. Its signing secret is under “Show signing secret”.",
            channel.name
        )
    } else {
        format!("Channel “{}” added.", channel.name)
    };
    redirect_with(&ctx, "/dashboard/channels", Flash::new(text)).await
}

/// An action refused: the page again, with the reason.
async fn refused(
    state: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    msg: &str,
) -> Result<Response, PageError> {
    let page = channels_page(state, ctx, None, Some(msg.to_owned())).await?;
    Ok(render_status(status, &page))
}

pub async fn channel_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    f: CsrfForm<Empty>,
) -> Result<Response, PageError> {
    let ctx = f.ctx;
    require_viewer(&ctx)?;
    let Some(id) = parse_id(&id) else {
        return Ok(not_found_page(&ctx));
    };
    let Some(current) = state.store.channel(id).await? else {
        return Ok(not_found_page(&ctx));
    };
    let Some(actor) = actor_for(&ctx, current.owner_id) else {
        return Ok(not_found_page(&ctx));
    };
    let channel = match owned_channel(&state, &actor, id).await {
        Ok(c) => c,
        Err(ApiError::NotFound(_)) => return Ok(not_found_page(&ctx)),
        Err(e) => return Err(e.into()),
    };
    let env = channel.source == "env";
    let env_refusal =
        "This channel is configured by ALERT_* environment variables; change it there.";
    let flash = match action.as_str() {
        "test" => {
            let queued = match queue_test(&state, &channel).await {
                Ok(q) => q,
                Err(ApiError::TooManyRequests { detail, .. }) => {
                    return Ok(super::render::error_page(
                        StatusCode::TOO_MANY_REQUESTS,
                        detail,
                        &ctx,
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            tracing::info!(
                channel_id = id,
                delivery = queued.delivery_id,
                "test notification queued from the dashboard"
            );
            Flash::new(format!("Test notification to “{}” queued.", channel.name)).with_link(
                format!("/dashboard/deliveries?channel={id}"),
                "See it in the deliveries",
            )
        }
        "rotate-secret" => {
            if channel.kind != "webhook" {
                return refused(
                    &state,
                    &ctx,
                    StatusCode::CONFLICT,
                    "Only webhook channels have a signing secret.",
                )
                .await;
            }
            if env && state.settings.alert_webhook_secret.is_some() {
                return refused(
                    &state,
                    &ctx,
                    StatusCode::CONFLICT,
                    "This secret is set by ALERT_WEBHOOK_SECRET; change it there.",
                )
                .await;
            }
            state
                .store
                .set_channel_secret(id, &crate::notify::sign::generate_secret(), now_ms())
                .await?;
            tracing::info!(channel_id = id, "webhook secret rotated from the dashboard");
            Flash::new(format!(
                "New signing secret for “{}”; the old one no longer verifies.",
                channel.name
            ))
        }
        "enable" | "disable" => {
            if env {
                return refused(&state, &ctx, StatusCode::CONFLICT, env_refusal).await;
            }
            let enable = action == "enable";
            let input = if enable {
                // Enabling checks the target again, as saving it through the API would.
                let target = Some(channel.target.as_str());
                match check_channel(
                    &state,
                    Some(&channel.name),
                    &channel.kind,
                    target,
                    target,
                    true,
                )
                .await
                {
                    Ok(input) => input,
                    Err(ApiError::Validation(msg)) => {
                        return refused(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &msg).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                ChannelInput {
                    name: channel.name.clone(),
                    kind: channel.kind.clone(),
                    target: channel.target.clone(),
                    enabled: false,
                }
            };
            if state
                .store
                .update_channel(id, &input, now_ms())
                .await?
                .is_none()
            {
                return Ok(not_found_page(&ctx));
            }
            tracing::info!(
                channel_id = id,
                enabled = enable,
                "channel switched from the dashboard"
            );
            Flash::new(format!(
                "Channel “{}” {}.",
                channel.name,
                if enable { "enabled" } else { "disabled" }
            ))
        }
        "delete" => {
            if env {
                return refused(&state, &ctx, StatusCode::CONFLICT, env_refusal).await;
            }
            state.store.delete_channel(id).await?;
            tracing::info!(channel_id = id, "channel deleted from the dashboard");
            Flash::new(format!("Channel “{}” deleted.", channel.name))
        }
        _ => return Ok(not_found_page(&ctx)),
    };
    redirect_with(&ctx, "/dashboard/channels", flash).await
}
