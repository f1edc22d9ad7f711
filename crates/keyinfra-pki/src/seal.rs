//! Sealing private keys at rest (the design's "AES-256 encrypted private keys").
//!
//! * Each key gets its own data key: HKDF-SHA256(master key, salt = 32 random bytes stored
//!   beside the ciphertext, info = a fixed label). A leaked data key exposes one key only.
//! * AES-256-GCM with a random 96-bit nonce (each data key seals exactly one plaintext, so
//!   nonce reuse under one key cannot happen even in theory).
//! * The associated data is the row id and the master-key version, so a ciphertext copied
//!   into another row, or relabelled with another version, fails to open.
//! * Master keys are versioned; the newest seals, every configured version opens.

use std::collections::BTreeMap;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use zeroize::Zeroizing;

use crate::{PkiError, PrivateKey, RandomSource};

const DATA_KEY_INFO: &[u8] = b"keyinfra/private-key/data-key/v1";
const AAD_LABEL: &[u8] = b"keyinfra/private-key/v1";

/// One master key (key-encryption key). `Debug` never shows it.
pub struct MasterKey {
    version: i32,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey {{ version: {}, .. }}", self.version)
    }
}

/// The configured master keys, by version.
#[derive(Debug, Default)]
pub struct MasterKeys {
    by_version: BTreeMap<i32, MasterKey>,
}

impl MasterKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a 32-byte master key under a version (1 or higher).
    pub fn insert(&mut self, version: i32, key: &[u8]) -> Result<(), PkiError> {
        if version < 1 {
            return Err(PkiError::InvalidMasterKey("versions start at 1"));
        }
        let bytes: [u8; 32] = key
            .try_into()
            .map_err(|_| PkiError::InvalidMasterKey("a master key is exactly 32 bytes"))?;
        if self.by_version.contains_key(&version) {
            return Err(PkiError::InvalidMasterKey("a version is configured twice"));
        }
        self.by_version.insert(
            version,
            MasterKey {
                version,
                key: Zeroizing::new(bytes),
            },
        );
        Ok(())
    }

    /// The version new keys are sealed with: the highest configured.
    pub fn newest_version(&self) -> Option<i32> {
        self.by_version.keys().next_back().copied()
    }

    pub fn versions(&self) -> Vec<i32> {
        self.by_version.keys().copied().collect()
    }

    fn get(&self, version: i32) -> Result<&MasterKey, PkiError> {
        self.by_version
            .get(&version)
            .ok_or(PkiError::MasterKeyVersionMissing(version))
    }
}

/// A key as stored: the columns of `private_keys`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKey {
    pub ciphertext: Vec<u8>,
    pub nonce: [u8; 12],
    pub salt: [u8; 32],
    pub kek_version: i32,
}

struct DataKeyLen;
impl KeyType for DataKeyLen {
    fn len(&self) -> usize {
        32
    }
}

fn data_key(master: &MasterKey, salt: &[u8; 32]) -> Result<LessSafeKey, PkiError> {
    let prk = Salt::new(HKDF_SHA256, salt).extract(master.key.as_ref());
    let okm = prk
        .expand(&[DATA_KEY_INFO], DataKeyLen)
        .map_err(|_| PkiError::Sealing)?;
    let mut bytes = Zeroizing::new([0u8; 32]);
    okm.fill(bytes.as_mut()).map_err(|_| PkiError::Sealing)?;
    let unbound = UnboundKey::new(&AES_256_GCM, bytes.as_ref()).map_err(|_| PkiError::Sealing)?;
    Ok(LessSafeKey::new(unbound))
}

fn associated_data(row_id: &[u8; 16], kek_version: i32) -> [u8; 43] {
    let mut aad = [0u8; 43];
    aad[..23].copy_from_slice(AAD_LABEL);
    aad[23..39].copy_from_slice(row_id);
    aad[39..].copy_from_slice(&kek_version.to_be_bytes());
    aad
}

/// Seals `key` for the `private_keys` row `row_id` under the newest master key.
pub fn seal(
    masters: &MasterKeys,
    row_id: &[u8; 16],
    key: &PrivateKey,
    rng: &mut (dyn RandomSource + Send),
) -> Result<SealedKey, PkiError> {
    let version = masters
        .newest_version()
        .ok_or(PkiError::InvalidMasterKey("no master key is configured"))?;
    seal_bytes(masters.get(version)?, row_id, key.pkcs8_der(), rng)
}

fn seal_bytes(
    master: &MasterKey,
    row_id: &[u8; 16],
    plaintext: &[u8],
    rng: &mut (dyn RandomSource + Send),
) -> Result<SealedKey, PkiError> {
    let mut salt = [0u8; 32];
    rng.fill(&mut salt)?;
    let mut nonce = [0u8; 12];
    rng.fill(&mut nonce)?;
    let key = data_key(master, &salt)?;
    let mut in_out = plaintext.to_vec();
    let sealed = key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(associated_data(row_id, master.version)),
        &mut in_out,
    );
    if sealed.is_err() {
        zeroize::Zeroize::zeroize(&mut in_out);
        return Err(PkiError::Sealing);
    }
    Ok(SealedKey {
        ciphertext: in_out,
        nonce,
        salt,
        kek_version: master.version,
    })
}

/// Opens a sealed key of row `row_id`. Fails if any byte, the row or the version differs.
pub fn unseal(
    masters: &MasterKeys,
    row_id: &[u8; 16],
    sealed: &SealedKey,
) -> Result<PrivateKey, PkiError> {
    let plaintext = open_bytes(masters, row_id, sealed)?;
    PrivateKey::from_pkcs8(&plaintext)
}

fn open_bytes(
    masters: &MasterKeys,
    row_id: &[u8; 16],
    sealed: &SealedKey,
) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    let master = masters.get(sealed.kek_version)?;
    let key = data_key(master, &sealed.salt)?;
    let mut in_out = Zeroizing::new(sealed.ciphertext.clone());
    let len = key
        .open_in_place(
            Nonce::assume_unique_for_key(sealed.nonce),
            Aad::from(associated_data(row_id, sealed.kek_version)),
            in_out.as_mut_slice(),
        )
        .map_err(|_| PkiError::Unsealing)?
        .len();
    in_out.truncate(len);
    Ok(in_out)
}

/// Re-seals under the newest master key (for `keys rotate`), without the plaintext ever
/// leaving this crate.
pub fn reseal(
    masters: &MasterKeys,
    row_id: &[u8; 16],
    sealed: &SealedKey,
    rng: &mut (dyn RandomSource + Send),
) -> Result<SealedKey, PkiError> {
    let plaintext = open_bytes(masters, row_id, sealed)?;
    let version = masters
        .newest_version()
        .ok_or(PkiError::InvalidMasterKey("no master key is configured"))?;
    seal_bytes(masters.get(version)?, row_id, &plaintext, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyAlgorithm;

    struct Counter(u8);
    impl RandomSource for Counter {
        fn fill(&mut self, dest: &mut [u8]) -> Result<(), PkiError> {
            for b in dest {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
            Ok(())
        }
    }

    fn masters(versions: &[i32]) -> MasterKeys {
        let mut m = MasterKeys::new();
        for v in versions {
            m.insert(*v, &[*v as u8; 32]).unwrap();
        }
        m
    }

    #[test]
    fn seal_then_unseal_gives_the_same_key() {
        let m = masters(&[1]);
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let sealed = seal(&m, &[7; 16], &key, &mut Counter(0)).unwrap();
        assert_eq!(sealed.kek_version, 1);
        assert!(
            !sealed
                .ciphertext
                .windows(key.pkcs8_der().len())
                .any(|w| w == key.pkcs8_der())
        );
        let opened = unseal(&m, &[7; 16], &sealed).unwrap();
        assert_eq!(opened.public_key_der(), key.public_key_der());
    }

    #[test]
    fn another_row_another_version_or_a_flipped_bit_does_not_open() {
        let m = masters(&[1, 2]);
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let sealed = seal(&m, &[7; 16], &key, &mut Counter(0)).unwrap();
        assert_eq!(sealed.kek_version, 2);
        assert_eq!(
            unseal(&m, &[8; 16], &sealed).unwrap_err(),
            PkiError::Unsealing
        );
        let relabelled = SealedKey {
            kek_version: 1,
            ..sealed.clone()
        };
        assert_eq!(
            unseal(&m, &[7; 16], &relabelled).unwrap_err(),
            PkiError::Unsealing
        );
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert_eq!(
            unseal(&m, &[7; 16], &flipped).unwrap_err(),
            PkiError::Unsealing
        );
        let mut other_salt = sealed;
        other_salt.salt[0] ^= 1;
        assert_eq!(
            unseal(&m, &[7; 16], &other_salt).unwrap_err(),
            PkiError::Unsealing
        );
    }

    #[test]
    fn reseal_moves_to_the_newest_version_and_old_versions_stay_readable() {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let old = seal(&masters(&[1]), &[1; 16], &key, &mut Counter(0)).unwrap();
        let both = masters(&[1, 2]);
        assert!(unseal(&both, &[1; 16], &old).is_ok());
        let new = reseal(&both, &[1; 16], &old, &mut Counter(50)).unwrap();
        assert_eq!(new.kek_version, 2);
        assert_eq!(
            unseal(&masters(&[2]), &[1; 16], &new)
                .unwrap()
                .public_key_der(),
            key.public_key_der()
        );
        assert_eq!(
            unseal(&masters(&[2]), &[1; 16], &old).unwrap_err(),
            PkiError::MasterKeyVersionMissing(1)
        );
    }

    #[test]
    fn master_keys_are_checked() {
        let mut m = MasterKeys::new();
        assert!(m.insert(0, &[0; 32]).is_err());
        assert!(m.insert(1, &[0; 31]).is_err());
        m.insert(1, &[0; 32]).unwrap();
        assert!(m.insert(1, &[1; 32]).is_err());
        assert!(!format!("{m:?}").contains("[0, 0"));
    }
}
