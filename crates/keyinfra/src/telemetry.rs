//! Logging: human-readable lines on stderr, filtered by `--log` / `KEYINFRA_LOG`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!(
            "keyinfra: warning: KEYINFRA_LOG={filter:?} is not a valid filter ({e}); using `info`"
        );
        EnvFilter::new("info")
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
