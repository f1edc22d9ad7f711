//! One-round-trip batches of first issues (`certificates::record_issued_batch`, migration
//! 0012; the challenge links of 0027), and the CHECK functions that migration rewrote.

use keyinfra_db::audit::{self, ActionFilter, AuditAction, AuditFilter, NewAuditEvent};
use keyinfra_db::certificates::{self, IssuedRows, NewCertificate, OwnerQuota};
use keyinfra_db::enrollment_challenges::{self, NewChallenge};
use keyinfra_db::private_keys::NewSealedKey;
use keyinfra_db::testing::TestDatabase;
use keyinfra_db::{Actor, Database, DbError, PoolSettings, UserRole};
use keyinfra_pki::KeyAlgorithm;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::fixtures;

/// What one first issue writes, owned, so that a test can build several.
struct Issue {
    key_id: Uuid,
    key_fingerprint: Vec<u8>,
    id: Uuid,
    ca: Uuid,
    owner: Uuid,
    serial: String,
    subject: String,
    sans: Vec<String>,
    der: Vec<u8>,
    fingerprint: Vec<u8>,
    not_after: OffsetDateTime,
    audit_id: Uuid,
    /// The enrollment challenge the issue used up, if any.
    challenge: Option<Uuid>,
}

impl Issue {
    fn new(ca: Uuid, owner: Uuid, serial: &str, now: OffsetDateTime) -> Self {
        let id = Uuid::new_v4();
        let key_id = Uuid::new_v4();
        let der = format!("fake certificate {id}").into_bytes();
        Self {
            key_id,
            key_fingerprint: fixtures::fingerprint(key_id.as_bytes()),
            id,
            ca,
            owner,
            serial: serial.to_owned(),
            subject: format!("CN=batch-{serial}"),
            sans: vec![format!("DNS:{}.example.net", serial.to_lowercase())],
            fingerprint: fixtures::fingerprint(&der),
            der,
            not_after: now + Duration::days(90),
            // As the issuer makes it, when it signs.
            audit_id: Uuid::now_v7(),
            challenge: None,
        }
    }

    fn rows(&self) -> IssuedRows<'_> {
        IssuedRows {
            key: Some(NewSealedKey {
                id: self.key_id,
                owner_id: Some(self.owner),
                algorithm: KeyAlgorithm::EcdsaP256,
                public_key_fingerprint: &self.key_fingerprint,
                ciphertext: &[7u8; 80],
                nonce: &[1u8; 12],
                salt: &[2u8; 32],
                kek_version: 1,
            }),
            certificate: NewCertificate {
                id: self.id,
                ca_id: self.ca,
                owner_id: Some(self.owner),
                serial_number: &self.serial,
                subject_dn: &self.subject,
                subject_alt_names: &self.sans,
                not_before: self.not_after - Duration::days(91),
                not_after: self.not_after,
                version: 1,
                renewed_from: None,
                renewed_at: None,
                renewed_by: None,
                certificate_der: &self.der,
                fingerprint_sha256: &self.fingerprint,
                key_algorithm: KeyAlgorithm::EcdsaP256,
                private_key_id: Some(self.key_id),
                profile: "device",
                created_by: Some(self.owner),
                channel: "api",
            },
            audit_id: self.audit_id,
            audit: NewAuditEvent {
                actor_id: Some(self.owner),
                actor_name: None,
                action: AuditAction::CertificateIssued,
                target_type: Some("certificate"),
                target_id: Some(self.id),
                details: serde_json::json!({ "serial_number": self.serial }),
            },
            challenge_id: self.challenge,
        }
    }
}

async fn record(
    db: &Database,
    actor: &Actor,
    quotas: &[OwnerQuota],
    now: OffsetDateTime,
    issues: &[Issue],
) -> Result<(), DbError> {
    let rows: Vec<IssuedRows<'_>> = issues.iter().map(Issue::rows).collect();
    certificates::record_issued_batch(db, actor, quotas, now, &rows).await
}

/// Rows in each table a first issue writes.
async fn counts(tdb: &TestDatabase) -> [i64; 4] {
    [
        tdb.scalar_i64("SELECT count(*) FROM private_keys").await,
        tdb.scalar_i64("SELECT count(*) FROM certificates").await,
        tdb.scalar_i64("SELECT count(*) FROM certificate_serials")
            .await,
        tdb.scalar_i64("SELECT count(*) FROM audit_events WHERE action = 'certificate.issued'")
            .await,
    ]
}

/// A bearer of a fresh token for `user` (its current session epoch): the database checks
/// it as Database::begin does.
async fn token_of(tdb: &TestDatabase, user: Uuid, role: UserRole) -> Actor {
    // scalar_i64 takes a 'static query; a test may leak one short string per call.
    let sql: &'static str = Box::leak(
        format!(
            "SELECT (extract(epoch FROM session_epoch) * 1000000)::bigint FROM users WHERE id = '{user}'"
        )
        .into_boxed_str(),
    );
    let micros = tdb.scalar_i64(sql).await;
    Actor::Token {
        id: user,
        role,
        session_epoch: keyinfra_db::epoch_from_micros(micros).unwrap(),
    }
}

#[tokio::test]
async fn a_batch_records_every_issue_in_one_call_and_commits_it() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let alice = fixtures::user(&db, "alice", UserRole::User).await;
    let now = fixtures::db_now(&tdb).await;
    let issues: Vec<Issue> = ["7A01", "7A02", "7A03"]
        .iter()
        .map(|serial| Issue::new(ca, alice, serial, now))
        .collect();
    let actor = token_of(&tdb, alice, UserRole::User).await;
    let quota = OwnerQuota {
        owner_id: alice,
        limit: 3,
    };
    record(&db, &actor, &[quota], now, &issues).await.unwrap();
    assert_eq!(counts(&tdb).await, [3, 3, 3, 3]);

    // Committed and visible to alice's own transactions; the registry points at each row.
    let mut tx = db.begin(&actor).await.unwrap();
    for issue in &issues {
        let found = certificates::get(&mut tx, issue.id).await.unwrap().unwrap();
        assert_eq!(found.serial_number, issue.serial);
        assert_eq!(found.subject_alt_names, issue.sans);
        assert_eq!(found.private_key_id, Some(issue.key_id));
    }
    tx.rollback().await.unwrap();
}

/// A challenge of `owner`'s, claimed (as a device's enrollment claims it first).
async fn claimed_challenge(db: &Database, owner: Uuid, now: OffsetDateTime) -> Uuid {
    let (id, secret_hash) = new_challenge(db, owner, now, now + Duration::hours(1)).await;
    let claimed = enrollment_challenges::claim(db, &secret_hash, now)
        .await
        .unwrap();
    assert_eq!(claimed.map(|c| c.id), Some(id));
    id
}

/// A fresh challenge of `owner`'s and the hash of its secret.
async fn new_challenge(
    db: &Database,
    owner: Uuid,
    now: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> (Uuid, Vec<u8>) {
    let secret_hash = fixtures::fingerprint(Uuid::new_v4().as_bytes());
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let id = enrollment_challenges::insert(
        &mut tx,
        &NewChallenge {
            owner_id: owner,
            created_by: Some(owner),
            secret_hash: &secret_hash,
            profile: "device",
            validity_days: None,
            subject: None,
            names: None,
            approval: false,
            created_at: now,
            expires_at,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (id, secret_hash)
}

/// Claims gathered into one statement (core's claim_batch): each answered in its place,
/// with its own clock reading, and of one secret presented twice only the first wins.
#[tokio::test]
async fn claims_in_one_statement_answer_in_order_and_a_secret_once() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let alice = fixtures::user(&db, "alice", UserRole::User).await;
    let now = fixtures::db_now(&tdb).await;
    let (long, long_hash) = new_challenge(&db, alice, now, now + Duration::hours(1)).await;
    let (short, short_hash) = new_challenge(&db, alice, now, now + Duration::minutes(1)).await;
    let unknown = fixtures::fingerprint(b"no such challenge");
    let later = now + Duration::minutes(5);

    let claimed = enrollment_challenges::claim_many(
        &db,
        &[long_hash.clone(), short_hash.clone(), long_hash, unknown],
        &[now, later, now, now],
    )
    .await
    .unwrap();
    let ids: Vec<Option<Uuid>> = claimed.iter().map(|c| c.as_ref().map(|c| c.id)).collect();
    // The short one had expired at its claim's own time, so it is still unused.
    assert_eq!(ids, [Some(long), None, None, None]);
    assert_eq!(claimed[0].as_ref().unwrap().owner_id, alice);
    assert_eq!(claimed[0].as_ref().unwrap().profile, "device");

    let claimed = enrollment_challenges::claim_many(&db, &[short_hash], &[now])
        .await
        .unwrap();
    assert_eq!(claimed[0].as_ref().map(|c| c.id), Some(short));
    assert!(
        enrollment_challenges::claim_many(&db, &[], &[])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn linked_certificate(db: &Database, challenge: Uuid) -> Option<Uuid> {
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let record = enrollment_challenges::get(&mut tx, challenge)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    record.unwrap().certificate_id
}

/// Migrations 0027 and 0032: the statement that records a first issue uses and links the
/// enrollment challenge it names, in a batch and alone: one a claim marked used, or an
/// unused one (a replica handed it out from memory) if it is unwithdrawn and its owner
/// enabled. One it cannot use (another owner's, already linked, withdrawn, named twice)
/// fails the statement with ChallengeSpent, and nothing of it is recorded.
#[tokio::test]
async fn an_issue_uses_and_links_the_challenge_it_names_in_its_own_statement() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let alice = fixtures::user(&db, "alice", UserRole::User).await;
    let bob = fixtures::user(&db, "bob", UserRole::User).await;
    let now = fixtures::db_now(&tdb).await;
    let device = Actor::User {
        id: alice,
        role: UserRole::User,
    };
    let db_ref = &db;
    let fresh = |owner| async move {
        new_challenge(db_ref, owner, now, now + Duration::hours(1))
            .await
            .0
    };

    // A batch: the first issue names a claimed challenge, the second an unclaimed one, the
    // third none.
    let claimed = claimed_challenge(&db, alice, now).await;
    let unclaimed = fresh(alice).await;
    let mut issues: Vec<Issue> = ["7C01", "7C02", "7C03"]
        .iter()
        .map(|serial| Issue::new(ca, alice, serial, now))
        .collect();
    issues[0].challenge = Some(claimed);
    issues[1].challenge = Some(unclaimed);
    record(&db, &device, &[], now, &issues).await.unwrap();
    assert_eq!(counts(&tdb).await, [3, 3, 3, 3]);
    assert_eq!(linked_certificate(&db, claimed).await, Some(issues[0].id));
    assert_eq!(linked_certificate(&db, unclaimed).await, Some(issues[1].id));
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let used = enrollment_challenges::get(&mut tx, unclaimed)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(used.unwrap().used_at.is_some(), "the statement used it");

    // Alone, in the caller's transaction: linked when it commits, not before.
    let second = claimed_challenge(&db, alice, now).await;
    let mut lone = Issue::new(ca, alice, "7C04", now);
    lone.challenge = Some(second);
    let mut tx = db.begin(&device).await.unwrap();
    certificates::insert_issued(&mut tx, &lone.rows())
        .await
        .unwrap();
    assert_eq!(linked_certificate(&db, second).await, None);
    tx.commit().await.unwrap();
    assert_eq!(linked_certificate(&db, second).await, Some(lone.id));

    // Refused, in a batch (beside an issue that names none) and alone.
    let bobs = claimed_challenge(&db, bob, now).await;
    let withdrawn = fresh(alice).await;
    let mut tx = db.begin(&Actor::System).await.unwrap();
    enrollment_challenges::withdraw(&mut tx, withdrawn, now)
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    let twice = fresh(alice).await;
    let cases: [(&str, Vec<Uuid>); 4] = [
        ("another owner's", vec![bobs]),
        ("already linked", vec![claimed]),
        ("withdrawn", vec![withdrawn]),
        ("named twice", vec![twice, twice]),
    ];
    let mut serial = 0x7D00;
    for (what, challenges) in cases {
        let mut batch = Vec::new();
        for challenge in std::iter::once(None).chain(challenges.iter().copied().map(Some)) {
            serial += 1;
            let mut issue = Issue::new(ca, alice, &format!("{serial:X}"), now);
            issue.challenge = challenge;
            batch.push(issue);
        }
        let refused = record(&db, &device, &[], now, &batch).await;
        assert!(
            matches!(refused, Err(DbError::ChallengeSpent)),
            "{what}: {refused:?}"
        );
        let mut tx = db.begin(&device).await.unwrap();
        let alone = certificates::insert_issued(&mut tx, &batch[1].rows()).await;
        // Named once, the challenge named twice is usable (this transaction is dropped).
        let usable = challenges.len() > 1;
        assert_eq!(
            matches!(alone, Err(DbError::ChallengeSpent)),
            !usable,
            "{what}, alone: {alone:?}"
        );
        drop(tx);
        assert_eq!(counts(&tdb).await, [4, 4, 4, 4], "{what}");
    }
    assert_eq!(linked_certificate(&db, claimed).await, Some(issues[0].id));
    assert_eq!(linked_certificate(&db, bobs).await, None);
    assert_eq!(linked_certificate(&db, twice).await, None);
}

/// The audit log lists newest first by (occurred_at, id), and a batch's events share
/// occurred_at (its transaction's start): their ids alone must keep the order they were
/// signed in. With the database's default id, random within a millisecond, a batch listed
/// shuffled.
#[tokio::test]
async fn a_batchs_audit_events_list_in_exactly_the_reverse_of_their_order() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let alice = fixtures::user(&db, "alice", UserRole::User).await;
    let now = fixtures::db_now(&tdb).await;
    let issues: Vec<Issue> = (1..=50)
        .map(|n| Issue::new(ca, alice, &format!("7E{n:02X}"), now))
        .collect();
    let actor = token_of(&tdb, alice, UserRole::User).await;
    let quota = OwnerQuota {
        owner_id: alice,
        limit: 50,
    };
    record(&db, &actor, &[quota], now, &issues).await.unwrap();

    // What the API's and the UI's audit page read: the same query, as alice.
    let mut tx = db.begin(&actor).await.unwrap();
    let filter = AuditFilter {
        action: ActionFilter::Is(AuditAction::CertificateIssued),
        ..AuditFilter::default()
    };
    let listed = audit::list(&mut tx, &filter, 100).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(listed.len(), issues.len());
    assert!(
        listed
            .iter()
            .all(|e| e.occurred_at == listed[0].occurred_at),
        "one transaction, one timestamp"
    );
    let targets: Vec<Uuid> = listed.iter().filter_map(|e| e.target_id).collect();
    let newest_first: Vec<Uuid> = issues.iter().rev().map(|i| i.id).collect();
    assert_eq!(targets, newest_first);
    // The ids are the ones the caller made, not the column's default.
    let ids: Vec<Uuid> = listed.iter().map(|e| e.id).collect();
    let made: Vec<Uuid> = issues.iter().rev().map(|i| i.audit_id).collect();
    assert_eq!(ids, made);

    // One issue alone (the one-transaction path) writes the id it is given too.
    let alone = Issue::new(ca, alice, "7E80", now);
    let mut tx = db.begin(&actor).await.unwrap();
    certificates::insert_issued(&mut tx, &alone.rows())
        .await
        .unwrap();
    let filter = AuditFilter {
        target_id: Some(alone.id),
        ..AuditFilter::default()
    };
    let listed = audit::list(&mut tx, &filter, 10).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        listed.iter().map(|e| e.id).collect::<Vec<_>>(),
        [alone.audit_id]
    );
}

#[tokio::test]
async fn a_batch_that_would_pass_an_owners_quota_writes_nothing() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let alice = fixtures::user(&db, "alice", UserRole::User).await;
    let now = fixtures::db_now(&tdb).await;
    fixtures::Cert::new(ca, Some(alice), "7B00", now + Duration::days(30))
        .insert(&db, &Actor::System)
        .await
        .unwrap();
    let issues = [
        Issue::new(ca, alice, "7B01", now),
        Issue::new(ca, alice, "7B02", now),
    ];
    let actor = Actor::User {
        id: alice,
        role: UserRole::User,
    };
    // One active certificate already, two more, a limit of two: refused as a whole, with the
    // quota's own SQLSTATE. Naming the owner twice does not split the count.
    let quota = OwnerQuota {
        owner_id: alice,
        limit: 2,
    };
    let refused = record(&db, &actor, &[quota, quota], now, &issues).await;
    assert!(
        matches!(&refused, Err(DbError::Internal(message)) if message.contains("KI422")),
        "{refused:?}"
    );
    assert_eq!(counts(&tdb).await, [0, 1, 1, 0]);
    // The count is as of `as_of`: a certificate that expired before it does not count, so
    // as of a day after the existing one's expiry the same batch fits a limit of two.
    let later = now + Duration::days(31);
    let fresh = [
        Issue::new(ca, alice, "7B03", later),
        Issue::new(ca, alice, "7B04", later),
    ];
    record(&db, &actor, &[quota], later, &fresh).await.unwrap();
    assert_eq!(counts(&tdb).await, [2, 3, 3, 2]);

    // A limit of five lets the first two through too (the later two end after `now`).
    let quota = OwnerQuota { limit: 5, ..quota };
    record(&db, &actor, &[quota], now, &issues).await.unwrap();
    assert_eq!(counts(&tdb).await, [4, 5, 5, 4]);
    // And the limit is then reached: one more is refused.
    let one_more = [Issue::new(ca, alice, "7B05", now)];
    let refused = record(&db, &actor, &[quota], now, &one_more).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(counts(&tdb).await, [4, 5, 5, 4]);
}

#[tokio::test]
async fn a_stale_token_or_anothers_certificate_or_a_reused_serial_fails_the_whole_batch() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let alice = fixtures::user(&db, "alice", UserRole::User).await;
    let bob = fixtures::user(&db, "bob", UserRole::User).await;
    let now = fixtures::db_now(&tdb).await;

    // A token from an earlier session epoch (before a password change, a logout, ...) is
    // refused before anything is written.
    let Actor::Token { session_epoch, .. } = token_of(&tdb, alice, UserRole::User).await else {
        unreachable!()
    };
    let stale = Actor::Token {
        id: alice,
        role: UserRole::User,
        session_epoch: session_epoch - Duration::microseconds(1),
    };
    let issues = [Issue::new(ca, alice, "7C01", now)];
    let refused = record(&db, &stale, &[], now, &issues).await;
    assert!(
        matches!(refused, Err(DbError::Unauthenticated)),
        "{refused:?}"
    );
    // A token claiming another role is refused too.
    let wrong_role = token_of(&tdb, alice, UserRole::Admin).await;
    let refused = record(&db, &wrong_role, &[], now, &issues).await;
    assert!(
        matches!(refused, Err(DbError::Unauthenticated)),
        "{refused:?}"
    );

    // Alice may not write bob's certificate: row-level security refuses the batch, including
    // her own issue in it.
    let alice_token = token_of(&tdb, alice, UserRole::User).await;
    let mixed = [
        Issue::new(ca, alice, "7C02", now),
        Issue::new(ca, bob, "7C03", now),
    ];
    let refused = record(&db, &alice_token, &[], now, &mixed).await;
    assert!(
        matches!(refused, Err(DbError::PermissionDenied)),
        "{refused:?}"
    );

    // A serial this CA already used fails the batch as a collision.
    fixtures::Cert::new(ca, Some(alice), "7C04", now + Duration::days(30))
        .insert(&db, &Actor::System)
        .await
        .unwrap();
    let reused = [
        Issue::new(ca, alice, "7C05", now),
        Issue::new(ca, alice, "7C04", now),
    ];
    let refused = record(&db, &alice_token, &[], now, &reused).await;
    assert!(
        matches!(refused, Err(DbError::SerialCollision)),
        "{refused:?}"
    );
    assert_eq!(counts(&tdb).await, [0, 1, 1, 0]);
}

#[tokio::test]
async fn the_identity_a_batch_sets_ends_with_its_implicit_transaction() {
    let tdb = TestDatabase::new().await;
    // One connection, so that the next transaction runs where the batch ran.
    let db = tdb
        .database_with(&PoolSettings {
            min_connections: 1,
            max_connections: 1,
            ..PoolSettings::default()
        })
        .await;
    let ca = fixtures::authority(&db, "CA").await;
    let alice = fixtures::user(&db, "alice", UserRole::User).await;
    let now = fixtures::db_now(&tdb).await;
    let actor = token_of(&tdb, alice, UserRole::User).await;
    record(&db, &actor, &[], now, &[Issue::new(ca, alice, "7D01", now)])
        .await
        .unwrap();
    // Read outside any BEGIN (which would set both settings itself): a leak would show.
    for setting in ["keyinfra.user_id", "keyinfra.user_role"] {
        let left = keyinfra_db::testing::session_setting(&db, setting).await;
        assert_eq!(left, None, "{setting}");
    }
    assert_eq!(counts(&tdb).await, [1, 1, 1, 1]);
}

#[tokio::test]
async fn the_check_functions_accept_exactly_canonical_serials_and_well_formed_san_lists() {
    let tdb = TestDatabase::new().await;
    let mut conn = tdb.owner_connection().await;
    let serials: &[(&str, bool)] = &[
        ("01", true),
        ("7F", true),
        ("0A", true),
        ("A0", true),
        ("00", false),
        ("00AB", false),
        ("ab", false),
        ("ABC", false),
        ("", false),
        ("G1", false),
        (" AB", false),
        ("AB\n", false),
        ("1\u{e9}", false),
    ];
    let longest = "AB".repeat(20);
    let too_long = "AB".repeat(21);
    let serials = serials
        .iter()
        .copied()
        .chain([(longest.as_str(), true), (too_long.as_str(), false)]);
    for (serial, expected) in serials {
        let got: bool = sqlx::query_scalar("SELECT keyinfra_serial_is_canonical($1)")
            .bind(serial)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(got, expected, "serial {serial:?}");
    }

    let s = |list: &[&str]| list.iter().map(|v| Some(v.to_string())).collect::<Vec<_>>();
    let many = vec![Some("DNS:a".to_owned()); 1024];
    let too_many = vec![Some("DNS:a".to_owned()); 1025];
    let lists: Vec<(Vec<Option<String>>, bool)> = vec![
        (vec![], true),
        (s(&["DNS:router.example.net"]), true),
        (s(&["DNS:a", "IP:192.0.2.1", "IP:2001:db8::1"]), true),
        (
            s(&["EMAIL:noc@example.net", "URI:https://x.example/y z"]),
            true,
        ),
        (many, true),
        (too_many, false),
        (vec![Some("DNS:a".to_owned()), None], false),
        (vec![None], false),
        (s(&["router.example.net"]), false),
        (s(&["dns:a"]), false),
        (s(&["DNS:"]), false),
        (s(&["DNS:a", ""]), false),
        // One element may not pass as two, nor hide a control character.
        (s(&["DNS:a\nDNS:b"]), false),
        (s(&["DNS:a", "\nDNS:b"]), false),
        (s(&["DNS:a\n"]), false),
        (s(&["DNS:a\u{7}"]), false),
        (s(&["DNS:a\t"]), false),
        (s(&["DNS:a\r"]), false),
    ];
    for (list, expected) in lists {
        let got: bool = sqlx::query_scalar("SELECT keyinfra_san_list_is_valid($1)")
            .bind(&list)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(got, expected, "SANs {list:?}");
    }

    // And they agree with the bodies they replaced (migration 0004's, kept in 0012's down
    // migration) on every input above and on shapes a client cannot send but SQL can.
    sqlx::query(
        "CREATE FUNCTION pg_temp.old_serial(serial text) RETURNS boolean LANGUAGE sql IMMUTABLE
             RETURN serial ~ '^([0-9A-F]{2}){1,20}$' AND serial !~ '^00'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    sqlx::query(
        "CREATE FUNCTION pg_temp.old_san(sans text[]) RETURNS boolean LANGUAGE sql IMMUTABLE
             RETURN cardinality(sans) <= 1024
                 AND coalesce((SELECT bool_and(s IS NOT NULL AND s ~ '^(DNS|IP|EMAIL|URI):[^[:cntrl:]]+$')
                               FROM unnest(sans) AS s), true)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let differing: Vec<String> = sqlx::query_scalar(
        "SELECT coalesce(s, 'NULL') FROM unnest(ARRAY['01', '00', '00AB', 'ab', 'ABC', '', 'G1', ' AB',
                 E'AB\n', '1é', 'ÀB', repeat('AB', 20), repeat('AB', 21), NULL]) AS s
         WHERE pg_temp.old_serial(s) IS DISTINCT FROM keyinfra_serial_is_canonical(s)
         UNION ALL
         SELECT coalesce(a::text, 'NULL') FROM (VALUES (NULL::text[]), ('{}'), ('{DNS:a}'),
                 ('{DNS:a,IP:1.2.3.4}'), ('{DNS:a,NULL}'), ('{NULL}'), ('{{DNS:a,DNS:b},{IP:1,IP:2}}'),
                 ('{{DNS:a,DNS:b},{IP:1,x}}'), ('{{DNS:a},{NULL}}'), (ARRAY[E'DNS:a\nDNS:b']),
                 (ARRAY['DNS:a', E'\nDNS:b']), (ARRAY[E'DNS:a\x01']), (ARRAY['DNS:é.example']),
                 (ARRAY['URI:https://x/ü']), (ARRAY['DNS:a', '']), (ARRAY['']), (ARRAY['DNS: ']))
              AS v(a)
         WHERE pg_temp.old_san(a) IS DISTINCT FROM keyinfra_san_list_is_valid(a)",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        differing.is_empty(),
        "old and new disagree on {differing:?}"
    );

    // Neither is inlined (migration 0029): a CHECK that calls them stays a bare call, so
    // no statement reads and plans their bodies again; an SQL-language rewrite would
    // silently bring that cost back.
    let plan = fixtures::plan(
        &mut conn,
        "EXPLAIN VERBOSE SELECT keyinfra_san_list_is_valid(subject_alt_names),
                               keyinfra_serial_is_canonical(serial_number)
         FROM certificates",
    )
    .await;
    assert!(
        plan.contains("keyinfra_san_list_is_valid(")
            && plan.contains("keyinfra_serial_is_canonical("),
        "{plan}"
    );
    assert!(
        !plan.contains("array_to_string") && !plan.contains("btrim"),
        "{plan}"
    );
}

/// Migration 0033: a withdrawal that comes while a certificate is being recorded under the
/// challenge waits for it, then finds the use and leaves the challenge used; retention that
/// deletes the certificate's serial keeps the challenge used and drops only the link; the
/// application's role cannot write a use.
#[tokio::test]
async fn a_use_row_decides_against_a_concurrent_withdrawal_and_survives_retention() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let alice = fixtures::user(&db, "alice", UserRole::User).await;
    let now = fixtures::db_now(&tdb).await;
    let device = Actor::User {
        id: alice,
        role: UserRole::User,
    };
    let (challenge, secret_hash) = new_challenge(&db, alice, now, now + Duration::hours(1)).await;

    // The certificate's statement has run, its transaction is still open.
    let mut issue = Issue::new(ca, alice, "7F01", now);
    issue.challenge = Some(challenge);
    let mut recording = db.begin(&device).await.unwrap();
    certificates::insert_issued(&mut recording, &issue.rows())
        .await
        .unwrap();
    let withdrawing = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut tx = db.begin(&Actor::System).await.unwrap();
            let withdrawn = enrollment_challenges::withdraw(&mut tx, challenge, now)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            withdrawn
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !withdrawing.is_finished(),
        "the withdrawal waits for the use"
    );
    recording.commit().await.unwrap();
    assert_eq!(withdrawing.await.unwrap(), None, "the use won");
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let record = enrollment_challenges::get(&mut tx, challenge)
        .await
        .unwrap()
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(record.used_at.is_some() && record.withdrawn_at.is_none());
    assert_eq!(record.certificate_id, Some(issue.id));

    // Retention: the serial goes (after its certificate), the use stays, unlinked.
    tdb.owner_execute(&format!(
        "DELETE FROM certificates WHERE id = '{id}'; DELETE FROM certificate_serials WHERE certificate_id = '{id}'",
        id = issue.id
    ))
    .await;
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let record = enrollment_challenges::get(&mut tx, challenge)
        .await
        .unwrap()
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(record.used_at.is_some(), "still used");
    assert_eq!(record.certificate_id, None);
    // Used by its use row alone (no claim ever marked the challenge row): no claim takes
    // it, and there is nothing to release.
    let claimed =
        enrollment_challenges::claim_many(&db, std::slice::from_ref(&secret_hash), &[now])
            .await
            .unwrap();
    assert_eq!(claimed, [None]);
    assert_eq!(
        enrollment_challenges::claim(&db, &secret_hash, now)
            .await
            .unwrap(),
        None
    );
    let mut tx = db.begin(&Actor::Anonymous).await.unwrap();
    assert!(
        !enrollment_challenges::release(&mut tx, challenge)
            .await
            .unwrap()
    );
    tx.rollback().await.unwrap();

    // The application's role reads uses only with their challenge, and writes none.
    for sql in [
        "INSERT INTO enrollment_challenge_uses (challenge_id) VALUES (gen_random_uuid())",
        "DELETE FROM enrollment_challenge_uses",
        "UPDATE enrollment_challenge_uses SET certificate_id = NULL",
    ] {
        let mut tx = db.begin(&Actor::System).await.unwrap();
        let result = keyinfra_db::testing::raw_execute(&mut tx, sql).await;
        assert!(
            matches!(result, Err(DbError::PermissionDenied)),
            "{sql}: {result:?}"
        );
    }
    let bob = fixtures::user(&db, "bob", UserRole::User).await;
    let mut tx = db
        .begin(&Actor::User {
            id: bob,
            role: UserRole::User,
        })
        .await
        .unwrap();
    let rows = keyinfra_db::testing::raw_query(
        &mut tx,
        "SELECT challenge_id FROM enrollment_challenge_uses",
    )
    .await
    .unwrap();
    assert!(rows.is_empty(), "another user's use is visible");
    drop(tx);
    let mut tx = db.begin(&device).await.unwrap();
    let rows = keyinfra_db::testing::raw_query(
        &mut tx,
        "SELECT challenge_id FROM enrollment_challenge_uses",
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "the owner sees their use");
}
