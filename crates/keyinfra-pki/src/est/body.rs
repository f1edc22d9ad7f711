//! EST request and response bodies (RFC 7030 4.2, RFC 8951 3): base64 of DER.
//!
//! Clients disagree about the request body: one line or wrapped at 64 or 76 columns, with
//! CRLF or LF, padded or not (RFC 8951 3.1 tells a server to tolerate the whitespace), and
//! some send PEM armour (OpenXPKI takes it) or the DER itself. [`decode_base64_body`] takes
//! all of these; `Content-Transfer-Encoding` is ignored, as RFC 8951 makes base64 the rule.
//! Answers are one line of standard base64 with no newline ([`encode_one_line`]), which
//! every client reads.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

/// Largest EST request body, before any decoding. A CSR is at most
/// [`crate::csr::MAX_CSR_BYTES`] of DER; its base64 with line breaks fits in twice that.
pub const MAX_EST_BODY_BYTES: usize = 64 * 1024;

/// Why a body was refused. The texts are fit for an HTTP client and never quote the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EstBodyError {
    #[error("the body is empty")]
    Empty,
    #[error("the body is larger than {MAX_EST_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the body is not base64")]
    NotBase64,
    #[error("the body is not a PEM CERTIFICATE REQUEST block")]
    NotPemRequest,
}

/// Standard base64 (RFC 4648 4) that takes input with or without its `=` padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The PEM labels of a PKCS#10 request: RFC 7468's, and the older one Netscape and some
/// devices still write.
const PEM_LABELS: [&str; 2] = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"];

/// The DER inside an EST request body.
///
/// * PEM armour (the first non-blank characters are `-----`): the first block, which must
///   be a `CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`;
/// * raw DER: a body that starts with a SEQUENCE tag (0x30) and holds a byte outside the
///   base64 alphabet and ASCII whitespace (a DER CSR always does: its length bytes and
///   signature);
/// * otherwise base64: every ASCII whitespace byte is dropped, anywhere, and the padding
///   may be there or not.
///
/// Bodies over [`MAX_EST_BODY_BYTES`] are refused before any of this.
pub fn decode_base64_body(body: &[u8]) -> Result<Vec<u8>, EstBodyError> {
    if body.len() > MAX_EST_BODY_BYTES {
        return Err(EstBodyError::TooLarge);
    }
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() {
        return Err(EstBodyError::Empty);
    }
    if trimmed.starts_with(b"-----") {
        let block = pem::parse(trimmed).map_err(|_| EstBodyError::NotPemRequest)?;
        if !PEM_LABELS.contains(&block.tag()) {
            return Err(EstBodyError::NotPemRequest);
        }
        let der = block.into_contents();
        return if der.is_empty() {
            Err(EstBodyError::Empty)
        } else {
            Ok(der)
        };
    }
    let text_like = body
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b) || b.is_ascii_whitespace());
    if body[0] == 0x30 && !text_like {
        return Ok(body.to_vec());
    }
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let der = LENIENT
        .decode(&compact)
        .map_err(|_| EstBodyError::NotBase64)?;
    if der.is_empty() {
        return Err(EstBodyError::Empty);
    }
    Ok(der)
}

/// Standard base64 of `der` on one line, padded, with no newline anywhere.
pub fn encode_one_line(der: &[u8]) -> String {
    STANDARD.encode(der)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    /// A real DER request (P-256, CN=est-body), made here so no fixture file is needed.
    fn csr_der() -> Vec<u8> {
        let key = crate::PrivateKey::generate(crate::KeyAlgorithm::EcdsaP256).unwrap();
        let der = crate::scep::client::csr(&key, "est-body", None).unwrap();
        assert_eq!(der[0], 0x30);
        der
    }

    fn wrapped(der: &[u8], width: usize, eol: &str) -> Vec<u8> {
        let line = encode_one_line(der);
        line.as_bytes()
            .chunks(width)
            .map(|chunk| format!("{}{eol}", std::str::from_utf8(chunk).unwrap()))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn one_line_base64_decodes_with_and_without_padding() {
        // 3n+1 bytes: the base64 ends in "==", which may be left off.
        let der: Vec<u8> = (0u8..=99).collect();
        let line = encode_one_line(&der);
        assert!(line.ends_with("=="));
        assert_eq!(decode_base64_body(line.as_bytes()).unwrap(), der);
        let unpadded = line.trim_end_matches('=');
        assert_eq!(decode_base64_body(unpadded.as_bytes()).unwrap(), der);
    }

    #[test]
    fn wrapped_base64_decodes_whatever_the_line_ends_and_blanks() {
        let der = csr_der();
        for (width, eol) in [(64, "\r\n"), (76, "\n"), (1, " "), (10, "\t\r\n")] {
            let body = wrapped(&der, width, eol);
            assert_eq!(decode_base64_body(&body).unwrap(), der, "{width} {eol:?}");
        }
        let mut spaced = b"\r\n  ".to_vec();
        spaced.extend(wrapped(&der, 64, "\n"));
        spaced.extend(b"\n\n");
        assert_eq!(decode_base64_body(&spaced).unwrap(), der);
    }

    #[test]
    fn pem_armour_gives_the_der_inside_for_both_labels() {
        let der = csr_der();
        for label in ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"] {
            let text = crate::pem_text(label, &der);
            assert_eq!(decode_base64_body(text.as_bytes()).unwrap(), der);
            let crlf = format!("\r\n{}", text.replace('\n', "\r\n"));
            assert_eq!(decode_base64_body(crlf.as_bytes()).unwrap(), der);
        }
    }

    #[test]
    fn pem_of_something_else_or_broken_pem_is_refused() {
        let der = csr_der();
        let certificate = crate::pem_text("CERTIFICATE", &der);
        assert_eq!(
            decode_base64_body(certificate.as_bytes()),
            Err(EstBodyError::NotPemRequest)
        );
        let broken = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n";
        assert_eq!(
            decode_base64_body(broken.as_bytes()),
            Err(EstBodyError::NotPemRequest)
        );
    }

    #[test]
    fn raw_der_is_taken_as_it_is() {
        let der = csr_der();
        assert_eq!(decode_base64_body(&der).unwrap(), der);
    }

    #[test]
    fn a_base64_body_that_starts_with_0_is_still_base64() {
        // '0' is 0x30, the SEQUENCE tag: text made only of base64 characters is base64.
        let der = [0xD3, 0x4D, 0x34, 0x01];
        let line = encode_one_line(&der);
        assert!(line.starts_with('0'));
        assert_eq!(decode_base64_body(line.as_bytes()).unwrap(), der);
    }

    #[test]
    fn empty_and_blank_bodies_are_empty() {
        for body in [&b""[..], b"   ", b"\r\n\r\n", b"\t"] {
            assert_eq!(decode_base64_body(body), Err(EstBodyError::Empty));
        }
    }

    #[test]
    fn text_that_is_not_base64_is_refused() {
        for body in [
            &b"not base64!"[..],
            b"MIIB*AAA",
            b"TWFu-_",
            b"A",
            b"TWFu\x00TWFu",
            b"==",
        ] {
            assert_eq!(
                decode_base64_body(body),
                Err(EstBodyError::NotBase64),
                "{body:?}"
            );
        }
    }

    #[test]
    fn the_cap_applies_to_the_raw_body_before_decoding() {
        let at_cap = vec![b'A'; MAX_EST_BODY_BYTES];
        assert_eq!(
            decode_base64_body(&at_cap).unwrap().len(),
            MAX_EST_BODY_BYTES / 4 * 3
        );
        let over = vec![b' '; MAX_EST_BODY_BYTES + 1];
        assert_eq!(decode_base64_body(&over), Err(EstBodyError::TooLarge));
        assert_eq!(
            EstBodyError::TooLarge.to_string(),
            "the body is larger than 65536 bytes"
        );
    }

    #[test]
    fn error_texts_are_for_http_clients() {
        assert_eq!(EstBodyError::Empty.to_string(), "the body is empty");
        assert_eq!(
            EstBodyError::NotBase64.to_string(),
            "the body is not base64"
        );
    }

    #[test]
    fn one_line_encoding_has_no_newline_and_round_trips() {
        let der = csr_der();
        let line = encode_one_line(&der);
        assert!(!line.contains(['\n', '\r', ' ']));
        assert!(
            line.len() > 76,
            "long enough that a wrapping encoder would wrap"
        );
        assert_eq!(decode_base64_body(line.as_bytes()).unwrap(), der);
        assert_eq!(encode_one_line(&[0xFB, 0xFF]), "+/8=");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever a client sends, the answer is DER or a refusal, never a panic, and DER
        /// is never empty.
        #[test]
        fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(der) = decode_base64_body(&body) {
                prop_assert!(!der.is_empty());
            }
        }

        /// Any DER, encoded on one line or wrapped at any width with CRLF, decodes back.
        #[test]
        fn encoded_bytes_decode_back(
            der in prop::collection::vec(any::<u8>(), 1..2048),
            width in 1usize..100,
        ) {
            let line = encode_one_line(&der);
            prop_assert_eq!(decode_base64_body(line.as_bytes()).unwrap(), der.clone());
            prop_assert_eq!(decode_base64_body(&wrapped(&der, width, "\r\n")).unwrap(), der);
        }
    }
}
