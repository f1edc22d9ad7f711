//! The schema's reversible migrations and the `keyinfra migrate` operations.
//!
//! Migrations run on a dedicated connection as the URL's own role, which becomes the owner
//! of every table; the application itself then always runs as `keyinfra_app`. sqlx takes
//! an advisory lock while migrating, so several replicas starting at once apply each
//! migration exactly once.

use sqlx::migrate::{Migrate, Migrator};
use time::OffsetDateTime;

use crate::error::DbError;
use crate::pool::owner_connection;

/// sqlx's bookkeeping table (its default name).
pub(crate) const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

/// The migrations in `migrations/`, embedded at build time.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The newest migration version this build knows; `/readyz` expects the database there.
pub fn latest_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// One migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    pub version: i64,
    pub description: String,
    pub applied_at: Option<OffsetDateTime>,
    /// The applied migration's checksum differs from this build's file: someone edited a
    /// migration after it ran.
    pub checksum_mismatch: bool,
}

/// Applies every pending migration; returns the versions applied.
pub async fn up(url: &str) -> Result<Vec<i64>, DbError> {
    let mut conn = owner_connection(url).await?;
    let before = applied_versions(&mut conn).await?;
    MIGRATOR.run(&mut conn).await?;
    let after = applied_versions(&mut conn).await?;
    Ok(after.into_iter().filter(|v| !before.contains(v)).collect())
}

/// Reverts applied migrations newer than `target`, newest first; returns the versions
/// reverted. `target = None` reverts only the newest applied migration.
pub async fn down(url: &str, target: Option<i64>) -> Result<Vec<i64>, DbError> {
    if let Some(t) = target
        && t < 0
    {
        return Err(DbError::Migration(format!(
            "--to must be 0 or a migration version, not {t}"
        )));
    }
    let mut conn = owner_connection(url).await?;
    let before = applied_versions(&mut conn).await?;
    let target = match target {
        Some(t) => t,
        // One step: to the applied version just below the newest one.
        None => {
            let mut applied = before.clone();
            applied.sort_unstable();
            applied.pop();
            applied.pop().unwrap_or(0)
        }
    };
    if target != 0 && !MIGRATOR.iter().any(|m| m.version == target) {
        return Err(DbError::Migration(format!(
            "--to {target} is not a known migration version (known: {})",
            MIGRATOR
                .iter()
                .filter(|m| m.migration_type.is_up_migration())
                .map(|m| m.version.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    MIGRATOR.undo(&mut conn, target).await?;
    let after = applied_versions(&mut conn).await?;
    let mut reverted: Vec<i64> = before.into_iter().filter(|v| !after.contains(v)).collect();
    reverted.sort_unstable_by(|a, b| b.cmp(a));
    Ok(reverted)
}

/// Every known migration, applied or not.
pub async fn status(url: &str) -> Result<Vec<MigrationStatus>, DbError> {
    let mut conn = owner_connection(url).await?;
    conn.ensure_migrations_table(MIGRATIONS_TABLE).await?;
    let applied = sqlx::query!(
        "SELECT version, installed_on, checksum FROM _sqlx_migrations WHERE success ORDER BY version"
    )
    .fetch_all(&mut conn)
    .await?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| {
            let row = applied.iter().find(|a| a.version == m.version);
            MigrationStatus {
                version: m.version,
                description: m.description.to_string(),
                applied_at: row.map(|r| r.installed_on),
                checksum_mismatch: row.is_some_and(|r| r.checksum != *m.checksum),
            }
        })
        .collect())
}

async fn applied_versions(conn: &mut sqlx::PgConnection) -> Result<Vec<i64>, DbError> {
    conn.ensure_migrations_table(MIGRATIONS_TABLE).await?;
    Ok(conn
        .list_applied_migrations(MIGRATIONS_TABLE)
        .await?
        .into_iter()
        .map(|m| m.version)
        .collect())
}
