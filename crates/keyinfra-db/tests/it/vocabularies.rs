//! The schema's ENUM types against the vocabularies they store: every canonical value
//! round-trips through its column, and the schema has no label the code does not know.

use keyinfra_db::testing::TestDatabase;
use keyinfra_db::{Actor, certificates, revocations};
use keyinfra_pki::{KeyAlgorithm, RevocationReason};
use time::{Duration, OffsetDateTime};

use crate::fixtures::{self, Cert};

#[tokio::test]
async fn revocation_reasons_are_stored_under_their_rfc_5280_names() {
    let tdb = TestDatabase::new().await;
    let labels: Vec<String> =
        sqlx::query_scalar("SELECT unnest(enum_range(NULL::revocation_reason))::text")
            .fetch_all(&mut tdb.owner_connection().await)
            .await
            .unwrap();
    let names: Vec<&str> = RevocationReason::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(labels, names);

    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "Vocabulary CA").await;
    let not_after = OffsetDateTime::UNIX_EPOCH + Duration::days(20_100);
    for (i, reason) in RevocationReason::ALL.into_iter().enumerate() {
        let serial = format!("{:02X}", i + 1);
        let id = Cert::new(ca, None, &serial, not_after)
            .insert(&db, &Actor::System)
            .await
            .unwrap();
        let mut tx = db.begin(&Actor::System).await.unwrap();
        let revoked_at = not_after - Duration::days(30);
        assert!(
            revocations::insert(
                &mut tx,
                &revocations::NewRevocation {
                    certificate_id: id,
                    revoked_at,
                    reason,
                    invalidity_date: None,
                    revoked_by: None,
                },
            )
            .await
            .unwrap()
        );
        let read = revocations::for_certificate(&mut tx, id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read.reason, reason);
        tx.commit().await.unwrap();
    }
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT reason::text FROM revoked_certificates WHERE ca_id = $1 ORDER BY serial_number",
    )
    .bind(ca)
    .fetch_all(&mut tdb.owner_connection().await)
    .await
    .unwrap();
    assert_eq!(stored, names);
}

#[tokio::test]
async fn key_algorithms_are_stored_under_their_labels_and_p521_still_reads() {
    let tdb = TestDatabase::new().await;
    let mut owner = tdb.owner_connection().await;
    let labels: Vec<String> =
        sqlx::query_scalar("SELECT unnest(enum_range(NULL::key_algorithm))::text")
            .fetch_all(&mut owner)
            .await
            .unwrap();
    // The schema's values are the issued algorithms plus ecdsa-p521, which nothing issues.
    let mut expected: Vec<&str> = KeyAlgorithm::ALL.iter().map(|a| a.label()).collect();
    expected.insert(2, "ecdsa-p521");
    assert_eq!(labels, expected);

    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "Algorithm CA").await;
    let not_after = OffsetDateTime::UNIX_EPOCH + Duration::days(20_100);
    for (i, algorithm) in KeyAlgorithm::ALL.into_iter().enumerate() {
        let mut cert = Cert::new(ca, None, &format!("{:02X}", i + 1), not_after);
        cert.algorithm = algorithm;
        let id = cert.insert(&db, &Actor::System).await.unwrap();
        let mut tx = db.begin(&Actor::System).await.unwrap();
        let read = certificates::get(&mut tx, id).await.unwrap().unwrap();
        tx.commit().await.unwrap();
        assert_eq!(read.key_algorithm.algorithm(), Some(algorithm));
        assert_eq!(read.key_algorithm.as_str(), algorithm.label());
    }

    // A row holding the value nothing writes any more still reads, as itself.
    let id = Cert::new(ca, None, "7F", not_after)
        .insert(&db, &Actor::System)
        .await
        .unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut owner)
        .await
        .unwrap();
    sqlx::query("UPDATE certificates SET key_algorithm = 'ecdsa-p521' WHERE id = $1")
        .bind(id)
        .execute(&mut owner)
        .await
        .unwrap();
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let read = certificates::get(&mut tx, id).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    assert_eq!(read.key_algorithm, keyinfra_db::KeyAlgorithm::EcdsaP521);
    assert_eq!(read.key_algorithm.algorithm(), None);
    assert_eq!(read.key_algorithm.as_str(), "ecdsa-p521");
}
