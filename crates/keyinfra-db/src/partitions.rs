//! Partition maintenance for `certificates`, through the SQL functions of migration 0004.

use time::{Duration, OffsetDateTime};

use crate::error::DbError;
use crate::session::Tx;

/// A partition created or dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionChange {
    pub name: String,
    pub range_start: OffsetDateTime,
    pub range_end: OffsetDateTime,
    /// Rows moved in from the default partition (created), or rows dropped (dropped).
    pub rows: i64,
    /// Private keys deleted with a dropped partition (only dropped certificates used them).
    pub keys: i64,
}

/// Creates the monthly partitions from `as_of`'s month through `months_ahead` months later.
pub async fn ensure(
    tx: &mut Tx,
    months_ahead: i32,
    as_of: OffsetDateTime,
) -> Result<Vec<PartitionChange>, DbError> {
    let rows = sqlx::query_as!(
        PartitionChange,
        r#"SELECT partition_name AS "name!", range_start AS "range_start!",
                  range_end AS "range_end!", rows_moved AS "rows!", 0::bigint AS "keys!"
           FROM ensure_certificate_partitions($1, $2)"#,
        months_ahead,
        as_of
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// Drops the partitions whose whole range ended more than `retention` before `as_of`.
pub async fn drop_expired(
    tx: &mut Tx,
    retention: Duration,
    as_of: OffsetDateTime,
) -> Result<Vec<PartitionChange>, DbError> {
    let retention = sqlx::postgres::types::PgInterval::try_from(retention)
        .map_err(|e| DbError::Internal(format!("retention out of range: {e}")))?;
    let rows = sqlx::query_as!(
        PartitionChange,
        r#"SELECT partition_name AS "name!", range_start AS "range_start!",
                  range_end AS "range_end!", certificates_dropped AS "rows!",
                  keys_dropped AS "keys!"
           FROM drop_expired_certificate_partitions($1, $2)"#,
        retention,
        as_of
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}
