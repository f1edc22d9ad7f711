//! A certificate's actions: revoke, PKCS#12 export and renew, with their CSRF and owner
//! checks and their errors shown next to the form on the detail page.

use keyinfra_db::UserRole;

use super::{all_rows, csrf_of, form_login, issue_for, page, post_form, raw_client};
use crate::support::TestApp;

/// How many audit events with this action the admin sees.
async fn audit_count(app: &TestApp, admin_token: &str, action: &str) -> usize {
    let (status, page) = app
        .get(
            &format!("/api/v1/audit?action={action}&limit=500"),
            admin_token,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn revoke_and_pkcs12_forms_need_the_csrf_token_and_the_owner() {
    let app = TestApp::spawn().await;
    app.user("alice", UserRole::Admin).await;
    let bob = app.user("bob", UserRole::User).await;
    app.user("carol", UserRole::User).await;
    let admin_token = app.token("alice").await;
    let bobs = issue_for(&app, &admin_token, "bob-router", bob, 365).await;
    let id = bobs["id"].as_str().unwrap();
    let http = raw_client();
    let (cookie, _) = form_login(&app, "bob").await;
    let (carols_cookie, _) = form_login(&app, "carol").await;
    let detail = page(&app, &cookie, &format!("/ui/certificates/{id}"))
        .await
        .1;
    assert!(detail.contains("Revoke certificate") && detail.contains("Download .p12"));
    let csrf = csrf_of(&detail);
    let carols_page = page(&app, &carols_cookie, "/ui").await.1;
    let carols_csrf = csrf_of(&carols_page);
    let post = |path: String, cookie: String, form: Vec<(&'static str, String)>| {
        let request = http
            .post(app.url(&path))
            .header("cookie", cookie)
            .form(&form);
        async move { request.send().await.unwrap() }
    };
    let pkcs12 = format!("/ui/certificates/{id}/pkcs12");
    let revoke = format!("/ui/certificates/{id}/revoke");
    let pin = |csrf: &str, a: &str, b: &str, compat: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("pin", a.to_owned()),
            ("pin_again", b.to_owned()),
            ("compat", compat.to_owned()),
        ]
    };

    // PKCS#12: refused without the token, with two different PINs, a short PIN, or by
    // another user (404); nothing is exported (the audit log counts exports).
    let refusals = [
        (
            cookie.clone(),
            pin("", "12345678", "12345678", "modern"),
            403,
        ),
        (
            cookie.clone(),
            pin(&csrf, "12345678", "87654321", "modern"),
            422,
        ),
        (cookie.clone(), pin(&csrf, "12345", "12345", "modern"), 422),
        (
            cookie.clone(),
            pin(&csrf, "12345678", "12345678", "ancient"),
            422,
        ),
        (
            carols_cookie.clone(),
            pin(&carols_csrf, "12345678", "12345678", "modern"),
            404,
        ),
    ];
    for (who, form, status) in refusals {
        let response = post(pkcs12.clone(), who, form.clone()).await;
        assert_eq!(response.status(), status, "{:?}", &form[2..]);
    }
    assert_eq!(
        audit_count(&app, &admin_token, "certificate.exported").await,
        0
    );
    for compat in ["modern", "legacy"] {
        let response = post(
            pkcs12.clone(),
            cookie.clone(),
            pin(&csrf, "12345678", "12345678", compat),
        )
        .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/x-pkcs12");
        assert!(
            response.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        assert!(response.bytes().await.unwrap().len() > 500);
    }
    assert_eq!(
        audit_count(&app, &admin_token, "certificate.exported").await,
        2
    );

    // Revoke: refused without the token, or by another user; then done with a reason.
    for (who, token, status) in [
        (cookie.clone(), String::new(), 403),
        (cookie.clone(), carols_csrf.clone(), 403),
        (carols_cookie.clone(), carols_csrf.clone(), 404),
    ] {
        let form = vec![("csrf", token), ("reason", "keyCompromise".to_owned())];
        assert_eq!(post(revoke.clone(), who, form).await.status(), status);
        let (_, cert) = app
            .get(&format!("/api/v1/certificates/{id}"), &admin_token)
            .await;
        assert_eq!(cert["status"], "ACTIVE");
    }
    let form = vec![
        ("csrf", csrf.clone()),
        ("reason", "keyCompromise".to_owned()),
    ];
    let response = post(revoke.clone(), cookie.clone(), form).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        format!("/ui/certificates/{id}")
    );
    let (_, cert) = app
        .get(&format!("/api/v1/certificates/{id}"), &admin_token)
        .await;
    assert_eq!(cert["status"], "REVOKED");
    let detail = page(&app, &cookie, &format!("/ui/certificates/{id}"))
        .await
        .1;
    assert!(detail.contains("badge revoked") && !detail.contains("Revoke certificate"));
}

#[tokio::test]
async fn renewal_owner_names_and_pkcs12_errors_show_on_the_certificate_pages() {
    let app = TestApp::spawn().await;
    app.user("alice", UserRole::Admin).await;
    let bob = app.user("bob", UserRole::User).await;
    let carol = app.user("carol", UserRole::User).await;
    let admin_token = app.token("alice").await;
    let bobs = issue_for(&app, &admin_token, "bob-router", bob, 365).await;
    issue_for(&app, &admin_token, "carol-switch", carol, 365).await;
    let id = bobs["id"].as_str().unwrap();
    let (cookie, _) = form_login(&app, "alice").await;
    let (bobs_cookie, _) = form_login(&app, "bob").await;

    // Owners by name, and the owner filter.
    let (_, list) = page(&app, &cookie, "/ui/certificates").await;
    assert!(
        list.contains("<td class=\"owner-cell\">bob</td>")
            && list.contains("<td class=\"owner-cell\">carol</td>")
    );
    let (_, only_bob) = page(&app, &cookie, &format!("/ui/certificates?owner={bob}")).await;
    assert!(only_bob.contains("bob-router") && !only_bob.contains("carol-switch"));
    assert!(only_bob.contains(&format!("<option value=\"{bob}\" selected>bob</option>")));
    let (_, bobs_list) = page(&app, &bobs_cookie, "/ui/certificates").await;
    assert!(
        !bobs_list.contains("id=\"owner\""),
        "users have no owner filter"
    );
    let (_, bobs_try) = page(
        &app,
        &bobs_cookie,
        &format!("/ui/certificates?owner={carol}"),
    )
    .await;
    assert!(
        !bobs_try.contains("carol-switch"),
        "the use case confines a user"
    );

    // Renew: only admins see the form; a user's post is refused by the use case.
    let (_, detail) = page(&app, &cookie, &format!("/ui/certificates/{id}")).await;
    assert!(detail.contains("id=\"renew-submit\""));
    let (_, bobs_detail) = page(&app, &bobs_cookie, &format!("/ui/certificates/{id}")).await;
    assert!(!bobs_detail.contains("id=\"renew-submit\""));
    let csrf = csrf_of(&detail);
    let bobs_csrf = csrf_of(&bobs_detail);
    let renew = format!("/ui/certificates/{id}/renew");
    let before = all_rows(&app).await;
    let (status, _, _) = post_form(
        &app,
        &bobs_cookie,
        &renew,
        &[("csrf", &bobs_csrf), ("validity_days", "30")],
    )
    .await;
    assert_eq!(status, 403);
    for (days, marker) in [
        ("soon", "Give the validity as a whole number"),
        ("5000", "id=\"renew-error\""),
    ] {
        let (status, _, body) = post_form(
            &app,
            &cookie,
            &renew,
            &[("csrf", &csrf), ("validity_days", days), ("rekey", "on")],
        )
        .await;
        assert_eq!(status, 422, "{days}");
        assert!(
            body.contains(marker) && body.contains("id=\"renew-error\""),
            "{days}"
        );
        assert!(
            body.contains(&format!("value=\"{days}\"")),
            "the form keeps what was typed"
        );
        assert!(body.contains("<h1>bob-router"), "on the detail page");
    }
    assert_eq!(all_rows(&app).await, before, "nothing written");
    let (status, location, _) = post_form(
        &app,
        &cookie,
        &renew,
        &[
            ("csrf", &csrf),
            ("validity_days", "90"),
            ("rekey", "on"),
            ("revoke_previous", "on"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let new_id = location
        .unwrap()
        .strip_prefix("/ui/certificates/")
        .unwrap()
        .to_owned();
    assert_ne!(new_id, id);
    let (_, renewed) = app
        .get(&format!("/api/v1/certificates/{new_id}"), &admin_token)
        .await;
    assert_eq!(renewed["version"], 2);
    assert_eq!(renewed["owner_id"], bob.to_string());
    let (_, previous) = app
        .get(&format!("/api/v1/certificates/{id}"), &admin_token)
        .await;
    assert_eq!(previous["status"], "REVOKED");
    let (_, old_page) = page(&app, &cookie, &format!("/ui/certificates/{id}")).await;
    assert!(old_page.contains("Superseded") && old_page.contains("revoked-card"));
    assert!(
        !old_page.contains("id=\"renew-submit\""),
        "only ACTIVE renews"
    );

    // PKCS#12 refusals appear on the detail page next to the form.
    let (_, new_page) = page(&app, &bobs_cookie, &format!("/ui/certificates/{new_id}")).await;
    let bobs_csrf = csrf_of(&new_page);
    for (pin, again, message) in [
        ("12345678", "87654321", "The two PINs differ"),
        (
            "1234567",
            "1234567",
            "The PIN must have 8 to 128 characters",
        ),
    ] {
        let (status, _, body) = post_form(
            &app,
            &bobs_cookie,
            &format!("/ui/certificates/{new_id}/pkcs12"),
            &[
                ("csrf", &bobs_csrf),
                ("pin", pin),
                ("pin_again", again),
                ("compat", "modern"),
            ],
        )
        .await;
        assert_eq!(status, 422);
        assert!(
            body.contains("id=\"pkcs12-error\"") && body.contains(message),
            "{message}"
        );
        assert!(body.contains("<h1>bob-router") && body.contains("aria-invalid=\"true\""));
        assert!(
            !body.contains(&format!("value=\"{pin}\"")),
            "the PIN is not sent back"
        );
    }
}
