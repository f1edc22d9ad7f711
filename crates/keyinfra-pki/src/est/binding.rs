//! Channel bindings in a CSR's challengePassword (RFC 7030 3.5).
//!
//! A client proves that its CSR was made for this TLS connection by putting the base64
//! (RFC 4648 4) of a channel binding value in the challengePassword. RFC 7030 names
//! tls-unique (RFC 5929: 12 bytes of the first Finished message, TLS 1.2 only), which rustls
//! cannot give; RFC 9266's tls-exporter (32 bytes exported with the label
//! `EXPORTER-Channel-Binding`) replaces it. [`classify_challenge_password`] tells them
//! apart by the decoded length alone; anything else is some other password, which devices
//! do put there, and is not a binding. The exporter value is compared in constant time
//! ([`exporter_matches`]) and never printed.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use subtle::ConstantTimeEq;

/// Length of a tls-exporter channel binding (RFC 9266 2).
pub const TLS_EXPORTER_LEN: usize = 32;
/// Length of a tls-unique channel binding: TLS 1.2's verify_data (RFC 5246 7.4.9).
pub const TLS_UNIQUE_LEN: usize = 12;

/// What a challengePassword holds.
#[derive(Clone)]
pub enum ChannelBinding {
    /// tls-exporter (RFC 9266): compare with the connection's own by [`exporter_matches`].
    TlsExporter([u8; TLS_EXPORTER_LEN]),
    /// tls-unique (RFC 5929), which KeyInfra cannot check (rustls has no Finished data).
    TlsUnique,
    /// Not base64 of 32 or 12 bytes: another kind of password, or nothing meant for us.
    NotABinding,
}

impl std::fmt::Debug for ChannelBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelBinding::TlsExporter(_) => f.write_str("TlsExporter(..)"),
            ChannelBinding::TlsUnique => f.write_str("TlsUnique"),
            ChannelBinding::NotABinding => f.write_str("NotABinding"),
        }
    }
}

/// Standard base64 (RFC 4648 4) that takes input with or without its `=` padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Reads a challengePassword: standard base64 (padded or not, surrounding whitespace
/// trimmed) of exactly 32 bytes is a tls-exporter binding, of exactly 12 bytes a
/// tls-unique one; anything else is not a binding.
///
/// The length is all there is to go by: any other password of 16 base64 letters (or 43 or
/// 44) reads as a binding too. KeyInfra's own challenge secrets (32 letters, 24 bytes) never
/// do.
pub fn classify_challenge_password(text: &str) -> ChannelBinding {
    let text = text.trim();
    // base64 of 32 bytes is 44 characters with padding: anything longer is not a binding.
    if text.len() > TLS_EXPORTER_LEN.div_ceil(3) * 4 {
        return ChannelBinding::NotABinding;
    }
    let Ok(bytes) = LENIENT.decode(text) else {
        return ChannelBinding::NotABinding;
    };
    match bytes.len() {
        TLS_UNIQUE_LEN => ChannelBinding::TlsUnique,
        TLS_EXPORTER_LEN => {
            let mut value = [0u8; TLS_EXPORTER_LEN];
            value.copy_from_slice(&bytes);
            ChannelBinding::TlsExporter(value)
        }
        _ => ChannelBinding::NotABinding,
    }
}

/// Whether a presented tls-exporter value equals the session's, in constant time.
pub fn exporter_matches(
    presented: &[u8; TLS_EXPORTER_LEN],
    session: &[u8; TLS_EXPORTER_LEN],
) -> bool {
    presented[..].ct_eq(&session[..]).into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

    use super::*;

    /// 32 bytes whose base64 has '+' and '/' in it, and whose last byte forces padding.
    fn exporter() -> [u8; 32] {
        let mut value = [0u8; 32];
        for (i, byte) in value.iter_mut().enumerate() {
            *byte = 0xF8 ^ (i as u8).wrapping_mul(37);
        }
        value
    }

    fn exporter_of(text: &str) -> Option<[u8; 32]> {
        match classify_challenge_password(text) {
            ChannelBinding::TlsExporter(value) => Some(value),
            _ => None,
        }
    }

    #[test]
    fn base64_of_32_bytes_is_a_tls_exporter_binding() {
        let value = exporter();
        let padded = STANDARD.encode(value);
        assert!(padded.ends_with('=') && padded.contains(['+', '/']));
        assert_eq!(exporter_of(&padded), Some(value));
        assert_eq!(exporter_of(padded.trim_end_matches('=')), Some(value));
        assert_eq!(exporter_of(&format!(" \t{padded}\r\n")), Some(value));
    }

    #[test]
    fn base64_of_12_bytes_is_tls_unique() {
        let text = STANDARD.encode([0xA5u8; 12]);
        assert_eq!(text.len(), 16);
        assert!(matches!(
            classify_challenge_password(&text),
            ChannelBinding::TlsUnique
        ));
        assert!(matches!(
            classify_challenge_password(&format!("  {text}\n")),
            ChannelBinding::TlsUnique
        ));
    }

    #[test]
    fn other_lengths_and_other_text_are_not_bindings() {
        let value = exporter();
        let mut not = vec![
            String::new(),
            "   ".to_owned(),
            STANDARD.encode(&value[..31]),
            STANDARD.encode([value.as_slice(), &[1]].concat()),
            STANDARD.encode([0u8; 11]),
            STANDARD.encode([0u8; 13]),
            STANDARD.encode([0u8; 64]),
            // A KeyInfra challenge secret: 32 characters, base64 of 24 bytes.
            "7kqmx2rp9vdz4htn6wbj3fcs8yga5eu2".to_owned(),
            "s3cret challenge".to_owned(),
            // The URL-safe alphabet is not RFC 4648 4's.
            URL_SAFE_NO_PAD.encode(value),
        ];
        // Whitespace inside the value is not trimmed away.
        let padded = STANDARD.encode(value);
        not.push(format!("{} {}", &padded[..20], &padded[20..]));
        assert!(URL_SAFE_NO_PAD.encode(value).contains(['-', '_']));
        for text in not {
            assert!(
                matches!(
                    classify_challenge_password(&text),
                    ChannelBinding::NotABinding
                ),
                "{text:?}"
            );
        }
    }

    #[test]
    fn exporter_values_match_only_when_every_byte_is_equal() {
        let value = exporter();
        assert!(exporter_matches(&value, &value.clone()));
        for i in 0..32 {
            let mut other = value;
            other[i] ^= 0x01;
            assert!(!exporter_matches(&other, &value), "byte {i}");
            assert!(!exporter_matches(&value, &other), "byte {i}");
        }
    }

    #[test]
    fn debug_never_shows_the_exporter_value() {
        let value = [0xABu8; 32];
        let shown = format!("{:?}", ChannelBinding::TlsExporter(value));
        assert_eq!(shown, "TlsExporter(..)");
        let pretty = format!("{:#?}", ChannelBinding::TlsExporter(value));
        assert!(!pretty.contains("171") && !pretty.to_lowercase().contains("ab"));
        assert_eq!(format!("{:?}", ChannelBinding::TlsUnique), "TlsUnique");
    }
}
