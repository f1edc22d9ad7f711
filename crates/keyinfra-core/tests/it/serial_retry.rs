use keyinfra_core::CoreError;
use keyinfra_core::certificates::{
    CertificateDraft, NoHooks, SERIAL_ATTEMPTS, record_new_certificate,
};
use keyinfra_db::authorities::{self, NewAuthority};
use keyinfra_db::testing::TestDatabase;
use keyinfra_db::{Actor, Database};
use keyinfra_pki::KeyAlgorithm;
use keyinfra_pki::{PkiError, RandomSource};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Replays a script of random blocks, one per serial drawn.
struct Scripted(Vec<u8>);
impl RandomSource for Scripted {
    fn fill(&mut self, dest: &mut [u8]) -> Result<(), PkiError> {
        let b = if self.0.is_empty() {
            0x55
        } else {
            self.0.remove(0)
        };
        dest.fill(b);
        Ok(())
    }
}

async fn ca(db: &Database) -> Uuid {
    let der = b"fake CA".to_vec();
    let fp = Sha256::digest(&der).to_vec();
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let t = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
    let id = authorities::insert(
        &mut tx,
        &NewAuthority {
            name: "CA",
            subject_dn: "CN=CA",
            certificate_der: &der,
            fingerprint_sha256: &fp,
            private_key_id: None,
            parent_ca_id: None,
            not_before: t,
            not_after: t + Duration::days(3650),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

fn draft(ca_id: Uuid) -> CertificateDraft {
    let t = OffsetDateTime::UNIX_EPOCH + Duration::days(20_500);
    CertificateDraft {
        id: Uuid::new_v4(),
        ca_id,
        owner_id: None,
        subject_dn: "CN=router".into(),
        subject_alt_names: vec!["DNS:router.example.net".into()],
        not_before: t,
        not_after: t + Duration::days(90),
        key_algorithm: KeyAlgorithm::EcdsaP256,
        private_key_id: None,
        profile: "device".into(),
        created_by: None,
        version: 1,
        renewed_from: None,
        renewed_at: None,
        renewed_by: None,
        channel: "cli",
    }
}

/// "Signs" by embedding the serial, as a real certificate does.
fn sign(serial: &keyinfra_pki::SerialNumber) -> Result<Vec<u8>, CoreError> {
    Ok(format!("certificate with serial {serial}").into_bytes())
}

#[tokio::test]
async fn a_serial_collision_is_retried_with_a_fresh_serial_and_resigned() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca_id = ca(&db).await;

    let first = record_new_certificate(
        &db,
        &Actor::System,
        &mut Scripted(vec![0x11]),
        &draft(ca_id),
        sign,
        &mut NoHooks,
    )
    .await
    .unwrap();
    assert_eq!(first.attempts, 1);

    // The next draw repeats the first serial, then a fresh one.
    let mut signed = Vec::new();
    let second = record_new_certificate(
        &db,
        &Actor::System,
        &mut Scripted(vec![0x11, 0x22]),
        &draft(ca_id),
        |s| {
            signed.push(s.to_hex());
            sign(s)
        },
        &mut NoHooks,
    )
    .await
    .unwrap();
    assert_eq!(second.attempts, 2);
    assert_eq!(
        signed,
        vec![first.serial_number.to_hex(), second.serial_number.to_hex()]
    );
    assert_ne!(first.serial_number, second.serial_number);
    assert_eq!(second.certificate_der, sign(&second.serial_number).unwrap());

    assert_eq!(tdb.scalar_i64("SELECT count(*) FROM certificates").await, 2);
}

#[tokio::test]
async fn a_broken_generator_is_reported_after_bounded_attempts() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca_id = ca(&db).await;
    record_new_certificate(
        &db,
        &Actor::System,
        &mut Scripted(vec![]),
        &draft(ca_id),
        sign,
        &mut NoHooks,
    )
    .await
    .unwrap();
    // A "generator" that always returns the same bytes.
    let err = record_new_certificate(
        &db,
        &Actor::System,
        &mut Scripted(vec![]),
        &draft(ca_id),
        sign,
        &mut NoHooks,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, CoreError::SerialRetriesExhausted { attempts } if attempts == SERIAL_ATTEMPTS),
        "{err:?}"
    );
}
