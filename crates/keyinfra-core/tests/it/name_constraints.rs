//! CA name constraints in the use cases: issuance outside them is refused before a key is
//! made or a row written, constraints apply along the chain, and `create_issuing_ca`
//! checks its parent.

use std::sync::Arc;

use keyinfra_core::authority::{Authority, AuthoritySettings};
use keyinfra_core::ca_setup::InitOptions;
use keyinfra_core::issuer::{IssueRequest, KeySource};
use keyinfra_core::issuing_ca::IssuingCaOptions;
use keyinfra_core::{AdjustableClock, CoreError, OsRandom, Principal};
use keyinfra_db::Database;
use keyinfra_db::testing::TestDatabase;
use keyinfra_pki::KeyAlgorithm;
use keyinfra_pki::constraints::NameConstraints;
use keyinfra_pki::seal::MasterKeys;
use uuid::Uuid;

fn authority(clock: Arc<AdjustableClock>) -> Authority {
    let mut masters = MasterKeys::new();
    masters.insert(1, &[9; 32]).unwrap();
    let mut settings = AuthoritySettings::new("http://127.0.0.1:8080");
    settings.write_rate = None;
    Authority::new(settings, masters, clock)
}

fn constraints(
    permitted_dns: &[&str],
    excluded_dns: &[&str],
    permitted_ip: &[&str],
) -> NameConstraints {
    NameConstraints::parse(permitted_dns, excluded_dns, permitted_ip, &[]).unwrap()
}

fn request(subject: &str, sans: &[&str]) -> IssueRequest {
    IssueRequest {
        key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
        subject: Some(subject.into()),
        san: Some(sans.iter().map(|s| (*s).to_owned()).collect()),
        profile: "device".into(),
        validity_days: Some(30),
        owner_id: None,
        ca_id: None,
        policy_id: None,
    }
}

async fn issue(
    authority: &Authority,
    db: &Database,
    subject: &str,
    sans: &[&str],
) -> Result<Uuid, CoreError> {
    authority
        .issuer
        .issue(
            db,
            &Principal::Operator,
            request(subject, sans),
            &mut OsRandom,
        )
        .await
        .map(|c| c.id)
}

fn refused(result: Result<impl std::fmt::Debug, CoreError>) -> (&'static str, String) {
    match result {
        Err(CoreError::Invalid { code, detail }) => (code.as_str(), detail),
        other => panic!("expected a 422 refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn issuance_outside_the_constraints_is_refused_before_any_key_or_row() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let authority = authority(Arc::new(AdjustableClock::new()));
    let options = InitOptions {
        root_algorithm: KeyAlgorithm::EcdsaP256,
        intermediate_subject: Some("CN=Example Issuing CA".into()),
        name_constraints: Some(constraints(
            &["example.net"],
            &["bad.example.net"],
            &["10.0.0.0/8"],
        )),
        ..InitOptions::default()
    };
    authority
        .ca_setup
        .init(&db, &options, &mut OsRandom)
        .await
        .unwrap();
    issue(
        &authority,
        &db,
        "CN=router1",
        &["router1.example.net", "10.1.2.3"],
    )
    .await
    .unwrap();
    let counts = || async {
        (
            tdb.scalar_i64("SELECT count(*) FROM certificates").await,
            tdb.scalar_i64("SELECT count(*) FROM private_keys").await,
            authority.issuer.leaf_keys_generated(),
        )
    };
    let before = counts().await;
    assert_eq!(before.0, 1);
    for (subject, sans, expected) in [
        (
            "CN=x",
            vec!["a.example.net", "www.example.org"],
            r#"DNS:www.example.org is outside the name constraints of CA "issuing" (permitted: DNS:example.net)"#,
        ),
        (
            "CN=x",
            vec!["x.bad.example.net"],
            r#"DNS:x.bad.example.net is outside the name constraints of CA "issuing" (excluded: DNS:bad.example.net)"#,
        ),
        (
            "CN=x",
            vec!["a.example.net", "192.0.2.1"],
            r#"IP:192.0.2.1 is outside the name constraints of CA "issuing" (permitted: IP:10.0.0.0/8)"#,
        ),
        (
            "CN=www.example.org",
            vec![],
            r#"CN=www.example.org is outside the name constraints of CA "issuing" (permitted: DNS:example.net)"#,
        ),
    ] {
        let (code, detail) = refused(issue(&authority, &db, subject, &sans).await);
        assert_eq!(code, "name_not_allowed");
        assert_eq!(detail, expected);
    }
    assert_eq!(
        counts().await,
        before,
        "a refusal made a key or wrote a row"
    );
}

#[tokio::test]
async fn an_issuing_ca_keeps_its_parents_constraints_and_is_checked_against_its_parent() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let clock = Arc::new(AdjustableClock::new());
    let authority = authority(Arc::clone(&clock));
    // No intermediate: the constraints go into the root.
    let options = InitOptions {
        root_algorithm: KeyAlgorithm::EcdsaP256,
        name_constraints: Some(constraints(&["example.net"], &[], &[])),
        ..InitOptions::default()
    };
    let root = authority
        .ca_setup
        .init(&db, &options, &mut OsRandom)
        .await
        .unwrap()[0]
        .id;
    let child_options = IssuingCaOptions {
        name: "site1".into(),
        subject: "CN=Site 1 CA,O=Example".into(),
        algorithm: None,
        validity: Some(time::Duration::days(365)),
        name_constraints: Some(constraints(&[], &["bad.example.net"], &[])),
        starts_at: None,
    };
    let cas = || tdb.scalar_i64("SELECT count(*) FROM certificate_authorities");
    let operator = Principal::Operator;

    // Refusals, all before anything is written.
    let too_long = IssuingCaOptions {
        validity: Some(time::Duration::days(30 * 365)),
        ..child_options.clone()
    };
    let (code, detail) = refused(
        authority
            .ca_setup
            .create_issuing_ca(&db, &operator, root, &too_long, &mut OsRandom)
            .await,
    );
    assert_eq!(code, "validity_too_long", "{detail}");
    assert!(
        detail.contains("would outlive its parent \"root\""),
        "{detail}"
    );
    let (code, _) = refused(
        authority
            .ca_setup
            .create_issuing_ca(&db, &operator, Uuid::nil(), &child_options, &mut OsRandom)
            .await,
    );
    assert_eq!(code, "unknown_ca");
    let taken = IssuingCaOptions {
        name: "root".into(),
        ..child_options.clone()
    };
    assert!(matches!(
        authority
            .ca_setup
            .create_issuing_ca(&db, &operator, root, &taken, &mut OsRandom)
            .await,
        Err(CoreError::Conflict {
            code: keyinfra_core::ErrorCode::CaNameTaken,
            ..
        })
    ));
    assert_eq!(cas().await, 1);

    let site1 = authority
        .ca_setup
        .create_issuing_ca(&db, &operator, root, &child_options, &mut OsRandom)
        .await
        .unwrap();
    assert_eq!(site1.parent_ca_id, Some(root));
    let details = tdb
        .scalar_text(
            "SELECT details::text FROM audit_events WHERE action = 'ca.created' AND details->>'name' = 'site1'",
        )
        .await;
    let details: serde_json::Value = serde_json::from_str(&details).unwrap();
    assert_eq!(
        details["name_constraints"]["excluded_dns"][0],
        "bad.example.net"
    );
    assert_eq!(details["parent_ca_id"], root.to_string());

    // The new CA signs by default, under its own constraints and the root's.
    issue(&authority, &db, "CN=a", &["a.example.net"])
        .await
        .unwrap();
    let (_, detail) = refused(issue(&authority, &db, "CN=a", &["www.example.org"]).await);
    assert!(
        detail.contains(r#"of CA "root" (permitted: DNS:example.net)"#),
        "{detail}"
    );
    let (_, detail) = refused(issue(&authority, &db, "CN=a", &["x.bad.example.net"]).await);
    assert!(
        detail.contains(r#"of CA "site1" (excluded: DNS:bad.example.net)"#),
        "{detail}"
    );

    // site1 may sign no CA (pathLenConstraint 0).
    let (code, detail) = refused(
        authority
            .ca_setup
            .create_issuing_ca(
                &db,
                &operator,
                site1.id,
                &IssuingCaOptions {
                    name: "below-site1".into(),
                    ..child_options.clone()
                },
                &mut OsRandom,
            )
            .await,
    );
    assert_eq!(code, "ca_path_length", "{detail}");

    // Once the root has expired, it makes no CA.
    clock.advance(time::Duration::days(21 * 365));
    let (code, _) = refused(
        authority
            .ca_setup
            .create_issuing_ca(
                &db,
                &operator,
                root,
                &IssuingCaOptions {
                    name: "late".into(),
                    validity: None,
                    ..child_options
                },
                &mut OsRandom,
            )
            .await,
    );
    assert_eq!(code, "ca_expired");
    assert_eq!(cas().await, 2);
}
