//! Revocation and CRLs, checked with `openssl crl` and `openssl verify -crl_check`.

use std::time::Duration;

use keyinfra_db::UserRole;
use reqwest::Method;
use serde_json::{Value, json};

use crate::openssl::{Scratch, openssl, openssl_ok};
use crate::support::TestApp;

/// The CRL number `openssl crl -text` shows.
fn crl_number(text: &str) -> i64 {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.contains("X509v3 CRL Number") {
            return lines.next().unwrap().trim().parse().unwrap();
        }
    }
    panic!("no CRL number in\n{text}");
}

/// Fetches the CRL (DER) until its number reaches `at_least`: publishing runs in the
/// background, coalescing bursts.
async fn crl_text(
    app_base: &str,
    http: &reqwest::Client,
    ca_id: &str,
    dir: &Scratch,
    at_least: i64,
) -> String {
    for _ in 0..100 {
        let response = http
            .get(format!("{app_base}/crl/{ca_id}.crl"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "application/pkix-crl");
        let file = dir.write("crl.der", response.bytes().await.unwrap());
        let text = openssl_ok(&["crl", "-inform", "DER", "-in", &file, "-noout", "-text"]);
        if crl_number(&text) >= at_least {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the CRL never reached number {at_least}");
}

#[tokio::test]
async fn a_revoked_certificate_is_on_the_crl_with_its_reason_and_openssl_rejects_it() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    app.user("owner", UserRole::User).await;
    let admin = app.token("root").await;
    let owner = app.token("owner").await;
    let (ca_id, ca_pem) = app.ca().await;
    let dir = Scratch::new();
    let ca_file = dir.write("ca.pem", &ca_pem);
    // Devices fetch CRLs from the public listener (plain HTTP, no token).
    let initial = crl_text(&app.public_base, &app.http, &ca_id, &dir, 1).await;
    assert!(initial.contains("No Revoked Certificates"), "{initial}");
    let initial_number = crl_number(&initial);

    let revoked = app
        .issue(&owner, json!({"subject": "CN=stolen-router"}))
        .await;
    let kept = app
        .issue(&owner, json!({"subject": "CN=good-router"}))
        .await;
    let id = revoked["id"].as_str().unwrap();
    // The invalidity date lies between the certificate's notBefore and now (one minute
    // after notBefore, which is back-dated by five).
    let not_before = time::OffsetDateTime::parse(
        revoked["not_before"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let invalid_since = not_before + time::Duration::minutes(1);
    let invalid_since_text = invalid_since
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    // openssl prints it as "Jan  2 03:04:05 2026 GMT".
    let invalid_since_openssl = invalid_since
        .format(time::macros::format_description!(
            "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
        ))
        .unwrap();
    // The owner revokes their own certificate.
    let (status, body) = app
        .send(
            Method::POST,
            &format!("/api/v1/certificates/{id}/revoke"),
            &owner,
            json!({"reason": "keyCompromise", "invalidity_date": invalid_since_text}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "REVOKED");
    let (status, again) = app
        .send(
            Method::POST,
            &format!("/api/v1/certificates/{id}/revoke"),
            &admin,
            json!({"reason": "unspecified"}),
        )
        .await;
    assert_eq!(
        (status, again["code"].as_str().unwrap()),
        (409, "already_revoked")
    );

    let text = crl_text(
        &app.public_base,
        &app.http,
        &ca_id,
        &dir,
        initial_number + 1,
    )
    .await;
    assert!(text.contains("Version 2"), "{text}");
    assert!(
        text.contains(&format!(
            "Serial Number: {}",
            revoked["serial_number"].as_str().unwrap()
        )),
        "{text}"
    );
    assert!(!text.contains(kept["serial_number"].as_str().unwrap()));
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(
        text.contains("Invalidity Date") && text.contains(&invalid_since_openssl),
        "{text}"
    );
    assert!(crl_number(&text) > initial_number);

    // The PEM form, and openssl's own revocation check.
    let pem = app
        .http
        .get(app.url(&format!("/crl/{ca_id}.pem")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pem.starts_with("-----BEGIN X509 CRL-----"));
    let crl_file = dir.write("crl.pem", &pem);
    let revoked_file = dir.write("revoked.pem", revoked["certificate_pem"].as_str().unwrap());
    let kept_file = dir.write("kept.pem", kept["certificate_pem"].as_str().unwrap());
    let (ok, out) = openssl(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        &crl_file,
        "-CAfile",
        &ca_file,
        &revoked_file,
    ]);
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let out = openssl_ok(&[
        "verify",
        "-crl_check",
        "-CRLfile",
        &crl_file,
        "-CAfile",
        &ca_file,
        &kept_file,
    ]);
    assert!(out.contains(": OK"), "{out}");

    let (_, audit) = app
        .get("/api/v1/audit?action=certificate.revoked", &admin)
        .await;
    assert_eq!(audit["items"][0]["details"]["reason"], "keyCompromise");
    // A future invalidity date is refused.
    let (status, problem) = app
        .send(
            Method::POST,
            &format!(
                "/api/v1/certificates/{}/revoke",
                kept["id"].as_str().unwrap()
            ),
            &owner,
            json!({"reason": "keyCompromise", "invalidity_date": "2999-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str().unwrap()),
        (422, "invalid_invalidity_date")
    );
}

/// A path with each `{parameter}` filled in (with a UUID: no route may answer anyway).
fn concrete(template: &str) -> String {
    let mut path = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        path.push_str(&rest[..start]);
        path.push_str(&uuid::Uuid::new_v4().to_string());
        rest = &rest[rest[start..].find('}').unwrap() + start + 1..];
    }
    path.push_str(rest);
    path
}

/// The public listener (`App::public_router`, which `serve` puts on plain HTTP when TLS is
/// on) gives CA certificates, CRLs, OCSP and SCEP to anyone, and nothing else: every other
/// route in the OpenAPI document, the UI, the document itself and /metrics get its 404
/// problem, even with an ADMIN's token.
#[tokio::test]
async fn the_public_listener_serves_ca_certificates_and_crls_to_anyone_and_nothing_else() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let (ca_id, ca_pem) = app.ca().await;
    let public = |path: &str| format!("{}{path}", app.public_base);

    for (path, content_type) in [
        (format!("/ca/{ca_id}.pem"), "application/x-pem-file"),
        (format!("/ca/{ca_id}.crt"), "application/pkix-cert"),
        (format!("/crl/{ca_id}.crl"), "application/pkix-crl"),
        (format!("/crl/{ca_id}.pem"), "application/x-pem-file"),
    ] {
        let response = app.http.get(public(&path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        let served = response.bytes().await.unwrap();
        let on_main = app.http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(served, on_main.bytes().await.unwrap(), "{path}");
        if path.starts_with("/ca/") && path.ends_with(".pem") {
            assert_eq!(String::from_utf8_lossy(&served).trim(), ca_pem.trim());
        }
    }
    // Its routes still answer like the API's: an unknown CA, a wrong method.
    let response = app
        .http
        .get(public(&format!("/crl/{}.crl", uuid::Uuid::new_v4())))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = app
        .http
        .post(public(&format!("/crl/{ca_id}.crl")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );

    let openapi: Value = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = openapi["paths"].as_object().unwrap();
    // The public routes are part of the whole surface and its document.
    assert!(paths.contains_key("/ca/{file}") && paths.contains_key("/crl/{file}"));
    assert!(paths.contains_key("/ocsp") && paths.contains_key("/ocsp/{request}"));
    assert!(paths.contains_key("/scep") && paths.contains_key("/cgi-bin/pkiclient.exe"));
    let mut elsewhere: Vec<(Method, String)> = [
        (Method::GET, "/api/v1/openapi.json"),
        (Method::GET, "/metrics"),
        (Method::GET, "/ui"),
        (Method::GET, "/ui/login"),
        (Method::POST, "/ui/login"),
        (Method::GET, "/"),
        (Method::GET, "/ca"),
        (Method::GET, "/crl"),
    ]
    .into_iter()
    .map(|(method, path)| (method, path.to_owned()))
    .collect();
    for (template, item) in paths {
        if template.starts_with("/ca/")
            || template.starts_with("/crl/")
            || template.starts_with("/ocsp")
            || template == "/scep"
            || template == "/cgi-bin/pkiclient.exe"
        {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            if let Ok(method) = Method::from_bytes(method.to_uppercase().as_bytes())
                && ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str())
            {
                elsewhere.push((method, concrete(template)));
            }
        }
    }
    assert!(elsewhere.len() > 25, "{elsewhere:?}");
    for (method, path) in elsewhere {
        let response = app
            .http
            .request(method.clone(), public(&path))
            .bearer_auth(&admin)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{method} {path}"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "not_found", "{method} {path}");
        assert!(
            problem["detail"].as_str().unwrap().contains("use HTTPS"),
            "{method} {path}: {problem}"
        );
    }
}

#[tokio::test]
async fn concurrent_revocations_on_two_servers_give_distinct_increasing_crl_numbers() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let replica = app.replica().await;
    let (ca_id, _) = app.ca().await;
    let mut ids = Vec::new();
    for n in 0..10 {
        let cert = app
            .issue(&admin, json!({"subject": format!("CN=r{n}")}))
            .await;
        ids.push(cert["id"].as_str().unwrap().to_owned());
    }
    // Half through each server, all at once.
    let mut tasks = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let base = if n % 2 == 0 {
            app.base.clone()
        } else {
            replica.base.clone()
        };
        let http = app.http.clone();
        let token = admin.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            http.post(format!("{base}/api/v1/certificates/{id}/revoke"))
                .bearer_auth(token)
                .json(&json!({"reason": "superseded"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    // And both publish directly, at once, as well as their background publishers.
    let (a, b) = tokio::join!(
        app.state
            .authority
            .crls
            .publish_crl(&app.db, ca_id.parse().unwrap()),
        replica
            .state
            .authority
            .crls
            .publish_crl(&replica.state.db, ca_id.parse().unwrap()),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.crl_number, b.crl_number);
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Numbers are distinct and increase with time; the newest CRL has all 10.
    let dir = Scratch::new();
    let rows = app.tdb.scalar_i64("SELECT count(*) FROM crls").await;
    assert!(rows >= 3);
    let distinct = app
        .tdb
        .scalar_i64("SELECT count(DISTINCT crl_number) FROM crls")
        .await;
    assert_eq!(distinct, rows);
    let out_of_order = app
        .tdb
        .scalar_i64(
            "SELECT count(*) FROM crls a JOIN crls b ON a.ca_id = b.ca_id
             WHERE a.crl_number < b.crl_number AND a.this_update > b.this_update",
        )
        .await;
    assert_eq!(out_of_order, 0);
    let newest = app
        .tdb
        .scalar_i64("SELECT max(crl_number) FROM crls WHERE base_crl_number IS NULL")
        .await;
    let text = crl_text(&app.base, &app.http, &ca_id, &dir, newest).await;
    assert_eq!(text.matches("Serial Number:").count(), 10, "{text}");
}

#[tokio::test]
async fn a_burst_of_revocations_is_one_rebuild_and_stale_crls_are_reissued_before_next_update() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let (ca_id, _) = app.ca().await;
    let ca: uuid::Uuid = ca_id.parse().unwrap();
    let mut ids = Vec::new();
    for n in 0..8 {
        let cert = app
            .issue(&admin, json!({"subject": format!("CN=burst-{n}")}))
            .await;
        ids.push(cert["id"].as_str().unwrap().to_owned());
    }
    let before = app.tdb.scalar_i64("SELECT max(crl_number) FROM crls").await;
    let paths: Vec<String> = ids
        .iter()
        .map(|id| format!("/api/v1/certificates/{id}/revoke"))
        .collect();
    let revocations = paths.iter().map(|path| {
        app.send(
            Method::POST,
            path,
            &admin,
            json!({"reason": "cessationOfOperation"}),
        )
    });
    for (status, body) in futures_util::future::join_all(revocations).await {
        assert_eq!(status, 200, "{body}");
    }
    let dir = Scratch::new();
    let text = crl_text(&app.base, &app.http, &ca_id, &dir, before + 1).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let text = if text.matches("Serial Number:").count() == 8 {
        text
    } else {
        let newest = app
            .tdb
            .scalar_i64("SELECT max(crl_number) FROM crls WHERE base_crl_number IS NULL")
            .await;
        crl_text(&app.base, &app.http, &ca_id, &dir, newest).await
    };
    assert_eq!(text.matches("Serial Number:").count(), 8, "{text}");
    // Each rebuild is a complete CRL and its delta: two numbers.
    let rebuilds = (app.tdb.scalar_i64("SELECT max(crl_number) FROM crls").await - before) / 2;
    assert!(
        (1..8).contains(&rebuilds),
        "8 revocations at once took {rebuilds} rebuilds"
    );

    // nextUpdate - thisUpdate is the configured validity (7 days by default).
    let latest = app
        .state
        .authority
        .crls
        .latest_crl(&app.db, ca)
        .await
        .unwrap();
    assert_eq!(
        latest.next_update - latest.this_update,
        time::Duration::days(7)
    );
    // Fresh CRLs are left alone; one older than the republish age (1 day) is re-issued,
    // well before its nextUpdate.
    assert_eq!(
        app.state
            .authority
            .crls
            .refresh_stale_crls(&app.db)
            .await
            .unwrap(),
        0
    );
    app.clock.advance(time::Duration::hours(25));
    assert_eq!(
        app.state
            .authority
            .crls
            .refresh_stale_crls(&app.db)
            .await
            .unwrap(),
        1
    );
    let refreshed = app
        .state
        .authority
        .crls
        .latest_crl(&app.db, ca)
        .await
        .unwrap();
    // The delta between them took a number.
    assert_eq!(refreshed.crl_number, latest.crl_number + 2);
    assert!(refreshed.this_update >= latest.this_update + time::Duration::hours(25));
    assert!(refreshed.this_update < latest.next_update);
    // Only the newest CRLs are kept: three complete ones and three deltas.
    assert!(
        app.tdb
            .scalar_i64("SELECT count(*) FROM crls WHERE base_crl_number IS NULL")
            .await
            <= 3
    );
    assert!(app.tdb.scalar_i64("SELECT count(*) FROM crls").await <= 6);
}

/// Fetches `path` from the public listener until `openssl crl -text` of it shows a CRL
/// number of at least `at_least`.
async fn fetch_crl_at_least(
    app: &TestApp,
    path: &str,
    dir: &Scratch,
    name: &str,
    at_least: i64,
) -> (String, String) {
    for _ in 0..100 {
        let response = app
            .http
            .get(format!("{}{path}", app.public_base))
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            assert_eq!(response.headers()["content-type"], "application/pkix-crl");
            let file = dir.write(name, response.bytes().await.unwrap());
            let text = openssl_ok(&["crl", "-inform", "DER", "-in", &file, "-noout", "-text"]);
            if crl_number(&text) >= at_least {
                return (file, text);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never reached number {at_least}");
}

#[tokio::test]
async fn a_delta_crl_carries_revocations_made_after_its_base_and_openssl_uses_it() {
    // The complete CRL is re-issued at most hourly: after the first revocation only the
    // delta changes, which is what the delta is for.
    let app = TestApp::spawn_with(
        crate::support::PEPPER,
        None,
        crate::support::test_edge(),
        |s| s.crl_full_min_interval = time::Duration::hours(1),
    )
    .await;
    app.user("owner", UserRole::User).await;
    let owner = app.token("owner").await;
    let (ca_id, ca_pem) = app.ca().await;
    let dir = Scratch::new();
    let ca_file = dir.write("ca.pem", &ca_pem);
    let (_, base_text) =
        fetch_crl_at_least(&app, &format!("/crl/{ca_id}.crl"), &dir, "base.der", 1).await;
    let base_number = crl_number(&base_text);
    // The complete CRL points at the delta; the delta names its base, critically.
    let delta_url = format!("{}/crl/{ca_id}/delta.crl", app.base);
    assert!(base_text.contains("X509v3 Freshest CRL"), "{base_text}");
    assert!(
        base_text.contains(&format!("URI:{delta_url}")),
        "{base_text}"
    );
    let (_, first_delta) = fetch_crl_at_least(
        &app,
        &format!("/crl/{ca_id}/delta.crl"),
        &dir,
        "delta0.der",
        base_number + 1,
    )
    .await;
    assert!(
        first_delta.contains("X509v3 Delta CRL Indicator: critical"),
        "{first_delta}"
    );
    assert!(
        first_delta.contains(&format!("{base_number}")),
        "{first_delta}"
    );
    assert!(
        first_delta.contains("No Revoked Certificates"),
        "{first_delta}"
    );

    let late = app
        .issue(&owner, json!({"subject": "CN=late-router"}))
        .await;
    let kept = app
        .issue(&owner, json!({"subject": "CN=kept-router"}))
        .await;
    let late_file = dir.write("late.pem", late["certificate_pem"].as_str().unwrap());
    let kept_file = dir.write("kept.pem", kept["certificate_pem"].as_str().unwrap());
    // New certificates name the delta CRL.
    let leaf_text = openssl_ok(&["x509", "-in", &late_file, "-noout", "-text"]);
    assert!(leaf_text.contains("X509v3 Freshest CRL"), "{leaf_text}");
    assert!(
        leaf_text.contains(&format!("URI:{delta_url}")),
        "{leaf_text}"
    );

    let (status, body) = app
        .send(
            Method::POST,
            &format!(
                "/api/v1/certificates/{}/revoke",
                late["id"].as_str().unwrap()
            ),
            &owner,
            json!({"reason": "superseded"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (delta_file, delta_text) = fetch_crl_at_least(
        &app,
        &format!("/crl/{ca_id}/delta.crl"),
        &dir,
        "delta.der",
        base_number + 2,
    )
    .await;
    let late_serial = late["serial_number"].as_str().unwrap();
    assert!(
        delta_text.contains(&format!("Serial Number: {late_serial}")),
        "{delta_text}"
    );
    assert!(delta_text.contains("Superseded"), "{delta_text}");
    // The complete CRL was not re-issued (the hourly minimum), so it does not list it.
    let (base_file, base_again) =
        fetch_crl_at_least(&app, &format!("/crl/{ca_id}.crl"), &dir, "base2.der", 1).await;
    assert_eq!(crl_number(&base_again), base_number, "{base_again}");
    assert!(!base_again.contains(late_serial), "{base_again}");

    let verify = |cert: &str, deltas: bool| {
        let mut args = vec![
            "verify",
            "-crl_check",
            "-CAfile",
            &ca_file,
            "-CRLfile",
            &base_file,
        ];
        if deltas {
            args.extend(["-use_deltas", "-CRLfile", &delta_file]);
        }
        args.push(cert);
        openssl(&args)
    };
    let (ok, out) = verify(&late_file, true);
    assert!(!ok && out.contains("certificate revoked"), "{out}");
    let (ok, out) = verify(&kept_file, true);
    assert!(ok && out.contains(": OK"), "{out}");
    // Only the delta knew: without it the base alone says OK.
    let (ok, out) = verify(&late_file, false);
    assert!(ok && out.contains(": OK"), "{out}");

    // The PEM form, and what is not a delta CRL.
    let pem = app
        .http
        .get(format!("{}/crl/{ca_id}/delta.pem", app.public_base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pem.starts_with("-----BEGIN X509 CRL-----"), "{pem}");
    for path in [
        format!("/crl/{ca_id}/full.crl"),
        format!("/crl/{ca_id}/delta.der"),
        "/crl/not-a-ca/delta.crl".to_owned(),
        format!("/crl/{}/delta.crl", uuid::Uuid::new_v4()),
    ] {
        let response = app
            .http
            .get(format!("{}{path}", app.public_base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
}

#[tokio::test]
async fn by_default_a_revocation_re_issues_the_complete_crl_and_its_delta() {
    let app = TestApp::spawn().await;
    app.user("owner", UserRole::User).await;
    let owner = app.token("owner").await;
    let (ca_id, _) = app.ca().await;
    let dir = Scratch::new();
    let (_, before) =
        fetch_crl_at_least(&app, &format!("/crl/{ca_id}.crl"), &dir, "b.der", 1).await;
    let before = crl_number(&before);
    let cert = app.issue(&owner, json!({"subject": "CN=gone"})).await;
    let (status, _) = app
        .send(
            Method::POST,
            &format!(
                "/api/v1/certificates/{}/revoke",
                cert["id"].as_str().unwrap()
            ),
            &owner,
            json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(status, 200);
    let serial = cert["serial_number"].as_str().unwrap();
    // Numbers: the new complete CRL takes before + 2 (before + 1 was the first delta), and
    // its delta the one after.
    let (_, full) = fetch_crl_at_least(
        &app,
        &format!("/crl/{ca_id}.crl"),
        &dir,
        "f.der",
        before + 2,
    )
    .await;
    assert!(full.contains(serial), "{full}");
    let full_number = crl_number(&full);
    let (_, delta) = fetch_crl_at_least(
        &app,
        &format!("/crl/{ca_id}/delta.crl"),
        &dir,
        "d.der",
        full_number + 1,
    )
    .await;
    assert!(
        delta.contains(&format!(
            "Delta CRL Indicator: critical\n                {full_number}"
        )),
        "{delta}"
    );
    // The delta overlaps its base by an hour (clock skew between replicas), so it repeats
    // the revocation: harmless, and never missing one.
    assert!(delta.contains(serial), "{delta}");
    // Three of each kind are kept.
    let kinds = app
        .tdb
        .scalar_i64("SELECT count(*) FROM crls WHERE base_crl_number IS NOT NULL")
        .await;
    assert!((1..=3).contains(&kinds), "{kinds}");
}
