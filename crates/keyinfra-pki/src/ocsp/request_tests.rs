#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use yasna::models::ObjectIdentifier as Oid;

use super::*;
use crate::ocsp::{CertSerial, HashAlgorithm, IssuerHashes};

const SHA1: &[u64] = &[1, 3, 14, 3, 2, 26];
const SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
const SHA512: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 3];
const NONCE: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 2];

fn cert_id(alg: &[u64], null: bool, hash_len: usize, serial: &[u8]) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                w.next().write_oid(&Oid::from_slice(alg));
                if null {
                    w.next().write_null();
                }
            });
            w.next().write_bytes(&vec![0xaa; hash_len]);
            w.next().write_bytes(&vec![0xbb; hash_len]);
            w.next()
                .write_tagged_implicit(yasna::tags::TAG_INTEGER, |w| w.write_bytes(serial));
        })
    })
}

/// `serial` is written as the INTEGER's content octets, unchecked (to test odd ones).
fn sha1_id(serial: &[u8]) -> Vec<u8> {
    cert_id(SHA1, true, 20, serial)
}

struct Ext {
    oid: &'static [u64],
    critical: bool,
    value: Vec<u8>,
}

fn extensions(w: yasna::DERWriter<'_>, exts: &[Ext]) {
    w.write_sequence(|w| {
        for ext in exts {
            w.next().write_sequence(|w| {
                w.next().write_oid(&Oid::from_slice(ext.oid));
                if ext.critical {
                    w.next().write_bool(true);
                }
                w.next().write_bytes(&ext.value);
            });
        }
    });
}

fn request(ids: &[Vec<u8>], exts: &[Ext], signed: bool) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                if signed {
                    w.next().write_tagged(yasna::Tag::context(1), |w| {
                        w.write_tagged_implicit(yasna::Tag::context(2), |w| {
                            w.write_ia5_string("requestor.example")
                        })
                    });
                }
                w.next().write_sequence(|w| {
                    for id in ids {
                        w.next().write_sequence(|w| w.next().write_der(id));
                    }
                });
                if !exts.is_empty() {
                    w.next()
                        .write_tagged(yasna::Tag::context(2), |w| extensions(w, exts));
                }
            });
            if signed {
                w.next().write_tagged(yasna::Tag::context(0), |w| {
                    w.write_sequence(|w| {
                        w.next().write_sequence(|w| {
                            w.next()
                                .write_oid(&Oid::from_slice(&[1, 2, 840, 10045, 4, 3, 2]))
                        });
                        w.next().write_bitvec_bytes(&[1, 2, 3], 24);
                        w.next().write_tagged(yasna::Tag::context(0), |w| {
                            w.write_sequence(|w| w.next().write_sequence(|w| w.next().write_null()))
                        });
                    })
                });
            }
        })
    })
}

fn nonce_ext(value: Vec<u8>) -> Ext {
    Ext {
        oid: NONCE,
        critical: false,
        value,
    }
}

fn wrapped(nonce: &[u8]) -> Vec<u8> {
    yasna::construct_der(|w| w.write_bytes(nonce))
}

fn parse(der: &[u8]) -> Result<OcspRequest> {
    parse_request(der, &RequestLimits::default())
}

#[test]
fn one_cert_id_with_a_wrapped_nonce() {
    let der = request(
        &[sha1_id(&[0x0a, 0x1b])],
        &[nonce_ext(wrapped(&[7; 16]))],
        false,
    );
    let req = parse(&der).unwrap();
    assert_eq!(req.cert_ids().len(), 1);
    let id = &req.cert_ids()[0];
    assert_eq!(id.hash_algorithm(), Some(HashAlgorithm::Sha1));
    assert_eq!(id.issuer_name_hash(), [0xaa; 20]);
    assert_eq!(id.issuer_key_hash(), [0xbb; 20]);
    assert_eq!(id.serial().number().unwrap().to_hex(), "0A1B");
    assert_eq!(id.der(), sha1_id(&[0x0a, 0x1b]));
    let nonce = req.nonce().unwrap();
    assert_eq!(nonce.value(), [7; 16]);
    assert!(nonce.is_wrapped());
    assert_eq!(nonce.extension_value(), wrapped(&[7; 16]));
    assert!(!req.is_signed());
}

#[test]
fn a_raw_nonce_is_taken_as_it_is() {
    let der = request(&[sha1_id(&[1])], &[nonce_ext(vec![9; 8])], false);
    let nonce = parse(&der).unwrap().nonce.unwrap();
    assert_eq!(nonce.value(), [9; 8]);
    assert!(!nonce.is_wrapped());
}

#[test]
fn nonces_of_1_to_32_octets_only() {
    for (len, ok) in [(0, false), (1, true), (32, true), (33, false), (200, false)] {
        for value in [wrapped(&vec![5; len]), vec![5; len]] {
            let der = request(&[sha1_id(&[1])], &[nonce_ext(value)], false);
            match parse(&der) {
                Ok(req) => assert!(ok && req.nonce().unwrap().value().len() == len, "{len}"),
                Err(e) => assert!(!ok && e == OcspRequestError::NonceLength(len), "{len}: {e}"),
            }
        }
    }
    let twice = request(
        &[sha1_id(&[1])],
        &[nonce_ext(wrapped(&[1; 8])), nonce_ext(wrapped(&[2; 8]))],
        false,
    );
    assert_eq!(parse(&twice), Err(OcspRequestError::DuplicateNonce));
}

#[test]
fn the_cert_id_count_is_bounded() {
    let ids: Vec<_> = (1..=17u8).map(|i| sha1_id(&[i])).collect();
    let sixteen = parse(&request(&ids[..16], &[], false)).unwrap();
    assert_eq!(sixteen.cert_ids().len(), 16);
    assert_eq!(
        sixteen.cert_ids()[15].serial().number().unwrap().to_hex(),
        "10"
    );
    assert_eq!(
        parse(&request(&ids, &[], false)),
        Err(OcspRequestError::TooManyCertIds { max: 16 })
    );
    let one = RequestLimits {
        max_cert_ids: 1,
        ..RequestLimits::default()
    };
    assert!(parse_request(&request(&ids[..2], &[], false), &one).is_err());
    assert_eq!(
        parse(&request(&[], &[], false)),
        Err(OcspRequestError::NoCertIds)
    );
}

#[test]
fn the_size_is_bounded_before_anything_is_read() {
    let small = RequestLimits {
        max_bytes: 10,
        ..RequestLimits::default()
    };
    let der = request(&[sha1_id(&[1])], &[], false);
    assert_eq!(
        parse_request(&der, &small),
        Err(OcspRequestError::TooLarge { max: 10 })
    );
    assert!(matches!(
        parse(&vec![0x30; 64 * 1024 + 1]),
        Err(OcspRequestError::TooLarge { .. })
    ));
}

#[test]
fn trailing_bytes_and_truncations_are_errors() {
    let der = request(&[sha1_id(&[1])], &[nonce_ext(wrapped(&[3; 16]))], true);
    assert!(parse(&der).is_ok());
    let mut longer = der.clone();
    longer.push(0);
    assert!(matches!(parse(&longer), Err(OcspRequestError::Der(_))));
    for len in 0..der.len() {
        assert!(
            parse(&der[..len]).is_err(),
            "prefix of {len} bytes accepted"
        );
    }
}

#[test]
fn other_hash_algorithms_parse_but_match_nothing() {
    let der = request(&[cert_id(SHA512, true, 64, &[1])], &[], false);
    let req = parse(&der).unwrap();
    let id = &req.cert_ids()[0];
    assert_eq!(id.hash_algorithm(), None);
    assert_eq!(id.hash_algorithm_oid(), "2.16.840.1.101.3.4.2.3");
    assert!(!IssuerHashes::new(b"n", b"k").matches(id));
    // SHA-256 without NULL parameters is fine; with the wrong hash length it is not.
    assert!(parse(&request(&[cert_id(SHA256, false, 32, &[1])], &[], false)).is_ok());
    assert_eq!(
        parse(&request(&[cert_id(SHA1, true, 32, &[1])], &[], false)),
        Err(OcspRequestError::HashLength)
    );
}

#[test]
fn odd_serials_are_kept_raw() {
    let req = parse(&request(
        &[sha1_id(&[0xff, 0x01]), sha1_id(&[0])],
        &[],
        false,
    ))
    .unwrap();
    assert_eq!(
        req.cert_ids()[0].serial(),
        &CertSerial::Unrepresentable(vec![0xff, 0x01])
    );
    assert_eq!(
        req.cert_ids()[1].serial(),
        &CertSerial::Unrepresentable(vec![0])
    );
    assert!(parse(&request(&[sha1_id(&[])], &[], false)).is_err());
}

#[test]
fn critical_extensions_that_are_not_understood_are_refused() {
    let unknown = |critical| Ext {
        oid: &[1, 3, 6, 1, 5, 5, 7, 48, 1, 8],
        critical,
        value: vec![0x30, 0x00],
    };
    assert!(parse(&request(&[sha1_id(&[1])], &[unknown(false)], false)).is_ok());
    assert_eq!(
        parse(&request(&[sha1_id(&[1])], &[unknown(true)], false)),
        Err(OcspRequestError::UnsupportedCriticalExtension {
            oid: "1.3.6.1.5.5.7.48.1.8".into()
        })
    );
}

#[test]
fn signed_requests_are_read_and_the_signature_ignored() {
    let req = parse(&request(&[sha1_id(&[1])], &[], true)).unwrap();
    assert!(req.is_signed());
    assert_eq!(req.cert_ids().len(), 1);
}

#[test]
fn only_version_1_is_accepted() {
    let with_version = |v: u8| {
        yasna::construct_der(|w| {
            w.write_sequence(|w| {
                w.next().write_sequence(|w| {
                    w.next()
                        .write_tagged(yasna::Tag::context(0), |w| w.write_u8(v));
                    w.next().write_sequence(|w| {
                        w.next()
                            .write_sequence(|w| w.next().write_der(&sha1_id(&[1])))
                    });
                })
            })
        })
    };
    assert!(parse(&with_version(0)).is_ok());
    assert_eq!(
        parse(&with_version(1)),
        Err(OcspRequestError::UnsupportedVersion)
    );
}

#[test]
fn every_error_is_answered_malformed_request() {
    let e = parse(b"\x30\x00").unwrap_err();
    assert_eq!(e.response_status(), OcspResponseStatus::MalformedRequest);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn mutated_requests_never_panic(
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut der = request(
            &[sha1_id(&[1, 2]), cert_id(SHA256, false, 32, &[3])],
            &[nonce_ext(wrapped(&[4; 16]))],
            true,
        );
        let i = at.index(der.len());
        der[i] = byte;
        let _ = parse(&der);
        der.truncate(cut.index(der.len()));
        let _ = parse(&der);
    }
}
