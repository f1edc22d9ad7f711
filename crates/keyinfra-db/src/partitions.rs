//! Partition maintenance for `certificates`, through the SQL functions of migration 0004.
//!
//! They bypass row-level security, so since migration 0014 only the tables' owner (or a
//! login role granted EXECUTE) may run them, never keyinfra_app: every function here takes
//! a [`Maintenance`] connection, which runs as the `DATABASE_URL`'s own login role. Each
//! call is one statement, committed when it returns.

use time::{Duration, OffsetDateTime};

use crate::error::DbError;
use crate::pool::{Database, Maintenance};

/// A partition created or dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionChange {
    pub name: String,
    pub range_start: OffsetDateTime,
    pub range_end: OffsetDateTime,
    /// Rows moved in from the default partition (created), or rows dropped (dropped).
    pub rows: i64,
}

/// Creates the monthly partitions from `as_of`'s month through `months_ahead` months later.
pub async fn ensure(
    conn: &mut Maintenance,
    months_ahead: i32,
    as_of: OffsetDateTime,
) -> Result<Vec<PartitionChange>, DbError> {
    let rows = sqlx::query_as!(
        PartitionChange,
        r#"SELECT partition_name AS "name!", range_start AS "range_start!",
                  range_end AS "range_end!", rows_moved AS "rows!"
           FROM ensure_certificate_partitions($1, $2)"#,
        months_ahead,
        as_of
    )
    .fetch_all(conn.conn())
    .await?;
    Ok(rows)
}

/// Drops at most `max_partitions` (all if None) of the partitions whose whole range ended
/// more than `retention` before `as_of`, oldest first, with their registry rows (and so their
/// revocations and alerts). Dropping a partition locks `certificates` until the statement's
/// transaction ends, so [`apply_retention`] drops one per call.
pub async fn drop_expired(
    conn: &mut Maintenance,
    retention: Duration,
    as_of: OffsetDateTime,
    max_partitions: Option<i32>,
) -> Result<Vec<PartitionChange>, DbError> {
    let retention = sqlx::postgres::types::PgInterval::try_from(retention)
        .map_err(|e| DbError::Internal(format!("retention out of range: {e}")))?;
    let rows = sqlx::query_as!(
        PartitionChange,
        r#"SELECT partition_name AS "name!", range_start AS "range_start!",
                  range_end AS "range_end!", certificates_dropped AS "rows!"
           FROM drop_expired_certificate_partitions($1, $2, $3)"#,
        retention,
        as_of,
        max_partitions
    )
    .fetch_all(conn.conn())
    .await?;
    Ok(rows)
}

/// Deletes up to `batch` private keys that no certificate and no CA uses; returns how many.
pub async fn delete_orphaned_keys(conn: &mut Maintenance, batch: i32) -> Result<i64, DbError> {
    let deleted = sqlx::query_scalar!(
        r#"SELECT delete_orphaned_private_keys($1) AS "deleted!""#,
        batch
    )
    .fetch_one(conn.conn())
    .await?;
    Ok(deleted)
}

/// What retention removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    pub dropped: Vec<PartitionChange>,
    pub keys_deleted: i64,
}

/// Retention as the maintenance job runs it: one partition per statement (so the lock on
/// `certificates` lasts only for the DROP), then the orphaned keys in batches, on one
/// [`Maintenance`] connection. Maintenance is batch work: its statements may take up to
/// `statement_timeout` each.
pub async fn apply_retention(
    db: &Database,
    retention: Duration,
    as_of: OffsetDateTime,
    statement_timeout: std::time::Duration,
) -> Result<RetentionReport, DbError> {
    let mut conn = db.maintenance().await?;
    conn.set_statement_timeout(statement_timeout).await?;
    let mut report = RetentionReport::default();
    loop {
        let dropped = drop_expired(&mut conn, retention, as_of, Some(1)).await?;
        if dropped.is_empty() {
            break;
        }
        report.dropped.extend(dropped);
    }
    const BATCH: i32 = 10_000;
    loop {
        let deleted = delete_orphaned_keys(&mut conn, BATCH).await?;
        report.keys_deleted += deleted;
        if deleted < i64::from(BATCH) {
            break;
        }
    }
    conn.close().await;
    Ok(report)
}
