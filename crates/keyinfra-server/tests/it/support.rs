use std::net::SocketAddr;
use std::sync::Arc;

use keyinfra_core::acme::AcmeSettings;
use keyinfra_core::auth::{JwtSecret, Pepper, TokenService};
use keyinfra_core::authority::AuthoritySettings;
use keyinfra_core::users::UserService;
use keyinfra_core::{AdjustableClock, Clock, FixedClock, OsRandom};
use keyinfra_db::testing::TestDatabase;
use keyinfra_db::{Database, UserRole};
use keyinfra_pki::seal::MasterKeys;
use keyinfra_server::{App, AppConfig, AppState, Limits, Listeners, UserSettings};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

pub const JWT_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";
pub const PEPPER: &[u8] = b"pepper-pepper-pepper-pepper-pepper-0001";
pub const PASSWORD: &str = "correct horse battery staple";

pub fn user_settings(pepper: &[u8]) -> UserSettings {
    UserSettings {
        pepper: Pepper::new(pepper.to_vec()).unwrap(),
        jwt_secret: JwtSecret::new(JWT_SECRET.to_vec()).unwrap(),
        token_lifetime: TokenService::DEFAULT_LIFETIME,
    }
}

/// A user service as `App::build` makes it (for tests that need one beside the server's).
pub fn service(pepper: &[u8], clock: Arc<dyn Clock>) -> UserService {
    user_settings(pepper).service(clock, &mut OsRandom).unwrap()
}

/// Test servers believe `X-Forwarded-For` from loopback, so that a test can speak for
/// several client addresses (the throttle's tests); without the header the client is
/// 127.0.0.1 as before.
pub fn test_edge() -> Arc<keyinfra_server::edge::EdgeSettings> {
    Arc::new(keyinfra_server::edge::EdgeSettings {
        trusted_proxies: keyinfra_server::edge::parse_trusted_proxies("127.0.0.1/32").unwrap(),
        ..Default::default()
    })
}

/// The master key every test server shares (so two servers on one database agree).
pub const MASTER_KEY: [u8; 32] = [7; 32];

/// What every test server is built from: production's defaults, with the test secrets,
/// a short CRL coalescing window, no write rate (tests issue many certificates as one user
/// in the same instant; the rate has its own test), and an hourly CRL tick.
pub fn config(db: Database, public_url: &str, pepper: &[u8], clock: Arc<dyn Clock>) -> AppConfig {
    let mut masters = MasterKeys::new();
    masters.insert(1, &MASTER_KEY).unwrap();
    let mut settings = AuthoritySettings::new(public_url);
    settings.crl_coalesce = std::time::Duration::from_millis(100);
    settings.write_rate = None;
    let mut config = AppConfig::new(db, user_settings(pepper), settings, masters, clock);
    config.edge = (*test_edge()).clone();
    config.crl_tick = std::time::Duration::from_secs(3600);
    config
}

/// Builds `config` into an App and serves it on `listener` through the accept loop
/// `keyinfra serve` runs, until the test ends.
pub async fn serve(config: AppConfig, listener: tokio::net::TcpListener) -> App {
    let app = App::build(config, &mut OsRandom).await.unwrap();
    tokio::spawn(app.serve(
        Listeners::plain(listener),
        Limits::default(),
        std::future::pending(),
    ));
    app
}

/// A server on a loopback port with its own database.
pub struct TestApp {
    pub tdb: TestDatabase,
    pub db: Database,
    pub state: AppState,
    pub clock: Arc<AdjustableClock>,
    pub base: String,
    /// The public listener (`App::public_router`), as `serve` opens it with TLS.
    pub public_base: String,
    pub http: reqwest::Client,
    /// Keeps the background tasks (the CRL publisher) running.
    _app: App,
    pepper: Vec<u8>,
    /// Servers started by `server_with_pool`.
    others: std::sync::Mutex<Vec<App>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with_pepper(PEPPER, None).await
    }

    /// `existing`: reuse another app's database (to run a second server on it).
    pub async fn spawn_with_pepper(pepper: &[u8], existing: Option<TestDatabase>) -> Self {
        Self::spawn_with(pepper, existing, test_edge(), |_| {}).await
    }

    /// A server with its own edge settings, and CA settings changed by `adjust`.
    pub async fn spawn_with(
        pepper: &[u8],
        existing: Option<TestDatabase>,
        edge: Arc<keyinfra_server::edge::EdgeSettings>,
        adjust: impl FnOnce(&mut AuthoritySettings),
    ) -> Self {
        Self::spawn_configured(pepper, existing, edge, adjust, AcmeSettings::default()).await
    }

    /// [`TestApp::spawn_with`] with its own ACME settings.
    async fn spawn_configured(
        pepper: &[u8],
        existing: Option<TestDatabase>,
        edge: Arc<keyinfra_server::edge::EdgeSettings>,
        adjust: impl FnOnce(&mut AuthoritySettings),
        acme: AcmeSettings,
    ) -> Self {
        // Server logs appear with a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("keyinfra=debug,warn")
            .with_test_writer()
            .try_init();
        let tdb = match existing {
            Some(t) => t,
            None => TestDatabase::new().await,
        };
        let db = tdb.database().await;
        let clock = Arc::new(AdjustableClock::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let public_base = format!("http://{}", public.local_addr().unwrap());
        let mut config = config(db.clone(), &format!("http://{addr}"), pepper, clock.clone());
        config.edge = (*edge).clone();
        config.acme = acme;
        adjust(&mut config.authority);
        let app = App::build(config, &mut OsRandom).await.unwrap();
        tokio::spawn(app.serve(
            Listeners {
                public: Some(public),
                ..Listeners::plain(listener)
            },
            Limits::default(),
            std::future::pending(),
        ));
        Self {
            tdb,
            db,
            state: app.state().clone(),
            clock,
            base: format!("http://{addr}"),
            public_base,
            http: reqwest::Client::new(),
            _app: app,
            pepper: pepper.to_vec(),
            others: std::sync::Mutex::default(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A server as `serve --tls auto` runs it: the main listener over TLS with a
    /// certificate for 127.0.0.1 and localhost issued by its own CA (client certificates
    /// asked for, our CAs trusted), the public listener over plain HTTP. `base` and `http`
    /// reach the same app on a second, plain listener, the tests' way to call the API
    /// (reqwest is built without TLS here); `tls_base` is the HTTPS one.
    pub async fn spawn_tls() -> (Self, TlsEndpoint) {
        Self::spawn_tls_with(test_edge()).await
    }

    /// [`TestApp::spawn_tls`] with its own edge settings (rates, proxies).
    pub async fn spawn_tls_with(
        edge: Arc<keyinfra_server::edge::EdgeSettings>,
    ) -> (Self, TlsEndpoint) {
        Self::spawn_tls_acme(edge, AcmeSettings::default()).await
    }

    /// [`TestApp::spawn_tls`] with its own edge and ACME settings (the validator's ports).
    pub async fn spawn_tls_acme(
        edge: Arc<keyinfra_server::edge::EdgeSettings>,
        acme: AcmeSettings,
    ) -> (Self, TlsEndpoint) {
        let app = Self::spawn_configured(PEPPER, None, edge, |_| {}, acme).await;
        let names = [
            keyinfra_pki::names::SubjectAltName::Ip([127, 0, 0, 1].into()),
            keyinfra_pki::names::SubjectAltName::Dns("localhost".into()),
        ];
        let own = keyinfra_server::tls::issue_own(&app.state.authority, &app.db, &names)
            .await
            .unwrap();
        let certificate = Arc::new(keyinfra_server::tls::ServerCertificate::new(own.key));
        let tls = Arc::new(keyinfra_server::tls::TlsServer::new(certificate).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(app._app.serve(
            Listeners {
                tls: Some(Arc::clone(&tls)),
                ..Listeners::plain(listener)
            },
            Limits::default(),
            std::future::pending(),
        ));
        let root_pem = app.root_pem().await;
        let endpoint = TlsEndpoint {
            base: format!("https://{address}"),
            address,
            root_pem,
            server: tls,
        };
        // Connections queue on the bound socket until the trust store for client
        // certificates is loaded and the first accept runs.
        (app, endpoint)
    }

    /// The root CA's certificate, PEM (the first CA, `init`'s root).
    pub async fn root_pem(&self) -> String {
        let cas = self.state.authority.cas.list_cas(&self.db).await.unwrap();
        let root = cas
            .iter()
            .find(|c| c.parent_ca_id.is_none())
            .expect("a root CA");
        keyinfra_pki::certificate_pem(&root.certificate_der)
    }

    /// Creates a user directly through the use case, as an operator.
    pub async fn user(&self, name: &str, role: UserRole) -> Uuid {
        self.state
            .users
            .create(
                &self.db,
                None,
                name,
                PASSWORD.to_owned(),
                role,
                None,
                &mut OsRandom,
            )
            .await
            .unwrap()
            .id
    }

    pub async fn login(&self, name: &str, password: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "username": name, "password": password }))
            .send()
            .await
            .unwrap()
    }

    /// The Prometheus text of `/metrics`, read with an ADMIN's token. The recorder is the
    /// process's: counts include other tests running beside this one.
    pub async fn metrics(&self, admin_token: &str) -> String {
        self.http
            .get(self.url("/metrics"))
            .bearer_auth(admin_token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Creates a policy from `body` as the ADMIN holding `admin`'s token and moves the user
    /// `user_id` to it; the policy as the API answered it.
    pub async fn move_to_new_policy(&self, admin: &str, user_id: &str, body: Value) -> Value {
        let (status, policy) = self
            .send(reqwest::Method::POST, "/api/v1/policies", admin, body)
            .await;
        assert_eq!(status, 201, "{policy}");
        let (status, patched) = self
            .send(
                reqwest::Method::PATCH,
                &format!("/api/v1/users/{user_id}"),
                admin,
                json!({ "policy_id": policy["id"] }),
            )
            .await;
        assert_eq!(status, 200, "{patched}");
        policy
    }

    pub async fn token(&self, name: &str) -> String {
        let response = self.login(name, PASSWORD).await;
        assert_eq!(response.status(), 200, "login of {name} failed");
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (u16, Value) {
        let r = self
            .http
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// An App for in-process tests that do not log in (its router is called directly).
pub async fn app(db: Database, expected_schema_version: i64) -> App {
    let clock = Arc::new(FixedClock::new(OffsetDateTime::UNIX_EPOCH));
    let mut config = config(db, "http://127.0.0.1:8080", PEPPER, clock);
    config.expected_schema_version = expected_schema_version;
    App::build(config, &mut OsRandom).await.unwrap()
}

/// A second server on the same database (another replica), with its own pool, CA signer
/// cache and CRL publisher.
pub struct Replica {
    pub base: String,
    pub state: AppState,
    /// Keeps its CRL publisher running.
    _app: App,
}

impl TestApp {
    pub async fn replica(&self) -> Replica {
        let (base, app) = self.server_on(self.tdb.database().await).await;
        Replica {
            base,
            state: app.state().clone(),
            _app: app,
        }
    }

    /// Another server on this app's database whose pool has `settings`: for tests that need
    /// a small pool or a short acquire timeout. Returns its base URL.
    pub async fn server_with_pool(&self, settings: &keyinfra_db::PoolSettings) -> String {
        let (base, app) = self.server_on(self.tdb.database_with(settings).await).await;
        // Its background tasks run as long as this app.
        self.others.lock().unwrap().push(app);
        base
    }

    /// A server built like this one (same secrets, clock and master key) on `db`.
    async fn server_on(&self, db: Database) -> (String, App) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = config(db, &self.base, &self.pepper, self.clock.clone());
        (base, serve(config, listener).await)
    }

    /// POST with a JSON body; the raw response.
    pub async fn post_raw(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Issues through the API and returns the certificate object (asserting 201).
    pub async fn issue(&self, token: &str, body: Value) -> Value {
        let (status, cert) = self
            .send(reqwest::Method::POST, "/api/v1/certificates", token, body)
            .await;
        assert_eq!(status, 201, "{cert}");
        cert
    }

    /// The (only) CA's id and PEM.
    pub async fn ca(&self) -> (String, String) {
        let cas: Value = self
            .http
            .get(self.url("/api/v1/cas"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ca = &cas["items"][0];
        (
            ca["id"].as_str().unwrap().to_owned(),
            ca["certificate_pem"].as_str().unwrap().to_owned(),
        )
    }

    /// Rows of the tables a failed request must not touch.
    pub async fn written_rows(&self) -> i64 {
        self.tdb
            .scalar_i64(
                "SELECT (SELECT count(*) FROM certificates) + (SELECT count(*) FROM private_keys)
                      + (SELECT count(*) FROM revoked_certificates)",
            )
            .await
    }
}

/// The HTTPS side of [`TestApp::spawn_tls`].
pub struct TlsEndpoint {
    /// `https://127.0.0.1:PORT`
    pub base: String,
    pub address: SocketAddr,
    /// The root CA clients trust (`--cacert`).
    pub root_pem: String,
    pub server: Arc<keyinfra_server::tls::TlsServer>,
}

impl TlsEndpoint {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}
