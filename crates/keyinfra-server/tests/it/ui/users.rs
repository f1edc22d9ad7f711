//! User administration: create, change role and status, delete (which revokes).

use std::time::Duration;

use keyinfra_db::UserRole;
use serde_json::Value;

use super::{Browser, csrf_of, form_login, issue_for, page, post_form};
use crate::support::{PASSWORD, TestApp};

#[tokio::test]
async fn admins_create_change_and_delete_users_and_deletion_revokes_their_certificates() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", UserRole::Admin).await;
    let admin_token = app.token("alice").await;
    let (cookie, _) = form_login(&app, "alice").await;
    let csrf = csrf_of(&page(&app, &cookie, "/ui/users/new").await.1);
    let (_, list) = page(&app, &cookie, "/ui/users").await;
    assert!(list.contains("alice") && list.contains("(you)"));

    // Field errors, each with nothing created.
    let base = [
        ("csrf", csrf.as_str()),
        ("username", "carol"),
        ("password", "carol's long passphrase"),
        ("password_again", "carol's long passphrase"),
        ("role", "USER"),
        ("email", ""),
    ];
    let with = |changes: &[(&'static str, &'static str)]| {
        let mut form: Vec<(&str, &str)> = base.to_vec();
        for (name, value) in changes {
            form.retain(|(n, _)| n != name);
            form.push((name, value));
        }
        form
    };
    let users_before = app.tdb.scalar_i64("SELECT count(*) FROM users").await;
    for (changes, marker) in [
        (vec![("username", "")], "id=\"username-error\""),
        (vec![("username", "alice")], "id=\"username-error\""),
        (
            vec![("password", "short"), ("password_again", "short")],
            "id=\"password-error\"",
        ),
        (
            vec![("password_again", "something else")],
            "id=\"password-again-error\"",
        ),
        (vec![("email", "not an address")], "id=\"email-error\""),
        (vec![("role", "ROOT")], "id=\"role-error\""),
    ] {
        let (status, _, body) = post_form(&app, &cookie, "/ui/users/new", &with(&changes)).await;
        assert_eq!(status, 422, "{changes:?}");
        assert!(body.contains(marker), "{marker} for {changes:?}");
        assert!(
            !body.contains("carol&#39;s long passphrase")
                && !body.contains("carol's long passphrase")
        );
        assert_eq!(
            app.tdb.scalar_i64("SELECT count(*) FROM users").await,
            users_before,
            "nothing created for {changes:?}"
        );
    }
    let (status, location, _) = post_form(
        &app,
        &cookie,
        "/ui/users/new",
        &with(&[("email", "carol@example.net")]),
    )
    .await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    let carol: uuid::Uuid = location
        .strip_prefix("/ui/users/")
        .unwrap()
        .parse()
        .unwrap();
    let (_, user) = app
        .get(&format!("/api/v1/users/{carol}"), &admin_token)
        .await;
    assert_eq!(user["username"], "carol");
    assert_eq!(user["email"], "carol@example.net");
    assert_eq!(user["role"], "USER");
    assert_eq!(
        app.login("carol", "carol's long passphrase").await.status(),
        200
    );

    // Role and status, as the use case's own rules allow.
    let (status, _, _) = post_form(
        &app,
        &cookie,
        &format!("/ui/users/{carol}/role"),
        &[("csrf", &csrf), ("role", "ADMIN")],
    )
    .await;
    assert_eq!(status, 303);
    let (_, user) = app
        .get(&format!("/api/v1/users/{carol}"), &admin_token)
        .await;
    assert_eq!(user["role"], "ADMIN");
    let (status, _, _) = post_form(
        &app,
        &cookie,
        &format!("/ui/users/{carol}/status"),
        &[("csrf", &csrf), ("disabled", "true")],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        app.login("carol", "carol's long passphrase").await.status(),
        401
    );
    let (_, carols_page) = page(&app, &cookie, &format!("/ui/users/{carol}")).await;
    assert!(
        carols_page.contains("badge revoked\">Disabled") && carols_page.contains("Enable account")
    );
    let (status, _, _) = post_form(
        &app,
        &cookie,
        &format!("/ui/users/{carol}/status"),
        &[("csrf", &csrf), ("disabled", "false")],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        app.login("carol", "carol's long passphrase").await.status(),
        200
    );
    // Self-lockout is the use case's rule; the page shows it.
    let (status, _, body) = post_form(
        &app,
        &cookie,
        &format!("/ui/users/{alice}/role"),
        &[("csrf", &csrf), ("role", "USER")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        body.contains("id=\"user-error\"") && body.contains("cannot demote or disable yourself")
    );
    let (_, me) = app.get("/api/v1/users/me", &admin_token).await;
    assert_eq!(me["role"], "ADMIN");

    // Carol owns two certificates; deleting her revokes both, after a confirmation.
    let first = issue_for(&app, &admin_token, "carol-ap-1", carol, 300).await;
    let second = issue_for(&app, &admin_token, "carol-ap-2", carol, 300).await;
    let (status, confirm) = page(&app, &cookie, &format!("/ui/users/{carol}/delete")).await;
    assert_eq!(status, 200);
    assert!(
        confirm.contains("2 certificates of carol will be revoked"),
        "{confirm}"
    );
    assert!(confirm.contains("carol-ap-1") && confirm.contains("carol-ap-2"));
    let (status, _, body) = post_form(
        &app,
        &cookie,
        &format!("/ui/users/{carol}/delete"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, 422, "no confirmation");
    assert!(body.contains("id=\"delete-error\""));
    let (status, _) = app
        .get(&format!("/api/v1/users/{carol}"), &admin_token)
        .await;
    assert_eq!(status, 200, "still there");
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT count(*) FROM revoked_certificates")
            .await,
        0
    );
    let browser = Browser::start().await;
    browser.log_in(&app.base, "alice", PASSWORD).await;
    browser
        .goto(&app, &format!("/ui/users/{carol}/delete"))
        .await;
    browser.click("#delete-submit").await;
    browser.wait_for("#delete-error").await;
    browser.screenshot("user-delete-confirm").await;
    browser.quit().await;

    let (status, location, _) = post_form(
        &app,
        &cookie,
        &format!("/ui/users/{carol}/delete"),
        &[("csrf", &csrf), ("confirm", "on")],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/ui/users?deleted=2"));
    let (_, notice) = page(&app, &cookie, "/ui/users?deleted=2").await;
    assert!(notice.contains("The user was deleted and 2 certificates revoked."));
    let (status, _) = app
        .get(&format!("/api/v1/users/{carol}"), &admin_token)
        .await;
    assert_eq!(status, 404);
    for cert in [&first, &second] {
        let (_, now) = app
            .get(
                &format!("/api/v1/certificates/{}", cert["id"].as_str().unwrap()),
                &admin_token,
            )
            .await;
        assert_eq!(now["status"], "REVOKED");
        assert_eq!(now["owner_id"], Value::Null);
    }
    // They reach the CRL without waiting for its scheduled refresh.
    let mut listed = false;
    for _ in 0..100 {
        let (_, cas) = page(&app, &cookie, "/ui/cas").await;
        if [&first, &second].iter().all(|c| {
            cas.contains(&format!(
                "<code class=\"serial\">{}</code>",
                c["serial_number"].as_str().unwrap()
            ))
        }) {
            listed = true;
            assert!(cas.contains("Cessation of operation"));
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(listed, "both serials on the CRL");
    // The revoked certificate's page says who revoked it and why.
    let (_, detail) = page(
        &app,
        &cookie,
        &format!("/ui/certificates/{}", first["id"].as_str().unwrap()),
    )
    .await;
    assert!(
        detail.contains("Cessation of operation (device retired)")
            && detail.contains("<dd>alice</dd>")
    );
    assert!(
        detail.contains("<span class=\"muted\">nobody</span>"),
        "no owner any more"
    );
}
