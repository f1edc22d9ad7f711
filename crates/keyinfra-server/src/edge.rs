//! What applies at the edge, before a handler runs: who the client is (trusted proxies),
//! how long a client may take to send its body, and who may read `/metrics`. Kept together
//! so that every listener applies the same ones.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::HeaderMap;
use ipnet::IpNet;
use keyinfra_core::ErrorCode;

/// A client that has not sent its whole body by then gets 408 (a stalled upload would
/// otherwise hold its connection and task for ever).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// `KEYINFRA_TRUSTED_PROXIES`, `KEYINFRA_BODY_TIMEOUT` and `KEYINFRA_METRICS_TOKEN`, as
/// `serve` read them.
#[derive(Clone)]
pub struct EdgeSettings {
    /// Proxies whose `X-Forwarded-For` is believed. Empty: the socket's address is the
    /// client's, and the header is ignored (anyone can send it).
    pub trusted_proxies: Vec<IpNet>,
    /// A dedicated bearer token for Prometheus on `GET /metrics`; an ADMIN's access token
    /// works too. Compared in constant time.
    pub metrics_token: Option<zeroize::Zeroizing<String>>,
    /// The deadline for a request's whole body, from when its headers arrived.
    pub body_timeout: Duration,
    /// SCEP PKIOperations one client address may send a minute (as a burst, refilled
    /// evenly); `None`: no limit. Each costs an RSA decryption and signature before the
    /// server knows whether the device holds a challenge.
    pub scep_per_minute: Option<u32>,
    /// EST requests one client address may send a minute (as a burst, refilled evenly);
    /// `None`: no limit. Checked before the body is read or a password hashed.
    pub est_per_minute: Option<u32>,
    /// ACME requests one client address may send a minute (as a burst, refilled evenly);
    /// `None`: no limit. Checked before the body is read or a signature verified.
    pub acme_per_minute: Option<u32>,
}

/// `KEYINFRA_SCEP_RATE`'s default: 5 a second from one address, sustained. A device
/// enrolling, or strongSwan polling every second, uses a fraction of it; a site of devices
/// behind one NAT address renewing at once is the case to raise it for.
pub const DEFAULT_SCEP_PER_MINUTE: u32 = 300;

/// `KEYINFRA_EST_RATE`'s default, SCEP's: EST's enrollments cost a signature and, with a
/// password, an Argon2id check, before the server knows the client may have anything.
pub const DEFAULT_EST_PER_MINUTE: u32 = 300;

/// `KEYINFRA_ACME_RATE`'s default: an ACME client makes about ten requests an order (nonce,
/// order, authorizations, challenge, polls, finalize, download), and a signed request costs
/// a signature check (RSA up to 8,192 bits) before anything is known about its account.
pub const DEFAULT_ACME_PER_MINUTE: u32 = 600;

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            metrics_token: None,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            scep_per_minute: Some(DEFAULT_SCEP_PER_MINUTE),
            est_per_minute: Some(DEFAULT_EST_PER_MINUTE),
            acme_per_minute: Some(DEFAULT_ACME_PER_MINUTE),
        }
    }
}

impl std::fmt::Debug for EdgeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeSettings")
            .field("trusted_proxies", &self.trusted_proxies)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "(set)"),
            )
            .field("body_timeout", &self.body_timeout)
            .field("scep_per_minute", &self.scep_per_minute)
            .field("est_per_minute", &self.est_per_minute)
            .field("acme_per_minute", &self.acme_per_minute)
            .finish()
    }
}

impl EdgeSettings {
    fn trusted(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.trusted_proxies
            .iter()
            .any(|net| net.contains(&address))
    }

    /// The client's address: the socket's peer, unless that is a trusted proxy; then the
    /// nearest address in `X-Forwarded-For` (read from the right, the end the proxies
    /// append to) that is not itself a trusted proxy. Entries left of it are the client's
    /// own claims and are never believed. An unreadable entry stops the walk at the last
    /// trusted hop, so a garbled header cannot pick an address.
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusted(peer) {
            return peer;
        }
        let mut client = peer;
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .collect();
        for entry in entries.iter().rev() {
            let Ok(address) = entry.trim().parse::<IpAddr>() else {
                break;
            };
            client = address.to_canonical();
            if !self.trusted(client) {
                break;
            }
        }
        client
    }

    /// Whether `presented` is the metrics token (constant time; false when none is set).
    pub fn is_metrics_token(&self, presented: &str) -> bool {
        self.metrics_token.as_ref().is_some_and(|token| {
            aws_lc_rs::constant_time::verify_slices_are_equal(
                token.as_bytes(),
                presented.as_bytes(),
            )
            .is_ok()
        })
    }
}

/// Parses `KEYINFRA_TRUSTED_PROXIES`: CIDRs or single addresses, separated by commas.
pub fn parse_trusted_proxies(text: &str) -> Result<Vec<IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| {
                    format!("{item:?} is not an address or CIDR (e.g. 10.0.0.0/8, 192.0.2.1, ::1)")
                })
        })
        .collect()
}

/// Reads the whole request body within [`EdgeSettings::body_timeout`] before any handler
/// runs: 408 when the client stalls, 413 past [`BODY_LIMIT`](crate::BODY_LIMIT). Every body
/// we accept is small and every handler reads it whole anyway, so reading it here costs no
/// memory and gives one deadline for all of it, however slowly the bytes trickle.
pub async fn read_body_in_time(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        state.edge.body_timeout,
        axum::body::to_bytes(body, crate::BODY_LIMIT),
    )
    .await;
    match read {
        Ok(Ok(bytes)) => {
            next.run(axum::extract::Request::from_parts(parts, bytes.into()))
                .await
        }
        Ok(Err(error)) => {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
            if too_large && parts.uri.path() == "/ocsp" {
                // OCSP clients read only OCSP responses: their errors are OCSP statuses.
                crate::protocols::ocsp::too_large()
            } else if too_large {
                crate::Problem::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::BodyTooLarge,
                    format!(
                        "the request body is larger than {} bytes",
                        crate::BODY_LIMIT
                    ),
                )
                .into_response()
            } else {
                crate::Problem::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    ErrorCode::UnreadableBody,
                    "the request body could not be read",
                )
                .into_response()
            }
        }
        Err(_) => {
            metrics::counter!("keyinfra_http_body_timeouts_total").increment(1);
            let mut response = crate::Problem::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                ErrorCode::BodyTimeout,
                format!(
                    "the request body did not arrive within {} s",
                    state.edge.body_timeout.as_secs()
                ),
            )
            .into_response();
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", v.parse().unwrap());
        }
        map
    }

    #[test]
    fn forwarded_for_is_read_only_from_a_trusted_proxy() {
        let none = EdgeSettings::default();
        let peer: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(none.client_address(peer, &headers(&["203.0.113.1"])), peer);

        let settings = EdgeSettings {
            trusted_proxies: parse_trusted_proxies("10.0.0.0/8, 192.0.2.1").unwrap(),
            ..EdgeSettings::default()
        };
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        // The client's own claim (left) is skipped; the proxies' entries are walked.
        assert_eq!(
            settings.client_address(proxy, &headers(&["1.1.1.1, 203.0.113.9", "192.0.2.1"])),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // An untrusted peer's header is ignored.
        assert_eq!(
            settings.client_address(peer, &headers(&["203.0.113.9"])),
            peer
        );
        // Garbage stops at the last trusted hop; no header means the proxy itself.
        assert_eq!(
            settings.client_address(proxy, &headers(&["nonsense"])),
            proxy
        );
        assert_eq!(settings.client_address(proxy, &HeaderMap::new()), proxy);
        // IPv4-mapped IPv6 peers match IPv4 ranges.
        let mapped: IpAddr = "::ffff:10.0.0.5".parse().unwrap();
        assert_eq!(
            settings.client_address(mapped, &headers(&["2001:db8::1"])),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn bad_proxy_lists_are_refused_with_the_item() {
        assert!(
            parse_trusted_proxies("10.0.0.0/33")
                .unwrap_err()
                .contains("10.0.0.0/33")
        );
        assert!(parse_trusted_proxies("proxy.example").is_err());
        assert_eq!(parse_trusted_proxies(" ").unwrap(), vec![]);
    }

    #[test]
    fn the_metrics_token_must_match_exactly() {
        let settings = EdgeSettings {
            metrics_token: Some(zeroize::Zeroizing::new("s3cret-scrape-token".into())),
            ..EdgeSettings::default()
        };
        assert!(settings.is_metrics_token("s3cret-scrape-token"));
        assert!(!settings.is_metrics_token("s3cret-scrape-toke"));
        assert!(!EdgeSettings::default().is_metrics_token(""));
    }
}
