//! Logging on stderr, filtered by `--log` / `KEYINFRA_LOG`: human-readable lines, or one JSON
//! object per line (`--log-format json`) for log collectors. The HTTP layer puts each
//! request's id into its span, so every line a request causes carries `request_id`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(filter: &str, format: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!(
            "keyinfra: warning: KEYINFRA_LOG={filter:?} is not a valid filter ({e}); using `info`"
        );
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}
