//! Rows exchanged with the store. Timestamps are UTC epoch milliseconds.

use serde::Serialize;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
}

/// A user found through an API token, with what the token row says about itself.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    pub user: User,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewToken {
    pub token_hash: String,
    pub user_id: i64,
    pub name: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// One collector tick for one host: a wide row.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, Default)]
pub struct Sample {
    pub host_id: i64,
    pub ts: i64,
    /// CPU busy, percent of all cores.
    pub cpu: f64,
    /// Memory in use (total - available), percent.
    pub memory: f64,
    pub memory_used: i64,
    pub memory_total: i64,
    pub swap: f64,
    pub load1: f64,
    pub load5: f64,
    pub load15: f64,
    /// Fullest real filesystem, percent used.
    pub disk: f64,
    pub disk_read_bps: f64,
    pub disk_write_bps: f64,
    pub net_rx_bps: f64,
    pub net_tx_bps: f64,
    pub processes: i64,
    pub uptime: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ThresholdPair {
    pub cpu: f64,
    pub memory: f64,
}

impl ThresholdPair {
    pub const DEFAULT: ThresholdPair = ThresholdPair {
        cpu: 80.0,
        memory: 75.0,
    };
}

/// One breach episode. `owner_id` is `None` for the global thresholds.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Alert {
    pub id: i64,
    pub host_id: i64,
    pub host: String,
    pub owner_id: Option<i64>,
    pub metric: String,
    pub value: f64,
    pub threshold: f64,
    pub peak: f64,
    pub ts: i64,
    pub resolved_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub host_id: i64,
    pub owner_id: Option<i64>,
    pub metric: String,
    pub value: f64,
    pub threshold: f64,
    pub ts: i64,
    pub peak: f64,
    /// Set when the episode also ended within the same batch of samples.
    pub resolved_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertResolution {
    pub id: i64,
    pub resolved_at: i64,
    pub peak: f64,
}

/// Aggregates behind `/summary`, over the alerts a user may see.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertStats {
    pub total: i64,
    pub open: i64,
    pub breakdown: Vec<(String, i64)>,
    pub last_timestamps: Vec<i64>,
}

/// Sample aggregates behind `/summary`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleStats {
    pub avg_last_cpu: Option<f64>,
    pub avg_last_memory: Option<f64>,
    pub count_24h: i64,
    pub peak_cpu_24h: Option<f64>,
    pub peak_memory_24h: Option<f64>,
    pub latest_ts: Option<i64>,
}
