//! What one OCSP answer costs on one core, per responder key type: parsing an `openssl
//! ocsp`-shaped request with a nonce, and signing the response that echoes it (the per-request
//! work when responses cannot be cached), SECONDS seconds each.
//!
//!     cargo run --release -p keyinfra-pki --example ocsp-bench -- [SECONDS]
//!
//! Not a test: it prints figures.

use std::time::{Duration, Instant};

use keyinfra_pki::ca::{CaSigner, CaSpec, LeafKey};
use keyinfra_pki::names::DistinguishedName;
use keyinfra_pki::ocsp::{
    BasicResponse, CertId, CertStatus, HashAlgorithm, IssuerHashes, OcspResponder, RequestLimits,
    ResponderCertSpec, SingleResponse, parse_request,
};
use keyinfra_pki::{KeyAlgorithm, PkiError, PrivateKey, RandomSource, SerialNumber};
use time::OffsetDateTime;

struct Counter(u8);
impl RandomSource for Counter {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), PkiError> {
        self.0 = self.0.wrapping_add(1);
        dest.fill(self.0);
        Ok(())
    }
}

/// An OCSPRequest as `openssl ocsp -nonce` writes it: one SHA-1 CertID, a 16-octet nonce.
fn request_der(id: &CertId) -> Vec<u8> {
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_sequence(|w| {
                w.next()
                    .write_sequence(|w| w.next().write_sequence(|w| w.next().write_der(id.der())));
                w.next().write_tagged(yasna::Tag::context(2), |w| {
                    w.write_sequence(|w| {
                        w.next().write_sequence(|w| {
                            w.next()
                                .write_oid(&yasna::models::ObjectIdentifier::from_slice(&[
                                    1, 3, 6, 1, 5, 5, 7, 48, 1, 2,
                                ]));
                            w.next()
                                .write_bytes(&yasna::construct_der(|w| w.write_bytes(&[0x5a; 16])));
                        })
                    })
                });
            })
        })
    })
}

/// Runs `f` for `seconds` and returns the rate per second.
fn rate(seconds: u64, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

#[allow(clippy::print_stdout)] // Printing the figures is this program's purpose.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args().nth(1).map_or(Ok(3), |s| s.parse())?;
    let now = OffsetDateTime::from_unix_timestamp(1_767_225_600)?;
    let subject = DistinguishedName::parse("CN=ocsp-bench")?;
    let ca = CaSigner::create_root(
        PrivateKey::generate(KeyAlgorithm::EcdsaP256)?,
        &CaSpec {
            subject: &subject,
            serial: &SerialNumber::from_bytes(&[1])?,
            not_before: now,
            not_after: now + time::Duration::days(365),
            path_len: None,
            name_constraints: None,
        },
    )?;
    let issuer = IssuerHashes::from_certificate(ca.certificate_der())?;
    let id = CertId::new(
        HashAlgorithm::Sha1,
        &issuer,
        &SerialNumber::from_bytes(&[7; 16])?,
    )?;
    let der = request_der(&id);
    let limits = RequestLimits::default();
    let parses = rate(seconds, || {
        let request = parse_request(&der, &limits);
        assert!(request.is_ok_and(|r| issuer.matches(&r.cert_ids()[0])));
    });
    println!("parse_request + match: {parses:>10.0}/s");
    let request = parse_request(&der, &limits)?;
    for algorithm in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::Rsa2048,
    ] {
        let key = PrivateKey::generate(algorithm)?;
        let cert = ca.issue_ocsp_responder(
            &ResponderCertSpec {
                public_key: LeafKey::Generated(&key),
                not_before: now,
                not_after: now + time::Duration::days(7),
            },
            &mut Counter(0),
        )?;
        let responder = OcspResponder::new(cert.der, key)?;
        let responses = [SingleResponse {
            cert_id: &request.cert_ids()[0],
            status: CertStatus::Good,
            this_update: now,
            next_update: Some(now + time::Duration::hours(1)),
        }];
        let signs = rate(seconds, || {
            let signed = responder.sign(&BasicResponse {
                produced_at: now,
                responses: &responses,
                nonce: request.nonce(),
            });
            assert!(signed.is_ok());
        });
        println!("sign with nonce, {algorithm:<10}: {signs:>10.0}/s");
    }
    Ok(())
}
