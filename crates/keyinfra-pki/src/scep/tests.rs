//! Round trips between the client side and the server side of this module. The real
//! clients (scepclient, strongSwan, certmonger) judge the server in the integration tests;
//! these pin the refusals and the cipher rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use super::client::{self, Request};
use super::envelope::{self, EnvelopeError};
use super::reply::{self, Delivery, Outcome};
use super::*;
use crate::ca::{CaSigner, LeafKey};
use crate::{KeyAlgorithm, PkiError, PrivateKey, RandomSource};

struct OsRng;
impl RandomSource for OsRng {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), PkiError> {
        aws_lc_rs::rand::fill(dest).map_err(|_| PkiError::RandomSourceFailed)
    }
}

struct Fixture {
    ca: CaSigner,
    ra: RaKey,
    other_ra: RaKey,
    device: RaKey,
    device_key: PrivateKey,
}

/// RSA key generation is slow: one set of keys for every test.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let ca = crate::ca::test_root("CN=Test Root,O=Example");
        let ra_for = |ca: &CaSigner| {
            let key = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
            let der = ca
                .issue_scep_ra(
                    &RaCertSpec {
                        public_key: LeafKey::Generated(&key),
                        not_before: ca.not_before(),
                        not_after: ca.not_after(),
                    },
                    &mut OsRng,
                )
                .unwrap();
            RaKey::new(der, &key).unwrap()
        };
        let ra = ra_for(&ca);
        let other_ra = ra_for(&crate::ca::test_root("CN=Other Root"));
        let device_key = PrivateKey::generate(KeyAlgorithm::Rsa2048).unwrap();
        let device = RaKey::new(
            client::self_signed(&device_key, "router-1").unwrap(),
            &device_key,
        )
        .unwrap();
        Fixture {
            ca,
            ra,
            other_ra,
            device,
            device_key,
        }
    })
}

fn request(cipher: ContentCipher, digest: DigestAlgorithm, recipient: &RaKey) -> Vec<u8> {
    let f = fixture();
    let csr = client::csr(&f.device_key, "router-1", Some("s3cret-challenge")).unwrap();
    client::pki_message(
        &Request {
            message_type: MessageType::PkcsReq,
            content: &csr,
            signer: &f.device,
            recipient: recipient.certificate_der(),
            cipher,
            digest,
            transaction_id: "4A1B",
            sender_nonce: &[7u8; 16],
        },
        &mut OsRng,
    )
    .unwrap()
}

#[test]
fn a_pkcsreq_opens_and_its_certrep_reads_back_in_the_requests_cipher() {
    let f = fixture();
    for (cipher, replied) in [
        (ContentCipher::DesCbc, ContentCipher::DesEde3Cbc),
        (ContentCipher::DesEde3Cbc, ContentCipher::DesEde3Cbc),
        (ContentCipher::Aes128Cbc, ContentCipher::Aes128Cbc),
        (ContentCipher::Aes256Cbc, ContentCipher::Aes256Cbc),
    ] {
        for digest in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha512] {
            let der = request(cipher, digest, &f.ra);
            let message = PkiMessage::parse(&der, ScepLimits::default()).unwrap();
            assert_eq!(message.message_type, MessageType::PkcsReq);
            assert_eq!(message.reply_to.transaction_id, "4A1B");
            assert_eq!(message.reply_to.sender_nonce, [7u8; 16]);
            assert_eq!(message.reply_to.digest, digest);
            assert_eq!(message.signer_certificate, f.device.certificate_der());
            let opened = envelope::open(message.envelope.as_deref().unwrap(), &f.ra).unwrap();
            assert_eq!(opened.cipher, cipher);
            let csr = crate::csr::parse_csr(&opened.content).unwrap();
            assert_eq!(
                csr.challenge_password.as_deref().map(String::as_str),
                Some("s3cret-challenge")
            );
            // The certificate the CA would issue: here, any certificate will do.
            let issued = f.ca.certificate_der();
            let rep = reply::cert_rep(
                &f.ra,
                &message.reply_to,
                Outcome::Success {
                    delivery: Delivery::Certificate(issued),
                    recipient: &message.signer_certificate,
                    cipher: opened.cipher,
                },
                time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000),
                &mut OsRng,
            )
            .unwrap();
            let read = client::read_reply(&rep, &f.device).unwrap();
            let status = read.message.cert_rep.as_ref().unwrap();
            assert_eq!(status.pki_status, "0");
            assert_eq!(status.recipient_nonce, [7u8; 16]);
            assert_eq!(read.message.reply_to.transaction_id, "4A1B");
            assert_eq!(read.message.reply_to.digest, digest);
            assert_eq!(read.message.signer_certificate, f.ra.certificate_der());
            assert_eq!(read.cipher, Some(replied));
            assert_eq!(read.certificates, vec![issued.to_vec()]);
        }
    }
}

#[test]
fn failure_and_pending_replies_carry_their_status_and_no_content() {
    let f = fixture();
    let message = PkiMessage::parse(
        &request(ContentCipher::Aes128Cbc, DigestAlgorithm::Sha256, &f.ra),
        ScepLimits::default(),
    )
    .unwrap();
    let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    let failure = reply::cert_rep(
        &f.ra,
        &message.reply_to,
        Outcome::Failure(FailInfo::BadRequest),
        now,
        &mut OsRng,
    )
    .unwrap();
    let read = client::read_reply(&failure, &f.device).unwrap();
    let status = read.message.cert_rep.unwrap();
    assert_eq!(status.pki_status, "2");
    assert_eq!(status.fail_info.as_deref(), Some("2"));
    assert!(read.message.envelope.is_none());
    let pending =
        reply::cert_rep(&f.ra, &message.reply_to, Outcome::Pending, now, &mut OsRng).unwrap();
    let status = client::read_reply(&pending, &f.device)
        .unwrap()
        .message
        .cert_rep
        .unwrap();
    assert_eq!((status.pki_status.as_str(), status.fail_info), ("3", None));
}

#[test]
fn an_envelope_for_another_ra_is_refused() {
    let f = fixture();
    let der = request(
        ContentCipher::Aes128Cbc,
        DigestAlgorithm::Sha256,
        &f.other_ra,
    );
    let message = PkiMessage::parse(&der, ScepLimits::default()).unwrap();
    assert_eq!(
        envelope::open(message.envelope.as_deref().unwrap(), &f.ra).unwrap_err(),
        EnvelopeError::WrongRecipient
    );
}

/// Flips one bit inside the first occurrence of `needle` in `der`.
fn flip_in(der: &[u8], needle: &[u8], offset: usize) -> Vec<u8> {
    let at = der
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("needle present");
    let mut bad = der.to_vec();
    bad[at + offset] ^= 0x01;
    bad
}

#[test]
fn tampering_is_refused_with_the_failinfo_a_reply_needs() {
    let f = fixture();
    let der = request(ContentCipher::Aes128Cbc, DigestAlgorithm::Sha256, &f.ra);
    let message = PkiMessage::parse(&der, ScepLimits::default()).unwrap();
    let envelope = message.envelope.unwrap();
    // A changed byte of the envelope: the messageDigest no longer matches.
    let bad = flip_in(&der, &envelope[envelope.len() - 20..], 3);
    match PkiMessage::parse(&bad, ScepLimits::default()) {
        Err(ScepError::Refused {
            fail_info,
            reply_to,
            ..
        }) => {
            assert_eq!(fail_info, FailInfo::BadMessageCheck);
            assert_eq!(reply_to.transaction_id, "4A1B");
        }
        other => panic!("{other:?}"),
    }
    // A changed transactionID (a signed attribute): the signature no longer verifies.
    let bad = flip_in(&der, b"4A1B", 0);
    match PkiMessage::parse(&bad, ScepLimits::default()) {
        Err(ScepError::Refused { fail_info, .. }) => {
            assert_eq!(fail_info, FailInfo::BadMessageCheck)
        }
        other => panic!("{other:?}"),
    }
    // Garbage and truncations are unreadable, never a panic.
    for cut in [0, 1, 10, der.len() / 2, der.len() - 1] {
        assert!(matches!(
            PkiMessage::parse(&der[..cut], ScepLimits::default()),
            Err(ScepError::Unreadable(_))
        ));
    }
    assert!(matches!(
        PkiMessage::parse(&der, ScepLimits { max_bytes: 100 }),
        Err(ScepError::Unreadable(_))
    ));
}

#[test]
fn the_ra_certificate_is_rsa_with_the_usages_a_client_checks() {
    let f = fixture();
    let (_, cert) = x509_parser::parse_x509_certificate(f.ra.certificate_der()).unwrap();
    assert_eq!(
        cert.subject().to_string(),
        // x509-parser prints in encoding order, the reverse of RFC 4514's.
        "O=Example, CN=Test Root SCEP RA"
    );
    let usage = cert.key_usage().unwrap().unwrap();
    assert!(usage.critical);
    assert!(usage.value.digital_signature() && usage.value.key_encipherment());
    assert!(!cert.is_ca());
    // An RA key must be RSA: clients encrypt to it.
    let ec = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    assert_eq!(
        f.ca.issue_scep_ra(
            &RaCertSpec {
                public_key: LeafKey::Generated(&ec),
                not_before: f.ca.not_before(),
                not_after: f.ca.not_after(),
            },
            &mut OsRng,
        ),
        Err(PkiError::UnsupportedKeyAlgorithm)
    );
}

#[test]
fn getcacert_is_a_degenerate_signeddata_of_the_ra_and_the_ca() {
    let f = fixture();
    let der = certs_only(&[f.ra.certificate_der(), f.ca.certificate_der()]).unwrap();
    let (certificates, crls) = client::read_degenerate(&der).unwrap();
    assert_eq!(certificates.len(), 2);
    assert!(certificates.contains(&f.ra.certificate_der().to_vec()));
    assert!(certificates.contains(&f.ca.certificate_der().to_vec()));
    assert!(crls.is_empty());
}
