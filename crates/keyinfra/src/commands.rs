//! The subcommands.

use anyhow::Context;
use keyinfra_core::{Clock, SystemClock};
use keyinfra_db::{Actor, Database, migrations, partitions};
use keyinfra_server::AppState;

use crate::cli::{Cli, Command, MigrateCommand, ServeArgs};
use crate::database::{Target, pool_settings};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // Settings are checked before anything starts.
    let pool = pool_settings(&cli.database)?;
    match cli.command {
        Command::Serve(args) => {
            let target = Target::open(&cli.database).await?;
            let outcome = serve(&target.url, &pool, &args).await;
            let closed = target.close().await;
            outcome.and(closed)
        }
        Command::Migrate(command) => {
            let target = Target::open(&cli.database).await?;
            let outcome = migrate(&target.url, command).await;
            let closed = target.close().await;
            outcome.and(closed)
        }
    }
}

async fn serve(
    url: &str,
    pool: &keyinfra_db::PoolSettings,
    args: &ServeArgs,
) -> anyhow::Result<()> {
    let expected = migrations::latest_version();
    if args.no_migrate {
        tracing::info!("--no-migrate: not applying migrations");
    } else {
        let applied = migrations::up(url).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied migrations");
        }
    }
    let db = Database::connect(url, pool).await?;
    let found = db.schema_version().await.unwrap_or(0);
    if found != expected {
        anyhow::bail!(
            "the database schema is at version {found} but this build needs {expected}; run `keyinfra migrate up` (or start without --no-migrate)"
        );
    }

    // The partitions the next months need; the maintenance job keeps this going while the
    // server runs (and it is idempotent, so every replica may do it at start).
    let mut tx = db.begin(&Actor::System).await?;
    let created = partitions::ensure(&mut tx, args.partitions_ahead, SystemClock.now()).await?;
    tx.commit().await?;
    if !created.is_empty() {
        tracing::info!(count = created.len(), "created certificate partitions");
    }

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (--listen / KEYINFRA_LISTEN)",
                args.listen
            )
        })?;
    let address = listener
        .local_addr()
        .context("the listening socket has no address")?;
    tracing::info!("listening on http://{address}");

    let state = AppState {
        db: db.clone(),
        expected_schema_version: expected,
    };
    keyinfra_server::serve(listener, state, shutdown_signal())
        .await
        .context("the HTTP server failed")?;
    tracing::info!("shutting down: closing database connections");
    db.close().await;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM ({e}); only Ctrl-C stops the server");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = interrupt => tracing::info!("received SIGINT"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}

async fn migrate(url: &str, command: MigrateCommand) -> anyhow::Result<()> {
    let out = |line: String| {
        #[allow(clippy::print_stdout)] // The command's output is its result.
        {
            println!("{line}");
        }
    };
    match command {
        MigrateCommand::Up => {
            let applied = migrations::up(url).await?;
            if applied.is_empty() {
                out("nothing to apply: the schema is current".to_owned());
            }
            for version in applied {
                out(format!("applied {version}"));
            }
        }
        MigrateCommand::Down { to } => {
            let reverted = migrations::down(url, to).await?;
            if reverted.is_empty() {
                out("nothing to revert".to_owned());
            }
            for version in reverted {
                out(format!("reverted {version}"));
            }
        }
        MigrateCommand::Status => {
            for m in migrations::status(url).await? {
                let state = match (m.applied_at, m.checksum_mismatch) {
                    (Some(_), true) => "applied, but the file changed since".to_owned(),
                    (Some(at), false) => format!("applied {at}"),
                    (None, _) => "pending".to_owned(),
                };
                out(format!("{:04} {:<28} {state}", m.version, m.description));
            }
        }
    }
    Ok(())
}
