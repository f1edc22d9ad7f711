//! OCSP requests (RFC 6960), the body of an OCSP POST or the base64 of a GET: anyone on the
//! network can send them. `keyinfra_pki::ocsp::parse_request` with the default limits, then
//! what the responder does with a request that parsed: match each CertID against the CA,
//! answer it, echo the nonce, and sign. Properties: a parsed request holds 1 to 16 CertIDs and
//! a nonce of 1 to 32 octets, and every parsed request can be answered (signing never fails).

use std::sync::OnceLock;

use keyinfra_pki::ca::{CaSigner, CaSpec};
use keyinfra_pki::names::DistinguishedName;
use keyinfra_pki::ocsp::{
    BasicResponse, CertId, CertStatus, HashAlgorithm, IssuerHashes, OcspResponder, RequestLimits,
    SingleResponse, parse_request,
};
use keyinfra_pki::{KeyAlgorithm, PrivateKey, SerialNumber};
use time::OffsetDateTime;

/// An Ed25519 CA answering for itself (the cheapest signature), made once per process and
/// used once before the first input, so that every input takes the same path (AFL's
/// stability).
fn responder() -> &'static (IssuerHashes, OcspResponder) {
    static MADE: OnceLock<(IssuerHashes, OcspResponder)> = OnceLock::new();
    MADE.get_or_init(|| {
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519).expect("key generation");
        let subject = DistinguishedName::parse("CN=Fuzz Root,O=KeyInfra").expect("subject");
        let serial = SerialNumber::from_bytes(&[1]).expect("serial");
        let ca = CaSigner::create_root(
            key,
            &CaSpec {
                subject: &subject,
                serial: &serial,
                not_before: at(0),
                not_after: at(86_400 * 365),
                path_len: None,
                name_constraints: None,
            },
        )
        .expect("CA");
        let issuer = IssuerHashes::from_certificate(ca.certificate_der()).expect("hashes");
        let responder = ca.ocsp_responder().expect("responder");
        let id = CertId::new(HashAlgorithm::Sha1, &issuer, &serial).expect("CertID");
        // The key's signing half is parsed on its first signature.
        responder
            .sign(&BasicResponse {
                produced_at: at(0),
                responses: &[SingleResponse {
                    cert_id: &id,
                    status: CertStatus::Good,
                    this_update: at(0),
                    next_update: None,
                }],
                nonce: None,
            })
            .expect("signing");
        (issuer, responder)
    })
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).expect("time")
}

fn main() {
    responder();
    afl::fuzz!(|data: &[u8]| {
        let limits = RequestLimits::default();
        let Ok(request) = parse_request(data, &limits) else {
            return;
        };
        assert!((1..=limits.max_cert_ids).contains(&request.cert_ids().len()));
        if let Some(nonce) = request.nonce() {
            assert!((1..=32).contains(&nonce.value().len()));
        }
        let (issuer, responder) = responder();
        let responses: Vec<SingleResponse<'_>> = request
            .cert_ids()
            .iter()
            .map(|id| SingleResponse {
                cert_id: id,
                status: if issuer.matches(id) && id.serial().number().is_some() {
                    CertStatus::Good
                } else {
                    CertStatus::Unknown
                },
                this_update: at(0),
                next_update: Some(at(3_600)),
            })
            .collect();
        responder
            .sign(&BasicResponse {
                produced_at: at(1),
                responses: &responses,
                nonce: request.nonce(),
            })
            .expect("a request that parsed could not be answered");
    });
}
