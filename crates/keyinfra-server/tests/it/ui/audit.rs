//! The audit log page: filters, their errors, and newest-first pages.

use keyinfra_db::{Actor, UserRole};
use serde_json::json;

use super::{Browser, form_login, issue_for, page};
use crate::support::{PASSWORD, TestApp};

#[tokio::test]
async fn the_audit_page_filters_by_action_actor_target_and_date_and_pages_newest_first() {
    let app = TestApp::spawn().await;
    app.user("alice", UserRole::Admin).await;
    let bob = app.user("bob", UserRole::User).await;
    let admin_token = app.token("alice").await;
    let bobs = issue_for(&app, &admin_token, "bob-router", bob, 365).await;
    let bob_token = app.token("bob").await;
    let (status, _) = app
        .send(
            reqwest::Method::POST,
            &format!(
                "/api/v1/certificates/{}/revoke",
                bobs["id"].as_str().unwrap()
            ),
            &bob_token,
            json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(status, 200);
    let (cookie, _) = form_login(&app, "alice").await;

    let (status, all) = page(&app, &cookie, "/ui/audit").await;
    assert_eq!(status, 200);
    for action in ["user.login", "certificate.issued", "certificate.revoked"] {
        assert!(
            all.contains(&format!("<code class=\"action\">{action}</code>")),
            "{action}"
        );
    }
    // Newest first: the form login came last.
    let first_row = all.split("<tbody>").nth(1).unwrap();
    assert!(
        first_row.find("user.login").unwrap() < first_row.find("certificate.revoked").unwrap(),
        "newest first"
    );

    let (_, revoked) = page(&app, &cookie, "/ui/audit?action=certificate.revoked").await;
    assert!(revoked.contains("<code class=\"action\">certificate.revoked</code>"));
    assert!(!revoked.contains("<code class=\"action\">certificate.issued</code>"));
    assert!(revoked.contains("<option value=\"certificate.revoked\" selected>"));
    assert!(revoked.contains("keyCompromise"), "the event's details");

    let (_, by_bob) = page(&app, &cookie, &format!("/ui/audit?actor={bob}")).await;
    assert!(by_bob.contains("<code class=\"action\">certificate.revoked</code>"));
    assert!(by_bob.contains("<code class=\"action\">user.login</code>"));
    assert!(
        !by_bob.contains("<code class=\"action\">certificate.issued</code>"),
        "alice issued"
    );

    let target = bobs["id"].as_str().unwrap();
    let (_, about) = page(&app, &cookie, &format!("/ui/audit?target={target}")).await;
    assert_eq!(
        about.matches("<code class=\"action\">").count(),
        2,
        "issued and revoked"
    );
    assert!(!about.contains("<code class=\"action\">user.login</code>"));

    let today = keyinfra_core::Clock::now(app.clock.as_ref()).date();
    let yesterday = today.previous_day().unwrap();
    let (_, before) = page(&app, &cookie, &format!("/ui/audit?until={yesterday}")).await;
    assert!(before.contains("No event matches."));
    let (_, since) = page(
        &app,
        &cookie,
        &format!("/ui/audit?since={yesterday}&until={today}"),
    )
    .await;
    assert!(since.contains("<code class=\"action\">certificate.issued</code>"));

    for (query, marker) in [
        ("since=yesterday", "id=\"since-error\""),
        ("target=not-an-id", "id=\"target-error\""),
        ("actor=nobody", "id=\"actor-error\""),
        ("since=2030-01-02&until=2030-01-01", "id=\"until-error\""),
    ] {
        let (status, body) = page(&app, &cookie, &format!("/ui/audit?{query}")).await;
        assert_eq!(status, 422, "{query}");
        assert!(body.contains(marker), "{query}");
        assert!(
            !body.contains("<code class=\"action\">"),
            "{query}: no unfiltered rows"
        );
    }

    // 60 more events: 50 on the first page, the rest after "Older events".
    let mut tx = app.db.begin(&Actor::System).await.unwrap();
    for i in 0..60 {
        keyinfra_db::audit::append(
            &mut tx,
            &keyinfra_db::audit::NewAuditEvent {
                actor_id: None,
                actor_name: Some("system"),
                action: keyinfra_db::audit::AuditAction::KeysResealed,
                target_type: None,
                target_id: None,
                details: json!({ "batch": i }),
            },
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let (_, first) = page(&app, &cookie, "/ui/audit?action=keys.resealed").await;
    assert_eq!(first.matches("<code class=\"action\">").count(), 50);
    let marker = "href=\"/ui/audit?action=keys.resealed&amp;actor=&amp;target=&amp;since=&amp;until=&amp;cursor=";
    let start = first.find(marker).expect("an Older events link") + marker.len() - "cursor=".len();
    let next = first[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let (status, second) = page(
        &app,
        &cookie,
        &format!("/ui/audit?action=keys.resealed&{next}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(second.matches("<code class=\"action\">").count(), 10);
    assert!(!second.contains("Older events"));

    let browser = Browser::start().await;
    browser.log_in(&app.base, "alice", PASSWORD).await;
    browser.goto(&app, "/ui/audit").await;
    browser.resize(1280, 1400).await;
    browser.screenshot("audit").await;
    browser.goto(&app, "/ui/audit?target=nope").await;
    browser.screenshot("audit-refused").await;
    browser.quit().await;
}
