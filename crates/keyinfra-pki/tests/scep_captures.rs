//! PKCSReq messages captured from the three real SCEP clients in Debian (scepclient 2.1.0,
//! strongSwan `pki --scep` 5.9.8, certmonger 0.79.17), encrypted to a throwaway test RA
//! (`tests/data/scep/ra.pem` and its TEST-ONLY key). Each exercises a quirk `cms`'s own
//! types refuse: scepclient's constructed encryptedContent, certmonger's 33-byte serial,
//! strongSwan's UTF8String challenge. The live clients run against the server in the
//! server's integration tests; these pin the parser to the bytes they send.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyinfra_pki::PrivateKey;
use keyinfra_pki::csr::parse_csr;
use keyinfra_pki::scep::envelope::{self, ContentCipher, RaKey};
use keyinfra_pki::scep::reply::{self, Delivery, Outcome};
use keyinfra_pki::scep::{DigestAlgorithm, MessageType, PkiMessage, ScepError, ScepLimits};
use keyinfra_pki::{PkiError, RandomSource};

struct OsRng;
impl RandomSource for OsRng {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), PkiError> {
        aws_lc_rs::rand::fill(dest).map_err(|_| PkiError::RandomSourceFailed)
    }
}

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/scep");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}/{name}")).unwrap()
}

fn ra() -> RaKey {
    let certificate = pem::parse(read("ra.pem")).unwrap().into_contents();
    let key =
        PrivateKey::from_pkcs8_pem(&String::from_utf8(read("ra.TEST-ONLY.key")).unwrap()).unwrap();
    RaKey::new(certificate, &key).unwrap()
}

#[test]
fn each_clients_pkcsreq_is_read_opened_and_answered() {
    let ra = ra();
    for (file, digest, cipher, subject) in [
        (
            "scepclient-pkcsreq.der",
            DigestAlgorithm::Sha1,
            ContentCipher::DesCbc,
            "CN=scep-test",
        ),
        (
            "strongswan-pkcsreq.der",
            DigestAlgorithm::Sha256,
            ContentCipher::Aes128Cbc,
            "CN=ss-test",
        ),
        (
            "certmonger-pkcsreq.der",
            DigestAlgorithm::Sha256,
            ContentCipher::Aes256Cbc,
            "CN=cm-test",
        ),
    ] {
        let message = PkiMessage::parse(&read(file), ScepLimits::default())
            .unwrap_or_else(|e| panic!("{file}: {e:?}"));
        assert_eq!(message.message_type, MessageType::PkcsReq, "{file}");
        assert_eq!(message.reply_to.digest, digest, "{file}");
        assert_eq!(message.reply_to.sender_nonce.len(), 16, "{file}");
        let opened = envelope::open(message.envelope.as_deref().unwrap(), &ra)
            .unwrap_or_else(|e| panic!("{file}: {e:?}"));
        assert_eq!(opened.cipher, cipher, "{file}");
        let csr = parse_csr(&opened.content).unwrap();
        assert_eq!(
            csr.challenge_password.as_deref().map(String::as_str),
            Some("s3cret"),
            "{file}"
        );
        assert!(csr.subject.unwrap().to_string().contains(subject), "{file}");
        // The CSR's key is the key that signed the message.
        assert_eq!(csr.public_key_der, message.signer_spki, "{file}");
        // A reply sealed to the client's (self-signed) certificate; the client's key is not
        // here, so check what can be checked without it: the CertRep reads back, signed by
        // the RA, echoing the transaction.
        let rep = reply::cert_rep(
            &ra,
            &message.reply_to,
            Outcome::Success {
                delivery: Delivery::Certificate(ra.certificate_der()),
                recipient: &message.signer_certificate,
                cipher: opened.cipher,
            },
            time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000),
            &mut OsRng,
        )
        .unwrap_or_else(|e| panic!("{file}: {e:?}"));
        let read_back = PkiMessage::parse(&rep, ScepLimits::default()).unwrap();
        assert_eq!(read_back.message_type, MessageType::CertRep);
        assert_eq!(
            read_back.reply_to.transaction_id,
            message.reply_to.transaction_id
        );
        assert_eq!(read_back.reply_to.digest, digest.for_reply());
        assert_eq!(
            read_back.cert_rep.unwrap().recipient_nonce,
            message.reply_to.sender_nonce
        );
        assert_eq!(read_back.signer_certificate, ra.certificate_der());
    }
}

#[test]
fn a_captured_request_with_a_changed_byte_never_panics_and_is_refused() {
    let ra = ra();
    let original = read("certmonger-pkcsreq.der");
    // Every byte position: parsing either refuses or, where the byte is not covered by
    // anything checked (e.g. inside the unsigned certificate's own signature), succeeds.
    let mut refused = 0;
    for at in 0..original.len() {
        let mut bad = original.clone();
        bad[at] ^= 0x5a;
        match PkiMessage::parse(&bad, ScepLimits::default()) {
            Ok(message) => {
                if let Some(sealed) = &message.envelope {
                    let _ = envelope::open(sealed, &ra);
                }
            }
            Err(ScepError::Unreadable(_) | ScepError::Refused { .. }) => refused += 1,
        }
    }
    assert!(
        refused > original.len() / 2,
        "{refused} of {}",
        original.len()
    );
}

/// A CertRep from micromdm's scepserver that is not a SUCCESS: its absent content is an
/// empty OCTET STRING, which reads as no envelope (the benchmark reads its replies).
#[test]
fn scepservers_non_success_certrep_reads_without_an_envelope() {
    let message = PkiMessage::parse(
        &read("scepserver-certrep-nonsuccess.der"),
        ScepLimits::default(),
    )
    .unwrap();
    assert_eq!(message.message_type, MessageType::CertRep);
    assert!(message.envelope.is_none());
    let status = message.cert_rep.unwrap();
    // FAILURE, badRequest: what scepserver answered some of 16 concurrent enrollments.
    assert_eq!(
        (status.pki_status.as_str(), status.fail_info.as_deref()),
        ("2", Some("2"))
    );
    assert_eq!(status.recipient_nonce, [7u8; 16]);
}
