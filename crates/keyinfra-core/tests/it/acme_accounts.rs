//! ACME accounts without external account binding (KEYINFRA_ACME_EAB_REQUIRED=false):
//! owned by the configured default owner, or refused when there is none. The binding path
//! is tested end to end, with certbot, in the server's tests.

use std::sync::Arc;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyinfra_core::acme::{AcmeService, AcmeSettings, KeyRule};
use keyinfra_core::auth::token::JwtSecret;
use keyinfra_core::authority::{Authority, AuthoritySettings};
use keyinfra_core::{Clock, FixedClock, OsRandom};
use keyinfra_db::testing::TestDatabase;
use keyinfra_db::users::{self, NewUser};
use keyinfra_db::{Actor, UserRole};
use keyinfra_pki::acme::wire::ProblemType;
use keyinfra_pki::seal::MasterKeys;
use serde_json::json;
use time::{Duration, OffsetDateTime};

const URL: &str = "https://ca.example.net/acme/new-account";

fn service(clock: &Arc<FixedClock>, settings: AcmeSettings) -> AcmeService {
    let mut masters = MasterKeys::new();
    masters.insert(1, &[7; 32]).unwrap();
    let authority = Authority::new(
        AuthoritySettings::new("http://127.0.0.1:8080"),
        masters,
        Arc::clone(clock) as Arc<dyn Clock>,
    );
    AcmeService::new(&JwtSecret::new(vec![5; 32]).unwrap(), &authority, settings)
}

/// newAccount signed with an Ed25519 key and an embedded jwk.
fn signed(key: &Ed25519KeyPair, nonce: &str, payload: &serde_json::Value) -> Vec<u8> {
    let jwk = json!({ "kty": "OKP", "crv": "Ed25519",
                      "x": URL_SAFE_NO_PAD.encode(key.public_key().as_ref()) });
    let protected = URL_SAFE_NO_PAD
        .encode(json!({ "alg": "EdDSA", "nonce": nonce, "url": URL, "jwk": jwk }).to_string());
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    let signature = key.sign(format!("{protected}.{payload}").as_bytes());
    json!({ "protected": protected, "payload": payload,
            "signature": URL_SAFE_NO_PAD.encode(signature.as_ref()) })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn without_binding_accounts_belong_to_the_default_owner_or_to_nobody() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let clock = Arc::new(FixedClock::new(
        OffsetDateTime::UNIX_EPOCH + Duration::days(20_000),
    ));
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let owner = users::insert(
        &mut tx,
        &NewUser {
            username: "acme-robot",
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            role: UserRole::User,
            email: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let key = Ed25519KeyPair::generate().unwrap();

    // Binding not required, but no default owner: refused, nothing written.
    let nobody = service(
        &clock,
        AcmeSettings {
            eab_required: false,
            ..AcmeSettings::default()
        },
    );
    let nonce = nobody.new_nonce(&mut OsRandom).unwrap();
    let request = nobody
        .verify(&db, &signed(&key, &nonce, &json!({})), URL, KeyRule::Jwk)
        .await
        .unwrap();
    let refused = nobody.new_account(&db, &request, URL).await.unwrap_err();
    assert_eq!(refused.problem, ProblemType::ExternalAccountRequired);
    assert_eq!(
        tdb.scalar_i64("SELECT count(*) FROM acme_accounts").await,
        0
    );

    // With terms of service, an account must agree to them.
    let owned = service(
        &clock,
        AcmeSettings {
            eab_required: false,
            default_owner: Some(owner),
            terms_of_service: Some("https://ca.example.net/terms".into()),
            ..AcmeSettings::default()
        },
    );
    let nonce = owned.new_nonce(&mut OsRandom).unwrap();
    let request = owned
        .verify(&db, &signed(&key, &nonce, &json!({})), URL, KeyRule::Jwk)
        .await
        .unwrap();
    let refused = owned.new_account(&db, &request, URL).await.unwrap_err();
    assert_eq!(refused.problem, ProblemType::UserActionRequired);

    let nonce = owned.new_nonce(&mut OsRandom).unwrap();
    let agreed = json!({ "termsOfServiceAgreed": true });
    let request = owned
        .verify(&db, &signed(&key, &nonce, &agreed), URL, KeyRule::Jwk)
        .await
        .unwrap();
    let answer = owned.new_account(&db, &request, URL).await.unwrap();
    assert!(answer.created);
    assert_eq!(answer.account.owner_id, owner);
    assert_eq!(answer.account.eab_key_id, None);
    assert!(answer.account.terms_agreed);

    // The same key again finds it, without creating another.
    let nonce = owned.new_nonce(&mut OsRandom).unwrap();
    let request = owned
        .verify(&db, &signed(&key, &nonce, &agreed), URL, KeyRule::Jwk)
        .await
        .unwrap();
    let again = owned.new_account(&db, &request, URL).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.account.id, answer.account.id);
    assert_eq!(
        tdb.scalar_i64("SELECT count(*) FROM acme_accounts").await,
        1
    );
}
