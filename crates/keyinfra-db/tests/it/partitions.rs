use keyinfra_db::testing::TestDatabase;
use keyinfra_db::{Actor, UserRole, partitions};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::fixtures::{self, Cert};

async fn partition_names(db: &TestDatabase) -> Vec<String> {
    let mut conn = db.owner_connection().await;
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'certificates'::regclass ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

fn month_name(t: OffsetDateTime) -> String {
    format!("certificates_p{:04}_{:02}", t.year(), u8::from(t.month()))
}

fn add_months(t: OffsetDateTime, months: i32) -> OffsetDateTime {
    let total = t.year() * 12 + i32::from(u8::from(t.month())) - 1 + months;
    let month = time::Month::try_from(u8::try_from(total.rem_euclid(12) + 1).unwrap()).unwrap();
    t.replace_day(1)
        .unwrap()
        .replace_year(total.div_euclid(12))
        .unwrap()
        .replace_month(month)
        .unwrap()
}

#[tokio::test]
async fn migration_creates_current_month_and_24_ahead() {
    let db = TestDatabase::new().await;
    let now = fixtures::db_now(&db).await.to_offset(time::UtcOffset::UTC);
    let names = partition_names(&db).await;
    for i in 0..=24 {
        let expected = month_name(add_months(now, i));
        assert!(names.contains(&expected), "missing {expected} in {names:?}");
    }
    assert!(names.contains(&"certificates_default".to_owned()));
    assert_eq!(names.len(), 26, "{names:?}");
}

#[tokio::test]
async fn ensure_creates_exactly_the_missing_months_and_is_idempotent() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let as_of = datetime!(2031-11-15 12:00 UTC);
    let mut m = db.maintenance().await.unwrap();
    let created = partitions::ensure(&mut m, 3, as_of).await.unwrap();
    let names: Vec<&str> = created.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "certificates_p2031_11",
            "certificates_p2031_12",
            "certificates_p2032_01",
            "certificates_p2032_02"
        ]
    );
    assert_eq!(created[1].range_start, datetime!(2031-12-01 00:00 UTC));
    assert_eq!(created[1].range_end, datetime!(2032-01-01 00:00 UTC));

    let mut m = db.maintenance().await.unwrap();
    assert!(
        partitions::ensure(&mut m, 3, as_of)
            .await
            .unwrap()
            .is_empty()
    );
    let err = partitions::ensure(&mut m, -1, as_of).await.unwrap_err();
    assert!(
        matches!(err, keyinfra_db::DbError::CheckViolation { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn rows_waiting_in_the_default_partition_move_into_a_new_month() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let far = datetime!(2040-03-10 08:00 UTC);
    let id = Cert::new(ca, None, "0A01", far)
        .insert(&db, &Actor::System)
        .await
        .unwrap();

    let mut conn = tdb.owner_connection().await;
    let in_default: i64 = sqlx::query_scalar("SELECT count(*) FROM certificates_default")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(in_default, 1);

    let mut m = db.maintenance().await.unwrap();
    let created = partitions::ensure(&mut m, 0, far).await.unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].name, "certificates_p2040_03");
    assert_eq!(created[0].rows, 1);

    let (table, still_one): (String, i64) = sqlx::query_as(
        "SELECT tableoid::regclass::text, (SELECT count(*) FROM certificates) FROM certificates WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(table, "certificates_p2040_03");
    assert_eq!(still_one, 1);
    // The moved row keeps its single registry entry, and the attached partition has the
    // parent's triggers: a duplicate serial is still refused there.
    let registry: i64 = sqlx::query_scalar("SELECT count(*) FROM certificate_serials")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(registry, 1);
    let dup = Cert::new(ca, None, "0A01", far + Duration::days(1))
        .insert(&db, &Actor::System)
        .await;
    assert!(
        matches!(dup, Err(keyinfra_db::DbError::SerialCollision)),
        "{dup:?}"
    );
}

#[tokio::test]
async fn retention_drops_exactly_the_partitions_older_than_the_period() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let ca = fixtures::authority(&db, "CA").await;
    let owner = fixtures::user(&db, "alice", UserRole::User).await;

    // Months from 2020-01 through 2020-06 exist, with one certificate in each.
    let mut m = db.maintenance().await.unwrap();
    partitions::ensure(&mut m, 5, datetime!(2020-01-01 00:00 UTC))
        .await
        .unwrap();
    let mut ids = Vec::new();
    // January's key is used by January's certificate alone; February's is shared with June's
    // (a renewal that kept its key), so it must outlive February's partition.
    let only_january = fixtures::sealed_key(&db, Some(owner)).await;
    let shared = fixtures::sealed_key(&db, Some(owner)).await;
    let keys = [
        Some(only_january),
        Some(shared),
        None,
        None,
        None,
        Some(shared),
    ];
    for (i, month) in (1u8..=6).enumerate() {
        let not_after = datetime!(2020-01-15 00:00 UTC)
            .replace_month(time::Month::try_from(month).unwrap())
            .unwrap();
        ids.push(
            Cert {
                key: keys[i],
                ..Cert::new(ca, Some(owner), &format!("0B0{i}"), not_after)
            }
            .insert(&db, &Actor::System)
            .await
            .unwrap(),
        );
    }
    // The March certificate is revoked: its revocation row must leave with it.
    let mut tx = db.begin(&Actor::System).await.unwrap();
    keyinfra_db::revocations::insert(
        &mut tx,
        &keyinfra_db::revocations::NewRevocation {
            certificate_id: ids[2],
            revoked_at: datetime!(2020-02-01 00:00 UTC),
            reason: keyinfra_pki::RevocationReason::KeyCompromise,
            invalidity_date: None,
            revoked_by: None,
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // Retention 730 days as of 2022-04-01 puts the cutoff at 2020-04-01 00:00. January and
    // February ended before it; March's range ends exactly at it, which is not *more* than
    // the retention period ago, so it stays.
    let retention = Duration::days(730);
    let as_of = datetime!(2022-04-01 00:00 UTC);
    let mut m = db.maintenance().await.unwrap();
    let dropped = partitions::drop_expired(&mut m, retention, as_of, None)
        .await
        .unwrap();
    let names: Vec<&str> = dropped.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["certificates_p2020_01", "certificates_p2020_02"]);
    assert!(dropped.iter().all(|p| p.rows == 1));
    // Then the keys: only the one no remaining certificate uses goes, and again is a no-op.
    let mut m = db.maintenance().await.unwrap();
    assert_eq!(
        partitions::delete_orphaned_keys(&mut m, 100).await.unwrap(),
        1
    );
    assert_eq!(
        partitions::delete_orphaned_keys(&mut m, 100).await.unwrap(),
        0
    );
    let mut conn = tdb.owner_connection().await;
    let kept: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT id FROM private_keys")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, vec![shared]);
    drop(conn);

    let remaining = partition_names(&tdb).await;
    assert!(!remaining.contains(&"certificates_p2020_01".to_owned()));
    assert!(!remaining.contains(&"certificates_p2020_02".to_owned()));
    for kept in [
        "certificates_p2020_03",
        "certificates_p2020_04",
        "certificates_p2020_05",
        "certificates_p2020_06",
        "certificates_default",
    ] {
        assert!(remaining.contains(&kept.to_owned()), "{kept} was dropped");
    }

    // One second later, March's range has ended more than 730 days ago: it goes too.
    let mut m = db.maintenance().await.unwrap();
    let dropped = partitions::drop_expired(&mut m, retention, as_of + Duration::seconds(1), None)
        .await
        .unwrap();
    assert_eq!(
        dropped.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["certificates_p2020_03"]
    );

    let mut conn = tdb.owner_connection().await;
    let registry: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT certificate_id FROM certificate_serials ORDER BY not_after")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(registry, ids[3..].to_vec());
    let revocations: i64 = sqlx::query_scalar("SELECT count(*) FROM revoked_certificates")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(revocations, 0);
    let certificates: i64 = sqlx::query_scalar("SELECT count(*) FROM certificates")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(certificates, 3);
}
