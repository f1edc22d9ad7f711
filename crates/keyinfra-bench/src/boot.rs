//! What every benchmark that runs a server starts from: a fresh database on the given
//! server, migrated, and the composition root's configuration for it (a random master
//! key, fixed test secrets, the system clock), with the benchmark's own settings.

use std::sync::Arc;

use keyinfra_core::auth::{JwtSecret, Pepper};
use keyinfra_core::authority::AuthoritySettings;
use keyinfra_core::{Clock, OsRandom, SystemClock};
use keyinfra_db::{Database, PoolSettings, migrations};
use keyinfra_pki::seal::MasterKeys;
use keyinfra_server::{AppConfig, UserSettings};

pub struct Fresh {
    /// The new database's URL.
    pub url: String,
    pub db: Database,
    pub clock: Arc<dyn Clock>,
    pub config: AppConfig,
}

/// (Re)creates `database` on `server_url`, migrates it, and configures an app for it;
/// `adjust` changes the authority's settings (quota, write rate) before the app exists.
pub async fn fresh_app(
    server_url: &str,
    database: &str,
    adjust: impl FnOnce(&mut AuthoritySettings),
) -> anyhow::Result<Fresh> {
    let url = keyinfra_db::bench::recreate_database(server_url, database).await?;
    migrations::up(&url).await?;
    let db = Database::connect(&url, &PoolSettings::default()).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut masters = MasterKeys::new();
    let mut key = [0u8; 32];
    keyinfra_pki::RandomSource::fill(&mut OsRandom, &mut key)?;
    masters.insert(1, &key)?;
    let mut settings = AuthoritySettings::new("http://127.0.0.1:1");
    adjust(&mut settings);
    let users = UserSettings {
        pepper: Pepper::new(vec![1; 32]).map_err(anyhow::Error::msg)?,
        jwt_secret: JwtSecret::new(vec![2; 32]).map_err(anyhow::Error::msg)?,
        token_lifetime: time::Duration::hours(1),
    };
    let config = AppConfig::new(db.clone(), users, settings, masters, clock.clone());
    Ok(Fresh {
        url,
        db,
        clock,
        config,
    })
}

/// Serves `app` on a TLS listener on loopback as `serve --tls auto` sets it up (a
/// certificate for 127.0.0.1 from its own CA); its address, and a client configuration that
/// trusts the app's root CAs. The caller keeps `app`: dropping it stops its background tasks
/// (the ACME validator among them).
pub async fn serve_tls(
    app: &keyinfra_server::App,
    db: &Database,
) -> anyhow::Result<(std::net::SocketAddr, Arc<rustls::ClientConfig>)> {
    let state = app.state().clone();
    let names = [keyinfra_pki::names::SubjectAltName::Ip(
        [127, 0, 0, 1].into(),
    )];
    let own = keyinfra_server::tls::issue_own(&state.authority, db, &names).await?;
    let certificate = Arc::new(keyinfra_server::tls::ServerCertificate::new(own.key));
    let tls = Arc::new(keyinfra_server::tls::TlsServer::new(certificate)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(app.serve(
        keyinfra_server::Listeners {
            tls: Some(tls),
            ..keyinfra_server::Listeners::plain(listener)
        },
        keyinfra_server::Limits::default(),
        std::future::pending(),
    ));
    let mut roots = rustls::RootCertStore::empty();
    for ca in state.authority.cas.list_cas(db).await? {
        if ca.parent_ca_id.is_none() {
            roots.add(rustls::pki_types::CertificateDer::from(ca.certificate_der))?;
        }
    }
    let client = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    Ok((address, client))
}
