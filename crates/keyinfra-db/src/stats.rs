//! Dashboard statistics from the `certificate_stats` materialized view.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::DbError;
use crate::pool::Maintenance;
use crate::session::Tx;
use crate::types::CertificateStatus;

/// One (CA, owner, status) group. `owner_id` is the nil UUID for certificates without owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsRow {
    pub ca_id: Uuid,
    pub owner_id: Uuid,
    pub status: CertificateStatus,
    pub certificates: i64,
    pub expiring_7d: i64,
    pub expiring_30d: i64,
    pub refreshed_at: OffsetDateTime,
}

/// Refreshes the view concurrently (readers are not blocked); returns its new timestamp.
/// A maintenance function (migration 0014): keyinfra_app may not run it.
pub async fn refresh(conn: &mut Maintenance) -> Result<Option<OffsetDateTime>, DbError> {
    let at = sqlx::query_scalar!("SELECT refresh_certificate_stats()")
        .fetch_one(conn.conn())
        .await?;
    Ok(at)
}

/// The rows the current identity may see.
pub async fn visible(tx: &mut Tx) -> Result<Vec<StatsRow>, DbError> {
    let rows = sqlx::query_as!(
        StatsRow,
        r#"SELECT ca_id AS "ca_id!", owner_id AS "owner_id!", status AS "status!: CertificateStatus",
                  certificates AS "certificates!", expiring_7d AS "expiring_7d!",
                  expiring_30d AS "expiring_30d!", refreshed_at AS "refreshed_at!"
           FROM certificate_stats_visible()
           ORDER BY ca_id, owner_id, status"#
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}
