use keyinfra_db::testing::TestDatabase;
use keyinfra_db::{Actor, CertificateStatus, UserRole, stats};
use time::Duration;

use crate::fixtures::{self, Cert};

#[tokio::test]
async fn the_dashboard_view_refreshes_concurrently_with_correct_counts() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let alice = fixtures::user(&db, "alice", UserRole::User).await;
    let bob = fixtures::user(&db, "bob", UserRole::User).await;
    let now = fixtures::db_now(&tdb).await;
    let sys = Actor::System;

    // Alice: 2 expiring within 7 days, 1 within 30, 1 later, 1 revoked (within 7 days).
    for (serial, days) in [("A1", 3), ("A2", 6), ("A3", 20), ("A4", 90)] {
        Cert::new(ca, Some(alice), serial, now + Duration::days(days))
            .insert(&db, &sys)
            .await
            .unwrap();
    }
    let revoked = Cert::new(ca, Some(alice), "A5", now + Duration::days(2))
        .insert(&db, &sys)
        .await
        .unwrap();
    fixtures::set_status(&db, revoked, CertificateStatus::Revoked).await;
    // Bob: one within 30 days; an ownerless one.
    Cert::new(ca, Some(bob), "B1", now + Duration::days(25))
        .insert(&db, &sys)
        .await
        .unwrap();
    Cert::new(ca, None, "C1", now + Duration::days(1))
        .insert(&db, &sys)
        .await
        .unwrap();

    // The view was created WITH DATA (empty) at migration; refresh concurrently.
    let mut m = db.maintenance().await.unwrap();
    assert!(stats::refresh(&mut m).await.unwrap().is_some());

    let mut tx = db
        .begin(&Actor::User {
            id: alice,
            role: UserRole::User,
        })
        .await
        .unwrap();
    let mine = stats::visible(&mut tx).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(mine.len(), 2, "{mine:?}");
    let active = mine
        .iter()
        .find(|r| r.status == CertificateStatus::Active)
        .unwrap();
    assert_eq!(
        (active.certificates, active.expiring_7d, active.expiring_30d),
        (4, 2, 3)
    );
    let rev = mine
        .iter()
        .find(|r| r.status == CertificateStatus::Revoked)
        .unwrap();
    assert_eq!(
        (rev.certificates, rev.expiring_7d, rev.expiring_30d),
        (1, 0, 0)
    );

    let mut tx = db.begin(&sys).await.unwrap();
    let all = stats::visible(&mut tx).await.unwrap();
    assert_eq!(all.len(), 4);
    assert_eq!(all.iter().map(|r| r.certificates).sum::<i64>(), 7);
    let ownerless = all.iter().find(|r| r.owner_id.is_nil()).unwrap();
    assert_eq!((ownerless.ca_id, ownerless.expiring_7d), (ca, 1));
    tx.rollback().await.unwrap();

    // A second refresh (again concurrent) picks up a change, and nobody sees stale rows
    // removed: Bob's certificate is superseded.
    let bobs = {
        let mut tx = db.begin(&sys).await.unwrap();
        keyinfra_db::certificates::list_for_owner(&mut tx, bob, 10)
            .await
            .unwrap()[0]
            .id
    };
    fixtures::set_status(&db, bobs, CertificateStatus::Superseded).await;
    stats::refresh(&mut m).await.unwrap();
    let mut tx = db
        .begin(&Actor::User {
            id: bob,
            role: UserRole::User,
        })
        .await
        .unwrap();
    let bob_rows = stats::visible(&mut tx).await.unwrap();
    assert_eq!(bob_rows.len(), 1);
    assert_eq!(
        (
            bob_rows[0].status,
            bob_rows[0].certificates,
            bob_rows[0].expiring_30d
        ),
        (CertificateStatus::Superseded, 1, 0)
    );

    // No identity, no statistics.
    let mut tx = db.begin(&Actor::Anonymous).await.unwrap();
    assert!(stats::visible(&mut tx).await.unwrap().is_empty());
}
