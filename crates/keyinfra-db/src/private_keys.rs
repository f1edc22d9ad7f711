//! The `private_keys` table: sealed key material only. Sealing and unsealing happen in the
//! pki crate; nothing here ever sees a plaintext key.

use uuid::Uuid;

use crate::error::DbError;
use crate::session::Tx;
use crate::types::KeyAlgorithm;

/// A key as sealed by the pki crate (AES-256-GCM under an HKDF-derived data key).
#[derive(Debug, Clone)]
pub struct NewSealedKey<'a> {
    /// Chosen by the caller, because the sealing binds the ciphertext to the row id.
    pub id: Uuid,
    pub owner_id: Option<Uuid>,
    pub algorithm: keyinfra_pki::KeyAlgorithm,
    pub public_key_fingerprint: &'a [u8],
    pub ciphertext: &'a [u8],
    pub nonce: &'a [u8],
    pub salt: &'a [u8],
    pub kek_version: i32,
}

pub async fn insert(tx: &mut Tx, key: &NewSealedKey<'_>) -> Result<(), DbError> {
    sqlx::query!(
        "INSERT INTO private_keys
             (id, owner_id, algorithm, public_key_fingerprint, ciphertext, nonce, salt, kek_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        key.id,
        key.owner_id,
        KeyAlgorithm::from(key.algorithm) as KeyAlgorithm,
        key.public_key_fingerprint,
        key.ciphertext,
        key.nonce,
        key.salt,
        key.kek_version,
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The sealed columns of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKeyRecord {
    pub id: Uuid,
    pub owner_id: Option<Uuid>,
    pub ciphertext: Vec<u8>,
    pub nonce: Vec<u8>,
    pub salt: Vec<u8>,
    pub kek_version: i32,
}

/// A key row, if the actor may see it.
pub async fn get(tx: &mut Tx, id: Uuid) -> Result<Option<SealedKeyRecord>, DbError> {
    let row = sqlx::query_as!(
        SealedKeyRecord,
        "SELECT id, owner_id, ciphertext, nonce, salt, kek_version FROM private_keys WHERE id = $1",
        id
    )
    .fetch_optional(tx.conn())
    .await?;
    Ok(row)
}

/// Up to `limit` keys not sealed under `newest_version`, locked for re-sealing; rows another
/// rotation holds are skipped, so several rotations (or replicas) can run at once.
pub async fn lock_batch_not_at_version(
    tx: &mut Tx,
    newest_version: i32,
    limit: i64,
) -> Result<Vec<SealedKeyRecord>, DbError> {
    let rows = sqlx::query_as!(
        SealedKeyRecord,
        "SELECT id, owner_id, ciphertext, nonce, salt, kek_version
         FROM private_keys
         WHERE kek_version <> $1
         ORDER BY kek_version, id
         LIMIT $2
         FOR UPDATE SKIP LOCKED",
        newest_version,
        limit
    )
    .fetch_all(tx.conn())
    .await?;
    Ok(rows)
}

/// How many keys are not sealed under `newest_version`.
pub async fn count_not_at_version(tx: &mut Tx, newest_version: i32) -> Result<i64, DbError> {
    let n = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM private_keys WHERE kek_version <> $1"#,
        newest_version
    )
    .fetch_one(tx.conn())
    .await?;
    Ok(n)
}

/// Replaces a key's sealed columns (a re-seal under a new master key).
pub async fn reseal(
    tx: &mut Tx,
    id: Uuid,
    ciphertext: &[u8],
    nonce: &[u8],
    salt: &[u8],
    kek_version: i32,
    at: time::OffsetDateTime,
) -> Result<(), DbError> {
    sqlx::query!(
        "UPDATE private_keys
         SET ciphertext = $2, nonce = $3, salt = $4, kek_version = $5, resealed_at = $6
         WHERE id = $1",
        id,
        ciphertext,
        nonce,
        salt,
        kek_version,
        at
    )
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// Moves keys to a new owner (an admin's reassignment of their certificates).
pub async fn set_owner(tx: &mut Tx, ids: &[Uuid], owner_id: Uuid) -> Result<u64, DbError> {
    let done = sqlx::query!(
        "UPDATE private_keys SET owner_id = $2 WHERE id = ANY($1)",
        ids,
        owner_id
    )
    .execute(tx.conn())
    .await?;
    Ok(done.rows_affected())
}
