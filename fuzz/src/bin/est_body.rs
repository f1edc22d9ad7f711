//! EST request bodies (RFC 7030 4.2, RFC 8951): what a device POSTs to simpleenroll,
//! simplereenroll and serverkeygen. `keyinfra_pki::est::decode_base64_body` (base64 one-line
//! or wrapped, PEM, raw DER; 64 KiB cap), then `keyinfra_pki::csr::parse_csr` on the DER,
//! then the challengePassword read as a channel binding. Properties: a decoded body is never
//! empty and comes from at most 64 KiB, its one-line base64 decodes back to it (when that is
//! under the cap), and a tls-exporter binding matches itself.

use keyinfra_pki::est::{
    ChannelBinding, MAX_EST_BODY_BYTES, classify_challenge_password, decode_base64_body,
    encode_one_line, exporter_matches,
};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(der) = decode_base64_body(data) else {
            return;
        };
        assert!(data.len() <= MAX_EST_BODY_BYTES);
        assert!(!der.is_empty());
        // Raw DER near the cap has base64 over it: the round trip holds below the cap.
        let line = encode_one_line(&der);
        if line.len() <= MAX_EST_BODY_BYTES {
            assert_eq!(
                decode_base64_body(line.as_bytes()).as_deref(),
                Ok(der.as_slice())
            );
        }
        let Ok(csr) = keyinfra_pki::csr::parse_csr(&der) else {
            return;
        };
        if let Some(password) = csr.challenge_password.as_deref()
            && let ChannelBinding::TlsExporter(value) = classify_challenge_password(password)
        {
            assert!(exporter_matches(&value, &value));
        }
    });
}
