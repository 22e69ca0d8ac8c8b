//! `POST /logs/analyze`: the original `{"logs": "..."}` body, a raw upload (text or gzip)
//! or a multipart form with a `file` field. Raw and multipart uploads are streamed into
//! the analyzer, which runs off the async workers (a blocking-pool thread decodes and merges,
//! analysis threads take one of a few shared CPU slots per block), so a burst of uploads
//! never stalls other requests.

use crate::analyze_cli::default_threads;
use crate::analyze_cli::json as report_json;
use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::ApiUser;
use crate::http::state::AppState;
use crate::logs::{AnalyzeError, AnalyzerConfig, Gate, ParallelAnalyzer, Report};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header;
use axum::Json;
use http_body_util::BodyExt;
use serde::Deserialize;
use std::any::Any;
use std::sync::Arc;
use std::time::Instant;
use utoipa::ToSchema;

/// The original body: the log text inline.
#[derive(Debug, Deserialize, ToSchema)]
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

fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!("the upload is larger than {limit} bytes"))
}

/// Analyse logs. Answers the original `counts` (level → lines, the original level names
/// as well as the normalised ones) and `top_errors` (error templates, most frequent
/// first), plus `lines`, `bytes`, `formats`, `levels`, `patterns`, `histogram`,
/// `time_range`, `truncated_lines` and `elapsed_ms`.
#[utoipa::path(post, path = "/logs/analyze", tag = "logs",
    request_body(content(
        (LogsBody = "application/json"),
        (String = "text/plain"),
        (Vec<u8> = "application/octet-stream"),
        (Vec<u8> = "application/gzip"),
    )),
    security(("token" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The report", body = Object),
        (status = 401, description = "Missing, invalid or expired token", body = ErrorBody),
        (status = 413, description = "Upload larger than the limit, or a gzip bomb", body = ErrorBody),
        (status = 415, description = "Unsupported content type", body = ErrorBody),
        (status = 422, description = "Malformed JSON, missing file field or corrupt gzip", body = ErrorBody),
    ))]
pub async fn analyze(
    State(state): State<AppState>,
    user: ApiUser,
    req: Request,
) -> Result<Json<serde_json::Value>, ApiError> {
    let started = Instant::now();
    let report = run(&state, req).await?;
    tracing::info!(
        user_id = user.user.id,
        lines = report.lines,
        bytes = report.bytes,
        ms = started.elapsed().as_millis() as u64,
        "logs analysed"
    );
    Ok(Json(report_json(&report, started.elapsed())))
}

/// Streams the request into an analysis and returns its report.
pub async fn run(state: &AppState, req: Request) -> Result<Report, ApiError> {
    let kind = kind(&req)?;
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
        while let Some(chunk) = rx.blocking_recv() {
            analyzer.feed(&chunk)?;
        }
        analyzer.finish()
    });
    let fed = match kind {
        Kind::Json => feed_json(state, req, &tx).await,
        Kind::Raw => feed_stream(req.into_body(), limit, &tx).await,
        Kind::Multipart => feed_multipart(state, req, limit, &tx).await,
    };
    drop(tx);
    let outcome = worker.await.map_err(|_| ApiError::Internal)?;
    match (fed, outcome) {
        // The analyzer's own verdict (a zip bomb, corrupt gzip) explains a cut-off upload.
        (_, Err(e)) => Err(analyze_error(e)),
        (Err(e), Ok(_)) => Err(e),
        (Ok(()), Ok(report)) => Ok(report),
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
        let frame = frame.map_err(|_| ApiError::BadRequest("the upload was interrupted".into()))?;
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

async fn feed_multipart(
    state: &AppState,
    req: Request,
    limit: u64,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) -> Result<(), ApiError> {
    let mut form = Multipart::from_request(req, state).await.map_err(|e| {
        ApiError::Validation(format!("malformed multipart body: {}", e.body_text()))
    })?;
    let mut received: u64 = 0;
    loop {
        let field = form
            .next_field()
            .await
            .map_err(|e| multipart_error(&e, limit))?;
        let Some(mut field) = field else {
            return Err(ApiError::Validation("the form has no file field".into()));
        };
        if field.name() != Some("file") {
            continue;
        }
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| multipart_error(&e, limit))?
        {
            received += chunk.len() as u64;
            if received > limit {
                return Err(too_large(limit));
            }
            if !send(tx, chunk).await {
                return Ok(());
            }
        }
        return Ok(());
    }
}

fn multipart_error(e: &axum::extract::multipart::MultipartError, limit: u64) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ApiError::Validation(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// The original JSON body is held in memory (bounded by `log_json_max_bytes`).
async fn feed_json(
    state: &AppState,
    req: Request,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
) -> Result<(), ApiError> {
    let max = state.settings.log_json_max_bytes;
    let bytes = axum::body::to_bytes(req.into_body(), max)
        .await
        .map_err(|_| {
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
    drop(value);
    drop(bytes);
    send(tx, Bytes::from(logs)).await;
    Ok(())
}
