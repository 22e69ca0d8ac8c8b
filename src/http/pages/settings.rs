//! "My thresholds" and "API tokens" pages.

use super::render::{fmt_time, render, render_status, Nav, PageError};
use super::session::{CsrfForm, Ctx};
use crate::auth::tokens;
use crate::domain::{now_ms, Threshold};
use crate::http::state::AppState;
use crate::store::{NewToken, ThresholdPair};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "pages/thresholds.html")]
pub struct ThresholdsPage {
    pub nav: Nav,
    pub form: ThresholdsView,
}

/// The thresholds form, shared by "My thresholds" and the admin page.
pub struct ThresholdsView {
    /// Form action: the user's own or (admin) the global thresholds.
    pub action: &'static str,
    pub heading: &'static str,
    pub cpu: String,
    pub memory: String,
    pub cpu_error: Option<String>,
    pub memory_error: Option<String>,
    pub saved: bool,
    pub own: bool,
}

#[derive(Deserialize)]
pub struct ThresholdsForm {
    #[serde(default)]
    pub cpu_threshold: String,
    #[serde(default)]
    pub memory_threshold: String,
}

fn fmt_num(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn parse_field(raw: &str, name: &str) -> Result<f64, String> {
    raw.trim()
        .parse::<f64>()
        .ok()
        .and_then(|v| Threshold::parse(v).ok())
        .map(Threshold::get)
        .ok_or_else(|| format!("{name} must be a number between 0 and 100"))
}

/// Validates the form; on failure, the page to show again with inline errors.
pub fn validate_thresholds(
    form: &ThresholdsForm,
    mut page: ThresholdsView,
) -> Result<ThresholdPair, Box<ThresholdsView>> {
    let cpu = parse_field(&form.cpu_threshold, "CPU threshold");
    let memory = parse_field(&form.memory_threshold, "Memory threshold");
    match (cpu, memory) {
        (Ok(cpu), Ok(memory)) => Ok(ThresholdPair { cpu, memory }),
        (c, m) => {
            page.cpu = form.cpu_threshold.clone();
            page.memory = form.memory_threshold.clone();
            page.cpu_error = c.err();
            page.memory_error = m.err();
            Err(Box::new(page))
        }
    }
}

pub fn thresholds_view(t: ThresholdPair, own: bool, admin: bool) -> ThresholdsView {
    ThresholdsView {
        action: if admin {
            "/dashboard/admin/thresholds"
        } else {
            "/dashboard/thresholds"
        },
        heading: if admin {
            "Global thresholds"
        } else {
            "My thresholds"
        },
        cpu: fmt_num(t.cpu),
        memory: fmt_num(t.memory),
        cpu_error: None,
        memory_error: None,
        saved: false,
        own,
    }
}

pub async fn thresholds(State(state): State<AppState>, ctx: Ctx) -> Result<Response, PageError> {
    let user = ctx.require_user()?;
    let (t, own) = state.store.effective_thresholds(user.id).await?;
    Ok(render(&ThresholdsPage {
        nav: Nav::new(&ctx, "thresholds"),
        form: thresholds_view(t, own, false),
    }))
}

pub async fn save_thresholds(
    State(state): State<AppState>,
    f: CsrfForm<ThresholdsForm>,
) -> Result<Response, PageError> {
    let CsrfForm { ctx, form } = f;
    let user = ctx.require_user()?;
    let nav = Nav::new(&ctx, "thresholds");
    match validate_thresholds(&form, thresholds_view(ThresholdPair::DEFAULT, true, false)) {
        Ok(t) => {
            state
                .store
                .set_user_thresholds(user.id, t, now_ms())
                .await?;
            let mut form = thresholds_view(t, true, false);
            form.saved = true;
            Ok(render(&ThresholdsPage { nav, form }))
        }
        Err(form) => Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &ThresholdsPage { nav, form: *form },
        )),
    }
}

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "pages/tokens.html")]
pub struct TokensPage {
    pub nav: Nav,
    pub tokens: Vec<TokenRow>,
    /// A token just created: shown this once.
    pub created: Option<String>,
    pub name: String,
    pub error: Option<String>,
    pub ttl_choices: Vec<(u32, &'static str, bool)>,
}

const TTL_DAYS: [(u32, &str); 4] = [
    (1, "1 day"),
    (30, "30 days"),
    (90, "90 days"),
    (365, "1 year"),
];

async fn tokens_page(
    state: &AppState,
    ctx: &Ctx,
    created: Option<String>,
    error: Option<String>,
    name: String,
) -> Result<TokensPage, PageError> {
    let user = ctx.require_user()?;
    let rows = state.store.list_tokens(user.id, now_ms()).await?;
    Ok(TokensPage {
        nav: Nav::new(ctx, "tokens"),
        tokens: rows
            .into_iter()
            .map(|t| TokenRow {
                id: t.token_hash,
                name: t.name,
                created: fmt_time(t.created_at),
                last_used: t
                    .last_used_at
                    .map(fmt_time)
                    .unwrap_or_else(|| "never".into()),
                expires: fmt_time(t.expires_at),
            })
            .collect(),
        created,
        name,
        error,
        ttl_choices: TTL_DAYS.iter().map(|(d, l)| (*d, *l, *d == 30)).collect(),
    })
}

pub async fn tokens_list(State(state): State<AppState>, ctx: Ctx) -> Result<Response, PageError> {
    Ok(render(
        &tokens_page(&state, &ctx, None, None, String::new()).await?,
    ))
}

#[derive(Deserialize)]
pub struct NewTokenForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub ttl_days: u32,
}

pub async fn create_token(
    State(state): State<AppState>,
    f: CsrfForm<NewTokenForm>,
) -> Result<Response, PageError> {
    let CsrfForm { ctx, form } = f;
    let user = ctx.require_user()?;
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        let page = tokens_page(
            &state,
            &ctx,
            None,
            Some("Give the token a name of 1 to 64 characters.".into()),
            form.name.clone(),
        )
        .await?;
        return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    let Some(days) = TTL_DAYS.iter().map(|d| d.0).find(|d| *d == form.ttl_days) else {
        let page = tokens_page(
            &state,
            &ctx,
            None,
            Some("Choose one of the offered lifetimes.".into()),
            form.name.clone(),
        )
        .await?;
        return Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &page));
    };
    let now = now_ms();
    let (token, token_hash) = tokens::generate();
    state
        .store
        .insert_token(&NewToken {
            token_hash,
            user_id: user.id,
            name: name.to_owned(),
            created_at: now,
            expires_at: now + i64::from(days) * 86_400_000,
        })
        .await?;
    tracing::info!(user_id = user.id, "API token created");
    Ok(render(
        &tokens_page(&state, &ctx, Some(token), None, String::new()).await?,
    ))
}

#[derive(Deserialize)]
pub struct RevokeForm {
    pub id: String,
}

pub async fn revoke_token(
    State(state): State<AppState>,
    f: CsrfForm<RevokeForm>,
) -> Result<Response, PageError> {
    let CsrfForm { ctx, form } = f;
    let user = ctx.require_user()?;
    // Scoped to the owner: another user's token id revokes nothing.
    if state.store.delete_user_token(user.id, &form.id).await? {
        tracing::info!(user_id = user.id, "API token revoked");
    }
    Ok(render(
        &tokens_page(&state, &ctx, None, None, String::new()).await?,
    ))
}
