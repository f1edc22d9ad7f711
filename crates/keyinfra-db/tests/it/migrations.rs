use std::process::Command;

use keyinfra_db::migrations;
use keyinfra_db::testing::TestDatabase;

/// The schema as pg_dump sees it, without the per-dump random lines.
fn schema_dump(url: &str) -> String {
    let out = Command::new("pg_dump")
        .args([
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--dbname",
            url,
        ])
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Grants and policies matter too, and --no-privileges hides grants: compare them by catalog.
async fn privileges(db: &TestDatabase) -> Vec<String> {
    let mut conn = db.owner_connection().await;
    sqlx::query_scalar(
        "SELECT format('%s %s %s', table_name, grantee, privilege_type)
         FROM information_schema.role_table_grants WHERE grantee = 'keyinfra_app'
         UNION ALL
         SELECT format('column %s.%s %s %s', table_name, column_name, grantee, privilege_type)
         FROM information_schema.role_column_grants WHERE grantee = 'keyinfra_app'
         UNION ALL
         SELECT format('policy %s.%s %s %s %s', tablename, policyname, cmd, qual, with_check) FROM pg_policies
         UNION ALL
         SELECT format('routine %s %s', routine_name, privilege_type)
         FROM information_schema.role_routine_grants WHERE grantee = 'keyinfra_app'
         ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn up_down_up_equals_a_single_up() {
    let once = TestDatabase::empty().await;
    let applied = migrations::up(once.url()).await.unwrap();
    assert_eq!(
        applied.len(),
        migrations::MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .count()
    );

    let cycled = TestDatabase::empty().await;
    migrations::up(cycled.url()).await.unwrap();
    let reverted = migrations::down(cycled.url(), Some(0)).await.unwrap();
    assert_eq!(reverted.len(), applied.len());
    assert!(
        reverted.windows(2).all(|w| w[0] > w[1]),
        "reverted newest first: {reverted:?}"
    );

    // Down to zero leaves nothing of ours behind.
    let mut conn = cycled.owner_connection().await;
    let leftovers: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relname NOT LIKE '_sqlx_migrations%'
         UNION ALL SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public'
         UNION ALL SELECT t.typname::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname = 'public' AND t.typtype = 'e'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert!(
        leftovers.is_empty(),
        "left behind after down to 0: {leftovers:?}"
    );

    migrations::up(cycled.url()).await.unwrap();
    assert_eq!(schema_dump(once.url()), schema_dump(cycled.url()));
    assert_eq!(privileges(&once).await, privileges(&cycled).await);
}

#[tokio::test]
async fn down_without_target_reverts_one_step_and_status_reports_it() {
    let db = TestDatabase::empty().await;
    let before = migrations::status(db.url()).await.unwrap();
    assert!(before.iter().all(|m| m.applied_at.is_none()));

    migrations::up(db.url()).await.unwrap();
    let latest = migrations::latest_version();
    assert_eq!(
        migrations::down(db.url(), None).await.unwrap(),
        vec![latest]
    );

    let status = migrations::status(db.url()).await.unwrap();
    let pending: Vec<i64> = status
        .iter()
        .filter(|m| m.applied_at.is_none())
        .map(|m| m.version)
        .collect();
    assert_eq!(pending, vec![latest]);
    assert!(status.iter().all(|m| !m.checksum_mismatch));

    // Up again applies only the one that was reverted.
    assert_eq!(migrations::up(db.url()).await.unwrap(), vec![latest]);
    assert!(migrations::up(db.url()).await.unwrap().is_empty());
}

#[tokio::test]
async fn down_to_an_unknown_version_is_refused_without_changes() {
    let db = TestDatabase::new().await;
    let err = migrations::down(db.url(), Some(9999)).await.unwrap_err();
    assert!(err.to_string().contains("9999"), "{err}");
    let status = migrations::status(db.url()).await.unwrap();
    assert!(status.iter().all(|m| m.applied_at.is_some()));
}
