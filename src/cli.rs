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
}
