//! The schema benchmark: loads synthetic certificates, then times the hot queries.
//! (One file of ~650 lines on purpose: the loader and the timings share their SQL, and it
//! is built only with the `bench` feature.)
//!
//! Run it with `cargo run --release -p keyinfra-bench -- schema` (see docs/benchmarks.md).
//! The SQL here is bulk DDL and EXPLAIN, which the checked `query!` macros cannot express,
//! so it uses unchecked queries; the timed queries are the application's own repository
//! functions, run as the application role with row-level security on.

use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::DbError;
use crate::pool::{Database, PoolSettings, owner_connection};
use crate::session::Actor;
use crate::types::UserRole;
use crate::{certificates, migrations, stats};

#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The server to use; a database `keyinfra_bench` is (re)created on it.
    pub server_url: String,
    pub rows: i64,
    pub users: i64,
    /// Certificates expire uniformly from `months_back` months ago to `months_ahead` ahead.
    pub months_back: i32,
    pub months_ahead: i32,
    pub samples: usize,
    /// Reuse an already loaded `keyinfra_bench` database instead of reloading it.
    pub reuse: bool,
    /// Give every certificate its own (fake) sealed private key, as server-side keys have.
    pub with_keys: bool,
}

/// Latency percentiles of one query, in milliseconds.
#[derive(Debug, Clone)]
pub struct Latency {
    pub name: String,
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub rows_per_call: f64,
}

#[derive(Debug, Clone)]
pub struct BenchReport {
    pub rows: i64,
    pub partitions: i64,
    pub load_seconds: f64,
    pub server_version: String,
    pub latencies: Vec<Latency>,
    pub refresh_ms: Vec<f64>,
    pub explains: Vec<(String, String)>,
}

const BENCH_DB: &str = "keyinfra_bench";

pub async fn run(config: &BenchConfig, log: &dyn Fn(&str)) -> Result<BenchReport, DbError> {
    let url = with_database(&config.server_url, BENCH_DB)?;
    let mut load_seconds = 0.0;
    if !config.reuse {
        let started = Instant::now();
        load(config, &url, log).await?;
        load_seconds = started.elapsed().as_secs_f64();
    }
    let mut owner = owner_connection(&url).await?;
    let server_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&mut owner)
        .await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM certificate_serials")
        .fetch_one(&mut owner)
        .await?;
    let partitions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'certificates'::regclass",
    )
    .fetch_one(&mut owner)
    .await?;
    let users: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM users ORDER BY id")
        .fetch_all(&mut owner)
        .await?;
    let serials: Vec<String> = sqlx::query_scalar(
        "SELECT serial_number FROM certificate_serials TABLESAMPLE SYSTEM (1) LIMIT 5000",
    )
    .fetch_all(&mut owner)
    .await?;
    let admin_id: Uuid = sqlx::query_scalar("SELECT id FROM users WHERE role = 'ADMIN' LIMIT 1")
        .fetch_one(&mut owner)
        .await?;
    let now = now_from_database(&mut owner).await?;
    let _ = owner.close().await;

    let db = Database::connect(
        &url,
        &PoolSettings {
            min_connections: 1,
            max_connections: 2,
            ..PoolSettings::default()
        },
    )
    .await?;
    let admin = Actor::User {
        id: admin_id,
        role: UserRole::Admin,
    };
    let pick = |i: usize, n: usize| (i.wrapping_mul(2_654_435_761)) % n.max(1);
    let mut latencies = Vec::new();

    log("timing: a user's certificates ordered by expiry (LIMIT 50)");
    latencies.push(
        time_query(
            "user's certificates by expiry, LIMIT 50 (as that USER)",
            config.samples,
            |i| {
                let user = users[pick(i, users.len())];
                let db = db.clone();
                async move {
                    let mut tx = db
                        .begin(&Actor::User {
                            id: user,
                            role: UserRole::User,
                        })
                        .await?;
                    let t = Instant::now();
                    let rows = certificates::list_for_owner(&mut tx, user, 50).await?;
                    let elapsed = t.elapsed();
                    tx.commit().await?;
                    Ok((elapsed, rows.len()))
                }
            },
        )
        .await?,
    );
    log("timing: certificates expiring within 7 days");
    latencies.push(
        time_query(
            "expiring within 7 days, first page of 50 (as ADMIN)",
            config.samples,
            |_| {
                let db = db.clone();
                async move {
                    let mut tx = db.begin(&admin).await?;
                    let t = Instant::now();
                    let rows =
                        certificates::expiring(&mut tx, time::Duration::days(7), now, 50).await?;
                    let elapsed = t.elapsed();
                    tx.commit().await?;
                    Ok((elapsed, rows.len()))
                }
            },
        )
        .await?,
    );
    latencies.push(
        time_query(
            "expiring within 7 days, all of one user's (as that USER)",
            config.samples,
            |i| {
                let user = users[pick(i, users.len())];
                let db = db.clone();
                async move {
                    let mut tx = db
                        .begin(&Actor::User {
                            id: user,
                            role: UserRole::User,
                        })
                        .await?;
                    let t = Instant::now();
                    let rows = certificates::expiring_for_owner(
                        &mut tx,
                        user,
                        time::Duration::days(7),
                        now,
                        1000,
                    )
                    .await?;
                    let elapsed = t.elapsed();
                    tx.commit().await?;
                    Ok((elapsed, rows.len()))
                }
            },
        )
        .await?,
    );
    log("timing: lookup by serial");
    latencies.push(
        time_query("lookup by serial (as ADMIN)", config.samples, |i| {
            let serial = serials[pick(i, serials.len())].clone();
            let db = db.clone();
            async move {
                let mut tx = db.begin(&admin).await?;
                let t = Instant::now();
                let row = certificates::find_by_serial(&mut tx, &serial, None).await?;
                let elapsed = t.elapsed();
                tx.commit().await?;
                Ok((elapsed, usize::from(row.is_some())))
            }
        })
        .await?,
    );

    log("timing: REFRESH MATERIALIZED VIEW CONCURRENTLY certificate_stats (3 runs)");
    let mut refresh_ms = Vec::new();
    let mut conn = db.maintenance().await?;
    for _ in 0..3 {
        let t = Instant::now();
        stats::refresh(&mut conn).await?;
        refresh_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    conn.close().await;
    db.close().await;

    log("EXPLAIN: partition pruning");
    let mut conn = owner_connection(&url).await?;
    let user = users[0];
    let serial = serials.first().cloned().unwrap_or_default();
    let explains = vec![
        (
            "user's certificates by expiry".to_owned(),
            explain(&mut conn, &Actor::User { id: user, role: UserRole::User },
                "SELECT id, not_after FROM certificates WHERE owner_id = $1 ORDER BY not_after, id LIMIT 50",
                Bind::Uuid(user)).await?,
        ),
        (
            "expiring within 7 days".to_owned(),
            explain(&mut conn, &admin,
                "SELECT id, not_after FROM certificates_expiring('7 days', $1) LIMIT 50",
                Bind::Time(now)).await?,
        ),
        (
            "lookup by serial".to_owned(),
            explain(&mut conn, &admin, "SELECT id FROM certificate_by_serial($1)", Bind::Text(serial)).await?,
        ),
    ];
    let _ = conn.close().await;

    Ok(BenchReport {
        rows,
        partitions,
        load_seconds,
        server_version,
        latencies,
        refresh_ms,
        explains,
    })
}

async fn time_query<F, Fut>(name: &str, samples: usize, mut call: F) -> Result<Latency, DbError>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<(Duration, usize), DbError>>,
{
    let warmup = (samples / 10).max(10);
    for i in 0..warmup {
        call(i + samples).await?;
    }
    let mut times = Vec::with_capacity(samples);
    let mut rows = 0usize;
    for i in 0..samples {
        let (elapsed, n) = call(i).await?;
        times.push(elapsed.as_secs_f64() * 1000.0);
        rows += n;
    }
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    Ok(Latency {
        name: name.to_owned(),
        samples,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: times.last().copied().unwrap_or(0.0),
        rows_per_call: rows as f64 / samples.max(1) as f64,
    })
}

enum Bind {
    Uuid(Uuid),
    Time(OffsetDateTime),
    Text(String),
}

/// EXPLAIN ANALYZE as the application role with the given identity, so the plan shown is
/// the one row-level security produces.
async fn explain(
    conn: &mut PgConnection,
    actor: &Actor,
    sql: &str,
    bind: Bind,
) -> Result<String, DbError> {
    let mut tx = conn.begin().await?;
    tx.execute("SET LOCAL ROLE keyinfra_app").await?;
    tx.execute(sqlx::AssertSqlSafe(
        actor
            .begin_statement()
            .trim_start_matches("BEGIN;")
            .to_owned(),
    ))
    .await?;
    let text = format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}");
    let query = sqlx::query(sqlx::AssertSqlSafe(text));
    let query = match bind {
        Bind::Uuid(u) => query.bind(u),
        Bind::Time(t) => query.bind(t),
        Bind::Text(s) => query.bind(s),
    };
    let rows = query.fetch_all(&mut *tx).await?;
    tx.rollback().await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .collect::<Vec<_>>()
        .join("\n"))
}

async fn now_from_database(conn: &mut PgConnection) -> Result<OffsetDateTime, DbError> {
    Ok(sqlx::query_scalar("SELECT now()").fetch_one(conn).await?)
}

fn with_database(server_url: &str, database: &str) -> Result<String, DbError> {
    let (base, query) = match server_url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server_url, String::new()),
    };
    let Some(slash) = base.rfind('/').filter(|i| *i > "postgres://".len()) else {
        return Err(DbError::Internal(
            "the server URL has no database path".to_owned(),
        ));
    };
    Ok(format!("{}/{database}{query}", &base[..slash]))
}

async fn load(config: &BenchConfig, url: &str, log: &dyn Fn(&str)) -> Result<(), DbError> {
    let mut admin = owner_connection(&config.server_url).await?;
    log(&format!("creating database {BENCH_DB}"));
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"
        )))
        .await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {BENCH_DB}")))
        .await?;
    let _ = admin.close().await;
    migrations::up(url).await?;

    let mut conn = owner_connection(url).await?;
    // Bulk loading: no statement timeout, and a synchronous commit is not needed.
    conn.execute("SET statement_timeout = 0; SET synchronous_commit = off")
        .await?;
    let months = config.months_back + config.months_ahead;
    let created: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM ensure_certificate_partitions($1, now() - make_interval(months => $2))",
    )
    .bind(months)
    .bind(config.months_back)
    .fetch_one(&mut conn)
    .await?;
    log(&format!(
        "created {created} more monthly partitions ({months} months of expiry dates)"
    ));

    sqlx::query(
        "INSERT INTO users (username, password_hash, role)
         SELECT 'user' || g, '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA',
                CASE WHEN g = 1 THEN 'ADMIN'::user_role ELSE 'USER' END
         FROM generate_series(1, $1) AS g",
    )
    .bind(config.users)
    .execute(&mut conn)
    .await?;
    sqlx::query(
        "INSERT INTO certificate_authorities (name, subject_dn, certificate_der, fingerprint_sha256, not_before, not_after)
         SELECT 'Bench CA', 'CN=Bench CA', d, digest(d, 'sha256'), now() - interval '1 year', now() + interval '20 years'
         FROM (SELECT gen_random_bytes(700) AS d) AS x",
    )
    .execute(&mut conn)
    .await?;

    let chunk = 50_000i64;
    let mut done = 0i64;
    while done < config.rows {
        let to = (done + chunk).min(config.rows);
        // Expiry spread uniformly over the months; ~4% revoked, ~3% superseded; past expiry
        // is EXPIRED. The DER is random bytes of a realistic size, the fingerprint its SHA-256.
        sqlx::query(
            "WITH u AS (SELECT array_agg(id ORDER BY id) AS ids FROM users),
                  ca AS (SELECT id FROM certificate_authorities LIMIT 1),
                  src AS (
                      SELECT g, CASE WHEN $5 THEN gen_random_uuid() END AS key_id,
                             now() - make_interval(months => $3)
                               + (random() * (now() + make_interval(months => $4)
                                              - (now() - make_interval(months => $3)))) AS not_after,
                             random() AS r,
                             gen_random_bytes(600) AS der
                      FROM generate_series($1::bigint + 1, $2::bigint) AS g),
                  keys AS (
                      INSERT INTO private_keys (id, owner_id, algorithm, public_key_fingerprint,
                                                ciphertext, nonce, salt, kek_version)
                      SELECT src.key_id, u.ids[1 + (src.g % cardinality(u.ids))], 'ecdsa-p256',
                             digest(src.key_id::text, 'sha256'), gen_random_bytes(150),
                             gen_random_bytes(12), gen_random_bytes(32), 1
                      FROM src, u WHERE src.key_id IS NOT NULL)
             INSERT INTO certificates (ca_id, owner_id, serial_number, subject_dn, subject_alt_names,
                                       not_before, not_after, status, certificate_der,
                                       fingerprint_sha256, key_algorithm, profile, private_key_id)
             SELECT ca.id, u.ids[1 + (src.g % cardinality(u.ids))],
                    '1' || lpad(upper(to_hex(src.g)), 15, '0'),
                    'CN=device-' || src.g || ',O=Bench,C=NL',
                    ARRAY['DNS:device-' || src.g || '.example.net'],
                    src.not_after - interval '398 days', src.not_after,
                    (CASE WHEN src.r < 0.04 THEN 'REVOKED'
                          WHEN src.not_after <= now() THEN 'EXPIRED'
                          WHEN src.r < 0.07 THEN 'SUPERSEDED'
                          ELSE 'ACTIVE' END)::certificate_status,
                    src.der, digest(src.der, 'sha256'), 'ecdsa-p256', 'device', src.key_id
             FROM src, u, ca",
        )
        .bind(done)
        .bind(to)
        .bind(config.months_back)
        .bind(config.months_ahead)
        .bind(config.with_keys)
        .execute(&mut conn)
        .await?;
        done = to;
        log(&format!("loaded {done} / {} certificates", config.rows));
    }
    log("VACUUM ANALYZE");
    conn.execute("VACUUM ANALYZE").await?;
    let _ = conn.close().await;
    Ok(())
}

/// Loads `count` synthetic revocations of CA `ca_id` (serial registry rows and revocation
/// rows, expiring a year after `as_of`) as the database owner, in batches. The CRL
/// benchmark times building a CRL over them; no certificate DER is needed for that.
pub async fn load_revocations(
    url: &str,
    ca_id: Uuid,
    count: i64,
    as_of: time::OffsetDateTime,
) -> Result<(), DbError> {
    let mut conn = owner_connection(url).await?;
    conn.execute("SET statement_timeout = 0; SET synchronous_commit = off")
        .await?;
    let mut loaded = 0;
    while loaded < count {
        let batch = (count - loaded).min(100_000);
        sqlx::query(
            "WITH s AS (
                 INSERT INTO certificate_serials (certificate_id, ca_id, serial_number, not_after)
                 SELECT gen_random_uuid(), $1,
                        upper('4' || substr(encode(gen_random_bytes(16), 'hex'), 2)),
                        $3 + interval '365 days'
                 FROM generate_series(1, $2)
                 RETURNING certificate_id, ca_id, serial_number, not_after)
             INSERT INTO revoked_certificates
                 (certificate_id, ca_id, serial_number, not_after, revoked_at, reason, invalidity_date)
             SELECT certificate_id, ca_id, serial_number, not_after, $3 - interval '1 day',
                    (ARRAY['unspecified', 'keyCompromise', 'superseded', 'cessationOfOperation'])[1 + (random() * 3)::int]::revocation_reason,
                    CASE WHEN random() < 0.1 THEN $3 - interval '2 days' END
             FROM s",
        )
        .bind(ca_id)
        .bind(batch)
        .bind(as_of)
        .execute(&mut conn)
        .await?;
        loaded += batch;
    }
    sqlx::query("ANALYZE revoked_certificates")
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// Drops and creates database `name` on the server of `server_url`; returns its URL.
pub async fn recreate_database(server_url: &str, name: &str) -> Result<String, DbError> {
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Err(DbError::Internal(format!("unsafe database name {name:?}")));
    }
    let mut admin = owner_connection(server_url).await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await?;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await?;
    let _ = admin.close().await;
    with_database(server_url, name)
}

/// What partition maintenance took on a loaded database.
#[derive(Debug, Clone)]
pub struct MaintenanceReport {
    pub certificates_before: i64,
    pub keys_before: i64,
    pub partitions_before: i64,
    pub ensure_seconds: f64,
    pub partitions_created: usize,
    pub drop_seconds: f64,
    pub partitions_dropped: usize,
    pub certificates_dropped: i64,
    pub keys_dropped: i64,
    pub partitions_after: i64,
}

/// Loads `config` (keys included) and times what the partition-maintenance job does, as of
/// the database's now: create `months_ahead` months of partitions, then drop those past
/// `retention` with their registry rows and keys.
pub async fn partition_maintenance(
    config: &BenchConfig,
    months_ahead: i32,
    retention: time::Duration,
    log: &dyn Fn(&str),
) -> Result<MaintenanceReport, DbError> {
    let url = with_database(&config.server_url, BENCH_DB)?;
    if !config.reuse {
        load(config, &url, log).await?;
    }
    let mut owner = owner_connection(&url).await?;
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let certificates_before = count("SELECT count(*) FROM certificate_serials")
        .fetch_one(&mut owner)
        .await?;
    let keys_before = count("SELECT count(*) FROM private_keys")
        .fetch_one(&mut owner)
        .await?;
    let partitions_sql =
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'certificates'::regclass";
    let partitions_before = count(partitions_sql).fetch_one(&mut owner).await?;
    let now = now_from_database(&mut owner).await?;

    let db = Database::connect(&url, &PoolSettings::default()).await?;
    log("timing: ensure partitions ahead");
    let started = Instant::now();
    let mut conn = db.maintenance().await?;
    let created = crate::partitions::ensure(&mut conn, months_ahead, now).await?;
    conn.close().await;
    let ensure_seconds = started.elapsed().as_secs_f64();
    log("timing: drop partitions past retention, then orphaned keys");
    let started = Instant::now();
    let retained = crate::partitions::apply_retention(
        &db,
        retention,
        now,
        std::time::Duration::from_secs(3600),
    )
    .await?;
    let drop_seconds = started.elapsed().as_secs_f64();
    db.close().await;
    let partitions_after = count(partitions_sql).fetch_one(&mut owner).await?;
    let _ = owner.close().await;
    Ok(MaintenanceReport {
        certificates_before,
        keys_before,
        partitions_before,
        ensure_seconds,
        partitions_created: created.len(),
        drop_seconds,
        partitions_dropped: retained.dropped.len(),
        certificates_dropped: retained.dropped.iter().map(|p| p.rows).sum(),
        keys_dropped: retained.keys_deleted,
        partitions_after,
    })
}

/// Loads `count` synthetic certificates, each with its own sealed-key row, as the database
/// owner, in batches: 100 users, one CA, ~4% of the certificates revoked (with their
/// revocation rows). The key rows have the shape of sealed keys (a 138-byte AES-GCM
/// ciphertext of an ECDSA P-256 PKCS#8 key with its tag, a nonce, a salt) filled with random
/// bytes: the backup benchmark copies them as they are and never opens them.
pub async fn load_certificates_with_keys(
    url: &str,
    count: i64,
    log: &dyn Fn(&str),
) -> Result<(), DbError> {
    let mut conn = owner_connection(url).await?;
    conn.execute("SET statement_timeout = 0; SET synchronous_commit = off")
        .await?;
    sqlx::query(
        "INSERT INTO users (username, password_hash, role)
         SELECT 'user' || g, '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaA',
                CASE WHEN g = 1 THEN 'ADMIN'::user_role ELSE 'USER' END
         FROM generate_series(1, 100) AS g",
    )
    .execute(&mut conn)
    .await?;
    sqlx::query(
        "INSERT INTO certificate_authorities (name, subject_dn, certificate_der, fingerprint_sha256, not_before, not_after)
         SELECT 'Bench CA', 'CN=Bench CA', d, digest(d, 'sha256'), now() - interval '1 year', now() + interval '20 years'
         FROM (SELECT gen_random_bytes(700) AS d) AS x",
    )
    .execute(&mut conn)
    .await?;
    let chunk = 50_000i64;
    let mut done = 0i64;
    while done < count {
        let to = (done + chunk).min(count);
        conn.execute("DROP TABLE IF EXISTS bench_batch").await?;
        sqlx::query(
            "CREATE TEMP TABLE bench_batch AS
             SELECT g, gen_random_uuid() AS key_id, gen_random_uuid() AS cert_id,
                    u.ids[1 + (g % cardinality(u.ids))] AS owner_id,
                    upper('4' || substr(encode(gen_random_bytes(16), 'hex'), 2)) AS serial,
                    now() + interval '1 day' + random() * interval '690 days' AS not_after,
                    random() < 0.04 AS revoked,
                    gen_random_bytes(600) AS der
             FROM generate_series($1::bigint + 1, $2::bigint) AS g,
                  (SELECT array_agg(id ORDER BY id) AS ids FROM users) AS u",
        )
        .bind(done)
        .bind(to)
        .execute(&mut conn)
        .await?;
        conn.execute(
            "INSERT INTO private_keys (id, owner_id, algorithm, public_key_fingerprint, ciphertext,
                                       nonce, salt, kek_version)
             SELECT key_id, owner_id, 'ecdsa-p256', gen_random_bytes(32), gen_random_bytes(154),
                    gen_random_bytes(12), gen_random_bytes(32), 1
             FROM bench_batch;
             INSERT INTO certificates (id, ca_id, owner_id, serial_number, subject_dn,
                                       subject_alt_names, not_before, not_after, status,
                                       certificate_der, fingerprint_sha256, key_algorithm,
                                       private_key_id, profile)
             SELECT b.cert_id, ca.id, b.owner_id, b.serial, 'CN=device-' || b.g || ',O=Bench',
                    ARRAY['DNS:device-' || b.g || '.example.net'], now() - interval '30 days',
                    b.not_after,
                    (CASE WHEN b.revoked THEN 'REVOKED' ELSE 'ACTIVE' END)::certificate_status,
                    b.der, digest(b.der, 'sha256'), 'ecdsa-p256', b.key_id, 'device'
             FROM bench_batch AS b, (SELECT id FROM certificate_authorities LIMIT 1) AS ca;
             INSERT INTO revoked_certificates (certificate_id, ca_id, serial_number, not_after,
                                               owner_id, revoked_at, reason)
             SELECT b.cert_id, ca.id, b.serial, b.not_after, b.owner_id, now(), 'keyCompromise'
             FROM bench_batch AS b, (SELECT id FROM certificate_authorities LIMIT 1) AS ca
             WHERE b.revoked;
             INSERT INTO audit_events (action, target_type, target_id, details)
             SELECT 'certificate.issued', 'certificate', cert_id, jsonb_build_object('serial', serial)
             FROM bench_batch;",
        )
        .await?;
        done = to;
        log(&format!("loaded {done} / {count} certificates with keys"));
    }
    conn.execute("DROP TABLE IF EXISTS bench_batch").await?;
    conn.execute("VACUUM ANALYZE").await?;
    let _ = conn.close().await;
    Ok(())
}
