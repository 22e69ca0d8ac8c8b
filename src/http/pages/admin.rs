//! Admin: elevation with `ADMIN_TOKEN` (a new session id), global thresholds, users.

use super::render::{error_page, fmt_time, render, render_status, Nav, PageError};
use super::session::{CsrfForm, Ctx};
use super::settings::{thresholds_view, validate_thresholds, ThresholdsForm, ThresholdsView};
use crate::domain::now_ms;
use crate::http::error::ApiError;
use crate::http::extract::{check_admin_token, ClientIp};
use crate::http::state::AppState;
use crate::store::ThresholdPair;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "pages/admin_login.html")]
pub struct AdminLoginPage {
    pub nav: Nav,
    pub error: Option<String>,
    pub disabled: bool,
}

pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub created: String,
    pub disabled: bool,
}

#[derive(Template)]
#[template(path = "pages/admin.html")]
pub struct AdminPage {
    pub nav: Nav,
    pub form: ThresholdsView,
    pub users: Vec<UserRow>,
    pub notice: Option<String>,
}

async fn admin_page(
    state: &AppState,
    ctx: &Ctx,
    form: Option<ThresholdsView>,
    notice: Option<String>,
) -> Result<AdminPage, PageError> {
    let form = match form {
        Some(f) => f,
        None => thresholds_view(state.store.global_thresholds().await?, true, true),
    };
    let users = state
        .store
        .list_users()
        .await?
        .into_iter()
        .map(|u| UserRow {
            id: u.id,
            username: u.username,
            created: fmt_time(u.created_at),
            disabled: u.disabled,
        })
        .collect();
    Ok(AdminPage {
        nav: Nav::new(ctx, "admin"),
        form,
        users,
        notice,
    })
}

pub async fn admin(State(state): State<AppState>, ctx: Ctx) -> Result<Response, PageError> {
    if !ctx.admin {
        let disabled = state.settings.admin_token.is_none();
        let page = AdminLoginPage {
            nav: Nav::new(&ctx, "admin"),
            error: None,
            disabled,
        };
        return Ok(render_status(
            if disabled {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::OK
            },
            &page,
        ));
    }
    Ok(render(&admin_page(&state, &ctx, None, None).await?))
}

#[derive(Deserialize)]
pub struct ElevateForm {
    #[serde(default)]
    pub admin_token: String,
}

pub async fn elevate(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    f: CsrfForm<ElevateForm>,
) -> Result<Response, PageError> {
    let CsrfForm { mut ctx, form } = f;
    match check_admin_token(&state, ip, &form.admin_token).await {
        Ok(()) => {
            let user = ctx.user.clone();
            ctx.establish(user.as_ref(), true).await?;
            tracing::info!(%ip, "admin session established");
            Ok(Redirect::to("/dashboard/admin").into_response())
        }
        Err(e) => {
            let (status, msg) = match &e {
                ApiError::TooManyRequests {
                    retry_after_secs, ..
                } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("Too many wrong tokens. Try again in {retry_after_secs} s."),
                ),
                ApiError::Forbidden("admin disabled") => (
                    StatusCode::FORBIDDEN,
                    "Admin is disabled: ADMIN_TOKEN is not set.".into(),
                ),
                ApiError::Forbidden(_) => {
                    (StatusCode::FORBIDDEN, "That is not the admin token.".into())
                }
                _ => return Err(e.into()),
            };
            let page = AdminLoginPage {
                nav: Nav::new(&ctx, "admin"),
                error: Some(msg),
                disabled: state.settings.admin_token.is_none(),
            };
            Ok(render_status(status, &page))
        }
    }
}

/// The 403 page for a session that is not an admin session, if it is not.
pub(super) fn refuse_unless_admin(ctx: &Ctx) -> Option<Response> {
    (!ctx.admin).then(|| error_page(StatusCode::FORBIDDEN, "This needs an admin session.", ctx))
}

pub async fn save_global(
    State(state): State<AppState>,
    f: CsrfForm<ThresholdsForm>,
) -> Result<Response, PageError> {
    let CsrfForm { ctx, form } = f;
    if let Some(r) = refuse_unless_admin(&ctx) {
        return Ok(r);
    }
    let blank = thresholds_view(ThresholdPair::DEFAULT, true, true);
    match validate_thresholds(&form, blank) {
        Ok(t) => {
            state.store.set_global_thresholds(t, now_ms()).await?;
            tracing::info!(
                cpu = t.cpu,
                memory = t.memory,
                "global thresholds set from the dashboard"
            );
            let mut tp = thresholds_view(t, true, true);
            tp.saved = true;
            Ok(render(&admin_page(&state, &ctx, Some(tp), None).await?))
        }
        Err(tp) => Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &admin_page(&state, &ctx, Some(*tp), None).await?,
        )),
    }
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn user_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(i64, String)>,
    f: CsrfForm<Empty>,
) -> Result<Response, PageError> {
    let ctx = f.ctx;
    if let Some(r) = refuse_unless_admin(&ctx) {
        return Ok(r);
    }
    let done = match action.as_str() {
        "disable" => state.store.set_user_disabled(id, true).await?,
        "enable" => state.store.set_user_disabled(id, false).await?,
        "end-sessions" => state.store.end_user_sessions(id).await?,
        _ => return Err(PageError::NotFound),
    };
    if !done {
        return Err(PageError::NotFound);
    }
    tracing::info!(user_id = id, %action, "admin user action");
    let notice = match action.as_str() {
        "disable" => "Account disabled; its sessions have ended.",
        "enable" => "Account enabled.",
        _ => "All sessions of the account have ended.",
    };
    Ok(render(
        &admin_page(&state, &ctx, None, Some(notice.into())).await?,
    ))
}
