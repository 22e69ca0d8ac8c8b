//! Dashboard sessions: who is logged in, admin elevation, idle and absolute timeouts
//! enforced on the server, per-user revocation through a session epoch, and the
//! session-bound CSRF token every form carries.

use super::render::{error_page, PageError};
use crate::auth::tokens;
use crate::domain::now_ms;
use crate::http::state::AppState;
use crate::store::User;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tower_sessions::Session;

const AUTH_KEY: &str = "auth";
const CSRF_KEY: &str = "csrf";
pub const CSRF_FIELD: &str = "csrf_token";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// What a session remembers about its owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionAuth {
    pub user_id: Option<i64>,
    /// The user's session epoch at login; a bump ends the session.
    pub epoch: i64,
    pub admin: bool,
    pub auth_at: i64,
    pub seen_at: i64,
}

/// The request's session state, validated.
pub struct Ctx {
    pub session: Session,
    pub user: Option<User>,
    pub admin: bool,
    pub csrf: String,
    /// Set when the request came from htmx (`HX-Request`).
    pub htmx: bool,
}

/// Set by [`Ctx`] when it had to create the CSRF token of this request's session, that
/// is, when the session was new (or held nothing of ours).
#[derive(Clone, Default)]
pub struct FreshCsrf(Arc<AtomicBool>);

/// Keeps anonymous sessions out of the database unless a page was served that may carry
/// a form (login, register, admin elevation). Without it, every redirect to the login
/// form and every refused request stored a session row, so any client could fill the
/// session table at request rate.
pub async fn drop_unused_sessions(mut req: Request, next: Next) -> Response {
    let fresh = FreshCsrf::default();
    req.extensions_mut().insert(fresh.clone());
    let session = req.extensions().get::<Session>().cloned();
    let resp = next.run(req).await;
    let page = resp.status() == StatusCode::OK
        && !resp.headers().contains_key("hx-redirect")
        && resp
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/html"));
    if fresh.0.load(Ordering::Relaxed) && !page {
        if let Some(session) = session {
            // The token was the session's only content, so the session is left empty
            // and tower-sessions neither stores it nor sets a cookie.
            if let Err(e) = session.remove::<String>(CSRF_KEY).await {
                tracing::warn!(error = %e, "could not drop an unused session token");
            }
        }
    }
    resp
}

fn internal<E: std::fmt::Display>(e: E) -> PageError {
    tracing::error!(error = %e, "session store error");
    PageError::Internal
}

/// Maps a failure to load, change or store the session. The session store is the
/// database, and its `Backend` errors are the database's (sqlx's error, flattened to a
/// string): unreachable, restarting, locked. Those get the same 503 + `Retry-After` as any
/// other request that cannot reach the database, not a 500 (F11). A session that cannot
/// be encoded or decoded is our bug, and stays a 500.
pub(crate) fn session_error(e: tower_sessions::session::Error) -> PageError {
    use tower_sessions::session::Error as E;
    use tower_sessions::session_store::Error as StoreE;
    match e {
        E::Store(StoreE::Backend(msg)) => {
            tracing::warn!(error = %msg, "session store unavailable");
            PageError::Unavailable
        }
        other => internal(other),
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, msg)| internal(msg))?;
        // A history restore (back/forward after a cache miss) replaces the whole body, so
        // it needs the full page even though htmx sends it.
        let htmx = parts.headers.contains_key("hx-request")
            && !parts.headers.contains_key("hx-history-restore-request");
        let now = now_ms();
        let mut user = None;
        let mut admin = false;
        if let Some(mut auth) = session
            .get::<SessionAuth>(AUTH_KEY)
            .await
            .map_err(session_error)?
        {
            let s = &state.settings;
            let idle_ms =
                i64::try_from(s.session_idle_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
            let abs_ms =
                i64::try_from(s.session_absolute_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
            let mut valid = now - auth.seen_at <= idle_ms && now - auth.auth_at <= abs_ms;
            if valid {
                if let Some(id) = auth.user_id {
                    match state.store.user_by_id(id).await? {
                        Some(u) if !u.disabled && u.session_epoch == auth.epoch => user = Some(u),
                        _ => valid = false,
                    }
                }
            }
            if valid {
                admin = auth.admin;
                // Record activity, but not on every request: a write per poll is waste.
                let touch_every = (idle_ms / 4).clamp(1000, 15_000);
                if now - auth.seen_at >= touch_every {
                    auth.seen_at = now;
                    session
                        .insert(AUTH_KEY, &auth)
                        .await
                        .map_err(session_error)?;
                }
            } else {
                tracing::info!("dashboard session ended (timeout or revoked)");
                session.flush().await.map_err(session_error)?;
            }
        }
        let csrf = match session
            .get::<String>(CSRF_KEY)
            .await
            .map_err(session_error)?
        {
            Some(t) => t,
            None => {
                let (t, _) = tokens::generate();
                session.insert(CSRF_KEY, &t).await.map_err(session_error)?;
                if let Some(fresh) = parts.extensions.get::<FreshCsrf>() {
                    fresh.0.store(true, Ordering::Relaxed);
                }
                t
            }
        };
        Ok(Ctx {
            session,
            user,
            admin,
            csrf,
            htmx,
        })
    }
}

impl Ctx {
    /// Logs `user` in (or elevates to admin): a new session id, so a pre-login id an
    /// attacker planted is worthless, and a fresh CSRF token.
    pub async fn establish(&mut self, user: Option<&User>, admin: bool) -> Result<(), PageError> {
        let now = now_ms();
        self.session.cycle_id().await.map_err(session_error)?;
        let auth = SessionAuth {
            user_id: user.map(|u| u.id),
            epoch: user.map_or(0, |u| u.session_epoch),
            admin,
            auth_at: now,
            seen_at: now,
        };
        self.session
            .insert(AUTH_KEY, &auth)
            .await
            .map_err(session_error)?;
        let (t, _) = tokens::generate();
        self.session
            .insert(CSRF_KEY, &t)
            .await
            .map_err(session_error)?;
        self.csrf = t;
        self.user = user.cloned();
        self.admin = admin;
        Ok(())
    }

    /// Deletes the session on the server and expires the cookie.
    pub async fn end(&self) -> Result<(), PageError> {
        self.session.flush().await.map_err(session_error)
    }

    pub fn require_user(&self) -> Result<&User, PageError> {
        self.user
            .as_ref()
            .ok_or(PageError::LoginRequired { htmx: self.htmx })
    }
}

/// The dashboard session of a logged-in user, for the JSON routes that also accept the
/// cookie (`/logs/*`): `None` without such a session. Never creates a session, so token
/// clients get no cookie.
pub async fn logged_in(parts: &mut Parts, state: &AppState) -> Result<Option<Ctx>, PageError> {
    let Some(session) = parts.extensions.get::<Session>().cloned() else {
        return Ok(None);
    };
    if session
        .get::<SessionAuth>(AUTH_KEY)
        .await
        .map_err(session_error)?
        .is_none()
    {
        return Ok(None);
    }
    let ctx = Ctx::from_request_parts(parts, state).await?;
    Ok(ctx.user.is_some().then_some(ctx))
}

/// Whether `presented` is the session's CSRF token (constant time).
pub fn csrf_matches(ctx: &Ctx, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| tokens::secrets_equal(p, &ctx.csrf))
}

/// A form body accepted only with the session's CSRF token (in the `csrf_token` field or
/// the `x-csrf-token` header that htmx sends).
pub struct CsrfForm<T> {
    pub ctx: Ctx,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let ctx = Ctx::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let header = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let req = Request::from_parts(parts, body);
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| error_page(e.status(), "The form could not be read.", &ctx))?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        let presented = pairs
            .iter()
            .find(|(k, _)| k == CSRF_FIELD)
            .map(|(_, v)| v.clone())
            .or(header)
            .unwrap_or_default();
        if !tokens::secrets_equal(&presented, &ctx.csrf) {
            tracing::warn!("dashboard form rejected: CSRF token missing or wrong");
            return Err(error_page(
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this site. Reload the page and try again.",
                &ctx,
            ));
        }
        let form = serde_urlencoded::from_bytes::<T>(&bytes).map_err(|_| {
            error_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "The form was incomplete or malformed.",
                &ctx,
            )
        })?;
        Ok(CsrfForm { ctx, form })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_sessions::session::Error;
    use tower_sessions::session_store::Error as StoreError;

    #[test]
    fn session_store_failures_are_503_and_encoding_bugs_500() {
        // What the sqlx session store makes of any sqlx error (a refused connection, a
        // pool timeout, "terminating connection due to administrator command").
        let backend = Error::Store(StoreError::Backend(
            "pool timed out while waiting for an open connection".into(),
        ));
        assert!(matches!(session_error(backend), PageError::Unavailable));
        for e in [
            Error::Store(StoreError::Decode("bad record".into())),
            Error::Store(StoreError::Encode("bad record".into())),
            Error::SerdeJson(serde_json::from_str::<u8>("x").unwrap_err()),
        ] {
            assert!(matches!(session_error(e), PageError::Internal));
        }
    }
}
