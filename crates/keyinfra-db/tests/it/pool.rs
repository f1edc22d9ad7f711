use std::time::{Duration, Instant};

use keyinfra_db::testing::{
    TestDatabase, abandon_on_hot_path, backend_pid_on_hot_path, raw_execute, raw_query,
};
use keyinfra_db::{Actor, Database, DbError, PoolSettings, UnavailableReason};

#[tokio::test]
async fn an_exhausted_pool_answers_unavailable_within_the_acquire_timeout() {
    let tdb = TestDatabase::new().await;
    let db = tdb
        .database_with(&PoolSettings {
            min_connections: 0,
            max_connections: 1,
            acquire_timeout: Duration::from_millis(300),
            ..PoolSettings::default()
        })
        .await;
    let held = db.begin(&Actor::System).await.unwrap();
    let started = Instant::now();
    let err = db.begin(&Actor::System).await.unwrap_err();
    assert!(
        matches!(
            err,
            DbError::Unavailable {
                reason: UnavailableReason::PoolExhausted,
                ..
            }
        ),
        "{err:?}"
    );
    // It gave up instead of hanging (generous bound; not a performance assertion).
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(held);
    // Once the connection is back, work proceeds.
    db.begin(&Actor::System)
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_statement_timeout_applies_and_is_reported_as_unavailable() {
    let tdb = TestDatabase::new().await;
    let db = tdb
        .database_with(&PoolSettings {
            min_connections: 0,
            max_connections: 1,
            statement_timeout: Duration::from_millis(200),
            ..PoolSettings::default()
        })
        .await;
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let err = raw_execute(&mut tx, "SELECT pg_sleep(5)")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DbError::Unavailable {
                reason: UnavailableReason::Timeout,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_one_clear_error_naming_the_setting() {
    let err = keyinfra_db::Database::connect(
        "postgres://keyinfra:s3cret-password@127.0.0.1:1/keyinfra",
        &PoolSettings {
            acquire_timeout: Duration::from_secs(2),
            ..PoolSettings::default()
        },
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("DATABASE_URL") && text.contains("127.0.0.1:1/keyinfra"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "the password leaked: {text}");
}

#[tokio::test]
async fn readiness_reports_the_schema_version() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    assert_eq!(
        db.schema_version().await.unwrap(),
        keyinfra_db::migrations::latest_version()
    );
}

#[tokio::test]
async fn sessions_carry_the_documented_settings() {
    use sqlx::Row;
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let rows = keyinfra_db::testing::raw_query(
        &mut tx,
        "SELECT current_setting('plan_cache_mode'), current_setting('statement_timeout'),
                current_setting('TimeZone'), current_setting('application_name')",
    )
    .await
    .unwrap();
    let settings: Vec<String> = (0..4).map(|i| rows[0].get::<String, _>(i)).collect();
    assert_eq!(settings, ["force_generic_plan", "30s", "UTC", "keyinfra"]);
}

#[tokio::test]
async fn a_refused_token_leaves_the_connection_usable() {
    use keyinfra_db::UserRole;
    let tdb = TestDatabase::new().await;
    // One connection, so that the next transaction reuses the one that refused the token.
    let db = tdb
        .database_with(&PoolSettings {
            min_connections: 0,
            max_connections: 1,
            ..PoolSettings::default()
        })
        .await;
    let stranger = Actor::Token {
        id: uuid::Uuid::new_v4(),
        role: UserRole::Admin,
        session_epoch: time::OffsetDateTime::UNIX_EPOCH,
    };
    let err = db.begin(&stranger).await.unwrap_err();
    assert!(matches!(err, DbError::Unauthenticated), "{err:?}");
    let mut tx = db.begin(&Actor::System).await.unwrap();
    assert_eq!(raw_execute(&mut tx, "SELECT 1").await.unwrap(), 1);
    tx.commit().await.unwrap();
}

/// Whether the application's connection is encrypted, and with which protocol: asked of
/// pg_stat_ssl as the owner (the application role does not see its session user's backends).
async fn connection_tls(tdb: &TestDatabase, db: &Database) -> (bool, Option<String>) {
    let mut tx = db.begin(&Actor::System).await.unwrap();
    use sqlx::Row;
    let pid: i32 = raw_query(&mut tx, "SELECT pg_backend_pid() AS pid")
        .await
        .unwrap()[0]
        .get("pid");
    tx.commit().await.unwrap();
    let mut owner = tdb.owner_connection().await;
    sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = $1")
        .bind(pid)
        .fetch_one(&mut owner)
        .await
        .expect("pg_stat_ssl has a row for every client backend")
}

#[tokio::test]
async fn tls_to_postgresql_follows_the_urls_sslmode() {
    if std::env::var_os("PGSSLMODE").is_some() {
        // PGSSLMODE would decide instead of the URL; the unit tests in pool.rs cover that.
        panic!("unset PGSSLMODE to run this test: it checks the URL's own sslmode");
    }
    let tdb = TestDatabase::new().await;
    let settings = PoolSettings {
        min_connections: 0,
        max_connections: 1,
        ..PoolSettings::default()
    };
    let with_mode = |mode: &str| {
        let separator = if tdb.url().contains('?') { '&' } else { '?' };
        format!("{}{separator}sslmode={mode}", tdb.url())
    };
    // The test server is on this machine (loopback or a Unix socket): no TLS by default.
    let db = Database::connect(tdb.url(), &settings).await.unwrap();
    assert_eq!(connection_tls(&tdb, &db).await, (false, None));
    db.close().await;

    let server_has_tls = tdb.scalar_text("SHOW ssl").await == "on";
    let required = Database::connect(&with_mode("require"), &settings).await;
    if server_has_tls {
        // The machine's PostgreSQL (Debian enables TLS with its snakeoil certificate).
        let db = required.unwrap();
        let (ssl, version) = connection_tls(&tdb, &db).await;
        assert!(ssl, "sslmode=require gave an unencrypted connection");
        assert!(
            version.as_deref().is_some_and(|v| v.starts_with("TLSv1.")),
            "{version:?}"
        );
        db.close().await;
        // verify-ca checks the server's certificate against sslrootcert: its own (Debian's
        // is self-signed) passes, a bundle of public CAs that never signed it fails.
        let cert_file = tdb.scalar_text("SHOW ssl_cert_file").await;
        let cert_file = std::path::Path::new(&cert_file);
        let cert_file = if cert_file.is_absolute() {
            cert_file.to_path_buf()
        } else {
            std::path::PathBuf::from(tdb.scalar_text("SHOW data_directory").await).join(cert_file)
        };
        if std::fs::File::open(&cert_file).is_ok() {
            let verified = Database::connect(
                &format!(
                    "{}&sslrootcert={}",
                    with_mode("verify-ca"),
                    cert_file.display()
                ),
                &settings,
            )
            .await
            .unwrap();
            assert!(connection_tls(&tdb, &verified).await.0);
            verified.close().await;
            let stranger = std::env::temp_dir().join(format!("keyinfra-tls-{}", tdb.name()));
            std::fs::create_dir_all(&stranger).unwrap();
            let status = std::process::Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                ])
                .args(["-nodes", "-days", "1", "-subj", "/CN=unrelated test CA"])
                .arg("-keyout")
                .arg(stranger.join("key.pem"))
                .arg("-out")
                .arg(stranger.join("ca.pem"))
                .stderr(std::process::Stdio::null())
                .status()
                .expect("run openssl");
            assert!(status.success());
            let err = Database::connect(
                &format!(
                    "{}&sslrootcert={}",
                    with_mode("verify-ca"),
                    stranger.join("ca.pem").display()
                ),
                &settings,
            )
            .await
            .unwrap_err();
            std::fs::remove_dir_all(&stranger).unwrap();
            assert!(matches!(err, DbError::Connect { .. }), "{err:?}");
        } else {
            eprintln!(
                "{} is not readable here: verify-ca not exercised",
                cert_file.display()
            );
        }
    } else {
        // A server without TLS (the throwaway cluster): require must refuse, not fall back.
        let err = required.unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, DbError::Connect { .. }), "{err:?}");
        assert!(
            message.contains("TLS") || message.contains("SSL"),
            "{message}"
        );
    }
    // An explicit disable is honoured on any server.
    let db = Database::connect(&with_mode("disable"), &settings)
        .await
        .unwrap();
    assert_eq!(connection_tls(&tdb, &db).await, (false, None));
    db.close().await;
}

/// Three connections open and idle in the pool, which hands out the one idle longest first.
/// A warm connection stays warm for a minute here, so that a stall of the test machine
/// between two statements cannot send it back to the pool.
async fn pool_with_three_idle(tdb: &TestDatabase) -> Database {
    let db = tdb
        .database_with(&PoolSettings {
            min_connections: 0,
            max_connections: 5,
            acquire_timeout: Duration::from_secs(3),
            warm_for: Duration::from_secs(60),
            ..PoolSettings::default()
        })
        .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(db.begin(&Actor::System).await.unwrap());
    }
    for tx in open {
        tx.commit().await.unwrap();
    }
    db
}

#[tokio::test]
async fn the_hot_paths_are_handed_the_connection_they_used_last() {
    let tdb = TestDatabase::new().await;
    let db = pool_with_three_idle(&tdb).await;
    let first = backend_pid_on_hot_path(&db).await;
    for _ in 0..5 {
        // The pool alone would rotate through its three idle connections.
        assert_eq!(backend_pid_on_hot_path(&db).await, first);
    }
    // Kept warm, the connection still counts as idle, once the pool has taken back the
    // others (sqlx returns a connection from a task of its own, after a ping).
    let settled = tokio::time::timeout(Duration::from_secs(5), async {
        while db.usage().idle != db.usage().open {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(settled.is_ok(), "idle never reached open: {:?}", db.usage());
}

#[tokio::test]
async fn a_warm_connection_goes_back_to_the_pool_when_the_hot_path_is_idle() {
    let tdb = TestDatabase::new().await;
    // One connection in all: kept warm for ever, it would starve every transaction. The
    // default warm period (50 ms) is far below the acquire timeout.
    let db = tdb
        .database_with(&PoolSettings {
            min_connections: 0,
            max_connections: 1,
            acquire_timeout: Duration::from_secs(3),
            ..PoolSettings::default()
        })
        .await;
    let pid = backend_pid_on_hot_path(&db).await;
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let rows = raw_query(&mut tx, "SELECT pg_backend_pid()").await.unwrap();
    let in_tx: i32 = sqlx::Row::get(&rows[0], 0);
    assert_eq!(in_tx, pid, "the same, only connection");
    tx.commit().await.unwrap();
    // And closing the pool does not wait for a connection kept warm.
    backend_pid_on_hot_path(&db).await;
    tokio::time::timeout(Duration::from_secs(5), db.close())
        .await
        .expect("the pool closes with a warm connection kept");
}

#[tokio::test]
async fn a_connection_left_mid_statement_is_not_kept_warm() {
    let tdb = TestDatabase::new().await;
    let db = pool_with_three_idle(&tdb).await;
    let warm = backend_pid_on_hot_path(&db).await;
    assert!(
        abandon_on_hot_path(&db, "SELECT pg_sleep(2)", Duration::from_millis(100)).await,
        "the statement was still running when its future was dropped"
    );
    // The abandoned connection (the warm one) went to the pool, which pings it on release,
    // a round trip that lasts until the sleep ends: meanwhile the hot path gets another.
    let next = backend_pid_on_hot_path(&db).await;
    assert_ne!(
        next, warm,
        "the connection left mid-statement was handed out again"
    );
    assert_eq!(backend_pid_on_hot_path(&db).await, next);
}
