//! Where the database comes from: `DATABASE_URL`, or the embedded cluster.

use std::path::{Path, PathBuf};

use anyhow::Context;
use keyinfra_db::PoolSettings;
use keyinfra_embedded_pg::{ClusterSettings, EmbeddedCluster, PgBinaries};

use crate::cli::DatabaseArgs;

/// The database KeyInfra creates inside its embedded cluster.
const EMBEDDED_DATABASE: &str = "keyinfra";

/// A database to work on, and the cluster behind it when it is ours.
#[derive(Debug)]
pub struct Target {
    pub url: String,
    cluster: Option<EmbeddedCluster>,
}

impl Target {
    /// Whether this is the embedded cluster (not `DATABASE_URL`).
    pub fn is_embedded(&self) -> bool {
        self.cluster.is_some()
    }

    /// Uses `DATABASE_URL`, or starts the embedded cluster and makes sure its database exists.
    pub async fn open(args: &DatabaseArgs) -> anyhow::Result<Self> {
        if let Some(url) = args.database_url.as_deref().filter(|u| !u.is_empty()) {
            tracing::info!(database = %keyinfra_db::describe_url(url), "using DATABASE_URL");
            return Ok(Self {
                url: url.to_owned(),
                cluster: None,
            });
        }
        let data_dir = absolute(&args.data_dir)?;
        let bindir = args.pg_bindir.clone();
        let os_user = args.pg_os_user.clone();
        tracing::info!(data_dir = %data_dir.display(), "DATABASE_URL is not set; starting the embedded PostgreSQL");
        let cluster = tokio::task::spawn_blocking(move || -> anyhow::Result<EmbeddedCluster> {
            let binaries = PgBinaries::locate(bindir.as_deref())?;
            let mut settings = ClusterSettings::new(data_dir, binaries);
            settings.os_user = Some(os_user);
            Ok(EmbeddedCluster::start(settings)?)
        })
        .await
        .context("the embedded PostgreSQL supervisor stopped unexpectedly")??;
        let target = Self {
            url: cluster.database_url(EMBEDDED_DATABASE),
            cluster: Some(cluster),
        };
        let server = target
            .cluster
            .as_ref()
            .map(|c| c.database_url("postgres"))
            .unwrap_or_default();
        if keyinfra_db::create_database_if_missing(&server, EMBEDDED_DATABASE).await? {
            tracing::info!("created database {EMBEDDED_DATABASE} in the embedded cluster");
        }
        Ok(target)
    }

    /// Stops the embedded cluster cleanly (a fast shutdown with a checkpoint), if any.
    pub async fn close(mut self) -> anyhow::Result<()> {
        if let Some(mut cluster) = self.cluster.take() {
            tracing::info!("stopping the embedded PostgreSQL");
            tokio::task::spawn_blocking(move || cluster.stop())
                .await
                .context("the embedded PostgreSQL supervisor stopped unexpectedly")??;
        }
        Ok(())
    }
}

/// Pool settings from the command line, checked for consistency.
pub fn pool_settings(args: &DatabaseArgs) -> anyhow::Result<PoolSettings> {
    if args.db_pool_max == 0 {
        anyhow::bail!("KEYINFRA_DB_POOL_MAX (--db-pool-max) must be at least 1");
    }
    if args.db_pool_min > args.db_pool_max {
        anyhow::bail!(
            "KEYINFRA_DB_POOL_MIN (--db-pool-min = {}) must not exceed KEYINFRA_DB_POOL_MAX (--db-pool-max = {})",
            args.db_pool_min,
            args.db_pool_max
        );
    }
    if args.db_acquire_timeout.is_zero() {
        anyhow::bail!(
            "KEYINFRA_DB_ACQUIRE_TIMEOUT (--db-acquire-timeout) must be longer than zero"
        );
    }
    if args.db_statement_timeout.as_millis() < 1 {
        anyhow::bail!(
            "KEYINFRA_DB_STATEMENT_TIMEOUT (--db-statement-timeout) must be at least 1ms"
        );
    }
    Ok(PoolSettings {
        min_connections: args.db_pool_min,
        max_connections: args.db_pool_max,
        acquire_timeout: args.db_acquire_timeout,
        statement_timeout: args.db_statement_timeout,
        slow_query: args.slow_query,
        ..PoolSettings::default()
    })
}

pub fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_owned());
    }
    let cwd = std::env::current_dir()
        .context("cannot resolve the relative data directory (--data-dir / KEYINFRA_DATA_DIR)")?;
    Ok(cwd.join(path))
}
