use keyinfra_db::audit::{self, AuditAction, NewAuditEvent};
use keyinfra_db::testing::{TestDatabase, raw_execute, raw_query};
use keyinfra_db::{Actor, DbError, UserRole};
use sqlx::Row;

use crate::fixtures;

fn event(actor: Option<uuid::Uuid>, action: AuditAction) -> NewAuditEvent<'static> {
    NewAuditEvent {
        actor_id: actor,
        actor_name: Some("someone"),
        action,
        target_type: None,
        target_id: None,
        details: serde_json::json!({"k": "v"}),
    }
}

#[tokio::test]
async fn the_application_may_append_and_read_but_never_change_audit_events() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let admin = fixtures::user(&db, "root", UserRole::Admin).await;
    let actor = Actor::User {
        id: admin,
        role: UserRole::Admin,
    };

    let mut tx = db.begin(&actor).await.unwrap();
    audit::append(&mut tx, &event(Some(admin), AuditAction::UserLogin))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    for sql in [
        "UPDATE audit_events SET action = 'user.logout'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let mut tx = db.begin(&actor).await.unwrap();
        let err = raw_execute(&mut tx, sql).await.unwrap_err();
        assert!(matches!(err, DbError::PermissionDenied), "{sql}: {err:?}");
    }
    // Not even the table owner can rewrite history without dropping the guard first.
    let mut owner = tdb.owner_connection().await;
    let err = sqlx::query("UPDATE audit_events SET action = 'user.logout'")
        .execute(&mut owner)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");

    let mut tx = db.begin(&actor).await.unwrap();
    let rows = raw_query(&mut tx, "SELECT action FROM audit_events")
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<String, _>(0), "user.login");
}

#[tokio::test]
async fn users_append_in_their_own_name_only_and_see_only_their_events() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let alice = fixtures::user(&db, "alice", UserRole::User).await;
    let bob = fixtures::user(&db, "bob", UserRole::User).await;
    let as_alice = Actor::User {
        id: alice,
        role: UserRole::User,
    };

    let mut tx = db.begin(&as_alice).await.unwrap();
    audit::append(
        &mut tx,
        &event(Some(alice), AuditAction::UserPasswordChanged),
    )
    .await
    .unwrap();
    // Anonymous events (a failed login has no identity yet) are allowed.
    audit::append(&mut tx, &event(None, AuditAction::UserLoginFailed))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let mut tx = db.begin(&as_alice).await.unwrap();
    let err = audit::append(&mut tx, &event(Some(bob), AuditAction::UserLogin))
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::PermissionDenied), "{err:?}");
    drop(tx);

    let mut tx = db
        .begin(&Actor::User {
            id: bob,
            role: UserRole::User,
        })
        .await
        .unwrap();
    assert!(
        raw_query(&mut tx, "SELECT id FROM audit_events")
            .await
            .unwrap()
            .is_empty()
    );
    let mut tx = db.begin(&as_alice).await.unwrap();
    assert_eq!(
        raw_query(&mut tx, "SELECT id FROM audit_events")
            .await
            .unwrap()
            .len(),
        1
    );

    // Malformed actions (only hand-written SQL can give one: the code writes AuditActions)
    // and non-object details are refused by CHECK constraints.
    let mut tx = db.begin(&Actor::System).await.unwrap();
    let err = raw_execute(
        &mut tx,
        "INSERT INTO audit_events (action, details) VALUES ('Login', '{}')",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DbError::CheckViolation { .. }), "{err:?}");
}

/// Events appended in one transaction share one `occurred_at`, so the id orders them:
/// newest first is exactly the reverse of the appends, the ids strictly decrease, and the
/// keyset of each page continues where the previous page stopped (60 events in pages of
/// 25: nothing lost, nothing twice).
#[tokio::test]
async fn events_of_one_transaction_list_in_reverse_append_order_across_pages() {
    let tdb = TestDatabase::new().await;
    let db = tdb.database().await;
    let mut tx = db.begin(&Actor::System).await.unwrap();
    for batch in 0..60 {
        let mut resealed = event(None, AuditAction::KeysResealed);
        resealed.details = serde_json::json!({ "batch": batch });
        audit::append(&mut tx, &resealed).await.unwrap();
    }
    tx.commit().await.unwrap();

    let mut filter = audit::AuditFilter {
        action: keyinfra_db::audit::ActionFilter::Is(AuditAction::KeysResealed),
        ..audit::AuditFilter::default()
    };
    let mut listed = Vec::new();
    loop {
        let mut tx = db.begin(&Actor::System).await.unwrap();
        let page = audit::list(&mut tx, &filter, 25).await.unwrap();
        tx.commit().await.unwrap();
        let Some(last) = page.last() else { break };
        filter.before = Some((last.occurred_at, last.id));
        listed.extend(page);
    }
    assert_eq!(listed.len(), 60);
    assert!(
        listed
            .windows(2)
            .all(|w| w[0].occurred_at == w[1].occurred_at),
        "one transaction, one timestamp"
    );
    assert!(
        listed.windows(2).all(|w| w[0].id > w[1].id),
        "strictly decreasing ids"
    );
    let batches: Vec<i64> = listed
        .iter()
        .map(|e| e.details["batch"].as_i64().unwrap())
        .collect();
    assert_eq!(batches, (0..60).rev().collect::<Vec<i64>>());
}
