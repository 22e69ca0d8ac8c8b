//! JSON API errors: always `{"detail": "..."}` with the right status, never internals.

use crate::store::StoreError;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Human-readable reason.
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(&'static str),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Validation(String),
    #[error("too many requests")]
    TooManyRequests {
        retry_after_secs: u64,
        detail: &'static str,
    },
    /// The client paused sending the request body for longer than allowed.
    #[error("the request body was not received in time")]
    RequestTimeout,
    #[error("service unavailable")]
    Unavailable,
    /// A write failed because the database's disk is full; nothing was stored.
    #[error("the server's disk is full: nothing was stored; retry later")]
    StorageFull,
    #[error("internal server error")]
    Internal,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            // 503 rather than 507: clients and agents already retry 503 after
            // Retry-After, and the condition is the server's, not the request's.
            ApiError::Unavailable | ApiError::StorageFull => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::TooManyRequests { detail, .. } => (*detail).to_owned(),
            ApiError::Unavailable => "service temporarily unavailable, retry shortly".to_owned(),
            other => other.to_string(),
        }
    }
}

impl From<crate::domain::ParseError> for ApiError {
    fn from(e: crate::domain::ParseError) -> Self {
        ApiError::Validation(e.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => ApiError::Conflict("conflict"),
            StoreError::Unavailable(msg) => {
                tracing::warn!(error = %msg, "database unavailable");
                ApiError::Unavailable
            }
            StoreError::Full(msg) => {
                tracing::warn!(error = %msg, "database write failed: disk full");
                ApiError::StorageFull
            }
            StoreError::Other(msg) => {
                tracing::error!(error = %msg, "database error");
                ApiError::Internal
            }
        }
    }
}

impl From<crate::auth::password::HashError> for ApiError {
    fn from(e: crate::auth::password::HashError) -> Self {
        tracing::error!(error = %e, "password hashing failed");
        ApiError::Internal
    }
}

/// `Retry-After` (seconds) of a write refused for a full disk.
pub const STORAGE_FULL_RETRY_AFTER: &str = "30";

/// Builds the standard error response for a status and message.
pub fn error_response(status: StatusCode, detail: impl Into<String>) -> Response {
    let mut resp = (
        status,
        Json(ErrorBody {
            detail: detail.into(),
        }),
    )
        .into_response();
    let h = resp.headers_mut();
    match status {
        StatusCode::UNAUTHORIZED => {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        StatusCode::SERVICE_UNAVAILABLE => {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        // The rest of a half-sent body is not read, so the connection cannot be reused.
        StatusCode::REQUEST_TIMEOUT => {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        _ => {}
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = error_response(self.status(), self.detail());
        match self {
            ApiError::TooManyRequests {
                retry_after_secs, ..
            } => {
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs.max(1)),
                );
            }
            // Space comes back when someone frees it, not in 5 s: retrying clients wait
            // longer, so a full disk does not turn into a storm of doomed requests.
            ApiError::StorageFull => {
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(STORAGE_FULL_RETRY_AFTER),
                );
            }
            _ => {}
        }
        resp
    }
}

/// Caps a client-facing message derived from parser output, which can echo input.
pub fn clip(msg: &str) -> String {
    const MAX: usize = 300;
    if msg.len() <= MAX {
        return msg.to_owned();
    }
    let mut end = MAX;
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &msg[..end])
}
