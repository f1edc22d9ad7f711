//! The ACME wire layer against the real `openssl` (OpenSSL 3), as a second implementation:
//! requests signed by openssl keys of every supported type verify, an external account
//! binding MACed by `openssl dgst -mac HMAC` verifies, a tls-alpn-01 certificate made by
//! `openssl req -x509` passes the check, and the RFC 9773 certID of an openssl-issued
//! certificate is the one its authority key identifier and serial give.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyinfra_pki::acme::{
    CertId, ExternalAccountBinding, Identifier, Jws, check_tls_alpn01_certificate,
    key_authorization,
};
use serde_json::{Value, json};

fn openssl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An ECDSA-Sig-Value (SEQUENCE of r and s) as JWS's fixed-width r || s.
fn fixed_ecdsa(der: &[u8], width: usize) -> Vec<u8> {
    let mut at = if der[1] & 0x80 != 0 { 3 } else { 2 };
    let mut out = Vec::new();
    for _ in 0..2 {
        assert_eq!(der[at], 0x02);
        let len = usize::from(der[at + 1]);
        let value = &der[at + 2..at + 2 + len];
        let value = &value[value.iter().take_while(|b| **b == 0).count()..];
        out.extend(std::iter::repeat_n(0, width - value.len()));
        out.extend_from_slice(value);
        at += 2 + len;
    }
    out
}

struct OpensslKey {
    alg: &'static str,
    path: String,
}

impl OpensslKey {
    fn generate(dir: &Path, alg: &'static str) -> Self {
        let path = dir.join(format!("{alg}.key")).to_str().unwrap().to_owned();
        let args: &[&str] = match alg {
            "ES256" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            "ES384" => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
            "EdDSA" => &["-algorithm", "ed25519"],
            "RS256" => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            _ => unreachable!(),
        };
        openssl(&[&["genpkey", "-out", &path][..], args].concat(), b"");
        OpensslKey { alg, path }
    }

    fn jwk(&self) -> Value {
        let spki = openssl(
            &["pkey", "-in", &self.path, "-pubout", "-outform", "DER"],
            b"",
        );
        match self.alg {
            "ES256" | "ES384" => {
                let (crv, width) = if self.alg == "ES256" {
                    ("P-256", 32)
                } else {
                    ("P-384", 48)
                };
                let point = &spki[spki.len() - (2 * width + 1)..];
                assert_eq!(point[0], 0x04);
                json!({"kty": "EC", "crv": crv, "x": b64(&point[1..=width]), "y": b64(&point[width + 1..])})
            }
            "EdDSA" => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&spki[spki.len() - 32..])}),
            _ => {
                let text = openssl(&["rsa", "-in", &self.path, "-noout", "-modulus"], b"");
                let hex_modulus = String::from_utf8(text).unwrap();
                let modulus =
                    hex::decode(hex_modulus.trim().trim_start_matches("Modulus=")).unwrap();
                json!({"kty": "RSA", "n": b64(&modulus), "e": "AQAB"})
            }
        }
    }

    fn sign(&self, dir: &Path, message: &[u8]) -> Vec<u8> {
        match self.alg {
            "ES256" => fixed_ecdsa(
                &openssl(&["dgst", "-sha256", "-sign", &self.path], message),
                32,
            ),
            "ES384" => fixed_ecdsa(
                &openssl(&["dgst", "-sha384", "-sign", &self.path], message),
                48,
            ),
            "RS256" => openssl(&["dgst", "-sha256", "-sign", &self.path], message),
            _ => {
                let input = dir.join("message");
                std::fs::write(&input, message).unwrap();
                let input = input.to_str().unwrap();
                openssl(
                    &[
                        "pkeyutl", "-sign", "-inkey", &self.path, "-rawin", "-in", input,
                    ],
                    b"",
                )
            }
        }
    }

    fn request(&self, dir: &Path, header: &Value, payload: &[u8]) -> Vec<u8> {
        let protected = b64(header.to_string().as_bytes());
        let payload = b64(payload);
        let signature = self.sign(dir, format!("{protected}.{payload}").as_bytes());
        json!({"protected": protected, "payload": payload, "signature": b64(&signature)})
            .to_string()
            .into_bytes()
    }
}

const NEW_ACCOUNT: &str = "https://ca.example.net/acme/new-account";

#[test]
fn requests_signed_by_openssl_keys_verify() {
    let dir = tempfile::tempdir().unwrap();
    for alg in ["ES256", "ES384", "EdDSA", "RS256"] {
        let key = OpensslKey::generate(dir.path(), alg);
        let header = json!({"alg": alg, "nonce": "n", "url": NEW_ACCOUNT, "jwk": key.jwk()});
        let body = key.request(dir.path(), &header, br#"{"termsOfServiceAgreed":true}"#);
        let jws = Jws::parse(&body).unwrap();
        jws.verify_with_embedded_jwk().unwrap();

        let mut tampered: Value = serde_json::from_slice(&body).unwrap();
        tampered["payload"] = json!(b64(br#"{"termsOfServiceAgreed":false}"#));
        let jws = Jws::parse(tampered.to_string().as_bytes()).unwrap();
        assert!(jws.verify_with_embedded_jwk().is_err(), "{alg}");
    }
}

#[test]
fn an_external_account_binding_maced_by_openssl_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let key = OpensslKey::generate(dir.path(), "ES256");
    let mac_key = [0x42u8; 32];
    let protected = b64(json!({"alg": "HS256", "kid": "kid-7", "url": NEW_ACCOUNT})
        .to_string()
        .as_bytes());
    let payload = b64(key.jwk().to_string().as_bytes());
    let mac = openssl(
        &[
            "dgst",
            "-sha256",
            "-mac",
            "HMAC",
            "-macopt",
            &format!("hexkey:{}", hex::encode(mac_key)),
            "-binary",
        ],
        format!("{protected}.{payload}").as_bytes(),
    );
    let binding = json!({"protected": protected, "payload": payload, "signature": b64(&mac)});
    let request = key.request(
        dir.path(),
        &json!({"alg": "ES256", "nonce": "n", "url": NEW_ACCOUNT, "jwk": key.jwk()}),
        json!({"externalAccountBinding": binding})
            .to_string()
            .as_bytes(),
    );
    let jws = Jws::parse(&request).unwrap();
    let account_key = jws.verify_with_embedded_jwk().unwrap();
    let payload: Value = serde_json::from_slice(jws.payload()).unwrap();
    let binding = ExternalAccountBinding::from_json(&payload["externalAccountBinding"]).unwrap();
    assert_eq!(binding.kid(), "kid-7");
    binding
        .verify(&mac_key, &jws.header().url, account_key)
        .unwrap();
    assert!(
        binding
            .verify(&[0x43; 32], &jws.header().url, account_key)
            .is_err()
    );
}

#[test]
fn a_tls_alpn_01_certificate_made_by_openssl_passes() {
    let dir = tempfile::tempdir().unwrap();
    let key = OpensslKey::generate(dir.path(), "ES256");
    let account_key =
        keyinfra_pki::acme::Jwk::from_json_bytes(key.jwk().to_string().as_bytes()).unwrap();
    let ka = key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", &account_key);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, ka.as_bytes());
    let extension = format!(
        "1.3.6.1.5.5.7.1.31=critical,DER:04:20:{}",
        hex::encode(digest.as_ref())
    );
    for (san, kind, value) in [
        ("DNS:www.example.net", "dns", "www.example.net"),
        ("IP:2001:db8::1", "ip", "2001:db8::1"),
    ] {
        let der = openssl(
            &[
                "req",
                "-x509",
                "-key",
                &key.path,
                "-subj",
                "/CN=acme",
                "-days",
                "1",
                "-addext",
                &format!("subjectAltName={san}"),
                "-addext",
                &extension,
                "-outform",
                "DER",
            ],
            b"",
        );
        let identifier = Identifier::parse(kind, value).unwrap();
        check_tls_alpn01_certificate(&der, &identifier, &ka).unwrap();
        let other = key_authorization("other-token", &account_key);
        assert!(check_tls_alpn01_certificate(&der, &identifier, &other).is_err());
    }
}

#[test]
fn the_cert_id_of_an_openssl_certificate_is_its_aki_and_serial() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = OpensslKey::generate(dir.path(), "ES256");
    let ca_path = dir.path().join("ca.pem");
    let ca = ca_path.to_str().unwrap();
    openssl(
        &[
            "req",
            "-x509",
            "-key",
            &ca_key.path,
            "-subj",
            "/CN=ARI CA",
            "-days",
            "1",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-out",
            ca,
        ],
        b"",
    );
    let leaf_key = OpensslKey::generate(dir.path(), "EdDSA");
    let csr = openssl(
        &["req", "-new", "-key", &leaf_key.path, "-subj", "/CN=leaf"],
        b"",
    );
    let extensions = dir.path().join("leaf.ext");
    std::fs::write(&extensions, "authorityKeyIdentifier = keyid:always\n").unwrap();
    // A serial with its top bit set: its DER content starts with a 0x00 sign byte.
    let der = openssl(
        &[
            "x509",
            "-req",
            "-CA",
            ca,
            "-CAkey",
            &ca_key.path,
            "-set_serial",
            "0x87654321",
            "-days",
            "1",
            "-extfile",
            extensions.to_str().unwrap(),
            "-outform",
            "DER",
        ],
        &csr,
    );
    let text = String::from_utf8(openssl(
        &[
            "x509",
            "-inform",
            "DER",
            "-noout",
            "-ext",
            "authorityKeyIdentifier",
        ],
        &der,
    ))
    .unwrap();
    // "X509v3 Authority Key Identifier: \n    AB:CD:..." (OpenSSL 3.0 may prefix "keyid:").
    let key_id_hex: String = text
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .trim_start_matches("keyid:")
        .split(':')
        .collect();
    let key_id = hex::decode(key_id_hex).unwrap();
    let expected = format!("{}.{}", b64(&key_id), b64(&[0x00, 0x87, 0x65, 0x43, 0x21]));
    let id = CertId::from_certificate(&der).unwrap();
    assert_eq!(id.to_string(), expected);
    assert_eq!(CertId::parse(&expected).unwrap(), id);
}
