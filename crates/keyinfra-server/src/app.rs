//! The composition root: [`App::build`] turns settings and secrets into the services, the
//! handlers' [`AppState`], and the background tasks that belong to a serving replica. `keyinfra
//! serve` and every integration test build the server through it, so tests boot what
//! production boots, and serve it through the same accept loop ([`App::serve`]).
//!
//! What stays outside: preparing the database (migrations, partitions), creating the first
//! administrator (its generated password goes to the console), binding the sockets and the
//! server's own TLS certificate (the binary knows its flags and addresses).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use keyinfra_core::acme::{AcmeService, AcmeSettings};
use keyinfra_core::alerts::AlertService;
use keyinfra_core::auth::{
    JwtSecret, LoginThrottle, PasswordError, PasswordHasher, Pepper, TokenService,
};
use keyinfra_core::authority::{Authority, AuthoritySettings};
use keyinfra_core::ca_setup::InitOptions;
use keyinfra_core::jobs::{JobSettings, Jobs};
use keyinfra_core::users::UserService;
use keyinfra_core::{Clock, CoreError, WorkGate};
use keyinfra_db::Database;
use keyinfra_pki::RandomSource;
use keyinfra_pki::seal::MasterKeys;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::accept::{self, Limits, Listeners};
use crate::edge::EdgeSettings;
use crate::{AppState, observability, tls};

/// How often the CRL publisher looks for CRLs due to be re-issued, unless configured.
pub const DEFAULT_CRL_TICK: Duration = Duration::from_secs(60);

/// The secrets and token lifetime the user service is made from.
#[derive(Debug)]
pub struct UserSettings {
    pub pepper: Pepper,
    pub jwt_secret: JwtSecret,
    pub token_lifetime: time::Duration,
}

impl UserSettings {
    /// Password hashing, tokens, the login throttle: the user service `serve` and `keyinfra
    /// user` share.
    pub fn service(
        self,
        clock: Arc<dyn Clock>,
        rng: &mut dyn RandomSource,
    ) -> Result<UserService, PasswordError> {
        Ok(UserService {
            hasher: Arc::new(PasswordHasher::new(self.pepper, rng)?),
            tokens: TokenService::new(&self.jwt_secret, self.token_lifetime),
            throttle: LoginThrottle::new(),
            hashing: WorkGate::per_core("password_hashing"),
            clock,
        })
    }
}

/// The scheduled jobs this replica takes part in.
#[derive(Debug)]
pub struct SchedulerSettings {
    pub jobs: JobSettings,
    pub alerts: AlertService,
    /// This replica's name in the job records.
    pub replica: String,
}

/// Everything [`App::build`] takes. [`AppConfig::new`] fills in what has a default.
#[derive(Debug)]
pub struct AppConfig {
    pub db: Database,
    /// The schema version this build needs; `/readyz` compares the database with it.
    pub expected_schema_version: i64,
    pub users: UserSettings,
    pub authority: AuthoritySettings,
    pub master_keys: MasterKeys,
    /// The CA hierarchy created when the database has none.
    pub init: InitOptions,
    pub edge: EdgeSettings,
    /// Requests slower than this are logged at WARN.
    pub slow_request: Duration,
    /// How often the CRL publisher re-issues CRLs that are due.
    pub crl_tick: Duration,
    /// `None`: no scheduler on this replica (the tests run jobs by hand).
    pub scheduler: Option<SchedulerSettings>,
    /// The one clock of the services and their tasks.
    pub clock: Arc<dyn Clock>,
    /// ACME: whether accounts need an external account binding, and who owns them if not.
    pub acme: AcmeSettings,
}

impl AppConfig {
    /// The defaults of `keyinfra serve`, without a scheduler.
    pub fn new(
        db: Database,
        users: UserSettings,
        authority: AuthoritySettings,
        master_keys: MasterKeys,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            db,
            expected_schema_version: keyinfra_db::migrations::latest_version(),
            users,
            authority,
            master_keys,
            init: InitOptions::default(),
            edge: EdgeSettings::default(),
            slow_request: observability::DEFAULT_SLOW_REQUEST,
            crl_tick: DEFAULT_CRL_TICK,
            scheduler: None,
            clock,
            acme: AcmeSettings::default(),
        }
    }
}

/// Why [`App::build`] failed. Causes are the core's errors, for the caller to word.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cannot set up password hashing")]
    PasswordHashing(#[source] PasswordError),
    #[error("cannot create the first CA")]
    FirstCa(#[source] CoreError),
    #[error("cannot publish the CRLs")]
    Crls(#[source] CoreError),
}

/// A built server: its state, its routers, and its background tasks, which run until
/// [`App::shutdown`] (or until the `App` is dropped).
#[derive(Debug)]
pub struct App {
    state: AppState,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl App {
    /// Builds the services, makes sure a CA exists and every CRL is fresh before the first
    /// request, and starts the CRL publisher (and the scheduler, if configured).
    pub async fn build(
        config: AppConfig,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<Self, BuildError> {
        // Boxed: CA creation and CRL signing make a large future, which every caller (each
        // test's set-up among them) would otherwise carry inline.
        Box::pin(Self::build_inner(config, rng)).await
    }

    async fn build_inner(
        config: AppConfig,
        rng: &mut (dyn RandomSource + Send),
    ) -> Result<Self, BuildError> {
        // Install the recorder now: what is recorded before it exists is lost, and the first
        // scrape may come long after the first issuance.
        observability::prometheus();
        let AppConfig {
            db,
            expected_schema_version,
            users,
            authority,
            master_keys,
            init,
            edge,
            slow_request,
            crl_tick,
            scheduler,
            clock,
            acme,
        } = config;
        let authority = Authority::new(authority, master_keys, Arc::clone(&clock));
        // ACME's nonces and binding keys are derived from the server secret the user
        // service takes.
        let acme = Arc::new(AcmeService::new(&users.jwt_secret, &authority, acme));
        let users = users
            .service(Arc::clone(&clock), rng)
            .map_err(BuildError::PasswordHashing)?;
        // First start: a root CA (and the intermediate, if configured), sealed like every key.
        let created = authority
            .ca_setup
            .ensure_initialized(&db, &init, rng)
            .await
            .map_err(BuildError::FirstCa)?;
        for ca in &created {
            tracing::info!(ca_id = %ca.id, subject = %ca.subject_dn, "created CA");
        }
        authority
            .crls
            .refresh_stale_crls(&db)
            .await
            .map_err(BuildError::Crls)?;
        let authority = Arc::new(authority);
        let state = AppState {
            db: db.clone(),
            expected_schema_version,
            users: Arc::new(users),
            authority: Arc::clone(&authority),
            slow_request,
            scep_limit: Arc::new(keyinfra_core::rate::AddressLimiter::new(
                edge.scep_per_minute,
                "scep_operations",
            )),
            est_limit: Arc::new(keyinfra_core::rate::AddressLimiter::new(
                edge.est_per_minute,
                "est_operations",
            )),
            acme_limit: Arc::new(keyinfra_core::rate::AddressLimiter::new(
                edge.acme_per_minute,
                "acme_requests",
            )),
            edge: Arc::new(edge),
            clock: Arc::clone(&clock),
            acme,
        };

        // Background work stops when `stop` says so or is dropped.
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        {
            let authority = Arc::clone(&authority);
            let db = db.clone();
            let mut stopped = stopped.clone();
            tasks.push(tokio::spawn(async move {
                authority
                    .crls
                    .run_crl_publisher(&db, crl_tick, async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await;
            }));
        }
        // OCSP: cached answers follow revocations made on every replica.
        {
            let authority = Arc::clone(&authority);
            let db = db.clone();
            let mut stopped = stopped.clone();
            tasks.push(tokio::spawn(async move {
                authority
                    .ocsp
                    .run_revocation_listener(&db, async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await;
            }));
        }
        // ACME challenges: every replica validates; each attempt runs on one of them.
        {
            let validator = Arc::clone(&state.acme.validator);
            let db = db.clone();
            let mut stopped = stopped.clone();
            tasks.push(tokio::spawn(validator.run(db, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })));
        }
        // Scheduled jobs: every replica runs the scheduler; each run happens on one of them.
        if let Some(scheduler) = scheduler {
            let jobs = Jobs::new(
                db,
                authority,
                Arc::new(scheduler.alerts),
                clock,
                scheduler.jobs,
                scheduler.replica,
            );
            tasks.push(tokio::spawn(Arc::new(jobs).run_scheduler(stopped)));
        }
        Ok(Self { state, stop, tasks })
    }

    /// What every handler reaches: the database, the services, the settings.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The whole HTTP surface.
    pub fn router(&self) -> Router {
        crate::router(self.state.clone())
    }

    /// Only what anyone may fetch over plain HTTP (CA certificates, CRLs); anything else is
    /// a 404 problem.
    pub fn public_router(&self) -> Router {
        crate::public_router(self.state.clone())
    }

    /// Only `GET /metrics`, without credentials, for a monitoring network.
    pub fn metrics_router(&self) -> Router {
        observability::metrics_only(self.state.clone())
    }

    /// Serves each listener its router through the accept loop until `shutdown` completes,
    /// then drains the connections (see [`crate::accept`]). The future owns what it needs.
    pub fn serve(
        &self,
        listeners: Listeners,
        limits: Limits,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = ()> + Send + 'static {
        let routers = accept::Routers {
            main: self.router(),
            public: self.public_router(),
            metrics: self.metrics_router(),
        };
        let trust = listeners
            .tls
            .clone()
            .map(|tls| follow_client_cas(tls, self.state.clone()));
        async move {
            // Client certificates from our CAs are trusted from the first handshake on.
            let follower = match trust {
                Some(follow) => Some(tokio::spawn(follow.await)),
                None => None,
            };
            accept::run(routers, listeners, limits, shutdown).await;
            if let Some(task) = follower {
                task.abort();
            }
        }
    }

    /// Stops the background tasks and waits for them (a running job finishes first).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for App {
    /// Tells the background tasks to stop, without waiting for them. (A stop signal whose
    /// sender is merely gone would not do: the scheduler reads the value.)
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Loads the CAs trusted for TLS client certificates now, and returns the task that
/// compares them with the database every [`tls::CLIENT_TRUST_REFRESH`] (a CA created by the
/// CLI or another replica) and rebuilds the TLS configuration when they change.
async fn follow_client_cas(
    tls: Arc<tls::TlsServer>,
    state: AppState,
) -> impl Future<Output = ()> + Send + 'static {
    let refresh = move |tls: Arc<tls::TlsServer>, state: AppState| async move {
        match tls::client_cas(&state.authority, &state.db).await {
            Ok(cas) => match tls.trust_client_cas(&cas) {
                Ok(true) => tracing::info!(
                    cas = cas.len(),
                    "TLS client certificates: trusting the CAs whose key KeyInfra holds"
                ),
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "cannot rebuild the TLS configuration for client certificates; keeping the previous one"
                    );
                }
            },
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "cannot read the CAs for TLS client certificates; trying again in a minute"
                );
            }
        }
    };
    refresh(Arc::clone(&tls), state.clone()).await;
    async move {
        loop {
            tokio::time::sleep(tls::CLIENT_TRUST_REFRESH).await;
            refresh(Arc::clone(&tls), state.clone()).await;
        }
    }
}
