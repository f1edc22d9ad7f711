//! The `keyinfra` command: `serve`, `migrate`, and the embedded PostgreSQL default.

mod backup_commands;
mod ca_commands;
mod cli;
mod commands;
mod database;
mod listen;
mod operations;
mod policy_commands;
mod secrets;
mod telemetry;
mod tls;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Before any thread starts (logging and the runtime below start them): secrets given in
    // the environment leave it, so that no child process inherits them.
    secrets::take_from_environment();
    telemetry::init(&cli.log, &cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keyinfra: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One sentence per cause, outermost first; never a panic or a backtrace.
            // Some errors already quote their cause in their own message: say it once.
            let mut sentence = String::new();
            for cause in error.chain().map(ToString::to_string) {
                if !sentence.contains(&cause) {
                    if !sentence.is_empty() {
                        sentence.push_str(": ");
                    }
                    sentence.push_str(&cause);
                }
            }
            eprintln!("keyinfra: error: {sentence}");
            ExitCode::FAILURE
        }
    }
}
