//! Command-line interface: subcommands and the options that override configuration.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "watchpost",
    version,
    about = "Self-hosted host metrics, alerts and log analysis in one binary"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub overrides: Overrides,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve,
    /// Fill the database with a demo user, 24 h of samples and some alerts; prints a token.
    Seed(SeedArgs),
    /// Print the effective configuration with secrets redacted.
    PrintConfig,
    /// Sample this host and push the samples to a watchpost server (`POST /ingest`),
    /// buffering while it is unreachable. The collection period is `--interval`.
    Agent(AgentArgs),
    /// Analyse log files (plain or gzip; `-` reads stdin) and print a report.
    Analyze(AnalyzeArgs),
    /// Write a deterministic mixed-format log file OUT and its exact truth OUT.truth.json
    /// (for benchmarks and tests of the log analyzer).
    #[command(hide = true)]
    GenLogs(GenLogsArgs),
    /// Recompute the 1-minute and 1-hour rollups of every bucket that has raw samples,
    /// after raw rows were loaded behind the server's back (bulk imports, benchmarks). Run
    /// it with the server stopped: it rewrites both tiers in one transaction.
    #[command(hide = true)]
    RebuildRollups,
}

#[derive(Debug, Args)]
pub struct GenLogsArgs {
    /// Size to write: plain bytes or with a unit, e.g. `500KB`, `100MiB`, `1GiB`, `1.5GB`.
    #[arg(long, default_value = "100MiB", value_parser = parse_size)]
    pub size: u64,
    /// PRNG seed: the same seed, size and year give byte-identical output.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Year of the timestamps.
    #[arg(long, default_value_t = 2026, value_parser = clap::value_parser!(i32).range(1970..=9999))]
    pub year: i32,
    /// Output file; the truth goes to OUT.truth.json.
    pub out: PathBuf,
}

/// Parses `123`, `500KB`/`500kB`/`500K` (×1000), `100MiB` (×1024²), `1GiB`, `1.5GB`, `2TiB`;
/// units are case-insensitive, a space before the unit is allowed.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = (&s[..split], s[split..].trim());
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gi" | "gib" => 1 << 30,
        "t" | "tb" => 1000 * 1000 * 1000 * 1000,
        "ti" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown size unit {unit:?} (use B, KB, KiB, MB, MiB, GB, GiB)"
            ))
        }
    };
    let bad = || format!("invalid size {s:?} (e.g. 100MiB, 1GiB, 500KB, 4096)");
    if num.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult).ok_or_else(bad);
    }
    let x: f64 = num.parse().map_err(|_| bad())?;
    let bytes = (x * mult as f64).round();
    if !bytes.is_finite() || bytes < 0.0 || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// `watchpost gen-logs`: writes OUT through a buffer, then OUT.truth.json (pretty JSON).
pub fn gen_logs(args: &GenLogsArgs) -> anyhow::Result<crate::logs::gen::Truth> {
    use anyhow::Context;
    use std::io::Write;
    let cfg = crate::logs::gen::GenConfig {
        seed: args.seed,
        target_bytes: args.size,
        year: args.year,
    };
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let truth = crate::logs::gen::generate(&cfg, &mut w)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    w.flush()
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let mut truth_path = args.out.clone().into_os_string();
    truth_path.push(".truth.json");
    let truth_path = PathBuf::from(truth_path);
    let mut json = serde_json::to_vec_pretty(&truth)?;
    json.push(b'\n');
    std::fs::File::create(&truth_path)
        .and_then(|mut f| f.write_all(&json))
        .with_context(|| format!("cannot write {}", truth_path.display()))?;
    Ok(truth)
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Log files; `-` for standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print the report as JSON (the same document as `POST /logs/analyze`).
    #[arg(long, conflicts_with = "annotate")]
    pub json: bool,
    /// Print one JSON line per input line (`{"line", "level", "format", "template_id"}`),
    /// then one per template (`{"template_id", "canonical_id", "count", "template"}`).
    #[arg(long)]
    pub annotate: bool,
    /// How many patterns to list (default 20; 50 with --json, as the API).
    #[arg(long)]
    pub top: Option<usize>,
    /// Lines longer than this many bytes are truncated (and counted).
    #[arg(long, default_value_t = 65536)]
    pub max_line_bytes: usize,
    /// Worker threads (default: the number of CPUs, at most 8). The report is the same for
    /// any number.
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The server's base URL, e.g. `https://watchpost.example.com` (the agent posts to
    /// `<URL>/ingest`).
    #[arg(long, env = "WATCHPOST_AGENT_SERVER")]
    pub server: String,
    /// The host's agent token, from `POST /admin/hosts` or the Hosts page. Prefer the
    /// environment variable: a command line is visible to every user in `ps`.
    #[arg(long, env = "WATCHPOST_AGENT_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub token: Option<crate::config::Secret>,
    /// Samples kept while the server is unreachable; beyond that the oldest are dropped.
    #[arg(long, env = "WATCHPOST_AGENT_BUFFER", default_value_t = 86_400)]
    pub buffer: usize,
    /// File for unsent samples: written at shutdown, sent after the next start.
    #[arg(long, env = "WATCHPOST_AGENT_SPOOL")]
    pub spool: Option<PathBuf>,
    /// Most samples per request.
    #[arg(long, env = "WATCHPOST_AGENT_BATCH", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch: u64,
    /// Time limit of one request to the server, e.g. `10s`.
    #[arg(long, env = "WATCHPOST_AGENT_TIMEOUT", default_value = "10s")]
    pub timeout: String,
}

fn parse_secret(s: &str) -> Result<crate::config::Secret, String> {
    Ok(crate::config::Secret::new(s))
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Demo username.
    #[arg(long, default_value = "demo")]
    pub username: String,
    /// Demo password.
    #[arg(long, default_value = "demo-password-42")]
    pub password: String,
    /// Hours of samples to generate.
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
    /// Seconds between generated samples.
    #[arg(long, default_value_t = 10)]
    pub step_secs: u32,
}

/// Every setting can come from the TOML file, the environment or the command line (in
/// increasing precedence). `None` means "not given here".
#[derive(Debug, Args, Default)]
pub struct Overrides {
    /// TOML configuration file.
    #[arg(long, env = "WATCHPOST_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "WATCHPOST_BIND", global = true)]
    pub bind: Option<String>,
    /// `sqlite://PATH` or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Collector interval, e.g. `1s`, `500ms`, `2m`.
    #[arg(long, env = "WATCHPOST_INTERVAL", global = true)]
    pub interval: Option<String>,
    /// Disable the local collector (`true`/`false`).
    #[arg(long, env = "WATCHPOST_COLLECTOR", global = true)]
    pub collector: Option<bool>,
    /// Log format: `pretty` or `json`.
    #[arg(long, env = "WATCHPOST_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
    /// Log filter (tracing EnvFilter syntax), e.g. `info,watchpost=debug`.
    #[arg(long, env = "WATCHPOST_LOG", global = true)]
    pub log: Option<String>,
    /// Shared secret for the admin endpoints (at least 16 bytes); unset disables them.
    #[arg(long, env = "ADMIN_TOKEN", global = true, hide_env_values = true)]
    pub admin_token: Option<String>,
    /// API token lifetime in minutes.
    #[arg(long, env = "WATCHPOST_TOKEN_TTL_MINUTES", global = true)]
    pub token_ttl_minutes: Option<u64>,
    /// Failed logins per account within the window before back-off starts.
    #[arg(long, env = "WATCHPOST_LOGIN_MAX_FAILURES_ACCOUNT", global = true)]
    pub login_max_failures_account: Option<u32>,
    /// Failed logins per client IP within the window before back-off starts.
    #[arg(long, env = "WATCHPOST_LOGIN_MAX_FAILURES_IP", global = true)]
    pub login_max_failures_ip: Option<u32>,
    /// Window in seconds over which login failures are counted.
    #[arg(long, env = "WATCHPOST_LOGIN_WINDOW_SECS", global = true)]
    pub login_window_secs: Option<u64>,
    /// First lockout in seconds (doubles per further failure).
    #[arg(long, env = "WATCHPOST_LOGIN_LOCKOUT_SECS", global = true)]
    pub login_lockout_secs: Option<u64>,
    /// Longest lockout in seconds.
    #[arg(long, env = "WATCHPOST_LOGIN_LOCKOUT_MAX_SECS", global = true)]
    pub login_lockout_max_secs: Option<u64>,
    /// Comma-separated proxy IPs whose X-Forwarded-For is trusted.
    #[arg(
        long,
        env = "WATCHPOST_TRUSTED_PROXIES",
        global = true,
        value_delimiter = ','
    )]
    pub trusted_proxies: Option<Vec<std::net::IpAddr>>,
    /// Largest accepted JSON body in bytes.
    #[arg(long, env = "WATCHPOST_MAX_BODY_BYTES", global = true)]
    pub max_body_bytes: Option<usize>,
    /// Handler time limit in seconds (503 after).
    #[arg(long, env = "WATCHPOST_REQUEST_TIMEOUT_SECS", global = true)]
    pub request_timeout_secs: Option<u64>,
    /// Seconds a client gets to send its first byte and then its request headers.
    #[arg(long, env = "WATCHPOST_HEADER_READ_TIMEOUT_SECS", global = true)]
    pub header_read_timeout_secs: Option<u64>,
    /// Cap on open connections.
    #[arg(long, env = "WATCHPOST_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// Concurrent argon2 computations (19 MiB each).
    #[arg(long, env = "WATCHPOST_HASH_CONCURRENCY", global = true)]
    pub hash_concurrency: Option<usize>,
    /// /metrics/history downsamples ranges with more samples than this.
    #[arg(long, env = "WATCHPOST_HISTORY_MAX_POINTS", global = true)]
    pub history_max_points: Option<u32>,
    /// Database pool size.
    #[arg(long, env = "WATCHPOST_DB_MAX_CONNECTIONS", global = true)]
    pub db_max_connections: Option<u32>,
    /// Seconds to wait for a database connection before answering 503.
    #[arg(long, env = "WATCHPOST_DB_ACQUIRE_TIMEOUT_SECS", global = true)]
    pub db_acquire_timeout_secs: Option<u64>,
    /// Seconds a statement waits for another connection's lock before 503.
    #[arg(long, env = "WATCHPOST_DB_LOCK_TIMEOUT_SECS", global = true)]
    pub db_lock_timeout_secs: Option<u64>,
    /// PostgreSQL statement_timeout in seconds (0: none).
    #[arg(long, env = "WATCHPOST_DB_STATEMENT_TIMEOUT_SECS", global = true)]
    pub db_statement_timeout_secs: Option<u64>,
    /// Longest pause in an upload body before it is cut off (408).
    #[arg(long, env = "WATCHPOST_UPLOAD_IDLE_TIMEOUT_SECS", global = true)]
    pub upload_idle_timeout_secs: Option<u64>,
    /// Seconds to drain connections at shutdown.
    #[arg(long, env = "WATCHPOST_SHUTDOWN_GRACE_SECS", global = true)]
    pub shutdown_grace_secs: Option<u64>,
    /// Mark the session cookie Secure (set false for plain-HTTP LAN use).
    #[arg(long, env = "WATCHPOST_COOKIE_SECURE", global = true)]
    pub cookie_secure: Option<bool>,
    /// HSTS max-age in seconds when cookies are Secure (0: no HSTS header).
    #[arg(long, env = "WATCHPOST_HSTS_MAX_AGE_SECS", global = true)]
    pub hsts_max_age_secs: Option<u64>,
    /// Dashboard session idle timeout in seconds.
    #[arg(long, env = "WATCHPOST_SESSION_IDLE_SECS", global = true)]
    pub session_idle_secs: Option<u64>,
    /// Dashboard session absolute lifetime in seconds.
    #[arg(long, env = "WATCHPOST_SESSION_ABSOLUTE_SECS", global = true)]
    pub session_absolute_secs: Option<u64>,
    /// Global webhook for alerts of global rules (trusted: private addresses allowed).
    #[arg(long, env = "ALERT_WEBHOOK_URL", global = true, hide_env_values = true)]
    pub alert_webhook_url: Option<String>,
    /// Signing secret of the global webhook (`whsec_…`); generated and kept if unset.
    #[arg(
        long,
        env = "ALERT_WEBHOOK_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub alert_webhook_secret: Option<String>,
    /// Retries after the first failed delivery attempt (every channel).
    #[arg(long, env = "ALERT_WEBHOOK_RETRIES", global = true)]
    pub alert_webhook_retries: Option<u32>,
    /// Base of the exponential back-off between attempts, in seconds (fractions allowed).
    #[arg(long, env = "ALERT_WEBHOOK_BACKOFF", global = true)]
    pub alert_webhook_backoff: Option<f64>,
    /// SMTP server for email notifications.
    #[arg(long, env = "ALERT_SMTP_HOST", global = true)]
    pub alert_smtp_host: Option<String>,
    #[arg(long, env = "ALERT_SMTP_PORT", global = true)]
    pub alert_smtp_port: Option<u16>,
    #[arg(long, env = "ALERT_SMTP_USER", global = true)]
    pub alert_smtp_user: Option<String>,
    #[arg(long, env = "ALERT_SMTP_PASS", global = true, hide_env_values = true)]
    pub alert_smtp_pass: Option<String>,
    /// `auto` (loopback: plain, port 465: TLS, else STARTTLS), `starttls`, `tls` or `none` (loopback only).
    #[arg(long, env = "WATCHPOST_SMTP_TLS", global = true)]
    pub alert_smtp_tls: Option<String>,
    /// Sender address of notification emails.
    #[arg(long, env = "ALERT_FROM", global = true)]
    pub alert_from: Option<String>,
    /// Recipients of global alert emails (comma separated).
    #[arg(long, env = "ALERT_TO", global = true)]
    pub alert_to: Option<String>,
    /// Per-attempt webhook timeout in seconds.
    #[arg(long, env = "WATCHPOST_WEBHOOK_TIMEOUT_SECS", global = true)]
    pub webhook_timeout_secs: Option<u64>,
    /// Let users send webhooks to private, loopback and link-local addresses.
    #[arg(long, env = "WATCHPOST_ALLOW_PRIVATE_WEBHOOKS", global = true)]
    pub allow_private_webhooks: Option<bool>,
    /// Run the notification worker in this process.
    #[arg(long, env = "WATCHPOST_NOTIFIER", global = true)]
    pub notifier: Option<bool>,
    /// Take part in the one-replica-at-a-time jobs (agent alerts, retention).
    #[arg(long, env = "WATCHPOST_LEADER_JOBS", global = true)]
    pub leader_jobs: Option<bool>,
    /// Deliveries sent concurrently by one worker.
    #[arg(long, env = "WATCHPOST_NOTIFY_CONCURRENCY", global = true)]
    pub notify_concurrency: Option<usize>,
    /// Attempts in flight to one channel at most, per worker (default 4).
    #[arg(long, env = "WATCHPOST_NOTIFY_CHANNEL_CONCURRENCY", global = true)]
    pub notify_channel_concurrency: Option<usize>,
    /// Random wait before the first delivery round when deliveries are due at start-up, ms (default 1000).
    #[arg(long, env = "WATCHPOST_NOTIFY_STARTUP_JITTER_MS", global = true)]
    pub notify_startup_jitter_ms: Option<u64>,
    /// How long a claim holds a delivery, seconds (0: derived from the attempt timeouts).
    #[arg(long, env = "WATCHPOST_NOTIFY_LEASE_SECS", global = true)]
    pub notify_lease_secs: Option<u64>,
    /// Largest log upload in bytes (default 256 MiB).
    #[arg(long, env = "WATCHPOST_LOG_UPLOAD_MAX_BYTES", global = true)]
    pub log_upload_max_bytes: Option<u64>,
    /// Largest `{"logs": "..."}` JSON body in bytes (default 32 MiB).
    #[arg(long, env = "WATCHPOST_LOG_JSON_MAX_BYTES", global = true)]
    pub log_json_max_bytes: Option<usize>,
    /// Stored log analyses kept per user; the oldest go first (default 500).
    #[arg(long, env = "WATCHPOST_LOG_ANALYSES_PER_USER", global = true)]
    pub log_analyses_per_user: Option<u64>,
    /// Log analyses running at once (default: CPU count).
    #[arg(long, env = "WATCHPOST_ANALYSIS_CONCURRENCY", global = true)]
    pub analysis_concurrency: Option<usize>,
    /// Time limit for one upload and its analysis, seconds (default 600).
    #[arg(long, env = "WATCHPOST_ANALYSIS_TIMEOUT_SECS", global = true)]
    pub analysis_timeout_secs: Option<u64>,
    /// Bearer token required by /metrics/prometheus (at least 16 bytes); unset = public.
    #[arg(
        long,
        env = "WATCHPOST_PROMETHEUS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub prometheus_token: Option<String>,
    /// Largest `POST /ingest` body in bytes (default 4 MiB).
    #[arg(long, env = "WATCHPOST_INGEST_MAX_BODY_BYTES", global = true)]
    pub ingest_max_body_bytes: Option<usize>,
    /// Most samples in one agent batch (default 10000).
    #[arg(long, env = "WATCHPOST_INGEST_MAX_SAMPLES", global = true)]
    pub ingest_max_samples: Option<usize>,
    /// Seconds a sample may be stamped ahead of the server's clock (default 300).
    #[arg(long, env = "WATCHPOST_INGEST_MAX_FUTURE_SECS", global = true)]
    pub ingest_max_future_secs: Option<u64>,
    /// Samples that may wait for the ingest writer before agents get 503 (default 100000).
    #[arg(long, env = "WATCHPOST_INGEST_QUEUE_ROWS", global = true)]
    pub ingest_queue_rows: Option<usize>,
    /// Milliseconds the ingest writer waits for more requests to commit together (default 2).
    #[arg(long, env = "WATCHPOST_INGEST_COMMIT_DELAY_MS", global = true)]
    pub ingest_commit_delay_ms: Option<u64>,
    /// Samples per ingest transaction at most (default 5000).
    #[arg(long, env = "WATCHPOST_INGEST_COMMIT_MAX_ROWS", global = true)]
    pub ingest_commit_max_rows: Option<usize>,
    /// Hours batch ids are remembered to recognise retried batches (default 24).
    #[arg(long, env = "WATCHPOST_INGEST_BATCH_RETENTION_HOURS", global = true)]
    pub ingest_batch_retention_hours: Option<u64>,
    /// Missed intervals after which a host is stale (default 3).
    #[arg(long, env = "WATCHPOST_HOST_STALE_INTERVALS", global = true)]
    pub host_stale_intervals: Option<u32>,
    /// Missed intervals after which a host is down (default 10).
    #[arg(long, env = "WATCHPOST_HOST_DOWN_INTERVALS", global = true)]
    pub host_down_intervals: Option<u32>,
    /// How long raw samples are kept: `7d`, `36h`, `2w`, `1y`, a number of days, or `off` (default 7d).
    #[arg(long, env = "WATCHPOST_RETENTION_RAW", global = true)]
    pub retention_raw: Option<String>,
    /// How long 1-minute rollups are kept (default 90d).
    #[arg(long = "retention-1m", env = "WATCHPOST_RETENTION_1M", global = true)]
    pub retention_1m: Option<String>,
    /// How long 1-hour rollups are kept (default 2y).
    #[arg(long = "retention-1h", env = "WATCHPOST_RETENTION_1H", global = true)]
    pub retention_1h: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("500KB"), Ok(500_000));
        assert_eq!(parse_size("500kb"), Ok(500_000));
        assert_eq!(parse_size("100MiB"), Ok(100 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("0.5MiB"), Ok(1 << 19));
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("1.2.3MB").is_err());
        assert!(parse_size("99999999999TiB").is_err());
    }

    #[test]
    fn gen_logs_parses_and_is_hidden() {
        let cli = Cli::try_parse_from([
            "watchpost",
            "gen-logs",
            "--size",
            "1MiB",
            "--seed",
            "7",
            "x.log",
        ])
        .unwrap();
        match cli.command {
            Some(Command::GenLogs(a)) => {
                assert_eq!((a.size, a.seed, a.year), (1 << 20, 7, 2026));
                assert_eq!(a.out, PathBuf::from("x.log"));
            }
            other => panic!("{other:?}"),
        }
        use clap::CommandFactory;
        let help = Cli::command().render_help().to_string();
        assert!(!help.contains("gen-logs"));
        assert!(Cli::try_parse_from(["watchpost", "gen-logs", "--year", "1900", "x"]).is_err());
    }
}
