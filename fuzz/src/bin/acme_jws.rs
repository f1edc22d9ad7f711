//! ACME request bodies (RFC 8555 6.2): what any client, before it has an account, POSTs to
//! newAccount, and every account to the other endpoints. `keyinfra_pki::acme::Jws::parse`
//! (64 KiB cap, strict flattened JWS, protected header, JWK), then signature verification
//! with the request's own JWK and with fixed keys of each type, then the payload's members
//! that the wire layer reads: `externalAccountBinding` (parsed, then verified with a fixed
//! MAC key), `identifiers`, `replaces` (an RFC 9773 certID), and revokeCert's `certificate`
//! (its serial, certID and public key as a JWK).
//!
//! Properties: a parsed request came from at most 64 KiB and re-parses, from its own parts,
//! to the same header and payload; a JWK's canonical JSON reads back as the same key, with a
//! 43-character thumbprint; verification never panics, and a key that does not fit the `alg`
//! is refused as such; an identifier and a certID read back from their own text.

use keyinfra_pki::acme::jws::MAX_JWS_BYTES;
use keyinfra_pki::acme::{CertId, ExternalAccountBinding, Identifier, Jwk, Jws, JwsError};

/// One public key of each type the verifier takes (RFC 7638's RSA key, RFC 7515's P-256,
/// RFC 8037's Ed25519), so that every request also meets keys it was not signed with.
const FIXED_KEYS: [&str; 3] = [
    r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}"#,
    r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#,
    r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
];

/// The MAC key external account bindings are checked with; the make-seeds EAB seed uses it.
const EAB_KEY: &[u8] = b"keyinfra-fuzz-eab-mac-key-32byte";

fn check_jwk(jwk: &Jwk) {
    let canonical = jwk.to_json();
    assert_eq!(Jwk::from_json_bytes(canonical.as_bytes()).as_ref(), Ok(jwk));
    assert_eq!(jwk.thumbprint().len(), 43);
}

fn main() {
    let fixed: Vec<Jwk> = FIXED_KEYS
        .iter()
        .map(|json| Jwk::from_json_bytes(json.as_bytes()).expect("a fixed key parses"))
        .collect();
    afl::fuzz!(|data: &[u8]| {
        let Ok(jws) = Jws::parse(data) else {
            return;
        };
        assert!(data.len() <= MAX_JWS_BYTES);

        // The same request rebuilt from its parts (base64url needs no JSON escaping).
        let (protected, payload) = jws
            .signing_input()
            .split_once('.')
            .expect("the signing input has its dot");
        let signature = base64url(jws.signature());
        let rebuilt = format!(
            r#"{{"protected":"{protected}","payload":"{payload}","signature":"{signature}"}}"#
        );
        if rebuilt.len() <= MAX_JWS_BYTES {
            let again = Jws::parse(rebuilt.as_bytes()).expect("a parsed request re-parses");
            assert_eq!(again.header(), jws.header());
            assert_eq!(again.payload(), jws.payload());
        }

        if let Some(jwk) = &jws.header().jwk {
            check_jwk(jwk);
            let _ = jws.verify_with_embedded_jwk();
        }
        for key in &fixed {
            let verified = jws.verify(key);
            if !key.fits(jws.header().alg) {
                assert_eq!(verified, Err(JwsError::AlgorithmKeyMismatch));
            }
        }

        // keyChange: the payload is itself a JWS, signed by the new key it carries.
        if let Ok(inner) = Jws::parse(jws.payload())
            && let Some(jwk) = &inner.header().jwk
        {
            check_jwk(jwk);
            let _ = inner.verify_with_embedded_jwk();
        }

        let Ok(payload) = serde_json::from_slice::<serde_json::Value>(jws.payload()) else {
            return;
        };
        if let Some(binding) = payload.get("externalAccountBinding")
            && let Ok(binding) = ExternalAccountBinding::from_json(binding)
        {
            assert!(!binding.kid().is_empty());
            for key in &fixed {
                let _ = binding.verify(EAB_KEY, &jws.header().url, key);
            }
            if let Some(jwk) = &jws.header().jwk {
                let _ = binding.verify(EAB_KEY, &jws.header().url, jwk);
            }
        }
        if let Some(identifiers) = payload.get("identifiers").and_then(|v| v.as_array()) {
            for value in identifiers {
                if let Ok(identifier) = Identifier::from_json(value) {
                    let again = Identifier::parse(identifier.type_name(), &identifier.value());
                    assert_eq!(again.as_ref(), Ok(&identifier));
                }
            }
        }
        if let Some(replaces) = payload.get("replaces").and_then(|v| v.as_str())
            && let Ok(id) = CertId::parse(replaces)
        {
            assert_eq!(id.to_string(), replaces);
        }
        // revokeCert's certificate: its serial finds it, its key may have signed the request.
        if let Some(certificate) = payload.get("certificate").and_then(|v| v.as_str())
            && let Some(der) = base64url_decode(certificate)
        {
            let _ = keyinfra_pki::ca::serial_of_certificate(&der);
            let _ = CertId::from_certificate(&der);
            if let Ok(spki) = keyinfra_pki::ca::public_key_of_certificate(&der)
                && let Ok(key) = Jwk::from_spki_der(&spki)
            {
                check_jwk(&key);
            }
        }
    });
}

/// Decodes base64url without padding (for the payload's members; any failure is None).
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut bits, mut count) = (0u32, 0u32);
    for b in text.bytes() {
        let value = ALPHABET.iter().position(|a| *a == b)? as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// base64url without padding, written here so that the property does not lean on the
/// encoder under test.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}
