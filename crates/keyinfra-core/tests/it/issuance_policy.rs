//! Issue 17 in the use cases: the one issuer checks every request against the owner's
//! policy before a key is made or a row written; renewal re-checks today's policy; the
//! dry run and the issue agree. A device enrolling for a user
//! (`Principal::Enrollment`) is held to that user's policy like the user itself.

use std::sync::Arc;

use keyinfra_core::authority::{Authority, AuthoritySettings};
use keyinfra_core::ca_setup::InitOptions;
use keyinfra_core::issuer::{IssueRequest, KeySource};
use keyinfra_core::policy::PolicyChanges;
use keyinfra_core::renewal::RenewRequest;
use keyinfra_core::{AdjustableClock, Clock, CoreError, EnrollmentChannel, OsRandom, Principal};
use keyinfra_db::testing::TestDatabase;
use keyinfra_db::users::{self, NewUser};
use keyinfra_db::{Actor, Database, UserRole};
use keyinfra_pki::KeyAlgorithm;
use keyinfra_pki::seal::MasterKeys;
use proptest::prelude::*;
use uuid::Uuid;

struct Setup {
    clock: Arc<AdjustableClock>,
    tdb: TestDatabase,
    db: Database,
    authority: Authority,
    owner: Uuid,
}

impl Setup {
    async fn new() -> Setup {
        let tdb = TestDatabase::new().await;
        let db = tdb.database().await;
        let mut masters = MasterKeys::new();
        masters.insert(1, &[7; 32]).unwrap();
        let mut settings = AuthoritySettings::new("http://127.0.0.1:8080");
        settings.write_rate = None;
        settings.quota = None;
        let clock = Arc::new(AdjustableClock::new());
        let authority = Authority::new(settings, masters, Arc::clone(&clock) as Arc<dyn Clock>);
        let options = InitOptions {
            root_algorithm: KeyAlgorithm::EcdsaP256,
            ..InitOptions::default()
        };
        authority
            .ca_setup
            .init(&db, &options, &mut OsRandom)
            .await
            .unwrap();
        let mut tx = db.begin(&Actor::System).await.unwrap();
        let owner = users::insert(
            &mut tx,
            &NewUser {
                username: "site1-noc",
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
                role: UserRole::User,
                email: None,
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        Setup {
            clock,
            tdb,
            db,
            authority,
            owner,
        }
    }

    fn device(&self) -> Principal {
        Principal::Enrollment {
            channel: EnrollmentChannel::Scep,
            owner: self.owner,
            challenge_id: None,
        }
    }

    /// Creates a policy from YAML and moves the owner to it.
    async fn policy(&self, yaml: &str) -> Uuid {
        let changes = PolicyChanges::from_text(yaml).unwrap();
        let policies = &self.authority.policies;
        let policy = policies
            .create(&self.db, &Principal::Operator, changes)
            .await
            .unwrap();
        policies
            .assign(&self.db, &Principal::Operator, self.owner, policy.id)
            .await
            .unwrap();
        policy.id
    }

    async fn rows(&self) -> i64 {
        self.tdb
            .scalar_i64(
                "SELECT (SELECT count(*) FROM certificates) + (SELECT count(*) FROM private_keys)",
            )
            .await
    }
}

fn request(cn: &str, sans: &[&str]) -> IssueRequest {
    IssueRequest {
        key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
        subject: Some(format!("CN={cn}")),
        san: Some(sans.iter().map(|s| (*s).to_owned()).collect()),
        profile: "device".into(),
        validity_days: Some(30),
        owner_id: None,
        ca_id: None,
        policy_id: None,
    }
}

fn code_of<T: std::fmt::Debug>(result: Result<T, CoreError>) -> &'static str {
    match result {
        Err(CoreError::Invalid { code, .. }) => code.as_str(),
        other => panic!("expected a 422 refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_device_enrolling_for_a_user_gets_that_users_policy_and_nothing_more() {
    let s = Setup::new().await;
    s.policy("name: site1\nallowed_dns: ['.site1.example.net']\nsubject: {allowed_attributes: [CN, O], fixed: {O: Example Corp}}\n")
        .await;
    let device = s.device();
    let cert = s
        .authority
        .issuer
        .issue(
            &s.db,
            &device,
            request("ap1", &["ap1.site1.example.net"]),
            &mut OsRandom,
        )
        .await
        .unwrap();
    assert_eq!(cert.owner_id, Some(s.owner));
    assert_eq!(cert.subject_dn, "CN=ap1,O=Example Corp");
    let before = (s.rows().await, s.authority.issuer.leaf_keys_generated());
    let refused = s
        .authority
        .issuer
        .issue(
            &s.db,
            &device,
            request("ap2", &["ap2.elsewhere.net"]),
            &mut OsRandom,
        )
        .await;
    assert_eq!(code_of(refused), "name_not_allowed");
    // A device may not name a policy, nor the server's own names.
    let mut named = request("ap3", &["ap3.site1.example.net"]);
    named.policy_id = Some(keyinfra_core::policy::DEFAULT_POLICY_ID);
    assert!(matches!(
        s.authority
            .issuer
            .issue(&s.db, &device, named, &mut OsRandom)
            .await,
        Err(CoreError::Forbidden)
    ));
    assert_eq!(
        (s.rows().await, s.authority.issuer.leaf_keys_generated()),
        before
    );
}

#[tokio::test]
async fn renewal_re_checks_the_owners_current_policy() {
    let s = Setup::new().await;
    let policy = s
        .policy("name: site1\nallowed_dns: ['*.site1.example.net']\n")
        .await;
    let cert = s
        .authority
        .issuer
        .issue(
            &s.db,
            &s.device(),
            request("sw1", &["sw1.site1.example.net"]),
            &mut OsRandom,
        )
        .await
        .unwrap();
    let renew = RenewRequest {
        validity_days: Some(30),
        rekey: false,
        revoke_previous: false,
    };
    let renewed = s
        .authority
        .renewals
        .renew(
            &s.db,
            &Principal::Operator,
            cert.id,
            renew.clone(),
            &mut OsRandom,
        )
        .await
        .unwrap();
    assert_eq!(renewed.version, 2);
    s.authority
        .policies
        .update(
            &s.db,
            &Principal::Operator,
            policy,
            PolicyChanges::from_text("allowed_dns: ['*.site2.example.net']").unwrap(),
        )
        .await
        .unwrap();
    let refused = s
        .authority
        .renewals
        .renew(
            &s.db,
            &Principal::Operator,
            renewed.id,
            renew,
            &mut OsRandom,
        )
        .await;
    match refused {
        Err(CoreError::Invalid { code, detail }) => {
            assert_eq!(code.as_str(), "name_not_allowed");
            assert!(detail.contains("no longer allows"), "{detail}");
            assert!(detail.contains("sw1.site1.example.net"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

/// Names under `zone` in an allowed `.zone` pattern, and under a denied `.bad.zone`.
fn labels() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z][a-z0-9]{0,10}", 1..4)
}

/// The dry run runs the issue's own checks (`plan`): an allowed name is never refused
/// there, and a denied one never passes, whatever labels lead to it. One database for
/// every case: the cases run inside the test's runtime.
#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_name_is_never_refused_and_a_denied_one_never_issued() {
    let s = Setup::new().await;
    s.policy("name: zone\nallowed_dns: ['.zone.example']\ndenied_dns: ['.bad.zone.example']\n")
        .await;
    let before = (s.rows().await, s.authority.issuer.leaf_keys_generated());
    let handle = tokio::runtime::Handle::current();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
        ..ProptestConfig::default()
    });
    let result = runner.run(&(labels(), labels()), |(allowed, denied)| {
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let good = format!("{}.zone.example", allowed.join("."));
                let bad = format!("{}.bad.zone.example", denied.join("."));
                let is_bad = good.ends_with(".bad.zone.example");
                let answer = s
                    .authority
                    .issuer
                    .preview(&s.db, &s.device(), request("x", &[&good]))
                    .await;
                prop_assert_eq!(answer.is_ok(), !is_bad, "{}: {:?}", good, answer);
                let answer = s
                    .authority
                    .issuer
                    .preview(&s.db, &s.device(), request("x", &[&bad]))
                    .await;
                prop_assert!(
                    matches!(
                        &answer,
                        Err(CoreError::Invalid {
                            code: keyinfra_core::ErrorCode::NameNotAllowed,
                            ..
                        })
                    ),
                    "{}: {:?}",
                    bad,
                    answer
                );
                Ok(())
            })
        })
    });
    result.unwrap();
    // The dry run wrote nothing and made no key.
    assert_eq!(
        (s.rows().await, s.authority.issuer.leaf_keys_generated()),
        before
    );
}

/// Revocation in the use case: the owner revokes, once; the reasons and dates a request
/// may give are checked before the certificate is read; the record says how.
#[tokio::test]
async fn revocation_is_checked_recorded_once_and_final() {
    use keyinfra_pki::RevocationReason;
    let s = Setup::new().await;
    let device = s.device();
    let cert = s
        .authority
        .issuer
        .issue(
            &s.db,
            &device,
            request("r1", &["r1.example.net"]),
            &mut OsRandom,
        )
        .await
        .unwrap();
    let now = s.clock.now();
    let refused = |r: Result<keyinfra_db::certificates::CertificateRecord, CoreError>| code_of(r);
    assert_eq!(
        refused(
            s.authority
                .revocations
                .revoke(
                    &s.db,
                    &device,
                    cert.id,
                    RevocationReason::CaCompromise,
                    None
                )
                .await
        ),
        "invalid_reason"
    );
    assert_eq!(
        refused(
            s.authority
                .revocations
                .revoke(
                    &s.db,
                    &device,
                    cert.id,
                    RevocationReason::KeyCompromise,
                    Some(now + time::Duration::hours(1)),
                )
                .await
        ),
        "invalid_invalidity_date"
    );
    let revoked = s
        .authority
        .revocations
        .revoke(
            &s.db,
            &device,
            cert.id,
            RevocationReason::KeyCompromise,
            Some(now),
        )
        .await
        .unwrap();
    assert_eq!(revoked.status, keyinfra_db::CertificateStatus::Revoked);
    let record = s
        .authority
        .revocations
        .revocation(&s.db, &device, cert.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.reason, RevocationReason::KeyCompromise);
    match s
        .authority
        .revocations
        .revoke(&s.db, &device, cert.id, RevocationReason::Superseded, None)
        .await
    {
        Err(CoreError::Conflict { code, .. }) => assert_eq!(code.as_str(), "already_revoked"),
        other => panic!("{other:?}"),
    }
}
