//! JSON API handlers at the original service's paths.

pub mod alerts;
pub mod auth;
pub mod channels;
pub mod deliveries;
pub mod health;
pub mod logs;
pub mod metrics;
pub mod openapi;
pub mod rules;
pub mod thresholds;
