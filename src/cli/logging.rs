//! Logging: progress bars on a terminal, structured lines elsewhere.

use super::args::{Cli, LogFormat};

/// Logging. On a terminal (text format, not `--quiet`): warnings and errors as lines, and progress
/// bars for long runs (per source and day, records/s). Otherwise (a scheduler, a pipe): structured
/// lines at `info` (one per source-day with its counts and rate, one per stage), as text or JSON
/// (`--log-format json`). `--quiet`: errors only. `CCHC_LOG` (an `EnvFilter`) overrides the level.
pub fn init(cli: &Cli) {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    let terminal = std::io::stderr().is_terminal();
    let progress = terminal && !cli.quiet && cli.log_format == LogFormat::Text;
    let default = match (cli.quiet, terminal) {
        (true, _) => "error",
        (false, true) => "warn",
        (false, false) => "info",
    };
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("CCHC_LOG").unwrap_or_else(|_| default.into())
    };
    let _ = if progress {
        let bars = tracing_indicatif::IndicatifLayer::new();
        let lines = tracing_subscriber::fmt::layer()
            .with_writer(bars.get_stderr_writer())
            .with_filter(filter());
        let only_progress = tracing_subscriber::filter::Targets::new()
            .with_target(crate::base::PROGRESS, tracing::Level::INFO);
        tracing_subscriber::registry()
            .with(lines)
            .with(bars.with_filter(only_progress))
            .try_init()
    } else {
        // Colour only on a terminal: a log file or a scheduler's pipe gets plain text.
        let lines = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(terminal);
        match cli.log_format {
            LogFormat::Json => tracing_subscriber::registry()
                .with(lines.json().with_filter(filter()))
                .try_init(),
            LogFormat::Text => tracing_subscriber::registry()
                .with(lines.with_filter(filter()))
                .try_init(),
        }
    };
}
