//! The accept loop `serve` and the tests share: hyper HTTP/1.1 on each connection, TLS when
//! given an acceptor, the connection cap, the request-head limit, and the graceful drain.
//! (`axum::serve` has no drain deadline and no per-connection TLS, hence our own loop.)
//!
//! Three listeners, three routers: the main one gets the whole surface ([`App::router`]),
//! the public one only what anyone may fetch over plain HTTP ([`App::public_router`]), the
//! metrics one only `/metrics` ([`App::metrics_router`]). Binding the sockets, building the
//! TLS acceptor and logging the addresses are the caller's: the binary names its flags.
//!
//! Shutdown: the listeners close, every connection finishes the request it is serving (idle
//! keep-alive connections close at once), and whatever still runs after
//! [`Limits::shutdown_timeout`] is dropped.
//!
//! [`App::router`]: crate::App::router
//! [`App::public_router`]: crate::App::public_router
//! [`App::metrics_router`]: crate::App::metrics_router

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::tls::{TlsServer, TlsSession};

/// A client that has not finished its TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that has not sent a request's headers by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The sockets to serve, already bound.
pub struct Listeners {
    /// The whole surface: HTTPS with `tls`, else plain HTTP.
    pub main: TcpListener,
    pub tls: Option<Arc<TlsServer>>,
    /// Plain HTTP, the public routes only (CA certificates, CRLs).
    pub public: Option<TcpListener>,
    /// Plain HTTP, `GET /metrics` only and without credentials.
    pub metrics: Option<TcpListener>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("main", &self.main)
            .field("tls", &self.tls.is_some())
            .field("public", &self.public)
            .field("metrics", &self.metrics)
            .finish()
    }
}

impl Listeners {
    /// One plain-HTTP listener for everything (`serve` without TLS).
    pub fn plain(main: TcpListener) -> Self {
        Self {
            main,
            tls: None,
            public: None,
            metrics: None,
        }
    }
}

/// What bounds the connections (`--max-connections`, `--max-header-bytes`,
/// `--shutdown-timeout`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Client connections open at once over every listener; more get 503 and are closed.
    pub max_connections: usize,
    /// Largest request head in bytes (431 above it).
    pub max_header_bytes: usize,
    /// How long requests in flight may run after shutdown begins.
    pub shutdown_timeout: Duration,
}

impl Default for Limits {
    /// The command line's defaults.
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_header_bytes: 16 * 1024,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// The three routers behind the three listeners.
#[derive(Clone)]
pub(crate) struct Routers {
    pub main: Router,
    pub public: Router,
    pub metrics: Router,
}

/// Accepts on every listener until `shutdown` completes, then drains (module docs).
pub(crate) async fn run(
    routers: Routers,
    listeners: Listeners,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let Listeners {
        main,
        tls: acceptor,
        public,
        metrics,
    } = listeners;
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let http = http1(limits.max_header_bytes);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = main.accept() => match accepted {
                Ok((stream, peer)) => match take_slot(&slots, &stream, acceptor.is_some()) {
                    Some(slot) => {
                        let tls = acceptor.as_ref().map(|tls| tls.acceptor());
                        connections.spawn(connection(stream, peer, tls, routers.main.clone(), http.clone(), graceful.watcher(), slot));
                    }
                    None => drop(stream),
                },
                Err(error) => accept_failed(&error).await,
            },
            accepted = accept_on(public.as_ref()) => match accepted {
                Ok((stream, peer)) => match take_slot(&slots, &stream, false) {
                    Some(slot) => {
                        connections.spawn(connection(stream, peer, None, routers.public.clone(), http.clone(), graceful.watcher(), slot));
                    }
                    None => drop(stream),
                },
                Err(error) => accept_failed(&error).await,
            },
            accepted = accept_on(metrics.as_ref()) => match accepted {
                Ok((stream, peer)) => match take_slot(&slots, &stream, false) {
                    Some(slot) => {
                        connections.spawn(connection(stream, peer, None, routers.metrics.clone(), http.clone(), graceful.watcher(), slot));
                    }
                    None => drop(stream),
                },
                Err(error) => accept_failed(&error).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }

    // Stop accepting: the ports close now, so new clients are refused at once.
    drop(main);
    drop(public);
    drop(metrics);
    let timeout = limits.shutdown_timeout;
    tracing::info!(
        open_connections = graceful.count(),
        "shutting down: stopped accepting connections; waiting up to {} for requests in flight",
        humantime::format_duration(timeout)
    );
    if tokio::time::timeout(timeout, graceful.shutdown())
        .await
        .is_ok()
    {
        tracing::info!("shutting down: every request finished");
    } else {
        tracing::warn!(
            still_open = connections.len(),
            "shutting down: the shutdown timeout ({}) has passed; dropping the requests still running",
            humantime::format_duration(timeout)
        );
    }
    connections.shutdown().await;
}

async fn accept_on(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Accepting fails for the client's sake (it hung up) or ours (out of file descriptors);
/// neither stops the server, but the second must not spin.
async fn accept_failed(error: &std::io::Error) {
    tracing::warn!(%error, "cannot accept a connection");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// What every connection's HTTP/1.1 gets: the header deadline and the head's size limit.
fn http1(max_header_bytes: usize) -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(max_header_bytes);
    http
}

/// The answer to a connection over the cap: written without waiting (a client that does not
/// read it just loses it) on plain HTTP; a TLS client is only disconnected, since answering
/// would need a handshake, which is what the cap protects.
const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\n\
content-length: 147\r\n\r\n\
{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,\"code\":\"too_many_connections\",\"detail\":\"the server has too many open connections\"}";

/// A slot for one more connection, or `None` (after answering 503 where possible).
fn take_slot(
    slots: &Arc<tokio::sync::Semaphore>,
    stream: &TcpStream,
    tls: bool,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    match Arc::clone(slots).try_acquire_owned() {
        Ok(slot) => Some(slot),
        Err(_) => {
            metrics::counter!("keyinfra_http_connections_refused_total").increment(1);
            if !tls {
                let _ = stream.try_write(TOO_MANY_CONNECTIONS);
            }
            None
        }
    }
}

/// One client connection: the TLS handshake (if any), then HTTP/1.1 until the client or a
/// shutdown ends it. The peer address reaches handlers as `ConnectInfo` (login throttling),
/// and over TLS the session as [`TlsSession`] (EST) and `OverTls` (the UI's Secure cookie).
/// `_slot` is its place under the connection cap, given back when it ends.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    http: hyper::server::conn::http1::Builder,
    watcher: Watcher,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let service = |session: Option<TlsSession>| {
        hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            if let Some(session) = &session {
                request.extensions_mut().insert(crate::OverTls);
                request.extensions_mut().insert(session.clone());
            }
            let app = app.clone();
            async move {
                let response: Result<Response, Infallible> = app.oneshot(request).await;
                response
            }
        })
    };
    let served = match tls {
        None => {
            watcher
                .watch(http.serve_connection(TokioIo::new(stream), service(None)))
                .await
        }
        Some(acceptor) => {
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let session = TlsSession::of(stream.get_ref().1);
            watcher
                .watch(http.serve_connection(TokioIo::new(stream), service(Some(session))))
                .await
        }
    };
    if let Err(error) = served {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one problem body written by hand: its code is the enum's, and its length is right.
    #[test]
    fn the_connection_cap_answer_is_a_problem_with_its_code() {
        let text = std::str::from_utf8(TOO_MANY_CONNECTIONS).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.ends_with(&format!("content-length: {}", body.len())));
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            problem["code"],
            keyinfra_core::ErrorCode::TooManyConnections.as_str()
        );
        assert_eq!(problem["status"], 503);
    }
}
