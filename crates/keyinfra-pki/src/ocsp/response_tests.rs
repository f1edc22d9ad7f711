#![allow(clippy::unwrap_used)]

use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use rcgen::PublicKeyData;

use der::Tagged;

use super::*;
use crate::ca::{CaSigner, CaSpec, LeafKey};
use crate::names::DistinguishedName;
use crate::ocsp::{HashAlgorithm, IssuerHashes, RequestLimits, ResponderCertSpec, parse_request};
use crate::{KeyAlgorithm, RandomSource, SerialNumber};

struct Counter(u8);
impl RandomSource for Counter {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), PkiError> {
        self.0 = self.0.wrapping_add(1);
        dest.fill(self.0);
        Ok(())
    }
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap()
}

fn ca() -> CaSigner {
    let subject = DistinguishedName::parse("CN=Test Root,O=KeyInfra").unwrap();
    CaSigner::create_root(
        PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap(),
        &CaSpec {
            subject: &subject,
            serial: &SerialNumber::from_hex("01").unwrap(),
            not_before: at(0),
            not_after: at(86_400 * 365),
            path_len: None,
            name_constraints: None,
        },
    )
    .unwrap()
}

fn responder(ca: &CaSigner, algorithm: KeyAlgorithm) -> OcspResponder {
    let key = PrivateKey::generate(algorithm).unwrap();
    let cert = ca
        .issue_ocsp_responder(
            &ResponderCertSpec {
                public_key: LeafKey::Generated(&key),
                not_before: at(0),
                not_after: at(86_400),
            },
            &mut Counter(0),
        )
        .unwrap();
    OcspResponder::new(cert.der, key).unwrap()
}

fn verifier(algorithm: KeyAlgorithm) -> &'static dyn VerificationAlgorithm {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => &sig::ECDSA_P256_SHA256_ASN1,
        KeyAlgorithm::EcdsaP384 => &sig::ECDSA_P384_SHA384_ASN1,
        KeyAlgorithm::Ed25519 => &sig::ED25519,
        _ => &sig::RSA_PKCS1_2048_8192_SHA256,
    }
}

/// Reads a response back with the same derives, checking the signature on the way.
fn read_back(der: &[u8], responder: &OcspResponder) -> Vec<u8> {
    let outer = OcspResponseDer::from_der(der).unwrap();
    assert_eq!(outer.response_status.value(), [0]);
    let bytes = outer.response_bytes.unwrap();
    assert_eq!(bytes.response_type, ID_PKIX_OCSP_BASIC);
    let basic = BasicOcspResponseDer::from_der(bytes.response.as_bytes()).unwrap();
    let algorithm = responder.key.algorithm();
    assert_eq!(
        basic.signature_algorithm.to_der().unwrap(),
        algorithm.signature_algorithm_identifier()
    );
    let tbs = basic.tbs_response_data.to_der().unwrap();
    UnparsedPublicKey::new(verifier(algorithm), responder.key.der_bytes())
        .verify(&tbs, basic.signature.as_bytes().unwrap())
        .unwrap();
    let certs: Vec<AnyRef<'_>> = basic.certs.unwrap().decode_as().unwrap();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0].to_der().unwrap(), responder.certificate_der());
    tbs
}

#[test]
fn error_responses_are_a_bare_status() {
    for (status, code) in [
        (OcspResponseStatus::MalformedRequest, 1),
        (OcspResponseStatus::InternalError, 2),
        (OcspResponseStatus::TryLater, 3),
        (OcspResponseStatus::SigRequired, 5),
        (OcspResponseStatus::Unauthorized, 6),
    ] {
        let der = error_response(status);
        let read = OcspResponseDer::from_der(&der).unwrap();
        assert_eq!(read.response_status.tag(), Tag::Enumerated);
        assert_eq!(read.response_status.value(), [code]);
        assert!(read.response_bytes.is_none());
    }
}

#[test]
fn every_key_algorithm_signs_a_response_that_verifies_and_says_what_was_asked() {
    let ca = ca();
    let issuer = IssuerHashes::from_certificate(ca.certificate_der()).unwrap();
    let serial = SerialNumber::from_hex("8F00AA").unwrap();
    let sha1 = CertId::new(HashAlgorithm::Sha1, &issuer, &serial).unwrap();
    let sha256 = CertId::new(HashAlgorithm::Sha256, &issuer, &serial).unwrap();
    // A request with a nonce, to echo.
    let request = yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                w.next().write_sequence(|w| {
                    w.next().write_sequence(|w| w.next().write_der(sha1.der()))
                });
                w.next().write_tagged(yasna::Tag::context(2), |w| {
                    w.write_sequence(|w| {
                        w.next().write_sequence(|w| {
                            w.next()
                                .write_oid(&yasna::models::ObjectIdentifier::from_slice(&[
                                    1, 3, 6, 1, 5, 5, 7, 48, 1, 2,
                                ]));
                            w.next().write_bytes(&[0x04, 0x03, 1, 2, 3]);
                        })
                    })
                });
            })
        })
    });
    let request = parse_request(&request, &RequestLimits::default()).unwrap();
    for algorithm in KeyAlgorithm::ALL {
        if matches!(algorithm, KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096) {
            continue; // RSA 2048 covers the RSA code path; larger keys are only slower.
        }
        let responder = responder(&ca, algorithm);
        let responses = [
            SingleResponse {
                cert_id: &request.cert_ids()[0],
                status: CertStatus::Good,
                this_update: at(10),
                next_update: Some(at(3_610)),
            },
            SingleResponse {
                cert_id: &sha256,
                status: CertStatus::Revoked {
                    revocation_time: at(5),
                    reason: Some(RevocationReason::PrivilegeWithdrawn),
                },
                this_update: at(10),
                next_update: None,
            },
        ];
        let der = responder
            .sign(&BasicResponse {
                produced_at: at(11),
                responses: &responses,
                nonce: request.nonce(),
            })
            .unwrap();
        let tbs = read_back(&der, &responder);
        let data = ResponseDataDer::from_der(&tbs).unwrap();
        let responder_id = data.responder_id.to_der().unwrap();
        let ResponderIdDer::ByKey(key_hash) = ResponderIdDer::from_der(&responder_id).unwrap();
        assert_eq!(key_hash.as_bytes(), responder.key_hash());
        assert_eq!(data.produced_at, generalized_time(at(11)).unwrap());
        assert_eq!(data.responses.len(), 2);
        let good = &data.responses[0];
        assert_eq!(good.cert_id.to_der().unwrap(), sha1.der());
        assert!(matches!(good.cert_status, CertStatusDer::Good(_)));
        assert_eq!(good.next_update, Some(generalized_time(at(3_610)).unwrap()));
        let revoked = &data.responses[1];
        assert_eq!(revoked.cert_id.to_der().unwrap(), sha256.der());
        let CertStatusDer::Revoked(info) = &revoked.cert_status else {
            panic!("not revoked");
        };
        assert_eq!(info.revocation_time, generalized_time(at(5)).unwrap());
        assert_eq!(info.revocation_reason.unwrap().value(), [9]);
        assert_eq!(revoked.next_update, None);
        let nonce = &data.response_extensions.as_ref().unwrap()[0];
        assert_eq!(nonce.extn_id, ID_PKIX_OCSP_NONCE);
        assert_eq!(nonce.extn_value.as_bytes(), [0x04, 0x03, 1, 2, 3]);
    }
}

#[test]
fn without_a_nonce_there_is_no_extension_and_ed25519_responses_repeat_exactly() {
    let ca = ca();
    let issuer = IssuerHashes::from_certificate(ca.certificate_der()).unwrap();
    let id = CertId::new(
        HashAlgorithm::Sha1,
        &issuer,
        &SerialNumber::from_hex("01").unwrap(),
    )
    .unwrap();
    let responder = responder(&ca, KeyAlgorithm::Ed25519);
    let responses = [SingleResponse {
        cert_id: &id,
        status: CertStatus::Unknown,
        this_update: at(0),
        next_update: None,
    }];
    let response = BasicResponse {
        produced_at: at(0),
        responses: &responses,
        nonce: None,
    };
    let der = responder.sign(&response).unwrap();
    // Ed25519 is deterministic: the same status signs to the same bytes, as a cache holds.
    assert_eq!(responder.sign(&response).unwrap(), der);
    let tbs = read_back(&der, &responder);
    let data = ResponseDataDer::from_der(&tbs).unwrap();
    assert!(data.response_extensions.is_none());
    assert!(matches!(
        data.responses[0].cert_status,
        CertStatusDer::Unknown(_)
    ));
}

#[test]
fn nothing_to_answer_or_a_time_before_1970_is_an_error_not_a_panic() {
    let ca = ca();
    let responder = ca.ocsp_responder().unwrap();
    let empty = BasicResponse {
        produced_at: at(0),
        responses: &[],
        nonce: None,
    };
    assert!(matches!(responder.sign(&empty), Err(PkiError::Encoding(_))));
    let issuer = IssuerHashes::from_certificate(ca.certificate_der()).unwrap();
    let id = CertId::new(
        HashAlgorithm::Sha1,
        &issuer,
        &SerialNumber::from_hex("01").unwrap(),
    )
    .unwrap();
    let old = [SingleResponse {
        cert_id: &id,
        status: CertStatus::Good,
        this_update: OffsetDateTime::from_unix_timestamp(-1).unwrap(),
        next_update: None,
    }];
    let response = BasicResponse {
        produced_at: at(0),
        responses: &old,
        nonce: None,
    };
    assert!(matches!(
        responder.sign(&response),
        Err(PkiError::Encoding(_))
    ));
}

#[test]
fn a_responder_refuses_a_key_that_is_not_its_certificates() {
    let ca = ca();
    let other = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    assert_eq!(
        OcspResponder::new(ca.certificate_der().to_vec(), other).unwrap_err(),
        PkiError::KeyMismatch
    );
    // The CA answering for itself carries its own certificate.
    assert_eq!(
        ca.ocsp_responder().unwrap().certificate_der(),
        ca.certificate_der()
    );
}

#[test]
fn a_responder_can_be_shared_between_request_handlers() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<OcspResponder>();
    shared::<crate::ocsp::OcspRequest>();
}
