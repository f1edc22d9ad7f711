//! The web UI in a real browser (Debian's chromium, driven through chromedriver), and its
//! session, CSRF and header rules over plain HTTP.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use keyinfra_db::{Actor, UserRole, stats};
use serde_json::{Value, json};

use crate::support::{PASSWORD, TestApp};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver on a free loopback port, one Chromium session with a fresh profile. Both
/// end when `quit` runs (or the test fails: the driver is killed on drop).
struct Browser {
    client: Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "the browser tests need Debian's chromium and chromium-driver (scripts/test installs them)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = None;
        for _ in 0..100 {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Self {
                        client,
                        driver,
                        _profile: profile,
                    };
                }
                Err(e) => {
                    last_error = Some(e.to_string());
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        panic!("chromedriver did not start a session: {last_error:?}");
    }

    async fn quit(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill().await;
    }

    async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Saves a screenshot under `target/ui-screenshots/` of the workspace.
    async fn screenshot(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Logs in through the form, with the keyboard's Enter on the password field.
    async fn log_in(&self, base: &str, username: &str, password: &str) {
        self.client.goto(&format!("{base}/ui/login")).await.unwrap();
        self.client
            .find(Locator::Id("username"))
            .await
            .unwrap()
            .send_keys(username)
            .await
            .unwrap();
        self.client
            .find(Locator::Id("password"))
            .await
            .unwrap()
            .send_keys(password)
            .await
            .unwrap();
        self.client
            .find(Locator::Css("form button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.client
            .wait()
            .for_element(Locator::Css("h1"))
            .await
            .unwrap();
    }

    async fn log_out(&self) {
        self.client
            .find(Locator::Css(".account button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        self.client
            .wait()
            .for_element(Locator::Id("username"))
            .await
            .unwrap();
    }
}

/// Issues a certificate for `owner` through the API as the admin.
async fn issue_for(app: &TestApp, admin: &str, cn: &str, owner: uuid::Uuid, days: u32) -> Value {
    app.issue(
        admin,
        json!({
            "subject": format!("CN={cn},O=Example,C=NL"),
            "san": [format!("{cn}.example.net"), "192.0.2.10"],
            "owner_id": owner,
            "validity_days": days,
        }),
    )
    .await
}

async fn refresh_stats(app: &TestApp) {
    let mut tx = app.db.begin(&Actor::System).await.unwrap();
    stats::refresh(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
}

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
    b.client.goto(&app.url("/ui/certificates")).await.unwrap();
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
    b.client
        .find(Locator::LinkText("Certificates"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::Css("table.list"))
        .await
        .unwrap();
    assert_eq!(b.path().await, "/ui/certificates");
    let list = b.source().await;
    for cn in ["bob-router", "carol-switch", "core-firewall"] {
        assert!(list.contains(cn), "{cn} in the admin's list");
    }
    b.screenshot("certificates-admin").await;

    // Search narrows the list (the API's list use case).
    b.client
        .find(Locator::Id("q"))
        .await
        .unwrap()
        .send_keys("bob")
        .await
        .unwrap();
    b.client
        .find(Locator::Css("form.filters button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::Css("table.list"))
        .await
        .unwrap();
    let found = b.source().await;
    assert!(found.contains("bob-router") && !found.contains("carol-switch"));

    // A status with nothing in it: the empty state.
    b.client
        .goto(&app.url("/ui/certificates?status=REVOKED"))
        .await
        .unwrap();
    assert!(b.source().await.contains("No certificate matches."));
    b.screenshot("certificates-empty").await;

    // The detail page.
    b.client
        .goto(&app.url("/ui/certificates?q=bob"))
        .await
        .unwrap();
    b.client
        .find(Locator::LinkText("bob-router"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::Css("dl.facts"))
        .await
        .unwrap();
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
    b.screenshot("certificate-admin").await;

    // The admin issues one for bob through the form (with the owner chosen from the list).
    b.client
        .goto(&app.url("/ui/certificates/new"))
        .await
        .unwrap();
    b.screenshot("issue-form").await;
    b.client
        .find(Locator::Id("subject"))
        .await
        .unwrap()
        .send_keys("CN=bob-ap-2,O=Example")
        .await
        .unwrap();
    b.client
        .find(Locator::Id("san"))
        .await
        .unwrap()
        .send_keys("not a host name!")
        .await
        .unwrap();
    b.client
        .find(Locator::Css(&format!("#owner_id option[value='{bob}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .find(Locator::Css("form.card button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::Id("san-error"))
        .await
        .unwrap();
    b.screenshot("issue-form-refused").await;
    let san = b.client.find(Locator::Id("san")).await.unwrap();
    san.clear().await.unwrap();
    san.send_keys("bob-ap-2.example.net").await.unwrap();
    b.client
        .find(Locator::Css("form.card button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::Css("dl.facts"))
        .await
        .unwrap();
    let issued = b.source().await;
    assert!(issued.contains("CN=bob-ap-2,O=Example") && issued.contains(&bob.to_string()));

    // A phone's width.
    b.client.set_window_size(390, 844).await.unwrap();
    b.screenshot("certificate-phone").await;
    b.client.goto(&app.url("/ui/certificates")).await.unwrap();
    b.screenshot("certificates-phone").await;
    b.client.set_window_size(1280, 900).await.unwrap();

    // Logout clears the cookie; the pages lead to the login form again.
    b.log_out().await;
    assert_eq!(b.path().await, "/ui/login");
    assert!(
        b.client.get_named_cookie("keyinfra_session").await.is_err(),
        "the session cookie is gone"
    );
    b.client.goto(&app.url("/ui")).await.unwrap();
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
    b.client.goto(&app.url("/ui/certificates")).await.unwrap();
    let list = b.source().await;
    assert!(list.contains("bob-router") && list.contains("bob-ap-2"));
    assert!(!list.contains("carol-switch") && !list.contains("core-firewall"));
    b.screenshot("certificates-user").await;
    // Bob revokes his access point's certificate from its page, with a reason.
    b.client
        .find(Locator::LinkText("bob-ap-2"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::Id("reason"))
        .await
        .unwrap();
    b.client.set_window_size(1280, 1500).await.unwrap();
    b.screenshot("certificate-actions").await;
    b.client.set_window_size(1280, 900).await.unwrap();
    b.client
        .find(Locator::Css("#reason option[value='cessationOfOperation']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .find(Locator::Css(".danger-zone button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.client
        .wait()
        .for_element(Locator::Css("h1 .badge.revoked"))
        .await
        .unwrap();
    b.screenshot("certificate-revoked").await;

    b.client
        .goto(&app.url(&format!(
            "/ui/certificates/{}",
            carols["id"].as_str().unwrap()
        )))
        .await
        .unwrap();
    let refused = b.source().await;
    assert!(refused.contains("Not found") && !refused.contains("carol-switch"));
    b.screenshot("certificate-not-found").await;

    browser.quit().await;
}

/// A client that shows redirects instead of following them.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Logs in through the form; returns the `name=value` of the session cookie and its header.
async fn form_login(app: &TestApp, username: &str) -> (String, String) {
    let response = raw_client()
        .post(app.url("/ui/login"))
        .form(&[("username", username), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/ui");
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let pair = set_cookie.split(';').next().unwrap().to_owned();
    (pair, set_cookie)
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

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
    let alices_page = http
        .get(app.url("/ui"))
        .header("cookie", &alices_cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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

    // A forged or tampered cookie is no session.
    let response = http
        .get(app.url("/ui"))
        .header("cookie", format!("{cookie}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
}

/// The issue form's fields as sent.
type IssueFormFields = Vec<(&'static str, String)>;

/// How many certificates the admin's API sees.
async fn certificate_count(app: &TestApp, admin_token: &str) -> usize {
    let (status, page) = app.get("/api/v1/certificates?limit=500", admin_token).await;
    assert_eq!(status, 200);
    page["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn the_issue_form_maps_errors_to_fields_and_creates_nothing_on_bad_input() {
    let app = TestApp::spawn().await;
    app.user("alice", UserRole::Admin).await;
    let bob = app.user("bob", UserRole::User).await;
    let carol = app.user("carol", UserRole::User).await;
    let admin_token = app.token("alice").await;
    let http = raw_client();
    let (cookie, _) = form_login(&app, "bob").await;
    let page = http
        .get(app.url("/ui/certificates/new"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    for label in [
        "for=\"subject\"",
        "for=\"san\"",
        "for=\"profile\"",
        "for=\"validity_days\"",
        "for=\"key_algorithm\"",
        "for=\"csr\"",
    ] {
        assert!(html.contains(label), "a label {label}");
    }
    assert!(
        !html.contains("for=\"owner_id\""),
        "only admins choose the owner"
    );
    let csrf = csrf_of(&html);
    let carol_id = carol.to_string();
    let good = |extra: &[(&'static str, &str)]| {
        let mut form: Vec<(&'static str, String)> = vec![
            ("csrf", csrf.clone()),
            ("subject", "CN=bob-ap-1,O=Example".into()),
            ("san", "bob-ap-1.example.net\n192.0.2.7".into()),
            ("profile", "device".into()),
            ("validity_days", "90".into()),
            ("key_source", "generate".into()),
            ("key_algorithm", "ecdsa-p256".into()),
        ];
        for (name, value) in extra {
            form.retain(|(n, _)| n != name);
            form.push((name, (*value).to_owned()));
        }
        form
    };

    let refusals: Vec<(IssueFormFields, u16, &str)> = vec![
        (good(&[("csrf", "")]), 403, "reload the page"),
        (good(&[("subject", "")]), 422, "id=\"subject-error\""),
        (
            good(&[("san", "not a host name!")]),
            422,
            "id=\"san-error\"",
        ),
        (
            good(&[("validity_days", "ninety")]),
            422,
            "id=\"validity-error\"",
        ),
        (
            good(&[("validity_days", "5000")]),
            422,
            "id=\"validity-error\"",
        ),
        (
            good(&[("key_source", "csr"), ("csr", "")]),
            422,
            "id=\"key-error\"",
        ),
        (
            good(&[
                ("key_source", "csr"),
                (
                    "csr",
                    "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----",
                ),
            ]),
            422,
            "id=\"key-error\"",
        ),
        (
            good(&[("owner_id", carol_id.as_str())]),
            422,
            "Only administrators",
        ),
    ];
    for (form, status, marker) in refusals {
        let response = http
            .post(app.url("/ui/certificates/new"))
            .header("cookie", &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{form:?}");
        let body = response.text().await.unwrap();
        assert!(body.contains(marker), "{marker} in the answer to {form:?}");
        if status == 422 && !marker.contains("subject") {
            assert!(
                body.contains("value=\"CN=bob-ap-1,O=Example\""),
                "the form keeps what was typed"
            );
        }
        assert_eq!(
            certificate_count(&app, &admin_token).await,
            0,
            "nothing created"
        );
    }

    // "Preview names" shows how the subject and SANs are read, and issues nothing.
    let response = http
        .post(app.url("/ui/certificates/new"))
        .header("cookie", &cookie)
        .form(&good(&[("action", "preview")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("Common name (CN)") && body.contains("Organization (O)"));
    assert!(body.contains("<code>bob-ap-1</code>") && body.contains("192.0.2.7"));
    let response = http
        .post(app.url("/ui/certificates/new"))
        .header("cookie", &cookie)
        .form(&good(&[
            ("action", "preview"),
            ("subject", "CN=x,Nonsense"),
        ]))
        .send()
        .await
        .unwrap();
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("id=\"subject-error\"")
    );
    assert_eq!(certificate_count(&app, &admin_token).await, 0);

    // The form as sent: issued for the session's user, and the detail page follows.
    let response = http
        .post(app.url("/ui/certificates/new"))
        .header("cookie", &cookie)
        .form(&good(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let id = location.strip_prefix("/ui/certificates/").unwrap();
    let (status, cert) = app
        .get(&format!("/api/v1/certificates/{id}"), &admin_token)
        .await;
    assert_eq!(status, 200);
    assert_eq!(cert["owner_id"], bob.to_string());
    assert_eq!(cert["subject"], "CN=bob-ap-1,O=Example");
    assert_eq!(cert["san"], json!(["bob-ap-1.example.net", "192.0.2.7"]));
    assert_eq!(certificate_count(&app, &admin_token).await, 1);
}

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
    let detail = http
        .get(app.url(&format!("/ui/certificates/{id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(detail.contains("Revoke certificate") && detail.contains("Download .p12"));
    let csrf = csrf_of(&detail);
    let carols_page = http
        .get(app.url("/ui"))
        .header("cookie", &carols_cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
        (cookie.clone(), pin("", "123456", "123456", "modern"), 403),
        (
            cookie.clone(),
            pin(&csrf, "123456", "654321", "modern"),
            422,
        ),
        (cookie.clone(), pin(&csrf, "12345", "12345", "modern"), 422),
        (
            cookie.clone(),
            pin(&csrf, "123456", "123456", "ancient"),
            422,
        ),
        (
            carols_cookie.clone(),
            pin(&carols_csrf, "123456", "123456", "modern"),
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
            pin(&csrf, "123456", "123456", compat),
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
    let detail = http
        .get(app.url(&format!("/ui/certificates/{id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(detail.contains("badge revoked") && !detail.contains("Revoke certificate"));
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
