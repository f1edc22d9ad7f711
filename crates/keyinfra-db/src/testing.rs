//! Test support only: failing loudly is the point here, so the no-panic lints are lifted.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

//! A fresh database per test, cloned from a migrated template.
//!
//! The server is `DATABASE_URL` when it is set (CI points it at the machine's PostgreSQL),
//! otherwise a throwaway cluster this process starts from the installed PostgreSQL binaries.
//! The template is built once per set of migrations (its name carries their checksum), under
//! an advisory lock so that test binaries running in parallel build it only once; each test
//! then gets `CREATE DATABASE ... TEMPLATE`, which takes milliseconds, and the database is
//! dropped when the [`TestDatabase`] is dropped.

use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

use crate::error::DbError;
use crate::migrations::{self, MIGRATOR};
use crate::pool::{Database, PoolSettings};
use crate::session::Tx;

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    /// A fresh database with every migration applied.
    pub async fn new() -> Self {
        let template = ensure_template().await;
        Self::create(Some(&template)).await
    }

    /// A fresh, empty database (no migrations applied).
    pub async fn empty() -> Self {
        Self::create(None).await
    }

    async fn create(template: Option<&str>) -> Self {
        let name = format!("keyinfra_test_{}", Uuid::new_v4().simple());
        let mut admin = admin_connection().await;
        let sql = match template {
            Some(t) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{t}\""),
            None => format!("CREATE DATABASE \"{name}\""),
        };
        admin
            .execute(sqlx::AssertSqlSafe(sql))
            .await
            .expect("create test database");
        let _ = admin.close().await;
        Self {
            url: url_for(&name),
            name,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL, connecting as the server's own (owner or superuser) role.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The application's pool on this database, with a small pool.
    pub async fn database(&self) -> Database {
        self.database_with(&PoolSettings {
            min_connections: 0,
            max_connections: 4,
            ..PoolSettings::default()
        })
        .await
    }

    pub async fn database_with(&self, settings: &PoolSettings) -> Database {
        Database::connect(&self.url, settings)
            .await
            .expect("connect the application pool")
    }

    /// Runs a test's scalar query as the owner role (no row-level security).
    pub async fn scalar<T>(&self, sql: &'static str) -> T
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
    {
        let mut conn = self.owner_connection().await;
        let value = sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect("scalar query");
        let _ = conn.close().await;
        value
    }

    pub async fn scalar_i64(&self, sql: &'static str) -> i64 {
        self.scalar(sql).await
    }

    pub async fn scalar_text(&self, sql: &'static str) -> String {
        self.scalar(sql).await
    }

    /// A raw connection as the owner role, for test setup and catalog queries.
    pub async fn owner_connection(&self) -> PgConnection {
        PgConnection::connect(&self.url)
            .await
            .expect("connect as owner")
    }

    /// Runs one statement as the database owner (bypassing row-level security), e.g. to
    /// tamper with rows as an attacker with database access would; returns rows affected.
    pub async fn owner_execute(&self, sql: &str) -> u64 {
        let mut conn = self.owner_connection().await;
        conn.execute(sqlx::AssertSqlSafe(sql.to_owned()))
            .await
            .expect("owner statement")
            .rows_affected()
    }
}

/// One session as the URL's own role (the table owner, bypassing row-level security) that
/// stays open across statements: for checks on any database, and for holding locks.
#[derive(Debug)]
pub struct OwnerSession {
    conn: PgConnection,
}

impl OwnerSession {
    pub async fn connect(url: &str) -> Self {
        Self {
            conn: PgConnection::connect(url).await.expect("connect as owner"),
        }
    }

    /// Runs statements (several, separated by `;`, are allowed).
    pub async fn execute(&mut self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut self.conn)
            .await
            .expect("owner statements");
    }

    /// The first column of the first row, as a bigint.
    pub async fn scalar(&mut self, sql: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&mut self.conn)
            .await
            .expect("owner query")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Async drop does not exist; a short-lived thread with its own runtime does the job
        // whether or not the test's runtime is still running.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let mut admin = admin_connection().await;
                let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = admin.execute(sqlx::AssertSqlSafe(sql)).await;
                let _ = admin.close().await;
            });
        })
        .join();
    }
}

/// The URL of the test server with another database name.
pub fn url_for(database: &str) -> String {
    let base = server_url();
    let mut url = url::Url::parse(&base).expect("DATABASE_URL is a URL");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

/// `DATABASE_URL`, or the throwaway cluster's URL.
pub fn server_url() -> String {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => keyinfra_embedded_pg::shared_throwaway_cluster()
            .expect("start a throwaway PostgreSQL cluster (or set DATABASE_URL)")
            .database_url("postgres"),
    }
}

async fn admin_connection() -> PgConnection {
    let url = url_for("postgres");
    for attempt in 0..50 {
        match PgConnection::connect(&url).await {
            Ok(conn) => return conn,
            // "too many clients" while many tests start at once: wait and retry.
            Err(e) if attempt < 49 => {
                tracing::debug!("admin connection failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot connect to the test server: {e}"),
        }
    }
    unreachable!()
}

/// Builds the migrated template if it does not exist; returns its name.
async fn ensure_template() -> String {
    let name = format!("keyinfra_tpl_{}", migrations_fingerprint());
    let mut admin = admin_connection().await;
    // Any constant would do; this one spells "KI" and "tpl".
    sqlx::query("SELECT pg_advisory_lock(4907001)")
        .execute(&mut admin)
        .await
        .expect("lock");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .expect("look up template");
    if !exists {
        // Templates of older migration sets are of no further use.
        let stale: Vec<String> = sqlx::query_scalar(
            "SELECT datname::text FROM pg_database WHERE datname LIKE 'keyinfra\\_tpl\\_%' AND datname <> $1",
        )
        .bind(&name)
        .fetch_all(&mut admin)
        .await
        .expect("list templates");
        for old in stale {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{old}\""
                )))
                .await;
        }
        let building = format!("{name}_build");
        let drop = format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)");
        admin
            .execute(sqlx::AssertSqlSafe(drop))
            .await
            .expect("drop stale template build");
        admin
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE DATABASE \"{building}\""
            )))
            .await
            .expect("create template");
        migrations::up(&url_for(&building))
            .await
            .expect("migrate the template");
        let rename = format!("ALTER DATABASE \"{building}\" RENAME TO \"{name}\"");
        admin
            .execute(sqlx::AssertSqlSafe(rename))
            .await
            .expect("publish template");
    }
    sqlx::query("SELECT pg_advisory_unlock(4907001)")
        .execute(&mut admin)
        .await
        .expect("unlock");
    let _ = admin.close().await;
    name
}

/// A short hash of every migration's version and checksum (FNV-1a; not security relevant).
fn migrations_fingerprint() -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for m in MIGRATOR.iter() {
        for byte in m.version.to_le_bytes().iter().chain(m.checksum.iter()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// A setting as a pooled connection holds it between transactions, outside any `BEGIN`
/// (`None` when unset or empty): what the next unit of work on that connection would start
/// with.
pub async fn session_setting(db: &Database, name: &str) -> Option<String> {
    let mut conn = db.acquire().await.unwrap();
    sqlx::query_scalar("SELECT nullif(current_setting($1, true), '')")
        .bind(name)
        .fetch_one(&mut *conn)
        .await
        .unwrap()
}

/// The backend process id of the connection the hot paths (`Database::acquire`: the
/// issuance batches, the enrollment claims) are handed, after a statement that ends cleanly,
/// as theirs do.
pub async fn backend_pid_on_hot_path(db: &Database) -> i32 {
    let mut conn = db.acquire().await.unwrap();
    let pid = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    conn.finished();
    pid
}

/// Starts `sql` on a hot-path connection and drops it after `after`, as a request that
/// goes away mid-statement does; true if the statement was still running then.
pub async fn abandon_on_hot_path(db: &Database, sql: &'static str, after: Duration) -> bool {
    let mut conn = db.acquire().await.unwrap();
    let running = tokio::time::timeout(after, sqlx::query(sql).execute(&mut *conn))
        .await
        .is_err();
    if !running {
        conn.finished();
    }
    running
}

/// Runs a test's own SQL inside a [`Tx`], so that it sees exactly what the application's
/// role and identity see.
pub async fn raw_query(
    tx: &mut Tx,
    sql: &'static str,
) -> Result<Vec<sqlx::postgres::PgRow>, DbError> {
    Ok(sqlx::query(sql).fetch_all(tx.conn()).await?)
}

/// Executes a test's own statement inside a [`Tx`]; returns the rows affected.
pub async fn raw_execute(tx: &mut Tx, sql: &'static str) -> Result<u64, DbError> {
    Ok(sqlx::query(sql).execute(tx.conn()).await?.rows_affected())
}

/// As [`raw_execute`], for SQL built by the test.
pub async fn raw_execute_owned(tx: &mut Tx, sql: String) -> Result<u64, DbError> {
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(tx.conn())
        .await?
        .rows_affected())
}
