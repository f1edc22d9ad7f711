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
    pub algorithm: KeyAlgorithm,
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
        key.algorithm as KeyAlgorithm,
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
