//! Storage: the `Store` trait (the only place that writes SQL) and its SQLite and
//! PostgreSQL implementations.

mod models;
mod postgres;
mod shared;
mod sqlite;

pub use models::*;
pub use postgres::PgStore;
pub use sqlite::{ServerLock, SqliteStore};

use async_trait::async_trait;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint was violated (e.g. the username is taken).
    #[error("conflict")]
    Conflict,
    /// The database is unreachable, locked past its timeout, full or the pool is exhausted;
    /// the request may succeed if retried.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
                StoreError::Unavailable(e.to_string())
            }
            E::Database(db) => {
                if db.is_unique_violation() {
                    return StoreError::Conflict;
                }
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                // SQLite primary result codes live in the low byte of extended codes:
                // 5 BUSY, 6 LOCKED, 10 IOERR, 13 FULL, 14 CANTOPEN. PostgreSQL: class 08
                // (connection), 53 (resources), 57P (operator intervention).
                let sqlite_primary = code.parse::<i64>().ok().map(|c| c & 0xff);
                let transient = matches!(sqlite_primary, Some(5 | 6 | 10 | 13 | 14))
                    || code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P");
                if transient {
                    StoreError::Unavailable(e.to_string())
                } else {
                    StoreError::Other(e.to_string())
                }
            }
            _ => StoreError::Other(e.to_string()),
        }
    }
}

/// Which engine a database URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            if url.contains(":memory:") || url.contains("mode=memory") {
                anyhow::bail!("in-memory SQLite is not supported; use sqlite://PATH");
            }
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            let scheme = url.split(':').next().unwrap_or("");
            anyhow::bail!(
                "unsupported database URL scheme {scheme:?}: use sqlite://PATH or postgres://USER@HOST/DB"
            )
        }
    }
}

/// Hides the password in a database URL so it can be printed or logged.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((creds, host)) = rest.rsplit_once('@') {
            let user = creds.split(':').next().unwrap_or("");
            if creds.contains(':') {
                return format!("{scheme}://{user}:<redacted>@{host}");
            }
        }
    }
    url.to_owned()
}

/// Opens the store the URL names and applies its migrations.
pub async fn connect(settings: &crate::config::Settings) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match Backend::from_url(&settings.database_url)? {
        Backend::Sqlite => Arc::new(SqliteStore::connect(settings).await?),
        Backend::Postgres => Arc::new(PgStore::connect(settings).await?),
    })
}

/// Everything the service persists. Object safe; handlers and tasks hold `Arc<dyn Store>`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;
    async fn ping(&self) -> StoreResult<()>;
    async fn close(&self);

    // Users
    async fn create_user(&self, username: &str, password_hash: &str, now: i64)
        -> StoreResult<User>;
    /// Case-insensitive: usernames are unique regardless of case.
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>>;
    async fn set_password_hash(&self, user_id: i64, password_hash: &str) -> StoreResult<()>;
    async fn user_by_id(&self, id: i64) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Disables or enables an account and ends its dashboard sessions; disabling also
    /// deletes its API tokens.
    async fn set_user_disabled(&self, id: i64, disabled: bool) -> StoreResult<bool>;
    /// Ends every dashboard session of the user (bumps the session epoch).
    async fn end_user_sessions(&self, id: i64) -> StoreResult<bool>;
    /// The user's unexpired tokens, newest first.
    async fn list_tokens(&self, user_id: i64, now: i64) -> StoreResult<Vec<TokenInfo>>;
    /// Deletes a token only if it belongs to `user_id`.
    async fn delete_user_token(&self, user_id: i64, token_hash: &str) -> StoreResult<bool>;
    async fn list_hosts(&self) -> StoreResult<Vec<Host>>;
    /// Per-bucket minima and maxima of the charted metrics, ascending.
    async fn chart_buckets(
        &self,
        host_id: i64,
        start: i64,
        end: i64,
        bucket_ms: i64,
    ) -> StoreResult<Vec<ChartBucket>>;
    /// A page of the alerts `viewer` may see, newest first, and the total matching.
    async fn list_alerts_filtered(
        &self,
        viewer: i64,
        filter: &AlertFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Alert>, i64)>;
    /// The pool the dashboard's session store uses.
    fn session_pool(&self) -> SessionPool;

    // API tokens (stored as SHA-256 hex digests)
    async fn insert_token(&self, token: &NewToken) -> StoreResult<()>;
    async fn token_owner(&self, token_hash: &str) -> StoreResult<Option<TokenOwner>>;
    async fn touch_token(&self, token_hash: &str, now: i64) -> StoreResult<()>;
    async fn delete_token(&self, token_hash: &str) -> StoreResult<bool>;
    async fn purge_expired_tokens(&self, now: i64) -> StoreResult<u64>;

    // Login throttling
    /// The latest `locked_until` among `keys` if it lies after `now`.
    async fn login_locked_until(&self, keys: &[String], now: i64) -> StoreResult<Option<i64>>;
    /// Counts one failure for `key` (atomically) and returns the failures in the window.
    async fn record_login_failure(&self, key: &str, now: i64, window_ms: i64) -> StoreResult<i64>;
    async fn lock_login(&self, key: &str, until: i64) -> StoreResult<()>;
    async fn clear_login_failures(&self, key: &str) -> StoreResult<()>;
    async fn purge_login_failures(&self, older_than: i64) -> StoreResult<u64>;

    // Hosts and samples
    async fn upsert_host(&self, name: &str, now: i64) -> StoreResult<i64>;
    async fn host_id(&self, name: &str) -> StoreResult<Option<i64>>;
    async fn host_count(&self) -> StoreResult<i64>;
    /// Inserts samples in one transaction (duplicates of (host, ts) are ignored) and
    /// updates the hosts' last-seen time.
    async fn insert_samples(&self, samples: &[Sample]) -> StoreResult<()>;
    async fn recent_samples(&self, host_id: i64, limit: i64) -> StoreResult<Vec<Sample>>;
    async fn count_samples_between(&self, host_id: i64, start: i64, end: i64) -> StoreResult<i64>;
    async fn samples_between(&self, host_id: i64, start: i64, end: i64)
        -> StoreResult<Vec<Sample>>;
    /// Averages per `bucket_ms` bucket (bucket start as `ts`), ascending.
    async fn samples_bucketed(
        &self,
        host_id: i64,
        start: i64,
        end: i64,
        bucket_ms: i64,
    ) -> StoreResult<Vec<Sample>>;
    async fn sample_stats(&self, host_id: i64, last_n: i64, since: i64)
        -> StoreResult<SampleStats>;

    // Thresholds
    async fn global_thresholds(&self) -> StoreResult<ThresholdPair>;
    async fn set_global_thresholds(&self, t: ThresholdPair, now: i64) -> StoreResult<()>;
    async fn user_thresholds(&self, user_id: i64) -> StoreResult<Option<ThresholdPair>>;
    async fn set_user_thresholds(
        &self,
        user_id: i64,
        t: ThresholdPair,
        now: i64,
    ) -> StoreResult<()>;
    /// The user's own thresholds, or the global ones while they have none; the flag says
    /// whether they are the user's own.
    async fn effective_thresholds(&self, user_id: i64) -> StoreResult<(ThresholdPair, bool)> {
        Ok(match self.user_thresholds(user_id).await? {
            Some(t) => (t, true),
            None => (self.global_thresholds().await?, false),
        })
    }
    /// Every user's own thresholds (users without their own are absent).
    async fn all_user_thresholds(&self) -> StoreResult<Vec<(i64, ThresholdPair)>>;

    // Alerts
    /// Opens and resolves episodes in one transaction; returns the ids of the opened ones.
    async fn apply_alert_changes(
        &self,
        open: &[NewAlert],
        resolve: &[AlertResolution],
    ) -> StoreResult<Vec<i64>>;
    async fn open_alerts(&self) -> StoreResult<Vec<Alert>>;
    /// Newest first: global alerts plus those owned by `viewer`.
    async fn list_alerts(&self, viewer: i64, limit: i64) -> StoreResult<Vec<Alert>>;
    async fn alert_stats(&self, viewer: i64, last_n: i64) -> StoreResult<AlertStats>;
}
