//! The server-side key generation answer (RFC 7030 4.4.2): a `multipart/mixed` body with
//! the new private key (unencrypted PKCS#8; TLS is its protection) and the certificate as
//! certs-only, each one line of base64, as libest writes it.
//!
//! ```text
//! --est-keyinfra-boundary
//! Content-Type: application/pkcs8
//! Content-Transfer-Encoding: base64
//!
//! <PKCS#8, base64>
//! --est-keyinfra-boundary
//! Content-Type: application/pkcs7-mime; smime-type=certs-only
//! Content-Transfer-Encoding: base64
//!
//! <certs-only, base64>
//! --est-keyinfra-boundary--
//! ```
//!
//! Every line ends in CRLF. The boundary is fixed: it holds `-`, which base64 never writes,
//! so it cannot occur inside a part.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// The boundary between the parts.
pub const BOUNDARY: &str = "est-keyinfra-boundary";

const KEY_HEAD: &str = "--est-keyinfra-boundary\r\n\
    Content-Type: application/pkcs8\r\n\
    Content-Transfer-Encoding: base64\r\n\r\n";
const CERT_HEAD: &str = "\r\n--est-keyinfra-boundary\r\n\
    Content-Type: application/pkcs7-mime; smime-type=certs-only\r\n\
    Content-Transfer-Encoding: base64\r\n\r\n";
const CLOSE: &str = "\r\n--est-keyinfra-boundary--\r\n";

/// Standard padded base64 of `input`, written into `out` without a temporary copy.
fn append_base64(out: &mut Vec<u8>, input: &[u8]) {
    let from = out.len();
    out.resize(from + base64_len(input.len()), 0);
    // The slice is exactly the encoded length, so this cannot fail.
    let _ = STANDARD.encode_slice(input, &mut out[from..]);
}

fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// The Content-Type header value and the body of a serverkeygen answer. The body holds the
/// private key: it is allocated once at its final size (so no reallocation leaves a copy
/// behind) and wiped when dropped.
pub fn server_keygen_body(pkcs8_der: &[u8], certs_only_der: &[u8]) -> (String, Zeroizing<Vec<u8>>) {
    let len = KEY_HEAD.len()
        + base64_len(pkcs8_der.len())
        + CERT_HEAD.len()
        + base64_len(certs_only_der.len())
        + CLOSE.len();
    let mut body = Zeroizing::new(Vec::with_capacity(len));
    body.extend_from_slice(KEY_HEAD.as_bytes());
    append_base64(&mut body, pkcs8_der);
    body.extend_from_slice(CERT_HEAD.as_bytes());
    append_base64(&mut body, certs_only_der);
    body.extend_from_slice(CLOSE.as_bytes());
    debug_assert_eq!(body.len(), len);
    (format!("multipart/mixed; boundary={BOUNDARY}"), body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A part's headers (name lowercased) and its body, as a MIME reader sees them.
    struct Part {
        headers: Vec<(String, String)>,
        body: String,
    }

    /// Splits a multipart body on its boundary (RFC 2046 5.1.1): the delimiter is CRLF,
    /// `--`, the boundary; the first one may start the body; the last one ends in `--`.
    fn parse(content_type: &str, body: &[u8]) -> Vec<Part> {
        let boundary = content_type
            .strip_prefix("multipart/mixed; boundary=")
            .unwrap();
        let text = std::str::from_utf8(body).unwrap();
        let delimiter = format!("\r\n--{boundary}");
        let text = format!("\r\n{text}");
        let mut pieces = text.split(&delimiter);
        assert_eq!(pieces.next(), Some(""), "no preamble");
        let mut parts = Vec::new();
        let mut closed = false;
        for piece in pieces {
            assert!(!closed, "nothing after the close delimiter");
            if let Some(epilogue) = piece.strip_prefix("--") {
                assert_eq!(epilogue, "\r\n");
                closed = true;
                continue;
            }
            let piece = piece.strip_prefix("\r\n").unwrap();
            let (head, body) = piece.split_once("\r\n\r\n").unwrap();
            let headers = head
                .split("\r\n")
                .map(|line| {
                    let (name, value) = line.split_once(':').unwrap();
                    (name.to_ascii_lowercase(), value.trim().to_owned())
                })
                .collect();
            parts.push(Part {
                headers,
                body: body.to_owned(),
            });
        }
        assert!(closed, "the close delimiter is there");
        parts
    }

    fn header<'a>(part: &'a Part, name: &str) -> &'a str {
        &part.headers.iter().find(|(n, _)| n == name).unwrap().1
    }

    #[test]
    fn the_body_parses_back_into_the_key_and_the_certificates() {
        let key = crate::PrivateKey::generate(crate::KeyAlgorithm::EcdsaP256).unwrap();
        let root = crate::ca::test_root("CN=Root");
        let certs = crate::cms::certs_only(&[root.certificate_der()]).unwrap();
        let (content_type, body) = server_keygen_body(key.pkcs8_der(), &certs);
        assert_eq!(
            content_type,
            "multipart/mixed; boundary=est-keyinfra-boundary"
        );
        let parts = parse(&content_type, &body);
        assert_eq!(parts.len(), 2);

        assert_eq!(header(&parts[0], "content-type"), "application/pkcs8");
        assert_eq!(header(&parts[0], "content-transfer-encoding"), "base64");
        assert!(!parts[0].body.contains(['\r', '\n']), "one line");
        assert_eq!(STANDARD.decode(&parts[0].body).unwrap(), key.pkcs8_der());

        assert_eq!(
            header(&parts[1], "content-type"),
            "application/pkcs7-mime; smime-type=certs-only"
        );
        assert_eq!(header(&parts[1], "content-transfer-encoding"), "base64");
        assert!(!parts[1].body.contains(['\r', '\n']), "one line");
        assert_eq!(STANDARD.decode(&parts[1].body).unwrap(), certs);
    }

    #[test]
    fn every_line_ends_in_crlf_and_the_body_is_allocated_once() {
        for (key, certs) in [
            (&b""[..], &b""[..]),
            (&[1u8][..], &[2u8, 3][..]),
            (&[7u8; 1000][..], &[9u8; 4001][..]),
        ] {
            let (_, body) = server_keygen_body(key, certs);
            assert!(body.ends_with(b"--est-keyinfra-boundary--\r\n"));
            for (i, byte) in body.iter().enumerate() {
                if *byte == b'\n' {
                    assert_eq!(body[i - 1], b'\r', "bare LF at {i}");
                }
            }
            assert_eq!(
                body.capacity(),
                body.len(),
                "no reallocation copied the key"
            );
        }
    }

    #[test]
    fn base64_never_holds_the_boundary() {
        // Bytes whose base64 is full of '+' and '/': still no '-' anywhere in a part.
        let (_, body) = server_keygen_body(&[0xFB; 300], &[0xFF; 300]);
        let text = std::str::from_utf8(&body).unwrap();
        assert_eq!(text.matches(BOUNDARY).count(), 3);
    }
}
