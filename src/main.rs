//! Entry point: parse the command line, load settings, dispatch.

use clap::Parser;
use std::process::ExitCode;
use watchpost::cli::{Cli, Command};
use watchpost::config::Settings;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::GenLogs(args)) = &cli.command {
        return match watchpost::cli::gen_logs(args) {
            Ok(t) => {
                eprintln!(
                    "wrote {} lines, {} bytes to {} (truth: {}.truth.json)",
                    t.lines,
                    t.bytes,
                    args.out.display(),
                    args.out.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("watchpost: gen-logs: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // Analysing files needs neither configuration nor a runtime.
    if let Some(Command::Analyze(args)) = &cli.command {
        return watchpost::analyze_cli::run(args);
    }
    // The agent needs no server configuration (no database, no admin token).
    if let Some(Command::Agent(args)) = &cli.command {
        return run_agent(args, &cli.overrides);
    }
    let settings = match Settings::load(&cli.overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("watchpost: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::PrintConfig) = cli.command {
        print!("{}", settings.to_redacted_toml());
        return ExitCode::SUCCESS;
    }
    watchpost::telemetry::init(settings.log_format, &settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("watchpost: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Seed(args)) => {
                let r = watchpost::seed::run(&settings, &args).await?;
                println!("Seeded {} samples and {} alerts.", r.samples, r.alerts);
                println!("Demo user: {} / {}", r.username, r.password);
                println!("Demo token (expires {}):\n{}", r.expires_at, r.token);
                println!(
                    "Try: curl -H 'token: {}' http://{}/summary",
                    r.token, settings.bind
                );
                Ok(())
            }
            Some(Command::RebuildRollups) => {
                // One statement over every raw row: far longer than a request's statement
                // timeout on a big database, and nobody is waiting on it but the operator.
                let mut settings = settings;
                settings.db_statement_timeout_secs = 0;
                let store = watchpost::store::connect(&settings).await?;
                let rows = store.rebuild_rollups().await;
                store.close().await;
                println!("Rebuilt {} rollup rows from the raw samples.", rows?);
                Ok(())
            }
            _ => {
                let app = watchpost::app::App::build(settings).await?;
                app.run_until_stopped(watchpost::http::server::shutdown_signal())
                    .await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("watchpost: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `watchpost agent`: logging as configured, then the agent until SIGTERM/Ctrl-C.
fn run_agent(args: &watchpost::cli::AgentArgs, overrides: &watchpost::cli::Overrides) -> ExitCode {
    let format = match overrides.log_format.as_deref() {
        None | Some("pretty") => watchpost::config::LogFormat::Pretty,
        Some("json") => watchpost::config::LogFormat::Json,
        Some(other) => {
            eprintln!("watchpost: unknown log format {other:?} (expected json or pretty)");
            return ExitCode::from(2);
        }
    };
    watchpost::telemetry::init(format, overrides.log.as_deref().unwrap_or("info"));
    let config = match watchpost::agent::AgentConfig::from_cli(args, overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("watchpost: agent: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("watchpost: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let agent = watchpost::agent::Agent::new(config);
    match runtime.block_on(agent.run(watchpost::http::server::shutdown_signal())) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("watchpost: agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}
