//! The web UI in a real browser (Debian's chromium, driven through chromedriver), and its
//! session, CSRF and header rules over plain HTTP. This file holds the browser harness and
//! the small helpers every page's tests share; the tests are in one file per page area.

mod account;
mod acme;
mod actions;
mod audit;
mod cas;
mod certificates;
mod dashboard;
mod enrollment;
mod issue;
mod policies;
mod session;
mod users;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use keyinfra_db::stats;
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

    /// Sets the window's size (a phone's width, or a taller window for a long page).
    async fn resize(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap();
    }

    /// A screenshot in a window of this size; the window is the usual size again after.
    async fn screenshot_sized(&self, name: &str, width: u32, height: u32) {
        self.resize(width, height).await;
        self.screenshot(name).await;
        self.resize(1280, 900).await;
    }

    /// Logs in through the form, with the keyboard's Enter on the password field.
    async fn log_in(&self, base: &str, username: &str, password: &str) {
        self.client.goto(&format!("{base}/ui/login")).await.unwrap();
        self.fill("username", username).await;
        self.fill("password", password).await;
        // The next page is the dashboard, or the form again with its error.
        self.click_to_next_page("form button[type=submit]").await;
    }

    /// Clicks the first element that matches a CSS selector, and waits until the page it
    /// leads to has loaded, whatever that page holds. Waiting for an element instead could
    /// find it on the page being left (both list pages have `table.list`), so this marks
    /// the current document and waits for a complete one without the mark.
    async fn click_to_next_page(&self, css: &str) {
        self.client
            .execute("window.keyinfraBeforeClick = true; return null;", vec![])
            .await
            .unwrap();
        self.click(css).await;
        let loaded = "return window.keyinfraBeforeClick === undefined \
                      && document.readyState === 'complete' \
                      && document.querySelector('h1') !== null;";
        for _ in 0..200 {
            // While the page changes, the script may fail: that is "not yet".
            if let Ok(Value::Bool(true)) = self.client.execute(loaded, vec![]).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no page loaded after clicking {css}");
    }

    async fn goto(&self, app: &TestApp, path: &str) {
        self.client.goto(&app.url(path)).await.unwrap();
    }

    /// Clicks the first element that matches a CSS selector.
    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Clicks the link with this text.
    async fn click_link(&self, text: &str) {
        self.client
            .find(Locator::LinkText(text))
            .await
            .unwrap_or_else(|e| panic!("link {text:?}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Replaces what the field with this id holds by `text`, typed as a person would.
    async fn fill(&self, id: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("#{id}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Waits until an element matches a CSS selector (the next page has loaded).
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
