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

/// Where samples are kept: raw rows, and the 1-minute and 1-hour rollups of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    Raw,
    Minute,
    Hour,
}

impl Tier {
    /// Bucket width in milliseconds (1 for raw rows).
    pub const fn step_ms(self) -> i64 {
        match self {
            Tier::Raw => 1,
            Tier::Minute => 60_000,
            Tier::Hour => 3_600_000,
        }
    }

    /// The coarsest tier whose rows are no wider than `bucket_ms`: a 30-day chart of 200
    /// points reads ~720 hourly rows, a 24-hour one ~1,440 minute rows.
    pub fn fitting(bucket_ms: i64) -> Tier {
        [Tier::Hour, Tier::Minute]
            .into_iter()
            .find(|t| bucket_ms >= t.step_ms())
            .unwrap_or(Tier::Raw)
    }

    /// The next coarser tier, if any.
    pub const fn coarser(self) -> Option<Tier> {
        match self {
            Tier::Raw => Some(Tier::Minute),
            Tier::Minute => Some(Tier::Hour),
            Tier::Hour => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::Minute => "1m",
            Tier::Hour => "1h",
        }
    }
}

/// The newest sample of one host, with the host's name.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct HostSample {
    pub host: String,
    #[sqlx(flatten)]
    pub sample: Sample,
}

/// Connection counts of one database pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// `read` and `write` on SQLite (one writer connection, a pool of readers), `main` on
    /// PostgreSQL.
    pub pool: &'static str,
    /// Open connections, idle or in use.
    pub size: u32,
    pub idle: u32,
    pub max: u32,
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
    pub rule_id: Option<i64>,
    pub rule_name: String,
    pub comparison: String,
    pub severity: String,
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
    pub rule_id: Option<i64>,
    pub rule_name: String,
    pub comparison: String,
    pub severity: String,
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
    /// Whether an agent token exists for the host (hosts a server samples itself have none).
    pub has_agent_token: bool,
    /// As the host's agent last reported it.
    pub agent_version: Option<String>,
    pub interval_ms: Option<i64>,
    /// `admin-api` or `admin-dashboard` for agent hosts; NULL for hosts a server registered.
    pub created_by: Option<String>,
}

/// One agent request as the group-commit writer hands it to the store. Samples carry the
/// batch's `host_id` and distinct timestamps.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestBatch {
    pub host_id: i64,
    pub batch_id: String,
    pub agent_version: Option<String>,
    pub interval_ms: Option<i64>,
    pub samples: Vec<Sample>,
}

/// What became of one `IngestBatch` in a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    /// New batch: `accepted` samples were stored (samples whose timestamp the host already
    /// had are skipped).
    Stored { accepted: u64 },
    /// The batch id was stored before; nothing was stored again.
    Duplicate,
    /// The host was deleted after its token was checked; nothing was stored.
    HostGone,
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

/// An alert rule as stored. Durations are seconds; `hosts` empty means every host.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: i64,
    pub owner_id: Option<i64>,
    pub name: String,
    pub metric: String,
    pub comparison: String,
    pub threshold: f64,
    pub for_secs: i64,
    pub hysteresis: f64,
    pub keep_firing_for_secs: i64,
    pub severity: String,
    pub repeat_interval_secs: i64,
    pub hosts: Vec<String>,
    pub enabled: bool,
    /// `Some("threshold")` for the rules that mirror `/thresholds` and `/admin/thresholds`.
    pub managed: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields a rule is created or replaced with (already validated).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleInput {
    pub name: String,
    pub metric: String,
    pub comparison: String,
    pub threshold: f64,
    pub for_secs: i64,
    pub hysteresis: f64,
    pub keep_firing_for_secs: i64,
    pub severity: String,
    pub repeat_interval_secs: i64,
    pub hosts: Vec<String>,
    pub enabled: bool,
}

/// Which rules, channels or deliveries a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything (the admin, and the service's own tasks).
    All,
    /// Only what this user owns.
    Owner(i64),
    /// Only global items (owner NULL).
    Global,
}

/// A (rule, host) evaluation state as stored; no row means inactive.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RuleStateRow {
    pub rule_id: i64,
    pub host_id: i64,
    pub state: String,
    pub active_since: i64,
    pub alert_id: Option<i64>,
    pub clear_since: Option<i64>,
    pub last_notified_at: Option<i64>,
    pub peak: f64,
}

/// A notification to fan out to every enabled channel of `owner_id` (None: the global
/// channels). The payload's `alert_id` is filled in by the store when it is null.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub owner_id: Option<i64>,
    pub event: String,
    pub payload: serde_json::Value,
}

/// One step of the rule engine's output, applied in order within one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleChange {
    /// Insert or replace the state row.
    Save(RuleStateRow),
    /// Delete the state row.
    Clear { rule_id: i64, host_id: i64 },
    /// Insert the alert, save the state with its id, notify.
    Fire {
        alert: NewAlert,
        state: RuleStateRow,
        notify: Option<Notification>,
    },
    /// Save the state (its `last_notified_at` moved) and notify.
    Repeat {
        state: RuleStateRow,
        notify: Option<Notification>,
    },
    /// Close the alert (when known; else the one fired earlier in this batch for the same
    /// rule and host), delete the state row, notify.
    Resolve {
        rule_id: i64,
        host_id: i64,
        alert_id: Option<i64>,
        resolved_at: i64,
        peak: f64,
        notify: Option<Notification>,
    },
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Channel {
    pub id: i64,
    pub owner_id: Option<i64>,
    pub name: String,
    /// `webhook` or `email`.
    pub kind: String,
    /// The webhook URL, or the email recipients.
    pub target: String,
    pub secret: Option<String>,
    /// `env` (configured by ALERT_* variables: trusted, not editable) or `user`.
    pub source: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelInput {
    pub name: String,
    pub kind: String,
    pub target: String,
    pub enabled: bool,
}

/// A channel the operator configured through the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvChannel {
    pub kind: String,
    pub name: String,
    pub target: String,
    /// Webhooks: the secret from ALERT_WEBHOOK_SECRET; `None` keeps the stored one (or
    /// generates one the first time).
    pub secret: Option<String>,
}

/// A due delivery claimed by a worker, with what it needs to send it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub message_id: String,
    pub channel_id: i64,
    pub event: String,
    pub payload: String,
    pub attempts: i64,
    pub kind: String,
    pub target: String,
    pub secret: Option<String>,
    pub source: String,
    pub channel_enabled: bool,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub delivery_id: i64,
    pub worker: String,
    pub started_at: i64,
    pub duration_ms: i64,
    pub status: Option<i64>,
    pub error: Option<String>,
    /// `delivered`, `retry`, `dead` or `gone`.
    pub outcome: String,
    /// For `retry`: when to try again.
    pub next_attempt_at: Option<i64>,
    /// For `gone`: disable the channel with this reason.
    pub disable_channel: Option<String>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Delivery {
    pub id: i64,
    pub message_id: String,
    pub channel_id: i64,
    pub channel_name: String,
    pub channel_kind: String,
    pub owner_id: Option<i64>,
    pub alert_id: Option<i64>,
    pub event: String,
    pub payload: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DeliveryAttempt {
    pub delivery_id: i64,
    pub attempt: i64,
    pub started_at: i64,
    pub duration_ms: i64,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub outcome: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeliveryFilter {
    pub state: Option<String>,
    pub channel_id: Option<i64>,
}

/// Outbox depth, for health and metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxStats {
    pub pending: i64,
    pub dead: i64,
    pub delivered: i64,
    pub oldest_pending_at: Option<i64>,
}

/// A stored log analysis without its report (what lists show).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LogAnalysisMeta {
    pub id: i64,
    pub user_id: i64,
    pub created_at: i64,
    pub name: String,
    /// `json`, `raw`, `file` or `text`.
    pub source: String,
    pub bytes: i64,
    pub lines: i64,
    /// ERROR + CRITICAL lines.
    pub errors: i64,
    /// JSON object: the non-zero level counts.
    pub levels: String,
}

/// A stored log analysis with its report (the JSON document `POST /logs/analyze` answered).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LogAnalysis {
    #[sqlx(flatten)]
    pub meta: LogAnalysisMeta,
    pub report: String,
}

/// A log analysis to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLogAnalysis {
    pub user_id: i64,
    pub created_at: i64,
    pub name: String,
    pub source: String,
    pub bytes: i64,
    pub lines: i64,
    pub errors: i64,
    pub levels: String,
    pub report: String,
    /// The client's `Idempotency-Key`: at most one analysis per (user, key).
    pub idempotency_key: Option<String>,
    /// SHA-256 (hex) of the analysed log, to tell a retry from a reused key.
    pub body_sha256: Option<String>,
}

/// What storing an analysis did.
#[derive(Debug, Clone, PartialEq)]
pub enum AnalysisInsert {
    /// Stored under this new id.
    Stored(i64),
    /// The user already has an analysis under this idempotency key (stored by an earlier
    /// request, or by a concurrent one that committed first); nothing new was stored.
    Existing(ExistingAnalysis),
}

/// The analysis an idempotency key already names.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ExistingAnalysis {
    pub id: i64,
    /// The document `POST /logs/analyze` answered the first time (without `analysis_id`).
    pub report: String,
    pub body_sha256: Option<String>,
}

/// A job lease: `holder` runs the job until `expires_at` unless it renews.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub acquired_at: i64,
    pub expires_at: i64,
}

/// What a lease holder's write is conditional on, and the evaluation cursors it moves.
#[derive(Debug, Clone, Default)]
pub struct Fence {
    pub lease: String,
    pub holder: String,
    /// The lease is renewed to this time by the same transaction.
    pub expires_at: i64,
    /// (host id, newest sample time evaluated).
    pub cursors: Vec<(i64, i64)>,
}
