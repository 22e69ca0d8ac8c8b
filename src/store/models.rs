//! Rows exchanged with the store. Timestamps are UTC epoch milliseconds.

use serde::Serialize;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    /// Bumped to end every dashboard session of the user.
    pub session_epoch: i64,
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

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Host {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
}

/// An API token as its owner sees it (the token itself is never stored).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TokenInfo {
    pub token_hash: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
}

/// Which alerts a list shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertFilter {
    pub metric: Option<String>,
    /// `Some(true)`: firing only; `Some(false)`: resolved only.
    pub firing: Option<bool>,
}

/// Minimum and maximum of the charted metrics over one time bucket.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct ChartBucket {
    pub ts: i64,
    pub cpu_min: f64,
    pub cpu_max: f64,
    pub memory_min: f64,
    pub memory_max: f64,
    pub swap_min: f64,
    pub swap_max: f64,
    pub disk_min: f64,
    pub disk_max: f64,
    pub load1_min: f64,
    pub load1_max: f64,
    pub net_rx_min: f64,
    pub net_rx_max: f64,
    pub net_tx_min: f64,
    pub net_tx_max: f64,
}

/// The pool a session store needs; the engine decides which store type that is.
#[derive(Clone)]
pub enum SessionPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}
