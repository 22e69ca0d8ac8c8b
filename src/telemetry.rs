//! Tracing subscriber (pretty or JSON), initialised once.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` wins over the configured filter. Calling it
/// twice is harmless (the second call does nothing).
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: in a file or the journal, escape sequences garble the
    // records and get in the way of grepping them.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // `log_internal_errors(false)`: on a failed write (stderr redirected to a file on a
    // full disk, a closed pipe) the builder's default reports the failure with
    // `eprintln!`, which panics when stderr fails too: every log line would then panic
    // the request or background task that logged it. A lost log line is the lesser harm.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
