//! Certificate profiles: what a certificate may be used for, as data.
//!
//! A profile fixes the key usages, the extended key usages and the longest validity. The
//! issuing code applies whatever profile it is given; there is no per-profile `if` anywhere
//! else. keyEncipherment is the one rule that depends on the key: it means "RSA key
//! transport" and is only set for RSA keys (RFC 8813 forbids it for ECDSA keys).

/// Key usages (RFC 5280 4.2.1.3) that end-entity profiles use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUsage {
    DigitalSignature,
    KeyEncipherment,
    KeyAgreement,
}

/// Extended key usages (RFC 5280 4.2.1.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtendedKeyUsage {
    ServerAuth,
    ClientAuth,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The API name, e.g. `device`.
    pub name: String,
    pub description: String,
    pub key_usages: Vec<KeyUsage>,
    pub extended_key_usages: Vec<ExtendedKeyUsage>,
    /// The longest validity a request may ask for.
    pub max_validity_days: u32,
    /// Used when a request gives no validity.
    pub default_validity_days: u32,
}

impl Profile {
    /// The key usages for a key of this kind.
    pub fn key_usages_for(&self, algorithm: crate::KeyAlgorithm) -> Vec<KeyUsage> {
        self.key_usages
            .iter()
            .copied()
            .filter(|u| *u != KeyUsage::KeyEncipherment || algorithm.is_rsa())
            .collect()
    }
}

/// The built-in profiles. `max_days` overrides each profile's longest validity (configurable
/// with KEYINFRA_MAX_VALIDITY_DAYS); defaults follow common device practice (about 13 months for
/// TLS servers, longer for device identities that are hard to reach).
pub fn builtin_profiles(max_days: Option<u32>) -> Vec<Profile> {
    let cap = |d: u32| max_days.unwrap_or(d);
    vec![
        Profile {
            name: "device".into(),
            description: "A network device that is both a TLS server and a TLS client (serverAuth + clientAuth)".into(),
            key_usages: vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment],
            extended_key_usages: vec![ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth],
            max_validity_days: cap(825),
            default_validity_days: 365.min(cap(825)),
        },
        Profile {
            name: "server".into(),
            description: "A TLS server (serverAuth)".into(),
            key_usages: vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment],
            extended_key_usages: vec![ExtendedKeyUsage::ServerAuth],
            max_validity_days: cap(398),
            default_validity_days: 365.min(cap(398)),
        },
        Profile {
            name: "client".into(),
            description: "A TLS client, e.g. 802.1X or VPN (clientAuth)".into(),
            key_usages: vec![KeyUsage::DigitalSignature],
            extended_key_usages: vec![ExtendedKeyUsage::ClientAuth],
            max_validity_days: cap(825),
            default_validity_days: 365.min(cap(825)),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyAlgorithm;

    #[test]
    fn key_encipherment_only_for_rsa() {
        let device = &builtin_profiles(None)[0];
        assert_eq!(
            device.key_usages_for(KeyAlgorithm::EcdsaP256),
            vec![KeyUsage::DigitalSignature]
        );
        assert_eq!(
            device.key_usages_for(KeyAlgorithm::Rsa2048),
            vec![KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment]
        );
    }

    #[test]
    fn the_cap_applies_to_every_profile() {
        for p in builtin_profiles(Some(30)) {
            assert_eq!(p.max_validity_days, 30);
            assert!(p.default_validity_days <= 30);
        }
    }
}
