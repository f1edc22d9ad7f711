//! The plaintext inside a SCEP envelope other than a CSR: CertPoll's IssuerAndSubject and
//! GetCert's (and GetCRL's) IssuerAndSerialNumber. A device chooses these bytes freely (it
//! encrypts them to the RA itself), so they are as hostile as the message around them.
//! Properties: whatever reads as an IssuerAndSubject has two Names (SEQUENCEs), and a
//! certificate id has a Name and a serial RFC 5280 allows; reading twice gives the same.

use keyinfra_pki::scep::{read_certificate_id, read_poll_for};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Some(poll) = read_poll_for(data) {
            assert_eq!(poll.issuer_der.first(), Some(&0x30));
            assert_eq!(poll.subject_der.first(), Some(&0x30));
            assert_eq!(read_poll_for(data), Some(poll));
        }
        if let Some(id) = read_certificate_id(data) {
            assert_eq!(id.issuer_der.first(), Some(&0x30));
            assert!(!id.serial.to_hex().is_empty());
            assert_eq!(read_certificate_id(data), Some(id));
        }
    });
}
