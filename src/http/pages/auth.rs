//! Login, registration, logout and password change pages.

use super::render::{error_page, render, render_status, Nav, PageError};
use super::session::{CsrfForm, Ctx};
use crate::http::api::auth::{authenticate, create_account, replace_password};
use crate::http::error::ApiError;
use crate::http::extract::ClientIp;
use crate::http::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "pages/login.html")]
pub struct LoginPage {
    pub nav: Nav,
    pub username: String,
    pub error: Option<String>,
    pub register: bool,
}

#[derive(Deserialize)]
pub struct CredentialsForm {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
}

fn page(ctx: &Ctx, register: bool, username: &str, error: Option<String>) -> LoginPage {
    LoginPage {
        nav: Nav::new(ctx, if register { "register" } else { "login" }),
        username: username.to_owned(),
        error,
        register,
    }
}

pub async fn login_form(ctx: Ctx) -> Response {
    if ctx.user.is_some() {
        return Redirect::to("/dashboard").into_response();
    }
    render(&page(&ctx, false, "", None))
}

pub async fn register_form(ctx: Ctx) -> Response {
    if ctx.user.is_some() {
        return Redirect::to("/dashboard").into_response();
    }
    render(&page(&ctx, true, "", None))
}

/// Maps an authentication error to the status and message the form shows.
fn form_error(e: &ApiError) -> (StatusCode, String) {
    match e {
        ApiError::TooManyRequests {
            retry_after_secs, ..
        } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many failed attempts. Try again in {retry_after_secs} s."),
        ),
        ApiError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is busy; try again.".into(),
        ),
        ApiError::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong; try again.".into(),
        ),
        other => (other.status(), other.to_string()),
    }
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    f: CsrfForm<CredentialsForm>,
) -> Response {
    let CsrfForm { mut ctx, form } = f;
    match authenticate(&state, ip, &form.username, &form.password).await {
        Ok(user) => match ctx.establish(Some(&user), false).await {
            Ok(()) => Redirect::to("/dashboard").into_response(),
            Err(e) => e.into_response(),
        },
        Err(e) => {
            let (status, msg) = form_error(&e);
            let msg = if status == StatusCode::UNAUTHORIZED {
                "Invalid username or password.".into()
            } else {
                msg
            };
            let resp = render_status(status, &page(&ctx, false, &form.username, Some(msg)));
            with_retry_after(resp, &e)
        }
    }
}

/// A lockout's `Retry-After` on the page that reports it.
fn with_retry_after(mut resp: Response, e: &ApiError) -> Response {
    if let ApiError::TooManyRequests {
        retry_after_secs, ..
    } = e
    {
        resp.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            (*retry_after_secs).max(1).into(),
        );
    }
    resp
}

pub async fn register(State(state): State<AppState>, f: CsrfForm<CredentialsForm>) -> Response {
    let CsrfForm { mut ctx, form } = f;
    match create_account(&state, &form.username, &form.password).await {
        Ok(user) => match ctx.establish(Some(&user), false).await {
            Ok(()) => Redirect::to("/dashboard").into_response(),
            Err(e) => e.into_response(),
        },
        Err(e) => {
            let (status, msg) = form_error(&e);
            let msg = if status == StatusCode::CONFLICT {
                "That username is taken.".into()
            } else {
                msg
            };
            render_status(status, &page(&ctx, true, &form.username, Some(msg)))
        }
    }
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn logout(f: CsrfForm<Empty>) -> Result<Response, PageError> {
    // Deleting the server-side session is what logs out; the cookie is expired too.
    f.ctx.end().await?;
    Ok(Redirect::to("/dashboard/login").into_response())
}

pub async fn not_found(ctx: Ctx) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "There is nothing at this address.",
        &ctx,
    )
}

#[derive(Template)]
#[template(path = "pages/password.html")]
pub struct PasswordPage {
    pub nav: Nav,
    /// For password managers, which pair the new password with the account.
    pub username: String,
    pub notice: Option<String>,
    pub error: Option<String>,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    pub current_password: String,
    #[serde(default)]
    pub new_password: String,
    #[serde(default)]
    pub confirm_password: String,
}

fn password_page(
    ctx: &Ctx,
    username: &str,
    notice: Option<&str>,
    error: Option<String>,
) -> PasswordPage {
    PasswordPage {
        nav: Nav::new(ctx, "password"),
        username: username.to_owned(),
        notice: notice.map(str::to_owned),
        error,
    }
}

pub async fn password_form(ctx: Ctx) -> Result<Response, PageError> {
    let user = ctx.require_user()?;
    Ok(render(&password_page(&ctx, &user.username, None, None)))
}

pub async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    f: CsrfForm<PasswordForm>,
) -> Result<Response, PageError> {
    let CsrfForm { mut ctx, form } = f;
    let user = ctx.require_user()?.clone();
    if form.new_password != form.confirm_password {
        let msg = "The two new passwords differ.".to_owned();
        let page = password_page(&ctx, &user.username, None, Some(msg));
        return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    match replace_password(
        &state,
        ip,
        &user,
        &form.current_password,
        &form.new_password,
    )
    .await
    {
        Ok(user) => {
            // A new session id bound to the new epoch: this session goes on, every other
            // one ended with the epoch.
            let admin = ctx.admin;
            ctx.establish(Some(&user), admin).await?;
            let notice = "Password changed. Your other sessions have ended and your API tokens were revoked.";
            Ok(render(&password_page(
                &ctx,
                &user.username,
                Some(notice),
                None,
            )))
        }
        Err(e) => {
            let (status, msg) = form_error(&e);
            let msg = if status == StatusCode::FORBIDDEN {
                "The current password is wrong.".into()
            } else {
                msg
            };
            let page = password_page(&ctx, &user.username, None, Some(msg));
            Ok(with_retry_after(render_status(status, &page), &e))
        }
    }
}
