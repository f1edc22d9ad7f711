//! Time-ordered ids (migration 0013): what keyinfra_uuid_v7() makes, that the tables which
//! grow with every certificate use it, and that the serial registry's one index over serials
//! still refuses a serial twice per CA and serves a lookup by serial alone.

use keyinfra_db::audit::{self, AuditAction, NewAuditEvent};
use keyinfra_db::testing::TestDatabase;
use keyinfra_db::{Actor, DbError};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::fixtures::{self, Cert};

/// The Unix time in milliseconds that a version 7 UUID starts with.
fn unix_millis(id: Uuid) -> i128 {
    let bytes = id.as_bytes();
    bytes[..6]
        .iter()
        .fold(0_i128, |acc, byte| (acc << 8) | i128::from(*byte))
}

fn millis(at: OffsetDateTime) -> i128 {
    at.unix_timestamp_nanos() / 1_000_000
}

#[tokio::test]
async fn the_database_makes_version_7_uuids_that_carry_their_time_and_never_repeat() {
    let tdb = TestDatabase::new().await;
    let mut conn = tdb.owner_connection().await;

    let (before, ids, after): (OffsetDateTime, Vec<Uuid>, OffsetDateTime) = sqlx::query_as(
        "SELECT clock_timestamp(),
                (SELECT array_agg(keyinfra_uuid_v7()) FROM generate_series(1, 2000)),
                clock_timestamp()",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(ids.len(), 2000);
    for id in &ids {
        assert_eq!(id.get_version_num(), 7, "{id}");
        assert_eq!(id.get_variant(), uuid::Variant::RFC4122, "{id}");
        let at = unix_millis(*id);
        assert!(
            (millis(before)..=millis(after)).contains(&at),
            "{id} says {at} ms, made between {before} and {after}"
        );
    }
    let mut distinct = ids.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "an id repeated");

    // Ids made in later milliseconds sort after earlier ones, which is the point of them.
    let (first, second): (Uuid, Uuid) = sqlx::query_as(
        "SELECT keyinfra_uuid_v7(), (SELECT keyinfra_uuid_v7() FROM pg_sleep(0.005))",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(first < second, "{first} then {second}");
}

#[tokio::test]
async fn audit_events_revocations_alerts_keys_and_certificates_default_to_an_inlined_v7_id() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let admin = fixtures::user(&db, "ada", keyinfra_db::UserRole::Admin).await;

    let mut tx = db.begin(&Actor::System).await.unwrap();
    audit::append(
        &mut tx,
        &NewAuditEvent {
            actor_id: Some(admin),
            actor_name: None,
            action: AuditAction::UserLogin,
            target_type: None,
            target_id: None,
            details: serde_json::json!({}),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut conn = tdb.owner_connection().await;
    let id: Uuid = sqlx::query_scalar("SELECT id FROM audit_events WHERE action = 'user.login'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(id.get_version_num(), 7, "{id}");

    let defaults: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.relname::text, pg_get_expr(d.adbin, d.adrelid)
         FROM pg_attrdef AS d
         JOIN pg_class AS c ON c.oid = d.adrelid
         JOIN pg_attribute AS a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
         WHERE a.attname = 'id'
           AND c.relname IN ('private_keys', 'certificates', 'revoked_certificates',
                             'audit_events', 'expiry_alerts')
         ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(defaults.len(), 5, "{defaults:?}");
    for (table, default) in &defaults {
        assert_eq!(default, "keyinfra_uuid_v7()", "{table}");
    }

    // The default is inlined into the INSERT's plan: the expression, not a call per row
    // (a body more volatile than its declaration, or a second statement, would stop that).
    let plan = fixtures::plan(
        &mut conn,
        "EXPLAIN VERBOSE INSERT INTO audit_events (action, details) VALUES ('x.y', '{}')",
    )
    .await;
    assert!(
        !plan.contains("keyinfra_uuid_v7") && plan.contains("gen_random_uuid"),
        "{plan}"
    );
}

#[tokio::test]
async fn the_registry_refuses_a_serial_twice_per_ca_and_finds_a_serial_by_its_one_index() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let other = fixtures::authority(&db, "CA two").await;
    let now = fixtures::db_now(&tdb).await;

    Cert::new(ca, None, "0ABC", now + Duration::days(30))
        .insert(&db, &Actor::System)
        .await
        .unwrap();
    let again = Cert::new(ca, None, "0ABC", now + Duration::days(60))
        .insert(&db, &Actor::System)
        .await;
    assert!(matches!(again, Err(DbError::SerialCollision)), "{again:?}");
    Cert::new(other, None, "0ABC", now + Duration::days(60))
        .insert(&db, &Actor::System)
        .await
        .unwrap();

    let mut conn = tdb.owner_connection().await;
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'certificate_serials' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        indexes,
        [
            "certificate_serials_ca_serial_key",
            "certificate_serials_not_after_idx",
            "certificate_serials_pkey"
        ]
    );
    // A lookup by serial alone (no CA) is an index scan of the uniqueness index; the
    // sequential scan is switched off because this table is too small to need the index.
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap();
    let plan = fixtures::plan(
        &mut conn,
        "EXPLAIN SELECT certificate_id FROM certificate_serials WHERE serial_number = '0ABC'",
    )
    .await;
    assert!(
        plan.contains("certificate_serials_ca_serial_key") && plan.contains("Index Cond"),
        "{plan}"
    );
}
