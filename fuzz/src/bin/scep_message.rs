//! SCEP pkiMessages (RFC 8894), the body of a PKIOperation POST or the base64 of a GET:
//! anyone on the network can send them. `keyinfra_pki::scep::PkiMessage::parse` with the
//! default limits, then what the server does next: open the envelope with the RA key and
//! read the CSR inside; a refused message is answered with a FAILURE CertRep. Properties:
//! every refusal carries what its reply needs (a transactionID of 1 to 128 characters, a
//! nonce of 1 to 64 octets) and can be answered (signing never fails); a parsed request
//! has an envelope.
//!
//! The RA is the throwaway TEST-ONLY one the captured seeds (scepclient, strongSwan and
//! certmonger PKCSReqs) were encrypted to, so the seeds reach the envelope and the CSR.

use std::sync::OnceLock;

use keyinfra_pki::csr::parse_csr;
use keyinfra_pki::scep::envelope::{self, RaKey};
use keyinfra_pki::scep::reply::{self, Outcome};
use keyinfra_pki::scep::{FailInfo, MessageType, PkiMessage, ScepError, ScepLimits};
use keyinfra_pki::{PkiError, PrivateKey, RandomSource};
use time::OffsetDateTime;

const RA_CERT: &str = include_str!("../../../crates/keyinfra-pki/tests/data/scep/ra.pem");
const RA_KEY: &str = include_str!("../../../crates/keyinfra-pki/tests/data/scep/ra.TEST-ONLY.key");

/// Fixed bytes: the same input takes the same path (AFL's stability).
struct Zeros;
impl RandomSource for Zeros {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), PkiError> {
        dest.fill(7);
        Ok(())
    }
}

fn ra() -> &'static RaKey {
    static RA: OnceLock<RaKey> = OnceLock::new();
    RA.get_or_init(|| {
        let der = pem::parse(RA_CERT).expect("RA PEM").into_contents();
        let key = PrivateKey::from_pkcs8_pem(RA_KEY).expect("RA key");
        RaKey::new(der, &key).expect("RA")
    })
}

fn main() {
    ra();
    let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
    afl::fuzz!(|data: &[u8]| {
        match PkiMessage::parse(data, ScepLimits::default()) {
            Err(ScepError::Unreadable(_)) => {}
            Err(ScepError::Refused { reply_to, .. }) => {
                assert!((1..=128).contains(&reply_to.transaction_id.len()));
                assert!((1..=64).contains(&reply_to.sender_nonce.len()));
                reply::cert_rep(
                    ra(),
                    &reply_to,
                    Outcome::Failure(FailInfo::BadRequest),
                    now,
                    &mut Zeros,
                )
                .expect("a refusal could not be answered");
            }
            Ok(message) => {
                if message.message_type != MessageType::CertRep {
                    let sealed = message
                        .envelope
                        .as_deref()
                        .expect("a request has an envelope");
                    if let Ok(opened) = envelope::open(sealed, ra()) {
                        let _ = parse_csr(&opened.content);
                    }
                }
            }
        }
    });
}
