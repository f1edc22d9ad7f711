//! `serve`'s TLS settings: the certificate files, and the names of the certificate issued
//! by our own CA with `--tls auto`. The rustls configuration, issuing and renewing that
//! certificate live in `keyinfra_server::tls`, where the tests' servers use them too.
//!
//! With `--tls auto` the server makes an ECDSA P-256 key in memory, sends a CSR for it
//! through the same use case as the API (`Authority::issue` as the operator, profile
//! `server`), so the certificate is recorded and audited like any other, and the key is
//! never stored. Each start issues a new one (the key died with the previous process); the
//! old ones stay in the inventory until they expire. Once two thirds of its lifetime have
//! passed a new one is issued and swapped in without a restart: new handshakes get it.

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::Context;
use keyinfra_pki::names::SubjectAltName;
use rustls::sign::CertifiedKey;

/// `--tls-cert` and `--tls-key`, read and checked to belong together. Errors name the file
/// and the flag, never the contents.
pub fn load_files(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain = std::fs::read(cert).with_context(|| {
        format!(
            "cannot read the TLS certificate chain {} (--tls-cert / KEYINFRA_TLS_CERT)",
            cert.display()
        )
    })?;
    let key_pem = zeroize::Zeroizing::new(std::fs::read(key).with_context(|| {
        format!(
            "cannot read the TLS private key {} (--tls-key / KEYINFRA_TLS_KEY)",
            key.display()
        )
    })?);
    keyinfra_pki::tls::certified_key_from_pem(&chain, &key_pem).map_err(|(in_chain, e)| {
        if in_chain {
            anyhow::anyhow!(
                "the TLS certificate chain {} (--tls-cert / KEYINFRA_TLS_CERT) is unusable: {e}",
                cert.display()
            )
        } else {
            anyhow::anyhow!(
                "the TLS private key {} (--tls-key / KEYINFRA_TLS_KEY) is unusable: {e}",
                key.display()
            )
        }
    })
}

/// The names of the server's own certificate: `--tls-names` first (the first is the CN),
/// then the listen address (unless it is a wildcard), localhost and 127.0.0.1.
/// The names a USER may not get in a certificate: the server's own (`--tls-names`, the
/// listen address; localhost and the loopback addresses are always added), whether or not
/// this server serves TLS now, so that a certificate for them cannot be obtained to
/// impersonate it later.
pub fn reserved_names(
    listen: IpAddr,
    extra: &[String],
) -> anyhow::Result<keyinfra_core::policy::names::ReservedNames> {
    let names = own_names(listen, extra)?;
    let dns = names.iter().filter_map(|n| match n {
        SubjectAltName::Dns(name) => Some(name.clone()),
        _ => None,
    });
    let ips = names.iter().filter_map(|n| match n {
        SubjectAltName::Ip(ip) => Some(*ip),
        _ => None,
    });
    Ok(keyinfra_core::policy::names::ReservedNames::new(
        dns.collect::<Vec<_>>(),
        ips.collect::<Vec<_>>(),
    ))
}

pub fn own_names(listen: IpAddr, extra: &[String]) -> anyhow::Result<Vec<SubjectAltName>> {
    let mut names = Vec::new();
    for name in extra.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let san = SubjectAltName::parse(name).map_err(|e| {
            anyhow::anyhow!("KEYINFRA_TLS_NAMES (--tls-names) has an invalid name {name:?}: {e}")
        })?;
        // A TLS server is reached by host name or address; e-mail and URI SANs have no place.
        if matches!(san, SubjectAltName::Email(_) | SubjectAltName::Uri(_)) {
            anyhow::bail!(
                "KEYINFRA_TLS_NAMES (--tls-names) takes DNS names and IP addresses, not {name:?}"
            );
        }
        names.push(san);
    }
    if !listen.is_unspecified() {
        names.push(SubjectAltName::Ip(listen));
    }
    names.push(SubjectAltName::Dns("localhost".to_owned()));
    names.push(SubjectAltName::Ip(IpAddr::from([127, 0, 0, 1])));
    let mut unique = Vec::with_capacity(names.len());
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    if unique.len() > keyinfra_pki::names::MAX_SANS {
        anyhow::bail!("KEYINFRA_TLS_NAMES (--tls-names) names too many hosts");
    }
    Ok(unique)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_start_with_the_given_ones_and_have_no_duplicates() {
        let names = own_names(
            "192.0.2.7".parse().unwrap(),
            &["ca.example.net".into(), "127.0.0.1".into()],
        )
        .unwrap();
        let tagged: Vec<_> = names.iter().map(SubjectAltName::to_tagged).collect();
        assert_eq!(
            tagged,
            [
                "DNS:ca.example.net",
                "IP:127.0.0.1",
                "IP:192.0.2.7",
                "DNS:localhost"
            ]
        );
        let wildcard = own_names("0.0.0.0".parse().unwrap(), &[]).unwrap();
        assert_eq!(wildcard.len(), 2);
        assert!(own_names("127.0.0.1".parse().unwrap(), &["bad name".into()]).is_err());
        for not_a_host in ["EMAIL:noc@example.net", "URI:https://ca.example.net/"] {
            let err = own_names("127.0.0.1".parse().unwrap(), &[not_a_host.into()]).unwrap_err();
            assert!(
                err.to_string().contains("DNS names and IP addresses"),
                "{err}"
            );
        }
    }
}
