//! PKCS#12 export, in two flavours.
//!
//! * `Modern`: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) with a SHA-256 MAC. OpenSSL 3 reads
//!   it without `-legacy`.
//! * `Legacy`: pbeWithSHA1And3-KeyTripleDES-CBC with a SHA-1 MAC, for network devices whose
//!   firmware predates PBES2 in PKCS#12 (many switches, access points and older phones).

use p12_keystore::{
    Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKeyChain,
};
use zeroize::Zeroizing;

use crate::{PkiError, PrivateKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pkcs12Compat {
    Modern,
    Legacy,
}

/// PIN length bounds (characters). Six is the shortest that devices' keypads commonly
/// accept; 128 keeps the PBKDF2 input bounded.
pub const PIN_MIN_CHARS: usize = 6;
pub const PIN_MAX_CHARS: usize = 128;

/// A PKCS#12 PIN: checked length, no control characters, wiped on drop, never shown.
pub struct Pin(Zeroizing<String>);

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(..)")
    }
}

impl Pin {
    pub fn new(pin: String) -> Result<Self, PkiError> {
        let pin = Zeroizing::new(pin);
        let count = pin.chars().count();
        if !(PIN_MIN_CHARS..=PIN_MAX_CHARS).contains(&count) {
            return Err(PkiError::InvalidPin);
        }
        if pin.chars().any(char::is_control) {
            return Err(PkiError::InvalidPin);
        }
        Ok(Self(pin))
    }
}

/// PBKDF2 iterations for both the encryption and the MAC. 10,000 is what OpenSSL 3 writes
/// by default; far higher makes old devices time out while importing.
const ITERATIONS: u32 = 10_000;

/// Builds a .p12 holding `key`, its certificate and the CA chain (issuer first, root last),
/// under `friendly_name`.
pub fn build_pkcs12(
    key: &PrivateKey,
    leaf_der: &[u8],
    chain_der: &[&[u8]],
    friendly_name: &str,
    pin: &Pin,
    compat: Pkcs12Compat,
) -> Result<Vec<u8>, PkiError> {
    let pkcs8 = key.pkcs8_v1_der()?;
    let private = p12_keystore::PrivateKey::from_der(&pkcs8).map_err(|_| PkiError::Pkcs12)?;
    let mut certs = vec![Certificate::from_der(leaf_der).map_err(|_| PkiError::Pkcs12)?];
    for der in chain_der {
        certs.push(Certificate::from_der(der).map_err(|_| PkiError::Pkcs12)?);
    }
    let local_key_id = crate::sha256_fingerprint(leaf_der)[..20].to_vec();
    let chain = PrivateKeyChain::new(local_key_id, private, certs);
    let mut store = KeyStore::new();
    store.add_entry(friendly_name, KeyStoreEntry::PrivateKeyChain(chain));
    let (encryption, mac) = match compat {
        Pkcs12Compat::Modern => (
            EncryptionAlgorithm::PbeWithHmacSha256AndAes256,
            MacAlgorithm::HmacSha256,
        ),
        Pkcs12Compat::Legacy => (
            EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
            MacAlgorithm::HmacSha1,
        ),
    };
    store
        .writer(&pin.0)
        .encryption_algorithm(encryption)
        .encryption_iterations(ITERATIONS)
        .mac_algorithm(mac)
        .mac_iterations(ITERATIONS)
        .write()
        .map_err(|_| PkiError::Pkcs12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_policy() {
        assert!(Pin::new("12345".into()).is_err());
        assert!(Pin::new("123456".into()).is_ok());
        assert!(Pin::new("x".repeat(128)).is_ok());
        assert!(Pin::new("x".repeat(129)).is_err());
        assert!(Pin::new("1234\n56".into()).is_err());
        assert_eq!(
            format!("{:?}", Pin::new("secret-pin".into()).unwrap()),
            "Pin(..)"
        );
    }
}
