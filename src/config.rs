//! Typed settings: defaults, then an optional TOML file, then environment and command line.

use crate::cli::Overrides;
use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

/// A secret string that never appears in `Debug` output or printed configuration.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The effective configuration. Field names are the TOML keys; see the README table for the
/// matching environment variables.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub bind: String,
    pub database_url: String,
    /// Collector period in milliseconds.
    pub interval_ms: u64,
    pub collector: bool,
    pub log_format: LogFormat,
    pub log: String,
    pub admin_token: Option<Secret>,
    pub token_ttl_minutes: u64,
    /// Failed logins per account within `login_window_secs` before back-off starts.
    pub login_max_failures_account: u32,
    /// Failed logins per client IP within `login_window_secs` before back-off starts.
    pub login_max_failures_ip: u32,
    pub login_window_secs: u64,
    /// First lockout length; doubles with each further failure, capped at `login_lockout_max_secs`.
    pub login_lockout_secs: u64,
    pub login_lockout_max_secs: u64,
    /// Peers whose `X-Forwarded-For` is trusted for the client IP (your reverse proxies).
    pub trusted_proxies: Vec<IpAddr>,
    /// Largest accepted JSON body in bytes.
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
    /// Time a client gets to send its first byte and then the complete request headers.
    pub header_read_timeout_secs: u64,
    pub max_connections: usize,
    /// Concurrent argon2 computations; each takes 19 MiB.
    pub hash_concurrency: usize,
    /// `/metrics/history` downsamples ranges with more samples than this.
    pub history_max_points: u32,
    pub db_max_connections: u32,
    /// Seconds to wait for a pooled connection before answering 503.
    pub db_acquire_timeout_secs: u64,
    /// Seconds a statement waits for a lock another connection holds before it gives up
    /// and the request gets 503 (SQLite `busy_timeout`, PostgreSQL `lock_timeout`).
    pub db_lock_timeout_secs: u64,
    /// PostgreSQL `statement_timeout` in seconds (0: none), so a runaway statement does
    /// not hold a connection long after its request has been answered.
    pub db_statement_timeout_secs: u64,
    /// Longest pause between two pieces of an upload body (`/logs/analyze`, the
    /// dashboard upload) before the upload is cut off with 408.
    pub upload_idle_timeout_secs: u64,
    pub shutdown_grace_secs: u64,
    /// Mark the session cookie `Secure` (HTTPS only). Set false for plain-HTTP LAN use;
    /// browsers accept Secure cookies from http://localhost either way.
    pub cookie_secure: bool,
    /// `Strict-Transport-Security: max-age` sent when `cookie_secure` says the service is
    /// reached over HTTPS (0: never sent). Browsers ignore it over plain HTTP.
    pub hsts_max_age_secs: u64,
    /// Dashboard sessions end after this long without a request.
    pub session_idle_secs: u64,
    /// Dashboard sessions end this long after login, active or not.
    pub session_absolute_secs: u64,
    /// The global webhook channel (`ALERT_WEBHOOK_URL`); a secret because such URLs
    /// often embed a token.
    pub alert_webhook_url: Option<Secret>,
    pub alert_webhook_secret: Option<Secret>,
    /// Retries after a failed delivery attempt; with the back-off below the defaults ride
    /// out about three hours of receiver downtime.
    pub alert_webhook_retries: u32,
    /// Base of the exponential back-off, seconds.
    pub alert_webhook_backoff: f64,
    pub alert_smtp_host: Option<String>,
    pub alert_smtp_port: u16,
    pub alert_smtp_user: Option<String>,
    pub alert_smtp_pass: Option<Secret>,
    /// `auto`, `starttls`, `tls` or `none` (loopback servers only).
    pub alert_smtp_tls: String,
    pub alert_from: Option<String>,
    /// Recipients of the global email channel.
    pub alert_to: Option<String>,
    pub webhook_timeout_secs: u64,
    /// Let user-entered webhook URLs reach private, loopback and link-local addresses.
    pub allow_private_webhooks: bool,
    /// Run the notification worker in this process.
    pub notifier: bool,
    /// Take part in the jobs one replica runs at a time (alert evaluation for agent
    /// hosts, retention): off for a replica that should only serve requests.
    pub leader_jobs: bool,
    pub notify_concurrency: usize,
    /// Attempts in flight to one channel (one webhook URL or email recipient list) at
    /// most, per worker: a slow or hung receiver then holds only these slots, and the
    /// others keep delivering.
    pub notify_channel_concurrency: usize,
    /// The worker waits a random 0..=this many milliseconds before its first claim when
    /// deliveries are already due at start-up, so replicas restarting together (or a
    /// crash loop) do not hit the receivers in the same instant.
    pub notify_startup_jitter_ms: u64,
    /// How long a claim holds a delivery, seconds (0: derived, longer than any attempt
    /// can take plus a minute). A killed worker's deliveries are retried once it runs out.
    pub notify_lease_secs: u64,
    /// Largest log upload to `/logs/analyze` (after which 413), bytes as received.
    pub log_upload_max_bytes: u64,
    /// Largest `{"logs": "..."}` JSON body (it is held in memory, unlike raw uploads).
    pub log_json_max_bytes: usize,
    /// Stored analyses kept per user: storing one more deletes that user's oldest, so
    /// repeated uploads cannot fill the database.
    pub log_analyses_per_user: u64,
    /// Analyses running at once; more uploads wait their turn.
    pub analysis_concurrency: usize,
    /// Time limit for one upload and its analysis.
    pub analysis_timeout_secs: u64,
    /// Bearer token `/metrics/prometheus` requires; unset means the endpoint is public.
    pub prometheus_token: Option<Secret>,
    /// Largest `POST /ingest` body in bytes (413 above).
    pub ingest_max_body_bytes: usize,
    /// Most samples in one agent batch (422 above).
    pub ingest_max_samples: usize,
    /// How far ahead of the server's clock a sample may be stamped (422 beyond).
    pub ingest_max_future_secs: u64,
    /// Samples waiting for the ingest writer at most; beyond that agents get 503.
    pub ingest_queue_rows: usize,
    /// How long the ingest writer waits for more requests to commit together.
    pub ingest_commit_delay_ms: u64,
    /// Samples per ingest transaction at most.
    pub ingest_commit_max_rows: usize,
    /// How long batch ids are remembered for recognising retries.
    pub ingest_batch_retention_hours: u64,
    /// A host is `stale` after this many missed intervals...
    pub host_stale_intervals: u32,
    /// ...and `down` after this many.
    pub host_down_intervals: u32,
    /// How long raw samples are kept.
    pub retention_raw: Retention,
    /// How long the 1-minute rollups are kept.
    pub retention_1m: Retention,
    /// How long the 1-hour rollups are kept.
    pub retention_1h: Retention,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8000".into(),
            database_url: "sqlite://watchpost.db".into(),
            interval_ms: 1000,
            collector: true,
            log_format: LogFormat::Pretty,
            log: "info".into(),
            admin_token: None,
            token_ttl_minutes: 60,
            login_max_failures_account: 5,
            login_max_failures_ip: 20,
            login_window_secs: 900,
            login_lockout_secs: 30,
            login_lockout_max_secs: 900,
            trusted_proxies: Vec::new(),
            max_body_bytes: 64 * 1024,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            max_connections: 1024,
            hash_concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            history_max_points: 5000,
            db_max_connections: 8,
            db_acquire_timeout_secs: 5,
            db_lock_timeout_secs: 5,
            db_statement_timeout_secs: 60,
            upload_idle_timeout_secs: 30,
            shutdown_grace_secs: 10,
            cookie_secure: true,
            hsts_max_age_secs: 365 * 24 * 3600,
            session_idle_secs: 30 * 60,
            session_absolute_secs: 12 * 3600,
            alert_webhook_url: None,
            alert_webhook_secret: None,
            alert_webhook_retries: 12,
            alert_webhook_backoff: 5.0,
            alert_smtp_host: None,
            alert_smtp_port: 587,
            alert_smtp_user: None,
            alert_smtp_pass: None,
            alert_smtp_tls: "auto".into(),
            alert_from: None,
            alert_to: None,
            webhook_timeout_secs: 10,
            allow_private_webhooks: false,
            notifier: true,
            leader_jobs: true,
            notify_concurrency: 8,
            notify_channel_concurrency: 4,
            notify_startup_jitter_ms: 1000,
            notify_lease_secs: 0,
            log_upload_max_bytes: 256 << 20,
            log_json_max_bytes: 32 << 20,
            log_analyses_per_user: 500,
            analysis_concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            analysis_timeout_secs: 600,
            prometheus_token: None,
            ingest_max_body_bytes: 4 << 20,
            ingest_max_samples: 10_000,
            ingest_max_future_secs: 300,
            ingest_queue_rows: 100_000,
            ingest_commit_delay_ms: 2,
            ingest_commit_max_rows: 5_000,
            ingest_batch_retention_hours: 24,
            host_stale_intervals: 3,
            host_down_intervals: 10,
            retention_raw: Retention::days(7),
            retention_1m: Retention::days(90),
            retention_1h: Retention::days(2 * 365),
        }
    }
}

/// Minimum `ADMIN_TOKEN` length; shorter secrets are guessable.
pub const MIN_ADMIN_TOKEN_BYTES: usize = 16;

/// Fewest distinct bytes a token may have: `aaaaaaaaaaaaaaaa` is long but not random.
const MIN_TOKEN_DISTINCT_BYTES: usize = 8;

/// Whether a configured secret is a value copied from an example (such as the
/// `CHANGE-ME-…` in `deploy/watchpost.env.example`) or too repetitive to be random.
/// Anyone who has read the example knows such a token, however long it is.
pub fn looks_like_placeholder(token: &str) -> bool {
    let letters: String = token
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let placeholder = [
        "changeme",
        "replaceme",
        "changethis",
        "yourtoken",
        "yoursecret",
        "placeholder",
        "example",
    ]
    .iter()
    .any(|p| letters.contains(p));
    let distinct = token
        .bytes()
        .collect::<std::collections::BTreeSet<u8>>()
        .len();
    placeholder || distinct < MIN_TOKEN_DISTINCT_BYTES
}

impl Settings {
    /// Defaults → TOML file (if any) → environment/CLI overrides, then validated.
    pub fn load(o: &Overrides) -> anyhow::Result<Self> {
        let mut s = match &o.config {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        s.apply(o)?;
        s.validate()?;
        Ok(s)
    }

    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    fn apply(&mut self, o: &Overrides) -> anyhow::Result<()> {
        if let Some(v) = &o.interval {
            self.interval_ms =
                u64::try_from(parse_duration(v)?.as_millis()).context("interval too large")?;
        }
        for (given, field, name) in [
            (
                &o.retention_raw,
                &mut self.retention_raw,
                "WATCHPOST_RETENTION_RAW",
            ),
            (
                &o.retention_1m,
                &mut self.retention_1m,
                "WATCHPOST_RETENTION_1M",
            ),
            (
                &o.retention_1h,
                &mut self.retention_1h,
                "WATCHPOST_RETENTION_1H",
            ),
        ] {
            if let Some(v) = given {
                *field = Retention::parse(v).with_context(|| name.to_owned())?;
            }
        }
        if let Some(v) = &o.log_format {
            self.log_format = match v.as_str() {
                "json" => LogFormat::Json,
                "pretty" => LogFormat::Pretty,
                other => bail!("unknown log format {other:?} (expected json or pretty)"),
            };
        }
        if let Some(v) = &o.admin_token {
            self.admin_token = if v.is_empty() {
                None
            } else {
                Some(Secret::new(v.clone()))
            };
        }
        // Secrets and optional strings: empty means unset.
        for (given, field) in [
            (&o.alert_webhook_url, &mut self.alert_webhook_url),
            (&o.alert_webhook_secret, &mut self.alert_webhook_secret),
            (&o.alert_smtp_pass, &mut self.alert_smtp_pass),
            (&o.prometheus_token, &mut self.prometheus_token),
        ] {
            if let Some(v) = given {
                *field = (!v.is_empty()).then(|| Secret::new(v.clone()));
            }
        }
        for (given, field) in [
            (&o.alert_smtp_host, &mut self.alert_smtp_host),
            (&o.alert_smtp_user, &mut self.alert_smtp_user),
            (&o.alert_from, &mut self.alert_from),
            (&o.alert_to, &mut self.alert_to),
        ] {
            if let Some(v) = given {
                *field = (!v.trim().is_empty()).then(|| v.trim().to_owned());
            }
        }
        // Plain values: given means replaced.
        macro_rules! take {
            ($($field:ident),* $(,)?) => {
                $(if let Some(v) = &o.$field {
                    self.$field = v.clone();
                })*
            };
        }
        take!(
            bind,
            database_url,
            collector,
            log,
            token_ttl_minutes,
            login_max_failures_account,
            login_max_failures_ip,
            login_window_secs,
            login_lockout_secs,
            login_lockout_max_secs,
            trusted_proxies,
            max_body_bytes,
            request_timeout_secs,
            header_read_timeout_secs,
            max_connections,
            hash_concurrency,
            history_max_points,
            db_max_connections,
            db_acquire_timeout_secs,
            db_lock_timeout_secs,
            db_statement_timeout_secs,
            upload_idle_timeout_secs,
            shutdown_grace_secs,
            cookie_secure,
            hsts_max_age_secs,
            session_idle_secs,
            session_absolute_secs,
            alert_webhook_retries,
            alert_webhook_backoff,
            alert_smtp_port,
            alert_smtp_tls,
            webhook_timeout_secs,
            allow_private_webhooks,
            notifier,
            leader_jobs,
            notify_concurrency,
            notify_channel_concurrency,
            notify_startup_jitter_ms,
            notify_lease_secs,
            log_upload_max_bytes,
            log_json_max_bytes,
            log_analyses_per_user,
            analysis_concurrency,
            analysis_timeout_secs,
            ingest_max_body_bytes,
            ingest_max_samples,
            ingest_max_future_secs,
            ingest_queue_rows,
            ingest_commit_delay_ms,
            ingest_commit_max_rows,
            ingest_batch_retention_hours,
            host_stale_intervals,
            host_down_intervals,
        );
        Ok(())
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(t) = &self.admin_token {
            if t.expose().len() < MIN_ADMIN_TOKEN_BYTES {
                bail!(
                    "ADMIN_TOKEN is set but shorter than {MIN_ADMIN_TOKEN_BYTES} bytes; use a long random value (e.g. `openssl rand -hex 32`) or unset it to disable the admin endpoints"
                );
            }
            if looks_like_placeholder(t.expose()) {
                bail!(
                    "ADMIN_TOKEN looks like a placeholder or has too little variety; use a long random value (e.g. `openssl rand -hex 32`) or unset it to disable the admin endpoints"
                );
            }
        }
        if let Some(t) = &self.prometheus_token {
            if t.expose().len() < MIN_ADMIN_TOKEN_BYTES
                || t.expose().trim() != t.expose()
                || looks_like_placeholder(t.expose())
            {
                bail!(
                    "WATCHPOST_PROMETHEUS_TOKEN is set but shorter than {MIN_ADMIN_TOKEN_BYTES} bytes, padded with spaces or a placeholder; use a long random value (e.g. `openssl rand -hex 32`) or unset it for a public endpoint"
                );
            }
        }
        if self.interval_ms < 100 {
            bail!("interval must be at least 100ms");
        }
        if self.token_ttl_minutes == 0 {
            bail!("token_ttl_minutes must be at least 1");
        }
        if self.hash_concurrency == 0 || self.max_connections == 0 || self.db_max_connections == 0 {
            bail!("hash_concurrency, max_connections and db_max_connections must be at least 1");
        }
        if self.header_read_timeout_secs == 0 || self.request_timeout_secs == 0 {
            bail!("header_read_timeout_secs and request_timeout_secs must be at least 1");
        }
        // 0 would mean "fail at once" to SQLite but "wait forever" to PostgreSQL.
        if self.db_lock_timeout_secs == 0 || self.upload_idle_timeout_secs == 0 {
            bail!("db_lock_timeout_secs and upload_idle_timeout_secs must be at least 1");
        }
        if self.session_idle_secs == 0 || self.session_absolute_secs < self.session_idle_secs {
            bail!("session_idle_secs must be at least 1 and session_absolute_secs at least session_idle_secs");
        }
        if self.history_max_points < 10 {
            bail!("history_max_points must be at least 10");
        }
        crate::store::Backend::from_url(&self.database_url)?;
        if !(self.alert_webhook_backoff.is_finite()
            && (0.01..=86_400.0).contains(&self.alert_webhook_backoff))
        {
            bail!("ALERT_WEBHOOK_BACKOFF must be between 0.01 and 86400 seconds");
        }
        if self.alert_webhook_retries > 100 {
            bail!("ALERT_WEBHOOK_RETRIES must be at most 100");
        }
        if self.webhook_timeout_secs == 0 || self.webhook_timeout_secs > 300 {
            bail!("webhook_timeout_secs must be between 1 and 300");
        }
        if self.analysis_concurrency == 0
            || self.analysis_timeout_secs == 0
            || self.log_json_max_bytes == 0
            || self.log_analyses_per_user == 0
        {
            bail!("analysis_concurrency, analysis_timeout_secs, log_json_max_bytes and log_analyses_per_user must be at least 1");
        }
        if self.ingest_max_samples == 0
            || self.ingest_commit_max_rows == 0
            || self.ingest_max_body_bytes == 0
        {
            bail!("ingest_max_samples, ingest_commit_max_rows and ingest_max_body_bytes must be at least 1");
        }
        if self.ingest_queue_rows < self.ingest_max_samples {
            bail!("ingest_queue_rows must be at least ingest_max_samples (a full batch must fit in the queue)");
        }
        if self.ingest_commit_delay_ms > 1000 {
            bail!("ingest_commit_delay_ms must be at most 1000");
        }
        if self.ingest_batch_retention_hours == 0 {
            bail!("ingest_batch_retention_hours must be at least 1");
        }
        if self.host_stale_intervals == 0 || self.host_down_intervals <= self.host_stale_intervals {
            bail!("host_stale_intervals must be at least 1 and host_down_intervals larger than it");
        }
        // A coarser tier must reach at least as far back as a finer one: history falls back
        // to the coarser tier where the finer one has been pruned, never the other way.
        if self.retention_raw > self.retention_1m || self.retention_1m > self.retention_1h {
            bail!(
                "retention must not shrink with coarser tiers: retention_raw ({}) <= retention_1m ({}) <= retention_1h ({})",
                self.retention_raw,
                self.retention_1m,
                self.retention_1h
            );
        }
        if self.notify_concurrency == 0 || self.notify_channel_concurrency == 0 {
            bail!("notify_concurrency and notify_channel_concurrency must be at least 1");
        }
        if self.notify_startup_jitter_ms > 60_000 {
            bail!("notify_startup_jitter_ms must be at most 60000");
        }
        // A lease shorter than an attempt can take would let a second worker send the same
        // notification while the first is still waiting for its answer.
        let attempt_secs = crate::notify::worker::attempt_limit_secs(self);
        if self.notify_lease_secs != 0
            && (self.notify_lease_secs < attempt_secs + 5 || self.notify_lease_secs > 86_400)
        {
            bail!(
                "notify_lease_secs must be 0 (derived) or between {} (the longest attempt, {attempt_secs} s, plus 5) and 86400",
                attempt_secs + 5
            );
        }
        if let Some(url) = &self.alert_webhook_url {
            match reqwest::Url::parse(url.expose()) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                _ => bail!("ALERT_WEBHOOK_URL must be an http:// or https:// URL"),
            }
        }
        if let Some(secret) = &self.alert_webhook_secret {
            if crate::notify::sign::parse_secret(secret.expose()).is_err() {
                bail!("ALERT_WEBHOOK_SECRET must be whsec_ followed by 24 to 64 bytes in base64");
            }
        }
        if !matches!(
            self.alert_smtp_tls.as_str(),
            "auto" | "starttls" | "tls" | "none"
        ) {
            bail!("WATCHPOST_SMTP_TLS must be auto, starttls, tls or none");
        }
        if self.alert_smtp_host.is_some() && self.alert_from.is_none() {
            bail!("ALERT_SMTP_HOST is set but ALERT_FROM is not: emails need a sender address");
        }
        if let Some(from) = &self.alert_from {
            crate::notify::email::parse_mailbox(from)
                .map_err(|e| anyhow::anyhow!("ALERT_FROM: {e}"))?;
        }
        if let Some(to) = &self.alert_to {
            crate::notify::email::parse_recipients(to)
                .map_err(|e| anyhow::anyhow!("ALERT_TO: {e}"))?;
        }
        Ok(())
    }

    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// The retention task's configuration.
    pub fn retention(&self) -> RetentionSettings {
        RetentionSettings {
            raw: self.retention_raw,
            minute: self.retention_1m,
            hour: self.retention_1h,
            ..RetentionSettings::default()
        }
    }

    /// The configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = crate::store::redact_url(&self.database_url);
        toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}"))
    }
}

/// How long one storage tier keeps its rows: a whole number of hours, or forever.
///
/// Written `7d`, `90d`, `2y` (365 days), `12h`, `4w`, or a bare number of days; `0` or
/// `off` keeps rows forever. In TOML a string or an integer (days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `None`: never deleted.
    hours: Option<u64>,
}

impl Retention {
    pub const OFF: Retention = Retention { hours: None };
    /// Long enough for any calendar, small enough that milliseconds fit an i64 easily.
    const MAX_HOURS: u64 = 1000 * 365 * 24;

    pub const fn days(days: u64) -> Self {
        Self {
            hours: Some(days * 24),
        }
    }

    pub const fn hours(hours: u64) -> Self {
        Self { hours: Some(hours) }
    }

    pub fn parse(raw: &str) -> anyhow::Result<Self> {
        let s = raw.trim().to_ascii_lowercase();
        if s == "off" {
            return Ok(Self::OFF);
        }
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| {
            anyhow::anyhow!(
                "invalid retention {raw:?} (e.g. 7d, 90d, 2y, 12h, a number of days, or off)"
            )
        })?;
        let per_unit = match unit.trim() {
            "h" => 1,
            "" | "d" => 24,
            "w" => 7 * 24,
            "y" => 365 * 24,
            _ => bail!("invalid retention unit in {raw:?} (use h, d, w or y)"),
        };
        match n.checked_mul(per_unit) {
            Some(0) => Ok(Self::OFF),
            Some(hours) if hours <= Self::MAX_HOURS => Ok(Self::hours(hours)),
            _ => bail!("retention out of range: {raw:?}"),
        }
    }

    /// The age past which rows go, or `None` to keep them forever.
    pub fn as_ms(self) -> Option<i64> {
        // MAX_HOURS keeps this far from overflowing.
        self.hours
            .map(|h| i64::try_from(h.saturating_mul(3_600_000)).unwrap_or(i64::MAX))
    }
}

/// Forever is the longest retention.
impl PartialOrd for Retention {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Retention {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |r: &Retention| r.hours.unwrap_or(u64::MAX);
        key(self).cmp(&key(other))
    }
}

impl std::fmt::Display for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.hours {
            None => f.write_str("off"),
            Some(h) if h % (365 * 24) == 0 => write!(f, "{}y", h / (365 * 24)),
            Some(h) if h % 24 == 0 => write!(f, "{}d", h / 24),
            Some(h) => write!(f, "{h}h"),
        }
    }
}

impl Serialize for Retention {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Retention {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Days(u64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Days(n) => n.to_string(),
            Raw::Text(t) => t,
        };
        Retention::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What the retention task deletes and how: per tier, rows older than the tier's
/// retention, `batch_rows` rows per statement with `pause` between statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    pub raw: Retention,
    pub minute: Retention,
    pub hour: Retention,
    /// Rows one DELETE removes at most: small enough that the write lock (SQLite) or the
    /// row locks and WAL burst (PostgreSQL) of one statement stay short.
    pub batch_rows: u64,
    /// Breath between batches, so collector and ingest writes get in.
    pub pause: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        let s = Settings::default();
        Self {
            raw: s.retention_raw,
            minute: s.retention_1m,
            hour: s.retention_1h,
            batch_rows: 5000,
            pause: Duration::from_millis(5),
        }
    }
}

/// Parses `1s`, `500ms`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(raw: &str) -> anyhow::Result<Duration> {
    let s = raw.trim();
    let (num, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid duration {raw:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => bail!("invalid duration unit in {raw:?} (use ms, s, m or h)"),
    };
    if !(0.0..=86_400.0 * 365.0).contains(&secs) {
        bail!("duration out of range: {raw:?}");
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn retentions() {
        let p = |s: &str| Retention::parse(s).unwrap();
        assert_eq!(p("7d"), Retention::days(7));
        assert_eq!(p("7"), Retention::days(7));
        assert_eq!(p(" 90D "), Retention::days(90));
        assert_eq!(p("2y"), Retention::days(730));
        assert_eq!(p("2w"), Retention::days(14));
        assert_eq!(p("36h"), Retention::hours(36));
        assert_eq!(p("off"), Retention::OFF);
        assert_eq!(p("0"), Retention::OFF);
        assert_eq!(p("0d"), Retention::OFF);
        for bad in [
            "",
            "d",
            "-1d",
            "1.5d",
            "7m",
            "7 days",
            "99999999999999999999",
            "2000y",
        ] {
            assert!(Retention::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Retention::days(7).as_ms(), Some(7 * 86_400_000));
        assert_eq!(Retention::OFF.as_ms(), None);
        assert!(Retention::OFF > Retention::days(100_000));
        for r in ["7d", "2y", "36h", "off", "400d"] {
            assert_eq!(p(r).to_string(), r);
        }
        // TOML: strings or a number of days, and print-config writes what it read.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(
            &path,
            "retention_raw = 3\nretention_1m = \"30d\"\nretention_1h = \"off\"\n",
        )
        .unwrap();
        let s = Settings::from_file(&path).unwrap();
        assert_eq!(
            (s.retention_raw, s.retention_1m, s.retention_1h),
            (Retention::days(3), Retention::days(30), Retention::OFF)
        );
        let shown = s.to_redacted_toml();
        assert!(shown.contains("retention_raw = \"3d\""), "{shown}");
        assert!(shown.contains("retention_1h = \"off\""), "{shown}");
        std::fs::write(&path, "retention_raw = \"7 days\"\n").unwrap();
        assert!(Settings::from_file(&path).is_err());
        // Environment, and the order of the tiers.
        let o = Overrides {
            retention_raw: Some("2d".into()),
            retention_1m: Some("off".into()),
            retention_1h: Some("off".into()),
            ..Overrides::default()
        };
        let s = Settings::load(&o).unwrap();
        assert_eq!(s.retention().raw, Retention::days(2));
        assert_eq!(s.retention().minute, Retention::OFF);
        let o = Overrides {
            retention_raw: Some("100d".into()),
            ..Overrides::default()
        };
        assert!(Settings::load(&o).is_err());
        let o = Overrides {
            retention_1h: Some("yesterday".into()),
            ..Overrides::default()
        };
        let e = format!("{:#}", Settings::load(&o).unwrap_err());
        assert!(e.contains("WATCHPOST_RETENTION_1H"), "{e}");
    }

    #[test]
    fn short_admin_token_refused() {
        let s = Settings {
            admin_token: Some(Secret::new("short")),
            ..Settings::default()
        };
        assert!(s.validate().is_err());
    }

    #[test]
    fn prometheus_token_rules() {
        let with = |t: &str| Settings {
            prometheus_token: Some(Secret::new(t)),
            ..Settings::default()
        };
        assert!(with("short").validate().is_err());
        assert!(with(" 0123456789abcdef0123 ").validate().is_err());
        assert!(with("0123456789abcdef0123").validate().is_ok());
        // Empty from the environment means unset (a public endpoint).
        let o = Overrides {
            prometheus_token: Some(String::new()),
            ..Overrides::default()
        };
        assert_eq!(Settings::load(&o).unwrap().prometheus_token, None);
        let o = Overrides {
            prometheus_token: Some("0123456789abcdef0123".into()),
            ..Overrides::default()
        };
        let s = Settings::load(&o).unwrap();
        assert_eq!(
            s.prometheus_token.as_ref().map(Secret::expose),
            Some("0123456789abcdef0123")
        );
        assert!(!s.to_redacted_toml().contains("0123456789abcdef0123"));
        assert!(!format!("{s:?}").contains("0123456789abcdef0123"));
    }

    #[test]
    fn redacted_output() {
        let s = Settings {
            admin_token: Some(Secret::new("super-secret-admin-token")),
            database_url: "postgres://u:pw123@localhost/db".into(),
            ..Settings::default()
        };
        let out = s.to_redacted_toml();
        assert!(!out.contains("super-secret-admin-token"));
        assert!(!out.contains("pw123"));
        assert!(!format!("{s:?}").contains("super-secret-admin-token"));
    }

    #[test]
    fn layering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.toml");
        std::fs::write(&path, "bind = \"0.0.0.0:9000\"\ntoken_ttl_minutes = 5\n").unwrap();
        let o = Overrides {
            config: Some(path),
            token_ttl_minutes: Some(7),
            ..Overrides::default()
        };
        let s = Settings::load(&o).unwrap();
        assert_eq!(s.bind, "0.0.0.0:9000");
        assert_eq!(s.token_ttl_minutes, 7);
        assert!(Settings::load(&Overrides {
            database_url: Some("mysql://x".into()),
            ..Overrides::default()
        })
        .is_err());
    }
}
