//! The password page: refusals, the change, and the session that survives it.

use std::time::Duration;

use keyinfra_db::UserRole;

use super::{Browser, csrf_of, form_login, page, post_form, raw_client};
use crate::support::{PASSWORD, TestApp};

#[tokio::test]
async fn changing_the_password_keeps_the_session_and_the_old_password_stops_working() {
    let app = TestApp::spawn().await;
    app.user("bob", UserRole::User).await;
    let new_password = "a brand new passphrase";
    let (cookie, _) = form_login(&app, "bob").await;
    let (status, html) = page(&app, &cookie, "/ui/account/password").await;
    assert_eq!(status, 200);
    for label in [
        "for=\"current_password\"",
        "for=\"new_password\"",
        "for=\"new_password_again\"",
    ] {
        assert!(html.contains(label), "{label}");
    }
    let csrf = csrf_of(&html);
    let audit_events = || {
        app.tdb
            .scalar_i64("SELECT count(*) FROM audit_events WHERE action = 'user.password_changed'")
    };
    for (current, new, again, marker) in [
        (
            "not my password at all",
            new_password,
            new_password,
            "id=\"current-error\"",
        ),
        (
            PASSWORD,
            new_password,
            "a different passphrase",
            "id=\"new-again-error\"",
        ),
        (PASSWORD, "short", "short", "id=\"new-error\""),
        (PASSWORD, "bob", "bob", "id=\"new-error\""),
        ("", new_password, new_password, "id=\"current-error\""),
    ] {
        let (status, _, body) = post_form(
            &app,
            &cookie,
            "/ui/account/password",
            &[
                ("csrf", &csrf),
                ("current_password", current),
                ("new_password", new),
                ("new_password_again", again),
            ],
        )
        .await;
        assert_eq!(status, 422, "{marker}");
        assert!(body.contains(marker), "{marker}");
        for secret in [current, new, again] {
            assert!(
                secret.is_empty() || secret == "bob" || !body.contains(secret),
                "a password in the page"
            );
        }
        assert_eq!(audit_events().await, 0, "nothing changed");
    }
    assert_eq!(app.login("bob", PASSWORD).await.status(), 200);

    // The change must fall in a later second than the session's token: tokens carry whole
    // seconds, and the database ends those issued before the change's second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = raw_client()
        .post(app.url("/ui/account/password"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("current_password", PASSWORD),
            ("new_password", new_password),
            ("new_password_again", new_password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/ui/account/password?changed=1"
    );
    let fresh = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(fresh.starts_with("keyinfra_session=ey") && fresh != cookie);
    assert_eq!(audit_events().await, 1);
    // The new session works and says so; the old one ends at its next request.
    let (status, body) = page(&app, &fresh, "/ui/account/password?changed=1").await;
    assert_eq!(status, 200);
    assert!(body.contains("id=\"password-changed\""));
    let response = raw_client()
        .get(app.url("/ui"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/ui/login");
    // Only the new password logs in, through the form as through the API.
    assert_eq!(app.login("bob", PASSWORD).await.status(), 401);
    assert_eq!(app.login("bob", new_password).await.status(), 200);
    let response = raw_client()
        .post(app.url("/ui/login"))
        .form(&[("username", "bob"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // In the browser: the form, with a refusal, then the change (a second after login).
    let browser = Browser::start().await;
    let b = &browser;
    b.log_in(&app.base, "bob", new_password).await;
    b.click("a.account-link").await;
    b.wait_for("#current_password").await;
    b.fill("current_password", "wrong wrong wrong").await;
    b.fill("new_password", "third passphrase here").await;
    b.fill("new_password_again", "third passphrase here").await;
    b.click("form.card button[type=submit]").await;
    b.wait_for("#current-error").await;
    b.screenshot("password-refused").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    b.fill("current_password", new_password).await;
    b.fill("new_password", "third passphrase here").await;
    b.fill("new_password_again", "third passphrase here").await;
    b.click("form.card button[type=submit]").await;
    b.wait_for("#password-changed").await;
    b.screenshot("password-changed").await;
    b.goto(&app, "/ui/certificates").await;
    assert_eq!(b.path().await, "/ui/certificates", "still logged in");
    browser.quit().await;
    assert_eq!(app.login("bob", new_password).await.status(), 401);
    assert_eq!(
        app.login("bob", "third passphrase here").await.status(),
        200
    );
}
