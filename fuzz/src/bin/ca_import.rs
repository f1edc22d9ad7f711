//! Certificate and key imports: `keyinfra ca import --cert F --key F` (a PEM or DER CA
//! certificate, a PKCS#8 PEM key, and the check that they belong together) and
//! `serve --tls-cert F --tls-key F` (a PEM chain and a PKCS#8, PKCS#1 or SEC1 key).
//!
//! Input: a 2-byte big-endian length, that many bytes of the certificate file, then the
//! key file.

use keyinfra_pki::ca::{CaSigner, inspect_ca_certificate};
use keyinfra_pki::{PrivateKey, certificate_der_from_pem_or_der};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((len, rest)) = data.split_first_chunk::<2>() else {
            return;
        };
        let split = usize::from(u16::from_be_bytes(*len)).min(rest.len());
        let (cert, key_file) = rest.split_at(split);
        // `ca import` reads the key file as text.
        let key = std::str::from_utf8(key_file)
            .ok()
            .and_then(|text| PrivateKey::from_pkcs8_pem(text).ok());
        if let Ok(der) = certificate_der_from_pem_or_der(cert)
            && inspect_ca_certificate(&der).is_ok()
            && let Some(key) = key
        {
            let _ = CaSigner::from_parts(der, key);
        }
        let _ = keyinfra_pki::tls::certified_key_from_pem(cert, key_file);
    });
}
