//! The application's connection pool.
//!
//! Connection validation (a design question): sqlx's `test_before_acquire` would ping on
//! every checkout, one extra round trip per request. Instead a connection is pinged (a
//! protocol-level Sync, no SQL parsed) only when it sat idle longer than
//! [`PoolSettings::validate_after_idle`]: that is when a firewall, a failover or a server
//! restart can have killed it unnoticed. Connections are also recycled after
//! `max_lifetime`, and a query that still meets a dead connection fails as
//! `Unavailable(ConnectionLost)`, which the server answers with 503 + Retry-After; the pool
//! then discards that connection.
//!
//! TLS to PostgreSQL follows the URL's `sslmode` (`disable`, `prefer`, `require`,
//! `verify-ca`, `verify-full`, with `sslrootcert` for a private CA), or `PGSSLMODE`, as in
//! libpq. When neither names a mode, a remote server gets libpq's default, `prefer`; a Unix
//! socket or a loopback address gets `disable`: the traffic never leaves the machine, and TLS
//! there would only cost CPU on both ends of every round trip.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{Connection, Executor, PgPool};

use crate::error::DbError;
use crate::session::{Actor, Tx};
use crate::warm::{WarmConnection, WarmConnections};

/// Pool and session settings. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// Connections kept open even when idle (the design's 5).
    pub min_connections: u32,
    /// Upper bound on connections (the design's 20).
    pub max_connections: u32,
    /// How long a request waits for a free connection before it gets 503 + Retry-After.
    pub acquire_timeout: Duration,
    /// Server-side `statement_timeout` for every statement of the application.
    pub statement_timeout: Duration,
    /// Ping a connection before handing it out if it was idle at least this long.
    pub validate_after_idle: Duration,
    /// Close connections older than this, so that server-side state never piles up.
    pub max_lifetime: Duration,
    /// Statements slower than this are logged at WARN with their duration (target `sqlx`).
    pub slow_query: Duration,
    /// A connection the hot paths keep warm goes back to the pool after this long unused
    /// (see `warm`); checked that often.
    pub warm_for: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            min_connections: 5,
            max_connections: 20,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            validate_after_idle: Duration::from_secs(30),
            max_lifetime: Duration::from_secs(30 * 60),
            slow_query: Duration::from_millis(500),
            warm_for: Duration::from_millis(50),
        }
    }
}

/// A snapshot of the pool, for /metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// The application role every pooled connection switches to; see migration 0001.
pub(crate) const APP_ROLE: &str = "keyinfra_app";

/// Parses a database URL and adds KeyInfra's session settings.
pub(crate) fn connect_options(
    url: &str,
    settings: &PoolSettings,
) -> Result<PgConnectOptions, DbError> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(DbError::Connect {
            target: "(not a PostgreSQL URL)".to_owned(),
            setting: "DATABASE_URL",
            message: "expected a URL starting with postgres:// or postgresql://".to_owned(),
        });
    }
    let options = PgConnectOptions::from_str(url).map_err(|e| DbError::Connect {
        target: describe_url(url),
        setting: "DATABASE_URL",
        message: format!("not a valid PostgreSQL URL ({e})"),
    })?;
    let options = match default_ssl_mode(url, &options, std::env::var_os("PGSSLMODE").is_some()) {
        Some(mode) => options.ssl_mode(mode),
        None => options,
    };
    use sqlx::ConnectOptions;
    let options = options
        .log_statements(log::LevelFilter::Trace)
        .log_slow_statements(log::LevelFilter::Warn, settings.slow_query);
    Ok(options.application_name("keyinfra").options([
        (
            "statement_timeout",
            format!("{}ms", settings.statement_timeout.as_millis()),
        ),
        // A transaction left open by a stuck client must not hold locks forever.
        ("idle_in_transaction_session_timeout", "60s".to_owned()),
        ("timezone", "UTC".to_owned()),
        // Our statements are prepared once per connection and run with parameters. On the
        // partitioned certificates table a custom plan costs every partition at every
        // execution (an order of magnitude more than the query itself at 32 partitions),
        // while a generic plan is built once per connection and prunes partitions at
        // executor start. See docs/benchmarks.md.
        ("plan_cache_mode", "force_generic_plan".to_owned()),
    ]))
}

/// The TLS mode to impose when neither the URL nor `PGSSLMODE` names one; `None` keeps the
/// one they name.
fn default_ssl_mode(
    url: &str,
    options: &PgConnectOptions,
    pgsslmode_set: bool,
) -> Option<PgSslMode> {
    if names_ssl_mode(url) || pgsslmode_set {
        None
    } else if is_local(options) {
        Some(PgSslMode::Disable)
    } else {
        Some(PgSslMode::Prefer)
    }
}

/// Whether the URL's query sets the TLS mode itself.
fn names_ssl_mode(url: &str) -> bool {
    query_value(url, "sslmode").is_some() || query_value(url, "ssl-mode").is_some()
}

/// A parameter of the URL's query, as written (not percent-decoded).
fn query_value<'u>(url: &'u str, name: &str) -> Option<&'u str> {
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((key, value)) if key == name => Some(value),
            None if pair == name => Some(""),
            _ => None,
        })
}

/// A Unix socket (sqlx turns a host that is a path into one), or a host that resolves only
/// to this machine.
fn is_local(options: &PgConnectOptions) -> bool {
    if options.get_socket().is_some() {
        return true;
    }
    let host = options.get_host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The URL without its password or query, for error messages and logs.
pub fn describe_url(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(o) => {
            let host = o
                .get_socket()
                .map(|s| s.display().to_string())
                .unwrap_or_else(|| o.get_host().to_owned());
            format!(
                "{}:{}/{}",
                host,
                o.get_port(),
                o.get_database().unwrap_or("(default)")
            )
        }
        Err(_) => "(unparseable URL)".to_owned(),
    }
}

/// Turns a failure to connect at start into one clear sentence that names the setting.
pub(crate) fn connect_error(url: &str, error: sqlx::Error) -> DbError {
    // sqlx reads sslrootcert while it connects; a missing file is named.
    let root_cert = query_value(url, "sslrootcert");
    let message = match (&error, root_cert) {
        (sqlx::Error::Tls(tls), _) => format!("TLS: {tls}"),
        (sqlx::Error::Io(io), Some(path)) if io.kind() == std::io::ErrorKind::NotFound => {
            format!("cannot read sslrootcert {path}: {io}")
        }
        (sqlx::Error::Io(io), _) => io.to_string(),
        (sqlx::Error::PoolTimedOut, _) => "timed out".to_owned(),
        (sqlx::Error::Database(db), _) => db.message().to_owned(),
        (other, _) => other.to_string(),
    };
    DbError::Connect {
        target: describe_url(url),
        setting: "DATABASE_URL",
        message,
    }
}

/// The role a `DATABASE_URL` logs in as (PostgreSQL's `session_user`), which every pooled
/// connection leaves with `SET ROLE keyinfra_app` but returns to on `RESET ROLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRole {
    pub name: String,
    pub superuser: bool,
    pub bypass_rls: bool,
}

impl LoginRole {
    /// Whether SQL run on a pooled connection could escape row-level security by returning
    /// to this role (`RESET ROLE`): a superuser, or a role with BYPASSRLS.
    pub fn escapes_row_level_security(&self) -> bool {
        self.superuser || self.bypass_rls
    }
}

/// The connect options of the URL, for the maintenance connection. Debug leaves them out:
/// they hold the password.
struct LoginOptions(PgConnectOptions);

impl std::fmt::Debug for LoginOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginOptions(..)")
    }
}

/// The application's pool. Cheap to clone: every request's handlers and middleware clone
/// it (with the server's state), so what it holds is shared, never copied.
#[derive(Debug, Clone)]
pub struct Database {
    pool: PgPool,
    /// Shared: copying the options would allocate each of their strings on every clone.
    login_options: std::sync::Arc<LoginOptions>,
    login_role: std::sync::Arc<LoginRole>,
    /// The connections the hot paths used last, handed out again first (see `warm`).
    warm: std::sync::Arc<WarmConnections>,
}

/// A connection as the `DATABASE_URL`'s own login role, without `SET ROLE keyinfra_app`:
/// for the maintenance functions (partitions, retention, statistics), which keyinfra_app
/// may not run (migration 0014). Each call is one statement in its own implicit
/// transaction. Not pooled: it closes when dropped.
#[derive(Debug)]
pub struct Maintenance {
    conn: sqlx::PgConnection,
}

impl Maintenance {
    pub(crate) fn conn(&mut self) -> &mut sqlx::PgConnection {
        &mut self.conn
    }

    /// Overrides the statement timeout for the rest of this connection (batch work).
    pub async fn set_statement_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<(), DbError> {
        sqlx::query("SELECT set_config('statement_timeout', $1, false)")
            .bind(format!("{}ms", timeout.as_millis()))
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Closes the connection politely (dropping it closes it too).
    pub async fn close(self) {
        let _ = self.conn.close().await;
    }
}

impl Database {
    /// How long a request waits for a connection before it is answered 503.
    /// The pool itself, for what needs a connection of its own (LISTEN).
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn acquire_timeout(&self) -> std::time::Duration {
        self.pool.options().get_acquire_timeout()
    }

    /// Whether both handles share one pool (and so one database).
    pub fn same_pool(&self, other: &Database) -> bool {
        // The options live in the pool's shared state: clones of one pool give one address.
        std::ptr::eq(self.pool.options(), other.pool.options())
    }

    /// Opens the pool, checks that the database is reachable and that the application role
    /// is subject to row-level security.
    pub async fn connect(url: &str, settings: &PoolSettings) -> Result<Self, DbError> {
        let options = connect_options(url, settings)?;
        let options_for_login = options.clone();
        let validate_after_idle = settings.validate_after_idle;
        let pool = PgPoolOptions::new()
            .min_connections(settings.min_connections.min(settings.max_connections))
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .max_lifetime(settings.max_lifetime)
            .idle_timeout(Duration::from_secs(10 * 60))
            .test_before_acquire(false)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    // Before anything else: requests never run as the table owner.
                    conn.execute("SET ROLE keyinfra_app").await?;
                    Ok(())
                })
            })
            .before_acquire(move |conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= validate_after_idle {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options);

        let login_role = check_role(&pool, url).await?;
        let warm = std::sync::Arc::new(WarmConnections::new(pool.clone()));
        WarmConnections::start_sweeping(&warm, settings.warm_for);
        Ok(Self {
            pool,
            login_options: std::sync::Arc::new(LoginOptions(options_for_login)),
            login_role: std::sync::Arc::new(login_role),
            warm,
        })
    }

    /// The role the URL logs in as. `serve` warns when it could escape row-level security.
    pub fn login_role(&self) -> &LoginRole {
        &self.login_role
    }

    /// Opens a [`Maintenance`] connection as the URL's own login role. The maintenance
    /// functions then fail with [`DbError::PermissionDenied`] unless that role owns them or
    /// was granted EXECUTE (README, "Using an external PostgreSQL").
    pub async fn maintenance(&self) -> Result<Maintenance, DbError> {
        let conn = tokio::time::timeout(
            Duration::from_secs(15),
            sqlx::PgConnection::connect_with(&self.login_options.0),
        )
        .await
        .map_err(|_| DbError::from(sqlx::Error::PoolTimedOut))??;
        Ok(Maintenance { conn })
    }
}

/// Opens the first connection (so that a bad URL fails at start, with the setting named),
/// verifies that row-level security binds the session, and says which role the URL logs in
/// as.
async fn check_role(pool: &PgPool, url: &str) -> Result<LoginRole, DbError> {
    let mut conn = pool.acquire().await.map_err(|e| match e {
            sqlx::Error::Database(db) if db.message().contains(APP_ROLE) => DbError::Migration(format!(
                "the role {APP_ROLE} does not exist or cannot be assumed ({}); run `keyinfra migrate up`",
                db.message()
            )),
            other => connect_error(url, other),
        })?;
    let row = sqlx::query!(
        r#"SELECT current_user AS "role!", r.rolsuper AS "superuser!",
                  r.rolbypassrls AS "bypass_rls!", session_user AS "login!",
                  l.rolsuper AS "login_superuser!", l.rolbypassrls AS "login_bypass_rls!"
           FROM pg_roles AS r, pg_roles AS l
           WHERE r.rolname = current_user AND l.rolname = session_user"#
    )
    .fetch_one(&mut *conn)
    .await?;
    if row.superuser || row.bypass_rls {
        return Err(DbError::Internal(format!(
            "the session role {} bypasses row-level security; refusing to serve",
            row.role
        )));
    }
    Ok(LoginRole {
        name: row.login,
        superuser: row.login_superuser,
        bypass_rls: row.login_bypass_rls,
    })
}

impl Database {
    /// Begins a transaction whose row-level-security identity is `actor`, in one round trip.
    /// The wait for a pooled connection (and the BEGIN round trip) is recorded in the
    /// `keyinfra_db_acquire_seconds` histogram.
    pub async fn begin(&self, actor: &Actor) -> Result<Tx, DbError> {
        let started = std::time::Instant::now();
        let tx = self
            .pool
            .begin_with(sqlx::AssertSqlSafe(actor.begin_statement()))
            .await;
        metrics::histogram!("keyinfra_db_acquire_seconds").record(started.elapsed().as_secs_f64());
        Ok(Tx::new(tx?))
    }

    /// A pooled connection outside any transaction, for one self-contained statement that
    /// PostgreSQL runs in an implicit transaction (see
    /// [`certificates::record_issued_batch`](crate::certificates::record_issued_batch)): the
    /// one used last when it is still warm (see `warm`), else one from the pool. The wait is
    /// recorded in `keyinfra_db_acquire_seconds`, as for [`Database::begin`] (whose figure
    /// also holds its BEGIN round trip; here there is none).
    pub(crate) async fn acquire(&self) -> Result<WarmConnection, DbError> {
        let started = std::time::Instant::now();
        let conn = match self.warm.take() {
            Some((conn, out_since)) => Ok((conn, out_since)),
            None => self
                .pool
                .acquire()
                .await
                .map(|conn| (conn, std::time::Instant::now())),
        };
        metrics::histogram!("keyinfra_db_acquire_seconds").record(started.elapsed().as_secs_f64());
        let (conn, out_since) = conn?;
        Ok(WarmConnection::new(
            conn,
            out_since,
            std::sync::Arc::clone(&self.warm),
        ))
    }

    /// Connections open now, how many of them are idle, and the most allowed.
    pub fn usage(&self) -> PoolUsage {
        PoolUsage {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle() + self.warm.len()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }

    /// The schema version recorded in the database (0 before the first migration).
    pub async fn schema_version(&self) -> Result<i64, DbError> {
        let version = sqlx::query_scalar!(r#"SELECT keyinfra_schema_version() AS "version!""#)
            .fetch_one(&self.pool)
            .await?;
        Ok(version)
    }

    /// Closes every connection; waits for checked-out ones to come back. Warm connections
    /// go back first; one put back in the instant before the pool is marked closed is
    /// returned by the sweep within [`PoolSettings::warm_for`].
    pub async fn close(&self) {
        self.warm.return_all();
        self.pool.close().await;
    }
}

/// Opens a single connection as the URL's own role (the table owner), for migrations.
pub(crate) async fn owner_connection(url: &str) -> Result<sqlx::PgConnection, DbError> {
    let options = connect_options(url, &PoolSettings::default())?;
    match tokio::time::timeout(
        Duration::from_secs(15),
        sqlx::PgConnection::connect_with(&options),
    )
    .await
    {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(connect_error(url, e)),
        Err(_) => Err(connect_error(url, sqlx::Error::PoolTimedOut)),
    }
}

/// Creates the database `name` on the server of `server_url` unless it exists; returns
/// whether it was created. Used by the embedded default, whose fresh cluster has none.
pub async fn create_database_if_missing(server_url: &str, name: &str) -> Result<bool, DbError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(DbError::Internal(format!("unsafe database name {name:?}")));
    }
    let mut conn = owner_connection(server_url).await?;
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
        name
    )
    .fetch_one(&mut conn)
    .await?;
    if !exists {
        // Identifiers cannot be bound; `name` was checked to be [a-z0-9_]+ above.
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await?;
    }
    let _ = conn.close().await;
    Ok(!exists)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mode a URL ends with, PGSSLMODE unset.
    fn mode(url: &str) -> PgSslMode {
        let options = PgConnectOptions::from_str(url).unwrap();
        match default_ssl_mode(url, &options, false) {
            Some(mode) => mode,
            None => options.get_ssl_mode(),
        }
    }

    #[test]
    fn a_local_server_is_reached_without_tls_unless_the_url_asks() {
        for url in [
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@127.0.0.2/db",
            "postgres://u@localhost/db",
            "postgres://u@[::1]:5432/db",
            "postgres://u@%2Frun%2Fpostgresql/db",
            "postgres://u@db.example.net/db?host=/run/postgresql",
        ] {
            assert!(matches!(mode(url), PgSslMode::Disable), "{url}");
        }
        assert!(matches!(
            mode("postgres://u@127.0.0.1/db?sslmode=require"),
            PgSslMode::Require
        ));
        assert!(matches!(
            mode("postgres://u@localhost/db?application_name=x&ssl-mode=verify-ca"),
            PgSslMode::VerifyCa
        ));
    }

    #[test]
    fn a_remote_server_gets_libpqs_default_or_the_urls_mode() {
        for url in [
            "postgres://u@db.example.net/db",
            "postgres://u@10.0.0.5:5432/db",
            "postgres://u@[2001:db8::1]/db",
            "postgres://u@127.example.net/db",
        ] {
            assert!(matches!(mode(url), PgSslMode::Prefer), "{url}");
        }
        assert!(matches!(
            mode("postgres://u@db.example.net/db?sslmode=verify-full"),
            PgSslMode::VerifyFull
        ));
        assert!(matches!(
            mode("postgres://u@db.example.net/db?sslmode=disable"),
            PgSslMode::Disable
        ));
    }

    #[test]
    fn a_missing_sslrootcert_is_named_in_the_connect_error() {
        let url =
            "postgres://u:secret@db.example.net/db?sslmode=verify-ca&sslrootcert=/nope/ca.pem";
        let err = connect_error(
            url,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::NotFound)),
        );
        let message = err.to_string();
        assert!(
            message.contains("cannot read sslrootcert /nope/ca.pem"),
            "{message}"
        );
        assert!(message.contains("db.example.net:5432/db"), "{message}");
        assert!(!message.contains("secret"), "{message}");
        // Without sslrootcert in the URL, a missing file is not blamed on it.
        let err = connect_error(
            "postgres://u@db.example.net/db",
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::NotFound)),
        );
        assert!(!err.to_string().contains("sslrootcert"), "{err}");
    }

    #[test]
    fn pgsslmode_decides_when_the_url_names_no_mode() {
        let url = "postgres://u@127.0.0.1/db";
        let options = PgConnectOptions::from_str(url).unwrap();
        assert!(default_ssl_mode(url, &options, true).is_none());
    }
}
