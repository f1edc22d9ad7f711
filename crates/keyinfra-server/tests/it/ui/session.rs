//! Sessions: the login form and its cookie, logout, CSRF on every form, the security
//! headers, and the 404 pages (unknown paths, admin pages for users).

use keyinfra_db::UserRole;

use super::{Browser, all_rows, csrf_of, form_login, issue_for, page, post_form, raw_client};
use crate::support::{PASSWORD, TestApp};

#[tokio::test]
async fn ui_sessions_csrf_and_security_headers() {
    let app = TestApp::spawn().await;
    app.user("alice", UserRole::Admin).await;
    let bob = app.user("bob", UserRole::User).await;
    let carol = app.user("carol", UserRole::User).await;
    let admin_token = app.token("alice").await;
    let bobs = issue_for(&app, &admin_token, "bob-router", bob, 365).await;
    let carols = issue_for(&app, &admin_token, "carol-switch", carol, 365).await;
    let http = raw_client();

    // Without a session: to the login page.
    let response = http.get(app.url("/ui")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/ui/login");

    // The session cookie: the API's token, HttpOnly, SameSite=Strict, Path=/, not Secure on
    // plain loopback HTTP.
    let (cookie, set_cookie) = form_login(&app, "bob").await;
    assert!(cookie.starts_with("keyinfra_session=ey"), "a JWT");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"));
    let token = cookie.trim_start_matches("keyinfra_session=");
    let (status, _) = app.get("/api/v1/users/me", token).await;
    assert_eq!(status, 200, "the same token as the API's");

    // Pages carry the security headers.
    let response = http
        .get(app.url("/ui"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    let html = response.text().await.unwrap();
    let csrf = csrf_of(&html);
    assert_eq!(csrf.len(), 64);
    assert!(
        !html.contains(token),
        "the page never holds the session token"
    );

    // The stylesheet is served by the server itself.
    let css = http
        .get(app.url("/ui/static/style.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );

    // Another user's certificate: 404, as in the API; one's own: 200, and its PEM chain.
    let other = format!("/ui/certificates/{}", carols["id"].as_str().unwrap());
    for path in [other.clone(), format!("{other}/pem")] {
        let response = http
            .get(app.url(&path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    let mine = format!("/ui/certificates/{}/pem", bobs["id"].as_str().unwrap());
    let response = http
        .get(app.url(&mine))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .text()
            .await
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2,
        "leaf and CA"
    );

    // A POST without the CSRF token, or with another session's, is refused.
    let (alices_cookie, _) = form_login(&app, "alice").await;
    let alices_page = page(&app, &alices_cookie, "/ui").await.1;
    let alices_csrf = csrf_of(&alices_page);
    assert_ne!(alices_csrf, csrf);
    for form in [
        vec![],
        vec![("csrf", "00")],
        vec![("csrf", alices_csrf.as_str())],
    ] {
        let response = http
            .post(app.url("/ui/logout"))
            .header("cookie", &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{form:?}");
        assert!(response.headers().get("set-cookie").is_none());
    }

    // Logout with the token clears the cookie.
    let response = http
        .post(app.url("/ui/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/ui/login");
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("keyinfra_session=;") && cleared.contains("Max-Age=0"));
    // Logout ended the session in the database: the cookie's token no longer works as a
    // Bearer token either (it used to, until it expired).
    let (status, body) = app.get("/api/v1/users/me", token).await;
    assert_eq!(status, 401, "{body}");

    // A forged or tampered cookie is no session.
    let response = http
        .get(app.url("/ui"))
        .header("cookie", format!("{cookie}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn the_session_cookie_is_secure_over_tls() {
    use tower::ServiceExt;
    let app = TestApp::spawn().await;
    app.user("bob", UserRole::User).await;
    // The accept loop marks requests that came over TLS; the form answers with Secure.
    let mut request = axum::http::Request::post("/ui/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!(
            "username=bob&password={}",
            PASSWORD.replace(' ', "+")
        )))
        .unwrap();
    request.extensions_mut().insert(keyinfra_server::OverTls);
    let response = keyinfra_server::router(app.state.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.ends_with("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn admin_pages_are_404_for_users_and_unknown_ui_paths_get_the_ui_404_page() {
    let app = TestApp::spawn().await;
    app.user("alice", UserRole::Admin).await;
    let bob = app.user("bob", UserRole::User).await;
    let (bobs_cookie, _) = form_login(&app, "bob").await;
    let (alices_cookie, _) = form_login(&app, "alice").await;
    let bobs_csrf = csrf_of(&page(&app, &bobs_cookie, "/ui").await.1);

    for path in [
        "/ui/users".to_owned(),
        "/ui/users/new".to_owned(),
        format!("/ui/users/{bob}"),
        format!("/ui/users/{bob}/delete"),
        "/ui/audit".to_owned(),
    ] {
        let (status, body) = page(&app, &bobs_cookie, &path).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("<h1>Not found</h1>"), "{path}: the UI's page");
        assert!(body.contains("nav"), "{path}: in the layout");
    }
    // A user's own forms on admin routes: refused, and nothing written.
    let before = all_rows(&app).await;
    for (path, form) in [
        (
            "/ui/users/new".to_owned(),
            vec![
                ("username", "mallory"),
                ("password", "a long enough password"),
                ("password_again", "a long enough password"),
                ("role", "ADMIN"),
            ],
        ),
        (format!("/ui/users/{bob}/role"), vec![("role", "ADMIN")]),
        (format!("/ui/users/{bob}/delete"), vec![("confirm", "on")]),
    ] {
        let mut form = form;
        form.push(("csrf", bobs_csrf.as_str()));
        let (status, _, _) = post_form(&app, &bobs_cookie, &path, &form).await;
        assert_eq!(status, 404, "{path}");
    }
    assert_eq!(all_rows(&app).await, before, "nothing written");
    let (_, me) = app.get("/api/v1/users/me", &app.token("bob").await).await;
    assert_eq!(me["role"], "USER");

    // The navigation: admin pages only for admins; everyone has CAs and the password page.
    let (_, bobs_nav) = page(&app, &bobs_cookie, "/ui").await;
    assert!(!bobs_nav.contains("href=\"/ui/users\"") && !bobs_nav.contains("href=\"/ui/audit\""));
    assert!(
        bobs_nav.contains("href=\"/ui/cas\"") && bobs_nav.contains("href=\"/ui/account/password\"")
    );
    let (_, alices_nav) = page(&app, &alices_cookie, "/ui").await;
    assert!(alices_nav.contains("href=\"/ui/users\"") && alices_nav.contains("href=\"/ui/audit\""));

    // Unknown paths under /ui: HTML in the same layout, not problem+json.
    for path in [
        "/ui/nothing-here",
        "/ui/certificates/not-a-uuid",
        "/ui/certificates/00000000-0000-0000-0000-000000000000",
        "/ui/users/x/y/z",
    ] {
        let response = raw_client()
            .get(app.url(path))
            .header("cookie", &alices_cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        assert!(response.headers().contains_key("content-security-policy"));
        let body = response.text().await.unwrap();
        assert!(body.contains("<h1>Not found</h1>"), "{path}");
        assert!(
            body.contains("href=\"/ui/audit\"") && body.contains("alice"),
            "{path}: the signed-in layout"
        );
    }
    // Without a session: the same page, without the navigation.
    let response = raw_client()
        .get(app.url("/ui/nothing-here"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body = response.text().await.unwrap();
    assert!(body.contains("<h1>Not found</h1>") && !body.contains("href=\"/ui/certificates\""));
    // The API keeps its problem+json.
    let response = raw_client()
        .get(app.url("/api/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );

    let browser = Browser::start().await;
    browser.log_in(&app.base, "alice", PASSWORD).await;
    browser.goto(&app, "/ui/no/such/page").await;
    browser.screenshot("not-found").await;
    browser.quit().await;
}

#[tokio::test]
async fn forms_of_the_new_routes_without_the_csrf_token_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", UserRole::Admin).await;
    let bob = app.user("bob", UserRole::User).await;
    let admin_token = app.token("alice").await;
    let bobs = issue_for(&app, &admin_token, "bob-router", bob, 365).await;
    let cert = bobs["id"].as_str().unwrap();
    let (cookie, _) = form_login(&app, "alice").await;
    let (bobs_cookie, _) = form_login(&app, "bob").await;
    let bobs_csrf = csrf_of(&page(&app, &bobs_cookie, "/ui").await.1);
    let routes: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            "/ui/users/new".into(),
            vec![
                ("username", "mallory"),
                ("password", "a long enough password"),
                ("password_again", "a long enough password"),
                ("role", "ADMIN"),
            ],
        ),
        (format!("/ui/users/{bob}/role"), vec![("role", "ADMIN")]),
        (
            format!("/ui/users/{bob}/status"),
            vec![("disabled", "true")],
        ),
        (format!("/ui/users/{bob}/delete"), vec![("confirm", "on")]),
        (
            "/ui/account/password".into(),
            vec![
                ("current_password", PASSWORD),
                ("new_password", "a brand new passphrase"),
                ("new_password_again", "a brand new passphrase"),
            ],
        ),
        (
            format!("/ui/certificates/{cert}/renew"),
            vec![("validity_days", "30"), ("revoke_previous", "on")],
        ),
    ];
    let before = all_rows(&app).await;
    for (path, form) in &routes {
        // No token, a wrong one, and another session's.
        for token in [None, Some("00"), Some(bobs_csrf.as_str())] {
            let mut form = form.clone();
            if let Some(t) = token {
                form.push(("csrf", t));
            }
            let (status, _, body) = post_form(&app, &cookie, path, &form).await;
            assert_eq!(status, 403, "{path} with {token:?}");
            assert!(body.contains("reload the page"), "{path}");
            assert!(!body.contains(PASSWORD), "no secret on the page");
        }
    }
    assert_eq!(all_rows(&app).await, before, "nothing written");
    let (_, user) = app.get(&format!("/api/v1/users/{bob}"), &admin_token).await;
    assert_eq!(user["role"], "USER");
    assert_eq!(user["disabled"], false);
    assert_eq!(app.login("alice", PASSWORD).await.status(), 200);
    let _ = alice;
}
