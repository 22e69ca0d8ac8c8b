//! HTTP surface: router, middleware stack and the hardened accept loop.

pub mod api;
pub mod error;
pub mod extract;
pub mod pages;
pub mod server;
pub mod state;

use crate::config::Settings;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use error::error_response;
use state::AppState;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tower_http::trace::TraceLayer;

const CSP: &str = "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Builds the router with every route and the middleware stack.
pub async fn router(state: AppState) -> anyhow::Result<Router> {
    use api::*;
    // The log routes also take the dashboard session (with CSRF checks of their own), so
    // they sit inside the session layer.
    let log_routes = Router::new()
        .route(
            "/logs/analyze",
            post(logs::analyze).layer(upload_layers(&state.settings)),
        )
        .route("/logs/analyses", get(logs::list))
        .route(
            "/logs/analyses/{id}",
            get(logs::get_one).delete(logs::delete),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_writes_on_full_disk,
        ));
    let pages = pages::router(&state, log_routes).await?;
    let settings = state.settings.clone();
    let prom_metrics = state.metrics.clone();
    let ingest_limit = state.settings.ingest_max_body_bytes;
    let router = Router::new()
        .route("/register", post(auth::register))
        .route("/login", post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/password", post(auth::change_password))
        .route("/metrics", get(metrics::metrics))
        .route("/metrics/history", get(metrics::history))
        // Prometheus asks for gzip; a scrape with many hosts is mostly repeated names. The
        // body holds no secret and reflects no input, so compressing it leaks nothing.
        .route(
            "/metrics/prometheus",
            get(prometheus::scrape).layer(tower_http::compression::CompressionLayer::new()),
        )
        .route("/alerts", get(alerts::alerts))
        .route("/summary", get(alerts::summary))
        .route(
            "/thresholds",
            get(thresholds::get_own).post(thresholds::set_own),
        )
        .route(
            "/admin/thresholds",
            get(thresholds::get_global).post(thresholds::set_global),
        )
        .route("/rules", get(rules::list).post(rules::create))
        .route(
            "/rules/{id}",
            get(rules::get).put(rules::replace).delete(rules::delete),
        )
        .route("/channels", get(channels::list).post(channels::create))
        .route(
            "/channels/{id}",
            get(channels::get)
                .put(channels::replace)
                .delete(channels::delete),
        )
        .route("/channels/{id}/test", post(channels::test))
        .route(
            "/channels/{id}/rotate-secret",
            post(channels::rotate_secret),
        )
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/{id}", get(deliveries::get))
        .route("/deliveries/{id}/retry", post(deliveries::retry))
        .route("/hosts", get(hosts::list))
        .route("/admin/hosts", get(hosts::admin_list).post(hosts::create))
        .route("/admin/hosts/{id}", axum::routing::delete(hosts::delete))
        .route("/admin/hosts/{id}/token", post(hosts::rotate_token))
        // Agent batches are bigger than any other JSON body.
        .route(
            "/ingest",
            post(ingest::ingest).layer(DefaultBodyLimit::max(ingest_limit)),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(openapi::openapi_json))
        // The API routes above (the log routes got the same layer before going into the
        // pages router); not the dashboard's pages, whose forms answer a failed write
        // with a page of their own.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_writes_on_full_disk,
        ))
        .merge(pages)
        .fallback(not_found)
        .with_state(state);
    Ok(harden(router, &settings, prom_metrics))
}

/// Refuses API writes (POST, PUT, PATCH) with 503 + `Retry-After` while the SQLite
/// database's filesystem has less than [`api::health::MIN_FREE_DISK_BYTES`] free. Without
/// it, what fails on a full disk depends on where SQLite's WAL happens to have room (a
/// small write can slip into pages a failed big one allocated); with it, every write
/// fails the same way, at once, before a body is read, and SQLite keeps the reserve for
/// rolling back and checkpointing. Deletes and logout pass: they free rows and end
/// sessions, and the reserve is there for them. One `statvfs` call per write request;
/// PostgreSQL's disk cannot be measured from here, so there only SQLSTATE 53100 counts.
async fn refuse_writes_on_full_disk(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    use axum::http::Method;
    let write = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH)
        && req.uri().path() != "/logout";
    if write
        && state
            .store
            .free_disk_bytes()
            .is_some_and(|free| free < api::health::MIN_FREE_DISK_BYTES)
    {
        tracing::warn!(path = %req.uri().path(), "write refused: the database's disk is full");
        return error::ApiError::StorageFull.into_response();
    }
    next.run(req).await
}

/// The layers of an upload route (`/logs/analyze`, the dashboard upload): its own, larger
/// body limit, and a cut-off (408) for a client that stops sending mid-body, which would
/// otherwise hold its connection for the whole analysis timeout.
pub(crate) fn upload_layers(settings: &Settings) -> (DefaultBodyLimit, RequestBodyTimeoutLayer) {
    (
        DefaultBodyLimit::max(usize::try_from(settings.log_upload_max_bytes).unwrap_or(usize::MAX)),
        RequestBodyTimeoutLayer::new(Duration::from_secs(settings.upload_idle_timeout_secs)),
    )
}

/// Wraps a stateless router in the middleware every response goes through: body limit,
/// panic catcher, `{"detail": ...}` errors, request timeouts, tracing with sensitive
/// headers hidden, security headers and request metrics. Public so tests can mount a route
/// that panics or fails behind the very same stack.
pub fn harden(
    router: Router,
    settings: &Settings,
    prom_metrics: Arc<crate::prom::Metrics>,
) -> Router {
    let timeout = Duration::from_secs(settings.request_timeout_secs);
    let analysis_timeout = Duration::from_secs(settings.analysis_timeout_secs);
    let body_limit = settings.max_body_bytes;
    // HSTS only where the operator declared HTTPS (Secure cookies); a plain-HTTP LAN
    // deployment must not be told to pin HTTPS it does not have.
    let hsts = (settings.cookie_secure && settings.hsts_max_age_secs > 0)
        .then(|| HeaderValue::try_from(format!("max-age={}", settings.hsts_max_age_secs)))
        .and_then(Result::ok);
    router
        .layer(DefaultBodyLimit::max(body_limit))
        // Inside the header layers, so a panic's 500 carries the security headers too.
        .layer(CatchPanicLayer::custom(|_| {
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
        }))
        .layer(middleware::from_fn(normalize_errors))
        .layer(middleware::from_fn(move |req: Request<Body>, next| {
            // Log uploads may take minutes; everything else gets the normal limit.
            let path = req.uri().path();
            let upload = path == "/logs/analyze"
                || (path == "/dashboard/logs" && req.method() == axum::http::Method::POST);
            let limit = if upload { analysis_timeout } else { timeout };
            with_timeout(limit, req, next)
        }))
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            HeaderName::from_static("token"),
            HeaderName::from_static("x-admin-token"),
        ]))
        .layer(security_header(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(security_header(header::REFERRER_POLICY, "no-referrer"))
        .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(security_header(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        .layer(security_header(header::CACHE_CONTROL, "no-store"))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            move |_: &Response| hsts.clone(),
        ))
        // Outermost: it sees the final status (timeouts, normalised errors, caught panics)
        // and the whole time spent in the stack.
        .layer(middleware::from_fn_with_state(prom_metrics, record_request))
}

/// Counts every request, with its duration, under its route template for the Prometheus
/// scrape. The template comes from `MatchedPath`, which routing has set by the time
/// `Router::layer` middleware runs. Cheap on purpose: no allocation once a route has been
/// seen.
async fn record_request(
    State(metrics): State<Arc<crate::prom::Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = crate::prom::method_label(req.method().as_str());
    let resp = next.run(req).await;
    metrics.record_request(
        route.as_ref().map(MatchedPath::as_str),
        method,
        resp.status().as_u16(),
        started.elapsed(),
    );
    resp
}

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not found")
}

/// Gives every error response the `{"detail": ...}` shape, including the ones axum and
/// tower produce themselves (405 from method routing, 413 from body limits).
async fn normalize_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    // JSON errors are already ours; HTML errors are the dashboard's own pages.
    let keep = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/html"));
    if keep {
        return resp;
    }
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large",
        StatusCode::NOT_FOUND => "not found",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported media type",
        s => s.canonical_reason().unwrap_or("error"),
    };
    let (parts, _) = resp.into_parts();
    let mut fixed = error_response(status, detail);
    // Keep headers such as `Allow` on 405.
    for (k, v) in parts.headers.iter() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            fixed.headers_mut().insert(k.clone(), v.clone());
        }
    }
    fixed
}

/// Bounds a handler's run time; the client gets a 503 it may retry.
async fn with_timeout(limit: Duration, req: Request<Body>, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!("request timed out after {limit:?}");
            error::ApiError::Unavailable.into_response()
        }
    }
}
