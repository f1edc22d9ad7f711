//! Key pairs: generation, loading, and the PKCS#8 bytes that are sealed at rest.
//!
//! Plaintext key bytes live only inside this crate, in [`Zeroizing`] buffers that are wiped
//! when dropped. (The key objects of the crypto library keep their own copy in C memory,
//! which it frees; that copy is outside our control and documented in ARCHITECTURE.md.)

use std::sync::OnceLock;

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm, KeyPair as _,
};
use rcgen::{KeyPair, PublicKeyData, RsaKeySize, SignatureAlgorithm};
use zeroize::Zeroizing;

use crate::PkiError;

/// The key algorithms KeyInfra generates and accepts: the one definition, with the one
/// table of labels (the API's, the database's, the CLI's and the UI's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    EcdsaP256,
    EcdsaP384,
    Ed25519,
    Rsa2048,
    Rsa3072,
    Rsa4096,
}

impl KeyAlgorithm {
    pub const ALL: [KeyAlgorithm; 6] = [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
    ];

    pub fn label(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
            KeyAlgorithm::EcdsaP384 => "ecdsa-p384",
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::Rsa2048 => "rsa-2048",
            KeyAlgorithm::Rsa3072 => "rsa-3072",
            KeyAlgorithm::Rsa4096 => "rsa-4096",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.label() == label)
    }

    /// Every label, comma-separated: what a refusal of an unknown label lists.
    pub fn labels() -> String {
        Self::ALL.map(Self::label).join(", ")
    }

    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096
        )
    }

    /// The signature algorithm a key of this kind signs with (SHA-256 for RSA, the curve's
    /// hash for ECDSA).
    pub(crate) fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                &rcgen::PKCS_RSA_SHA256
            }
        }
    }

    /// The DER AlgorithmIdentifier of [`KeyAlgorithm::signature_algorithm`], for structures
    /// that this crate signs itself (OCSP responses). rcgen writes the same bytes into the
    /// certificates and CRLs it signs but does not expose them; a test checks they agree.
    pub(crate) fn signature_algorithm_identifier(self) -> &'static [u8] {
        match self {
            // ecdsa-with-SHA256 (RFC 5758), no parameters.
            KeyAlgorithm::EcdsaP256 => &[
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
            ],
            // ecdsa-with-SHA384.
            KeyAlgorithm::EcdsaP384 => &[
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
            ],
            // id-Ed25519 (RFC 8410), no parameters.
            KeyAlgorithm::Ed25519 => &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70],
            // sha256WithRSAEncryption with NULL parameters (RFC 4055).
            KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => &[
                0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05,
                0x00,
            ],
        }
    }
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// A private key with its public half. `Debug` never shows key bytes.
pub struct PrivateKey {
    algorithm: KeyAlgorithm,
    pkcs8: Zeroizing<Vec<u8>>,
    /// The public key as rcgen's [`PublicKeyData::der_bytes`] has it (for ECDSA, the
    /// uncompressed point; the SubjectPublicKeyInfo is built from it).
    public_key: Vec<u8>,
    /// The signing half, parsed from `pkcs8` when the key first signs. A key generated for a
    /// leaf certificate never signs: it is sealed and stored, so it is never parsed, and
    /// parsing costs as much as generating (the crypto library checks the pair with a
    /// scalar multiplication).
    pair: OnceLock<KeyPair>,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A fresh key from the crypto library's CSPRNG.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, PkiError> {
        let rsa = |size| KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size);
        let pair = match algorithm {
            KeyAlgorithm::EcdsaP256 => {
                return Self::generate_ecdsa(algorithm, &ECDSA_P256_SHA256_ASN1_SIGNING);
            }
            KeyAlgorithm::EcdsaP384 => {
                return Self::generate_ecdsa(algorithm, &ECDSA_P384_SHA384_ASN1_SIGNING);
            }
            KeyAlgorithm::Rsa2048 => rsa(RsaKeySize::_2048),
            KeyAlgorithm::Rsa3072 => rsa(RsaKeySize::_3072),
            KeyAlgorithm::Rsa4096 => rsa(RsaKeySize::_4096),
            KeyAlgorithm::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
        }
        .map_err(|_| PkiError::KeyGeneration)?;
        Ok(Self::wrap(pair, algorithm))
    }

    /// An ECDSA key straight from the crypto library: the same PKCS#8 v1 bytes that
    /// rcgen's `KeyPair::generate_for` writes, without the parse of those bytes that follows
    /// there (about a twentieth of the server's CPU per issued certificate). The crypto
    /// library's `Document` wipes its PKCS#8 bytes when dropped.
    fn generate_ecdsa(
        algorithm: KeyAlgorithm,
        curve: &'static EcdsaSigningAlgorithm,
    ) -> Result<Self, PkiError> {
        let generated = EcdsaKeyPair::generate(curve).map_err(|_| PkiError::KeyGeneration)?;
        let pkcs8 = generated
            .to_pkcs8v1()
            .map_err(|_| PkiError::KeyGeneration)?;
        Ok(Self {
            algorithm,
            pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
            public_key: generated.public_key().as_ref().to_vec(),
            pair: OnceLock::new(),
        })
    }

    /// A key from its PKCS#8 DER (as unsealed from the database, or imported).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, PkiError> {
        let der = Zeroizing::new(der.to_vec());
        let pair = KeyPair::try_from(der.as_slice()).map_err(|_| PkiError::InvalidPrivateKey)?;
        let algorithm = algorithm_of_pair(&pair)?;
        Ok(Self::wrap(pair, algorithm))
    }

    /// A key from a PEM `PRIVATE KEY` (PKCS#8) block.
    pub fn from_pkcs8_pem(text: &str) -> Result<Self, PkiError> {
        let block = pem::parse(text).map_err(|_| PkiError::InvalidPrivateKey)?;
        if block.tag() != "PRIVATE KEY" {
            return Err(PkiError::UnsupportedKeyEncoding(block.tag().to_owned()));
        }
        let contents = Zeroizing::new(block.into_contents());
        Self::from_pkcs8(&contents)
    }

    fn wrap(pair: KeyPair, algorithm: KeyAlgorithm) -> Self {
        Self {
            algorithm,
            pkcs8: Zeroizing::new(pair.serialize_der()),
            public_key: pair.der_bytes().to_vec(),
            pair: OnceLock::from(pair),
        }
    }

    /// The signing half, parsed from the PKCS#8 bytes on first use.
    pub(crate) fn signing_pair(&self) -> Result<&KeyPair, PkiError> {
        if let Some(pair) = self.pair.get() {
            return Ok(pair);
        }
        let parsed =
            KeyPair::try_from(self.pkcs8.as_slice()).map_err(|_| PkiError::InvalidPrivateKey)?;
        // Another thread may have parsed it meanwhile: keep theirs, wipe ours.
        if let Err(mut lost) = self.pair.set(parsed) {
            wipe(&mut lost);
        }
        self.pair.get().ok_or(PkiError::InvalidPrivateKey)
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// PKCS#8 DER: what is sealed at rest.
    pub(crate) fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// PKCS#8 DER in the form the oldest readers accept: version 1 (RFC 5208). OpenSSL 3.0
    /// rejects the version 2 form (with the public key) that the crypto library writes for
    /// Ed25519, so an Ed25519 key is re-encoded from its 32-byte seed.
    pub(crate) fn pkcs8_v1_der(&self) -> Result<Zeroizing<Vec<u8>>, PkiError> {
        if self.algorithm != KeyAlgorithm::Ed25519 {
            return Ok(self.pkcs8.clone());
        }
        let seed = ed25519_seed(&self.pkcs8)?;
        let mut v1 = Zeroizing::new(Vec::with_capacity(48));
        v1.extend_from_slice(&ED25519_PKCS8_V1_PREFIX);
        v1.extend_from_slice(seed);
        Ok(v1)
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.subject_public_key_info()
    }

    /// SHA-256 of the SubjectPublicKeyInfo: identifies the key pair without revealing it.
    pub fn public_key_fingerprint(&self) -> [u8; 32] {
        crate::sha256_fingerprint(&self.public_key_der())
    }

    /// DER PKCS#8 v1, for EST's serverkeygen answer (RFC 7030 4.4.2) only.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, PkiError> {
        self.pkcs8_v1_der()
    }

    /// PEM `PRIVATE KEY` (PKCS#8 v1), for the operator CLI's export only.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, PkiError> {
        let der = self.pkcs8_v1_der()?;
        Ok(Zeroizing::new(crate::pem_text("PRIVATE KEY", &der)))
    }
}

impl Drop for PrivateKey {
    /// rcgen's parsed pair keeps a PKCS#8 copy of its own, which it does not wipe on drop.
    fn drop(&mut self) {
        if let Some(pair) = self.pair.get_mut() {
            wipe(pair);
        }
    }
}

fn wipe(pair: &mut KeyPair) {
    zeroize::Zeroize::zeroize(pair);
}

impl PublicKeyData for PrivateKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public_key
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.algorithm.signature_algorithm()
    }
}

/// `SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING (32) } }`
/// up to the seed (RFC 8410 section 7).
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The 32-byte seed of an Ed25519 PKCS#8 (v1 or v2) key: the inner OCTET STRING `04 20`
/// that follows the algorithm identifier.
fn ed25519_seed(pkcs8: &[u8]) -> Result<&[u8], PkiError> {
    const MARKER: [u8; 9] = [0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    let at = pkcs8
        .windows(MARKER.len())
        .position(|w| w == MARKER)
        .ok_or(PkiError::InvalidPrivateKey)?;
    pkcs8
        .get(at + MARKER.len()..at + MARKER.len() + 32)
        .ok_or(PkiError::InvalidPrivateKey)
}

fn algorithm_of_pair(pair: &KeyPair) -> Result<KeyAlgorithm, PkiError> {
    let alg = pair.algorithm();
    if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
        Ok(KeyAlgorithm::EcdsaP256)
    } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
        Ok(KeyAlgorithm::EcdsaP384)
    } else if alg == &rcgen::PKCS_ED25519 {
        Ok(KeyAlgorithm::Ed25519)
    } else if alg == &rcgen::PKCS_RSA_SHA256 {
        algorithm_of_spki(&pair.subject_public_key_info())
    } else {
        Err(PkiError::UnsupportedKeyAlgorithm)
    }
}

/// The one RSA public exponent accepted (F4). Small exponents such as 3 are the ones
/// broken padding and unpadded messages fall to (Coppersmith, Bleichenbacher's e=3
/// signature forgery); every current key generator, ours included, uses 65537.
pub const RSA_PUBLIC_EXPONENT: u64 = 65_537;

/// Classifies a SubjectPublicKeyInfo (from a CSR or a certificate). RSA keys must use the
/// public exponent 65537.
pub fn algorithm_of_spki(spki_der: &[u8]) -> Result<KeyAlgorithm, PkiError> {
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|_| PkiError::UnsupportedKeyAlgorithm)?;
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) if rsa.try_exponent().ok() != Some(RSA_PUBLIC_EXPONENT) => {
            Err(PkiError::UnsupportedRsaExponent)
        }
        Ok(PublicKey::RSA(rsa)) => match rsa.key_size() {
            2048 => Ok(KeyAlgorithm::Rsa2048),
            3072 => Ok(KeyAlgorithm::Rsa3072),
            4096 => Ok(KeyAlgorithm::Rsa4096),
            _ => Err(PkiError::UnsupportedKeyAlgorithm),
        },
        Ok(PublicKey::EC(point)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            match (curve.as_deref(), point.key_size()) {
                (Some("1.2.840.10045.3.1.7"), _) => Ok(KeyAlgorithm::EcdsaP256),
                (Some("1.3.132.0.34"), _) => Ok(KeyAlgorithm::EcdsaP384),
                _ => Err(PkiError::UnsupportedKeyAlgorithm),
            }
        }
        _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => Ok(KeyAlgorithm::Ed25519),
        _ => Err(PkiError::UnsupportedKeyAlgorithm),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_generates_and_round_trips_through_pkcs8() {
        for alg in [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Ed25519,
            KeyAlgorithm::Rsa2048,
        ] {
            let key = PrivateKey::generate(alg).unwrap();
            assert_eq!(key.algorithm(), alg);
            assert_eq!(algorithm_of_spki(&key.public_key_der()).unwrap(), alg);
            let again = PrivateKey::from_pkcs8(key.pkcs8_der()).unwrap();
            assert_eq!(again.algorithm(), alg);
            assert_eq!(again.public_key_der(), key.public_key_der());
            let v1 = key.pkcs8_v1_der().unwrap();
            let from_v1 = PrivateKey::from_pkcs8(&v1).unwrap();
            assert_eq!(from_v1.public_key_der(), key.public_key_der(), "{alg}");
        }
    }

    #[test]
    fn a_generated_ecdsa_key_parses_its_signing_half_on_first_use_and_it_matches() {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1};
        use rcgen::SigningKey;
        for (alg, verify) in [
            (KeyAlgorithm::EcdsaP256, &ECDSA_P256_SHA256_ASN1),
            (KeyAlgorithm::EcdsaP384, &ECDSA_P384_SHA384_ASN1),
        ] {
            let key = PrivateKey::generate(alg).unwrap();
            assert!(key.pair.get().is_none(), "{alg}: parsed before it signs");
            let signature = key.sign(b"to be signed").unwrap();
            assert!(key.pair.get().is_some());
            aws_lc_rs::signature::UnparsedPublicKey::new(verify, key.der_bytes())
                .verify(b"to be signed", &signature)
                .unwrap();
            assert!(
                aws_lc_rs::signature::UnparsedPublicKey::new(verify, key.der_bytes())
                    .verify(b"something else", &signature)
                    .is_err()
            );
        }
    }

    #[test]
    fn the_signature_algorithm_identifier_is_the_one_rcgen_writes() {
        use der::{Reader, SliceReader};
        for alg in [
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Ed25519,
            KeyAlgorithm::Rsa2048,
        ] {
            let key = PrivateKey::generate(alg).unwrap();
            let cert = rcgen::CertificateParams::default()
                .self_signed(&key)
                .unwrap();
            // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
            let mut reader = SliceReader::new(cert.der()).unwrap();
            let written = reader
                .sequence(|r| {
                    r.tlv_bytes()?;
                    let algorithm = r.tlv_bytes()?;
                    r.tlv_bytes()?;
                    Ok::<_, der::Error>(algorithm)
                })
                .unwrap();
            assert_eq!(written, alg.signature_algorithm_identifier(), "{alg}");
        }
    }

    #[test]
    fn wiping_a_parsed_pair_clears_its_pkcs8_copy() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let mut pair = KeyPair::try_from(key.pkcs8_der()).unwrap();
        assert_eq!(pair.serialize_der(), key.pkcs8_der());
        wipe(&mut pair);
        assert!(pair.serialize_der().iter().all(|b| *b == 0));
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("EcdsaP256") && !shown.contains("pkcs8"));
    }

    /// An RSA SubjectPublicKeyInfo with this exponent (and a 2048-bit modulus of 0xff..).
    fn rsa_spki(exponent: u64) -> Vec<u8> {
        let key = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_bigint_bytes(&[0xff; 256], true);
                w.next().write_u64(exponent);
            })
        });
        yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_sequence(|w| {
                    w.next()
                        .write_oid(&yasna::models::ObjectIdentifier::from_slice(&[
                            1, 2, 840, 113_549, 1, 1, 1,
                        ]));
                    w.next().write_null();
                });
                w.next().write_bitvec_bytes(&key, key.len() * 8);
            })
        })
    }

    #[test]
    fn rsa_keys_must_use_the_exponent_65537() {
        assert_eq!(
            algorithm_of_spki(&rsa_spki(65_537)).unwrap(),
            KeyAlgorithm::Rsa2048
        );
        for e in [3, 17, 65_539, (1 << 32) + 1] {
            assert!(
                matches!(
                    algorithm_of_spki(&rsa_spki(e)),
                    Err(PkiError::UnsupportedRsaExponent)
                ),
                "e = {e}"
            );
        }
    }

    #[test]
    fn labels_round_trip() {
        for alg in KeyAlgorithm::ALL {
            assert_eq!(KeyAlgorithm::from_label(alg.label()), Some(alg));
        }
        assert_eq!(KeyAlgorithm::from_label("dsa-1024"), None);
        // The API's, the CLI's and the policies' refusals list these, as they always did.
        assert_eq!(
            KeyAlgorithm::labels(),
            "ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096"
        );
        assert_eq!(KeyAlgorithm::from_label("ecdsa-p521"), None);
    }
}
