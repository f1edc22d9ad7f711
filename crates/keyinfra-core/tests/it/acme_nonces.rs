//! ACME replay nonces against a real PostgreSQL: spent once, whichever replica sees them.

use std::sync::Arc;

use keyinfra_core::acme::{AcmeNonces, NONCE_LIFETIME};
use keyinfra_core::auth::token::JwtSecret;
use keyinfra_core::{Clock, CoreError, ErrorCode, FixedClock, OsRandom};
use keyinfra_db::testing::TestDatabase;
use keyinfra_db::{Actor, UserRole, acme};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn replica(clock: &Arc<FixedClock>) -> AcmeNonces {
    let shared = JwtSecret::new(b"the replicas' shared server secret".to_vec()).unwrap();
    AcmeNonces::new(&shared, Arc::clone(clock) as Arc<dyn Clock>)
}

fn is_bad_nonce(result: Result<(), CoreError>) -> bool {
    matches!(
        result,
        Err(CoreError::Invalid {
            code: ErrorCode::BadNonce,
            ..
        })
    )
}

#[tokio::test]
async fn a_nonce_from_one_replica_is_spent_once_on_any() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let start = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
    let clock = Arc::new(FixedClock::new(start));
    let (a, b) = (replica(&clock), replica(&clock));

    let nonce = a.issue(&mut OsRandom).unwrap();
    b.spend(&db, &nonce).await.unwrap();
    assert!(is_bad_nonce(a.spend(&db, &nonce).await));
    assert!(is_bad_nonce(b.spend(&db, &nonce).await));
    // Refused before any database work: nothing is written for them.
    let stranger = AcmeNonces::new(
        &JwtSecret::new(vec![9; 32]).unwrap(),
        Arc::clone(&clock) as Arc<dyn Clock>,
    );
    let foreign = stranger.issue(&mut OsRandom).unwrap();
    assert!(is_bad_nonce(a.spend(&db, &foreign).await));
    assert!(is_bad_nonce(a.spend(&db, "not-a-nonce").await));
    let stale = a.issue(&mut OsRandom).unwrap();
    clock.set(start + NONCE_LIFETIME);
    assert!(is_bad_nonce(a.spend(&db, &stale).await));
    assert_eq!(
        tdb.scalar_i64("SELECT count(*) FROM acme_spent_nonces")
            .await,
        1
    );
}

#[tokio::test]
async fn only_admins_and_the_system_purge_spent_nonces() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let clock = Arc::new(FixedClock::new(
        OffsetDateTime::UNIX_EPOCH + Duration::days(20_000),
    ));
    let nonces = replica(&clock);
    for _ in 0..3 {
        let nonce = nonces.issue(&mut OsRandom).unwrap();
        nonces.spend(&db, &nonce).await.unwrap();
    }
    let later = clock.now() + NONCE_LIFETIME + Duration::seconds(1);
    let user = Actor::User {
        id: Uuid::new_v4(),
        role: UserRole::User,
    };
    for actor in [Actor::Anonymous, user] {
        let mut tx = db.begin(&actor).await.unwrap();
        assert_eq!(
            acme::purge_spent_nonces(&mut tx, later, 10).await.unwrap(),
            0
        );
        tx.commit().await.unwrap();
    }
    let mut tx = db.begin(&Actor::System).await.unwrap();
    assert_eq!(
        acme::purge_spent_nonces(&mut tx, later, 2).await.unwrap(),
        2
    );
    assert_eq!(
        acme::purge_spent_nonces(&mut tx, later, 2).await.unwrap(),
        1
    );
    tx.commit().await.unwrap();
}
