//! Rendering helpers: the navigation every page shows, HTML responses, error pages that
//! keep the layout, and small inline errors for htmx requests.

use super::session::Ctx;
use crate::http::error::ApiError;
use crate::store::StoreError;
use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

/// What the layout needs on every page.
pub struct Nav {
    pub user: Option<String>,
    pub admin: bool,
    pub csrf: String,
    pub active: &'static str,
}

impl Nav {
    pub fn new(ctx: &Ctx, active: &'static str) -> Self {
        Self {
            user: ctx.user.as_ref().map(|u| u.username.clone()),
            admin: ctx.admin,
            csrf: ctx.csrf.clone(),
            active,
        }
    }

    fn anonymous() -> Self {
        Self {
            user: None,
            admin: false,
            csrf: String::new(),
            active: "",
        }
    }
}

pub fn render<T: Template>(t: &T) -> Response {
    render_status(StatusCode::OK, t)
}

pub fn render_status<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            plain_error(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

#[derive(Template)]
#[template(path = "errors/error.html")]
pub struct ErrorPage {
    pub nav: Nav,
    pub status: u16,
    pub title: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "partials/inline_error.html")]
pub struct InlineError {
    pub message: String,
}

fn title_for(status: StatusCode) -> String {
    match status.as_u16() {
        403 => "Forbidden".into(),
        404 => "Page not found".into(),
        429 => "Too many attempts".into(),
        503 => "Temporarily unavailable".into(),
        s if s >= 500 => "Something went wrong".into(),
        _ => status.canonical_reason().unwrap_or("Error").into(),
    }
}

/// An error page in the site layout, or a small inline error for htmx requests (which
/// then swap it in instead of garbage; see static/app.js).
pub fn error_page(status: StatusCode, message: &str, ctx: &Ctx) -> Response {
    if ctx.htmx {
        return render_status(
            status,
            &InlineError {
                message: message.to_owned(),
            },
        );
    }
    render_status(
        status,
        &ErrorPage {
            nav: Nav::new(ctx, ""),
            status: status.as_u16(),
            title: title_for(status),
            message: message.to_owned(),
        },
    )
}

/// An error page without session context (the session itself failed).
pub fn plain_error(status: StatusCode) -> Response {
    let page = ErrorPage {
        nav: Nav::anonymous(),
        status: status.as_u16(),
        title: title_for(status),
        message: "Please try again in a moment.".into(),
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, "error").into_response(),
    }
}

/// Failures a page handler can return.
#[derive(Debug)]
pub enum PageError {
    /// Not logged in: to the login page. htmx requests get `HX-Redirect` on a 401, since
    /// XMLHttpRequest would follow a 303 silently and htmx would swap the login page in.
    LoginRequired {
        htmx: bool,
    },
    /// A malformed query string on a dashboard URL.
    BadRequest,
    NotFound,
    Unavailable,
    Internal,
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        match ApiError::from(e) {
            ApiError::Unavailable | ApiError::StorageFull => PageError::Unavailable,
            _ => PageError::Internal,
        }
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unavailable | ApiError::StorageFull => PageError::Unavailable,
            ApiError::Unauthorized(_) => PageError::LoginRequired { htmx: false },
            ApiError::NotFound(_) => PageError::NotFound,
            _ => PageError::Internal,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::LoginRequired { htmx: false } => {
                Redirect::to("/dashboard/login").into_response()
            }
            PageError::LoginRequired { htmx: true } => {
                let mut r = render_status(
                    StatusCode::UNAUTHORIZED,
                    &InlineError {
                        message: "Your session has ended; log in again.".into(),
                    },
                );
                r.headers_mut()
                    .insert("hx-redirect", HeaderValue::from_static("/dashboard/login"));
                r
            }
            PageError::BadRequest => plain_error(StatusCode::BAD_REQUEST),
            PageError::NotFound => plain_error(StatusCode::NOT_FOUND),
            PageError::Unavailable => {
                let mut r = plain_error(StatusCode::SERVICE_UNAVAILABLE);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
                r
            }
            PageError::Internal => plain_error(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

/// Formats epoch ms for tables: `2026-11-27 14:03 UTC`.
pub fn fmt_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// Human byte rates: `1.2 MB/s`.
pub fn fmt_rate(bps: f64) -> String {
    format!("{}/s", fmt_bytes(bps))
}

pub fn fmt_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b.max(0.0);
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

pub fn fmt_uptime(secs: i64) -> String {
    let d = secs / 86_400;
    let h = (secs % 86_400) / 3600;
    let m = (secs % 3600) / 60;
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m")
    }
}

/// `Query<T>` whose rejection is an HTML error page in the layout, not API JSON.
pub struct PageQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S>
    for PageQuery<T>
{
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| PageQuery(v))
            .map_err(|_| PageError::BadRequest)
    }
}

/// The 404 page in the layout: what an unknown address, or someone else's rule, channel or
/// delivery, looks like.
pub fn not_found_page(ctx: &Ctx) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "There is nothing at this address.",
        ctx,
    )
}

/// A one-time message for the page a form redirects to (redirect-after-POST), kept in
/// the session until that page shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Flash {
    pub text: String,
    /// An optional link after the text: (href, label). Only our own fixed paths.
    pub link: Option<(String, String)>,
}

impl Flash {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            link: None,
        }
    }

    pub fn with_link(mut self, href: impl Into<String>, label: impl Into<String>) -> Self {
        self.link = Some((href.into(), label.into()));
        self
    }
}

const FLASH_KEY: &str = "flash";

fn flash_error<E: std::fmt::Display>(e: E) -> PageError {
    tracing::error!(error = %e, "session store error (flash)");
    PageError::Internal
}

pub async fn set_flash(ctx: &Ctx, flash: Flash) -> Result<(), PageError> {
    ctx.session
        .insert(FLASH_KEY, flash)
        .await
        .map_err(flash_error)
}

/// The pending message, if any; it is removed so a reload does not show it again.
pub async fn take_flash(ctx: &Ctx) -> Result<Option<Flash>, PageError> {
    ctx.session
        .remove::<Flash>(FLASH_KEY)
        .await
        .map_err(flash_error)
}

/// The 303 after a successful form post, with a message for the next page.
pub async fn redirect_with(ctx: &Ctx, to: &str, flash: Flash) -> Result<Response, PageError> {
    set_flash(ctx, flash).await?;
    Ok(Redirect::to(to).into_response())
}

/// An option of a `<select>`.
pub struct SelectOption {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl SelectOption {
    pub fn new(value: impl Into<String>, label: impl Into<String>, selected: bool) -> Self {
        Self {
            value: value.into(),
            label: label.into(),
            selected,
        }
    }
}
