//! The `crls` table: the published CRLs of each CA, complete and delta, as DER.
//!
//! A new CRL reaches the table in parts ([`stage_part`], then [`insert_staged`]): a
//! million-entry CRL is 47 MB, and the publisher writes it as it encodes it, so that
//! neither it nor the database driver ever holds the whole of it.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::DbError;
use crate::session::Tx;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlRecord {
    pub ca_id: Uuid,
    pub crl_number: i64,
    /// None for a complete CRL; for a delta CRL, the number of the complete CRL it is over.
    pub base_crl_number: Option<i64>,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    pub crl_der: Vec<u8>,
}

/// A new CRL's row, without its DER (which was staged in parts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCrl {
    pub ca_id: Uuid,
    pub crl_number: i64,
    pub base_crl_number: Option<i64>,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
}

/// Prepares this transaction to stage a CRL: a temporary table of this connection whose rows
/// leave at the end of each transaction. (A temporary table, not a column written in place:
/// `UPDATE ... SET crl_der = crl_der || $part` would rewrite the whole value per part.)
pub async fn stage_begin(tx: &mut Tx) -> Result<(), DbError> {
    // Runtime-checked: the table exists only in this session, so it cannot be described at
    // build time.
    sqlx::query(
        "CREATE TEMPORARY TABLE IF NOT EXISTS keyinfra_crl_parts (
             seq  integer PRIMARY KEY,
             part bytea   NOT NULL
         ) ON COMMIT DELETE ROWS",
    )
    .execute(tx.conn())
    .await?;
    sqlx::query("DELETE FROM pg_temp.keyinfra_crl_parts")
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// Stages one part of the CRL; parts are joined in `seq` order.
pub async fn stage_part(tx: &mut Tx, seq: i32, part: &[u8]) -> Result<(), DbError> {
    sqlx::query("INSERT INTO pg_temp.keyinfra_crl_parts (seq, part) VALUES ($1, $2)")
        .bind(seq)
        .bind(part)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// One staged part, read back (the publisher hashes the entries after the TBS's start, which
/// it can write only once it has counted them). A part that was never staged reads as empty.
pub async fn staged_part(tx: &mut Tx, seq: i32) -> Result<Vec<u8>, DbError> {
    let part: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT part FROM pg_temp.keyinfra_crl_parts WHERE seq = $1")
            .bind(seq)
            .fetch_optional(tx.conn())
            .await?;
    Ok(part.unwrap_or_default())
}

/// Stores the staged parts, joined, as this CRL; returns its length in bytes.
pub async fn insert_staged(tx: &mut Tx, crl: &NewCrl) -> Result<i64, DbError> {
    let size: i64 = sqlx::query_scalar(
        "INSERT INTO crls (ca_id, crl_number, base_crl_number, this_update, next_update, crl_der)
         SELECT $1, $2, $3, $4, $5, string_agg(part, ''::bytea ORDER BY seq)
         FROM pg_temp.keyinfra_crl_parts
         RETURNING octet_length(crl_der)::bigint",
    )
    .bind(crl.ca_id)
    .bind(crl.crl_number)
    .bind(crl.base_crl_number)
    .bind(crl.this_update)
    .bind(crl.next_update)
    .fetch_one(tx.conn())
    .await?;
    sqlx::query("DELETE FROM pg_temp.keyinfra_crl_parts")
        .execute(tx.conn())
        .await?;
    Ok(size)
}

/// The newest complete CRL of a CA.
pub async fn latest(tx: &mut Tx, ca_id: Uuid) -> Result<Option<CrlRecord>, DbError> {
    let row = sqlx::query_as!(
        CrlRecord,
        "SELECT ca_id, crl_number, base_crl_number, this_update, next_update, crl_der
         FROM crls WHERE ca_id = $1 AND base_crl_number IS NULL
         ORDER BY crl_number DESC LIMIT 1",
        ca_id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// The newest delta CRL of a CA.
pub async fn latest_delta(tx: &mut Tx, ca_id: Uuid) -> Result<Option<CrlRecord>, DbError> {
    let row = sqlx::query_as!(
        CrlRecord,
        "SELECT ca_id, crl_number, base_crl_number, this_update, next_update, crl_der
         FROM crls WHERE ca_id = $1 AND base_crl_number IS NOT NULL
         ORDER BY crl_number DESC LIMIT 1",
        ca_id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// The number and thisUpdate of a CA's newest complete CRL, without its DER: what a delta
/// CRL is built over.
pub async fn latest_base(
    tx: &mut Tx,
    ca_id: Uuid,
) -> Result<Option<(i64, OffsetDateTime)>, DbError> {
    let row = sqlx::query!(
        "SELECT crl_number, this_update FROM crls
         WHERE ca_id = $1 AND base_crl_number IS NULL
         ORDER BY crl_number DESC LIMIT 1",
        ca_id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row.map(|r| (r.crl_number, r.this_update)))
}

/// When the newest complete CRL of each CA runs out (for the refresh job), without reading
/// DER. (A delta is re-issued with every complete CRL.)
pub async fn next_updates(tx: &mut Tx) -> Result<Vec<(Uuid, Option<OffsetDateTime>)>, DbError> {
    let rows = sqlx::query!(
        r#"SELECT a.id AS "id!", (SELECT c.next_update FROM crls AS c
                               WHERE c.ca_id = a.id AND c.base_crl_number IS NULL
                               ORDER BY c.crl_number DESC LIMIT 1) AS next_update
           FROM certificate_authorities AS a
           WHERE a.private_key_id IS NOT NULL"#
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.next_update)).collect())
}

/// Deletes all but the newest `keep` complete and `keep` delta CRLs of a CA.
pub async fn prune(tx: &mut Tx, ca_id: Uuid, keep: i64) -> Result<u64, DbError> {
    let done = sqlx::query!(
        "DELETE FROM crls AS c WHERE c.ca_id = $1 AND c.crl_number <= (
             SELECT o.crl_number FROM crls AS o
             WHERE o.ca_id = $1 AND (o.base_crl_number IS NULL) = (c.base_crl_number IS NULL)
             ORDER BY o.crl_number DESC OFFSET $2 LIMIT 1)",
        ca_id,
        keep
    )
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}
