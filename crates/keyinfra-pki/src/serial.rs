//! Certificate serial numbers (RFC 5280 4.1.2.2): positive, at most 20 octets, unique per CA.

use std::fmt;

use crate::{PkiError, RandomSource};

/// A certificate serial number in canonical form: the big-endian bytes of a positive
/// integer, without leading zero bytes. Its text form is uppercase hex, two digits per
/// byte, which is what `openssl x509 -serial` prints and what the database stores.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SerialNumber(Vec<u8>);

impl SerialNumber {
    /// Random bytes drawn per serial. With the top bit cleared (so the DER INTEGER needs no
    /// sign byte) that leaves 127 bits of entropy, well above the 64 the CA/B Forum asks for,
    /// in 16 octets, under RFC 5280's 20.
    pub const RANDOM_BYTES: usize = 16;

    /// Draws a fresh serial from a CSPRNG. Collisions are astronomically rare; the database
    /// detects them and the caller retries.
    pub fn random(rng: &mut dyn RandomSource) -> Result<Self, PkiError> {
        let mut bytes = [0u8; Self::RANDOM_BYTES];
        rng.fill(&mut bytes)?;
        bytes[0] &= 0x7f;
        Self::from_bytes(&bytes)
    }

    /// From big-endian magnitude bytes; leading zero bytes are dropped.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PkiError> {
        let first = bytes.iter().position(|b| *b != 0);
        let Some(first) = first else {
            return Err(PkiError::InvalidSerialNumber("must be positive"));
        };
        let magnitude = &bytes[first..];
        // RFC 5280 counts the DER content octets, which need a 0x00 prefix when the top bit
        // is set.
        let der_len = magnitude.len() + usize::from(magnitude[0] & 0x80 != 0);
        if der_len > 20 {
            return Err(PkiError::InvalidSerialNumber("longer than 20 octets"));
        }
        Ok(Self(magnitude.to_vec()))
    }

    /// Parses hex as people paste it: any case, with or without `:` or space separators.
    pub fn from_hex(text: &str) -> Result<Self, PkiError> {
        let digits: String = text.chars().filter(|c| *c != ':' && *c != ' ').collect();
        if digits.is_empty() || digits.len() > 42 {
            return Err(PkiError::InvalidSerialNumber(
                "expected 1 to 20 bytes of hex",
            ));
        }
        let padded = if digits.len() % 2 == 1 {
            format!("0{digits}")
        } else {
            digits
        };
        let bytes = hex::decode(padded).map_err(|_| PkiError::InvalidSerialNumber("not hex"))?;
        Self::from_bytes(&bytes)
    }

    /// The canonical text form: uppercase hex, no separators.
    pub fn to_hex(&self) -> String {
        hex::encode_upper(&self.0)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SerialNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SerialNumber({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(u8);
    impl RandomSource for Fixed {
        fn fill(&mut self, dest: &mut [u8]) -> Result<(), PkiError> {
            dest.fill(self.0);
            Ok(())
        }
    }

    #[test]
    fn random_serial_is_positive_and_fits_without_sign_byte() {
        let serial = SerialNumber::random(&mut Fixed(0xff)).unwrap();
        assert_eq!(serial.as_bytes().len(), 16);
        assert_eq!(serial.as_bytes()[0], 0x7f);
        assert_eq!(serial.to_hex(), format!("7F{}", "FF".repeat(15)));
    }

    #[test]
    fn all_zero_randomness_is_refused() {
        assert!(SerialNumber::random(&mut Fixed(0)).is_err());
    }

    #[test]
    fn hex_is_canonicalised() {
        let s = SerialNumber::from_hex("00:0a:1b:2C").unwrap();
        assert_eq!(s.to_hex(), "0A1B2C");
        assert_eq!(SerialNumber::from_hex("a1b2c").unwrap().to_hex(), "0A1B2C");
        assert_eq!(SerialNumber::from_hex("0A 1B 2C").unwrap(), s);
    }

    #[test]
    fn bad_hex_is_refused() {
        for bad in [
            "",
            "00",
            "xyz",
            "0g",
            &"AB".repeat(21),
            &format!("80{}", "00".repeat(19)),
        ] {
            assert!(SerialNumber::from_hex(bad).is_err(), "{bad} accepted");
        }
        // 20 octets with the top bit clear is the longest allowed.
        assert!(SerialNumber::from_hex(&format!("7F{}", "00".repeat(19))).is_ok());
    }
}
