//! `serve`'s listeners: where it listens, with or without TLS, and how it stops.
//!
//! The defaults fit together so that the CRL and CA-certificate URLs inside certificates
//! (KEYINFRA_PUBLIC_URL) always point at plain HTTP, which is how clients fetch them:
//!
//! | settings                  | API on                     | CRLs and CA certificates on |
//! |---------------------------|----------------------------|-----------------------------|
//! | default (no TLS)          | http://127.0.0.1:8080      | the same                    |
//! | `--tls auto` or files     | https://127.0.0.1:8443     | http://127.0.0.1:8080 only  |
//!
//! With TLS the plain listener (`--http-listen`, default: the `--listen` address with port
//! 8080) serves the app's public router (`App::public_router`: `/ca/...` and `/crl/...`);
//! everything else is a 404 problem. Plain HTTP for the whole API is allowed on loopback
//! only, unless `--insecure-http` says otherwise.
//!
//! This module plans and binds the listeners and sets up TLS; the accept loop itself
//! (HTTP/1.1, the connection cap, the head limit, the drain) is `keyinfra_server::accept`,
//! which the tests' servers run too.
//!
//! Shutdown (SIGTERM/SIGINT): the listeners close, every connection finishes the request it
//! is serving (idle keep-alive connections close at once), and whatever is still running
//! after `--shutdown-timeout` is dropped. The caller then stops background jobs, closes the
//! pool and stops the embedded PostgreSQL.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use keyinfra_pki::names::SubjectAltName;
use keyinfra_server::tls::{ServerCertificate, TlsServer, issue_own, keep_renewed};
use keyinfra_server::{App, Limits, Listeners};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;

use crate::ca_commands::DEFAULT_PUBLIC_URL;
use crate::cli::{ListenArgs, TlsMode};
use crate::tls::own_names;

/// The plain-HTTP port: the whole server without TLS, CRLs and CA certificates with it.
const PLAIN_PORT: u16 = 8080;
/// The HTTPS port when TLS is on and `--listen` is not given.
const TLS_PORT: u16 = 8443;

/// Where the server's certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// `--tls-cert` / `--tls-key`, loaded and checked before anything starts.
    Files(Arc<CertifiedKey>),
    /// `--tls auto`: issued from our CA at start, for these names.
    Auto(Vec<SubjectAltName>),
}

/// The listeners `serve` opens, checked before anything starts.
#[derive(Debug, Clone)]
pub struct Plan {
    pub listen: SocketAddr,
    pub tls: Option<TlsSource>,
    /// The plain listener for CRLs and CA certificates; only with TLS.
    pub http_listen: Option<SocketAddr>,
    pub shutdown_timeout: Duration,
    /// `--metrics-listen`: /metrics without credentials, for a monitoring network.
    pub metrics_listen: Option<SocketAddr>,
    /// Client connections open at once over every listener; more get 503 and are closed.
    pub max_connections: usize,
    /// Largest request head in bytes (431 above it).
    pub max_header_bytes: usize,
    /// Trusted proxies, the body deadline and the metrics token, for the router.
    pub edge: keyinfra_server::edge::EdgeSettings,
    /// The first `--tls-names` entry, for [`Plan::default_public_url`].
    first_name: Option<SubjectAltName>,
}

impl Plan {
    pub fn new(args: &ListenArgs) -> anyhow::Result<Self> {
        let files = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => anyhow::bail!(
                "--tls-cert (KEYINFRA_TLS_CERT) needs --tls-key (KEYINFRA_TLS_KEY) too"
            ),
            (None, Some(_)) => anyhow::bail!(
                "--tls-key (KEYINFRA_TLS_KEY) needs --tls-cert (KEYINFRA_TLS_CERT) too"
            ),
        };
        let auto = match (args.tls, files.is_some()) {
            (Some(TlsMode::Auto), true) => anyhow::bail!(
                "--tls auto (KEYINFRA_TLS) and --tls-cert/--tls-key (KEYINFRA_TLS_CERT/KEYINFRA_TLS_KEY) exclude each other; give one"
            ),
            (Some(TlsMode::Off), true) => anyhow::bail!(
                "--tls off (KEYINFRA_TLS) contradicts --tls-cert/--tls-key (KEYINFRA_TLS_CERT/KEYINFRA_TLS_KEY)"
            ),
            (mode, _) => mode == Some(TlsMode::Auto),
        };
        let with_tls = auto || files.is_some();
        if !auto && !args.tls_names.is_empty() {
            anyhow::bail!("--tls-names (KEYINFRA_TLS_NAMES) only applies to --tls auto");
        }
        if !with_tls && args.http_listen.is_some() {
            anyhow::bail!(
                "--http-listen (KEYINFRA_HTTP_LISTEN) only applies with TLS; without it --listen serves everything over plain HTTP"
            );
        }
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let listen = args.listen.unwrap_or(SocketAddr::new(
            loopback,
            if with_tls { TLS_PORT } else { PLAIN_PORT },
        ));
        if !with_tls && !listen.ip().is_loopback() && !args.insecure_http {
            anyhow::bail!(
                "refusing to serve plain HTTP on {listen}, which is not a loopback address: turn TLS on (--tls auto, or --tls-cert and --tls-key) or allow plain HTTP with --insecure-http (KEYINFRA_INSECURE_HTTP=true), e.g. behind a TLS-terminating proxy"
            );
        }
        let http_listen = with_tls.then(|| {
            args.http_listen
                .unwrap_or(SocketAddr::new(listen.ip(), PLAIN_PORT))
        });
        // (Port 0 lets the system choose a free port for each.)
        if http_listen == Some(listen) && listen.port() != 0 {
            anyhow::bail!(
                "the plain-HTTP listener for CRLs (--http-listen / KEYINFRA_HTTP_LISTEN, default port {PLAIN_PORT}) and the HTTPS listener (--listen) are both {listen}; give them different addresses"
            );
        }
        let tls = match files {
            Some((cert, key)) => Some(TlsSource::Files(crate::tls::load_files(cert, key)?)),
            None if auto => Some(TlsSource::Auto(own_names(listen.ip(), &args.tls_names)?)),
            None => None,
        };
        let first_name = match &tls {
            Some(TlsSource::Auto(names)) if !args.tls_names.is_empty() => names.first().cloned(),
            _ => None,
        };
        let edge = keyinfra_server::edge::EdgeSettings {
            trusted_proxies: keyinfra_server::edge::parse_trusted_proxies(&args.trusted_proxies)
                .map_err(|e| {
                    anyhow::anyhow!("KEYINFRA_TRUSTED_PROXIES (--trusted-proxies): {e}")
                })?,
            metrics_token: metrics_token(args)?,
            body_timeout: args.body_timeout,
            scep_per_minute: (args.scep_rate > 0).then_some(args.scep_rate),
            est_per_minute: (args.est_rate > 0).then_some(args.est_rate),
            acme_per_minute: (args.acme_rate > 0).then_some(args.acme_rate),
        };
        if args
            .metrics_listen
            .is_some_and(|m| m == listen || Some(m) == http_listen)
        {
            anyhow::bail!(
                "--metrics-listen (KEYINFRA_METRICS_LISTEN) must differ from the other listeners' addresses"
            );
        }
        Ok(Self {
            listen,
            tls,
            http_listen,
            shutdown_timeout: args.shutdown_timeout,
            metrics_listen: args.metrics_listen,
            max_connections: args.max_connections as usize,
            max_header_bytes: args.max_header_bytes as usize,
            edge,
            first_name,
        })
    }

    /// KEYINFRA_PUBLIC_URL when it is not set: the plain listener's URL. The first name the
    /// certificate is issued for is also where its CRL is, when the listener itself has no
    /// single address.
    pub fn default_public_url(&self) -> String {
        public_url_for(
            self.http_listen.unwrap_or(self.listen),
            self.first_name.as_ref(),
        )
    }
}

/// `KEYINFRA_METRICS_TOKEN` (the token itself) or `--metrics-token-file`; at least 16
/// characters, so that it cannot be guessed.
fn metrics_token(args: &ListenArgs) -> anyhow::Result<Option<zeroize::Zeroizing<String>>> {
    let token = match (
        crate::secrets::from_environment("KEYINFRA_METRICS_TOKEN"),
        &args.metrics_token_file,
    ) {
        (Some(_), Some(_)) => anyhow::bail!(
            "KEYINFRA_METRICS_TOKEN and --metrics-token-file (KEYINFRA_METRICS_TOKEN_FILE) exclude each other; give one"
        ),
        (Some(token), None) => token,
        (None, Some(path)) => {
            let text =
                zeroize::Zeroizing::new(std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read {} (--metrics-token-file)", path.display())
                })?);
            zeroize::Zeroizing::new(text.trim_end_matches(['\r', '\n']).to_owned())
        }
        (None, None) => return Ok(None),
    };
    if token.chars().count() < 16 || token.chars().any(char::is_whitespace) {
        anyhow::bail!(
            "the metrics token (KEYINFRA_METRICS_TOKEN / --metrics-token-file) must have at least 16 characters and no blanks"
        );
    }
    Ok(Some(token))
}

/// `http://` + the plain listener's address, or the first `--tls-names` entry when it
/// listens on a wildcard address. Port 0 (chosen by the system, as in tests) and a wildcard
/// with no name cannot be known here: then the CLI's default, with a warning.
fn public_url_for(plain: SocketAddr, name: Option<&SubjectAltName>) -> String {
    let url = match (plain.ip().is_unspecified(), name) {
        _ if plain.port() == 0 => None,
        (false, _) => Some(format!("http://{plain}")),
        (true, Some(SubjectAltName::Dns(host))) => Some(format!("http://{host}:{}", plain.port())),
        (true, Some(SubjectAltName::Ip(ip))) => {
            Some(format!("http://{}", SocketAddr::new(*ip, plain.port())))
        }
        (true, None | Some(SubjectAltName::Email(_) | SubjectAltName::Uri(_))) => None,
    };
    url.unwrap_or_else(|| {
        if plain.port() != 0 {
            tracing::warn!(
                "KEYINFRA_PUBLIC_URL is not set and the plain-HTTP listener {plain} has no single address: certificates will name {DEFAULT_PUBLIC_URL} for their CRL and CA certificate, which devices cannot reach; set KEYINFRA_PUBLIC_URL (--public-url)"
            );
        }
        DEFAULT_PUBLIC_URL.to_owned()
    })
}

async fn bind(address: SocketAddr, setting: &str) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} ({setting})"))?;
    let bound = listener
        .local_addr()
        .context("the listening socket has no address")?;
    Ok((listener, bound))
}

/// Serves `app` as `plan` says until `shutdown` completes, then drains the connections
/// (see the module documentation). With `--tls auto`, the server's certificate is issued
/// before the port opens and renewed while it runs.
pub async fn serve(
    plan: &Plan,
    app: &App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = app.state();
    let (stop_renewal, renewal_stopped) = tokio::sync::watch::channel(false);
    let mut renewal = None;
    let acceptor = match &plan.tls {
        None => None,
        Some(TlsSource::Files(key)) => {
            let serving = Arc::new(ServerCertificate::new(Arc::clone(key)));
            Some(Arc::new(TlsServer::new(serving)?))
        }
        Some(TlsSource::Auto(names)) => {
            let own = issue_own(&state.authority, &state.db, names).await?;
            let serving = Arc::new(ServerCertificate::new(Arc::clone(&own.key)));
            renewal = Some(tokio::spawn(keep_renewed(
                Arc::clone(&serving),
                Arc::clone(&state.authority),
                Arc::clone(&state.clock),
                state.db.clone(),
                names.clone(),
                own,
                renewal_stopped,
            )));
            Some(Arc::new(TlsServer::new(serving)?))
        }
    };

    let (main, main_address) = bind(plan.listen, "--listen / KEYINFRA_LISTEN").await?;
    let plain = match plan.http_listen {
        Some(address) => Some(bind(address, "--http-listen / KEYINFRA_HTTP_LISTEN").await?),
        None => None,
    };
    let metrics = match plan.metrics_listen {
        Some(address) => Some(bind(address, "--metrics-listen / KEYINFRA_METRICS_LISTEN").await?),
        None => None,
    };
    if let Some((_, address)) = &metrics {
        tracing::info!("serving /metrics (only, without credentials) on http://{address}");
    }
    if let Some((_, address)) = &plain {
        tracing::info!("serving CRLs and CA certificates (only) on http://{address}");
    }
    if acceptor.is_some() {
        tracing::info!("listening on https://{main_address}");
    } else {
        if !main_address.ip().is_loopback() {
            tracing::warn!(
                "serving plain HTTP on {main_address}, which is not a loopback address (--insecure-http): passwords and tokens cross the network unencrypted unless a proxy terminates TLS"
            );
        }
        tracing::info!("listening on http://{main_address}");
    }

    // The plain listener gets the app's public router: CA certificates and CRLs only.
    let listeners = Listeners {
        main,
        tls: acceptor,
        public: plain.map(|(listener, _)| listener),
        metrics: metrics.map(|(listener, _)| listener),
    };
    let limits = Limits {
        max_connections: plan.max_connections,
        max_header_bytes: plan.max_header_bytes,
        shutdown_timeout: plan.shutdown_timeout,
    };
    app.serve(listeners, limits, shutdown).await;
    if let Some(task) = renewal {
        let _ = stop_renewal.send(true);
        let _ = task.await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn plan(args: &[&str]) -> anyhow::Result<Plan> {
        #[derive(Debug, Parser)]
        struct Wrapper {
            #[command(flatten)]
            net: ListenArgs,
        }
        let mut all = vec!["serve"];
        all.extend_from_slice(args);
        Plan::new(&Wrapper::try_parse_from(all).unwrap().net)
    }

    #[test]
    fn defaults_put_crls_on_plain_http_port_8080() {
        let p = plan(&[]).unwrap();
        assert_eq!(p.listen.to_string(), "127.0.0.1:8080");
        assert!(p.tls.is_none() && p.http_listen.is_none());
        assert_eq!(p.default_public_url(), "http://127.0.0.1:8080");

        let p = plan(&["--tls", "auto"]).unwrap();
        assert_eq!(p.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(p.http_listen.unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!(p.default_public_url(), "http://127.0.0.1:8080");

        let p = plan(&[
            "--tls",
            "auto",
            "--listen",
            "[::]:443",
            "--tls-names",
            "ca.example.net",
        ])
        .unwrap();
        assert_eq!(p.http_listen.unwrap().to_string(), "[::]:8080");
        assert_eq!(p.default_public_url(), "http://ca.example.net:8080");

        let p = plan(&["--listen", "192.0.2.1:80", "--insecure-http"]).unwrap();
        assert_eq!(p.default_public_url(), "http://192.0.2.1:80");
    }

    #[test]
    fn contradictions_and_plain_http_off_loopback_are_refused() {
        let refused = |args: &[&str], needle: &str| {
            let e = format!("{:#}", plan(args).unwrap_err());
            assert!(e.contains(needle), "{args:?}: {e}");
        };
        refused(&["--listen", "0.0.0.0:8080"], "--insecure-http");
        refused(&["--tls-cert", "/nonexistent"], "needs --tls-key");
        refused(
            &["--tls", "auto", "--tls-cert", "a", "--tls-key", "b"],
            "exclude each other",
        );
        refused(&["--tls-names", "x.example"], "only applies to --tls auto");
        refused(
            &["--http-listen", "127.0.0.1:9000"],
            "only applies with TLS",
        );
        refused(
            &["--tls", "auto", "--listen", "127.0.0.1:8080"],
            "different addresses",
        );
        refused(
            &["--tls", "auto", "--tls-names", "not a name"],
            "--tls-names",
        );
        refused(
            &[
                "--tls-cert",
                "/nonexistent/c.pem",
                "--tls-key",
                "/nonexistent/k.pem",
            ],
            "cannot read the TLS certificate chain /nonexistent/c.pem (--tls-cert",
        );
    }
}
