//! ACME state (issue 21). So far the spent replay nonces (migration 0028).

use time::OffsetDateTime;

use crate::{DbError, Tx};

/// Records a nonce as spent: true the first time, false if it was spent before (by any
/// replica). `nonce_hash` is the SHA-256 of the nonce; `expires_at` when it would be
/// refused for its age anyway. Any identity may spend one.
pub async fn spend_nonce(
    tx: &mut Tx,
    nonce_hash: &[u8; 32],
    expires_at: OffsetDateTime,
) -> Result<bool, DbError> {
    let inserted = sqlx::query!(
        "INSERT INTO acme_spent_nonces (nonce_hash, expires_at) VALUES ($1, $2)
         ON CONFLICT (nonce_hash) DO NOTHING",
        nonce_hash.as_slice(),
        expires_at
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Deletes up to `limit` spent nonces that expired before `before`; returns how many. SYSTEM
/// (the `acme-nonces` job) repeats it until fewer than `limit` go, so that each
/// transaction stays short.
pub async fn purge_spent_nonces(
    tx: &mut Tx,
    before: OffsetDateTime,
    limit: i64,
) -> Result<u64, DbError> {
    let deleted = sqlx::query!(
        "DELETE FROM acme_spent_nonces
         WHERE nonce_hash IN (SELECT nonce_hash FROM acme_spent_nonces
                              WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
        before,
        limit
    )
    .execute(tx.conn())
    .await?
    .rows_affected();
    Ok(deleted)
}
