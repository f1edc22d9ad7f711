//! Leaf and CA private keys: generating them off the async workers, and sealing them into
//! `private_keys` (AES-256-GCM under the master key; see `keyinfra_pki::seal`).

use keyinfra_db::Tx;
use keyinfra_db::private_keys::{self, NewSealedKey};
use keyinfra_pki::seal::{self, MasterKeys, SealedKey};
use keyinfra_pki::{KeyAlgorithm, PrivateKey};
use uuid::Uuid;

use crate::error::CoreError;

/// Generates a key; RSA generation (up to seconds for 4096 bits) runs off the async workers.
pub(crate) async fn generate_key(algorithm: KeyAlgorithm) -> Result<PrivateKey, CoreError> {
    if algorithm.is_rsa() {
        tokio::task::spawn_blocking(move || PrivateKey::generate(algorithm))
            .await
            .map_err(|e| CoreError::Internal(format!("key generation task failed: {e}")))?
            .map_err(CoreError::from)
    } else {
        Ok(PrivateKey::generate(algorithm)?)
    }
}

pub(crate) async fn insert_sealed_key(
    tx: &mut Tx,
    id: Uuid,
    owner_id: Option<Uuid>,
    key: &PrivateKey,
    sealed: &SealedKey,
) -> Result<(), CoreError> {
    private_keys::insert(
        tx,
        &NewSealedKey {
            id,
            owner_id,
            algorithm: key.algorithm(),
            public_key_fingerprint: &key.public_key_fingerprint(),
            ciphertext: &sealed.ciphertext,
            nonce: &sealed.nonce,
            salt: &sealed.salt,
            kek_version: sealed.kek_version,
        },
    )
    .await?;
    Ok(())
}

pub(crate) fn sealed_of(record: &private_keys::SealedKeyRecord) -> Result<SealedKey, CoreError> {
    let broken = || CoreError::Internal(format!("key row {} is malformed", record.id));
    Ok(SealedKey {
        ciphertext: record.ciphertext.clone(),
        nonce: record.nonce.as_slice().try_into().map_err(|_| broken())?,
        salt: record.salt.as_slice().try_into().map_err(|_| broken())?,
        kek_version: record.kek_version,
    })
}

pub(crate) fn unseal_record(
    masters: &MasterKeys,
    record: &private_keys::SealedKeyRecord,
) -> Result<PrivateKey, CoreError> {
    let sealed = sealed_of(record)?;
    seal::unseal(masters, record.id.as_bytes(), &sealed).map_err(|e| {
        tracing::error!(key_id = %record.id, error = %e, "a stored private key does not open");
        CoreError::Internal(format!("the private key {} does not open: {e}", record.id))
    })
}
