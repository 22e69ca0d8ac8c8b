//! JSON API handlers at the original service's paths.

pub mod alerts;
pub mod auth;
pub mod channels;
pub mod deliveries;
pub mod health;
pub mod hosts;
pub mod ingest;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod prometheus;
pub mod rules;
pub mod thresholds;

/// `limit` (1–200, default 50) and `offset` (≥ 0, default 0) of a paged list.
pub fn page_bounds(
    limit: Option<i64>,
    offset: Option<i64>,
) -> Result<(i64, i64), crate::http::error::ApiError> {
    use crate::http::error::ApiError;
    let limit = limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::Validation(
            "limit must be between 1 and 200".into(),
        ));
    }
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::Validation("offset must not be negative".into()));
    }
    Ok((limit, offset))
}
