//! The certificate list (search, status filter) and the detail page, in the browser story
//! that walks an admin and a user through the dashboard, the list, the issue form and a
//! revocation.

use keyinfra_db::UserRole;

use super::{Browser, issue_for, refresh_stats};
use crate::support::{PASSWORD, TestApp};

/// "ab12..." as the detail page shows it: "AB:12:...".
fn colon_hex(lower: &str) -> String {
    lower
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).to_uppercase())
        .collect::<Vec<_>>()
        .join(":")
}

#[tokio::test]
async fn admins_and_users_use_the_ui_in_a_real_browser() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", UserRole::Admin).await;
    let bob = app.user("bob", UserRole::User).await;
    let carol = app.user("carol", UserRole::User).await;
    let admin_token = app.token("alice").await;
    let bobs = issue_for(&app, &admin_token, "bob-router", bob, 365).await;
    let carols = issue_for(&app, &admin_token, "carol-switch", carol, 90).await;
    issue_for(&app, &admin_token, "core-firewall", alice, 5).await;
    refresh_stats(&app).await;

    let browser = Browser::start().await;
    let b = &browser;

    // Not logged in: every page leads to the login form.
    b.goto(&app, "/ui/certificates").await;
    assert_eq!(b.path().await, "/ui/login");
    b.screenshot("login").await;

    // A wrong password: the form again, with a message, and no session.
    b.log_in(&app.base, "alice", "not the password at all")
        .await;
    assert_eq!(b.path().await, "/ui/login");
    assert!(
        b.source()
            .await
            .contains("The username or password is wrong.")
    );
    b.screenshot("login-refused").await;

    // The admin logs in and sees the dashboard.
    b.log_in(&app.base, "alice", PASSWORD).await;
    assert_eq!(b.path().await, "/ui");
    let cookie = b.client.get_named_cookie("keyinfra_session").await.unwrap();
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    let dashboard = b.source().await;
    assert!(dashboard.contains("Dashboard") && dashboard.contains("alice"));
    assert!(dashboard.contains("Expiring in 7 days"));
    assert!(dashboard.contains("core-firewall"), "expiring soon");
    assert!(dashboard.contains("Recent activity") && dashboard.contains("certificate.issued"));
    b.screenshot("dashboard-admin").await;

    // The list, by keyboard-free navigation: the top bar's link.
    b.click_to_next_page("nav.mainnav a[href='/ui/certificates']")
        .await;
    b.wait_for("table.list").await;
    assert_eq!(b.path().await, "/ui/certificates");
    let list = b.source().await;
    for cn in ["bob-router", "carol-switch", "core-firewall"] {
        assert!(list.contains(cn), "{cn} in the admin's list");
    }
    b.screenshot("certificates-admin").await;

    // Search narrows the list (the API's list use case).
    b.fill("q", "bob").await;
    b.click_to_next_page("form.filters button[type=submit]")
        .await;
    b.wait_for("table.list").await;
    let found = b.source().await;
    assert!(found.contains("bob-router") && !found.contains("carol-switch"));

    // A status with nothing in it: the empty state.
    b.goto(&app, "/ui/certificates?status=REVOKED").await;
    assert!(b.source().await.contains("No certificate matches."));
    b.screenshot("certificates-empty").await;

    // The detail page.
    b.goto(&app, "/ui/certificates?q=bob").await;
    b.click_link("bob-router").await;
    b.wait_for("dl.facts").await;
    assert_eq!(
        b.path().await,
        format!("/ui/certificates/{}", bobs["id"].as_str().unwrap())
    );
    let detail = b.source().await;
    assert!(detail.contains("CN=bob-router,O=Example,C=NL"));
    assert!(detail.contains(bobs["serial_number"].as_str().unwrap()));
    assert!(detail.contains(&colon_hex(bobs["fingerprint_sha256"].as_str().unwrap())));
    assert!(detail.contains("bob-router.example.net") && detail.contains("192.0.2.10"));
    assert!(detail.contains("Version history") && detail.contains("Download PEM chain"));
    assert!(
        detail.contains("Requested through</dt><dd>API or UI"),
        "the channel"
    );
    b.screenshot("certificate-admin").await;

    // The admin issues one for bob through the form (with the owner chosen from the list).
    b.goto(&app, "/ui/certificates/new").await;
    b.screenshot("issue-form").await;
    b.fill("subject", "CN=bob-ap-2,O=Example").await;
    b.fill("san", "not a host name!").await;
    b.click(&format!("#owner_id option[value='{bob}']")).await;
    b.click("form.card button[type=submit]").await;
    b.wait_for("#san-error").await;
    b.screenshot("issue-form-refused").await;
    b.fill("san", "bob-ap-2.example.net").await;
    b.click("form.card button[type=submit]").await;
    b.wait_for("dl.facts").await;
    let issued = b.source().await;
    assert!(issued.contains("CN=bob-ap-2,O=Example") && issued.contains(&bob.to_string()));

    // A phone's width.
    b.resize(390, 844).await;
    b.screenshot("certificate-phone").await;
    b.goto(&app, "/ui/certificates").await;
    b.screenshot("certificates-phone").await;
    b.resize(1280, 900).await;

    // Logout clears the cookie; the pages lead to the login form again.
    b.log_out().await;
    assert_eq!(b.path().await, "/ui/login");
    assert!(
        b.client.get_named_cookie("keyinfra_session").await.is_err(),
        "the session cookie is gone"
    );
    b.goto(&app, "/ui").await;
    assert_eq!(b.path().await, "/ui/login");

    // A USER sees only their own certificate, and another's is "not found".
    b.log_in(&app.base, "bob", PASSWORD).await;
    assert_eq!(b.path().await, "/ui");
    let dashboard = b.source().await;
    assert!(
        !dashboard.contains("Recent activity"),
        "the audit log is for admins"
    );
    b.screenshot("dashboard-user").await;
    b.goto(&app, "/ui/certificates").await;
    let list = b.source().await;
    assert!(list.contains("bob-router") && list.contains("bob-ap-2"));
    assert!(!list.contains("carol-switch") && !list.contains("core-firewall"));
    b.screenshot("certificates-user").await;
    // Bob revokes his access point's certificate from its page, with a reason.
    b.click_link("bob-ap-2").await;
    b.wait_for("#reason").await;
    b.screenshot_sized("certificate-actions", 1280, 1500).await;
    b.click("#reason option[value='cessationOfOperation']")
        .await;
    b.click(".danger-zone button[type=submit]").await;
    b.wait_for("h1 .badge.revoked").await;
    b.screenshot("certificate-revoked").await;

    b.goto(
        &app,
        &format!("/ui/certificates/{}", carols["id"].as_str().unwrap()),
    )
    .await;
    let refused = b.source().await;
    assert!(refused.contains("Not found") && !refused.contains("carol-switch"));
    b.screenshot("certificate-not-found").await;

    browser.quit().await;
}
