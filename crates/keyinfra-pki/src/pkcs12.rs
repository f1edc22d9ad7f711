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

/// The flavour of a PKCS#12 file; its label (`modern`, `legacy`) is what the API, the UI's
/// form, the CLI's `--compat` and the audit log say, parsed only by its [`FromStr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pkcs12Compat {
    #[default]
    Modern,
    Legacy,
}

impl Pkcs12Compat {
    pub const ALL: [Pkcs12Compat; 2] = [Pkcs12Compat::Modern, Pkcs12Compat::Legacy];

    /// The shortest PIN a file of this kind may have.
    pub fn min_pin_chars(self) -> usize {
        match self {
            Pkcs12Compat::Modern => PIN_MIN_CHARS,
            Pkcs12Compat::Legacy => LEGACY_PIN_MIN_CHARS,
        }
    }

    /// PBKDF2 (modern) or PKCS#12 KDF (legacy) iterations, for the encryption and the MAC
    /// alike: an attacker tries PINs against whichever is cheaper.
    pub fn iterations(self) -> u32 {
        match self {
            Pkcs12Compat::Modern => MODERN_ITERATIONS,
            Pkcs12Compat::Legacy => LEGACY_ITERATIONS,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Pkcs12Compat::Modern => "modern",
            Pkcs12Compat::Legacy => "legacy",
        }
    }
}

impl std::str::FromStr for Pkcs12Compat {
    type Err = UnknownPkcs12Compat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.label() == s)
            .ok_or(UnknownPkcs12Compat)
    }
}

/// A label that is not one of [`Pkcs12Compat::ALL`]'s; its text is the one message every
/// channel gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("compat must be \"modern\" or \"legacy\"")]
pub struct UnknownPkcs12Compat;

/// The shortest PIN for a modern file. Against a stolen file the PIN's length counts for
/// more than the iteration count: each character more multiplies the search by the
/// alphabet, 100,000 iterations only by 10 over 10,000.
pub const PIN_MIN_CHARS: usize = 8;
/// The shortest PIN for a legacy file: six is what old devices' keypads commonly accept.
pub const LEGACY_PIN_MIN_CHARS: usize = 6;
/// 128 keeps the KDF input bounded.
pub const PIN_MAX_CHARS: usize = 128;

/// PBKDF2-HMAC-SHA256 iterations of a modern file (encryption and MAC). Chosen from the
/// export and import times in docs/benchmarks.md ("PKCS#12 iterations"): OpenSSL 3 writes
/// 2,048, OWASP's password-storage figure is 600,000.
pub const MODERN_ITERATIONS: u32 = 200_000;
/// Iterations of a legacy file: 10,000, as before. Old firmware imports slowly and some
/// times out on more; the legacy format is weak anyway (3DES, SHA-1, 6-character PINs).
pub const LEGACY_ITERATIONS: u32 = 10_000;

/// A PKCS#12 PIN: checked length, no control characters, only characters of Unicode's Basic
/// Multilingual Plane (PKCS#12 turns passwords into a BMPString, RFC 7292 appendix B.1, so
/// an emoji cannot be encoded), wiped on drop, never shown.
pub struct Pin(Zeroizing<String>);

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(..)")
    }
}

impl Pin {
    /// A PIN for a file of kind `compat` (whose shortest PIN it must meet).
    pub fn new(pin: String, compat: Pkcs12Compat) -> Result<Self, PkiError> {
        let pin = Self(Zeroizing::new(pin));
        pin.allows(compat)?;
        Ok(pin)
    }

    /// Whether this PIN may protect a file of kind `compat`.
    pub fn allows(&self, compat: Pkcs12Compat) -> Result<(), PkiError> {
        let min = compat.min_pin_chars();
        let count = self.0.chars().count();
        if !(min..=PIN_MAX_CHARS).contains(&count)
            || self.0.chars().any(|c| c.is_control() || !in_bmp(c))
        {
            return Err(PkiError::InvalidPin { min });
        }
        Ok(())
    }
}

/// Builds a .p12 holding `key`, its certificate and the CA chain (issuer first, root last),
/// under `friendly_name`. The PIN must meet `compat`'s rules (checked again here).
pub fn build_pkcs12(
    key: &PrivateKey,
    leaf_der: &[u8],
    chain_der: &[&[u8]],
    friendly_name: &str,
    pin: &Pin,
    compat: Pkcs12Compat,
) -> Result<Vec<u8>, PkiError> {
    pin.allows(compat)?;
    write_pkcs12(
        key,
        leaf_der,
        chain_der,
        friendly_name,
        pin,
        compat,
        compat.iterations(),
    )
}

/// [`build_pkcs12`] with another iteration count: only for `examples/pkcs12-bench.rs`, which
/// measures what the count costs. KeyInfra itself never writes other counts.
#[doc(hidden)]
pub fn build_pkcs12_for_benchmark(
    key: &PrivateKey,
    leaf_der: &[u8],
    pin: &Pin,
    compat: Pkcs12Compat,
    iterations: u32,
) -> Result<Vec<u8>, PkiError> {
    write_pkcs12(key, leaf_der, &[], "bench", pin, compat, iterations)
}

/// Whether a BMPString can hold `c` (one UTF-16 unit).
fn in_bmp(c: char) -> bool {
    u32::from(c) <= 0xFFFF
}

/// The friendly name (a BMPString in the file) with every character outside the Basic
/// Multilingual Plane replaced by U+FFFD: it is the certificate's CN, which may hold an
/// emoji, and a label must not make the export fail.
fn bmp_friendly_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if in_bmp(c) {
                c
            } else {
                char::REPLACEMENT_CHARACTER
            }
        })
        .collect()
}

fn write_pkcs12(
    key: &PrivateKey,
    leaf_der: &[u8],
    chain_der: &[&[u8]],
    friendly_name: &str,
    pin: &Pin,
    compat: Pkcs12Compat,
    iterations: u32,
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
    store.add_entry(
        &bmp_friendly_name(friendly_name),
        KeyStoreEntry::PrivateKeyChain(chain),
    );
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
        .encryption_iterations(iterations)
        .mac_algorithm(mac)
        .mac_iterations(iterations)
        .write()
        .map_err(|_| PkiError::Pkcs12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_policy() {
        use Pkcs12Compat::{Legacy, Modern};
        // Modern: 8 to 128 characters; legacy (old firmware): 6 to 128.
        assert!(Pin::new("1234567".into(), Modern).is_err());
        assert!(Pin::new("123456".into(), Modern).is_err());
        assert!(Pin::new("12345678".into(), Modern).is_ok());
        assert!(Pin::new("12345".into(), Legacy).is_err());
        assert!(Pin::new("123456".into(), Legacy).is_ok());
        for compat in [Modern, Legacy] {
            assert!(Pin::new("x".repeat(128), compat).is_ok());
            assert!(Pin::new("x".repeat(129), compat).is_err());
            assert!(Pin::new("1234\n5678".into(), compat).is_err());
            // PKCS#12 passwords are BMPStrings: accented letters and the euro sign fit, an
            // emoji does not (it made the export fail: found by the pkcs12 fuzz target).
            assert!(Pin::new("pï-€€€-pin".into(), compat).is_ok());
            assert!(Pin::new("pin-\u{1F4E1}-123".into(), compat).is_err());
        }
        assert_eq!(
            Pin::new("123456".into(), Modern).unwrap_err().to_string(),
            "the PIN must have 8 to 128 characters, no control characters and no emoji (characters outside the Basic Multilingual Plane)"
        );
        assert_eq!(
            format!("{:?}", Pin::new("secret-pin".into(), Modern).unwrap()),
            "Pin(..)"
        );
    }

    /// The fuzz target's first finding (fuzz/regressions/pkcs12/emoji-friendly-name): a
    /// friendly name, which is the certificate's CN, with a character outside the BMP made
    /// build_pkcs12 fail. Now it is stored with U+FFFD in its place.
    #[test]
    fn friendly_names_outside_the_bmp_export() {
        use crate::ca::{CaSigner, CaSpec};
        use crate::names::DistinguishedName;
        use crate::{KeyAlgorithm, SerialNumber};
        use p12_keystore::Pkcs12ImportPolicy;

        let subject = DistinguishedName::parse("CN=r\u{f6}uter \u{1F4E1}").unwrap();
        let serial = SerialNumber::from_bytes(&[1; 16]).unwrap();
        let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let spec = CaSpec {
            subject: &subject,
            serial: &serial,
            not_before: now,
            not_after: now + time::Duration::days(30),
            path_len: Some(0),
            name_constraints: None,
        };
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP384).unwrap();
        let ca = CaSigner::create_root(key, &spec).unwrap();
        for compat in [Pkcs12Compat::Modern, Pkcs12Compat::Legacy] {
            let p12 = build_pkcs12(
                ca.key(),
                ca.certificate_der(),
                &[ca.certificate_der()],
                "r\u{f6}uter \u{1F4E1}",
                &Pin::new("pï-€€€-pin".into(), compat).unwrap(),
                compat,
            )
            .unwrap();
            let store =
                KeyStore::from_pkcs12(&p12, "pï-€€€-pin", Pkcs12ImportPolicy::Relaxed).unwrap();
            assert!(store.entry("r\u{f6}uter \u{FFFD}").is_some(), "{compat:?}");
        }
    }

    /// A PIN checked for a legacy file does not make a modern one.
    #[test]
    fn a_modern_file_refuses_a_short_pin_even_when_it_passed_as_legacy() {
        let key = PrivateKey::generate(crate::KeyAlgorithm::EcdsaP256).unwrap();
        let pin = Pin::new("123456".into(), Pkcs12Compat::Legacy).unwrap();
        let err = build_pkcs12(&key, b"", &[], "x", &pin, Pkcs12Compat::Modern).unwrap_err();
        assert!(matches!(err, PkiError::InvalidPin { min: 8 }), "{err:?}");
    }

    #[test]
    fn modern_iterations_are_at_least_100000() {
        const { assert!(MODERN_ITERATIONS >= 100_000) };
        assert_eq!(Pkcs12Compat::Modern.iterations(), MODERN_ITERATIONS);
    }

    #[test]
    fn compat_labels_parse_exactly_and_modern_is_the_default() {
        for compat in Pkcs12Compat::ALL {
            assert_eq!(compat.label().parse(), Ok(compat));
        }
        assert_eq!(Pkcs12Compat::default(), Pkcs12Compat::Modern);
        for bad in ["", "Modern", "LEGACY", "pbes2", " legacy"] {
            let err = bad.parse::<Pkcs12Compat>().unwrap_err();
            assert_eq!(
                err.to_string(),
                "compat must be \"modern\" or \"legacy\"",
                "{bad:?}"
            );
        }
    }
}
