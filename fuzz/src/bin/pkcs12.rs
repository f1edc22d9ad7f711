//! PKCS#12. KeyInfra only writes PKCS#12 (`POST /api/v1/certificates/{id}/pkcs12`); it never
//! reads one. So this target does two things, chosen by the first byte's lowest bit:
//!
//! * 0: the export with a fuzzed PIN, friendly name (any text: it is the certificate's CN),
//!   key algorithm, flavour and chain, then reads the file back with p12-keystore and checks
//!   that it holds our key and certificate under that name;
//! * 1: p12-keystore's reader on arbitrary bytes, as an import would use it.

use std::sync::OnceLock;

use keyinfra_pki::ca::{CaSigner, CaSpec};
use keyinfra_pki::names::DistinguishedName;
use keyinfra_pki::pkcs12::{Pin, Pkcs12Compat, build_pkcs12};
use keyinfra_pki::{KeyAlgorithm, PrivateKey, SerialNumber};
use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};

const ALGORITHMS: [KeyAlgorithm; 4] = [
    KeyAlgorithm::EcdsaP256,
    KeyAlgorithm::EcdsaP384,
    KeyAlgorithm::Ed25519,
    KeyAlgorithm::Rsa2048,
];

/// A key and a self-signed certificate for it, made once per algorithm and process.
fn material(index: usize) -> &'static CaSigner {
    static MADE: [OnceLock<CaSigner>; 4] = [const { OnceLock::new() }; 4];
    MADE[index].get_or_init(|| {
        let key = PrivateKey::generate(ALGORITHMS[index]).expect("key generation");
        let subject = DistinguishedName::parse("CN=Fuzz,O=KeyInfra").expect("subject");
        let serial = SerialNumber::from_bytes(&[1; 16]).expect("serial");
        let now = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let spec = CaSpec {
            subject: &subject,
            serial: &serial,
            not_before: now,
            not_after: now + time::Duration::days(30),
            path_len: Some(0),
            name_constraints: None,
        };
        CaSigner::create_root(key, &spec).expect("certificate")
    })
}

fn round_trip(data: &[u8]) {
    let [choice, text @ ..] = data else {
        return;
    };
    let index = usize::from(choice & 3);
    let compat = if choice & 4 == 0 {
        Pkcs12Compat::Modern
    } else {
        Pkcs12Compat::Legacy
    };
    let with_chain = choice & 8 != 0;
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let (pin_text, friendly_name) = text.split_once('\n').unwrap_or((text, "device"));
    let Ok(pin) = Pin::new(pin_text.to_owned(), compat) else {
        return;
    };
    let signer = material(index);
    let leaf = signer.certificate_der();
    let issuer = material((index + 1) % ALGORITHMS.len()).certificate_der();
    let chain: &[&[u8]] = if with_chain { &[issuer] } else { &[] };
    let p12 = build_pkcs12(signer.key(), leaf, chain, friendly_name, &pin, compat)
        .expect("build_pkcs12 refused a valid PIN and name");
    let store = KeyStore::from_pkcs12(&p12, pin_text, Pkcs12ImportPolicy::Relaxed)
        .expect("our own PKCS#12 does not read back");
    // build_pkcs12 stores characters outside the BMP (which a BMPString cannot hold) as U+FFFD.
    let alias: String = friendly_name
        .chars()
        .map(|c| {
            if u32::from(c) <= 0xFFFF {
                c
            } else {
                '\u{FFFD}'
            }
        })
        .collect();
    let Some(KeyStoreEntry::PrivateKeyChain(entry)) = store.entry(&alias) else {
        panic!("no key under the friendly name {alias:?}");
    };
    let key = PrivateKey::from_pkcs8(entry.key().as_der()).expect("the key does not parse");
    assert_eq!(key.public_key_der(), signer.key().public_key_der());
    assert_eq!(entry.certs().first().map(|c| c.as_der()), Some(leaf));
}

fn main() {
    afl::fuzz!(|data: &[u8]| {
        match data.split_first() {
            Some((mode, rest)) if mode & 1 == 0 => round_trip(rest),
            Some((_, rest)) => {
                let _ = KeyStore::from_pkcs12(rest, "fuzzing-pin", Pkcs12ImportPolicy::Strict);
            }
            None => {}
        }
    });
}
