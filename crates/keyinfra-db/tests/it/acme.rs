//! ACME's accounts and binding keys (migration 0031): each row is its owner's under
//! row-level security, and the look-ups a request makes before its JWS is verified go
//! through definer functions that give nobody more than a public key and an owner.

use keyinfra_db::acme::{self, AccountStatus, NewAccount};
use keyinfra_db::testing::TestDatabase;
use keyinfra_db::{Actor, Database, DbError, UserRole};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::fixtures;

fn user(id: Uuid) -> Actor {
    Actor::User {
        id,
        role: UserRole::User,
    }
}

async fn eab_key(db: &Database, owner: Uuid, now: OffsetDateTime, expires_in: Duration) -> Uuid {
    let mut tx = db.begin(&user(owner)).await.unwrap();
    let id = acme::insert_eab_key(&mut tx, owner, Some(owner), now, now + expires_in)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

#[tokio::test]
async fn a_binding_key_binds_one_account_of_its_owner() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let alice = fixtures::user(&db, "alice", UserRole::User).await;
    let bob = fixtures::user(&db, "bob", UserRole::User).await;
    let now = fixtures::db_now(&tdb).await;
    let key = eab_key(&db, alice, now, Duration::hours(1)).await;
    let expired = eab_key(&db, alice, now, Duration::minutes(1)).await;

    // Before its JWS is verified a request is nobody: the definer function tells it the
    // owner of a usable key, and nothing for an expired or unknown one.
    let mut tx = db.begin(&Actor::Anonymous).await.unwrap();
    assert_eq!(
        acme::eab_key_owner(&mut tx, key, now).await.unwrap(),
        Some(alice)
    );
    assert_eq!(
        acme::eab_key_owner(&mut tx, expired, now + Duration::minutes(2))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        acme::eab_key_owner(&mut tx, Uuid::new_v4(), now)
            .await
            .unwrap(),
        None
    );
    // ... and nobody reads the tables themselves.
    assert!(
        acme::list_eab_keys(&mut tx, None, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    tx.commit().await.unwrap();

    // The owner creates the account and uses the key up in one transaction.
    let jwk =
        json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
    let thumbprint = [7u8; 32];
    let mut tx = db.begin(&user(alice)).await.unwrap();
    let account = acme::insert_account(
        &mut tx,
        &NewAccount {
            owner_id: alice,
            jwk: &jwk,
            jwk_thumbprint: &thumbprint,
            contact: &["mailto:noc@example.net".to_owned()],
            terms_agreed: true,
            eab_key_id: Some(key),
            created_at: now,
        },
    )
    .await
    .unwrap();
    assert!(
        acme::use_eab_key(&mut tx, key, account.id, now)
            .await
            .unwrap()
    );
    // A second use of the same key fails, in the same transaction or any other.
    assert!(
        !acme::use_eab_key(&mut tx, key, account.id, now)
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    assert_eq!(account.status, AccountStatus::Valid);
    assert_eq!(account.owner_id, alice);

    let mut tx = db.begin(&Actor::Anonymous).await.unwrap();
    // A used key binds nothing more.
    assert_eq!(acme::eab_key_owner(&mut tx, key, now).await.unwrap(), None);
    // The account's key and owner, by id and by thumbprint, for any identity.
    let found = acme::account_key(&mut tx, account.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.owner_id, found.jwk, found.status),
        (alice, jwk.clone(), AccountStatus::Valid)
    );
    assert_eq!(
        acme::account_by_thumbprint(&mut tx, &thumbprint)
            .await
            .unwrap(),
        Some((account.id, alice, AccountStatus::Valid))
    );
    assert_eq!(
        acme::account_by_thumbprint(&mut tx, &[8u8; 32])
            .await
            .unwrap(),
        None
    );
    // But not the row itself.
    assert_eq!(acme::get_account(&mut tx, account.id).await.unwrap(), None);
    tx.commit().await.unwrap();

    // Bob neither sees nor changes Alice's account, nor uses her key for his.
    let mut tx = db.begin(&user(bob)).await.unwrap();
    assert_eq!(acme::get_account(&mut tx, account.id).await.unwrap(), None);
    assert!(
        acme::list_accounts(&mut tx, None, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !acme::deactivate_account(&mut tx, account.id, now)
            .await
            .unwrap()
    );
    let fresh = eab_key(&db, alice, now, Duration::hours(1)).await;
    assert!(
        !acme::use_eab_key(&mut tx, fresh, account.id, now)
            .await
            .unwrap()
    );
    // An account for Alice made under Bob's identity is refused by the policy.
    let stolen = acme::insert_account(
        &mut tx,
        &NewAccount {
            owner_id: alice,
            jwk: &jwk,
            jwk_thumbprint: &[9u8; 32],
            contact: &[],
            terms_agreed: true,
            eab_key_id: None,
            created_at: now,
        },
    )
    .await;
    assert!(stolen.is_err(), "{stolen:?}");
    drop(tx);

    // One account per key: the same thumbprint again is a unique violation.
    let mut tx = db.begin(&user(alice)).await.unwrap();
    let again = acme::insert_account(
        &mut tx,
        &NewAccount {
            owner_id: alice,
            jwk: &jwk,
            jwk_thumbprint: &thumbprint,
            contact: &[],
            terms_agreed: true,
            eab_key_id: None,
            created_at: now,
        },
    )
    .await;
    assert!(
        matches!(again, Err(DbError::UniqueViolation { .. })),
        "{again:?}"
    );
    drop(tx);

    // Deactivation is once, and what a key lookup then reports.
    let mut tx = db.begin(&user(alice)).await.unwrap();
    assert!(
        acme::deactivate_account(&mut tx, account.id, now)
            .await
            .unwrap()
    );
    assert!(
        !acme::deactivate_account(&mut tx, account.id, now)
            .await
            .unwrap()
    );
    assert!(
        !acme::set_account_contact(&mut tx, account.id, &[])
            .await
            .unwrap()
    );
    tx.commit().await.unwrap();
    let mut tx = db.begin(&Actor::Anonymous).await.unwrap();
    let found = acme::account_key(&mut tx, account.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.status, AccountStatus::Deactivated);
    tx.commit().await.unwrap();
    let listed = {
        let mut tx = db.begin(&user(alice)).await.unwrap();
        acme::list_eab_keys(&mut tx, None, None, 10).await.unwrap()
    };
    let used = listed.iter().find(|k| k.id == key).unwrap();
    assert_eq!(used.account_id, Some(account.id));
    assert!(used.used_at.is_some());
}
