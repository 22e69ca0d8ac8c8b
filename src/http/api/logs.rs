//! `POST /logs/analyze`: the original `{"logs": "..."}` body, a raw upload (text or gzip)
//! or a multipart form with a `file` field. Raw and multipart uploads are streamed into
//! the analyzer, which runs off the async workers (a blocking-pool thread decodes and merges,
//! analysis threads take one of a few shared CPU slots per block), so a burst of uploads
//! never stalls other requests. Every analysis is stored for its user (the report, not the
//! log): `/logs/analyses` lists, shows and deletes them. These routes take an API token or
//! the dashboard session (with its CSRF token); the dashboard's upload form shares the same
//! streaming path.

use crate::analyze_cli::default_threads;
use crate::analyze_cli::json as report_json;
use crate::auth::tokens;
use crate::domain::{format_rfc3339, now_ms};
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::{ApiQuery, ApiUser};
use crate::http::pages::render::PageError;
use crate::http::pages::session::{self, CSRF_FIELD, CSRF_HEADER};
use crate::http::state::AppState;
use crate::logs::{AnalyzeError, AnalyzerConfig, Gate, ParallelAnalyzer, Report};
use crate::store::{AnalysisInsert, LogAnalysis, LogAnalysisMeta, NewLogAnalysis, User};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Multipart, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::Json;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa::{IntoParams, ToSchema};

/// The original body: the log text inline.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsBody {
    /// The log text.
    pub logs: String,
}

/// Chunks queued between the upload and the analysis.
const QUEUE: usize = 8;

enum Kind {
    Json,
    Raw,
    Multipart,
}

fn kind(req: &Request) -> Result<Kind, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    match essence {
        "application/json" => Ok(Kind::Json),
        "text/plain" | "application/octet-stream" | "application/gzip" | "application/x-gzip" => {
            Ok(Kind::Raw)
        }
        "multipart/form-data" => Ok(Kind::Multipart),
        _ => Err(ApiError::UnsupportedMediaType(
            "send application/json {\"logs\": \"...\"}, a raw text/plain, application/octet-stream or application/gzip body, or multipart/form-data with a file field".into(),
        )),
    }
}

fn analyze_error(e: AnalyzeError) -> ApiError {
    match e {
        AnalyzeError::TooLarge(_) | AnalyzeError::Bomb(_) => {
            ApiError::PayloadTooLarge(e.to_string())
        }
        AnalyzeError::Corrupt(_) => ApiError::Validation(e.to_string()),
    }
}

/// Whether a body read failed because the client paused for longer than the upload idle
/// timeout (`RequestBodyTimeoutLayer`, possibly wrapped by the multipart parser).
fn body_timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cur = err.source();
    }
    false
}

fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!("the upload is larger than {limit} bytes"))
}

/// Longest stored name (a file name is cut, not refused).
pub const NAME_MAX_CHARS: usize = 255;

/// The caller of the `/logs` routes: an API token user, or a logged-in dashboard session.
pub struct LogsCaller {
    pub user: User,
    /// For a session that did not send its CSRF token in `x-csrf-token`: the token a
    /// multipart upload must carry in a `csrf_token` field before the file.
    pub pending_csrf: Option<String>,
}

fn csrf_refused() -> ApiError {
    ApiError::Forbidden(
        "CSRF token missing or wrong: send the dashboard's token in the x-csrf-token header",
    )
}

impl FromRequestParts<AppState> for LogsCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // A token, when presented, decides alone (and a bad one is never rescued by a cookie).
        if parts.headers.contains_key("token") || parts.headers.contains_key(header::AUTHORIZATION)
        {
            let user = ApiUser::from_request_parts(parts, state).await?.user;
            return Ok(LogsCaller {
                user,
                pending_csrf: None,
            });
        }
        let ctx = match session::logged_in(parts, state).await {
            Ok(Some(ctx)) => ctx,
            Ok(None) => return Err(ApiError::Unauthorized("missing token")),
            Err(PageError::Unavailable) => return Err(ApiError::Unavailable),
            Err(_) => return Err(ApiError::Internal),
        };
        let Some(user) = ctx.user.clone() else {
            return Err(ApiError::Unauthorized("missing token"));
        };
        if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(LogsCaller {
                user,
                pending_csrf: None,
            });
        }
        // The cookie rides along on cross-site requests too: the same checks as the forms.
        if !crate::http::pages::same_origin(&parts.headers) {
            tracing::warn!(path = %parts.uri.path(), "cross-site request with a session refused");
            return Err(ApiError::Forbidden("cross-site request refused"));
        }
        let presented = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        let pending_csrf = if session::csrf_matches(&ctx, presented) {
            None
        } else {
            Some(ctx.csrf.clone())
        };
        Ok(LogsCaller { user, pending_csrf })
    }
}

/// Analyse logs and store the analysis. Answers the original `counts` (level → lines, the
/// original level names as well as the normalised ones) and `top_errors` (error
/// templates, most frequent first), plus `analysis_id` (see `/logs/analyses/{id}`),
/// `lines`, `bytes`, `formats`, `levels`, `patterns`, `histogram`, `time_range`,
/// `truncated_lines` and `elapsed_ms`. A multipart form may carry the log as a `file`
/// (streamed) or as a `logs` text field. With the dashboard session instead of a token,
/// the session's CSRF token is required (`x-csrf-token` header, or a `csrf_token` form
/// field before the file) and cross-site requests are refused. An `Idempotency-Key`
/// header makes a retry safe: the first analysis stored under the key is answered again
/// instead of storing a second one.
#[utoipa::path(post, path = "/logs/analyze", tag = "logs",
    request_body(content(
        (LogsBody = "application/json"),
        (String = "text/plain"),
        (Vec<u8> = "application/octet-stream"),
        (Vec<u8> = "application/gzip"),
    )),
    params(
        ("Idempotency-Key" = Option<String>, Header, max_length = 255,
            description = "1–255 printable ASCII characters (bare, or in double quotes as a structured-field string) naming this upload. Sending the same key again (a retry after a timeout) stores nothing new and answers the analysis first stored under it, same `analysis_id` and report, with `idempotent-replayed: true`; the same key with a different log is a 422. Keys are per user and are freed when their analysis is deleted."),
    ),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The report, with the id it is stored under", body = Object,
            headers(("idempotent-replayed" = String, description = "`true` when an analysis stored earlier under the same Idempotency-Key is answered again (absent otherwise)"))),
        (status = 400, description = "Malformed or repeated Idempotency-Key header", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Session without its CSRF token, or a cross-site request", body = ErrorBody),
        (status = 408, description = "The client stopped sending the body for longer than the upload idle timeout", body = ErrorBody),
        (status = 413, description = "Upload larger than the limit, or a gzip bomb", body = ErrorBody),
        (status = 415, description = "Unsupported content type", body = ErrorBody),
        (status = 422, description = "Malformed JSON (or a field other than `logs`), missing file field or corrupt gzip; or an `Idempotency-Key` already used for a different log", body = ErrorBody),
        (status = 503, description = "Database unavailable or its disk full; nothing was stored, retry after `Retry-After` seconds", body = ErrorBody,
            headers(("retry-after" = String, description = "Seconds to wait"))),
    ))]
pub async fn analyze(
    State(state): State<AppState>,
    caller: LogsCaller,
    req: Request,
) -> Result<(HeaderMap, Json<serde_json::Value>), ApiError> {
    let started = Instant::now();
    // Checked before the body is read: a bad key is refused without analysing anything.
    let key = idempotency_key(req.headers())?;
    let analysed = analyze_request(&state, req, caller.pending_csrf.as_deref()).await?;
    let stored = store_analysis(
        &state,
        caller.user.id,
        &analysed,
        started.elapsed(),
        key.as_deref(),
    )
    .await?;
    let mut headers = HeaderMap::new();
    if stored.replayed {
        headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    Ok((headers, Json(stored.doc)))
}

/// The request header naming an upload for retries (IETF draft
/// `draft-ietf-httpapi-idempotency-key-header`).
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Set (`true`) on an answer that replays an analysis stored by an earlier request.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest idempotency key, in characters.
pub const IDEMPOTENCY_KEY_MAX: usize = 255;

/// The request's `Idempotency-Key`: 1–255 printable ASCII characters, bare or as the
/// draft's structured-field string (in double quotes, which are not part of the key).
/// Absent: `None`; present but malformed, or sent twice: 400.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = |why: &str| {
        ApiError::BadRequest(format!(
            "Idempotency-Key {why}: send 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters, once"
        ))
    };
    if values.next().is_some() {
        return Err(bad("was sent more than once"));
    }
    let raw = value.as_bytes();
    let inner = match raw {
        [b'"', inner @ .., b'"'] => inner,
        _ => raw,
    };
    if inner.is_empty() {
        return Err(bad("is empty"));
    }
    if inner.len() > IDEMPOTENCY_KEY_MAX {
        return Err(bad("is too long"));
    }
    if !inner.iter().all(|b| (0x20..=0x7e).contains(b)) {
        return Err(bad("has characters other than printable ASCII"));
    }
    // Printable ASCII is UTF-8.
    String::from_utf8(inner.to_vec())
        .map(Some)
        .map_err(|_| bad("has characters other than printable ASCII"))
}

/// A finished analysis and where it came from.
pub struct Analysed {
    pub report: Report,
    /// The file name, `pasted text` or `upload`.
    pub name: String,
    /// `json`, `raw`, `file` or `text`.
    pub source: &'static str,
    /// SHA-256 (hex) of the log as it was fed to the analyzer (the bytes received, before
    /// any gunzip): tells a retry of the same upload from another upload under its key.
    pub body_sha256: String,
}

/// A stored (or replayed) analysis.
pub struct StoredAnalysis {
    pub id: i64,
    /// The API document: the report JSON with `analysis_id`.
    pub doc: serde_json::Value,
    /// An analysis stored earlier under the same idempotency key was returned.
    pub replayed: bool,
}

/// Stores an analysis for `user_id`. With an idempotency key that the user already
/// stored an analysis under, nothing new is stored and that analysis comes back
/// (`replayed`), provided it was made from the same log (else 422).
pub async fn store_analysis(
    state: &AppState,
    user_id: i64,
    a: &Analysed,
    elapsed: Duration,
    idempotency_key: Option<&str>,
) -> Result<StoredAnalysis, ApiError> {
    let mut doc = report_json(&a.report, elapsed);
    let levels: BTreeMap<&str, u64> = a
        .report
        .levels
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, v)| (*k, *v))
        .collect();
    let errors = ["ERROR", "CRITICAL"]
        .iter()
        .filter_map(|l| a.report.levels.get(l))
        .sum::<u64>();
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let row = NewLogAnalysis {
        user_id,
        created_at: now_ms(),
        name: a.name.clone(),
        source: a.source.to_owned(),
        bytes: clamp(a.report.bytes),
        lines: clamp(a.report.lines),
        errors: clamp(errors),
        levels: serde_json::to_string(&levels).map_err(|_| ApiError::Internal)?,
        report: serde_json::to_string(&doc).map_err(|_| ApiError::Internal)?,
        idempotency_key: idempotency_key.map(str::to_owned),
        body_sha256: idempotency_key.map(|_| a.body_sha256.clone()),
    };
    let (id, replayed) = match state.store.insert_log_analysis(&row).await? {
        AnalysisInsert::Stored(id) => {
            let keep = i64::try_from(state.settings.log_analyses_per_user).unwrap_or(i64::MAX);
            let pruned = state.store.prune_log_analyses(user_id, keep.max(1)).await?;
            if pruned > 0 {
                tracing::info!(
                    user_id,
                    pruned,
                    "oldest stored analyses deleted (per-user limit)"
                );
            }
            (id, false)
        }
        AnalysisInsert::Existing(existing) => {
            if existing.body_sha256.as_deref() != Some(a.body_sha256.as_str()) {
                return Err(ApiError::Validation(
                    "this Idempotency-Key was already used for a different log; use a new key for a new upload".into(),
                ));
            }
            // The first answer, not this run's: same report, same elapsed_ms.
            doc = serde_json::from_str(&existing.report).map_err(|_| ApiError::Internal)?;
            (existing.id, true)
        }
    };
    if let Some(obj) = doc.as_object_mut() {
        obj.insert("analysis_id".into(), id.into());
    }
    tracing::info!(
        user_id,
        analysis_id = id,
        replayed,
        lines = a.report.lines,
        bytes = a.report.bytes,
        ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "logs analysed and stored"
    );
    Ok(StoredAnalysis { id, doc, replayed })
}

/// A stored analysis as lists show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalysisOut {
    pub id: i64,
    /// The uploaded file's name, `pasted text` or `upload`.
    pub name: String,
    /// `json`, `raw`, `file` or `text`.
    pub source: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub bytes: i64,
    pub lines: i64,
    /// ERROR and CRITICAL lines.
    pub errors: i64,
    /// Non-zero level counts.
    #[schema(value_type = Object)]
    pub levels: BTreeMap<String, i64>,
}

impl From<LogAnalysisMeta> for AnalysisOut {
    fn from(m: LogAnalysisMeta) -> Self {
        Self {
            levels: serde_json::from_str(&m.levels).unwrap_or_default(),
            id: m.id,
            name: m.name,
            source: m.source,
            created_at: format_rfc3339(m.created_at),
            bytes: m.bytes,
            lines: m.lines,
            errors: m.errors,
        }
    }
}

/// A stored analysis with its report.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalysisDetail {
    #[serde(flatten)]
    pub analysis: AnalysisOut,
    /// The document `POST /logs/analyze` answered.
    #[schema(value_type = Object)]
    pub report: serde_json::Value,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AnalysesQuery {
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// Your stored log analyses, newest first; the total is in the `x-total-count` header.
#[utoipa::path(get, path = "/logs/analyses", tag = "logs", params(AnalysesQuery),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Analyses without their reports", body = Vec<AnalysisOut>,
            headers(("x-total-count" = i64, description = "All your analyses"))),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 422, description = "Invalid limit or offset", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: LogsCaller,
    ApiQuery(q): ApiQuery<AnalysesQuery>,
) -> Result<(HeaderMap, Json<Vec<AnalysisOut>>), ApiError> {
    let (limit, offset) = super::page_bounds(q.limit, q.offset)?;
    let (rows, total) = state
        .store
        .list_log_analyses(caller.user.id, limit, offset)
        .await?;
    let mut headers = HeaderMap::new();
    headers.insert("x-total-count", HeaderValue::from(total));
    Ok((
        headers,
        Json(rows.into_iter().map(AnalysisOut::from).collect()),
    ))
}

/// One of your analyses, or 404.
pub async fn own_analysis(
    state: &AppState,
    user_id: i64,
    id: i64,
) -> Result<LogAnalysis, ApiError> {
    state
        .store
        .log_analysis(id, user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("analysis not found".into()))
}

/// One of your stored analyses with its report.
#[utoipa::path(get, path = "/logs/analyses/{id}", tag = "logs",
    params(("id" = i64, Path, description = "Analysis id")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The analysis", body = AnalysisDetail),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 404, description = "No such analysis of yours", body = ErrorBody),
    ))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: LogsCaller,
    Path(id): Path<i64>,
) -> Result<Json<AnalysisDetail>, ApiError> {
    let a = own_analysis(&state, caller.user.id, id).await?;
    let report = serde_json::from_str(&a.report).unwrap_or(serde_json::Value::Null);
    Ok(Json(AnalysisDetail {
        analysis: a.meta.into(),
        report,
    }))
}

/// Delete one of your stored analyses.
#[utoipa::path(delete, path = "/logs/analyses/{id}", tag = "logs",
    params(("id" = i64, Path, description = "Analysis id")),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id", body = ErrorBody),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 403, description = "Session without its CSRF token, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such analysis of yours", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: LogsCaller,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if caller.pending_csrf.is_some() {
        return Err(csrf_refused());
    }
    if !state.store.delete_log_analysis(id, caller.user.id).await? {
        return Err(ApiError::NotFound("analysis not found".into()));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Streams the request into an analysis and returns its report.
pub async fn run(state: &AppState, req: Request) -> Result<Report, ApiError> {
    analyze_request(state, req, None).await.map(|a| a.report)
}

/// Streams the request into an analysis. `csrf`: the session's CSRF token that a
/// multipart form must carry in a `csrf_token` field before its log (checked before
/// the file is read); other bodies are refused outright when it is required.
pub async fn analyze_request(
    state: &AppState,
    req: Request,
    csrf: Option<&str>,
) -> Result<Analysed, ApiError> {
    let kind = kind(&req)?;
    if csrf.is_some() && !matches!(kind, Kind::Multipart) {
        return Err(csrf_refused());
    }
    let limit = state.settings.log_upload_max_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let cfg = AnalyzerConfig::default();
    let threads = default_threads().min(state.settings.analysis_concurrency.max(1));
    let slots = state.analysis_slots.clone();
    let runtime = tokio::runtime::Handle::current();
    // Workers take a slot of the shared CPU semaphore per block, so all uploads together
    // use at most `analysis_concurrency` cores, and a slow client holds none while it sends.
    let gate: Gate = Arc::new(move || -> Box<dyn Any> {
        Box::new(runtime.block_on(slots.clone().acquire_owned()).ok())
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUE);
    let worker = tokio::task::spawn_blocking(move || {
        let mut analyzer = ParallelAnalyzer::new(cfg, threads, Some(gate));
        let mut digest = Sha256::new();
        while let Some(chunk) = rx.blocking_recv() {
            digest.update(&chunk);
            analyzer.feed(&chunk)?;
        }
        analyzer
            .finish()
            .map(|r| (r, hex::encode(digest.finalize())))
    });
    let fed = feed(
        kind,
        req,
        limit,
        state.settings.log_json_max_bytes,
        csrf,
        &tx,
    )
    .await;
    drop(tx);
    let outcome = worker.await.map_err(|_| ApiError::Internal)?;
    match (fed, outcome) {
        // A refused CSRF token stays the answer whatever the analyzer made of nothing.
        (Err(e @ ApiError::Forbidden(_)), _) => Err(e),
        // So does a stalled client: whatever the analyzer made of the part it got.
        (Err(e @ ApiError::RequestTimeout), _) => Err(e),
        // The analyzer's own verdict (a zip bomb, corrupt gzip) explains a cut-off upload.
        (_, Err(e)) => Err(analyze_error(e)),
        (Err(e), Ok(_)) => Err(e),
        (Ok((name, source)), Ok((report, body_sha256))) => Ok(Analysed {
            report,
            name,
            source,
            body_sha256,
        }),
    }
}

/// A display name from an uploaded file's name: the last path segment, control characters
/// dropped, at most [`NAME_MAX_CHARS`] characters; `fallback` when nothing is left.
pub fn clean_name(raw: &str, fallback: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let name: String = base
        .chars()
        .filter(|c| !c.is_control())
        .take(NAME_MAX_CHARS)
        .collect();
    let name = name.trim();
    if name.is_empty() {
        fallback.to_owned()
    } else {
        name.to_owned()
    }
}

/// Streams the body of `kind` into `tx`; returns the display name and source kind.
/// `json_max` bounds the bodies held in memory (a JSON body, a pasted form field).
async fn feed(
    kind: Kind,
    req: Request,
    limit: u64,
    json_max: usize,
    csrf: Option<&str>,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) -> Result<(String, &'static str), ApiError> {
    match kind {
        Kind::Json => feed_json(req, json_max, tx)
            .await
            .map(|()| ("pasted text".to_owned(), "json")),
        Kind::Raw => feed_stream(req.into_body(), limit, tx)
            .await
            .map(|()| ("upload".to_owned(), "raw")),
        Kind::Multipart => feed_multipart(req, limit, json_max, csrf, tx).await,
    }
}

/// Sends chunks on; `Ok(false)` when the analysis stopped listening (it failed).
async fn send(tx: &tokio::sync::mpsc::Sender<Bytes>, chunk: Bytes) -> bool {
    chunk.is_empty() || tx.send(chunk).await.is_ok()
}

async fn feed_stream(
    mut body: Body,
    limit: u64,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) -> Result<(), ApiError> {
    let mut received: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            if body_timed_out(&e) {
                ApiError::RequestTimeout
            } else {
                ApiError::BadRequest("the upload was interrupted".into())
            }
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len() as u64;
        if received > limit {
            return Err(too_large(limit));
        }
        if !send(tx, data).await {
            break;
        }
    }
    Ok(())
}

/// The first non-empty `file` field is streamed; a `logs` text field (the dashboard's
/// "paste" box) is used when no file has content. Returns the name and source kind.
/// `paste_max` bounds a pasted `logs` field (it is held in memory).
async fn feed_multipart(
    req: Request,
    limit: u64,
    paste_max: usize,
    csrf: Option<&str>,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) -> Result<(String, &'static str), ApiError> {
    // The extractor needs no state; `()` keeps this function free of the app's, so the
    // fuzz target and property tests run exactly this code.
    let mut form = Multipart::from_request(req, &()).await.map_err(|e| {
        ApiError::Validation(format!("malformed multipart body: {}", e.body_text()))
    })?;
    let mut received: u64 = 0;
    let mut csrf_ok = csrf.is_none();
    let mut empty_file: Option<String> = None;
    let mut pasted: Option<Vec<u8>> = None;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| multipart_error(&e, limit))?
    {
        match field.name() {
            Some(CSRF_FIELD) => {
                if let Some(expected) = csrf {
                    let presented = read_small(&mut field, limit).await?;
                    csrf_ok |= presented
                        .as_deref()
                        .is_some_and(|p| tokens::secrets_equal(p, expected));
                }
            }
            Some("file") => {
                // Nothing of the log is read before the token is checked.
                if !csrf_ok {
                    return Err(csrf_refused());
                }
                let name = clean_name(field.file_name().unwrap_or(""), "upload");
                let mut any = false;
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| multipart_error(&e, limit))?
                {
                    any |= !chunk.is_empty();
                    received += chunk.len() as u64;
                    if received > limit {
                        return Err(too_large(limit));
                    }
                    if !send(tx, chunk).await {
                        return Ok((name, "file"));
                    }
                }
                if any {
                    return Ok((name, "file"));
                }
                empty_file.get_or_insert(name);
            }
            Some("logs") => {
                if !csrf_ok {
                    return Err(csrf_refused());
                }
                // Held until the end of the form: a file with content wins.
                let mut buf = Vec::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| multipart_error(&e, limit))?
                {
                    if buf.len() + chunk.len() > paste_max {
                        return Err(ApiError::PayloadTooLarge(format!(
                            "pasted text is limited to {paste_max} bytes; upload large logs as a file"
                        )));
                    }
                    buf.extend_from_slice(&chunk);
                }
                if pasted.is_none() && !buf.is_empty() {
                    pasted = Some(buf);
                }
            }
            _ => {}
        }
    }
    if let Some(text) = pasted {
        send(tx, Bytes::from(text)).await;
        return Ok(("pasted text".to_owned(), "text"));
    }
    match empty_file {
        Some(name) => Ok((name, "file")),
        None if !csrf_ok => Err(csrf_refused()),
        None => Err(ApiError::Validation("the form has no file field".into())),
    }
}

/// What an upload body of `content_type` would feed the analyzer, through the very code
/// `POST /logs/analyze` runs (`feed`), without a server: the bytes
/// passed on, and the name and source kind or the refusal. For the `multipart` fuzz
/// target and the property tests.
pub async fn parse_upload(
    content_type: &str,
    body: Bytes,
    limit: u64,
    paste_max: usize,
    csrf: Option<&str>,
) -> (Result<(String, &'static str), ApiError>, Vec<u8>) {
    let mut req = Request::new(Body::from(body));
    match HeaderValue::from_str(content_type) {
        Ok(v) => {
            req.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        Err(_) => return (Err(ApiError::BadRequest("content type".into())), Vec::new()),
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUE);
    let collect = async move {
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.extend_from_slice(&chunk);
        }
        out
    };
    let feed = async move {
        let fed = match kind(&req) {
            // As in `analyze_request`: a session's upload must be a form with the token.
            Ok(Kind::Raw | Kind::Json) if csrf.is_some() => Err(csrf_refused()),
            Ok(k) => feed(k, req, limit, paste_max, csrf, &tx).await,
            Err(e) => Err(e),
        };
        drop(tx);
        fed
    };
    tokio::join!(feed, collect)
}

/// A short text field (the CSRF token); `None` when it is longer than a token can be.
async fn read_small(
    field: &mut axum::extract::multipart::Field<'_>,
    limit: u64,
) -> Result<Option<String>, ApiError> {
    const MAX: usize = 256;
    let mut buf = Vec::new();
    let mut too_long = false;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| multipart_error(&e, limit))?
    {
        if buf.len() + chunk.len() > MAX {
            too_long = true;
        } else {
            buf.extend_from_slice(&chunk);
        }
    }
    if too_long {
        return Ok(None);
    }
    Ok(String::from_utf8(buf).ok())
}

fn multipart_error(e: &axum::extract::multipart::MultipartError, limit: u64) -> ApiError {
    if body_timed_out(e) {
        ApiError::RequestTimeout
    } else if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ApiError::Validation(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// The original JSON body is held in memory (bounded by `log_json_max_bytes`).
async fn feed_json(
    req: Request,
    max: usize,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) -> Result<(), ApiError> {
    let bytes = axum::body::to_bytes(req.into_body(), max)
        .await
        .map_err(|e| {
            if body_timed_out(&e) {
                return ApiError::RequestTimeout;
            }
            ApiError::PayloadTooLarge(format!(
                "JSON bodies are limited to {max} bytes; upload large logs as a raw body or a file"
            ))
        })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Validation(format!("malformed JSON: {e}")))?;
    let logs = match value.get("logs") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::Validation("logs must be a string".into())),
        None if value.is_object() => {
            return Err(ApiError::Validation("missing field `logs`".into()))
        }
        None => {
            return Err(ApiError::Validation(
                "invalid request body: expected a JSON object".into(),
            ))
        }
    };
    // Like every other JSON body: a field we do not know is a client mistake (or a probe
    // for mass assignment), not something to ignore silently.
    if let Some(extra) = value
        .as_object()
        .and_then(|o| o.keys().find(|k| k.as_str() != "logs"))
    {
        return Err(ApiError::Validation(format!(
            "unknown field `{}`, expected `logs`",
            extra.chars().take(64).collect::<String>()
        )));
    }
    drop(value);
    drop(bytes);
    send(tx, Bytes::from(logs)).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(values: &[&[u8]]) -> Result<Option<String>, ApiError> {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(IDEMPOTENCY_HEADER, HeaderValue::from_bytes(v).unwrap());
        }
        idempotency_key(&h)
    }

    #[test]
    fn idempotency_keys_are_checked() {
        assert_eq!(key(&[]).unwrap(), None);
        assert_eq!(key(&[b"abc"]).unwrap().as_deref(), Some("abc"));
        // The structured-field string form names the same key.
        assert_eq!(key(&[b"\"abc\""]).unwrap().as_deref(), Some("abc"));
        assert_eq!(key(&[b"a b ~"]).unwrap().as_deref(), Some("a b ~"));
        let max = "k".repeat(IDEMPOTENCY_KEY_MAX);
        assert_eq!(key(&[max.as_bytes()]).unwrap(), Some(max.clone()));
        let over = format!("{max}k");
        for bad in [
            &b""[..],
            b"\"\"",
            over.as_bytes(),
            "clé".as_bytes(),
            b"tab\there",
            b"\xff",
        ] {
            assert!(
                matches!(key(&[bad]), Err(ApiError::BadRequest(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            key(&[b"one", b"two"]),
            Err(ApiError::BadRequest(_))
        ));
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// A multipart body: (field name, file name, content) per part.
    fn multipart(boundary: &str, parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, file, content) in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let disposition = match file {
                Some(f) => format!("form-data; name=\"{name}\"; filename=\"{f}\""),
                None => format!("form-data; name=\"{name}\""),
            };
            body.extend_from_slice(
                format!("Content-Disposition: {disposition}\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        body
    }

    const TOKEN: &str = "csrf-token-of-the-session";

    #[test]
    fn uploads_pass_on_the_file_after_the_token_and_nothing_before_it() {
        let b = "b0undaryXyZ";
        let ct = format!("multipart/form-data; boundary={b}");
        let run = |parts: &[(&str, Option<&str>, &[u8])], csrf: Option<&'static str>| {
            block_on(parse_upload(
                &ct,
                multipart(b, parts).into(),
                1 << 20,
                1024,
                csrf,
            ))
        };
        let file: (&str, Option<&str>, &[u8]) = ("file", Some("C:\\logs\\app.log"), b"ERROR x\n");
        let token: (&str, Option<&str>, &[u8]) = (CSRF_FIELD, None, TOKEN.as_bytes());
        let (r, out) = run(&[token, file], Some(TOKEN));
        assert_eq!(r.unwrap(), ("app.log".to_owned(), "file"));
        assert_eq!(out, b"ERROR x\n");
        // The token after the file, a wrong one, or none: refused with nothing read.
        for parts in [
            vec![file, token],
            vec![(CSRF_FIELD, None, b"nope".as_slice()), file],
            vec![file],
        ] {
            let (r, out) = run(&parts, Some(TOKEN));
            assert!(matches!(r, Err(ApiError::Forbidden(_))), "{r:?}");
            assert!(out.is_empty());
        }
        // A pasted `logs` field counts when the file is empty; a file with content wins.
        let paste: (&str, Option<&str>, &[u8]) = ("logs", None, b"WARN pasted\n");
        let (r, out) = run(&[paste, ("file", Some("e.log"), b"")], None);
        assert_eq!(r.unwrap(), ("pasted text".to_owned(), "text"));
        assert_eq!(out, b"WARN pasted\n");
        let (r, out) = run(&[paste, file], None);
        assert_eq!(r.unwrap().1, "file");
        assert_eq!(out, b"ERROR x\n");
        // Over the upload limit, and a paste over its own.
        let big = vec![b'a'; 4096];
        let (r, _) = block_on(parse_upload(
            &ct,
            multipart(b, &[("file", Some("f"), &big)]).into(),
            1000,
            1024,
            None,
        ));
        assert!(matches!(r, Err(ApiError::PayloadTooLarge(_))), "{r:?}");
        let (r, _) = block_on(parse_upload(
            &ct,
            multipart(b, &[("logs", None, &big)]).into(),
            1 << 20,
            1024,
            None,
        ));
        assert!(matches!(r, Err(ApiError::PayloadTooLarge(_))), "{r:?}");
        // No file field at all, and no boundary.
        let (r, _) = run(&[("note", None, b"hi")], None);
        assert!(matches!(r, Err(ApiError::Validation(_))), "{r:?}");
        let (r, _) = block_on(parse_upload(
            "multipart/form-data",
            Bytes::from_static(b"x"),
            10,
            10,
            None,
        ));
        assert!(matches!(r, Err(ApiError::Validation(_))), "{r:?}");
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any body under any content type is refused or passed on, never a panic, and
        /// never more than the limits allow reaches the analyzer.
        #[test]
        fn any_upload_body_is_bounded_and_never_panics(
            ct in prop_oneof![
                Just("multipart/form-data; boundary=b0undary".to_owned()),
                Just("multipart/form-data; boundary=\"b0undary\"".to_owned()),
                Just("multipart/form-data".to_owned()),
                Just("text/plain".to_owned()),
                "[ -~]{0,60}",
            ],
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            mut framed in any::<bool>(),
            limit in 0u64..3000,
            paste_max in 0usize..3000,
            csrf in proptest::option::of(Just(TOKEN)),
        ) {
            // Half the cases wrap the bytes in a valid frame, so parts get parsed.
            framed &= ct.contains("b0undary");
            let body = if framed {
                multipart("b0undary", &[("logs", None, &body), ("file", Some("a.log"), &body)])
            } else {
                body
            };
            let (r, out) = block_on(parse_upload(&ct, body.into(), limit, paste_max, csrf));
            prop_assert!(out.len() as u64 <= limit.max(paste_max as u64), "{} bytes", out.len());
            if csrf.is_some() {
                // Without the token in the form, nothing of the log is passed on.
                prop_assert!(r.is_err());
            }
        }

        /// A well-formed form passes on exactly the file's bytes, whatever they are and
        /// whatever fields come before it.
        #[test]
        fn the_file_field_arrives_byte_for_byte(
            content in proptest::collection::vec(any::<u8>(), 1..4096),
            name in "[A-Za-z0-9 ._/-]{0,40}",
            before in proptest::collection::vec(("[a-z_]{1,10}", proptest::collection::vec(any::<u8>(), 0..64)), 0..4),
        ) {
            let b = "pr0ptestB0undary7f3a";
            let mut parts: Vec<(&str, Option<&str>, &[u8])> = before
                .iter()
                .filter(|(n, _)| n != "file" && n != "logs" && n != CSRF_FIELD)
                .map(|(n, v)| (n.as_str(), None, v.as_slice()))
                .collect();
            parts.insert(0, (CSRF_FIELD, None, TOKEN.as_bytes()));
            parts.push(("file", Some(name.as_str()), content.as_slice()));
            let ct = format!("multipart/form-data; boundary={b}");
            let (r, out) = block_on(parse_upload(&ct, multipart(b, &parts).into(), 1 << 20, 1024, Some(TOKEN)));
            prop_assert_eq!(r.ok(), Some((clean_name(&name, "upload"), "file")));
            prop_assert_eq!(out, content);
        }
    }
}
