//! Rows the tests need, inserted through the repositories as the SYSTEM actor.

use keyinfra_db::authorities::{self, NewAuthority};
use keyinfra_db::certificates::{self, NewCertificate};
use keyinfra_db::private_keys::{self, NewSealedKey};
use keyinfra_db::users::{self, NewUser};
use keyinfra_db::{Actor, CertificateStatus, Database, DbError, UserRole};
use keyinfra_pki::KeyAlgorithm;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

pub const PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA";

pub fn fingerprint(der: &[u8]) -> Vec<u8> {
    Sha256::digest(der).to_vec()
}

pub async fn user(db: &Database, name: &str, role: UserRole) -> Uuid {
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let id = users::insert(
        &mut tx,
        &NewUser {
            username: name,
            password_hash: PHC,
            role,
            email: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

pub async fn authority(db: &Database, name: &str) -> Uuid {
    let der = format!("fake CA certificate {name}").into_bytes();
    let fp = fingerprint(&der);
    let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let id = authorities::insert(
        &mut tx,
        &NewAuthority {
            name,
            subject_dn: &format!("CN={name}"),
            certificate_der: &der,
            fingerprint_sha256: &fp,
            private_key_id: None,
            parent_ca_id: None,
            not_before: now - Duration::days(3650),
            not_after: now + Duration::days(36500),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

pub async fn sealed_key(db: &Database, owner: Option<Uuid>) -> Uuid {
    let id = Uuid::new_v4();
    let mut tx = db.begin(&Actor::System).await.unwrap();
    private_keys::insert(
        &mut tx,
        &NewSealedKey {
            id,
            owner_id: owner,
            algorithm: KeyAlgorithm::EcdsaP256,
            public_key_fingerprint: &fingerprint(id.as_bytes()),
            ciphertext: &[7u8; 80],
            nonce: &[1u8; 12],
            salt: &[2u8; 32],
            kek_version: 1,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    id
}

/// A certificate row with fake DER; `serial` must be canonical hex.
pub struct Cert {
    pub ca: Uuid,
    pub owner: Option<Uuid>,
    pub serial: String,
    pub not_after: OffsetDateTime,
    pub key: Option<Uuid>,
    pub algorithm: KeyAlgorithm,
}

impl Cert {
    pub fn new(ca: Uuid, owner: Option<Uuid>, serial: &str, not_after: OffsetDateTime) -> Self {
        Self {
            ca,
            owner,
            serial: serial.to_owned(),
            not_after,
            key: None,
            algorithm: KeyAlgorithm::EcdsaP256,
        }
    }

    pub async fn insert(&self, db: &Database, actor: &Actor) -> Result<Uuid, DbError> {
        let id = Uuid::new_v4();
        let der = format!("fake certificate {id}").into_bytes();
        let fp = fingerprint(&der);
        let sans = vec![format!("DNS:{}.example.net", self.serial.to_lowercase())];
        let mut tx = db.begin(actor).await?;
        certificates::insert(
            &mut tx,
            &NewCertificate {
                id,
                ca_id: self.ca,
                owner_id: self.owner,
                serial_number: &self.serial,
                subject_dn: &format!("CN=device-{},O=Test", self.serial),
                subject_alt_names: &sans,
                not_before: self.not_after - Duration::days(365),
                not_after: self.not_after,
                version: 1,
                renewed_from: None,
                renewed_at: None,
                renewed_by: None,
                certificate_der: &der,
                fingerprint_sha256: &fp,
                key_algorithm: self.algorithm,
                private_key_id: self.key,
                profile: "device",
                created_by: self.owner,
                channel: "api",
            },
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }
}

pub async fn set_status(db: &Database, id: Uuid, status: CertificateStatus) {
    let mut tx = db.begin(&Actor::System).await.unwrap();
    assert!(certificates::set_status(&mut tx, id, status).await.unwrap());
    tx.commit().await.unwrap();
}

/// The database server's clock, so that tests agree with now() in SQL.
pub async fn db_now(db: &keyinfra_db::testing::TestDatabase) -> OffsetDateTime {
    use sqlx::Connection;
    let mut conn = db.owner_connection().await;
    let now: OffsetDateTime = sqlx::query_scalar("SELECT now()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    now
}

/// The text of an EXPLAIN, one plan line per line, for assertions about what the planner did.
pub async fn plan(conn: &mut sqlx::PgConnection, explain: &str) -> String {
    let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
        .fetch_all(conn)
        .await
        .unwrap();
    lines.join("\n")
}
