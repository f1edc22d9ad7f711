//! ACME request bodies: flattened JWS (RFC 7515 7.2.2, RFC 8555 6.2), the JWKs that sign
//! them (RFC 7517, RFC 7518 6), their thumbprints (RFC 7638) and external account bindings
//! (RFC 8555 7.3.4).
//!
//! Every ACME POST is a flattened JWS JSON object with exactly `protected`, `payload` and
//! `signature`; no unprotected `header`, no general `signatures` form. [`Jws::parse`] reads
//! one strictly, after a size check and before any signature work: base64url without padding
//! (RFC 7515 2), a protected header of exactly `alg`, `nonce`, `url` and `jwk` or `kid`, and
//! an `alg` of RS256, ES256, ES384 or EdDSA; anything else, `none` and the MAC algorithms
//! included, is [`JwsError::UnsupportedAlgorithm`] (the server answers
//! `badSignatureAlgorithm` with [`SUPPORTED_ALGORITHMS`]).
//!
//! A request is signed either by the key in its `jwk` (newAccount, revokeCert by certificate
//! key) or by an account named by its `kid`; [`Jws::key_reference`] says which, so the
//! caller can look the account up, and [`Jws::verify`] checks the signature with a key that
//! must fit the `alg` (RS256 an RSA key of 2048 bits or more, ES256 P-256, ES384 P-384, EdDSA
//! Ed25519). Nonce and URL are the caller's to check ([`ProtectedHeader::require_url`]
//! helps), after the signature so that a forged request cannot spend a real client's nonce.
//!
//! An external account binding is an inner JWS MACed with a key the CA handed out: parse it
//! with [`ExternalAccountBinding::from_json`], look its [`kid`](ExternalAccountBinding::kid)
//! up, then [`verify`](ExternalAccountBinding::verify) with the key.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::wire::{JsonObject, ProblemType};

/// Largest ACME request body, checked before anything is parsed. The largest legitimate one
/// is a finalize with a CSR of up to [`crate::csr::MAX_CSR_BYTES`] (32 KiB), base64url'd
/// twice (in the payload, then the payload in the JWS): about 58 KiB.
pub const MAX_JWS_BYTES: usize = 64 * 1024;

/// The `alg` values an ACME request may be signed with, for the `algorithms` member of a
/// `badSignatureAlgorithm` problem (RFC 8555 6.2).
pub const SUPPORTED_ALGORITHMS: [&str; 4] = ["RS256", "ES256", "ES384", "EdDSA"];

/// Smallest RSA modulus accepted (RFC 8555 6.2 leaves it to the server; 2048 is what
/// aws-lc-rs's verifier takes and what KeyInfra issues).
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus accepted: the verifier's limit.
pub const MAX_RSA_BITS: usize = 8192;

/// Why a request body or an external account binding was refused. The texts are fit for a
/// problem document's `detail`; they never quote the body, a key or a MAC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("the request body is larger than {MAX_JWS_BYTES} bytes")]
    TooLarge,
    #[error("the request is not a valid flattened JWS: {0}")]
    Malformed(&'static str),
    #[error("the JWS signature algorithm is not supported (RS256, ES256, ES384 and EdDSA are)")]
    UnsupportedAlgorithm,
    #[error("the JWS key is not a supported public key: {0}")]
    BadPublicKey(&'static str),
    #[error("the JWK holds private key members; send the public key only")]
    PrivateKeyMaterial,
    #[error("the JWS algorithm does not fit the key that signed it")]
    AlgorithmKeyMismatch,
    #[error("the JWS url is not the URL the request was sent to")]
    UrlMismatch,
    #[error("the JWS signature does not verify")]
    BadSignature,
    #[error("the external account binding is not valid: {0}")]
    EabMalformed(&'static str),
    #[error(
        "the external account binding's MAC algorithm is not supported (HS256, HS384 and HS512 are)"
    )]
    EabUnsupportedAlgorithm,
    #[error("the external account binding's url is not the newAccount URL")]
    EabUrlMismatch,
    #[error("the external account binding's MAC does not verify")]
    EabBadMac,
    #[error("the external account binding is for another account key")]
    EabKeyMismatch,
}

impl JwsError {
    /// The ACME problem type to answer with. An `alg` that does not fit its key is
    /// `badSignatureAlgorithm`, as Boulder answers; an EAB that fails its MAC, names another
    /// URL or binds another key is `unauthorized`.
    pub fn problem_type(&self) -> ProblemType {
        match self {
            JwsError::TooLarge
            | JwsError::Malformed(_)
            | JwsError::PrivateKeyMaterial
            | JwsError::BadSignature
            | JwsError::EabMalformed(_)
            | JwsError::EabUnsupportedAlgorithm => ProblemType::Malformed,
            JwsError::UnsupportedAlgorithm | JwsError::AlgorithmKeyMismatch => {
                ProblemType::BadSignatureAlgorithm
            }
            JwsError::BadPublicKey(_) => ProblemType::BadPublicKey,
            JwsError::UrlMismatch
            | JwsError::EabUrlMismatch
            | JwsError::EabBadMac
            | JwsError::EabKeyMismatch => ProblemType::Unauthorized,
        }
    }
}

/// A JWS signature algorithm an ACME request may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256, signature r || s of 64 bytes.
    Es256,
    /// ECDSA on P-384 with SHA-384, signature r || s of 96 bytes.
    Es384,
    /// Ed25519 (RFC 8037).
    EdDsa,
}

impl SignatureAlgorithm {
    /// The `alg` value (RFC 7518 3.1, RFC 8037 3.1).
    pub fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::Rs256 => "RS256",
            SignatureAlgorithm::Es256 => "ES256",
            SignatureAlgorithm::Es384 => "ES384",
            SignatureAlgorithm::EdDsa => "EdDSA",
        }
    }

    /// The algorithm an `alg` value names, if it is supported (case-sensitive, RFC 7515
    /// 4.1.1).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(SignatureAlgorithm::Rs256),
            "ES256" => Some(SignatureAlgorithm::Es256),
            "ES384" => Some(SignatureAlgorithm::Es384),
            "EdDSA" => Some(SignatureAlgorithm::EdDsa),
            _ => None,
        }
    }
}

/// The NIST curves an EC JWK may be on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EcCurve {
    P256,
    P384,
}

impl EcCurve {
    /// The `crv` value (RFC 7518 6.2.1.1).
    pub fn name(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
        }
    }

    /// Length of each coordinate, which RFC 7518 6.2.1.2 fixes (leading zeros kept).
    pub fn coordinate_len(self) -> usize {
        match self {
            EcCurve::P256 => 32,
            EcCurve::P384 => 48,
        }
    }

    fn verification_algorithm(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            EcCurve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            EcCurve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        }
    }
}

/// A public key as a JWK, checked: RSA of [`MIN_RSA_BITS`] to [`MAX_RSA_BITS`] with minimal
/// big-endian members, an EC point on P-256 or P-384, or an Ed25519 key. The bytes are the
/// decoded members, so re-encoding them gives the canonical JWK ([`Jwk::to_json`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Jwk {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ec {
        curve: EcCurve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Ed25519 {
        x: [u8; 32],
    },
}

/// A member that counts by being there, whatever its value (even `null`): private key
/// members are refused on sight.
#[derive(Default)]
struct Presence(bool);

impl<'de> Deserialize<'de> for Presence {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Presence(true))
    }
}

/// A JWK's members as sent. Members of no interest (`kid`, `use`, `alg`, `key_ops`, ...)
/// are ignored, as RFC 7517 4 asks; repeated members are refused by serde's derive.
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    // Private members: RSA (RFC 7518 6.3.2), EC and OKP `d`, symmetric `k`.
    #[serde(default)]
    d: Presence,
    #[serde(default)]
    p: Presence,
    #[serde(default)]
    q: Presence,
    #[serde(default)]
    dp: Presence,
    #[serde(default)]
    dq: Presence,
    #[serde(default)]
    qi: Presence,
    #[serde(default)]
    oth: Presence,
    #[serde(default)]
    k: Presence,
}

/// The RFC 7638 thumbprint input: the required members only, in lexicographic order.
/// serde_json writes struct fields in declaration order, with correct escaping.
#[derive(Serialize)]
#[serde(untagged)]
enum CanonicalJwk {
    Rsa {
        e: String,
        kty: &'static str,
        n: String,
    },
    Ec {
        crv: &'static str,
        kty: &'static str,
        x: String,
        y: String,
    },
    Okp {
        crv: &'static str,
        kty: &'static str,
        x: String,
    },
}

fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// base64url without padding, canonical (RFC 7515 2): `=`, `+`, `/`, whitespace and
/// non-zero trailing bits are all refused.
fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

fn key_member(value: Option<&String>, what: &'static str) -> Result<Vec<u8>, JwsError> {
    let text = value.ok_or(JwsError::BadPublicKey(what))?;
    b64url_decode(text).ok_or(JwsError::BadPublicKey(what))
}

/// 0x04 || x || y: the uncompressed point aws-lc-rs takes.
fn ec_point(x: &[u8], y: &[u8]) -> Vec<u8> {
    [&[0x04][..], x, y].concat()
}

/// Bit length of a big-endian unsigned integer without leading zero bytes.
fn bit_len(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(first) => bytes.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

impl Jwk {
    fn from_raw(raw: RawJwk) -> Result<Self, JwsError> {
        let private = [
            &raw.d, &raw.p, &raw.q, &raw.dp, &raw.dq, &raw.qi, &raw.oth, &raw.k,
        ];
        if private.iter().any(|member| member.0) {
            return Err(JwsError::PrivateKeyMaterial);
        }
        match raw.kty.as_str() {
            "RSA" => {
                if raw.crv.is_some() || raw.x.is_some() || raw.y.is_some() {
                    return Err(JwsError::BadPublicKey("an RSA key has EC members"));
                }
                let n = key_member(raw.n.as_ref(), "an RSA key needs n in base64url")?;
                let e = key_member(raw.e.as_ref(), "an RSA key needs e in base64url")?;
                // RFC 7518 6.3.1: minimal big-endian; aws-lc-rs refuses a leading zero too.
                if n.first() == Some(&0) || e.first() == Some(&0) {
                    return Err(JwsError::BadPublicKey(
                        "RSA members must not have leading zero bytes",
                    ));
                }
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bit_len(&n)) {
                    return Err(JwsError::BadPublicKey(
                        "the RSA modulus must have 2048 to 8192 bits",
                    ));
                }
                // An exponent is odd and at least 3; more than 32 bits is no real key.
                if e.len() > 4 || e.last().is_none_or(|last| last & 1 == 0) || e == [1] {
                    return Err(JwsError::BadPublicKey("the RSA exponent is not valid"));
                }
                Ok(Jwk::Rsa { n, e })
            }
            "EC" => {
                if raw.n.is_some() || raw.e.is_some() {
                    return Err(JwsError::BadPublicKey("an EC key has RSA members"));
                }
                let curve = match raw.crv.as_deref() {
                    Some("P-256") => EcCurve::P256,
                    Some("P-384") => EcCurve::P384,
                    _ => {
                        return Err(JwsError::BadPublicKey(
                            "an EC key must be on P-256 or P-384",
                        ));
                    }
                };
                let x = key_member(raw.x.as_ref(), "an EC key needs x in base64url")?;
                let y = key_member(raw.y.as_ref(), "an EC key needs y in base64url")?;
                if x.len() != curve.coordinate_len() || y.len() != curve.coordinate_len() {
                    return Err(JwsError::BadPublicKey(
                        "EC coordinates must have the curve's full length",
                    ));
                }
                // Off-curve points are refused here, not at the first signature.
                UnparsedPublicKey::new(curve.verification_algorithm(), ec_point(&x, &y))
                    .parse()
                    .map_err(|_| JwsError::BadPublicKey("the EC point is not on the curve"))?;
                Ok(Jwk::Ec { curve, x, y })
            }
            "OKP" => {
                if raw.y.is_some() || raw.n.is_some() || raw.e.is_some() {
                    return Err(JwsError::BadPublicKey("an OKP key has EC or RSA members"));
                }
                if raw.crv.as_deref() != Some("Ed25519") {
                    return Err(JwsError::BadPublicKey("an OKP key must be Ed25519"));
                }
                let x = key_member(raw.x.as_ref(), "an Ed25519 key needs x in base64url")?;
                let x: [u8; 32] = x
                    .try_into()
                    .map_err(|_| JwsError::BadPublicKey("an Ed25519 key has 32 bytes"))?;
                Ok(Jwk::Ed25519 { x })
            }
            _ => Err(JwsError::BadPublicKey(
                "the key type must be RSA, EC or OKP (Ed25519)",
            )),
        }
    }

    /// The JWK of a SubjectPublicKeyInfo (DER): revokeCert signed with a certificate's own
    /// key compares the request's `jwk` with this (RFC 8555 7.6). The key then passes the
    /// checks a JWK from JSON passes (its canonical JSON is read back), so a point off its
    /// curve or an RSA key outside the bounds is [`JwsError::BadPublicKey`] here too.
    pub fn from_spki_der(spki_der: &[u8]) -> Result<Self, JwsError> {
        let key = Self::from_spki_der_unchecked(spki_der)?;
        Self::from_json_bytes(key.to_json().as_bytes())
    }

    /// The members of a SubjectPublicKeyInfo, before [`Jwk::from_spki_der`]'s checks.
    fn from_spki_der_unchecked(spki_der: &[u8]) -> Result<Self, JwsError> {
        use x509_parser::prelude::FromDer;
        use x509_parser::public_key::PublicKey;
        let unusable = || JwsError::BadPublicKey("the certificate's key cannot be a JWK");
        let (rest, spki) =
            x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der).map_err(|_| unusable())?;
        if !rest.is_empty() {
            return Err(unusable());
        }
        let strip = |bytes: &[u8]| -> Vec<u8> {
            let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
            bytes[first..].to_vec()
        };
        match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => {
                let n = strip(rsa.modulus);
                if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bit_len(&n)) {
                    return Err(unusable());
                }
                Ok(Jwk::Rsa {
                    n,
                    e: strip(rsa.exponent),
                })
            }
            Ok(PublicKey::EC(point)) => {
                let curve = match spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string())
                    .as_deref()
                {
                    Some("1.2.840.10045.3.1.7") => EcCurve::P256,
                    Some("1.3.132.0.34") => EcCurve::P384,
                    _ => return Err(unusable()),
                };
                let len = curve.coordinate_len();
                match point.data() {
                    [0x04, xy @ ..] if xy.len() == 2 * len => Ok(Jwk::Ec {
                        curve,
                        x: xy[..len].to_vec(),
                        y: xy[len..].to_vec(),
                    }),
                    _ => Err(unusable()),
                }
            }
            _ if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => {
                let x: [u8; 32] = spki
                    .subject_public_key
                    .data
                    .as_ref()
                    .try_into()
                    .map_err(|_| unusable())?;
                Ok(Jwk::Ed25519 { x })
            }
            _ => Err(unusable()),
        }
    }

    /// Reads a JWK from its JSON text: the EAB payload, or a key stored by [`Jwk::to_json`].
    pub fn from_json_bytes(json: &[u8]) -> Result<Self, JwsError> {
        let JsonObject(raw) = serde_json::from_slice::<JsonObject<RawJwk>>(json)
            .map_err(|_| JwsError::BadPublicKey("not a JWK object"))?;
        Jwk::from_raw(raw)
    }

    fn canonical(&self) -> CanonicalJwk {
        match self {
            Jwk::Rsa { n, e } => CanonicalJwk::Rsa {
                e: b64url(e),
                kty: "RSA",
                n: b64url(n),
            },
            Jwk::Ec { curve, x, y } => CanonicalJwk::Ec {
                crv: curve.name(),
                kty: "EC",
                x: b64url(x),
                y: b64url(y),
            },
            Jwk::Ed25519 { x } => CanonicalJwk::Okp {
                crv: "Ed25519",
                kty: "OKP",
                x: b64url(x),
            },
        }
    }

    /// The key's JSON with only its required members, in lexicographic order and without
    /// whitespace: the RFC 7638 thumbprint input, and the form to store.
    pub fn to_json(&self) -> String {
        // A struct of strings always serialises; the empty fallback is never reached.
        serde_json::to_string(&self.canonical()).unwrap_or_default()
    }

    /// The RFC 7638 thumbprint: base64url of the SHA-256 of [`Jwk::to_json`]. The account's
    /// identity (one account per key) and the suffix of every key authorization.
    pub fn thumbprint(&self) -> String {
        b64url(digest::digest(&digest::SHA256, self.to_json().as_bytes()).as_ref())
    }

    /// True if `alg` is the algorithm for this key.
    pub fn fits(&self, alg: SignatureAlgorithm) -> bool {
        matches!(
            (alg, self),
            (SignatureAlgorithm::Rs256, Jwk::Rsa { .. })
                | (
                    SignatureAlgorithm::Es256,
                    Jwk::Ec {
                        curve: EcCurve::P256,
                        ..
                    }
                )
                | (
                    SignatureAlgorithm::Es384,
                    Jwk::Ec {
                        curve: EcCurve::P384,
                        ..
                    }
                )
                | (SignatureAlgorithm::EdDsa, Jwk::Ed25519 { .. })
        )
    }

    /// Checks `signature` over `message` with this key under `alg`.
    pub fn verify(
        &self,
        alg: SignatureAlgorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), JwsError> {
        if !self.fits(alg) {
            return Err(JwsError::AlgorithmKeyMismatch);
        }
        let verified = match self {
            Jwk::Rsa { n, e } => RsaPublicKeyComponents { n, e }.verify(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                message,
                signature,
            ),
            Jwk::Ec { curve, x, y } => {
                UnparsedPublicKey::new(curve.verification_algorithm(), ec_point(x, y))
                    .verify(message, signature)
            }
            Jwk::Ed25519 { x } => {
                UnparsedPublicKey::new(&signature::ED25519, x).verify(message, signature)
            }
        };
        verified.map_err(|_| JwsError::BadSignature)
    }
}

/// A flattened JWS JSON object: these three members and no other.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlattened {
    protected: String,
    payload: String,
    signature: String,
}

/// The protected header as sent: RFC 8555 6.2's members, each at most once. Other members
/// (`typ`, `x5c`, ...) are ignored, as RFC 7515 4 requires of parameters a recipient does
/// not understand, and change nothing: the key is only ever `jwk` or `kid`. `crit` (RFC 7515
/// 4.1.11: extensions the sender says must be understood; KeyInfra understands none) and
/// `b64` (RFC 7797, which would change the signing input) are refused.
#[derive(Deserialize)]
struct RawProtected {
    alg: String,
    nonce: Option<String>,
    url: String,
    jwk: Option<JsonObject<RawJwk>>,
    kid: Option<String>,
    crit: Option<serde::de::IgnoredAny>,
    b64: Option<serde::de::IgnoredAny>,
}

/// The protected header of a request, checked for shape (not yet for meaning: which of `jwk`
/// and `kid` a resource wants, the nonce and the URL are the caller's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedHeader {
    pub alg: SignatureAlgorithm,
    pub nonce: Option<String>,
    pub url: String,
    pub jwk: Option<Jwk>,
    pub kid: Option<String>,
}

impl ProtectedHeader {
    /// Refuses a request whose `url` is not `expected`, the URL it arrived on, built from
    /// the configured external base URL (RFC 8555 6.4).
    pub fn require_url(&self, expected: &str) -> Result<(), JwsError> {
        if self.url == expected {
            Ok(())
        } else {
            Err(JwsError::UrlMismatch)
        }
    }
}

/// How a request names its key: exactly one of these (RFC 8555 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyReference<'a> {
    /// The key itself: newAccount, and revokeCert signed by the certificate's key.
    Jwk(&'a Jwk),
    /// An account URL: every other request.
    Kid(&'a str),
}

/// A parsed ACME request: header and payload read, signature not yet checked.
#[derive(Debug, Clone)]
pub struct Jws {
    /// `protected "." payload` exactly as sent: what the signature covers.
    signing_input: String,
    signature: Vec<u8>,
    header: ProtectedHeader,
    payload: Vec<u8>,
}

/// The parts of a flattened JWS shared by requests and external account bindings.
struct Decoded<H> {
    signing_input: String,
    signature: Vec<u8>,
    header: H,
    payload: Vec<u8>,
}

fn decode_flattened<H: for<'de> Deserialize<'de>>(
    raw: RawFlattened,
    malformed: fn(&'static str) -> JwsError,
) -> Result<Decoded<H>, JwsError> {
    let header_json = b64url_decode(&raw.protected)
        .ok_or_else(|| malformed("protected is not base64url without padding"))?;
    let payload = b64url_decode(&raw.payload)
        .ok_or_else(|| malformed("payload is not base64url without padding"))?;
    let signature = b64url_decode(&raw.signature)
        .ok_or_else(|| malformed("signature is not base64url without padding"))?;
    if signature.is_empty() {
        return Err(malformed("the signature is empty"));
    }
    let JsonObject(header) =
        serde_json::from_slice::<JsonObject<H>>(&header_json).map_err(|_| {
            malformed("the protected header is not a JSON object of the expected members")
        })?;
    Ok(Decoded {
        signing_input: format!("{}.{}", raw.protected, raw.payload),
        signature,
        header,
        payload,
    })
}

impl Jws {
    /// Reads a request body: at most [`MAX_JWS_BYTES`], a JSON object of exactly
    /// `protected`, `payload` and `signature` (each once), each base64url without padding,
    /// and a protected header of `alg`, `url`, and optionally `nonce`, `jwk` and `kid`.
    /// The `alg` must be supported ([`JwsError::UnsupportedAlgorithm`] otherwise) and a
    /// `jwk` a supported public key; whether `jwk` or `kid` is there is
    /// [`Jws::key_reference`]'s question.
    pub fn parse(body: &[u8]) -> Result<Self, JwsError> {
        if body.len() > MAX_JWS_BYTES {
            return Err(JwsError::TooLarge);
        }
        let JsonObject(raw) =
            serde_json::from_slice::<JsonObject<RawFlattened>>(body).map_err(|_| {
                JwsError::Malformed(
                    "the body must be a JSON object of exactly protected, payload and signature",
                )
            })?;
        let decoded = decode_flattened::<RawProtected>(raw, JwsError::Malformed)?;
        let raw_header = decoded.header;
        if raw_header.crit.is_some() || raw_header.b64.is_some() {
            return Err(JwsError::Malformed(
                "the protected header asks for JWS extensions (crit, b64) this server does not support",
            ));
        }
        let alg =
            SignatureAlgorithm::from_name(&raw_header.alg).ok_or(JwsError::UnsupportedAlgorithm)?;
        let jwk = raw_header
            .jwk
            .map(|JsonObject(raw)| Jwk::from_raw(raw))
            .transpose()?;
        Ok(Jws {
            signing_input: decoded.signing_input,
            signature: decoded.signature,
            header: ProtectedHeader {
                alg,
                nonce: raw_header.nonce,
                url: raw_header.url,
                jwk,
                kid: raw_header.kid,
            },
            payload: decoded.payload,
        })
    }

    pub fn header(&self) -> &ProtectedHeader {
        &self.header
    }

    /// What the signature covers: the `protected` and `payload` members as sent, joined by
    /// a dot.
    pub fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// The decoded signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The decoded payload: JSON for most requests, empty for POST-as-GET.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// True for a POST-as-GET (RFC 8555 6.3): the payload is the empty string, which is not
    /// the same as `{}` (`e30`).
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    /// The `jwk` or the `kid`, refusing a header with both or neither.
    pub fn key_reference(&self) -> Result<KeyReference<'_>, JwsError> {
        match (&self.header.jwk, &self.header.kid) {
            (Some(jwk), None) => Ok(KeyReference::Jwk(jwk)),
            (None, Some(kid)) => Ok(KeyReference::Kid(kid)),
            (Some(_), Some(_)) => Err(JwsError::Malformed(
                "the protected header has both jwk and kid",
            )),
            (None, None) => Err(JwsError::Malformed(
                "the protected header has neither jwk nor kid",
            )),
        }
    }

    /// Checks the signature with `key` (the account's, for a `kid` request), which must fit
    /// the header's `alg`.
    pub fn verify(&self, key: &Jwk) -> Result<(), JwsError> {
        key.verify(
            self.header.alg,
            self.signing_input.as_bytes(),
            &self.signature,
        )
    }

    /// For requests that must carry their own key (newAccount, revokeCert by the
    /// certificate's key): requires a `jwk` and no `kid`, checks the signature with it and
    /// returns it.
    pub fn verify_with_embedded_jwk(&self) -> Result<&Jwk, JwsError> {
        match self.key_reference()? {
            KeyReference::Jwk(jwk) => {
                self.verify(jwk)?;
                Ok(jwk)
            }
            KeyReference::Kid(_) => Err(JwsError::Malformed(
                "this request must carry its key in jwk, not kid",
            )),
        }
    }
}

/// The MAC algorithms an external account binding may use (RFC 7518 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacAlgorithm {
    Hs256,
    Hs384,
    Hs512,
}

impl MacAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            MacAlgorithm::Hs256 => "HS256",
            MacAlgorithm::Hs384 => "HS384",
            MacAlgorithm::Hs512 => "HS512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(MacAlgorithm::Hs256),
            "HS384" => Some(MacAlgorithm::Hs384),
            "HS512" => Some(MacAlgorithm::Hs512),
            _ => None,
        }
    }

    fn hmac_algorithm(self) -> hmac::Algorithm {
        match self {
            MacAlgorithm::Hs256 => hmac::HMAC_SHA256,
            MacAlgorithm::Hs384 => hmac::HMAC_SHA384,
            MacAlgorithm::Hs512 => hmac::HMAC_SHA512,
        }
    }
}

/// The EAB protected header: exactly these three; a `nonce` (which RFC 8555 7.3.4 forbids)
/// or a `jwk` is an unknown member and refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEabProtected {
    alg: String,
    kid: String,
    url: String,
}

/// An external account binding (RFC 8555 7.3.4), read but not yet verified: the caller looks
/// up the MAC key by [`kid`](Self::kid) first, then calls [`verify`](Self::verify).
#[derive(Debug, Clone)]
pub struct ExternalAccountBinding {
    signing_input: String,
    tag: Vec<u8>,
    algorithm: MacAlgorithm,
    kid: String,
    url: String,
    jwk: Jwk,
}

impl ExternalAccountBinding {
    /// Reads the `externalAccountBinding` member of a newAccount payload: a flattened JWS
    /// whose protected header is exactly `alg` (HS256, HS384 or HS512), `kid` and `url`, and
    /// whose payload is a public JWK.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, JwsError> {
        let JsonObject(raw) = JsonObject::<RawFlattened>::deserialize(value).map_err(|_| {
            JwsError::EabMalformed(
                "it must be a JSON object of exactly protected, payload and signature",
            )
        })?;
        let decoded = decode_flattened::<RawEabProtected>(raw, JwsError::EabMalformed)?;
        let algorithm = MacAlgorithm::from_name(&decoded.header.alg)
            .ok_or(JwsError::EabUnsupportedAlgorithm)?;
        if decoded.header.kid.is_empty() {
            return Err(JwsError::EabMalformed("the kid is empty"));
        }
        let jwk = Jwk::from_json_bytes(&decoded.payload)
            .map_err(|_| JwsError::EabMalformed("the payload is not the account's public JWK"))?;
        Ok(ExternalAccountBinding {
            signing_input: decoded.signing_input,
            tag: decoded.signature,
            algorithm,
            kid: decoded.header.kid,
            url: decoded.header.url,
            jwk,
        })
    }

    /// The key identifier the CA handed out with the MAC key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> MacAlgorithm {
        self.algorithm
    }

    /// Checks the binding: the MAC under `mac_key` (in constant time), the `url` against
    /// the outer JWS's, and the payload key against the outer `jwk` by thumbprint (clients
    /// re-serialise the JWK, so the bytes may differ).
    pub fn verify(&self, mac_key: &[u8], outer_url: &str, outer_jwk: &Jwk) -> Result<(), JwsError> {
        let key = hmac::Key::new(self.algorithm.hmac_algorithm(), mac_key);
        hmac::verify(&key, self.signing_input.as_bytes(), &self.tag)
            .map_err(|_| JwsError::EabBadMac)?;
        if self.url != outer_url {
            return Err(JwsError::EabUrlMismatch);
        }
        if self.jwk.thumbprint() != outer_jwk.thumbprint() {
            return Err(JwsError::EabKeyMismatch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair,
        Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
    };
    use serde_json::{Value, json};

    use super::*;

    const URL: &str = "https://ca.example.net/acme/new-account";

    /// A signing key of each algorithm, as an ACME client holds it.
    enum TestKey {
        Rsa(&'static RsaKeyPair),
        Ec(EcdsaKeyPair, EcCurve),
        Ed(Ed25519KeyPair),
    }

    /// RSA key generation is the slow part: one key for every test.
    fn rsa_key() -> &'static RsaKeyPair {
        static KEY: OnceLock<RsaKeyPair> = OnceLock::new();
        KEY.get_or_init(|| RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
    }

    impl TestKey {
        fn new(alg: SignatureAlgorithm) -> Self {
            match alg {
                SignatureAlgorithm::Rs256 => TestKey::Rsa(rsa_key()),
                SignatureAlgorithm::Es256 => TestKey::Ec(
                    EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
                    EcCurve::P256,
                ),
                SignatureAlgorithm::Es384 => TestKey::Ec(
                    EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap(),
                    EcCurve::P384,
                ),
                SignatureAlgorithm::EdDsa => TestKey::Ed(Ed25519KeyPair::generate().unwrap()),
            }
        }

        /// The JWK as a client writes it: `kty` first, and members the server ignores.
        fn jwk_json(&self) -> Value {
            match self {
                TestKey::Rsa(key) => {
                    let public = RsaPublicKeyComponents::<Vec<u8>>::from(key.public_key());
                    json!({"kty": "RSA", "n": b64url(&public.n), "e": b64url(&public.e),
                           "use": "sig"})
                }
                TestKey::Ec(key, curve) => {
                    let point = key.public_key().as_ref();
                    let (x, y) = point[1..].split_at(curve.coordinate_len());
                    json!({"kty": "EC", "crv": curve.name(), "x": b64url(x), "y": b64url(y)})
                }
                TestKey::Ed(key) => {
                    json!({"kty": "OKP", "crv": "Ed25519", "x": b64url(key.public_key().as_ref())})
                }
            }
        }

        fn jwk(&self) -> Jwk {
            Jwk::from_json_bytes(self.jwk_json().to_string().as_bytes()).unwrap()
        }

        fn sign(&self, message: &[u8]) -> Vec<u8> {
            match self {
                TestKey::Rsa(key) => {
                    let mut signature = vec![0; key.public_modulus_len()];
                    key.sign(
                        &RSA_PKCS1_SHA256,
                        &SystemRandom::new(),
                        message,
                        &mut signature,
                    )
                    .unwrap();
                    signature
                }
                TestKey::Ec(key, _) => key
                    .sign(&SystemRandom::new(), message)
                    .unwrap()
                    .as_ref()
                    .to_vec(),
                TestKey::Ed(key) => key.sign(message).as_ref().to_vec(),
            }
        }
    }

    /// The SubjectPublicKeyInfo a certificate for `key` would carry.
    fn spki_of(key: &TestKey) -> Vec<u8> {
        let (oid, parameters, bits): (&[u64], Option<&[u64]>, Vec<u8>) = match key {
            TestKey::Rsa(key) => (
                &[1, 2, 840, 113549, 1, 1, 1],
                None,
                key.public_key().as_ref().to_vec(),
            ),
            TestKey::Ec(key, EcCurve::P256) => (
                &[1, 2, 840, 10045, 2, 1],
                Some(&[1, 2, 840, 10045, 3, 1, 7]),
                key.public_key().as_ref().to_vec(),
            ),
            TestKey::Ec(key, EcCurve::P384) => (
                &[1, 2, 840, 10045, 2, 1],
                Some(&[1, 3, 132, 0, 34]),
                key.public_key().as_ref().to_vec(),
            ),
            TestKey::Ed(key) => (&[1, 3, 101, 112], None, key.public_key().as_ref().to_vec()),
        };
        let is_rsa = matches!(key, TestKey::Rsa(_));
        yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_sequence(|w| {
                    w.next()
                        .write_oid(&yasna::models::ObjectIdentifier::from_slice(oid));
                    match parameters {
                        Some(curve) => w
                            .next()
                            .write_oid(&yasna::models::ObjectIdentifier::from_slice(curve)),
                        None if is_rsa => w.next().write_null(),
                        None => {}
                    }
                });
                w.next().write_bitvec_bytes(&bits, bits.len() * 8);
            });
        })
    }

    #[test]
    fn a_certificate_key_reads_as_the_same_jwk() {
        for alg in [
            SignatureAlgorithm::Rs256,
            SignatureAlgorithm::Es256,
            SignatureAlgorithm::Es384,
            SignatureAlgorithm::EdDsa,
        ] {
            let key = TestKey::new(alg);
            assert_eq!(
                Jwk::from_spki_der(&spki_of(&key)).unwrap(),
                key.jwk(),
                "{alg:?}"
            );
        }
        assert!(Jwk::from_spki_der(b"not DER").is_err());
        let mut trailing = spki_of(&TestKey::new(SignatureAlgorithm::EdDsa));
        trailing.push(0);
        assert!(Jwk::from_spki_der(&trailing).is_err());
    }

    /// Found by the acme_jws fuzz target (fuzz/regressions/acme_jws/ec-point-off-curve): a
    /// certificate whose P-256 point is not on the curve read as a JWK that its own JSON
    /// then refused. It is refused as a JWK from JSON is.
    #[test]
    fn a_certificate_key_off_its_curve_is_no_jwk() {
        let mut spki = spki_of(&TestKey::new(SignatureAlgorithm::Es256));
        let last = spki.len() - 1;
        spki[last] ^= 1;
        assert_eq!(
            Jwk::from_spki_der(&spki),
            Err(JwsError::BadPublicKey("the EC point is not on the curve"))
        );
    }

    /// A flattened JWS of `header` and `payload` signed by `key`.
    fn signed(key: &TestKey, header: &Value, payload: &[u8]) -> Value {
        let protected = b64url(header.to_string().as_bytes());
        let payload = b64url(payload);
        let signature = key.sign(format!("{protected}.{payload}").as_bytes());
        json!({"protected": protected, "payload": payload, "signature": b64url(&signature)})
    }

    fn body(value: &Value) -> Vec<u8> {
        value.to_string().into_bytes()
    }

    fn new_account_header(key: &TestKey, alg: &str) -> Value {
        json!({"alg": alg, "nonce": "n0nce", "url": URL, "jwk": key.jwk_json()})
    }

    const ALL: [SignatureAlgorithm; 4] = [
        SignatureAlgorithm::Rs256,
        SignatureAlgorithm::Es256,
        SignatureAlgorithm::Es384,
        SignatureAlgorithm::EdDsa,
    ];

    #[test]
    fn rfc_7638_example_thumbprint() {
        // RFC 7638 3.1, with its "alg" and "kid" members, which the thumbprint leaves out.
        let jwk = Jwk::from_json_bytes(
            br#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .unwrap();
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert!(
            jwk.to_json()
                .starts_with(r#"{"e":"AQAB","kty":"RSA","n":"0vx7"#)
        );
    }

    #[test]
    fn the_rfc_examples_verify() {
        // RFC 7515 A.3 (ES256) and RFC 8037 A.4 (Ed25519): keys and signatures made by
        // others. ECDSA signatures differ on every signing, so only verification is checked.
        let p256 = Jwk::from_json_bytes(br#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#).unwrap();
        let es256 = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let signature = b64url_decode("DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q").unwrap();
        p256.verify(SignatureAlgorithm::Es256, es256.as_bytes(), &signature)
            .unwrap();
        assert_eq!(
            p256.verify(
                SignatureAlgorithm::Es256,
                b"eyJhbGciOiJFUzI1NiJ9.e30",
                &signature
            ),
            Err(JwsError::BadSignature)
        );

        let ed = Jwk::from_json_bytes(
            br#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
        )
        .unwrap();
        let eddsa = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
        let signature = b64url_decode("hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg").unwrap();
        ed.verify(SignatureAlgorithm::EdDsa, eddsa.as_bytes(), &signature)
            .unwrap();
        // RFC 8037 A.3's thumbprint of that key.
        assert_eq!(
            ed.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn canonical_json_orders_members_and_reads_back() {
        for alg in ALL {
            let key = TestKey::new(alg);
            let jwk = key.jwk();
            let canonical = jwk.to_json();
            assert!(!canonical.contains(" ") && !canonical.contains("\"use\""));
            // RFC 7638 3.2: the required members only, in lexicographic order.
            let expected: &[&str] = match alg {
                SignatureAlgorithm::Rs256 => &["e", "kty", "n"],
                SignatureAlgorithm::Es256 | SignatureAlgorithm::Es384 => &["crv", "kty", "x", "y"],
                SignatureAlgorithm::EdDsa => &["crv", "kty", "x"],
            };
            let positions: Vec<usize> = expected
                .iter()
                .map(|name| canonical.find(&format!("\"{name}\":")).unwrap())
                .collect();
            assert!(positions.is_sorted(), "{alg:?}: {canonical}");
            let object: serde_json::Map<String, Value> = serde_json::from_str(&canonical).unwrap();
            assert_eq!(object.len(), expected.len());
            assert_eq!(Jwk::from_json_bytes(canonical.as_bytes()).unwrap(), jwk);
            assert_eq!(jwk.thumbprint().len(), 43);
        }
    }

    #[test]
    fn every_algorithm_signs_and_verifies_with_jwk_and_with_kid() {
        for alg in ALL {
            let key = TestKey::new(alg);
            let jws = Jws::parse(&body(&signed(
                &key,
                &new_account_header(&key, alg.name()),
                br#"{"termsOfServiceAgreed":true}"#,
            )))
            .unwrap();
            assert_eq!(jws.header().alg, alg);
            assert_eq!(jws.header().nonce.as_deref(), Some("n0nce"));
            assert_eq!(jws.verify_with_embedded_jwk().unwrap(), &key.jwk());
            assert_eq!(jws.payload(), br#"{"termsOfServiceAgreed":true}"#);
            assert!(!jws.is_post_as_get());

            let kid = "https://ca.example.net/acme/acct/1";
            let header = json!({"alg": alg.name(), "nonce": "n1", "url": URL, "kid": kid});
            let jws = Jws::parse(&body(&signed(&key, &header, b""))).unwrap();
            assert_eq!(jws.key_reference().unwrap(), KeyReference::Kid(kid));
            jws.verify(&key.jwk()).unwrap();
            assert!(jws.is_post_as_get());
            assert_eq!(
                jws.verify_with_embedded_jwk().unwrap_err(),
                JwsError::Malformed("this request must carry its key in jwk, not kid")
            );
        }
    }

    #[test]
    fn tampering_or_another_key_breaks_the_signature() {
        for alg in ALL {
            let key = TestKey::new(alg);
            let good = signed(&key, &new_account_header(&key, alg.name()), b"{}");

            let mut tampered = good.clone();
            tampered["payload"] = Value::String(b64url(b"{\"onlyReturnExisting\":true}"));
            let jws = Jws::parse(&body(&tampered)).unwrap();
            assert_eq!(jws.verify_with_embedded_jwk(), Err(JwsError::BadSignature));

            let mut header = new_account_header(&key, alg.name());
            header["url"] = json!("https://ca.example.net/acme/revoke-cert");
            let mut tampered = good.clone();
            tampered["protected"] = Value::String(b64url(header.to_string().as_bytes()));
            let jws = Jws::parse(&body(&tampered)).unwrap();
            assert_eq!(jws.verify_with_embedded_jwk(), Err(JwsError::BadSignature));

            let mut tampered = good.clone();
            let mut signature = b64url_decode(good["signature"].as_str().unwrap()).unwrap();
            signature[0] ^= 1;
            tampered["signature"] = Value::String(b64url(&signature));
            let jws = Jws::parse(&body(&tampered)).unwrap();
            assert_eq!(jws.verify_with_embedded_jwk(), Err(JwsError::BadSignature));

            let other = TestKey::new(alg).jwk();
            let jws = Jws::parse(&body(&good)).unwrap();
            if alg != SignatureAlgorithm::Rs256 {
                assert_eq!(jws.verify(&other), Err(JwsError::BadSignature));
            }
            jws.verify(&key.jwk()).unwrap();
        }
    }

    #[test]
    fn an_algorithm_that_does_not_fit_the_key_is_refused() {
        let p256 = TestKey::new(SignatureAlgorithm::Es256);
        for alg in ["ES384", "RS256", "EdDSA"] {
            let jws = Jws::parse(&body(&signed(
                &p256,
                &new_account_header(&p256, alg),
                b"{}",
            )))
            .unwrap();
            let error = jws.verify_with_embedded_jwk().unwrap_err();
            assert_eq!(error, JwsError::AlgorithmKeyMismatch, "{alg}");
            assert_eq!(error.problem_type(), ProblemType::BadSignatureAlgorithm);
        }
        let ed = TestKey::new(SignatureAlgorithm::EdDsa);
        let jws = Jws::parse(&body(&signed(&ed, &new_account_header(&ed, "ES256"), b""))).unwrap();
        assert_eq!(jws.verify(&ed.jwk()), Err(JwsError::AlgorithmKeyMismatch));
    }

    #[test]
    fn unsupported_algorithms_are_their_own_error() {
        let key = TestKey::new(SignatureAlgorithm::Es256);
        for alg in [
            "none", "HS256", "RS512", "PS256", "ES512", "es256", "Ed25519", "",
        ] {
            let mut request = signed(&key, &new_account_header(&key, alg), b"{}");
            if alg == "none" {
                request["signature"] = json!("");
            }
            let error = Jws::parse(&body(&request)).unwrap_err();
            if alg == "none" {
                assert_eq!(error, JwsError::Malformed("the signature is empty"));
                continue;
            }
            assert_eq!(error, JwsError::UnsupportedAlgorithm, "{alg:?}");
            assert_eq!(error.problem_type(), ProblemType::BadSignatureAlgorithm);
        }
        // `none` with something in the signature still names an unsupported algorithm.
        let request = signed(&key, &new_account_header(&key, "none"), b"{}");
        assert_eq!(
            Jws::parse(&body(&request)).unwrap_err(),
            JwsError::UnsupportedAlgorithm
        );
    }

    #[test]
    fn padding_and_the_standard_alphabet_are_refused() {
        let key = TestKey::new(SignatureAlgorithm::Es256);
        let good = signed(&key, &new_account_header(&key, "ES256"), b"{\"a\":1}");
        for member in ["protected", "payload", "signature"] {
            let text = good[member].as_str().unwrap();
            for bad in [
                format!("{text}="),
                format!("{text}=="),
                text.replace('-', "+").replace('_', "/") + "+/",
                format!(" {text}"),
                format!("{}\n{}", &text[..4], &text[4..]),
                format!("{text}."),
                format!("{text}%3D"),
            ] {
                let mut request = good.clone();
                request[member] = Value::String(bad.clone());
                let error = Jws::parse(&body(&request)).unwrap_err();
                assert!(
                    matches!(error, JwsError::Malformed(_)),
                    "{member} {bad:?}: {error:?}"
                );
            }
        }
    }

    #[test]
    fn only_the_three_members_of_a_flattened_jws_are_taken() {
        let key = TestKey::new(SignatureAlgorithm::Es256);
        let good = signed(&key, &new_account_header(&key, "ES256"), b"{}");
        let (p, l, s) = (&good["protected"], &good["payload"], &good["signature"]);
        let bodies = [
            json!({"protected": p, "payload": l, "signature": s, "header": {"kid": "x"}})
                .to_string(),
            json!({"payload": l, "signatures": [{"protected": p, "signature": s}]}).to_string(),
            json!({"protected": p, "payload": l}).to_string(),
            json!({"protected": p, "signature": s}).to_string(),
            json!({"protected": p, "payload": 1, "signature": s}).to_string(),
            json!([p, l, s]).to_string(),
            format!(r#"{{"protected":{p},"payload":{l},"payload":{l},"signature":{s}}}"#),
            format!("{p}.{l}.{s}"),
            format!("{good} {{}}"),
            String::new(),
            "null".into(),
        ];
        for text in bodies {
            let error = Jws::parse(text.as_bytes()).unwrap_err();
            assert!(matches!(error, JwsError::Malformed(_)), "{text}: {error:?}");
            assert_eq!(error.problem_type(), ProblemType::Malformed);
        }
    }

    #[test]
    fn the_protected_header_takes_the_acme_members_once_and_no_extensions() {
        let key = TestKey::new(SignatureAlgorithm::Es256);
        let jwk = key.jwk_json();
        // A member nobody asked us to understand is ignored (RFC 7515 4), and verifies.
        let typed = json!({"alg": "ES256", "nonce": "n", "url": URL, "jwk": jwk, "typ": "JWT", "x5u": "https://x.example/"});
        let jws = Jws::parse(&body(&signed(&key, &typed, b"{}"))).unwrap();
        assert_eq!(jws.header().url, URL);
        jws.verify_with_embedded_jwk().unwrap();
        let headers = [
            json!({"alg": "ES256", "nonce": "n", "url": URL, "jwk": jwk, "crit": ["b64"], "b64": false}),
            json!({"alg": "ES256", "nonce": "n", "url": URL, "jwk": jwk, "crit": ["exp"], "exp": 1}),
            json!({"alg": "ES256", "nonce": "n", "url": URL, "jwk": jwk, "b64": true}),
            json!({"alg": "ES256", "nonce": "n", "jwk": jwk}),
            json!({"nonce": "n", "url": URL, "jwk": jwk}),
            json!({"alg": "ES256", "url": URL, "jwk": [jwk["kty"], jwk["crv"]]}),
            json!({"alg": "ES256", "url": URL, "kid": 7}),
            json!(["ES256", "n", URL]),
        ];
        for header in headers {
            let error = Jws::parse(&body(&signed(&key, &header, b"{}"))).unwrap_err();
            assert!(
                matches!(error, JwsError::Malformed(_)),
                "{header}: {error:?}"
            );
        }
        let repeated =
            format!(r#"{{"alg":"ES256","url":"{URL}","url":"https://evil.example/","kid":"k"}}"#);
        let protected = b64url(repeated.as_bytes());
        let request = json!({"protected": protected, "payload": "", "signature": "AAAA"});
        assert!(matches!(
            Jws::parse(&body(&request)),
            Err(JwsError::Malformed(_))
        ));
        let not_json =
            json!({"protected": b64url(b"alg=ES256"), "payload": "", "signature": "AAAA"});
        assert!(matches!(
            Jws::parse(&body(&not_json)),
            Err(JwsError::Malformed(_))
        ));
    }

    #[test]
    fn exactly_one_of_jwk_and_kid_is_a_question_the_caller_asks() {
        let key = TestKey::new(SignatureAlgorithm::EdDsa);
        let both = json!({"alg": "EdDSA", "url": URL, "jwk": key.jwk_json(), "kid": "k"});
        let jws = Jws::parse(&body(&signed(&key, &both, b""))).unwrap();
        assert!(jws.header().jwk.is_some() && jws.header().kid.is_some());
        assert!(matches!(jws.key_reference(), Err(JwsError::Malformed(_))));
        assert!(matches!(
            jws.verify_with_embedded_jwk(),
            Err(JwsError::Malformed(_))
        ));
        let neither = json!({"alg": "EdDSA", "url": URL});
        let jws = Jws::parse(&body(&signed(&key, &neither, b""))).unwrap();
        assert!(matches!(jws.key_reference(), Err(JwsError::Malformed(_))));
        // Still verifiable with a key looked up some other way: the header says nothing.
        jws.verify(&key.jwk()).unwrap();
    }

    #[test]
    fn the_size_cap_comes_before_parsing() {
        let mut big = vec![b' '; MAX_JWS_BYTES + 1];
        assert_eq!(Jws::parse(&big).unwrap_err(), JwsError::TooLarge);
        big.truncate(MAX_JWS_BYTES);
        assert!(matches!(Jws::parse(&big), Err(JwsError::Malformed(_))));
        // A real request just under the cap parses.
        let key = TestKey::new(SignatureAlgorithm::Es256);
        let payload = format!(r#"{{"csr":"{}"}}"#, "A".repeat(47_000));
        let request = body(&signed(
            &key,
            &new_account_header(&key, "ES256"),
            payload.as_bytes(),
        ));
        assert!(request.len() <= MAX_JWS_BYTES);
        Jws::parse(&request)
            .unwrap()
            .verify_with_embedded_jwk()
            .unwrap();
    }

    #[test]
    fn require_url_compares_exactly() {
        let key = TestKey::new(SignatureAlgorithm::Es256);
        let jws = Jws::parse(&body(&signed(
            &key,
            &new_account_header(&key, "ES256"),
            b"{}",
        )))
        .unwrap();
        jws.header().require_url(URL).unwrap();
        for other in [
            "https://ca.example.net/acme/new-account/",
            "https://CA.example.net/acme/new-account",
            "http://ca.example.net/acme/new-account",
        ] {
            let error = jws.header().require_url(other).unwrap_err();
            assert_eq!(error.problem_type(), ProblemType::Unauthorized);
        }
    }

    fn jwk_error(value: Value) -> JwsError {
        Jwk::from_json_bytes(value.to_string().as_bytes()).unwrap_err()
    }

    #[test]
    fn private_members_are_refused_whatever_their_value() {
        let key = TestKey::new(SignatureAlgorithm::Es256);
        for member in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            let mut jwk = key.jwk_json();
            jwk[member] = if member == "d" {
                Value::Null
            } else {
                json!("AQAB")
            };
            let error = jwk_error(jwk);
            assert_eq!(error, JwsError::PrivateKeyMaterial, "{member}");
        }
        // In a request too, where it is refused before anything is verified.
        let mut jwk = key.jwk_json();
        jwk["d"] = json!(b64url(&[7; 32]));
        let header = json!({"alg": "ES256", "url": URL, "jwk": jwk});
        assert_eq!(
            Jws::parse(&body(&signed(&key, &header, b""))).unwrap_err(),
            JwsError::PrivateKeyMaterial
        );
    }

    #[test]
    fn ec_keys_must_be_whole_points_on_a_supported_curve() {
        let key = TestKey::new(SignatureAlgorithm::Es256);
        let good = key.jwk_json();
        let x = b64url_decode(good["x"].as_str().unwrap()).unwrap();

        let mut short = good.clone();
        short["x"] = json!(b64url(&x[1..]));
        assert!(matches!(jwk_error(short), JwsError::BadPublicKey(_)));

        let mut p384_label = good.clone();
        p384_label["crv"] = json!("P-384");
        assert!(matches!(jwk_error(p384_label), JwsError::BadPublicKey(_)));

        for crv in [json!("P-521"), json!("secp256k1"), Value::Null] {
            let mut other = good.clone();
            other["crv"] = crv;
            assert!(matches!(jwk_error(other), JwsError::BadPublicKey(_)));
        }

        let mut off_curve = good.clone();
        let mut y = b64url_decode(good["y"].as_str().unwrap()).unwrap();
        y[31] ^= 1;
        off_curve["y"] = json!(b64url(&y));
        assert_eq!(
            jwk_error(off_curve),
            JwsError::BadPublicKey("the EC point is not on the curve")
        );

        let mut with_rsa = good.clone();
        with_rsa["e"] = json!("AQAB");
        assert!(matches!(jwk_error(with_rsa), JwsError::BadPublicKey(_)));

        let repeated = format!(
            r#"{{"kty":"EC","crv":"P-256","x":{},"x":{},"y":{}}}"#,
            good["x"], good["x"], good["y"]
        );
        assert!(Jwk::from_json_bytes(repeated.as_bytes()).is_err());
    }

    #[test]
    fn rsa_keys_must_be_large_minimal_and_sane() {
        let key = TestKey::new(SignatureAlgorithm::Rs256);
        let good = key.jwk_json();
        let n = b64url_decode(good["n"].as_str().unwrap()).unwrap();
        assert_eq!(bit_len(&n), 2048);

        let mut small = good.clone();
        small["n"] = json!(b64url(&n[..128]));
        let error = jwk_error(small);
        assert_eq!(
            error,
            JwsError::BadPublicKey("the RSA modulus must have 2048 to 8192 bits")
        );
        assert_eq!(error.problem_type(), ProblemType::BadPublicKey);

        let mut one_bit_short = good.clone();
        let mut n2047 = n.clone();
        n2047[0] = 0x7f;
        one_bit_short["n"] = json!(b64url(&n2047));
        assert!(matches!(
            jwk_error(one_bit_short),
            JwsError::BadPublicKey(_)
        ));

        let mut padded = good.clone();
        padded["n"] = json!(b64url(&[&[0][..], &n].concat()));
        assert!(matches!(jwk_error(padded), JwsError::BadPublicKey(_)));

        for e in [&[1u8][..], &[0, 1, 0, 1], &[1, 0, 0], &[1, 0, 0, 0, 1], &[]] {
            let mut bad = good.clone();
            bad["e"] = json!(b64url(e));
            assert!(matches!(jwk_error(bad), JwsError::BadPublicKey(_)), "{e:?}");
        }
        let mut three = good.clone();
        three["e"] = json!(b64url(&[3]));
        Jwk::from_json_bytes(three.to_string().as_bytes()).unwrap();
    }

    #[test]
    fn okp_keys_must_be_ed25519_and_other_key_types_are_refused() {
        let key = TestKey::new(SignatureAlgorithm::EdDsa);
        let good = key.jwk_json();
        let mut ed448 = good.clone();
        ed448["crv"] = json!("Ed448");
        assert!(matches!(jwk_error(ed448), JwsError::BadPublicKey(_)));
        let mut x25519 = good.clone();
        x25519["crv"] = json!("X25519");
        assert!(matches!(jwk_error(x25519), JwsError::BadPublicKey(_)));
        let mut long = good.clone();
        long["x"] = json!(b64url(&[9; 33]));
        assert!(matches!(jwk_error(long), JwsError::BadPublicKey(_)));
        assert!(matches!(
            jwk_error(json!({"kty": "oct"})),
            JwsError::BadPublicKey(_)
        ));
        assert!(matches!(
            jwk_error(json!({"kty": "ec", "crv": "P-256"})),
            JwsError::BadPublicKey(_)
        ));
        assert!(matches!(
            jwk_error(json!({"crv": "Ed25519"})),
            JwsError::BadPublicKey(_)
        ));
        assert!(matches!(
            jwk_error(json!([good["kty"], good["crv"], good["x"]])),
            JwsError::BadPublicKey(_)
        ));
    }

    const EAB_URL: &str = URL;
    const EAB_KEY: [u8; 32] = [0x5a; 32];

    /// An external account binding made as certbot and lego make one.
    fn eab(
        alg: &str,
        kid: &str,
        url: &str,
        mac_key: &[u8],
        payload: &Value,
        extra: Option<(&str, Value)>,
    ) -> Value {
        let mut header = json!({"alg": alg, "kid": kid, "url": url});
        if let Some((name, value)) = extra {
            header[name] = value;
        }
        let protected = b64url(header.to_string().as_bytes());
        let payload = b64url(payload.to_string().as_bytes());
        let algorithm =
            MacAlgorithm::from_name(alg).map_or(hmac::HMAC_SHA256, MacAlgorithm::hmac_algorithm);
        let tag = hmac::sign(
            &hmac::Key::new(algorithm, mac_key),
            format!("{protected}.{payload}").as_bytes(),
        );
        json!({"protected": protected, "payload": payload, "signature": b64url(tag.as_ref())})
    }

    #[test]
    fn a_good_binding_names_its_kid_then_verifies() {
        let key = TestKey::new(SignatureAlgorithm::Es256);
        for alg in ["HS256", "HS384", "HS512"] {
            let binding = eab(alg, "kid-1", EAB_URL, &EAB_KEY, &key.jwk_json(), None);
            let parsed = ExternalAccountBinding::from_json(&binding).unwrap();
            assert_eq!(parsed.kid(), "kid-1");
            assert_eq!(parsed.algorithm().name(), alg);
            parsed.verify(&EAB_KEY, EAB_URL, &key.jwk()).unwrap();
        }
        // The outer request that carries it, end to end.
        let binding = eab("HS256", "kid-1", EAB_URL, &EAB_KEY, &key.jwk_json(), None);
        let payload = json!({"termsOfServiceAgreed": true, "externalAccountBinding": binding});
        let request = signed(
            &key,
            &new_account_header(&key, "ES256"),
            payload.to_string().as_bytes(),
        );
        let jws = Jws::parse(&body(&request)).unwrap();
        let jwk = jws.verify_with_embedded_jwk().unwrap();
        let payload: Value = serde_json::from_slice(jws.payload()).unwrap();
        let parsed = ExternalAccountBinding::from_json(&payload["externalAccountBinding"]).unwrap();
        parsed.verify(&EAB_KEY, &jws.header().url, jwk).unwrap();
    }

    #[test]
    fn a_binding_with_another_mac_key_url_or_account_key_is_refused() {
        let key = TestKey::new(SignatureAlgorithm::Es256);
        let other = TestKey::new(SignatureAlgorithm::EdDsa);
        let binding = eab("HS256", "kid-1", EAB_URL, &EAB_KEY, &key.jwk_json(), None);
        let parsed = ExternalAccountBinding::from_json(&binding).unwrap();
        let mut wrong_key = EAB_KEY;
        wrong_key[31] ^= 1;
        assert_eq!(
            parsed.verify(&wrong_key, EAB_URL, &key.jwk()),
            Err(JwsError::EabBadMac)
        );
        assert_eq!(
            parsed.verify(&EAB_KEY[..31], EAB_URL, &key.jwk()),
            Err(JwsError::EabBadMac)
        );
        assert_eq!(
            parsed.verify(
                &EAB_KEY,
                "https://ca.example.net/acme/new-order",
                &key.jwk()
            ),
            Err(JwsError::EabUrlMismatch)
        );
        let error = parsed.verify(&EAB_KEY, EAB_URL, &other.jwk()).unwrap_err();
        assert_eq!(error, JwsError::EabKeyMismatch);
        assert_eq!(error.problem_type(), ProblemType::Unauthorized);

        // A binding of another key, MACed correctly, for this account's request.
        let for_other = eab("HS256", "kid-1", EAB_URL, &EAB_KEY, &other.jwk_json(), None);
        let parsed = ExternalAccountBinding::from_json(&for_other).unwrap();
        assert_eq!(
            parsed.verify(&EAB_KEY, EAB_URL, &key.jwk()),
            Err(JwsError::EabKeyMismatch)
        );

        // The payload re-serialised by the client (member order, extra members) still binds.
        let mut reordered = key.jwk_json();
        reordered["kid"] = json!("client-side-name");
        let parsed = ExternalAccountBinding::from_json(&eab(
            "HS256", "kid-1", EAB_URL, &EAB_KEY, &reordered, None,
        ))
        .unwrap();
        parsed.verify(&EAB_KEY, EAB_URL, &key.jwk()).unwrap();

        // A tampered payload no longer carries the MAC.
        let mut tampered = binding.clone();
        tampered["payload"] = json!(b64url(other.jwk_json().to_string().as_bytes()));
        let parsed = ExternalAccountBinding::from_json(&tampered).unwrap();
        assert_eq!(
            parsed.verify(&EAB_KEY, EAB_URL, &other.jwk()),
            Err(JwsError::EabBadMac)
        );
    }

    #[test]
    fn malformed_bindings_are_refused_before_any_key_lookup() {
        let key = TestKey::new(SignatureAlgorithm::Es256);
        let jwk = key.jwk_json();
        let cases = [
            eab(
                "HS256",
                "kid-1",
                EAB_URL,
                &EAB_KEY,
                &jwk,
                Some(("nonce", json!("n"))),
            ),
            eab(
                "HS256",
                "kid-1",
                EAB_URL,
                &EAB_KEY,
                &jwk,
                Some(("jwk", jwk.clone())),
            ),
            eab("HS256", "", EAB_URL, &EAB_KEY, &jwk, None),
            eab(
                "HS256",
                "kid-1",
                EAB_URL,
                &EAB_KEY,
                &json!({"termsOfServiceAgreed": true}),
                None,
            ),
            eab(
                "HS256",
                "kid-1",
                EAB_URL,
                &EAB_KEY,
                &json!({"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"], "d": "AAAA"}),
                None,
            ),
            json!({"protected": "e30", "payload": "e30"}),
            json!("not a jws"),
        ];
        for binding in cases {
            let error = ExternalAccountBinding::from_json(&binding).unwrap_err();
            assert!(
                matches!(error, JwsError::EabMalformed(_)),
                "{binding}: {error:?}"
            );
            assert_eq!(error.problem_type(), ProblemType::Malformed);
        }
        for alg in ["RS256", "none", "ES256", "hs256"] {
            let binding = eab(alg, "kid-1", EAB_URL, &EAB_KEY, &jwk, None);
            assert_eq!(
                ExternalAccountBinding::from_json(&binding).unwrap_err(),
                JwsError::EabUnsupportedAlgorithm,
                "{alg}"
            );
        }
        let mut padded = eab("HS256", "kid-1", EAB_URL, &EAB_KEY, &jwk, None);
        padded["signature"] = json!(format!("{}=", padded["signature"].as_str().unwrap()));
        assert!(matches!(
            ExternalAccountBinding::from_json(&padded),
            Err(JwsError::EabMalformed(_))
        ));
    }
}
