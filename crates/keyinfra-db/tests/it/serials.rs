use keyinfra_db::testing::TestDatabase;
use keyinfra_db::{Actor, CertificateStatus, DbError, UserRole, certificates};
use time::Duration;

use crate::fixtures::{self, Cert};

#[tokio::test]
async fn a_serial_is_unique_per_ca_across_partitions() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA one").await;
    let other_ca = fixtures::authority(&db, "CA two").await;
    let now = fixtures::db_now(&tdb).await;

    Cert::new(ca, None, "7F01", now + Duration::days(10))
        .insert(&db, &Actor::System)
        .await
        .unwrap();
    // Same serial, same CA, a different month (so a different partition): refused.
    let dup = Cert::new(ca, None, "7F01", now + Duration::days(300))
        .insert(&db, &Actor::System)
        .await;
    assert!(matches!(dup, Err(DbError::SerialCollision)), "{dup:?}");
    // Same serial under another CA is fine.
    Cert::new(other_ca, None, "7F01", now + Duration::days(300))
        .insert(&db, &Actor::System)
        .await
        .unwrap();

    // Nothing half-written by the refused insert.
    let mut conn = tdb.owner_connection().await;
    let (certs, registry): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM certificates), (SELECT count(*) FROM certificate_serials)",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!((certs, registry), (2, 2));
}

#[tokio::test]
async fn non_canonical_serials_are_refused() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let now = fixtures::db_now(&tdb).await;
    for bad in ["00AB", "ab", "ABC", "", &"AB".repeat(21)] {
        let err = Cert::new(ca, None, bad, now + Duration::days(1))
            .insert(&db, &Actor::System)
            .await
            .unwrap_err();
        assert!(
            matches!(err, DbError::CheckViolation { .. }),
            "{bad}: {err:?}"
        );
    }
}

#[tokio::test]
async fn lookup_by_serial_finds_the_certificate_in_its_partition() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let owner = fixtures::user(&db, "carol", UserRole::User).await;
    let now = fixtures::db_now(&tdb).await;
    let id = Cert::new(ca, Some(owner), "1234ABCD", now + Duration::days(400))
        .insert(&db, &Actor::System)
        .await
        .unwrap();

    let mut tx = db
        .begin(&Actor::User {
            id: owner,
            role: UserRole::User,
        })
        .await
        .unwrap();
    let found = certificates::find_by_serial(&mut tx, "1234ABCD", Some(ca))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, id);
    assert_eq!(found.status, CertificateStatus::Active);
    assert!(
        certificates::find_by_serial(&mut tx, "1234ABCE", None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        certificates::find_by_serial(&mut tx, "1234ABCD", Some(uuid::Uuid::new_v4()))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn expiring_returns_exactly_the_active_certificates_inside_the_window() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let owner = fixtures::user(&db, "dave", UserRole::User).await;
    // A fixed reference time, as the application passes its clock's time.
    let as_of = fixtures::db_now(&tdb).await.replace_nanosecond(0).unwrap();
    let week = Duration::days(7);
    let sys = Actor::System;

    let inside = Cert::new(ca, Some(owner), "01", as_of + week - Duration::seconds(1))
        .insert(&db, &sys)
        .await
        .unwrap();
    let at_edge = Cert::new(ca, Some(owner), "02", as_of + week)
        .insert(&db, &sys)
        .await
        .unwrap();
    let _outside = Cert::new(ca, Some(owner), "03", as_of + week + Duration::seconds(1))
        .insert(&db, &sys)
        .await
        .unwrap();
    let soon = Cert::new(ca, Some(owner), "04", as_of + Duration::hours(1))
        .insert(&db, &sys)
        .await
        .unwrap();
    let _expired = Cert::new(ca, Some(owner), "05", as_of - Duration::seconds(1))
        .insert(&db, &sys)
        .await
        .unwrap();
    let revoked = Cert::new(ca, Some(owner), "06", as_of + Duration::days(2))
        .insert(&db, &sys)
        .await
        .unwrap();
    let superseded = Cert::new(ca, Some(owner), "07", as_of + Duration::days(3))
        .insert(&db, &sys)
        .await
        .unwrap();
    let _now_exactly = Cert::new(ca, Some(owner), "08", as_of)
        .insert(&db, &sys)
        .await
        .unwrap();
    fixtures::set_status(&db, revoked, CertificateStatus::Revoked).await;
    fixtures::set_status(&db, superseded, CertificateStatus::Superseded).await;

    let mut tx = db.begin(&sys).await.unwrap();
    let found: Vec<_> = certificates::expiring(&mut tx, week, as_of, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    // Soonest first; (as_of, as_of + 7 days] is open at now and closed at the edge.
    assert_eq!(found, vec![soon, inside, at_edge]);
    // The page limit applies.
    assert_eq!(
        certificates::expiring(&mut tx, week, as_of, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    tx.rollback().await.unwrap();

    // A user sees their own; someone else sees none of them.
    let other = fixtures::user(&db, "erin", UserRole::User).await;
    let mut tx = db
        .begin(&Actor::User {
            id: other,
            role: UserRole::User,
        })
        .await
        .unwrap();
    assert!(
        certificates::expiring(&mut tx, week, as_of, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let mut tx = db
        .begin(&Actor::User {
            id: owner,
            role: UserRole::User,
        })
        .await
        .unwrap();
    assert_eq!(
        certificates::expiring(&mut tx, week, as_of, 100)
            .await
            .unwrap()
            .len(),
        3
    );
}
