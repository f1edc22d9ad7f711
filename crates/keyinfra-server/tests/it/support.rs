use std::net::SocketAddr;
use std::sync::Arc;

use keyinfra_core::auth::{JwtSecret, LoginThrottle, PasswordHasher, Pepper, TokenService};
use keyinfra_core::authority::{Authority, AuthoritySettings, InitOptions};
use keyinfra_core::users::UserService;
use keyinfra_core::{AdjustableClock, Clock, FixedClock, OsRandom};
use keyinfra_db::testing::TestDatabase;
use keyinfra_db::{Database, UserRole, migrations};
use keyinfra_pki::seal::MasterKeys;
use keyinfra_server::AppState;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

pub const JWT_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-secret";
pub const PEPPER: &[u8] = b"pepper-pepper-pepper-pepper-pepper-0001";
pub const PASSWORD: &str = "correct horse battery staple";

pub fn service(pepper: &[u8], clock: Arc<dyn Clock>) -> UserService {
    UserService {
        hasher: Arc::new(
            PasswordHasher::new(Pepper::new(pepper.to_vec()).unwrap(), &mut OsRandom).unwrap(),
        ),
        tokens: TokenService::new(
            &JwtSecret::new(JWT_SECRET.to_vec()).unwrap(),
            TokenService::DEFAULT_LIFETIME,
        ),
        throttle: LoginThrottle::new(),
        hashing: keyinfra_core::WorkGate::per_core("password_hashing"),
        clock,
    }
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

pub fn authority(public_url: &str, clock: Arc<dyn Clock>) -> Authority {
    authority_with(public_url, clock, |_| {})
}

pub fn authority_with(
    public_url: &str,
    clock: Arc<dyn Clock>,
    adjust: impl FnOnce(&mut AuthoritySettings),
) -> Authority {
    let mut masters = MasterKeys::new();
    masters.insert(1, &MASTER_KEY).unwrap();
    let mut settings = AuthoritySettings::new(public_url);
    settings.crl_coalesce = std::time::Duration::from_millis(100);
    // Tests issue many certificates as one user in the same instant; the rate has its own
    // test (a server with a small rate).
    settings.write_rate = None;
    adjust(&mut settings);
    Authority::new(settings, masters, clock)
}

/// A server on a loopback port with its own database.
pub struct TestApp {
    pub tdb: TestDatabase,
    pub db: Database,
    pub state: AppState,
    pub clock: Arc<AdjustableClock>,
    pub base: String,
    pub http: reqwest::Client,
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
        let addr: SocketAddr = listener.local_addr().unwrap();
        let authority = Arc::new(authority_with(
            &format!("http://{addr}"),
            clock.clone(),
            adjust,
        ));
        authority
            .ensure_initialized(&db, &InitOptions::default(), &mut OsRandom)
            .await
            .unwrap();
        let state = AppState {
            db: db.clone(),
            expected_schema_version: migrations::latest_version(),
            users: Arc::new(service(pepper, clock.clone())),
            authority: authority.clone(),
            slow_request: keyinfra_server::observability::DEFAULT_SLOW_REQUEST,
            edge,
        };
        let publisher_db = db.clone();
        tokio::spawn(async move {
            authority
                .run_crl_publisher(
                    &publisher_db,
                    std::time::Duration::from_secs(3600),
                    std::future::pending(),
                )
                .await;
        });
        let serve_state = state.clone();
        tokio::spawn(async move {
            let _ = keyinfra_server::serve(listener, serve_state, std::future::pending()).await;
        });
        Self {
            tdb,
            db,
            state,
            clock,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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

/// State for in-process tests that do not log in.
pub fn state(db: Database, expected_schema_version: i64) -> AppState {
    let clock = Arc::new(FixedClock::new(OffsetDateTime::UNIX_EPOCH));
    AppState {
        db,
        expected_schema_version,
        users: Arc::new(service(PEPPER, clock.clone())),
        authority: Arc::new(authority("http://127.0.0.1:8080", clock)),
        slow_request: keyinfra_server::observability::DEFAULT_SLOW_REQUEST,
        edge: test_edge(),
    }
}

/// A second server on the same database (another replica), with its own pool, CA signer
/// cache and CRL publisher.
pub struct Replica {
    pub base: String,
    pub state: AppState,
}

impl TestApp {
    pub async fn replica(&self) -> Replica {
        let db = self.tdb.database().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let authority = Arc::new(authority(&self.base, self.clock.clone()));
        let state = AppState {
            db: db.clone(),
            expected_schema_version: migrations::latest_version(),
            users: self.state.users.clone(),
            authority: authority.clone(),
            slow_request: keyinfra_server::observability::DEFAULT_SLOW_REQUEST,
            edge: test_edge(),
        };
        tokio::spawn(async move {
            authority
                .run_crl_publisher(
                    &db,
                    std::time::Duration::from_secs(3600),
                    std::future::pending(),
                )
                .await;
        });
        let serve_state = state.clone();
        tokio::spawn(async move {
            let _ = keyinfra_server::serve(listener, serve_state, std::future::pending()).await;
        });
        Replica {
            base: format!("http://{addr}"),
            state,
        }
    }

    /// Another listener serving this app's state, but with its own pool: for tests that need
    /// a small pool or a short acquire timeout. Returns its base URL.
    pub async fn server_with_pool(&self, settings: &keyinfra_db::PoolSettings) -> String {
        let db = self.tdb.database_with(settings).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = AppState {
            db,
            ..self.state.clone()
        };
        tokio::spawn(async move {
            let _ = keyinfra_server::serve(listener, state, std::future::pending()).await;
        });
        base
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
