//! Issue 19, who may enroll: SCEP challenge passwords through the API (create, list,
//! withdraw) and the use cases the SCEP handler calls (claim, release, record the
//! certificate). The secret is shown once and stored only as its SHA-256; every refusal is
//! a 4xx problem with a code and writes nothing.
//!
//! A replica claims the challenges it made from memory, and the certificate's statement
//! uses them (migration 0032); others are claimed in the database. The claim tests run
//! both ways: a challenge made on this app, and one made on another replica of its
//! database (`create_elsewhere`).

use futures_util::FutureExt;
use futures_util::future::join_all;
use keyinfra_core::enrollment::ChallengeGrant;
use keyinfra_core::issuer::{IssueRequest, KeySource};
use keyinfra_core::{CoreError, EnrollmentChannel, ErrorCode, OsRandom, Principal};
use keyinfra_db::{Actor, DbError, UserRole};
use keyinfra_pki::KeyAlgorithm;
use reqwest::Method;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::support::{Replica, TestApp};

const PATH: &str = "/api/v1/enrollment/challenges";
const ALPHABET: &str = "23456789abcdefghijkmnpqrstuvwxyz";

struct Setup {
    app: TestApp,
    admin: String,
    admin_id: Uuid,
    user: String,
    user_id: Uuid,
    other: String,
    other_id: Uuid,
}

async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    let admin_id = app.user("root", UserRole::Admin).await;
    let user_id = app.user("site1-noc", UserRole::User).await;
    let other_id = app.user("site2-noc", UserRole::User).await;
    Setup {
        admin: app.token("root").await,
        user: app.token("site1-noc").await,
        other: app.token("site2-noc").await,
        app,
        admin_id,
        user_id,
        other_id,
    }
}

/// Challenges and their audit events: what a refused request must not change.
async fn written(app: &TestApp) -> i64 {
    app.tdb
        .scalar_i64(
            "SELECT (SELECT count(*) FROM enrollment_challenges)
                  + (SELECT count(*) FROM audit_events WHERE action LIKE 'enrollment_challenge.%')",
        )
        .await
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, created) = app.send(Method::POST, PATH, token, body).await;
    assert_eq!(status, 201, "{created}");
    created
}

/// Creates a challenge through another replica on the app's database: the app has not
/// seen it, so its claim goes to the database.
async fn create_elsewhere(app: &TestApp, replica: &Replica, token: &str, body: Value) -> Value {
    let r = app
        .http
        .post(format!("{}{PATH}", replica.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

/// A challenge's state as its owner's list shows it.
async fn state_of(app: &TestApp, token: &str, challenge_id: Uuid) -> String {
    let listed = list(app, token, "").await;
    let row = listed
        .iter()
        .find(|c| id(c) == challenge_id)
        .expect("the challenge is listed");
    row["state"].as_str().unwrap().to_owned()
}

fn secret(created: &Value) -> String {
    created["challenge"].as_str().unwrap().to_owned()
}

fn id(created: &Value) -> Uuid {
    created["id"].as_str().unwrap().parse().unwrap()
}

fn time_of(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().unwrap(), &Rfc3339).unwrap()
}

async fn list(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("{PATH}{query}"), token).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn claim(app: &TestApp, secret: &str) -> Option<ChallengeGrant> {
    claim_on(&app.state, secret).await
}

/// As [`claim`], on any replica.
async fn claim_on(state: &keyinfra_server::AppState, secret: &str) -> Option<ChallengeGrant> {
    state
        .authority
        .challenges
        .claim(&state.db, secret)
        .await
        .unwrap()
}

/// Issues a certificate (server-made P-256 key) as a device of `owner` that presented the
/// challenge `challenge_id`, through the one issuer, as SCEP and EST do.
async fn issue_as_device(app: &TestApp, owner: Uuid, challenge_id: Uuid, cn: &str) -> Uuid {
    try_issue_as_device(app, owner, challenge_id, cn)
        .await
        .expect("the device's certificate is issued")
}

async fn try_issue_as_device(
    app: &TestApp,
    owner: Uuid,
    challenge_id: Uuid,
    cn: &str,
) -> Result<Uuid, CoreError> {
    issue_on(&app.state, owner, challenge_id, cn).await
}

/// As [`try_issue_as_device`], on any replica.
async fn issue_on(
    state: &keyinfra_server::AppState,
    owner: Uuid,
    challenge_id: Uuid,
    cn: &str,
) -> Result<Uuid, CoreError> {
    let device = Principal::Enrollment {
        channel: EnrollmentChannel::Scep,
        owner,
        challenge_id: Some(challenge_id),
    };
    let request = IssueRequest {
        key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
        subject: Some(format!("CN={cn}")),
        san: None,
        profile: "device".into(),
        validity_days: Some(30),
        owner_id: None,
        ca_id: None,
        policy_id: None,
    };
    let issued = state
        .authority
        .issuer
        .issue(&state.db, &device, request, &mut OsRandom)
        .await?;
    Ok(issued.id)
}

/// The certificate's statement refused it: the challenge is spent (or not the owner's).
fn is_spent(result: &Result<Uuid, CoreError>) -> bool {
    matches!(
        result,
        Err(CoreError::Conflict {
            code: ErrorCode::ChallengeUsed,
            ..
        })
    )
}

/// The certificate the owner's challenge list shows the challenge linked to.
async fn linked_certificate(app: &TestApp, token: &str, challenge_id: Uuid) -> Option<Uuid> {
    let listed = list(app, token, "").await;
    let row = listed
        .iter()
        .find(|c| id(c) == challenge_id)
        .expect("the challenge is listed");
    row["certificate_id"].as_str().map(|c| c.parse().unwrap())
}

/// The SHA-256s stored, oldest first, in hex.
async fn stored_hashes(app: &TestApp) -> String {
    app.tdb
        .scalar_text(
            "SELECT coalesce(string_agg(encode(secret_hash, 'hex'), ',' ORDER BY created_at, id), '')
             FROM enrollment_challenges",
        )
        .await
}

/// Everything the database holds that a secret could leak into, as text.
async fn stored_text(app: &TestApp) -> String {
    app.tdb
        .scalar_text(
            "SELECT coalesce((SELECT string_agg(row_to_json(c)::text, ' ') FROM enrollment_challenges AS c), '')
                 || coalesce((SELECT string_agg(row_to_json(a)::text, ' ') FROM audit_events AS a), '')",
        )
        .await
}

#[tokio::test]
async fn a_challenge_with_defaults_is_shown_once_and_only_its_hash_is_stored() {
    let s = setup().await;
    let before = s.app.clock.now_unix();
    // No body at all.
    let r = s
        .app
        .http
        .post(s.app.url(PATH))
        .bearer_auth(&s.user)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // The one answer with the secret: no cache or browser may keep it.
    assert_eq!(r.headers()["cache-control"], "no-store");
    let first: Value = r.json().await.unwrap();
    // An empty object gives the same defaults.
    let second = create(&s.app, &s.user, json!({})).await;

    for created in [&first, &second] {
        let secret = secret(created);
        assert_eq!(secret.len(), 32, "{secret}");
        assert!(secret.chars().all(|c| ALPHABET.contains(c)), "{secret}");
        assert_eq!(created["owner_id"], json!(s.user_id));
        assert_eq!(created["created_by"], json!(s.user_id));
        assert_eq!(created["profile"], "device");
        assert_eq!(created["approval"], false);
        assert_eq!(created["state"], "active");
        assert_eq!(created["subject"], Value::Null);
        assert_eq!(created["names"], Value::Null);
        assert_eq!(created["validity_days"], Value::Null);
        let lifetime = time_of(&created["expires_at"]).unix_timestamp() - before;
        assert!((3595..=3610).contains(&lifetime), "{lifetime}");
    }
    assert_ne!(secret(&first), secret(&second));

    // The database holds the SHA-256 of each, and the secret nowhere.
    let expected: Vec<String> = [&first, &second]
        .iter()
        .map(|c| hex::encode(keyinfra_pki::sha256_fingerprint(secret(c).as_bytes())))
        .collect();
    assert_eq!(stored_hashes(&s.app).await, expected.join(","));
    let text = stored_text(&s.app).await;
    assert!(text.contains("enrollment_challenge.created"));
    // The list and the audit log (through the API) never show it either.
    let listed = list(&s.app, &s.user, "").await;
    assert_eq!(listed.len(), 2);
    let (status, audit) = s
        .app
        .get(
            "/api/v1/audit?action=enrollment_challenge.created",
            &s.admin,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
    assert_eq!(audit["items"][0]["actor_id"], json!(s.user_id));
    for created in [&first, &second] {
        let secret = secret(created);
        assert!(!text.contains(&secret), "the database holds a secret");
        assert!(!Value::Array(listed.clone()).to_string().contains(&secret));
        assert!(!audit.to_string().contains(&secret));
    }
    assert!(listed.iter().all(|c| c.get("challenge").is_none()));
}

#[tokio::test]
async fn every_field_is_kept_and_an_admin_creates_for_another_owner() {
    let s = setup().await;
    let before = s.app.clock.now_unix();
    let created = create(
        &s.app,
        &s.admin,
        json!({
            "owner_id": s.user_id,
            "profile": "server",
            "validity_days": 30,
            "expires_in_minutes": 10080,
            "subject": "CN=edge-router-1,O=Example",
            "names": ["Edge-Router-1.Example.net", "192.0.2.1"],
            "approval": true,
        }),
    )
    .await;
    assert_eq!(created["owner_id"], json!(s.user_id));
    assert_eq!(created["created_by"], json!(s.admin_id));
    assert_eq!(created["profile"], "server");
    assert_eq!(created["validity_days"], 30);
    assert_eq!(created["subject"], "CN=edge-router-1,O=Example");
    assert_eq!(
        created["names"],
        json!(["DNS:edge-router-1.example.net", "IP:192.0.2.1"])
    );
    assert_eq!(created["approval"], true);
    let lifetime = time_of(&created["expires_at"]).unix_timestamp() - before;
    assert!(
        (7 * 86400 - 5..=7 * 86400 + 10).contains(&lifetime),
        "{lifetime}"
    );
    // It is the owner's: they list it.
    let listed = list(&s.app, &s.user, "").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], created["id"]);
    assert_eq!(listed[0]["names"], created["names"]);

    // The device gets exactly these terms.
    let grant = claim(&s.app, &secret(&created)).await.unwrap();
    assert_eq!(
        grant,
        ChallengeGrant {
            id: id(&created),
            owner_id: s.user_id,
            profile: "server".into(),
            validity_days: Some(30),
            subject: Some("CN=edge-router-1,O=Example".into()),
            names: Some(vec![
                "DNS:edge-router-1.example.net".into(),
                "IP:192.0.2.1".into()
            ]),
            approval: true,
            expires_at: time_of(&created["expires_at"]),
        }
    );
    // The names read back as the issue API reads its SANs.
    assert!(keyinfra_pki::names::SubjectAltName::parse_list(&grant.names.unwrap()).is_ok());
}

#[tokio::test]
async fn refusals_are_problems_with_codes_and_write_nothing() {
    let s = setup().await;
    // A user disabled by the admin, to be named as owner.
    let disabled = s.app.user("retired", UserRole::User).await;
    let (status, _) = s
        .app
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{disabled}"),
            &s.admin,
            json!({ "disabled": true }),
        )
        .await;
    assert_eq!(status, 200);
    let before = written(&s.app).await;

    let cases: Vec<(&String, Value, u16, &str)> = vec![
        (&s.user, json!({ "owner_id": s.other_id }), 403, "forbidden"),
        (&s.user, json!({ "owner_id": s.admin_id }), 403, "forbidden"),
        (
            &s.user,
            json!({ "profile": "nope" }),
            422,
            "unknown_profile",
        ),
        (
            &s.user,
            json!({ "expires_in_minutes": 0 }),
            422,
            "invalid_expiry",
        ),
        (
            &s.user,
            json!({ "expires_in_minutes": 10081 }),
            422,
            "invalid_expiry",
        ),
        (
            &s.user,
            json!({ "expires_in_minutes": -1 }),
            422,
            "invalid_body",
        ),
        (
            &s.user,
            json!({ "validity_days": 0 }),
            422,
            "invalid_validity",
        ),
        (
            &s.user,
            json!({ "validity_days": 100000 }),
            422,
            "validity_too_long",
        ),
        (
            &s.user,
            json!({ "subject": "nonsense" }),
            422,
            "invalid_subject",
        ),
        (
            &s.user,
            json!({ "subject": "CN=a+O=b" }),
            422,
            "invalid_subject",
        ),
        (&s.user, json!({ "names": [] }), 422, "invalid_san"),
        (
            &s.user,
            json!({ "names": ["bad..name"] }),
            422,
            "invalid_san",
        ),
        (
            &s.user,
            json!({ "names": ["a.example", "A.example"] }),
            422,
            "invalid_san",
        ),
        (
            &s.user,
            json!({ "names": ["noc@example.net"] }),
            422,
            "invalid_san",
        ),
        (&s.user, json!({ "surprise": true }), 422, "invalid_body"),
        (&s.user, json!({ "approval": "yes" }), 422, "invalid_body"),
        (&s.user, json!([]), 422, "invalid_body"),
        (
            &s.admin,
            json!({ "owner_id": Uuid::now_v7() }),
            422,
            "unknown_owner",
        ),
        (
            &s.admin,
            json!({ "owner_id": disabled }),
            422,
            "owner_disabled",
        ),
    ];
    for (token, body, status, code) in cases {
        let r = s.app.post_raw(PATH, token, body.clone()).await;
        assert_eq!(r.status().as_u16(), status, "{body}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{body}"
        );
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["code"], code, "{body}: {problem}");
        assert!(
            !problem["detail"]
                .as_str()
                .unwrap()
                .contains("enrollment_challenges")
        );
    }
    // Bodies that are not JSON.
    for (content_type, body, status, code) in [
        ("application/json", "{", 400, "malformed_json"),
        ("text/plain", "{}", 415, "unsupported_media_type"),
    ] {
        let r = s
            .app
            .http
            .post(s.app.url(PATH))
            .bearer_auth(&s.user)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status);
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["code"], code);
    }
    // Without a token.
    let r = s.app.http.post(s.app.url(PATH)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(written(&s.app).await, before, "a refusal wrote rows");

    // A USER may name themself.
    let mine = create(&s.app, &s.user, json!({ "owner_id": s.user_id })).await;
    assert_eq!(mine["owner_id"], json!(s.user_id));
}

#[tokio::test]
async fn a_user_lists_their_own_an_admin_everyones_with_state_and_pages() {
    let s = setup().await;
    let a = create(&s.app, &s.user, json!({})).await;
    let b = create(&s.app, &s.user, json!({ "expires_in_minutes": 1 })).await;
    let c = create(&s.app, &s.other, json!({})).await;
    let used = create(&s.app, &s.user, json!({})).await;
    let grant = claim(&s.app, &secret(&used)).await.unwrap();
    issue_as_device(&s.app, s.user_id, grant.id, "router-1").await;
    let (status, _) = s
        .app
        .send(
            Method::DELETE,
            &format!("{PATH}/{}", id(&a)),
            &s.user,
            Value::Null,
        )
        .await;
    assert_eq!(status, 204);

    let ids = |items: &[Value]| -> Vec<Uuid> {
        items
            .iter()
            .map(|i| i["id"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    // Newest first.
    assert_eq!(
        ids(&list(&s.app, &s.user, "").await),
        [id(&used), id(&b), id(&a)]
    );
    assert_eq!(ids(&list(&s.app, &s.other, "").await), [id(&c)]);
    assert_eq!(
        ids(&list(&s.app, &s.admin, "").await),
        [id(&used), id(&c), id(&b), id(&a)]
    );
    assert_eq!(
        ids(&list(&s.app, &s.admin, &format!("?owner_id={}", s.other_id)).await),
        [id(&c)]
    );
    // A USER naming someone else sees nothing.
    assert!(
        list(&s.app, &s.other, &format!("?owner_id={}", s.user_id))
            .await
            .is_empty()
    );

    // States, now and after b expired.
    let states = |items: Vec<Value>| -> Vec<String> {
        items
            .iter()
            .map(|i| i["state"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        states(list(&s.app, &s.user, "").await),
        ["used", "active", "withdrawn"]
    );
    s.app.clock.advance(Duration::minutes(2));
    assert_eq!(
        states(list(&s.app, &s.user, "").await),
        ["used", "expired", "withdrawn"]
    );
    for (state, expected) in [
        ("active", vec![]),
        ("used", vec![id(&used)]),
        ("expired", vec![id(&b)]),
        ("withdrawn", vec![id(&a)]),
    ] {
        assert_eq!(
            ids(&list(&s.app, &s.user, &format!("?state={state}")).await),
            expected,
            "{state}"
        );
    }
    let listed = list(&s.app, &s.user, "?state=used").await;
    assert!(listed[0]["used_at"].is_string());
    let listed = list(&s.app, &s.user, "?state=withdrawn").await;
    assert!(listed[0]["withdrawn_at"].is_string());

    // Keyset pages.
    let (status, page) = s.app.get(&format!("{PATH}?limit=2"), &s.admin).await;
    assert_eq!(status, 200);
    let first = ids(page["items"].as_array().unwrap());
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page) = s
        .app
        .get(&format!("{PATH}?limit=2&cursor={cursor}"), &s.admin)
        .await;
    let second = ids(page["items"].as_array().unwrap());
    assert_eq!(
        [first, second].concat(),
        [id(&used), id(&c), id(&b), id(&a)]
    );

    for (query, status, code) in [
        ("?state=pending", 422, "invalid_status"),
        ("?limit=0", 422, "invalid_limit"),
        ("?limit=501", 422, "invalid_limit"),
        ("?owner_id=me", 422, "invalid_owner_id"),
        ("?cursor=garbage", 400, "invalid_cursor"),
    ] {
        let (got, problem) = s.app.get(&format!("{PATH}{query}"), &s.user).await;
        assert_eq!(
            (got, problem["code"].as_str().unwrap()),
            (status, code),
            "{query}"
        );
    }
}

#[tokio::test]
async fn withdrawing_is_the_owners_or_an_admins_and_never_of_a_used_challenge() {
    let s = setup().await;
    let created = create(&s.app, &s.user, json!({})).await;
    let path = format!("{PATH}/{}", id(&created));
    let withdrawn_events =
        "SELECT count(*) FROM audit_events WHERE action = 'enrollment_challenge.withdrawn'";

    // Someone else's, an unknown id, and no id at all: 404, nothing changes.
    for (token, path) in [
        (&s.other, path.clone()),
        (&s.user, format!("{PATH}/{}", Uuid::now_v7())),
        (&s.user, format!("{PATH}/not-a-uuid")),
    ] {
        let (status, problem) = s.app.send(Method::DELETE, &path, token, Value::Null).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(problem["code"], "not_found");
    }
    assert_eq!(
        s.app
            .tdb
            .scalar_i64("SELECT count(*) FROM enrollment_challenges WHERE withdrawn_at IS NOT NULL")
            .await,
        0
    );
    assert_eq!(s.app.tdb.scalar_i64(withdrawn_events).await, 0);

    // The owner withdraws it; a second time changes nothing; no device can use it.
    for _ in 0..2 {
        let r = s
            .app
            .http
            .delete(s.app.url(&path))
            .bearer_auth(&s.user)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    assert_eq!(s.app.tdb.scalar_i64(withdrawn_events).await, 1);
    assert_eq!(list(&s.app, &s.user, "").await[0]["state"], "withdrawn");
    assert_eq!(claim(&s.app, &secret(&created)).await, None);

    // An ADMIN withdraws a user's.
    let theirs = create(&s.app, &s.other, json!({})).await;
    let (status, _) = s
        .app
        .send(
            Method::DELETE,
            &format!("{PATH}/{}", id(&theirs)),
            &s.admin,
            Value::Null,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(s.app.tdb.scalar_i64(withdrawn_events).await, 2);

    // A used one (it produced a certificate): 409, and it stays used.
    let used = create(&s.app, &s.user, json!({})).await;
    let grant = claim(&s.app, &secret(&used)).await.unwrap();
    issue_as_device(&s.app, s.user_id, grant.id, "router-1").await;
    let (status, problem) = s
        .app
        .send(
            Method::DELETE,
            &format!("{PATH}/{}", id(&used)),
            &s.user,
            Value::Null,
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "challenge_used");
    assert_eq!(list(&s.app, &s.user, "?state=used").await.len(), 1);
    assert_eq!(s.app.tdb.scalar_i64(withdrawn_events).await, 2);
}

/// `keyinfra_challenge_claim_batch_size`'s sum minus its count: how many claims went in a
/// statement with others. Other tests in this process only add to it.
async fn claims_beyond_the_first_of_their_statement(app: &TestApp, admin: &str) -> f64 {
    let metrics = app.metrics(admin).await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    value("keyinfra_challenge_claim_batch_size_sum ")
        - value("keyinfra_challenge_claim_batch_size_count ")
}

/// Devices enrolling at once share a claim statement (claim_batch), and still each
/// challenge is claimed once, however many requests present it together. (Challenges made
/// on another replica: this one's own are claimed from memory, with no statement.)
#[tokio::test]
async fn concurrent_claims_share_a_statement_and_each_challenge_is_claimed_once() {
    let s = setup().await;
    let replica = s.app.replica().await;
    let mut created = Vec::new();
    for _ in 0..12 {
        created.push(create_elsewhere(&s.app, &replica, &s.user, json!({})).await);
    }
    let secrets: Vec<String> = created.iter().map(secret).collect();
    let before = claims_beyond_the_first_of_their_statement(&s.app, &s.admin).await;

    // Every secret once, and the first four more times, all at once.
    let presented = secrets
        .iter()
        .chain(std::iter::repeat_n(&secrets[0], 4))
        .map(|secret| claim(&s.app, secret));
    let grants: Vec<ChallengeGrant> = join_all(presented).await.into_iter().flatten().collect();
    assert_eq!(grants.len(), 12, "one grant per challenge: {grants:?}");
    for challenge in &created {
        assert_eq!(grants.iter().filter(|g| g.id == id(challenge)).count(), 1);
    }
    // All 16 were queued before the batcher ran (one thread): one statement.
    let after = claims_beyond_the_first_of_their_statement(&s.app, &s.admin).await;
    assert!(
        after - before >= 15.0,
        "claims batched: {before} -> {after}"
    );
    assert_eq!(
        s.app
            .tdb
            .scalar_i64("SELECT count(*) FROM enrollment_challenges WHERE used_at IS NOT NULL")
            .await,
        12
    );
}

/// A claim whose request goes away while it is queued gives its challenge back once its
/// statement has claimed it, so a dropped connection does not use up a device's challenge.
#[tokio::test]
async fn a_claim_abandoned_in_the_queue_gives_its_challenge_back() {
    let s = setup().await;
    let replica = s.app.replica().await;
    let created = create_elsewhere(&s.app, &replica, &s.user, json!({})).await;
    let presented = secret(&created);
    let challenges = &s.app.state.authority.challenges;
    // One poll queues the claim, and it is dropped before the batcher runs.
    let abandoned = challenges.claim(&s.app.db, &presented).now_or_never();
    assert!(
        abandoned.is_none(),
        "the claim was answered in its first poll"
    );
    let mut again = None;
    for _ in 0..200 {
        again = claim(&s.app, &presented).await;
        if again.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(again.map(|g| g.id), Some(id(&created)));
}

/// The same answers whether the challenge was made here (taken from memory) or on another
/// replica (claimed in the database).
#[tokio::test]
async fn a_challenge_is_claimed_once_and_a_release_makes_it_claimable_again() {
    let s = setup().await;
    let challenges = &s.app.state.authority.challenges;
    let replica = s.app.replica().await;
    for made_here in [true, false] {
        let created = if made_here {
            create(&s.app, &s.user, json!({})).await
        } else {
            create_elsewhere(&s.app, &replica, &s.user, json!({})).await
        };
        let presented = secret(&created);
        let grant = claim(&s.app, &presented)
            .await
            .expect("the first claim wins");
        assert_eq!(grant.id, id(&created));
        assert_eq!(grant.owner_id, s.user_id);
        assert_eq!(grant.profile, "device");
        assert_eq!(claim(&s.app, &presented).await, None, "claimed twice");

        // Released (the enrollment failed on our side), it works once more.
        assert!(challenges.release(&s.app.db, grant.id).await.unwrap());
        assert!(!challenges.release(&s.app.db, grant.id).await.unwrap());
        assert_eq!(state_of(&s.app, &s.user, grant.id).await, "active");
        // As typed on a device: in capitals, with a newline.
        let again = claim(&s.app, &format!("{}\n", presented.to_uppercase())).await;
        assert_eq!(again.map(|g| g.id), Some(grant.id));

        // A certificate for another owner naming it is refused by its own statement, and
        // writes nothing.
        let before = s.app.written_rows().await;
        let refused = try_issue_as_device(&s.app, s.other_id, grant.id, "not-the-owners").await;
        assert!(is_spent(&refused), "{refused:?}");
        assert_eq!(s.app.written_rows().await, before);
        assert_eq!(linked_certificate(&s.app, &s.user, grant.id).await, None);
        // The owner's is linked by the issue itself (migrations 0027, 0032), once.
        let cert = issue_as_device(&s.app, s.user_id, grant.id, "router-1").await;
        assert_eq!(
            linked_certificate(&s.app, &s.user, grant.id).await,
            Some(cert)
        );
        assert_eq!(state_of(&s.app, &s.user, grant.id).await, "used");
        let again = try_issue_as_device(&s.app, s.user_id, grant.id, "router-2").await;
        assert!(is_spent(&again), "a second certificate: {again:?}");
        assert_eq!(
            s.app.written_rows().await,
            before + 2,
            "one key, one certificate"
        );
        assert_eq!(
            linked_certificate(&s.app, &s.user, grant.id).await,
            Some(cert)
        );
        // A challenge that produced a certificate is never released, nor claimed again.
        assert!(!challenges.release(&s.app.db, grant.id).await.unwrap());
        assert_eq!(claim(&s.app, &presented).await, None);
    }

    // A challenge no claim marked is used by the certificate's statement itself (as for
    // one taken from memory); releasing it before changes nothing.
    let fresh = create_elsewhere(&s.app, &replica, &s.user, json!({})).await;
    assert!(!challenges.release(&s.app.db, id(&fresh)).await.unwrap());
    let cert = issue_as_device(&s.app, s.user_id, id(&fresh), "router-3").await;
    assert_eq!(
        linked_certificate(&s.app, &s.user, id(&fresh)).await,
        Some(cert)
    );
    assert_eq!(claim(&s.app, &secret(&fresh)).await, None);

    // Unknown and malformed secrets.
    for wrong in [
        "",
        "x",
        "23456789abcdefghijkmnpqrstuvwxyz",
        &"0".repeat(32),
        &"é".repeat(32),
    ] {
        assert_eq!(claim(&s.app, wrong).await, None, "{wrong:?}");
    }
}

#[tokio::test]
async fn expired_withdrawn_and_disabled_owners_challenges_are_not_claimed() {
    let s = setup().await;
    let replica = s.app.replica().await;
    let short = create(&s.app, &s.user, json!({ "expires_in_minutes": 1 })).await;
    let short_elsewhere = create_elsewhere(
        &s.app,
        &replica,
        &s.user,
        json!({ "expires_in_minutes": 1 }),
    )
    .await;
    let long = create(&s.app, &s.user, json!({})).await;
    let long_elsewhere = create_elsewhere(&s.app, &replica, &s.user, json!({})).await;
    let withdrawn = create(&s.app, &s.user, json!({})).await;
    let (status, _) = s
        .app
        .send(
            Method::DELETE,
            &format!("{PATH}/{}", id(&withdrawn)),
            &s.user,
            Value::Null,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(claim(&s.app, &secret(&withdrawn)).await, None);

    s.app.clock.advance(Duration::seconds(61));
    assert_eq!(claim(&s.app, &secret(&short)).await, None, "expired");
    assert_eq!(
        claim(&s.app, &secret(&short_elsewhere)).await,
        None,
        "expired"
    );

    // The owner disabled: their challenges stop working. The database's claim refuses one
    // made elsewhere; one this replica holds in memory is handed out (the memory does not
    // know), and the statement that would record its certificate refuses it.
    let (status, _) = s
        .app
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{}", s.user_id),
            &s.admin,
            json!({ "disabled": true }),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        claim(&s.app, &secret(&long_elsewhere)).await,
        None,
        "disabled owner"
    );
    let grant = claim(&s.app, &secret(&long)).await.expect("from memory");
    let before = s.app.written_rows().await;
    let refused = try_issue_as_device(&s.app, s.user_id, grant.id, "router-1").await;
    assert!(
        is_spent(&refused),
        "a disabled owner's device got {refused:?}"
    );
    assert_eq!(s.app.written_rows().await, before);
    assert_eq!(
        s.app
            .tdb
            .scalar_i64("SELECT count(*) FROM enrollment_challenges WHERE used_at IS NOT NULL")
            .await,
        0
    );
}

/// What another replica does to a challenge after this one handed it out from memory
/// (withdraws it, or uses it) refuses this one's certificate: never two certificates.
#[tokio::test]
async fn a_challenge_spent_on_another_replica_after_this_one_handed_it_out_issues_nothing() {
    let s = setup().await;
    let replica = s.app.replica().await;
    let claims = |source: &'static str| {
        let app = &s.app;
        let admin = &s.admin;
        async move {
            let metrics = app.metrics(admin).await;
            metrics
                .lines()
                .filter(|l| {
                    l.starts_with("keyinfra_challenge_claims_total")
                        && l.contains(&format!("source=\"{source}\""))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        }
    };
    let from_memory = claims("memory").await;

    // Withdrawn there.
    let withdrawn = create(&s.app, &s.user, json!({})).await;
    let grant = claim(&s.app, &secret(&withdrawn))
        .await
        .expect("from memory");
    let r = s
        .app
        .http
        .delete(format!("{}{PATH}/{}", replica.base, grant.id))
        .bearer_auth(&s.user)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "not used yet, so it may be withdrawn");
    let before = s.app.written_rows().await;
    let refused = try_issue_as_device(&s.app, s.user_id, grant.id, "router-1").await;
    assert!(is_spent(&refused), "{refused:?}");
    assert_eq!(s.app.written_rows().await, before);
    assert_eq!(state_of(&s.app, &s.user, grant.id).await, "withdrawn");
    // This replica forgot it: the next device asks the database, which refuses it.
    let from_database = claims("database").await;
    assert_eq!(claim(&s.app, &secret(&withdrawn)).await, None);
    assert!(claims("database").await > from_database);

    // Used there, by a device that presented the same secret to the other replica.
    let used = create(&s.app, &s.user, json!({})).await;
    let here = claim(&s.app, &secret(&used)).await.expect("from memory");
    let there = claim_on(&replica.state, &secret(&used))
        .await
        .expect("the other replica claims it in the database");
    assert_eq!(here.id, there.id);
    let theirs = issue_on(&replica.state, s.user_id, there.id, "router-2")
        .await
        .unwrap();
    let before = s.app.written_rows().await;
    let refused = try_issue_as_device(&s.app, s.user_id, here.id, "router-3").await;
    assert!(is_spent(&refused), "{refused:?}");
    assert_eq!(s.app.written_rows().await, before);
    assert_eq!(
        linked_certificate(&s.app, &s.user, here.id).await,
        Some(theirs)
    );
    assert!(claims("memory").await >= from_memory + 2.0);
}

/// Two devices present one secret to two replicas: the replica that made it hands it out
/// from memory, the other claims it in the database, and both sign. Recorded at the same
/// moment, many times over: exactly one certificate is recorded and linked each time, and
/// the other device is refused for its challenge.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secret_presented_to_two_replicas_at_once_gives_one_certificate() {
    let s = setup().await;
    let replica = s.app.replica().await;
    let issue = |state: keyinfra_server::AppState, grant: ChallengeGrant, cn: String| async move {
        issue_on(&state, grant.owner_id, grant.id, &cn).await
    };
    // Eight rounds: the test server's quota is 10 certificates per owner, and the loser
    // of the last round must be refused for its challenge, not the quota.
    for round in 0..8 {
        let created = create(&s.app, &s.user, json!({})).await;
        let here = claim(&s.app, &secret(&created)).await.expect("from memory");
        let there = claim_on(&replica.state, &secret(&created))
            .await
            .expect("claimed in the database");
        let here = tokio::spawn(issue(s.app.state.clone(), here, format!("here-{round}")));
        let there = tokio::spawn(issue(
            replica.state.clone(),
            there,
            format!("there-{round}"),
        ));
        let answers = [here.await.unwrap(), there.await.unwrap()];
        let issued: Vec<Uuid> = answers
            .iter()
            .filter_map(|a| a.as_ref().ok().copied())
            .collect();
        assert_eq!(issued.len(), 1, "round {round}: {answers:?}");
        for answer in &answers {
            if let Err(e) = answer {
                assert!(
                    matches!(
                        e,
                        CoreError::Conflict {
                            code: ErrorCode::ChallengeUsed,
                            ..
                        }
                    ),
                    "round {round}: {e:?}"
                );
            }
        }
        assert_eq!(
            linked_certificate(&s.app, &s.user, id(&created)).await,
            Some(issued[0]),
            "round {round}"
        );
    }
    assert_eq!(
        s.app
            .tdb
            .scalar_i64("SELECT count(*) FROM certificates")
            .await,
        8
    );
}

/// On one replica, of concurrent claims of one secret exactly one wins: from memory or
/// from the database.
#[tokio::test]
async fn of_concurrent_claims_of_one_secret_exactly_one_wins() {
    let s = setup().await;
    let replica = s.app.replica().await;
    for made_here in [true, false] {
        let created = if made_here {
            create(&s.app, &s.user, json!({})).await
        } else {
            create_elsewhere(&s.app, &replica, &s.user, json!({})).await
        };
        let secret = secret(&created);
        let claims = (0..8).map(|_| {
            let state = s.app.state.clone();
            let db = s.app.db.clone();
            let secret = secret.clone();
            tokio::spawn(async move {
                state
                    .authority
                    .challenges
                    .claim(&db, &secret)
                    .await
                    .unwrap()
            })
        });
        let mut won = 0;
        for c in claims.collect::<Vec<_>>() {
            won += usize::from(c.await.unwrap().is_some());
        }
        assert_eq!(won, 1, "made here: {made_here}");
    }
}

#[tokio::test]
async fn an_owner_holds_at_most_100_live_challenges() {
    let s = setup().await;
    let mut last = Value::Null;
    for _ in 0..100 {
        last = create(&s.app, &s.user, json!({})).await;
    }
    let before = written(&s.app).await;
    let (status, problem) = s.app.send(Method::POST, PATH, &s.user, json!({})).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "too_many_challenges");
    // An ADMIN cannot exceed it for the user either.
    let (status, _) = s
        .app
        .send(
            Method::POST,
            PATH,
            &s.admin,
            json!({ "owner_id": s.user_id }),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(written(&s.app).await, before);
    // Other owners are not affected, and a used challenge no longer counts; one only
    // handed out to a device still does (its certificate may yet fail).
    create(&s.app, &s.other, json!({})).await;
    let grant = claim(&s.app, &secret(&last)).await.unwrap();
    let (status, _) = s.app.send(Method::POST, PATH, &s.user, json!({})).await;
    assert_eq!(status, 422);
    issue_as_device(&s.app, s.user_id, grant.id, "router-1").await;
    create(&s.app, &s.user, json!({})).await;
}

#[tokio::test]
async fn the_application_role_cannot_read_hashes_or_change_the_claim_state() {
    let s = setup().await;
    create(&s.app, &s.user, json!({})).await;
    // Even an identity that sees every row: the claim state changes only through the
    // definer functions, and the hash is not readable.
    for actor in [
        Actor::System,
        Actor::User {
            id: s.admin_id,
            role: UserRole::Admin,
        },
    ] {
        for sql in [
            "SELECT secret_hash FROM enrollment_challenges",
            "UPDATE enrollment_challenges SET used_at = now()",
            "UPDATE enrollment_challenges SET expires_at = now() + interval '1 day'",
            "DELETE FROM enrollment_challenges",
        ] {
            let mut tx = s.app.db.begin(&actor).await.unwrap();
            let result = keyinfra_db::testing::raw_execute(&mut tx, sql).await;
            assert!(
                matches!(result, Err(DbError::PermissionDenied)),
                "{sql}: {result:?}"
            );
        }
    }
    // Without an identity nothing is visible; with the user's own, their row.
    let mut tx = s.app.db.begin(&Actor::Anonymous).await.unwrap();
    let rows = keyinfra_db::testing::raw_query(&mut tx, "SELECT id FROM enrollment_challenges")
        .await
        .unwrap();
    assert!(rows.is_empty());
    drop(tx);
    let mut tx = s
        .app
        .db
        .begin(&Actor::User {
            id: s.other_id,
            role: UserRole::User,
        })
        .await
        .unwrap();
    let rows = keyinfra_db::testing::raw_query(&mut tx, "SELECT id FROM enrollment_challenges")
        .await
        .unwrap();
    assert!(rows.is_empty(), "another user's challenge is visible");
}

#[tokio::test]
async fn creating_challenges_takes_from_the_users_write_rate() {
    let app = TestApp::spawn_with(
        crate::support::PEPPER,
        None,
        crate::support::test_edge(),
        |settings| {
            settings.write_rate = Some(keyinfra_core::rate::WriteRate {
                per_minute: 3,
                admins_too: false,
            });
        },
    )
    .await;
    app.user("hank", UserRole::User).await;
    let hank = app.token("hank").await;
    // The same bucket as certificate writes: one issue, two challenges, then no more.
    app.issue(&hank, json!({ "subject": "CN=hank-1" })).await;
    for _ in 0..2 {
        create(&app, &hank, json!({})).await;
    }
    let before = written(&app).await;
    let r = app.post_raw(PATH, &hank, json!({})).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");
    assert_eq!(written(&app).await, before);
    app.clock.advance(Duration::minutes(1));
    let hank = app.token("hank").await;
    create(&app, &hank, json!({})).await;
}
