//! Constraints and triggers that keep the data model honest.

use keyinfra_db::testing::{TestDatabase, raw_execute, raw_execute_owned};
use keyinfra_db::{Actor, CertificateStatus, DbError, UserRole, certificates, revocations, users};
use time::Duration;

use crate::fixtures::{self, Cert};

#[tokio::test]
async fn issued_certificates_are_immutable_and_status_only_moves_forward() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let now = fixtures::db_now(&tdb).await;
    let id = Cert::new(ca, None, "0C", now + Duration::days(40))
        .insert(&db, &Actor::System)
        .await
        .unwrap();

    let mut tx = db.begin(&Actor::System).await.unwrap();
    let sql = format!("UPDATE certificates SET subject_dn = 'CN=forged' WHERE id = '{id}'");
    let err = raw_execute_owned(&mut tx, sql).await.unwrap_err();
    assert!(
        matches!(err, DbError::CheckViolation { ref constraint } if constraint == "certificates_immutable"),
        "{err:?}"
    );
    drop(tx);

    fixtures::set_status(&db, id, CertificateStatus::Revoked).await;
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let err = certificates::set_status(&mut tx, id, CertificateStatus::Active)
        .await
        .unwrap_err();
    assert!(
        matches!(err, DbError::CheckViolation { ref constraint } if constraint == "certificates_status_transition"),
        "{err:?}"
    );
}

#[tokio::test]
async fn check_constraints_refuse_impossible_rows() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let cases = [
        // not_before after not_after
        format!("INSERT INTO certificates (ca_id, serial_number, subject_dn, not_before, not_after, certificate_der, fingerprint_sha256, key_algorithm, profile)
                 VALUES ('{ca}', '01', 'CN=x', now(), now() - interval '1 day', '\\x01', digest('\\x01'::bytea, 'sha256'), 'ed25519', 'device')"),
        // empty subject
        format!("INSERT INTO certificates (ca_id, serial_number, subject_dn, not_before, not_after, certificate_der, fingerprint_sha256, key_algorithm, profile)
                 VALUES ('{ca}', '02', '  ', now(), now() + interval '1 day', '\\x01', digest('\\x01'::bytea, 'sha256'), 'ed25519', 'device')"),
        // version 0
        format!("INSERT INTO certificates (ca_id, serial_number, subject_dn, not_before, not_after, certificate_der, fingerprint_sha256, key_algorithm, profile, version)
                 VALUES ('{ca}', '03', 'CN=x', now(), now() + interval '1 day', '\\x01', digest('\\x01'::bytea, 'sha256'), 'ed25519', 'device', 0)"),
        // fingerprint that does not match the DER
        format!("INSERT INTO certificates (ca_id, serial_number, subject_dn, not_before, not_after, certificate_der, fingerprint_sha256, key_algorithm, profile)
                 VALUES ('{ca}', '04', 'CN=x', now(), now() + interval '1 day', '\\x01', digest('\\x02'::bytea, 'sha256'), 'ed25519', 'device')"),
        // a malformed SAN
        format!("INSERT INTO certificates (ca_id, serial_number, subject_dn, subject_alt_names, not_before, not_after, certificate_der, fingerprint_sha256, key_algorithm, profile)
                 VALUES ('{ca}', '05', 'CN=x', ARRAY['router.example.net'], now(), now() + interval '1 day', '\\x01', digest('\\x01'::bytea, 'sha256'), 'ed25519', 'device')"),
        // a renewal without its date
        format!("INSERT INTO certificates (ca_id, serial_number, subject_dn, not_before, not_after, certificate_der, fingerprint_sha256, key_algorithm, profile, version)
                 VALUES ('{ca}', '06', 'CN=x', now(), now() + interval '1 day', '\\x01', digest('\\x01'::bytea, 'sha256'), 'ed25519', 'device', 2)"),
        // a password that is not a PHC string
        "INSERT INTO users (username, password_hash) VALUES ('mallory', 'plaintext')".to_owned(),
        // a nonce of the wrong size
        "INSERT INTO private_keys (algorithm, public_key_fingerprint, ciphertext, nonce, salt, kek_version)
         VALUES ('ed25519', digest('k', 'sha256'), '\\x0102030405060708090a0b0c0d0e0f1011', '\\x01', digest('s', 'sha256'), 1)".to_owned(),
    ];
    for sql in cases {
        let mut sp = db.begin(&Actor::System).await.unwrap();
        let err = raw_execute_owned(&mut sp, sql.clone()).await.unwrap_err();
        assert!(
            matches!(err, DbError::CheckViolation { .. }),
            "{sql}\n=> {err:?}"
        );
    }
    assert_eq!(raw_execute(&mut tx, "SELECT 1").await.unwrap(), 1);
}

#[tokio::test]
async fn usernames_are_unique_regardless_of_case() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    fixtures::user(&db, "Alice", UserRole::User).await;
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let err = users::insert(
        &mut tx,
        &users::NewUser {
            username: "aLICE",
            password_hash: fixtures::PHC,
            role: UserRole::User,
            email: None,
        },
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, DbError::UniqueViolation { ref constraint } if constraint == "users_username_lower_key"),
        "{err:?}"
    );
}

#[tokio::test]
async fn deleting_a_user_keeps_their_revoked_certificates_for_the_crl() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let gone = fixtures::user(&db, "leaver", UserRole::User).await;
    let key = fixtures::sealed_key(&db, Some(gone)).await;
    let now = fixtures::db_now(&tdb).await;
    let mut cert = Cert::new(ca, Some(gone), "0D", now + Duration::days(100));
    cert.key = Some(key);
    let id = cert.insert(&db, &Actor::System).await.unwrap();

    // What the user-deletion use case does, in one transaction: revoke, then delete.
    let mut tx = db.begin(&Actor::System).await.unwrap();
    assert!(
        revocations::insert(
            &mut tx,
            &revocations::NewRevocation {
                certificate_id: id,
                revoked_at: now,
                reason: keyinfra_pki::RevocationReason::CessationOfOperation,
                invalidity_date: None,
                revoked_by: None,
            }
        )
        .await
        .unwrap()
    );
    assert!(
        certificates::set_status(&mut tx, id, CertificateStatus::Revoked)
            .await
            .unwrap()
    );
    assert!(users::delete(&mut tx, gone).await.unwrap());
    tx.commit().await.unwrap();

    let mut conn = tdb.owner_connection().await;
    let (owner, status, revoked_owner, key_owner): (
        Option<uuid::Uuid>,
        String,
        Option<uuid::Uuid>,
        Option<uuid::Uuid>,
    ) = sqlx::query_as(
        "SELECT c.owner_id, c.status::text, r.owner_id, k.owner_id
             FROM certificates c JOIN revoked_certificates r ON r.certificate_id = c.id
             JOIN private_keys k ON k.id = c.private_key_id WHERE c.id = $1",
    )
    .bind(id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        (owner, status.as_str(), revoked_owner, key_owner),
        (None, "REVOKED", None, None)
    );
    // A second revocation of the same certificate is a conflict.
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let err = revocations::insert(
        &mut tx,
        &revocations::NewRevocation {
            certificate_id: id,
            revoked_at: now,
            reason: keyinfra_pki::RevocationReason::Unspecified,
            invalidity_date: None,
            revoked_by: None,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DbError::UniqueViolation { .. }), "{err:?}");
}

#[tokio::test]
async fn crl_numbers_are_distinct_and_increasing_under_concurrency() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let mut handles = Vec::new();
    for _ in 0..8 {
        let db = db.clone();
        handles.push(tokio::spawn(async move {
            let mut tx = db.begin(&Actor::System).await.unwrap();
            let n = keyinfra_db::authorities::next_crl_number(&mut tx, ca)
                .await
                .unwrap()
                .unwrap();
            tx.commit().await.unwrap();
            n
        }));
    }
    let mut numbers = Vec::new();
    for h in handles {
        numbers.push(h.await.unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=8).collect::<Vec<i64>>());
}
