//! The defects an outside review found (issue 16), each proved fixed over real HTTP: the
//! login throttle, password changes, login CSRF, session ends, per-user write rates, the
//! quota before RSA key generation, metrics labels and access, and stalled bodies.
//!
//! Test servers believe `X-Forwarded-For` from loopback (support::test_edge), so one test
//! speaks for several client addresses.

use std::sync::Arc;

use futures_util::future::join_all;
use keyinfra_core::auth::throttle::{ADDRESS_FREE, PAIR_FREE};
use keyinfra_db::UserRole;
use serde_json::{Value, json};

use crate::support::{PASSWORD, PEPPER, TestApp, test_edge};

async fn login_from(app: &TestApp, address: &str, name: &str, password: &str) -> u16 {
    app.http
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", address)
        .json(&json!({ "username": name, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn concurrent_wrong_logins_cannot_race_past_the_throttle() {
    let app = TestApp::spawn().await;
    app.user("victim", UserRole::User).await;
    let answers =
        join_all((0..24).map(|_| login_from(&app, "198.51.100.10", "victim", "wrong password 1")))
            .await;
    let passed = answers.iter().filter(|s| **s == 401).count();
    let throttled = answers.iter().filter(|s| **s == 429).count();
    // Each attempt is reserved before Argon2 runs, so at most the free failures reach it.
    assert_eq!(passed, PAIR_FREE as usize, "{answers:?}");
    assert_eq!(throttled, 24 - PAIR_FREE as usize, "{answers:?}");
}

#[tokio::test]
async fn an_attackers_own_success_does_not_reset_the_address() {
    let app = TestApp::spawn().await;
    app.user("mallory", UserRole::User).await;
    let nat = "203.0.113.20";
    for i in 0..ADDRESS_FREE - 1 {
        assert_eq!(login_from(&app, nat, &format!("guess{i}"), "x").await, 401);
    }
    assert_eq!(login_from(&app, nat, "mallory", PASSWORD).await, 200);
    // One more stranger spends the address's last free failure; the next one waits.
    assert_eq!(login_from(&app, nat, "guess-last", "x").await, 401);
    assert_eq!(login_from(&app, nat, "guess-next", "x").await, 429);
}

#[tokio::test]
async fn a_stranger_cannot_lock_a_named_account_out() {
    let app = TestApp::spawn().await;
    app.user("dave", UserRole::User).await;
    app.user("carol", UserRole::User).await;
    // Six wrong passwords for dave from one address...
    for _ in 0..=PAIR_FREE {
        login_from(&app, "192.0.2.66", "dave", "not daves password").await;
    }
    assert_eq!(
        login_from(&app, "192.0.2.66", "dave", "not daves password").await,
        429
    );
    // ...do not stop dave from anywhere else.
    assert_eq!(
        login_from(&app, "198.51.100.5", "dave", PASSWORD).await,
        200
    );

    // A username spray from a shared address (a NAT) does not stop carol, who logged in
    // from there before.
    let nat = "203.0.113.99";
    assert_eq!(login_from(&app, nat, "carol", PASSWORD).await, 200);
    for i in 0..ADDRESS_FREE * 2 {
        login_from(&app, nat, &format!("random-{i}"), "x").await;
    }
    assert_eq!(login_from(&app, nat, "someone-new", "x").await, 429);
    assert_eq!(login_from(&app, nat, "carol", PASSWORD).await, 200);
}

#[tokio::test]
async fn wrong_current_passwords_are_throttled_like_logins() {
    let app = TestApp::spawn().await;
    app.user("erin", UserRole::User).await;
    let token = app.token("erin").await;
    let mut answers = Vec::new();
    for _ in 0..12 {
        let r = app
            .http
            .put(app.url("/api/v1/users/me/password"))
            .bearer_auth(&token)
            .json(&json!({ "current_password": "not the password", "new_password": "a brand new password 1" }))
            .send()
            .await
            .unwrap();
        answers.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(
        &answers[..PAIR_FREE as usize],
        &[422; PAIR_FREE as usize],
        "{answers:?}"
    );
    assert!(
        answers[PAIR_FREE as usize..].iter().all(|s| *s == 429),
        "{answers:?}"
    );
}

#[tokio::test]
async fn sessions_end_exactly_at_password_change_logout_and_disable() {
    let app = TestApp::spawn().await;
    app.user("admin", UserRole::Admin).await;
    let frank = app.user("frank", UserRole::User).await;
    let admin = app.token("admin").await;

    // A token from the same second as a password change (the test clock does not move, so
    // both carry the same `iat`) ends with it.
    let before = app.token("frank").await;
    let r = app
        .http
        .put(app.url("/api/v1/users/me/password"))
        .bearer_auth(&before)
        .json(&json!({ "current_password": PASSWORD, "new_password": "frank's new password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(app.get("/api/v1/users/me", &before).await.0, 401);
    let after = {
        let r = app.login("frank", "frank's new password").await;
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(app.get("/api/v1/users/me", &after).await.0, 200);

    // Logout ends this token and every other of the user's.
    let second = {
        let r = app.login("frank", "frank's new password").await;
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let r = app
        .http
        .post(app.url("/api/v1/auth/logout"))
        .bearer_auth(&after)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(app.get("/api/v1/users/me", &after).await.0, 401);
    assert_eq!(app.get("/api/v1/users/me", &second).await.0, 401);

    // Disabled and enabled again: the old token stays dead.
    let old = {
        let r = app.login("frank", "frank's new password").await;
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for disabled in [true, false] {
        let (status, body) = app
            .send(
                reqwest::Method::PATCH,
                &format!("/api/v1/users/{frank}"),
                &admin,
                json!({ "disabled": disabled }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = app.get("/api/v1/users/me", &old).await;
    assert_eq!(status, 401, "{body}");
    // A fresh login works again.
    assert_eq!(
        app.login("frank", "frank's new password").await.status(),
        200
    );
    // The audit log has the logout.
    let (_, events) = app.get("/api/v1/audit?action=user.logout", &admin).await;
    assert_eq!(
        events["items"].as_array().map(Vec::len),
        Some(1),
        "{events}"
    );
}

#[tokio::test]
async fn a_cross_site_login_form_gets_no_session() {
    let app = TestApp::spawn().await;
    app.user("gina", UserRole::User).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let host = app.base.trim_start_matches("http://").to_owned();
    let post = |headers: Vec<(&'static str, String)>| {
        let mut request = client
            .post(app.url("/ui/login"))
            .form(&[("username", "gina"), ("password", PASSWORD)]);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    for headers in [
        vec![("origin", "https://evil.example".to_owned())],
        vec![("sec-fetch-site", "cross-site".to_owned())],
        vec![
            ("sec-fetch-site", "same-site".to_owned()),
            ("origin", format!("http://{host}")),
        ],
    ] {
        let r = post(headers.clone()).await.unwrap();
        assert_eq!(r.status(), 403, "{headers:?}");
        assert!(r.headers().get("set-cookie").is_none(), "{headers:?}");
    }
    for headers in [
        vec![("origin", format!("http://{host}"))],
        vec![("sec-fetch-site", "same-origin".to_owned())],
    ] {
        let r = post(headers.clone()).await.unwrap();
        assert_eq!(r.status(), 303, "{headers:?}");
        assert!(r.headers().contains_key("set-cookie"), "{headers:?}");
    }
}

#[tokio::test]
async fn certificate_writes_are_rate_limited_per_user_and_admins_are_exempt() {
    let app = TestApp::spawn_with(PEPPER, None, test_edge(), |settings| {
        settings.write_rate = Some(keyinfra_core::rate::WriteRate {
            per_minute: 3,
            admins_too: false,
        });
    })
    .await;
    app.user("root", UserRole::Admin).await;
    app.user("hank", UserRole::User).await;
    let hank = app.token("hank").await;
    let admin = app.token("root").await;
    let body = |cn: &str| json!({ "subject": format!("CN={cn}"), "profile": "device" });
    let first = app.issue(&hank, body("hank-1")).await;
    app.issue(&hank, body("hank-2")).await;
    // A revocation is a write too: issue, revoke, issue cannot loop for ever.
    let (status, revoked) = app
        .send(
            reqwest::Method::POST,
            &format!(
                "/api/v1/certificates/{}/revoke",
                first["id"].as_str().unwrap()
            ),
            &hank,
            json!({ "reason": "superseded" }),
        )
        .await;
    assert_eq!(status, 200, "{revoked}");
    let rows = app.written_rows().await;
    let r = app
        .post_raw("/api/v1/certificates", &hank, body("hank-3"))
        .await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");
    assert_eq!(
        app.written_rows().await,
        rows,
        "a refused issue writes nothing"
    );
    // The clock moves on a minute: the bucket has refilled.
    app.clock.advance(time::Duration::minutes(1));
    let hank = app.token("hank").await;
    app.issue(&hank, body("hank-3")).await;
    // An ADMIN is not limited by default.
    for i in 0..5 {
        app.issue(&admin, body(&format!("admin-{i}"))).await;
    }
}

#[tokio::test]
async fn a_user_at_quota_is_refused_before_an_rsa_key_is_made() {
    let app = TestApp::spawn_with(PEPPER, None, test_edge(), |settings| {
        settings.quota = Some(1);
    })
    .await;
    app.user("ivan", UserRole::User).await;
    let ivan = app.token("ivan").await;
    app.issue(
        &ivan,
        json!({ "subject": "CN=ivan-1", "profile": "device", "key_algorithm": "ecdsa-p256" }),
    )
    .await;
    let made = app.state.authority.issuer.leaf_keys_generated();
    let (status, problem) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/certificates",
            &ivan,
            json!({ "subject": "CN=ivan-2", "profile": "device", "key_algorithm": "rsa-4096" }),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "quota_exceeded");
    assert_eq!(
        app.state.authority.issuer.leaf_keys_generated(),
        made,
        "no RSA key was generated for a request the quota refuses"
    );
}

#[tokio::test]
async fn metrics_need_credentials_and_methods_cannot_grow_the_labels() {
    let mut edge = (*test_edge()).clone();
    edge.metrics_token = Some(zeroize::Zeroizing::new("prometheus-scrape-token-1".into()));
    let app = TestApp::spawn_with(PEPPER, None, Arc::new(edge), |_| {}).await;
    app.user("judy", UserRole::User).await;
    app.user("kim", UserRole::Admin).await;

    let scrape = |token: Option<String>| {
        let mut request = app.http.get(app.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    let r = scrape(None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(scrape(Some("wrong".into())).await.unwrap().status(), 401);
    let user = app.token("judy").await;
    assert_eq!(scrape(Some(user)).await.unwrap().status(), 403);
    let admin = app.token("kim").await;
    assert_eq!(scrape(Some(admin)).await.unwrap().status(), 200);

    // Made-up methods, one of them huge, are all counted as OTHER.
    let huge = "Q".repeat(4000);
    for method in ["FOO", "BAR", "PROPFIND", huge.as_str()] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let _ = app
            .http
            .request(method, app.url("/api/v1/cas"))
            .send()
            .await
            .unwrap();
    }
    let text = scrape(Some("prometheus-scrape-token-1".into()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("method=\"OTHER\""), "no OTHER series");
    for made_up in ["FOO", "BAR", "PROPFIND", "QQQQ"] {
        assert!(
            !text.contains(&format!("method=\"{made_up}")),
            "{made_up} became a label"
        );
    }
}

#[tokio::test]
async fn a_stalled_body_gets_408_and_frees_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut edge = (*test_edge()).clone();
    edge.body_timeout = std::time::Duration::from_secs(1);
    let app = TestApp::spawn_with(PEPPER, None, Arc::new(edge), |_| {}).await;
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"username\":",
        )
        .await
        .unwrap();
    // The rest never comes.
    let mut response = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        stream.read_to_end(&mut response),
    )
    .await;
    assert!(read.is_ok(), "the server never answered a stalled body");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"code\":\"body_timeout\""), "{text}");
}
