//! The CA page and its CRL, at the end of the onboarding story: an admin creates a user
//! and issues them a certificate, the user exports it, the admin revokes it, and the CA
//! page lists the serial.

use std::time::Duration;

use keyinfra_db::UserRole;

use super::{Browser, issue_for, refresh_stats};
use crate::support::{PASSWORD, TestApp};

/// Runs openssl with arguments; returns stdout, asserting success.
fn openssl(args: &[&str]) -> String {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The last path segment of the browser's address (an id after a redirect).
async fn id_in_path(b: &Browser, prefix: &str) -> String {
    let path = b.path().await;
    path.strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{path} does not start with {prefix}"))
        .to_owned()
}

/// The whole story in a real browser: an admin creates a user and issues them a
/// certificate, the user sees only theirs and downloads it as PKCS#12 (checked with
/// openssl), the admin revokes it, and the CA page's CRL lists its serial.
#[tokio::test]
async fn an_admin_onboards_a_user_who_exports_their_key_and_the_revocation_reaches_the_crl() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", UserRole::Admin).await;
    let admin_token = app.token("alice").await;
    // The admin's own certificate, which the new user must not see.
    issue_for(&app, &admin_token, "core-firewall", alice, 200).await;
    refresh_stats(&app).await;
    let browser = Browser::start().await;
    let b = &browser;
    let new_password = "dave's long passphrase 42";

    b.log_in(&app.base, "alice", PASSWORD).await;
    assert_eq!(b.path().await, "/ui");
    let nav = b.source().await;
    for entry in ["Users", "Audit log", "CAs", "Change password", "Log out"] {
        assert!(nav.contains(entry), "{entry} in the admin's navigation");
    }

    // Users → New user; a refused form first (field errors, nothing created).
    b.click_to_next_page("nav.mainnav a[href='/ui/users']")
        .await;
    b.wait_for("table.list").await;
    b.screenshot("users").await;
    b.click("a[href='/ui/users/new']").await;
    b.wait_for("#username").await;
    b.fill("username", "dave").await;
    b.fill("password", "short").await;
    b.fill("password_again", "short").await;
    b.fill("email", "not an address").await;
    b.click("form.card button[type=submit]").await;
    b.wait_for("#password-error").await;
    let refused = b.source().await;
    assert!(
        refused.contains("id=\"email-error\""),
        "every field's error at once"
    );
    assert!(refused.contains("value=\"dave\""), "the name is kept");
    assert!(
        !refused.contains("value=\"short\""),
        "a password is never sent back"
    );
    b.screenshot("user-new-refused").await;
    let users_before = app.tdb.scalar_i64("SELECT count(*) FROM users").await;
    assert_eq!(users_before, 1, "nothing created");
    b.fill("password", new_password).await;
    b.fill("password_again", new_password).await;
    b.fill("email", "dave@example.net").await;
    b.click("form.card button[type=submit]").await;
    b.wait_for("dl.facts").await;
    let dave = id_in_path(b, "/ui/users/").await;
    let user_page = b.source().await;
    assert!(user_page.contains("dave@example.net") && user_page.contains("No certificates."));
    b.screenshot("user").await;

    // The admin issues dave's certificate through the form, choosing dave as the owner.
    b.goto(&app, "/ui/certificates/new").await;
    b.fill("subject", "CN=dave-laptop,O=Example").await;
    b.fill("san", "dave-laptop.example.net").await;
    b.click(&format!("#owner_id option[value='{dave}']")).await;
    // The form page has a facts list of its own (the limits): wait for the next page, not
    // for the selector, or the old page may answer it.
    b.click_to_next_page("form.card button[type=submit]").await;
    b.wait_for("dl.facts").await;
    let cert_id = id_in_path(b, "/ui/certificates/").await;
    let (status, cert) = app
        .get(&format!("/api/v1/certificates/{cert_id}"), &admin_token)
        .await;
    assert_eq!(status, 200);
    assert_eq!(cert["owner_id"], dave.as_str());
    let serial = cert["serial_number"].as_str().unwrap().to_owned();
    let detail = b.source().await;
    assert!(
        detail.contains(&format!("<a href=\"/ui/users/{dave}\">dave</a>")),
        "the owner by name"
    );
    b.log_out().await;

    // Dave logs in and sees only his certificate.
    b.log_in(&app.base, "dave", new_password).await;
    assert_eq!(b.path().await, "/ui");
    let nav = b.source().await;
    assert!(
        !nav.contains("/ui/users") && !nav.contains("/ui/audit"),
        "no admin pages"
    );
    b.click_to_next_page("nav.mainnav a[href='/ui/certificates']")
        .await;
    b.wait_for("table.list").await;
    let list = b.source().await;
    assert!(list.contains("dave-laptop"));
    assert!(
        !list.contains("core-firewall"),
        "another user's certificate is not listed"
    );
    b.click(&format!("table.list a[href='/ui/certificates/{cert_id}']"))
        .await;
    b.wait_for("#pin").await;

    // Two different PINs: the error next to the form, nothing downloaded.
    b.fill("pin", "48291375").await;
    b.fill("pin_again", "48291376").await;
    b.click("#pkcs12-submit").await;
    b.wait_for("#pkcs12-error").await;
    assert!(b.source().await.contains("The two PINs differ"));
    assert_eq!(b.path().await, format!("/ui/certificates/{cert_id}/pkcs12"));
    b.screenshot_sized("certificate-pkcs12-refused", 1280, 1700)
        .await;
    assert_eq!(
        std::fs::read_dir(b.downloads.path()).unwrap().count(),
        0,
        "nothing downloaded"
    );

    // The same PIN twice: a real download, which openssl opens with that PIN.
    let pin = "48291375";
    b.fill("pin", pin).await;
    b.fill("pin_again", pin).await;
    b.click("#pkcs12-submit").await;
    let (p12_path, p12) = b.downloaded("p12").await;
    assert!(p12.len() > 500);
    let p12_file = p12_path.to_str().unwrap();
    let pass = format!("pass:{pin}");
    openssl(&[
        "pkcs12", "-info", "-noout", "-in", p12_file, "-passin", &pass,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key.pem");
    let cert_file = dir.path().join("cert.pem");
    openssl(&[
        "pkcs12",
        "-in",
        p12_file,
        "-passin",
        &pass,
        "-nocerts",
        "-nodes",
        "-out",
        key_file.to_str().unwrap(),
    ]);
    openssl(&[
        "pkcs12",
        "-in",
        p12_file,
        "-passin",
        &pass,
        "-clcerts",
        "-nokeys",
        "-out",
        cert_file.to_str().unwrap(),
    ]);
    let key_public = openssl(&["pkey", "-in", key_file.to_str().unwrap(), "-pubout"]);
    let cert_public = openssl(&[
        "x509",
        "-in",
        cert_file.to_str().unwrap(),
        "-noout",
        "-pubkey",
    ]);
    assert_eq!(
        key_public, cert_public,
        "the key belongs to the certificate"
    );
    let cert_serial = openssl(&[
        "x509",
        "-in",
        cert_file.to_str().unwrap(),
        "-noout",
        "-serial",
    ]);
    assert_eq!(cert_serial.trim(), format!("serial={serial}"));
    let wrong = std::process::Command::new("openssl")
        .args([
            "pkcs12",
            "-info",
            "-noout",
            "-in",
            p12_file,
            "-passin",
            "pass:000000",
        ])
        .output()
        .unwrap();
    assert!(!wrong.status.success(), "another PIN does not open it");
    b.log_out().await;

    // The admin revokes it in the UI; the detail page says when, why and by whom.
    b.log_in(&app.base, "alice", PASSWORD).await;
    b.goto(&app, &format!("/ui/certificates/{cert_id}")).await;
    b.click("#reason option[value='keyCompromise']").await;
    b.click(".danger-zone button[type=submit]").await;
    b.wait_for(".revoked-card").await;
    let revoked = b.source().await;
    assert!(revoked.contains("Key compromise") && revoked.contains("<dd>alice</dd>"));
    b.screenshot_sized("certificate-revoked-details", 1280, 1300)
        .await;

    // The CA page's current CRL lists the serial once the publisher has re-issued it
    // (it coalesces revocations for 100 ms in the tests).
    let mut listed = false;
    for _ in 0..100 {
        b.goto(&app, "/ui/cas").await;
        let page = b.source().await;
        if page.contains(&format!("<code class=\"serial\">{serial}</code>")) {
            listed = true;
            assert!(page.contains("Key compromise"), "the entry's reason");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(listed, "{serial} on the CA page's CRL");
    let cas = b.source().await;
    let (ca_id, _) = app.ca().await;
    for link in [
        format!("/ca/{ca_id}.crt"),
        format!("/ca/{ca_id}.pem"),
        format!("/crl/{ca_id}.crl"),
        format!("/crl/{ca_id}.pem"),
    ] {
        assert!(cas.contains(&format!("href=\"{link}\"")), "{link}");
    }
    // The page's CRL is the published one: the same number and entries as the DER file.
    let crl_der = app
        .http
        .get(app.url(&format!("/crl/{ca_id}.crl")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let crl_file = dir.path().join("ca.crl");
    std::fs::write(&crl_file, &crl_der).unwrap();
    let crl_text = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        crl_file.to_str().unwrap(),
        "-noout",
        "-text",
    ]);
    assert!(crl_text.contains(&serial), "{crl_text}");
    let number = crl_text
        .lines()
        .skip_while(|l| !l.contains("X509v3 CRL Number"))
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    assert!(
        cas.contains(&format!("<dd class=\"crl-number\">{number}</dd>")),
        "CRL number {number}"
    );
    // And its delta: the next number, over this CRL, with the download links.
    let delta_number = number.parse::<i64>().unwrap() + 1;
    assert!(
        cas.contains(&format!(
            "<span class=\"delta-number\">{delta_number}</span> over CRL {number}"
        )),
        "delta CRL {delta_number}"
    );
    for link in [
        format!("/crl/{ca_id}/delta.crl"),
        format!("/crl/{ca_id}/delta.pem"),
    ] {
        assert!(cas.contains(&format!("href=\"{link}\"")), "{link}");
    }
    b.screenshot("cas").await;
    b.resize(390, 844).await;
    b.screenshot("cas-phone").await;
    b.goto(&app, "/ui/users").await;
    b.screenshot("users-phone").await;
    b.goto(&app, "/ui").await;
    b.screenshot("dashboard-phone").await;
    b.resize(1280, 900).await;
    browser.quit().await;
}
