//! The schema's ENUM types against the vocabularies they store: every canonical value
//! round-trips through its column, and the schema has no label the code does not know.

use keyinfra_db::testing::TestDatabase;
use keyinfra_db::{Actor, revocations};
use keyinfra_pki::RevocationReason;
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
