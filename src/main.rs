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
