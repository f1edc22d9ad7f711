//! Group commit: concurrent first issues share transactions, and a batch is never a rule of
//! its own (keyinfra_core::group_commit).
//!
//! Each test holds the audit table from another session, so that the batches that reach
//! their INSERT wait, and the requests sent meanwhile queue up; then it lets go.

use std::time::Duration;

use keyinfra_db::testing::OwnerSession;
use keyinfra_db::{PoolSettings, UserRole};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::openssl::{Scratch, openssl_ok};
use crate::support::TestApp;

/// Blocks every INSERT into audit_events until `release`.
async fn hold_audit_table(app: &TestApp) -> OwnerSession {
    let mut blocker = OwnerSession::connect(app.tdb.url()).await;
    blocker
        .execute("BEGIN; LOCK TABLE audit_events IN SHARE MODE")
        .await;
    blocker
}

/// Waits until `n` sessions of the test database wait for a lock.
async fn wait_for_lock_waiters(app: &TestApp, n: i64) {
    let mut probe = OwnerSession::connect(app.tdb.url()).await;
    for _ in 0..600 {
        let waiting = probe
            .scalar(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .await;
        if waiting >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{n} sessions never waited for the audit table");
}

fn post(http: &reqwest::Client, base: &str, token: &str, body: Value) -> JoinHandle<(u16, Value)> {
    let request = http
        .post(format!("{base}/api/v1/certificates"))
        .bearer_auth(token)
        .json(&body);
    tokio::spawn(async move {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

fn csr(dir: &Scratch, name: &str) -> String {
    let key = dir.path(&format!("{name}.key"));
    let out = dir.path(&format!("{name}.csr"));
    openssl_ok(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &key,
        "-subj",
        &format!("/CN={name}"),
        "-out",
        &out,
    ]);
    String::from_utf8(dir.read(&format!("{name}.csr"))).unwrap()
}

#[tokio::test]
async fn concurrent_issues_share_transactions_each_with_its_key_and_audit_event() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let bob = app.user("bob", UserRole::User).await;
    let admin = app.token("root").await;
    let dir = Scratch::new();
    let csrs: Vec<String> = (0..2).map(|i| csr(&dir, &format!("csr-{i}"))).collect();

    let blocker = hold_audit_table(&app).await;
    let mut requests = Vec::new();
    // Ten for bob (his whole quota, reached exactly inside the batch), two CSRs and six
    // server-side keys for the admin: one actor, so one group.
    for i in 0..10 {
        let body = json!({"subject": format!("CN=bob-{i}"), "owner_id": bob});
        requests.push(post(&app.http, &app.base, &admin, body));
    }
    for pem in &csrs {
        requests.push(post(&app.http, &app.base, &admin, json!({"csr": pem})));
    }
    for i in 0..6 {
        let body =
            json!({"subject": format!("CN=admin-{i}"), "san": [format!("a{i}.example.net")]});
        requests.push(post(&app.http, &app.base, &admin, body));
    }
    wait_for_lock_waiters(&app, 1).await;
    // Signing the rest takes milliseconds; give them ample time to queue.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut blocker = blocker;
    blocker.execute("COMMIT").await;

    let mut ids = Vec::new();
    for request in requests {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let total = ids.len() as i64;
    assert_eq!(total, 18);
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT count(*) FROM certificates")
            .await,
        total
    );
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT count(DISTINCT serial_number) FROM certificates")
            .await,
        total
    );
    // Every server-made key belongs to exactly one certificate; the CSRs brought none (the
    // one other key is the CA's).
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT count(*) FROM private_keys")
            .await,
        16 + 1
    );
    assert_eq!(
        app.tdb
            .scalar_i64(
                "SELECT count(*) FROM certificates c JOIN private_keys k ON k.id = c.private_key_id
                 WHERE k.owner_id IS NOT DISTINCT FROM c.owner_id"
            )
            .await,
        16
    );
    // One audit event per certificate, written by the same transaction as it.
    assert_eq!(
        app.tdb
            .scalar_i64(
                "SELECT count(*) FROM audit_events a JOIN certificates c ON c.id = a.target_id
                 WHERE a.action = 'certificate.issued' AND a.xmin = c.xmin
                   AND a.details->>'serial_number' = c.serial_number"
            )
            .await,
        total
    );
    // Fewer transactions than certificates: they were recorded together.
    let transactions = app
        .tdb
        .scalar_i64("SELECT count(DISTINCT xmin::text) FROM certificates")
        .await;
    assert!(
        transactions < total / 2,
        "{transactions} transactions for {total} certificates"
    );
    // Time-ordered (version 7) ids for the certificates, their keys (the CA's too) and the
    // audit events, so that each table's index entries land at its right-hand edge.
    for not_v7 in [
        "SELECT count(*) FROM certificates WHERE substr(id::text, 15, 1) <> '7'",
        "SELECT count(*) FROM private_keys WHERE substr(id::text, 15, 1) <> '7'",
        "SELECT count(*) FROM audit_events WHERE substr(id::text, 15, 1) <> '7'",
    ] {
        assert_eq!(app.tdb.scalar_i64(not_v7).await, 0, "{not_v7}");
    }
    // What the API answered is what was stored.
    for id in &ids {
        let (status, cert) = app.get(&format!("/api/v1/certificates/{id}"), &admin).await;
        assert_eq!(status, 200);
        assert_eq!(cert["id"], json!(id));
    }
}

#[tokio::test]
async fn a_batch_with_refused_members_answers_every_request_exactly() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let alice = app.user("alice", UserRole::User).await;
    let admin = app.token("root").await;
    let alice_token = app.token("alice").await;
    app.user("root2", UserRole::Admin).await;
    let other_admin = app.token("root2").await;
    // Alice has 8 of her 10.
    for i in 0..8 {
        app.issue(
            &admin,
            json!({"subject": format!("CN=early-{i}"), "owner_id": alice}),
        )
        .await;
    }
    let before = app.written_rows().await;

    let blocker = hold_audit_table(&app).await;
    let mut for_alice = Vec::new();
    for i in 0..3 {
        let body = json!({"subject": format!("CN=for-alice-{i}"), "owner_id": alice});
        for_alice.push(post(&app.http, &app.base, &admin, body));
    }
    // Alice's own request: another actor, so another group, same quota.
    for_alice.push(post(
        &app.http,
        &app.base,
        &alice_token,
        json!({"subject": "CN=by-alice"}),
    ));
    // An owner that does not exist fails its batch's foreign key (another actor, so that
    // the admin's batch above must fail on the quota alone).
    let nobody = post(
        &app.http,
        &app.base,
        &other_admin,
        json!({"subject": "CN=orphan", "owner_id": Uuid::new_v4()}),
    );
    let mut for_admin = Vec::new();
    for i in 0..5 {
        let body = json!({"subject": format!("CN=admin-{i}")});
        for_admin.push(post(&app.http, &app.base, &admin, body));
    }
    wait_for_lock_waiters(&app, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut blocker = blocker;
    blocker.execute("COMMIT").await;

    let mut issued_for_alice = 0;
    let mut refused_for_alice = 0;
    for request in for_alice {
        let (status, body) = request.await.unwrap();
        match status {
            201 => issued_for_alice += 1,
            422 => {
                assert_eq!(body["code"], "quota_exceeded", "{body}");
                refused_for_alice += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((issued_for_alice, refused_for_alice), (2, 2));
    let (status, body) = nobody.await.unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("unknown_owner")),
        "{body}"
    );
    for request in for_admin {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, 201, "{body}");
    }
    // Exactly the answered certificates exist, each with its key, nothing half-written.
    let mut owner = OwnerSession::connect(app.tdb.url()).await;
    let alice_active = owner
        .scalar(&format!(
            "SELECT count(*) FROM certificates WHERE owner_id = '{alice}' AND status = 'ACTIVE'"
        ))
        .await;
    assert_eq!(alice_active, 10);
    assert_eq!(app.written_rows().await, before + 2 * (2 + 5));
    assert_eq!(
        app.tdb
            .scalar_i64(
                "SELECT count(*) FROM private_keys k
                 WHERE NOT EXISTS (SELECT 1 FROM certificates c WHERE c.private_key_id = k.id)
                   AND NOT EXISTS (SELECT 1 FROM certificate_authorities a
                                   WHERE a.private_key_id = k.id)"
            )
            .await,
        0
    );
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT count(*) FROM audit_events WHERE action = 'certificate.issued'")
            .await,
        8 + 2 + 5
    );
}

#[tokio::test]
async fn issues_queued_behind_stuck_batches_get_503_and_are_never_written() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    // A second server on the same database whose pool gives up after 500 ms.
    let base = app
        .server_with_pool(&PoolSettings {
            min_connections: 0,
            acquire_timeout: Duration::from_millis(500),
            ..PoolSettings::default()
        })
        .await;

    let blocker = hold_audit_table(&app).await;
    // One batch stuck; the next waits for it to end (too few members to overlap).
    let first = post(&app.http, &base, &admin, json!({"subject": "CN=first"}));
    wait_for_lock_waiters(&app, 1).await;
    // These find no turn within the acquire timeout, as requests that find no connection.
    let queued: Vec<_> = (0..3)
        .map(|i| {
            let request = app
                .http
                .post(format!("{base}/api/v1/certificates"))
                .bearer_auth(&admin)
                .json(&json!({"subject": format!("CN=queued-{i}")}));
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let retry_after = response.headers().get("retry-after").cloned();
                let body: Value = response.json().await.unwrap();
                (status, retry_after, body)
            })
        })
        .collect();
    for request in queued {
        let (status, retry_after, body) = request.await.unwrap();
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["code"], "database_unavailable");
        assert!(retry_after.is_some());
    }
    assert!(!first.is_finished());
    let mut blocker = blocker;
    blocker.execute("COMMIT").await;
    assert_eq!(first.await.unwrap().0, 201);
    // The queue is first in, first out: once a later request is answered, the abandoned
    // ones have been passed over.
    let (status, body) = post(&app.http, &base, &admin, json!({"subject": "CN=later"}))
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT count(*) FROM certificates")
            .await,
        2
    );
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT count(*) FROM certificates WHERE subject_dn LIKE 'CN=queued-%'")
            .await,
        0
    );
}
