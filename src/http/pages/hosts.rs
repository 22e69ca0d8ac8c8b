//! Admin › Hosts: every host with its status; create an agent host (its token is shown
//! once), rotate a token, delete a host.

use super::admin::refuse_unless_admin;
use super::render::{fmt_time, render, render_status, Nav, PageError};
use super::session::{CsrfForm, Ctx};
use crate::domain::now_ms;
use crate::http::api::hosts::{create_host, delete_host, host_out, rotate_host_token};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

pub struct HostRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub local: bool,
    pub status: String,
    pub last_seen: String,
    pub agent_version: String,
    pub interval: String,
    pub created: String,
}

/// A token to show once, with the host it belongs to.
pub struct NewToken {
    pub host: String,
    pub token: String,
}

#[derive(Template)]
#[template(path = "pages/hosts.html")]
pub struct HostsPage {
    pub nav: Nav,
    pub hosts: Vec<HostRow>,
    pub created: Option<NewToken>,
    pub notice: Option<String>,
    pub name: String,
    pub error: Option<String>,
}

fn fmt_interval(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

async fn hosts_page(
    state: &AppState,
    ctx: &Ctx,
    created: Option<NewToken>,
    notice: Option<String>,
    name: String,
    error: Option<String>,
) -> Result<HostsPage, PageError> {
    let now = now_ms();
    let hosts = state
        .store
        .list_hosts()
        .await?
        .iter()
        .map(|h| {
            let out = host_out(state, h, now);
            HostRow {
                id: out.id,
                name: out.name,
                kind: out.kind,
                local: out.local,
                status: out.status,
                last_seen: h
                    .last_seen_at
                    .map(fmt_time)
                    .unwrap_or_else(|| "never".into()),
                agent_version: out.agent_version.unwrap_or_default(),
                interval: fmt_interval(out.interval_ms),
                created: fmt_time(h.created_at),
            }
        })
        .collect();
    Ok(HostsPage {
        nav: Nav::new(ctx, "admin"),
        hosts,
        created,
        notice,
        name,
        error,
    })
}

pub async fn hosts(State(state): State<AppState>, ctx: Ctx) -> Result<Response, PageError> {
    if let Some(r) = refuse_unless_admin(&ctx) {
        return Ok(r);
    }
    Ok(render(
        &hosts_page(&state, &ctx, None, None, String::new(), None).await?,
    ))
}

#[derive(Deserialize)]
pub struct NewHostForm {
    #[serde(default)]
    pub name: String,
}

pub async fn create(
    State(state): State<AppState>,
    f: CsrfForm<NewHostForm>,
) -> Result<Response, PageError> {
    let CsrfForm { ctx, form } = f;
    if let Some(r) = refuse_unless_admin(&ctx) {
        return Ok(r);
    }
    match create_host(&state, &form.name, "admin-dashboard").await {
        Ok((host, token)) => {
            let created = NewToken {
                host: host.name,
                token,
            };
            Ok(render(
                &hosts_page(&state, &ctx, Some(created), None, String::new(), None).await?,
            ))
        }
        Err(e @ (ApiError::Validation(_) | ApiError::Conflict(_))) => {
            let status = e.status();
            let page = hosts_page(
                &state,
                &ctx,
                None,
                None,
                form.name.clone(),
                Some(e.to_string()),
            )
            .await?;
            Ok(render_status(status, &page))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn host_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    f: CsrfForm<super::admin::Empty>,
) -> Result<Response, PageError> {
    let ctx = f.ctx;
    if let Some(r) = refuse_unless_admin(&ctx) {
        return Ok(r);
    }
    let result = match action.as_str() {
        "rotate" => rotate_host_token(&state, id).await.map(|(host, token)| {
            (
                Some(NewToken {
                    host: host.name,
                    token,
                }),
                "Token replaced: the old one no longer works.".to_owned(),
            )
        }),
        "delete" => delete_host(&state, id)
            .await
            .map(|()| (None, "Host deleted with all its data.".to_owned())),
        _ => return Err(PageError::NotFound),
    };
    match result {
        Ok((created, notice)) => Ok(render(
            &hosts_page(&state, &ctx, created, Some(notice), String::new(), None).await?,
        )),
        Err(e @ ApiError::Conflict(_)) => {
            let page =
                hosts_page(&state, &ctx, None, None, String::new(), Some(e.to_string())).await?;
            Ok(render_status(StatusCode::CONFLICT, &page))
        }
        Err(e) => Err(e.into()),
    }
}
