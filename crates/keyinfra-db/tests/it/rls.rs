//! Row-level security, exercised through the application's pool. TestDatabase's URL names
//! the server's superuser (in CI `postgres`), so these tests also show that a superuser
//! DATABASE_URL does not bypass the policies.

use keyinfra_db::testing::TestDatabase;
use keyinfra_db::{Actor, Database, DbError, UserRole};
use sqlx::Row;
use time::Duration;
use uuid::Uuid;

use crate::fixtures::{self, Cert};

struct World {
    tdb: TestDatabase,
    db: Database,
    alice: Uuid,
    bob: Uuid,
    alice_cert: Uuid,
    bob_cert: Uuid,
    alice_key: Uuid,
    bob_key: Uuid,
}

async fn world() -> World {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let alice = fixtures::user(&db, "alice", UserRole::User).await;
    let bob = fixtures::user(&db, "bob", UserRole::User).await;
    let alice_key = fixtures::sealed_key(&db, Some(alice)).await;
    let bob_key = fixtures::sealed_key(&db, Some(bob)).await;
    let now = fixtures::db_now(&tdb).await;
    let mut a = Cert::new(ca, Some(alice), "0A", now + Duration::days(30));
    a.key = Some(alice_key);
    let alice_cert = a.insert(&db, &Actor::System).await.unwrap();
    // Bob's certificate sits in another partition.
    let mut b = Cert::new(ca, Some(bob), "0B", now + Duration::days(200));
    b.key = Some(bob_key);
    let bob_cert = b.insert(&db, &Actor::System).await.unwrap();
    World {
        tdb,
        db,
        alice,
        bob,
        alice_cert,
        bob_cert,
        alice_key,
        bob_key,
    }
}

fn user(id: Uuid) -> Actor {
    Actor::User {
        id,
        role: UserRole::User,
    }
}

/// Runs an unfiltered query inside a transaction of the application's pool.
async fn ids(db: &Database, actor: &Actor, sql: &'static str) -> Vec<Uuid> {
    let mut tx = db.begin(actor).await.unwrap();
    let rows = keyinfra_db::testing::raw_query(&mut tx, sql).await.unwrap();
    tx.rollback().await.unwrap();
    rows.iter().map(|r| r.get::<Uuid, _>(0)).collect()
}

#[tokio::test]
async fn the_pool_runs_as_the_application_role_even_with_a_superuser_url() {
    let w = world().await;
    let mut owner = w.tdb.owner_connection().await;
    let url_role_is_super: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            .fetch_one(&mut owner)
            .await
            .unwrap();
    let mut tx = w.db.begin(&Actor::Anonymous).await.unwrap();
    let rows = keyinfra_db::testing::raw_query(&mut tx, "SELECT current_user::text, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").await.unwrap();
    assert_eq!(rows[0].get::<String, _>(0), "keyinfra_app");
    assert!(!rows[0].get::<bool, _>(1) && !rows[0].get::<bool, _>(2));
    println!("the test URL's own role is superuser: {url_role_is_super}");
}

#[tokio::test]
async fn a_user_sees_only_their_own_certificates_and_keys() {
    let w = world().await;
    assert_eq!(
        ids(&w.db, &user(w.alice), "SELECT id FROM certificates").await,
        vec![w.alice_cert]
    );
    assert_eq!(
        ids(&w.db, &user(w.bob), "SELECT id FROM certificates").await,
        vec![w.bob_cert]
    );
    assert_eq!(
        ids(&w.db, &user(w.alice), "SELECT id FROM private_keys").await,
        vec![w.alice_key]
    );
    assert_eq!(
        ids(&w.db, &user(w.bob), "SELECT id FROM private_keys").await,
        vec![w.bob_key]
    );
    assert_eq!(
        ids(&w.db, &user(w.alice), "SELECT id FROM users").await,
        vec![w.alice]
    );
    // The registry only maps serials to ids; the certificate behind B's serial stays hidden.
    assert!(
        ids(
            &w.db,
            &user(w.alice),
            "SELECT id FROM certificate_by_serial('0B')"
        )
        .await
        .is_empty()
    );

    let admin = Actor::User {
        id: Uuid::new_v4(),
        role: UserRole::Admin,
    };
    let mut all = ids(&w.db, &admin, "SELECT id FROM certificates").await;
    all.sort();
    let mut expected = vec![w.alice_cert, w.bob_cert];
    expected.sort();
    assert_eq!(all, expected);
    assert_eq!(
        ids(&w.db, &admin, "SELECT id FROM private_keys")
            .await
            .len(),
        2
    );
}

#[tokio::test]
async fn without_an_identity_nothing_per_user_is_visible() {
    let w = world().await;
    for sql in [
        "SELECT id FROM certificates",
        "SELECT id FROM private_keys",
        "SELECT id FROM users",
        "SELECT id FROM revoked_certificates",
        "SELECT id FROM audit_events",
    ] {
        assert!(
            ids(&w.db, &Actor::Anonymous, sql).await.is_empty(),
            "{sql} leaked rows"
        );
    }
    // Public data stays readable: CA certificates (served without login).
    assert_eq!(
        ids(
            &w.db,
            &Actor::Anonymous,
            "SELECT id FROM certificate_authorities"
        )
        .await
        .len(),
        1
    );
}

#[tokio::test]
async fn a_user_cannot_write_rows_owned_by_someone_else() {
    let w = world().await;
    let ca: Uuid = ids(
        &w.db,
        &Actor::System,
        "SELECT id FROM certificate_authorities",
    )
    .await[0];
    let now = fixtures::db_now(&w.tdb).await;

    // Inserting a certificate owned by Bob, as Alice.
    let err = Cert::new(ca, Some(w.bob), "0C", now + Duration::days(5))
        .insert(&w.db, &user(w.alice))
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::PermissionDenied), "{err:?}");
    // Inserting a key owned by Bob, as Alice.
    let mut tx = w.db.begin(&user(w.alice)).await.unwrap();
    let err = keyinfra_db::private_keys::insert(
        &mut tx,
        &keyinfra_db::private_keys::NewSealedKey {
            id: Uuid::new_v4(),
            owner_id: Some(w.bob),
            algorithm: keyinfra_db::KeyAlgorithm::Ed25519,
            public_key_fingerprint: &[9; 32],
            ciphertext: &[1; 64],
            nonce: &[0; 12],
            salt: &[0; 32],
            kek_version: 1,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DbError::PermissionDenied), "{err:?}");
    drop(tx);

    // Updating Bob's certificate as Alice touches nothing: the row is invisible to her.
    let mut tx = w.db.begin(&user(w.alice)).await.unwrap();
    let changed = keyinfra_db::certificates::set_status(
        &mut tx,
        w.bob_cert,
        keyinfra_db::CertificateStatus::Revoked,
    )
    .await
    .unwrap();
    assert!(!changed);
    let n = keyinfra_db::testing::raw_execute(&mut tx, "UPDATE private_keys SET kek_version = 2")
        .await
        .unwrap();
    assert_eq!(n, 1, "only Alice's own key row is updatable");
    tx.rollback().await.unwrap();

    // Handing her own certificate to Bob fails the policy's WITH CHECK.
    let mut tx = w.db.begin(&user(w.alice)).await.unwrap();
    let sql = format!(
        "UPDATE certificates SET owner_id = '{}' WHERE id = '{}'",
        w.bob, w.alice_cert
    );
    let err = keyinfra_db::testing::raw_execute_owned(&mut tx, sql)
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::PermissionDenied), "{err:?}");
    drop(tx);

    // A USER may not promote themselves, even on their own row.
    let mut tx = w.db.begin(&user(w.alice)).await.unwrap();
    let err = keyinfra_db::testing::raw_execute(&mut tx, "UPDATE users SET role = 'ADMIN'")
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::PermissionDenied), "{err:?}");
    drop(tx);

    let mut tx = w.db.begin(&Actor::System).await.unwrap();
    let status: Vec<String> = keyinfra_db::testing::raw_query(
        &mut tx,
        "SELECT status::text FROM certificates ORDER BY not_after",
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(status, ["ACTIVE", "ACTIVE"]);
}
