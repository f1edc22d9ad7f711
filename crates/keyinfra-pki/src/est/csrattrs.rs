//! The CSR attributes answer (RFC 7030 4.5.2): what a client should put in its request.
//!
//! ```text
//! CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
//! AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
//! ```
//!
//! Key algorithms follow the LAMPS clarification (draft-ietf-lamps-rfc7030-csrattrs, now
//! RFC 9908): an elliptic curve is `id-ecPublicKey` with the curve's OID as its value, an
//! RSA size is `rsaEncryption` with the bit length as an INTEGER, and an algorithm without
//! parameters (Ed25519) is its bare OID. A required challengePassword (channel binding,
//! RFC 7030 3.5) is the bare challengePassword OID.

use cms::cert::x509::attr::Attribute;
use der::asn1::{Any, ObjectIdentifier, SetOfVec};
use der::{Choice, Encode};

use crate::{KeyAlgorithm, PkiError};

/// id-ecPublicKey (RFC 5480).
pub const ID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1, also named prime256v1 (RFC 5480).
pub const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1 (RFC 5480).
pub const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// id-Ed25519 (RFC 8410).
pub const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// rsaEncryption (RFC 8017).
pub const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// PKCS#9 challengePassword (RFC 2985), where EST puts a channel binding.
pub const CHALLENGE_PASSWORD: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");

/// One element of a CsrAttrs.
#[derive(Clone, Debug, PartialEq, Eq, Choice)]
pub enum AttrOrOid {
    Oid(ObjectIdentifier),
    Attribute(Attribute),
}

/// What the server asks a client to put in its CSR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CsrAttr {
    /// A key of this algorithm (and curve or size).
    KeyAlgorithm(KeyAlgorithm),
    /// A challengePassword: the TLS channel binding (RFC 7030 3.5, RFC 9266).
    ChallengePassword,
}

fn encoding(e: der::Error) -> PkiError {
    PkiError::Encoding(e.to_string())
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<AttrOrOid, PkiError> {
    Ok(AttrOrOid::Attribute(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).map_err(encoding)?,
    }))
}

impl CsrAttr {
    /// The CsrAttrs element that asks for this.
    pub fn to_attr_or_oid(self) -> Result<AttrOrOid, PkiError> {
        let curve = |oid: ObjectIdentifier| Any::encode_from(&oid).map_err(encoding);
        let bits = |n: u16| Any::encode_from(&n).map_err(encoding);
        match self {
            CsrAttr::KeyAlgorithm(KeyAlgorithm::EcdsaP256) => {
                attribute(ID_EC_PUBLIC_KEY, curve(SECP256R1)?)
            }
            CsrAttr::KeyAlgorithm(KeyAlgorithm::EcdsaP384) => {
                attribute(ID_EC_PUBLIC_KEY, curve(SECP384R1)?)
            }
            CsrAttr::KeyAlgorithm(KeyAlgorithm::Ed25519) => Ok(AttrOrOid::Oid(ID_ED25519)),
            CsrAttr::KeyAlgorithm(KeyAlgorithm::Rsa2048) => attribute(RSA_ENCRYPTION, bits(2048)?),
            CsrAttr::KeyAlgorithm(KeyAlgorithm::Rsa3072) => attribute(RSA_ENCRYPTION, bits(3072)?),
            CsrAttr::KeyAlgorithm(KeyAlgorithm::Rsa4096) => attribute(RSA_ENCRYPTION, bits(4096)?),
            CsrAttr::ChallengePassword => Ok(AttrOrOid::Oid(CHALLENGE_PASSWORD)),
        }
    }
}

/// The DER of a CsrAttrs asking for `wanted`, one element each, in the given order (a
/// preference, for clients that read one); repeats are left out. No attributes give an
/// empty SEQUENCE (`30 00`), though the HTTP answer for that is 204 and no body.
pub fn encode_csr_attrs(wanted: &[CsrAttr]) -> Result<Vec<u8>, PkiError> {
    let mut seen = Vec::with_capacity(wanted.len());
    for attr in wanted {
        if !seen.contains(attr) {
            seen.push(*attr);
        }
    }
    let elements = seen
        .into_iter()
        .map(CsrAttr::to_attr_or_oid)
        .collect::<Result<Vec<_>, _>>()?;
    elements.to_der().map_err(encoding)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::Write;
    use std::process::{Command, Stdio};

    use der::Decode;
    use der::asn1::Uint;

    use super::*;

    fn decode(der: &[u8]) -> Vec<AttrOrOid> {
        Vec::<AttrOrOid>::from_der(der).unwrap()
    }

    /// The single value of an Attribute element.
    fn single(element: &AttrOrOid) -> (ObjectIdentifier, Any) {
        match element {
            AttrOrOid::Attribute(a) => {
                assert_eq!(a.values.len(), 1);
                (a.oid, a.values.get(0).unwrap().clone())
            }
            AttrOrOid::Oid(oid) => panic!("a bare OID {oid}, not an attribute"),
        }
    }

    #[test]
    fn each_key_algorithm_maps_to_its_element() {
        let der = encode_csr_attrs(&KeyAlgorithm::ALL.map(CsrAttr::KeyAlgorithm)).unwrap();
        let elements = decode(&der);
        assert_eq!(elements.len(), 6);

        let (oid, value) = single(&elements[0]);
        assert_eq!(oid, ID_EC_PUBLIC_KEY);
        assert_eq!(value.decode_as::<ObjectIdentifier>().unwrap(), SECP256R1);
        let (oid, value) = single(&elements[1]);
        assert_eq!(oid, ID_EC_PUBLIC_KEY);
        assert_eq!(value.decode_as::<ObjectIdentifier>().unwrap(), SECP384R1);
        assert_eq!(elements[2], AttrOrOid::Oid(ID_ED25519));
        for (element, bits) in elements[3..].iter().zip([2048u16, 3072, 4096]) {
            let (oid, value) = single(element);
            assert_eq!(oid, RSA_ENCRYPTION);
            let int = value.decode_as::<Uint>().unwrap();
            assert_eq!(int.as_bytes(), bits.to_be_bytes());
        }
    }

    #[test]
    fn challenge_password_is_a_bare_oid_and_order_is_kept_without_repeats() {
        let der = encode_csr_attrs(&[
            CsrAttr::ChallengePassword,
            CsrAttr::KeyAlgorithm(KeyAlgorithm::Ed25519),
            CsrAttr::ChallengePassword,
            CsrAttr::KeyAlgorithm(KeyAlgorithm::Ed25519),
        ])
        .unwrap();
        assert_eq!(
            decode(&der),
            vec![
                AttrOrOid::Oid(CHALLENGE_PASSWORD),
                AttrOrOid::Oid(ID_ED25519)
            ]
        );
        // SEQUENCE { OID 1.2.840.113549.1.9.7, OID 1.3.101.112 }, byte for byte.
        assert_eq!(
            der,
            [
                0x30, 0x10, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x07, 0x06,
                0x03, 0x2B, 0x65, 0x70
            ]
        );
    }

    #[test]
    fn nothing_wanted_is_an_empty_sequence() {
        assert_eq!(encode_csr_attrs(&[]).unwrap(), [0x30, 0x00]);
    }

    #[test]
    fn openssl_reads_the_oids_and_the_rsa_size() {
        let der = encode_csr_attrs(&[
            CsrAttr::KeyAlgorithm(KeyAlgorithm::EcdsaP384),
            CsrAttr::KeyAlgorithm(KeyAlgorithm::Rsa3072),
            CsrAttr::KeyAlgorithm(KeyAlgorithm::Ed25519),
            CsrAttr::ChallengePassword,
        ])
        .unwrap();
        let mut child = Command::new("openssl")
            .args(["asn1parse", "-inform", "DER"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("openssl is on PATH");
        child.stdin.take().unwrap().write_all(&der).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        // "  4:d=2  hl=2 l=   7 prim: OBJECT   :id-ecPublicKey" -> "2 OBJECT :id-ecPublicKey"
        let tree: Vec<String> = text
            .lines()
            .map(|line| {
                let depth = line.split("d=").nth(1).unwrap().split(' ').next().unwrap();
                let (_, rest) = line
                    .split_once("prim:")
                    .or_else(|| line.split_once("cons:"))
                    .unwrap();
                let rest = rest.split_whitespace().collect::<Vec<_>>().join(" ");
                format!("{depth} {rest}")
            })
            .collect();
        assert_eq!(
            tree,
            [
                "0 SEQUENCE",
                "1 SEQUENCE",
                "2 OBJECT :id-ecPublicKey",
                "2 SET",
                "3 OBJECT :secp384r1",
                "1 SEQUENCE",
                "2 OBJECT :rsaEncryption",
                "2 SET",
                "3 INTEGER :0C00",
                "1 OBJECT :ED25519",
                "1 OBJECT :challengePassword",
            ],
            "{text}"
        );
    }
}
