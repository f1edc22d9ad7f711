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
    /// Where Chromium saves downloads (chromedriver enables them in headless mode when the
    /// download directory preference is set).
    downloads: tempfile::TempDir,
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
        let downloads = tempfile::tempdir().unwrap();
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
                ],
                "prefs": {
                    "download.default_directory": downloads.path().display().to_string(),
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                    "safebrowsing.enabled": false,
                }
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
                        downloads,
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
        // Mark this document: the form's submission loads a new one, without the mark.
        // Waiting for an `h1` alone could find the login page's own before it is replaced.
        self.client
            .execute("window.keyinfraBeforeSubmit = true; return null;", vec![])
            .await
            .unwrap();
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
        // The next page (the dashboard, or the form again with its error) has loaded.
        let loaded = "return window.keyinfraBeforeSubmit === undefined \
                      && document.readyState === 'complete' \
                      && document.querySelector('h1') !== null;";
        for _ in 0..200 {
            // While the page changes, the script may fail: that is "not yet".
            if let Ok(Value::Bool(true)) = self.client.execute(loaded, vec![]).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("logging in as {username}: no page loaded after the form was submitted");
    }

    async fn goto(&self, app: &TestApp, path: &str) {
        self.client.goto(&app.url(path)).await.unwrap();
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn type_into(&self, id: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    async fn wait_for(&self, css: &str) {
        self.client
            .wait()
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("waiting for {css}: {e}"));
    }

    /// The one finished download (Chromium writes `*.crdownload` until it is complete).
    async fn downloaded(&self, extension: &str) -> (PathBuf, Vec<u8>) {
        for _ in 0..150 {
            let files: Vec<PathBuf> = std::fs::read_dir(self.downloads.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            let done: Vec<&PathBuf> = files
                .iter()
                .filter(|p| p.extension().is_some_and(|e| e == extension))
                .collect();
            if let [one] = done.as_slice() {
                let bytes = std::fs::read(one).unwrap();
                if !bytes.is_empty() {
                    return ((*one).clone(), bytes);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "no .{extension} download appeared in {:?}",
            self.downloads.path()
        );
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
    let mut conn = app.db.maintenance().await.unwrap();
    stats::refresh(&mut conn).await.unwrap();
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
    b.click("nav.mainnav a[href='/ui/users']").await;
    b.wait_for("table.list").await;
    b.screenshot("users").await;
    b.click("a[href='/ui/users/new']").await;
    b.wait_for("#username").await;
    b.type_into("username", "dave").await;
    b.type_into("password", "short").await;
    b.type_into("password_again", "short").await;
    b.type_into("email", "not an address").await;
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
    b.type_into("password", new_password).await;
    b.type_into("password_again", new_password).await;
    b.type_into("email", "dave@example.net").await;
    b.click("form.card button[type=submit]").await;
    b.wait_for("dl.facts").await;
    let dave = id_in_path(b, "/ui/users/").await;
    let user_page = b.source().await;
    assert!(user_page.contains("dave@example.net") && user_page.contains("No certificates."));
    b.screenshot("user").await;

    // The admin issues dave's certificate through the form, choosing dave as the owner.
    b.goto(&app, "/ui/certificates/new").await;
    b.type_into("subject", "CN=dave-laptop,O=Example").await;
    b.type_into("san", "dave-laptop.example.net").await;
    b.click(&format!("#owner_id option[value='{dave}']")).await;
    b.click("form.card button[type=submit]").await;
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
    b.click("nav.mainnav a[href='/ui/certificates']").await;
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
    b.type_into("pin", "48291375").await;
    b.type_into("pin_again", "48291376").await;
    b.click("#pkcs12-submit").await;
    b.wait_for("#pkcs12-error").await;
    assert!(b.source().await.contains("The two PINs differ"));
    assert_eq!(b.path().await, format!("/ui/certificates/{cert_id}/pkcs12"));
    b.client.set_window_size(1280, 1700).await.unwrap();
    b.screenshot("certificate-pkcs12-refused").await;
    b.client.set_window_size(1280, 900).await.unwrap();
    assert_eq!(
        std::fs::read_dir(b.downloads.path()).unwrap().count(),
        0,
        "nothing downloaded"
    );

    // The same PIN twice: a real download, which openssl opens with that PIN.
    let pin = "48291375";
    b.type_into("pin", pin).await;
    b.type_into("pin_again", pin).await;
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
    b.client.set_window_size(1280, 1300).await.unwrap();
    b.screenshot("certificate-revoked-details").await;
    b.client.set_window_size(1280, 900).await.unwrap();

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
    b.screenshot("cas").await;
    b.client.set_window_size(390, 844).await.unwrap();
    b.screenshot("cas-phone").await;
    b.goto(&app, "/ui/users").await;
    b.screenshot("users-phone").await;
    b.goto(&app, "/ui").await;
    b.screenshot("dashboard-phone").await;
    b.client.set_window_size(1280, 900).await.unwrap();
    browser.quit().await;
}

/// GET a page with a session cookie: status and body.
async fn page(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let response = raw_client()
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// POST a form with a session cookie: status, `location` (if any) and body.
async fn post_form(
    app: &TestApp,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, Option<String>, String) {
    let response = raw_client()
        .post(app.url(path))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    (status, location, response.text().await.unwrap())
}

/// Rows of every table a refused UI form must leave alone.
async fn all_rows(app: &TestApp) -> i64 {
    app.tdb
        .scalar_i64(
            "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM certificates)
                  + (SELECT count(*) FROM revoked_certificates) + (SELECT count(*) FROM audit_events)
                  + (SELECT count(*) FROM private_keys)",
        )
        .await
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
    b.type_into("current_password", "wrong wrong wrong").await;
    b.type_into("new_password", "third passphrase here").await;
    b.type_into("new_password_again", "third passphrase here")
        .await;
    b.click("form.card button[type=submit]").await;
    b.wait_for("#current-error").await;
    b.screenshot("password-refused").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    b.type_into("current_password", new_password).await;
    b.type_into("new_password", "third passphrase here").await;
    b.type_into("new_password_again", "third passphrase here")
        .await;
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
                action: "keys.resealed",
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
    browser.client.set_window_size(1280, 1400).await.unwrap();
    browser.screenshot("audit").await;
    browser.goto(&app, "/ui/audit?target=nope").await;
    browser.screenshot("audit-refused").await;
    browser.quit().await;
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
