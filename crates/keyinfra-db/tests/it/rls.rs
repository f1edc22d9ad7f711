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
            algorithm: keyinfra_pki::KeyAlgorithm::Ed25519,
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

// Migration 0014: the wall holds against SQL run as keyinfra_app with an identity of the
// caller's choosing (set_config is open to anyone who can run SQL).

#[tokio::test]
async fn the_serial_registry_shows_a_user_only_their_own_rows() {
    let w = world().await;
    let sql = "SELECT certificate_id FROM certificate_serials ORDER BY not_after";
    assert!(
        ids(&w.db, &Actor::Anonymous, sql).await.is_empty(),
        "the registry leaked rows without an identity"
    );
    assert_eq!(ids(&w.db, &user(w.alice), sql).await, [w.alice_cert]);
    assert_eq!(ids(&w.db, &user(w.bob), sql).await, [w.bob_cert]);
    assert_eq!(
        ids(&w.db, &Actor::System, sql).await,
        [w.alice_cert, w.bob_cert]
    );

    // The registry's owner follows a reassignment, and a deleted owner (SET NULL).
    let mut tx = w.db.begin(&Actor::System).await.unwrap();
    keyinfra_db::certificates::set_owner(&mut tx, &[w.alice_cert], w.bob)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(ids(&w.db, &user(w.alice), sql).await.is_empty());
    assert_eq!(
        ids(&w.db, &user(w.bob), sql).await,
        [w.alice_cert, w.bob_cert]
    );
    let mut owner = w.tdb.owner_connection().await;
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM certificate_serials AS s JOIN certificates AS c
           ON c.id = s.certificate_id AND c.not_after = s.not_after
         WHERE s.owner_id IS DISTINCT FROM c.owner_id",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(mismatched, 0);

    // Lookups through the registry still find a USER's own certificate, and only that.
    let mut tx = w.db.begin(&user(w.bob)).await.unwrap();
    assert!(
        keyinfra_db::certificates::get(&mut tx, w.bob_cert)
            .await
            .unwrap()
            .is_some()
    );
    drop(tx);
    let mut tx = w.db.begin(&user(w.alice)).await.unwrap();
    assert!(
        keyinfra_db::certificates::get(&mut tx, w.bob_cert)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_forged_identity_cannot_run_the_maintenance_functions() {
    let w = world().await;
    // SYSTEM and ADMIN are set_config values like any other: claiming them buys nothing.
    let admin = Actor::User {
        id: w.alice,
        role: UserRole::Admin,
    };
    for actor in [Actor::System, admin, user(w.alice), Actor::Anonymous] {
        for sql in [
            "SELECT * FROM drop_expired_certificate_partitions('0 days', now() + interval '100 years')",
            "SELECT * FROM ensure_certificate_partitions(1)",
            "SELECT delete_orphaned_private_keys()",
            "SELECT refresh_certificate_stats()",
        ] {
            let mut tx = w.db.begin(&actor).await.unwrap();
            let err = keyinfra_db::testing::raw_query(&mut tx, sql)
                .await
                .unwrap_err();
            assert!(
                matches!(err, DbError::PermissionDenied),
                "{actor:?} ran {sql}: {err:?}"
            );
        }
    }
    assert_eq!(
        ids(&w.db, &Actor::System, "SELECT id FROM certificates")
            .await
            .len(),
        2
    );
    // The maintenance connection (the URL's own role) still runs them.
    let mut m = w.db.maintenance().await.unwrap();
    keyinfra_db::partitions::ensure(
        &mut m,
        1,
        time::OffsetDateTime::UNIX_EPOCH + Duration::days(20_000),
    )
    .await
    .unwrap();
    keyinfra_db::stats::refresh(&mut m).await.unwrap();
    assert_eq!(
        keyinfra_db::partitions::delete_orphaned_keys(&mut m, 10)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn password_hashes_leave_the_database_one_per_transaction_and_only_for_a_login() {
    let w = world().await;
    let admin = Actor::User {
        id: w.alice,
        role: UserRole::Admin,
    };
    // No identity, however forged, reads the column.
    for actor in [Actor::System, admin, user(w.alice), Actor::Anonymous] {
        let mut tx = w.db.begin(&actor).await.unwrap();
        let err = keyinfra_db::testing::raw_query(&mut tx, "SELECT password_hash FROM users")
            .await
            .unwrap_err();
        assert!(
            matches!(err, DbError::PermissionDenied),
            "{actor:?}: {err:?}"
        );
    }
    // The other columns stay readable as before.
    assert_eq!(
        ids(&w.db, &Actor::System, "SELECT id FROM users")
            .await
            .len(),
        2
    );
    // The login lookup answers only a transaction without identity...
    for actor in [Actor::System, admin, user(w.alice)] {
        let mut tx = w.db.begin(&actor).await.unwrap();
        let err = keyinfra_db::users::login_lookup(&mut tx, "alice")
            .await
            .unwrap_err();
        assert!(
            matches!(err, DbError::PermissionDenied),
            "{actor:?}: {err:?}"
        );
    }
    // ...once per transaction, so one statement cannot collect every hash.
    let mut tx = w.db.begin(&Actor::Anonymous).await.unwrap();
    let bulk = keyinfra_db::testing::raw_query(
        &mut tx,
        "SELECT h.password_hash FROM unnest(ARRAY['alice', 'bob']) AS n, keyinfra_login_lookup(n) AS h",
    )
    .await
    .unwrap_err();
    assert!(matches!(bulk, DbError::PermissionDenied), "{bulk:?}");
    drop(tx);
    let mut tx = w.db.begin(&Actor::Anonymous).await.unwrap();
    let found = keyinfra_db::users::login_lookup(&mut tx, "ALICE")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id, found.password_hash.as_str()),
        (w.alice, fixtures::PHC)
    );
    // Forging the settings again does not reset the count: the mark is a lock the
    // transaction holds until it ends.
    keyinfra_db::testing::raw_query(
        &mut tx,
        "SELECT set_config('keyinfra.user_id', '', true), set_config('keyinfra.user_role', '', true)",
    )
    .await
    .unwrap();
    let err = keyinfra_db::users::login_lookup(&mut tx, "bob")
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::PermissionDenied), "{err:?}");
    drop(tx);
    // A new transaction may look up again (the next login).
    let mut tx = w.db.begin(&Actor::Anonymous).await.unwrap();
    assert!(
        keyinfra_db::users::login_lookup(&mut tx, "bob")
            .await
            .unwrap()
            .is_some()
    );
    tx.commit().await.unwrap();

    // The password change reads its own user's hash, once, and nobody else's.
    let mut tx = w.db.begin(&user(w.alice)).await.unwrap();
    assert_eq!(
        keyinfra_db::users::password_hash(&mut tx, w.bob)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        keyinfra_db::users::password_hash(&mut tx, w.alice)
            .await
            .unwrap()
            .as_deref(),
        Some(fixtures::PHC)
    );
    let err = keyinfra_db::users::password_hash(&mut tx, w.alice)
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::PermissionDenied), "{err:?}");
}

#[tokio::test]
async fn the_login_role_of_the_url_is_reported_so_that_serve_can_warn() {
    let w = world().await;
    let mut owner = w.tdb.owner_connection().await;
    let (name, superuser): (String, bool) = sqlx::query_as(
        "SELECT session_user::text, rolsuper FROM pg_roles WHERE rolname = session_user",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    let login = w.db.login_role();
    assert_eq!(
        (login.name.as_str(), login.superuser),
        (name.as_str(), superuser)
    );
    assert_eq!(
        login.escapes_row_level_security(),
        superuser || login.bypass_rls
    );

    // The production setup: a NOSUPERUSER login role that is only a member of keyinfra_app.
    let role = format!("keyinfra_test_login_{}", Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE keyinfra_app"
    )))
    .execute(&mut owner)
    .await
    .unwrap();
    let mut url = url::Url::parse(w.tdb.url()).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(None).unwrap();
    let db = Database::connect(url.as_str(), &keyinfra_db::PoolSettings::default())
        .await
        .unwrap();
    assert_eq!(db.login_role().name, role);
    assert!(!db.login_role().escapes_row_level_security());
    // Requests work as before; the maintenance functions are refused to this role.
    assert_eq!(
        ids(&db, &Actor::System, "SELECT id FROM certificates")
            .await
            .len(),
        2
    );
    let mut m = db.maintenance().await.unwrap();
    let err = keyinfra_db::stats::refresh(&mut m).await.unwrap_err();
    assert!(matches!(err, DbError::PermissionDenied), "{err:?}");
    m.close().await;
    db.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE {role}")))
        .execute(&mut owner)
        .await
        .unwrap();
}
