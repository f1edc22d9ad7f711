use std::time::{Duration, Instant};

use keyinfra_db::testing::{TestDatabase, raw_execute};
use keyinfra_db::{Actor, DbError, PoolSettings, UnavailableReason};

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
        issued_at: time::OffsetDateTime::UNIX_EPOCH,
    };
    let err = db.begin(&stranger).await.unwrap_err();
    assert!(matches!(err, DbError::Unauthenticated), "{err:?}");
    let mut tx = db.begin(&Actor::System).await.unwrap();
    assert_eq!(raw_execute(&mut tx, "SELECT 1").await.unwrap(), 1);
    tx.commit().await.unwrap();
}
