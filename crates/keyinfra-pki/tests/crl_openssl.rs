//! CRLs against the real `openssl` (OpenSSL 3): full and delta CRLs from the streaming
//! writer verify under every CA key type, say what they should in `openssl crl -text`, and
//! `openssl verify -crl_check -use_deltas` treats a certificate on the delta as revoked.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use keyinfra_pki::ca::{CaSigner, CaSpec, LeafKey, LeafSpec, RevokedEntry, read_crl};
use keyinfra_pki::crl::{CrlHeader, CrlKind, encode_entry, entry_len};
use keyinfra_pki::names::DistinguishedName;
use keyinfra_pki::profile::builtin_profiles;
use keyinfra_pki::{
    KeyAlgorithm, PrivateKey, RevocationReason, SerialNumber, certificate_pem, crl_pem,
};
use time::{Duration, OffsetDateTime};

/// openssl checks thisUpdate and nextUpdate against its own clock.
#[allow(clippy::disallowed_methods)]
fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn root(algorithm: KeyAlgorithm) -> CaSigner {
    let subject = DistinguishedName::parse("CN=CRL Test Root,O=KeyInfra").unwrap();
    CaSigner::create_root(
        PrivateKey::generate(algorithm).unwrap(),
        &CaSpec {
            subject: &subject,
            serial: &SerialNumber::from_hex("01").unwrap(),
            not_before: now() - Duration::hours(1),
            not_after: now() + Duration::days(30),
            path_len: None,
            name_constraints: None,
        },
    )
    .unwrap()
}

fn leaf(ca: &CaSigner, serial: &SerialNumber, delta_url: Option<&str>) -> Vec<u8> {
    let profiles = builtin_profiles(None);
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let subject = DistinguishedName::parse("CN=device-1").unwrap();
    ca.sign_leaf(&LeafSpec {
        subject: &subject,
        sans: &[],
        profile: &profiles[0],
        key_algorithm: KeyAlgorithm::EcdsaP256,
        public_key: LeafKey::Generated(&key),
        serial,
        not_before: now() - Duration::minutes(5),
        not_after: now() + Duration::days(10),
        crl_url: "http://ca.example/crl/1.crl",
        ca_issuers_url: "http://ca.example/ca/1.crt",
        ocsp_url: None,
        delta_crl_url: delta_url,
    })
    .unwrap()
}

fn entry(serial: &SerialNumber, reason: RevocationReason) -> RevokedEntry {
    RevokedEntry {
        serial: serial.clone(),
        revoked_at: now() - Duration::minutes(1),
        reason,
        invalidity_date: None,
    }
}

fn header(number: u64, kind: CrlKind<'_>) -> CrlHeader<'_> {
    CrlHeader {
        number,
        this_update: now() - Duration::minutes(1),
        next_update: now() + Duration::days(1),
        kind,
    }
}

fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn full_crls_verify_under_every_ca_key_type_with_many_entries() {
    for algorithm in KeyAlgorithm::ALL {
        let ca = root(algorithm);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ca.pem"),
            certificate_pem(ca.certificate_der()),
        )
        .unwrap();
        // Enough entries that the list's length needs three length octets (> 65,535 bytes),
        // with both serial shapes and every reason (unspecified writes no reasonCode).
        let mut entries = Vec::new();
        for n in 0u32..2_000 {
            let mut bytes = n.to_be_bytes().to_vec();
            bytes.insert(0, if n % 2 == 0 { 0x80 } else { 0x11 });
            let mut e = entry(
                &SerialNumber::from_bytes(&bytes).unwrap(),
                RevocationReason::ALL[n as usize % RevocationReason::ALL.len()],
            );
            if n % 7 == 0 {
                e.invalidity_date = Some(e.revoked_at - Duration::hours(2));
            }
            entries.push(e);
        }
        assert!(entries.iter().map(entry_len).sum::<usize>() > 65_535);
        let der = ca
            .sign_crl(
                &header(
                    42,
                    CrlKind::Full {
                        delta_url: Some("http://ca.example/crl/1/delta.crl"),
                    },
                ),
                &entries,
            )
            .unwrap();
        std::fs::write(dir.path().join("full.crl"), &der).unwrap();
        let (ok, text) = openssl(
            dir.path(),
            &[
                "crl", "-in", "full.crl", "-inform", "DER", "-CAfile", "ca.pem", "-noout",
                "-verify",
            ],
        );
        assert!(ok && text.contains("verify OK"), "{algorithm}: {text}");
        let (ok, text) = openssl(
            dir.path(),
            &[
                "crl", "-in", "full.crl", "-inform", "DER", "-noout", "-text",
            ],
        );
        assert!(ok, "{text}");
        assert!(text.contains("X509v3 Freshest CRL"), "{text}");
        assert!(
            text.contains("URI:http://ca.example/crl/1/delta.crl"),
            "{text}"
        );
        assert!(
            text.contains("X509v3 CRL Number: \n                42"),
            "{text}"
        );
        assert!(!text.contains("Delta CRL Indicator"), "{text}");
        assert!(text.contains("Key Compromise"), "{text}");
        assert!(text.contains("Invalidity Date"), "{text}");
        let info = read_crl(&der).unwrap();
        assert_eq!(info.entries.len(), 2_000);
        assert_eq!(info.number, Some(42));
        assert_eq!(info.delta_base, None);
        // Unspecified is written as no reasonCode at all (RFC 5280 5.3.1).
        assert_eq!(info.entries[0].reason_code, None);
        assert_eq!(
            info.entries[1].reason(),
            Some(RevocationReason::KeyCompromise)
        );
        assert_eq!(info.entries[0].serial, entries[0].serial);
        // A tampered byte breaks the signature.
        let mut bad = der.clone();
        let middle = bad.len() / 2;
        bad[middle] ^= 1;
        std::fs::write(dir.path().join("bad.crl"), &bad).unwrap();
        let (_, text) = openssl(
            dir.path(),
            &[
                "crl", "-in", "bad.crl", "-inform", "DER", "-CAfile", "ca.pem", "-noout", "-verify",
            ],
        );
        assert!(!text.contains("verify OK"), "{algorithm}: {text}");
    }
}

#[test]
fn an_empty_crl_has_no_revoked_list() {
    let ca = root(KeyAlgorithm::EcdsaP256);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ca.pem"),
        certificate_pem(ca.certificate_der()),
    )
    .unwrap();
    let der = ca
        .sign_crl(&header(1, CrlKind::Full { delta_url: None }), &[])
        .unwrap();
    std::fs::write(dir.path().join("empty.pem"), crl_pem(&der)).unwrap();
    let (ok, text) = openssl(
        dir.path(),
        &[
            "crl",
            "-in",
            "empty.pem",
            "-CAfile",
            "ca.pem",
            "-text",
            "-verify",
        ],
    );
    assert!(ok && text.contains("verify OK"), "{text}");
    assert!(text.contains("No Revoked Certificates."), "{text}");
    assert!(!text.contains("Freshest CRL"), "{text}");
    assert!(read_crl(&der).unwrap().entries.is_empty());
}

#[test]
fn openssl_uses_the_delta_crl_to_find_a_later_revocation() {
    let ca = root(KeyAlgorithm::EcdsaP384);
    let dir = tempfile::tempdir().unwrap();
    let delta_url = "http://ca.example/crl/1/delta.crl";
    let early = SerialNumber::from_hex("0A01").unwrap();
    let late = SerialNumber::from_hex("0A02").unwrap();
    let untouched = SerialNumber::from_hex("0A03").unwrap();
    for (name, serial) in [
        ("early", &early),
        ("late", &late),
        ("untouched", &untouched),
    ] {
        let der = leaf(&ca, serial, Some(delta_url));
        std::fs::write(
            dir.path().join(format!("{name}.pem")),
            certificate_pem(&der),
        )
        .unwrap();
    }
    std::fs::write(
        dir.path().join("ca.pem"),
        certificate_pem(ca.certificate_der()),
    )
    .unwrap();
    // The base (number 7) lists `early`; the delta (number 8, base 7) lists `late`.
    let base = ca
        .sign_crl(
            &header(
                7,
                CrlKind::Full {
                    delta_url: Some(delta_url),
                },
            ),
            &[entry(&early, RevocationReason::KeyCompromise)],
        )
        .unwrap();
    let delta = ca
        .sign_crl(
            &header(8, CrlKind::Delta { base: 7 }),
            &[entry(&late, RevocationReason::Superseded)],
        )
        .unwrap();
    std::fs::write(dir.path().join("base.pem"), crl_pem(&base)).unwrap();
    std::fs::write(dir.path().join("delta.pem"), crl_pem(&delta)).unwrap();
    let info = read_crl(&delta).unwrap();
    assert_eq!((info.number, info.delta_base), (Some(8), Some(7)));
    let (ok, text) = openssl(
        dir.path(),
        &[
            "crl",
            "-in",
            "delta.pem",
            "-CAfile",
            "ca.pem",
            "-noout",
            "-text",
            "-verify",
        ],
    );
    assert!(ok && text.contains("verify OK"), "{text}");
    assert!(
        text.contains("X509v3 Delta CRL Indicator: critical"),
        "{text}"
    );

    // The leaf names its delta CRL.
    let (_, text) = openssl(dir.path(), &["x509", "-in", "late.pem", "-noout", "-text"]);
    assert!(text.contains("X509v3 Freshest CRL"), "{text}");
    assert!(text.contains(&format!("URI:{delta_url}")), "{text}");

    let verify = |name: &str, deltas: bool| {
        let mut args = vec![
            "verify",
            "-crl_check",
            "-CAfile",
            "ca.pem",
            "-CRLfile",
            "base.pem",
        ];
        if deltas {
            args.extend(["-use_deltas", "-CRLfile", "delta.pem"]);
        }
        let file = format!("{name}.pem");
        args.push(&file);
        openssl(dir.path(), &args)
    };
    let (ok, text) = verify("late", true);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let (ok, text) = verify("early", true);
    assert!(!ok && text.contains("certificate revoked"), "{text}");
    let (ok, text) = verify("untouched", true);
    assert!(ok && text.contains(": OK"), "{text}");
    // Without the delta, the base alone does not know about `late`: the delta is what
    // made the difference above.
    let (ok, text) = verify("late", false);
    assert!(ok && text.contains(": OK"), "{text}");
}

/// The server's order: entries encoded (and staged) first, counted, then the TBS's start
/// written and the encoded entries hashed after it in parts. The result is a CRL that
/// OpenSSL verifies, for a hashing key (P-256) and one that signs the whole TBS (Ed25519).
#[test]
fn entries_encoded_before_the_header_are_hashed_into_a_valid_crl() {
    for algorithm in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519] {
        let ca = root(algorithm);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("ca.pem"),
            certificate_pem(ca.certificate_der()),
        )
        .unwrap();
        let mut encoded = Vec::new();
        for n in 1u32..=500 {
            let serial = SerialNumber::from_bytes(&n.to_be_bytes()).unwrap();
            encode_entry(&entry(&serial, RevocationReason::Superseded), &mut encoded);
        }
        let h = header(7, CrlKind::Full { delta_url: None });
        let (mut writer, mut der) = ca.crl_writer(&h, encoded.len()).unwrap();
        for part in encoded.chunks(999) {
            writer.hash_encoded_entries(part).unwrap();
        }
        let ends = writer.finish().unwrap();
        der.extend_from_slice(&encoded);
        der.extend_from_slice(&ends.tail);
        der.splice(0..0, ends.head);
        std::fs::write(dir.path().join("parts.crl"), &der).unwrap();
        let (ok, text) = openssl(
            dir.path(),
            &[
                "crl",
                "-in",
                "parts.crl",
                "-inform",
                "DER",
                "-CAfile",
                "ca.pem",
                "-noout",
                "-verify",
            ],
        );
        assert!(ok && text.contains("verify OK"), "{algorithm}: {text}");
        assert_eq!(read_crl(&der).unwrap().entries.len(), 500);
    }
}

#[test]
fn a_miscounted_stream_is_refused() {
    let ca = root(KeyAlgorithm::EcdsaP256);
    let one = entry(
        &SerialNumber::from_hex("01").unwrap(),
        RevocationReason::KeyCompromise,
    );
    let h = header(1, CrlKind::Full { delta_url: None });
    // Fewer bytes counted than written.
    let (mut writer, mut out) = ca.crl_writer(&h, entry_len(&one) - 1).unwrap();
    assert!(writer.entry(&one, &mut out).is_err());
    // More bytes counted than written.
    let (mut writer, mut out) = ca.crl_writer(&h, entry_len(&one) * 2).unwrap();
    writer.entry(&one, &mut out).unwrap();
    assert!(writer.finish().is_err());
    // Pre-encoded entries are checked against the count the same way.
    let mut encoded = Vec::new();
    encode_entry(&one, &mut encoded);
    let (mut writer, _) = ca.crl_writer(&h, encoded.len() - 1).unwrap();
    assert!(writer.hash_encoded_entries(&encoded).is_err());
    // nextUpdate before thisUpdate.
    let mut backwards = h;
    backwards.next_update = backwards.this_update - Duration::seconds(1);
    assert!(ca.crl_writer(&backwards, 0).is_err());
}
