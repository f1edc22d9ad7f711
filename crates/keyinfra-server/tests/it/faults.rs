//! Database failures under load: PostgreSQL stopped and started while certificates are
//! being issued, and a pool exhausted by slow requests.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyinfra_core::{AdjustableClock, OsRandom};
use keyinfra_db::{Database, PoolSettings, UserRole, migrations};
use keyinfra_embedded_pg::{ClusterSettings, EmbeddedCluster, PgBinaries, throwaway_root};
use serde_json::{Value, json};

use crate::support::{PASSWORD, TestApp};

/// Every answer a load worker got: status, and the id of a created certificate.
type Answers = Arc<Mutex<Vec<(u16, Option<String>)>>>;

fn cluster_settings(dir: &std::path::Path) -> ClusterSettings {
    let explicit = std::env::var_os("KEYINFRA_PG_BINDIR").map(std::path::PathBuf::from);
    ClusterSettings {
        ephemeral: true,
        startup_timeout: Duration::from_secs(120),
        ..ClusterSettings::new(dir, PgBinaries::locate(explicit.as_deref()).unwrap())
    }
}

/// Issues server-side-key certificates in a loop until told to stop; records every answer.
async fn issue_until(
    base: String,
    token: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
    answers: Answers,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut n = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        n += 1;
        let cn = format!("fault-{}-{n}", uuid::Uuid::new_v4().simple());
        let sent = http
            .post(format!("{base}/api/v1/certificates"))
            .bearer_auth(&token)
            .json(&json!({ "subject": format!("CN={cn}"), "san": [format!("{cn}.example.net")] }))
            .send()
            .await;
        let response = sent.expect("the server answers (no hang, no dropped connection)");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == 503 {
            assert_eq!(body["code"], "database_unavailable", "{body}");
        }
        let id = (status == 201).then(|| body["id"].as_str().unwrap().to_owned());
        answers.lock().unwrap().push((status, id));
        if status != 201 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn postgres_stopped_and_started_under_load_gives_503_then_recovers_with_nothing_lost() {
    let dir = throwaway_root().join(format!("fault-{}", uuid::Uuid::new_v4().simple()));
    let mut cluster = Some(EmbeddedCluster::start(cluster_settings(&dir)).unwrap());
    let server_url = cluster.as_ref().unwrap().database_url("postgres");
    let url = cluster.as_ref().unwrap().database_url("keyinfra");
    keyinfra_db::create_database_if_missing(&server_url, "keyinfra")
        .await
        .unwrap();
    migrations::up(&url).await.unwrap();
    let db = Database::connect(
        &url,
        &PoolSettings {
            min_connections: 0,
            max_connections: 4,
            acquire_timeout: Duration::from_secs(1),
            ..PoolSettings::default()
        },
    )
    .await
    .unwrap();
    let clock = Arc::new(AdjustableClock::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let mut config = crate::support::config(db.clone(), &base, crate::support::PEPPER, clock);
    // No per-user quota: one admin issues everything here.
    config.authority.quota = None;
    let app = crate::support::serve(config, listener).await;
    app.state()
        .users
        .create(
            &db,
            None,
            "root",
            PASSWORD.to_owned(),
            UserRole::Admin,
            None,
            &mut OsRandom,
        )
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "username": "root", "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();

    let before = Arc::new(Mutex::new(Vec::new()));
    let during = Arc::new(Mutex::new(Vec::new()));
    let after = Arc::new(Mutex::new(Vec::new()));
    let phase = |answers: &Answers| {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                tokio::spawn(issue_until(
                    base.clone(),
                    token.clone(),
                    stop.clone(),
                    answers.clone(),
                ))
            })
            .collect();
        (stop, workers)
    };

    // Load, then PostgreSQL goes away in the middle of it.
    let (stop_before, workers) = phase(&before);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut running = cluster.take().unwrap();
    let stopped = tokio::task::spawn_blocking(move || {
        running.stop().unwrap();
        running
    });
    let running = stopped.await.unwrap();
    drop(running);
    stop_before.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    // While it is down: 503s, promptly.
    let (stop_during, workers) = phase(&during);
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_during.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    // Back up: the server recovers by itself.
    let settings = cluster_settings(&dir);
    let restarted = tokio::task::spawn_blocking(move || EmbeddedCluster::start(settings).unwrap())
        .await
        .unwrap();
    let (stop_after, workers) = phase(&after);
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop_after.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    let tally = |answers: &Answers| {
        let mut counts = BTreeMap::new();
        for (status, _) in answers.lock().unwrap().iter() {
            *counts.entry(*status).or_insert(0) += 1;
        }
        counts
    };
    let (b, d, a) = (tally(&before), tally(&during), tally(&after));
    for counts in [&b, &d, &a] {
        assert!(
            counts.keys().all(|s| *s == 201 || *s == 503),
            "only 201 or 503: before {b:?}, during {d:?}, after {a:?}"
        );
    }
    assert!(b.get(&201).copied().unwrap_or(0) > 0, "before {b:?}");
    assert!(
        d.get(&503).copied().unwrap_or(0) > 0 && !d.contains_key(&201),
        "during {d:?}"
    );
    assert!(
        a.get(&201).copied().unwrap_or(0) > 0,
        "no recovery: after {a:?}"
    );

    // Every certificate reported created exists; no certificate lacks its key, no key its
    // certificate.
    let created: Vec<String> = [&before, &during, &after]
        .iter()
        .flat_map(|answers| {
            answers
                .lock()
                .unwrap()
                .iter()
                .filter_map(|(_, id)| id.clone())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut owner = keyinfra_db::testing::OwnerSession::connect(&url).await;
    for id in &created {
        let found = owner
            .scalar(&format!(
                "SELECT count(*) FROM certificates WHERE id = '{id}'"
            ))
            .await;
        assert_eq!(
            found, 1,
            "certificate {id} was reported created but is missing"
        );
    }
    let certificates = owner.scalar("SELECT count(*) FROM certificates").await;
    assert!(certificates >= created.len() as i64);
    assert_eq!(
        owner
            .scalar(
                "SELECT count(*) FROM certificates c WHERE c.private_key_id IS NULL \
                 OR NOT EXISTS (SELECT 1 FROM private_keys k WHERE k.id = c.private_key_id)"
            )
            .await,
        0,
        "a certificate without its key"
    );
    assert_eq!(
        owner
            .scalar(
                "SELECT count(*) FROM private_keys k WHERE NOT EXISTS \
                 (SELECT 1 FROM certificates c WHERE c.private_key_id = k.id) \
                 AND NOT EXISTS (SELECT 1 FROM certificate_authorities a WHERE a.private_key_id = k.id)"
            )
            .await,
        0,
        "a key without its certificate"
    );
    db.close().await;
    drop(restarted);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn more_slow_requests_than_connections_get_503_within_the_acquire_timeout() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    // A server with two connections and a 500 ms acquire timeout on the same database.
    let base = app
        .server_with_pool(&PoolSettings {
            min_connections: 0,
            max_connections: 2,
            acquire_timeout: Duration::from_millis(500),
            ..PoolSettings::default()
        })
        .await;
    // Creating a user writes an audit row: while another session holds the audit table,
    // each creation holds its connection and waits (a slow request). (Not issuance: group
    // commit shares connections between issuances; tests/it/group_commit.rs covers its
    // queue.)
    let mut blocker = keyinfra_db::testing::OwnerSession::connect(app.tdb.url()).await;
    blocker
        .execute("BEGIN; LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE")
        .await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let requests: Vec<_> = (0..5)
        .map(|i| {
            let http = http.clone();
            let url = format!("{base}/api/v1/users");
            let admin = admin.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let r = http
                    .post(url)
                    .bearer_auth(admin)
                    .json(&json!({
                        "username": format!("slow-{i}"),
                        "password": "a long enough password",
                        "role": "USER"
                    }))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let retry_after = r.headers().get("retry-after").cloned();
                (status, retry_after, started.elapsed())
            })
        })
        .collect();
    // The three that found no connection are answered while the two still wait.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut finished = Vec::new();
    let mut waiting = Vec::new();
    for r in requests {
        if r.is_finished() {
            finished.push(r.await.unwrap());
        } else {
            waiting.push(r);
        }
    }
    assert_eq!(finished.len(), 3, "{finished:?}");
    for (status, retry_after, elapsed) in &finished {
        assert_eq!(*status, 503);
        assert!(retry_after.is_some());
        assert!(*elapsed < Duration::from_secs(3), "{elapsed:?}");
    }
    assert_eq!(waiting.len(), 2);
    // Released, the slow ones complete.
    blocker.execute("COMMIT").await;
    for w in waiting {
        let (status, _, _) = w.await.unwrap();
        assert_eq!(status, 201);
    }
}
