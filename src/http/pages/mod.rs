//! The dashboard: server-rendered pages under `/dashboard` (Askama + htmx), cookie
//! sessions in the database, CSRF-protected forms, embedded static assets.

pub mod admin;
pub mod alerts;
pub mod auth;
pub mod channels;
pub mod deliveries;
pub mod hosts;
pub mod logs;
pub mod overview;
pub mod render;
pub mod rules;
pub mod session;
pub mod settings;

use crate::http::state::AppState;
use crate::store::SessionPool;
use axum::extract::{Path, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::compression::Predicate as _;
use tower_sessions::cookie::SameSite;
use tower_sessions::{ExpiredDeletion, Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// Marks a page response as safe to compress: it carries no secret (no CSRF token) and
/// reflects no client input, so BREACH-style attacks have nothing to recover. Full pages
/// carry the CSRF token and stay uncompressed.
pub const COMPRESSIBLE: &str = "x-watchpost-compressible";

#[derive(Clone, Copy)]
struct MarkedCompressible;

impl tower_http::compression::Predicate for MarkedCompressible {
    fn should_compress<B: http_body::Body>(&self, response: &axum::http::Response<B>) -> bool {
        response.headers().contains_key(COMPRESSIBLE)
    }
}

/// Assets compiled into the binary.
#[derive(rust_embed::Embed)]
#[folder = "static/"]
struct Assets;

/// The dashboard routes, with the session layer of the active engine. `api` holds the
/// JSON routes that also accept a dashboard session (they do their own CSRF checks and
/// answer JSON errors, so they skip the HTML same-origin layer).
pub async fn router(state: &AppState, api: Router<AppState>) -> anyhow::Result<Router<AppState>> {
    let routes = Router::new()
        .route("/", get(|| async { Redirect::to("/dashboard") }))
        .route("/dashboard", get(overview::overview))
        .route("/dashboard/", get(|| async { Redirect::to("/dashboard") }))
        .route("/dashboard/login", get(auth::login_form).post(auth::login))
        .route(
            "/dashboard/register",
            get(auth::register_form).post(auth::register),
        )
        .route("/dashboard/logout", post(auth::logout))
        .route(
            "/dashboard/password",
            get(auth::password_form).post(auth::change_password),
        )
        .route("/dashboard/alerts", get(alerts::alerts))
        .route(
            "/dashboard/thresholds",
            get(settings::thresholds).post(settings::save_thresholds),
        )
        .route(
            "/dashboard/tokens",
            get(settings::tokens_list).post(settings::create_token),
        )
        .route("/dashboard/tokens/revoke", post(settings::revoke_token))
        .route("/dashboard/rules", get(rules::rules))
        .route(
            "/dashboard/rules/new",
            get(rules::new_rule).post(rules::create_rule),
        )
        .route(
            "/dashboard/rules/{id}",
            get(rules::edit_rule).post(rules::update_rule),
        )
        .route("/dashboard/rules/{id}/delete", post(rules::delete_rule))
        .route(
            "/dashboard/channels",
            get(channels::channels).post(channels::create_channel),
        )
        .route(
            "/dashboard/channels/{id}/{action}",
            post(channels::channel_action),
        )
        .route("/dashboard/deliveries", get(deliveries::deliveries))
        .route("/dashboard/deliveries/{id}/retry", post(deliveries::retry))
        .route(
            "/dashboard/logs",
            get(logs::logs)
                .post(logs::upload)
                .layer(crate::http::upload_layers(&state.settings)),
        )
        .route("/dashboard/logs/{id}", get(logs::report))
        .route("/dashboard/logs/{id}/delete", post(logs::delete))
        .route("/dashboard/admin", get(admin::admin).post(admin::elevate))
        .route(
            "/dashboard/admin.html",
            get(|| async { Redirect::permanent("/dashboard/admin") }),
        )
        .route("/dashboard/admin/thresholds", post(admin::save_global))
        .route(
            "/dashboard/admin/users/{id}/{action}",
            post(admin::user_action),
        )
        .route(
            "/dashboard/admin/hosts",
            get(hosts::hosts).post(hosts::create),
        )
        .route(
            "/dashboard/admin/hosts/{id}/{action}",
            post(hosts::host_action),
        )
        .route(
            "/dashboard/{*rest}",
            get(auth::not_found).post(auth::not_found),
        )
        .layer(
            tower_http::compression::CompressionLayer::new().compress_when(
                tower_http::compression::predicate::SizeAbove::new(1024).and(MarkedCompressible),
            ),
        )
        .layer(axum::middleware::from_fn(same_origin_only))
        .merge(api)
        // Inside the session layer, which it needs to see the request's session.
        .layer(axum::middleware::from_fn(session::drop_unused_sessions));

    let s = &state.settings;
    let idle = time::Duration::seconds(i64::try_from(s.session_idle_secs).unwrap_or(i64::MAX));
    // `__Host-` makes browsers refuse the cookie unless it is Secure, host-only and
    // path=/, so it is only used when the cookie is Secure.
    let name = if s.cookie_secure {
        "__Host-watchpost"
    } else {
        "watchpost_session"
    };
    macro_rules! with_sessions {
        ($store:expr, $pool:expr) => {{
            let store = $store;
            store.migrate().await?;
            // Expired rows are never loaded (the store filters on expiry) but would pile
            // up; the task ends by itself once the pool is closed at shutdown.
            let pool = $pool;
            tokio::spawn(delete_expired_sessions(
                store.clone(),
                SESSION_SWEEP,
                move || pool.is_closed(),
            ));
            let layer = SessionManagerLayer::new(store)
                .with_name(name)
                .with_secure(s.cookie_secure)
                .with_http_only(true)
                .with_same_site(SameSite::Lax)
                .with_path("/")
                .with_expiry(Expiry::OnInactivity(idle));
            routes
                .layer(layer)
                .layer(axum::middleware::from_fn(session_save_failed))
        }};
    }
    let routes = match state.store.session_pool() {
        SessionPool::Sqlite(pool) => with_sessions!(SqliteStore::new(pool.clone()), pool),
        SessionPool::Postgres(pool) => with_sessions!(PostgresStore::new(pool.clone()), pool),
    };
    // Only static assets are compressed: compressing pages that carry the CSRF token next
    // to reflected input would invite BREACH-style attacks.
    let assets = Router::new()
        .route("/static/{*path}", get(asset))
        .layer(tower_http::compression::CompressionLayer::new());
    Ok(routes.merge(assets))
}

/// How often expired dashboard sessions are deleted.
const SESSION_SWEEP: std::time::Duration = std::time::Duration::from_secs(600);

/// Deletes expired sessions every `period` until `closed()` says the pool is gone (at
/// shutdown). tower-sessions' own `continuously_delete_expired` returns at its first
/// error, so one sweep that met a database restart (F11) would end the sweeping for the
/// life of the process; here a failed sweep is logged and the next one runs on time.
pub(crate) async fn delete_expired_sessions<S: ExpiredDeletion>(
    store: S,
    period: std::time::Duration,
    closed: impl Fn() -> bool,
) {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // The first tick completes at once: a sweep at start-up, then one per period.
        interval.tick().await;
        if closed() {
            break;
        }
        if let Err(e) = store.delete_expired().await {
            tracing::warn!(error = %e, "deleting expired sessions failed; retrying in {period:?}");
        }
    }
}

/// tower-sessions answers a session it could not save (the database went away between
/// the handler and the end of the request) with a bare 500: no body, no content type.
/// No handler under the session layer answers like that (their errors are pages or
/// JSON), so such a response is the session store's, whose failures are the database's:
/// 503 + `Retry-After` like any other request that cannot reach it (F11), not a 500 —
/// an error page on the dashboard, `{"detail"}` on the JSON routes that share the
/// session (`/logs/*`). The cause is logged by tower-sessions ("failed to save session").
async fn session_save_failed(req: Request, next: Next) -> Response {
    let page = req.uri().path().starts_with("/dashboard");
    let resp = next.run(req).await;
    if resp.status() == StatusCode::INTERNAL_SERVER_ERROR
        && !resp.headers().contains_key(header::CONTENT_TYPE)
    {
        return if page {
            render::PageError::Unavailable.into_response()
        } else {
            crate::http::error::ApiError::Unavailable.into_response()
        };
    }
    resp
}

/// Serves an embedded asset. Vendored files carry their version in the name and may be
/// cached for a year; our own CSS and JS for an hour.
async fn asset(Path(path): Path<String>) -> Response {
    let Some(file) = Assets::get(&path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mime = file.metadata.mimetype();
    let cache = if path.starts_with("vendor/") {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=3600"
    };
    // Embedded assets are borrowed from the binary: no copy per request.
    let body = match file.data {
        std::borrow::Cow::Borrowed(b) => axum::body::Body::from(b),
        std::borrow::Cow::Owned(v) => axum::body::Body::from(v),
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

/// Refuses state-changing requests that a browser marks as coming from another site
/// (`Sec-Fetch-Site`) or whose `Origin` is not this host. Requests without either header
/// (non-browser clients) pass; the form's CSRF token still has to match.
async fn same_origin_only(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    if same_origin(req.headers()) {
        next.run(req).await
    } else {
        tracing::warn!(path = %req.uri().path(), "cross-site dashboard request refused");
        let mut r = render::plain_error(StatusCode::FORBIDDEN);
        *r.status_mut() = StatusCode::FORBIDDEN;
        r
    }
}

/// False when a browser marks the request as coming from another site (`Sec-Fetch-Site`)
/// or its `Origin` is not this host; requests with neither header pass.
pub fn same_origin(headers: &axum::http::HeaderMap) -> bool {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => matches!(site, "same-origin" | "none"),
        None => match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            Some(origin) => {
                let host = headers
                    .get(header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let authority = origin.split_once("://").map_or("", |(_, a)| a);
                !host.is_empty() && authority.eq_ignore_ascii_case(host)
            }
            None => true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tower::ServiceExt;
    use tower_sessions::session::{Id, Record};
    use tower_sessions::session_store::{Error as StoreError, Result as StoreResult};
    use tower_sessions::SessionStore;

    /// A session store whose sweeps fail the first `failures` times.
    #[derive(Debug, Clone)]
    struct FlakyStore {
        sweeps: Arc<AtomicUsize>,
        failures: usize,
    }

    #[async_trait::async_trait]
    impl SessionStore for FlakyStore {
        async fn save(&self, _: &Record) -> StoreResult<()> {
            Ok(())
        }
        async fn load(&self, _: &Id) -> StoreResult<Option<Record>> {
            Ok(None)
        }
        async fn delete(&self, _: &Id) -> StoreResult<()> {
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl ExpiredDeletion for FlakyStore {
        async fn delete_expired(&self) -> StoreResult<()> {
            if self.sweeps.fetch_add(1, Ordering::SeqCst) < self.failures {
                Err(StoreError::Backend("connection refused".into()))
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test]
    async fn session_sweeps_go_on_after_a_failed_one_and_stop_when_the_pool_closes() {
        let sweeps = Arc::new(AtomicUsize::new(0));
        let store = FlakyStore {
            sweeps: sweeps.clone(),
            failures: 2,
        };
        let seen = sweeps.clone();
        // "Closed" once five sweeps ran: two failed, three more came after them.
        let task = tokio::spawn(delete_expired_sessions(
            store,
            std::time::Duration::from_millis(5),
            move || seen.load(Ordering::SeqCst) >= 5,
        ));
        tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .expect("the sweeper stops once the pool is closed")
            .expect("sweeper task");
        assert_eq!(sweeps.load(Ordering::SeqCst), 5);
    }

    async fn through_session_guard(path: &str, resp: fn() -> Response) -> Response {
        let app: Router = Router::new()
            .route(path, get(move || async move { resp() }))
            .layer(axum::middleware::from_fn(session_save_failed));
        app.oneshot(
            Request::builder()
                .uri(path)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap()
    }

    fn content_type(r: &Response) -> &str {
        r.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn a_session_that_could_not_be_saved_is_a_503_not_a_500() {
        // tower-sessions' answer when saving fails: `Response::default()` with a 500.
        fn bare_500() -> Response {
            let mut r = Response::default();
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
        let page = through_session_guard("/dashboard/login", bare_500).await;
        assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(page.headers()[header::RETRY_AFTER], "5");
        assert!(content_type(&page).starts_with("text/html"), "{page:?}");
        let api = through_session_guard("/logs/analyses", bare_500).await;
        assert_eq!(api.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(api.headers()[header::RETRY_AFTER], "5");
        assert!(
            content_type(&api).starts_with("application/json"),
            "{api:?}"
        );

        // A handler's own 500 (it has a body and a type) is left alone.
        let own =
            through_session_guard("/dashboard", || render::PageError::Internal.into_response())
                .await;
        assert_eq!(own.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(content_type(&own).starts_with("text/html"));
        let ok = through_session_guard("/dashboard", || "fine".into_response()).await;
        assert_eq!(ok.status(), StatusCode::OK);
    }
}
