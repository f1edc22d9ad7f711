//! The dashboard's recent activity and the audit page name what events are about so that a
//! person can tell rows apart: ids are time-ordered (UUIDv7), so the first digits of two
//! certificates made together are the same.

use keyinfra_db::UserRole;
use serde_json::json;

use super::{form_login, issue_for, page};
use crate::support::TestApp;

/// The text of the first link to `href` in a page.
fn link_text<'a>(html: &'a str, href: &str) -> &'a str {
    let marker = format!("href=\"{href}\">");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("a link to {href}"))
        + marker.len();
    html[start..].split('<').next().unwrap()
}

#[tokio::test]
async fn two_certificates_issued_back_to_back_have_labels_a_person_can_tell_apart() {
    let app = TestApp::spawn().await;
    app.user("alice", UserRole::Admin).await;
    let bob = app.user("bob", UserRole::User).await;
    let admin_token = app.token("alice").await;
    let first = issue_for(&app, &admin_token, "gw-a", bob, 365).await;
    let second = issue_for(&app, &admin_token, "gw-b", bob, 365).await;
    let ids = [
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    ];
    // Time-ordered ids made a moment apart begin alike (the first 8 digits change every
    // 65 seconds): labels made of them were the same for both.
    for id in ids {
        let (status, _) = app
            .send(
                reqwest::Method::POST,
                &format!("/api/v1/certificates/{id}/revoke"),
                &admin_token,
                json!({"reason": "superseded"}),
            )
            .await;
        assert_eq!(status, 200);
    }
    let (cookie, _) = form_login(&app, "alice").await;

    // Revocations alone: the page has no subject for them, so the ids' random ends.
    let (_, revoked) = page(&app, &cookie, "/ui/audit?action=certificate.revoked").await;
    let labels = ids.map(|id| link_text(&revoked, &format!("/ui/certificates/{id}")).to_owned());
    assert_ne!(labels[0], labels[1]);
    for (label, id) in labels.iter().zip(ids) {
        assert_eq!(*label, format!("certificate …{}", &id[id.len() - 12..]));
    }

    // With the issues on the page, every row about a certificate shows its name too.
    let (_, all) = page(&app, &cookie, "/ui/audit").await;
    for (cn, id) in ["gw-a", "gw-b"].into_iter().zip(ids) {
        let label = format!("{cn} (…{})", &id[id.len() - 12..]);
        let link = format!("href=\"/ui/certificates/{id}\">{label}</a>");
        assert_eq!(all.matches(&link).count(), 2, "issued and revoked: {label}");
    }

    // The dashboard's recent activity names the two revocations apart as well.
    let (_, dashboard) = page(&app, &cookie, "/ui").await;
    let activity = dashboard.split("Recent activity").nth(1).unwrap();
    for id in ids {
        let end = format!("…{}", &id[id.len() - 12..]);
        assert!(activity.contains(&end), "{end} on the dashboard");
    }
}
