//! Storage: the `Store` trait (the only place that writes SQL) and its SQLite and
//! PostgreSQL implementations.

mod models;
mod outbox;
mod postgres;
mod rollup;
mod shared;
mod sqlite;

pub use models::*;
pub use postgres::PgStore;
pub use sqlite::{ServerLock, SqliteStore};

use async_trait::async_trait;
use std::sync::atomic::{AtomicI64, Ordering};
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
    /// The database's disk (or quota) is full: nothing was written, and retrying helps only
    /// once space is freed. Reads still work.
    #[error("database disk full: {0}")]
    Full(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        let full = match &e {
            E::Io(io) => is_disk_full(io),
            E::Database(db) => {
                let code = db.code().unwrap_or_default();
                // SQLite SQLITE_FULL (13, in the low byte of extended codes); PostgreSQL
                // 53100 disk_full.
                code.parse::<i64>().is_ok_and(|c| c & 0xff == 13) || code == "53100"
            }
            _ => false,
        };
        if full {
            disk_full_seen();
            return StoreError::Full(e.to_string());
        }
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
                // (connection), 53 (resources), 57P (operator intervention: 57P01
                // admin_shutdown and 57P02 crash_shutdown end the session of a server
                // being restarted, 57P03 cannot_connect_now while it starts), and the
                // `lock_timeout` / `statement_timeout` cancellations (55P03
                // lock_not_available, 57014 query_canceled): a lock someone else holds
                // is as transient as a full pool, so the client is told to retry. The
                // same goes for 40001 serialization_failure and 40P01 deadlock_detected
                // (PostgreSQL's own advice is to retry the transaction) and for 25006
                // read_only_sql_transaction, which a failover answers while the old
                // primary still takes connections as a standby.
                let sqlite_primary = code.parse::<i64>().ok().map(|c| c & 0xff);
                let transient = matches!(sqlite_primary, Some(5 | 6 | 10 | 13 | 14))
                    || code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || matches!(
                        code.as_str(),
                        "55P03" | "57014" | "40001" | "40P01" | "25006"
                    );
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

/// ENOSPC (no space left) or EDQUOT (quota exceeded).
fn is_disk_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || matches!(e.raw_os_error(), Some(28 | 122))
}

/// When a write last failed for lack of disk space (epoch ms; 0: never). Process-wide
/// like the disk itself, and set where every database error passes (the conversion
/// below), so no write path can forget it; `/readyz` reads it.
static DISK_FULL_AT: AtomicI64 = AtomicI64::new(0);

fn disk_full_seen() {
    DISK_FULL_AT.store(crate::domain::now_ms(), Ordering::Relaxed);
}

/// When a database write last failed because the disk was full (epoch ms), if ever.
pub fn last_disk_full_ms() -> Option<i64> {
    Some(DISK_FULL_AT.load(Ordering::Relaxed)).filter(|&t| t > 0)
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
    /// A new password, in one transaction with its consequences: the session epoch moves
    /// on (every dashboard session of the user ends) and every API token is deleted.
    async fn change_password(&self, user_id: i64, password_hash: &str) -> StoreResult<()>;
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
    /// Per-bucket minima and maxima of the charted metrics, ascending, read from `tier`
    /// (see [`Tier::fitting`] and [`covering_tier`]).
    async fn chart_buckets(
        &self,
        host_id: i64,
        tier: Tier,
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
    /// Raw samples in [start, end], counted no further than `cap` (the cost is bounded by
    /// `cap`, not by the range).
    async fn count_samples_capped(
        &self,
        host_id: i64,
        start: i64,
        end: i64,
        cap: i64,
    ) -> StoreResult<i64>;
    async fn samples_between(&self, host_id: i64, start: i64, end: i64)
        -> StoreResult<Vec<Sample>>;
    /// The time of the host's oldest row in `tier` (sample time or bucket start).
    async fn oldest_in_tier(&self, host_id: i64, tier: Tier) -> StoreResult<Option<i64>>;
    /// The `tier` rollup buckets that start in [start, end], merged `bucket_ms` (a multiple
    /// of the tier's step) at a time from the first of them, ascending. Each group is one
    /// sample: averages, maxima for processes and uptime, stamped with its first bucket's
    /// start. `Raw` is an error.
    async fn rollup_samples(
        &self,
        tier: Tier,
        host_id: i64,
        start: i64,
        end: i64,
        bucket_ms: i64,
    ) -> StoreResult<Vec<Sample>>;
    /// Deletes at most `limit` rows of `tier` (every host) stamped before `cutoff` (sample
    /// time or bucket start) in one statement; returns how many went. Safe to run from
    /// several replicas at once.
    async fn delete_samples_before(&self, tier: Tier, cutoff: i64, limit: i64) -> StoreResult<u64>;
    /// Recomputes every rollup bucket that has raw samples from those samples, for raw
    /// rows written behind the store's back (bulk imports, benchmarks); returns the rows
    /// written. One transaction.
    async fn rebuild_rollups(&self) -> StoreResult<u64>;
    async fn sample_stats(&self, host_id: i64, last_n: i64, since: i64)
        -> StoreResult<SampleStats>;
    /// The newest sample of every host that has one, ordered by host name, in one query
    /// (for scrapes: no query per host).
    async fn latest_samples(&self) -> StoreResult<Vec<HostSample>>;
    /// Connection counts of the pools, without touching the database.
    fn pool_stats(&self) -> Vec<PoolStats>;
    /// Bytes free (to this process) on the filesystem that holds the database, where the
    /// store can tell: SQLite; `None` for PostgreSQL, whose disk is on its server.
    fn free_disk_bytes(&self) -> Option<u64>;

    // Agent hosts and ingest
    async fn host(&self, id: i64) -> StoreResult<Option<Host>>;
    /// Creates a host that an agent feeds; `Conflict` if the name is taken.
    async fn create_agent_host(
        &self,
        name: &str,
        token_hash: &str,
        created_by: &str,
        now: i64,
    ) -> StoreResult<Host>;
    /// The host whose agent token has this SHA-256 hex digest.
    async fn host_by_agent_token(&self, token_hash: &str) -> StoreResult<Option<Host>>;
    /// Whether the digest belonged to a host that has since been deleted.
    async fn agent_token_retired(&self, token_hash: &str) -> StoreResult<bool>;
    /// Replaces the host's agent token (the old one stops working at once); `false` if
    /// there is no such host.
    async fn set_agent_token(&self, host_id: i64, token_hash: &str) -> StoreResult<bool>;
    /// Deletes a host with its samples, rollups, alerts and rule state, and remembers its
    /// agent token as retired; `false` if there is no such host.
    async fn delete_host(&self, host_id: i64, now: i64) -> StoreResult<bool>;
    /// Stores agent batches in ONE transaction (the group commit): per batch, the host's
    /// last-seen time (`now`), agent version and interval are updated, a batch id seen
    /// before skips its samples, new samples go in with their rollups. Either everything
    /// is committed or nothing is. One outcome per batch, in order.
    async fn ingest(&self, batches: &[IngestBatch], now: i64) -> StoreResult<Vec<IngestOutcome>>;
    /// Forgets batch ids received before `older_than` (a retry after that is stored again,
    /// but its samples are still deduplicated by timestamp).
    async fn purge_ingest_batches(&self, older_than: i64) -> StoreResult<u64>;

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
    async fn open_alerts(&self) -> StoreResult<Vec<Alert>>;
    /// Newest first: global alerts plus those owned by `viewer`.
    async fn list_alerts(&self, viewer: i64, limit: i64) -> StoreResult<Vec<Alert>>;
    async fn alert_stats(&self, viewer: i64, last_n: i64) -> StoreResult<AlertStats>;

    // Rules
    /// Rules in `scope`, global ones first, then by id.
    async fn list_rules(&self, scope: Scope) -> StoreResult<Vec<Rule>>;
    /// Enabled rules whose owner (if any) is not disabled: what the engine evaluates.
    async fn active_rules(&self) -> StoreResult<Vec<Rule>>;
    async fn rule(&self, id: i64) -> StoreResult<Option<Rule>>;
    async fn create_rule(
        &self,
        owner_id: Option<i64>,
        input: &RuleInput,
        now: i64,
    ) -> StoreResult<Rule>;
    /// Replaces a rule's fields; for a managed (threshold) rule the threshold is written
    /// back to the thresholds table in the same transaction.
    async fn update_rule(&self, id: i64, input: &RuleInput, now: i64) -> StoreResult<Option<Rule>>;
    async fn delete_rule(&self, id: i64) -> StoreResult<bool>;

    // Rule evaluation state
    async fn rule_states(&self) -> StoreResult<Vec<RuleStateRow>>;
    /// Applies the engine's changes, alert rows and outbox rows in one transaction;
    /// returns the ids of the alerts fired, in order. Also returns how many deliveries
    /// were queued.
    async fn apply_rule_changes(
        &self,
        changes: &[RuleChange],
        now: i64,
    ) -> StoreResult<(Vec<i64>, usize)>;
    /// `apply_rule_changes` for the holder of a lease: commits only while `fence.holder`
    /// still holds `fence.lease` (renewing it to `fence.expires_at`) and stores the
    /// per-host evaluation cursors with the changes. `None`: the lease was lost, nothing
    /// was written.
    async fn apply_fenced_rule_changes(
        &self,
        changes: &[RuleChange],
        fence: &Fence,
        now: i64,
    ) -> StoreResult<Option<(Vec<i64>, usize)>>;

    // Leases: jobs that run on one replica at a time.
    /// Takes the lease `name` for `holder` (or renews it) until `now + ttl_ms`; false
    /// while another holder's lease has not expired.
    async fn try_lease(&self, name: &str, holder: &str, now: i64, ttl_ms: i64)
        -> StoreResult<bool>;
    /// Gives the lease up at once (on shutdown), so another replica need not wait it out.
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;
    async fn lease(&self, name: &str) -> StoreResult<Option<Lease>>;
    /// Samples of agent hosts newer than both the host's evaluation cursor and `floor`,
    /// oldest first, at most `limit`.
    async fn unevaluated_agent_samples(&self, floor: i64, limit: i64) -> StoreResult<Vec<Sample>>;

    // Channels
    async fn list_channels(&self, scope: Scope) -> StoreResult<Vec<Channel>>;
    async fn channel(&self, id: i64) -> StoreResult<Option<Channel>>;
    async fn create_channel(
        &self,
        owner_id: Option<i64>,
        input: &ChannelInput,
        secret: Option<&str>,
        now: i64,
    ) -> StoreResult<Channel>;
    async fn update_channel(
        &self,
        id: i64,
        input: &ChannelInput,
        now: i64,
    ) -> StoreResult<Option<Channel>>;
    async fn set_channel_secret(&self, id: i64, secret: &str, now: i64) -> StoreResult<bool>;
    async fn delete_channel(&self, id: i64) -> StoreResult<bool>;
    /// Creates, updates or (with `None`) disables the environment-configured channel of
    /// `kind`. A generated secret is used only when the channel has none yet.
    async fn sync_env_channel(
        &self,
        kind: &str,
        channel: Option<&EnvChannel>,
        generated_secret: &str,
        now: i64,
    ) -> StoreResult<()>;

    // Deliveries (the outbox)
    /// Leases up to `limit` due deliveries to `worker` until `now + lease_ms` and counts
    /// the attempt. On PostgreSQL, `FOR UPDATE SKIP LOCKED` keeps replicas apart.
    async fn claim_deliveries(
        &self,
        worker: &str,
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        self.claim_deliveries_skipping(worker, now, lease_ms, limit, &[])
            .await
    }
    /// `claim_deliveries`, leaving the deliveries of `skip_channels` alone (channels the
    /// worker already has as many attempts in flight to as it allows).
    async fn claim_deliveries_skipping(
        &self,
        worker: &str,
        now: i64,
        lease_ms: i64,
        limit: i64,
        skip_channels: &[i64],
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Gives claimed deliveries back unsent (id and the claim's worker token), taking back
    /// the attempt the claim counted; returns how many were still held.
    async fn release_deliveries(&self, claims: &[(i64, String)]) -> StoreResult<usize>;
    /// Records attempts and moves their deliveries on, in one transaction (one sync to
    /// disk for a whole batch); returns how many still held their lease (a lost lease
    /// means another worker took the delivery over; the attempt is logged regardless).
    async fn record_attempts(&self, records: &[AttemptRecord]) -> StoreResult<usize>;
    /// One attempt; `false` if the lease was lost.
    async fn record_attempt(&self, record: &AttemptRecord) -> StoreResult<bool> {
        Ok(self.record_attempts(std::slice::from_ref(record)).await? == 1)
    }
    /// Queues a test notification to one channel; returns the delivery id.
    async fn enqueue_test(
        &self,
        channel_id: i64,
        payload: &serde_json::Value,
        message_id: &str,
        now: i64,
    ) -> StoreResult<i64>;
    async fn list_deliveries(
        &self,
        scope: Scope,
        filter: &DeliveryFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Delivery>, i64)>;
    async fn delivery(&self, id: i64) -> StoreResult<Option<Delivery>>;
    async fn delivery_attempts(&self, delivery_id: i64) -> StoreResult<Vec<DeliveryAttempt>>;
    /// Puts a dead delivery back in the queue (same message id); `false` if it is not dead.
    async fn retry_delivery(&self, id: i64, now: i64) -> StoreResult<bool>;
    async fn outbox_stats(&self) -> StoreResult<OutboxStats>;
    /// Test notifications queued since `since` to the channels of `owner` (None: global).
    async fn recent_test_count(&self, owner: Option<i64>, since: i64) -> StoreResult<i64>;
    /// The earliest `next_attempt_at` (or lease end) of a pending delivery outside
    /// `skip_channels`, for the worker's sleep.
    async fn next_delivery_due(&self, skip_channels: &[i64]) -> StoreResult<Option<i64>>;

    // Stored log analyses: always by id AND owner, so one user never reaches another's.
    /// Stores an analysis. With an idempotency key the user already used (for an analysis
    /// that still exists), nothing is stored and that analysis is returned; the unique
    /// (user, key) index makes this hold for concurrent requests too.
    async fn insert_log_analysis(&self, a: &NewLogAnalysis) -> StoreResult<AnalysisInsert>;
    /// A user's analyses, newest first, and how many they have.
    async fn list_log_analyses(
        &self,
        user_id: i64,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<LogAnalysisMeta>, i64)>;
    async fn log_analysis(&self, id: i64, user_id: i64) -> StoreResult<Option<LogAnalysis>>;
    async fn delete_log_analysis(&self, id: i64, user_id: i64) -> StoreResult<bool>;
    /// Deletes the user's analyses beyond the newest `keep`; returns how many went.
    async fn prune_log_analyses(&self, user_id: i64, keep: i64) -> StoreResult<u64>;
}

/// `tier`, or a coarser one where retention has already deleted the `tier` rows of the
/// start of the range but the coarser tier still summarises them. Rollups are written with
/// their raw rows, so a coarser bucket ending before a finer tier's oldest row only remains
/// because the finer rows were deleted.
pub async fn covering_tier(
    store: &dyn Store,
    host_id: i64,
    mut tier: Tier,
    start: i64,
) -> StoreResult<Tier> {
    'tiers: loop {
        if tier.coarser().is_none() {
            return Ok(tier);
        }
        let fine = store.oldest_in_tier(host_id, tier).await?;
        if fine.is_some_and(|oldest| oldest <= start) {
            return Ok(tier);
        }
        // Not only the next tier: retention may have cut two tiers at the same point.
        let mut next = tier.coarser();
        while let Some(coarser) = next {
            let step = coarser.step_ms();
            let coarse = store.oldest_in_tier(host_id, coarser).await?;
            let older = match (coarse, fine) {
                (Some(c), Some(f)) => c < f.div_euclid(step) * step,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if older {
                tier = coarser;
                continue 'tiers;
            }
            next = coarser.coarser();
        }
        return Ok(tier);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    /// A database error with just a code, as a driver would report it.
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl sqlx::error::DatabaseError for Coded {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            if self.0 == "23505" {
                sqlx::error::ErrorKind::UniqueViolation
            } else {
                sqlx::error::ErrorKind::Other
            }
        }
    }

    fn coded(code: &'static str) -> StoreError {
        StoreError::from(sqlx::Error::Database(Box::new(Coded(code))))
    }

    #[test]
    fn a_database_going_away_is_unavailable_not_an_internal_error() {
        use std::io::{Error as IoError, ErrorKind};
        // What a request meets while PostgreSQL restarts (F11): no connection to be had,
        // a connection cut mid-query, or the server ending the session itself.
        let lost = [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::WorkerCrashed,
            sqlx::Error::Io(IoError::from(ErrorKind::ConnectionRefused)),
            sqlx::Error::Io(IoError::from(ErrorKind::ConnectionReset)),
            sqlx::Error::Io(IoError::from(ErrorKind::UnexpectedEof)),
            sqlx::Error::Io(IoError::from(ErrorKind::BrokenPipe)),
        ];
        for e in lost {
            let shown = e.to_string();
            assert!(
                matches!(StoreError::from(e), StoreError::Unavailable(_)),
                "{shown}"
            );
        }
        for code in [
            "57P01", // admin_shutdown: `pg_ctl stop -m fast`, pg_terminate_backend
            "57P02", // crash_shutdown: another backend crashed, or `-m immediate`
            "57P03", // cannot_connect_now: starting up or shutting down
            "08000", "08003", "08006", "08001", "08004", // connection exceptions
            "53300", // too_many_connections
            "55P03", // lock_not_available (lock_timeout)
            "57014", // query_canceled (statement_timeout)
            "40001", // serialization_failure
            "40P01", // deadlock_detected
            "25006", // read_only_sql_transaction (a failover's old primary)
            "5",     // SQLITE_BUSY
            "517",   // SQLITE_BUSY_SNAPSHOT
            "6",     // SQLITE_LOCKED
        ] {
            assert!(
                matches!(coded(code), StoreError::Unavailable(_)),
                "{code} should be transient"
            );
        }
        // A full disk is transient too, but its own kind (503 with its own detail and
        // `/readyz` degraded).
        for code in ["53100", "13"] {
            assert!(matches!(coded(code), StoreError::Full(_)), "{code}");
        }
    }

    #[test]
    fn other_database_errors_stay_internal_and_duplicates_conflict() {
        assert!(matches!(coded("23505"), StoreError::Conflict));
        for code in ["42P01", "42703", "22P02", "23503", "XX000", "1", "19"] {
            assert!(
                matches!(coded(code), StoreError::Other(_)),
                "{code} should not be retried"
            );
        }
        for e in [
            sqlx::Error::RowNotFound,
            sqlx::Error::Protocol("unexpected message".into()),
        ] {
            assert!(matches!(StoreError::from(e), StoreError::Other(_)));
        }
    }

    #[test]
    fn a_full_disk_is_its_own_error_and_is_remembered() {
        let before = crate::domain::now_ms();
        for errno in [28, 122] {
            let e = sqlx::Error::Io(std::io::Error::from_raw_os_error(errno));
            assert!(
                matches!(StoreError::from(e), StoreError::Full(_)),
                "errno {errno}"
            );
        }
        assert!(last_disk_full_ms().is_some_and(|t| t >= before));
        // Other I/O errors stay transient "unavailable", not "full".
        let e = sqlx::Error::Io(std::io::Error::from_raw_os_error(5));
        assert!(matches!(StoreError::from(e), StoreError::Unavailable(_)));
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
    }
}
