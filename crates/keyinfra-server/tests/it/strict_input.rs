//! Issue 16, strict input: names and keys from a CSR follow the request's rules, revocation
//! reasons and dates are checked, revoked keys are not exported, PKCS#12 PINs and
//! iterations, and which CA may sign leaves. Each refusal is a 4xx problem with a stable
//! code that names no database object, and writes nothing.

use keyinfra_core::issuer::{IssueRequest, KeySource};
use keyinfra_core::{Clock, CoreError, OsRandom, Principal};
use keyinfra_db::UserRole;
use reqwest::Method;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::openssl::{Scratch, openssl_ok};
use crate::support::TestApp;

async fn admin_app() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let token = app.token("root").await;
    (app, token)
}

/// A CSR made by openssl with a fresh P-256 key (or `key`, a PEM key file), `subject` and
/// `extra` arguments (e.g. `-addext`).
fn csr(dir: &Scratch, name: &str, key: Option<&str>, subject: &str, extra: &[&str]) -> String {
    let out = dir.path(&format!("{name}.csr"));
    let fresh_key = dir.path(&format!("{name}.key"));
    let mut args = vec!["req", "-new", "-utf8", "-subj", subject, "-out", &out];
    match key {
        Some(key) => args.extend(["-key", key]),
        None => args.extend([
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &fresh_key,
        ]),
    }
    args.extend(extra);
    openssl_ok(&args);
    String::from_utf8(dir.read(&format!("{name}.csr"))).unwrap()
}

fn dns_sans(names: impl IntoIterator<Item = String>) -> String {
    let list: Vec<String> = names.into_iter().map(|n| format!("DNS:{n}")).collect();
    format!("subjectAltName={}", list.join(","))
}

/// Sends a request that must be refused with `status` and `code`, without naming a
/// database object.
async fn refused(app: &TestApp, token: &str, method: Method, path: &str, body: Value) -> Value {
    let (status, problem) = app.send(method, path, token, body).await;
    assert!((400..500).contains(&status), "{path}: {status} {problem}");
    let text = problem.to_string();
    for internal in [
        "certificates_",
        "_sans_valid",
        "constraint ",
        "keyinfra_",
        "SQLSTATE",
    ] {
        assert!(!text.contains(internal), "{text}");
    }
    assert_eq!(problem["status"], status);
    problem
}

async fn issue_refused(app: &TestApp, token: &str, body: Value, code: &str) -> Value {
    let problem = refused(app, token, Method::POST, "/api/v1/certificates", body).await;
    assert_eq!(
        (problem["status"].as_u64(), problem["code"].as_str()),
        (Some(422), Some(code)),
        "{problem}"
    );
    problem
}

#[tokio::test]
async fn a_csrs_sans_obey_the_requests_limits_and_repeats_are_refused() {
    let (app, admin) = admin_app().await;
    let dir = Scratch::new();
    let exactly_100 = csr(
        &dir,
        "hundred",
        None,
        "/CN=hundred",
        &[
            "-addext",
            &dns_sans((0..100).map(|i| format!("h{i}.ex.net"))),
        ],
    );
    let cert = app.issue(&admin, json!({ "csr": exactly_100 })).await;
    assert_eq!(cert["san"].as_array().unwrap().len(), 100);

    let before = app.written_rows().await;
    let over_150 = csr(
        &dir,
        "many",
        None,
        "/CN=many",
        &[
            "-addext",
            &dns_sans((0..150).map(|i| format!("h{i}.ex.net"))),
        ],
    );
    let problem = issue_refused(&app, &admin, json!({ "csr": over_150 }), "invalid_san").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("at most 100"),
        "{problem}"
    );
    // 1,100 got as far as the database's CHECK constraint, whose name was in the answer.
    let over_1100 = csr(
        &dir,
        "huge",
        None,
        "/CN=huge",
        &["-addext", &dns_sans((0..1100).map(|i| format!("h{i}.ex")))],
    );
    issue_refused(&app, &admin, json!({ "csr": over_1100 }), "invalid_san").await;
    // The same name three times (and the same address twice, written two ways).
    for (name, sans) in [
        (
            "thrice",
            "subjectAltName=DNS:ap.example.net,DNS:ap.example.net,DNS:AP.example.net",
        ),
        (
            "address",
            "subjectAltName=IP:2001:db8::1,DNS:ap.example.net,IP:2001:db8:0:0::1",
        ),
    ] {
        let repeated = csr(&dir, name, None, "/CN=ap", &["-addext", sans]);
        let problem = issue_refused(&app, &admin, json!({ "csr": repeated }), "invalid_san").await;
        assert!(
            problem["detail"]
                .as_str()
                .unwrap()
                .contains("more than once"),
            "{problem}"
        );
    }
    assert_eq!(
        app.written_rows().await,
        before,
        "a refused request wrote rows"
    );
}

#[tokio::test]
async fn subjects_refuse_invisible_characters_multi_valued_rdns_and_second_cns() {
    let (app, admin) = admin_app().await;
    let dir = Scratch::new();
    let before = app.written_rows().await;
    for (name, subject, extra) in [
        (
            "multi",
            "/O=Example/CN=a+serialNumber=1",
            &["-multivalue-rdn"][..],
        ),
        ("two-cns", "/CN=a.example.net/CN=b.example.net", &[][..]),
        ("rlo", "/CN=invoice\u{202E}fdp.exe", &[][..]),
        ("zwsp", "/O=Pay\u{200B}Pal/CN=a", &[][..]),
    ] {
        let request = csr(&dir, name, None, subject, extra);
        issue_refused(&app, &admin, json!({ "csr": request }), "invalid_subject").await;
    }
    for subject in [
        "CN=invoice\u{202E}fdp.exe",
        "CN=pay\u{200B}pal",
        "CN=a,CN=b",
    ] {
        issue_refused(
            &app,
            &admin,
            json!({ "subject": subject }),
            "invalid_subject",
        )
        .await;
    }
    for san in ["pay\u{200B}pal.example", "a\u{202E}.example"] {
        issue_refused(
            &app,
            &admin,
            json!({ "subject": "CN=a", "san": [san] }),
            "invalid_san",
        )
        .await;
    }
    assert_eq!(
        app.written_rows().await,
        before,
        "a refused request wrote rows"
    );
}

#[tokio::test]
async fn rsa_keys_with_a_public_exponent_other_than_65537_are_refused() {
    let (app, admin) = admin_app().await;
    let dir = Scratch::new();
    for e in ["3", "65537"] {
        let key = dir.path(&format!("e{e}.key"));
        openssl_ok(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-pkeyopt",
            &format!("rsa_keygen_pubexp:{e}"),
            "-out",
            &key,
        ]);
        let request = csr(&dir, &format!("e{e}"), Some(&key), "/CN=rsa", &[]);
        if e == "65537" {
            let cert = app.issue(&admin, json!({ "csr": request })).await;
            assert_eq!(cert["key_algorithm"], "rsa-2048");
        } else {
            let before = app.written_rows().await;
            let problem =
                issue_refused(&app, &admin, json!({ "csr": request }), "unsupported_key").await;
            assert!(problem["detail"].as_str().unwrap().contains("65537"));
            assert_eq!(app.written_rows().await, before);
        }
    }
}

#[tokio::test]
async fn revocation_reasons_and_invalidity_dates_are_checked() {
    let (app, admin) = admin_app().await;
    let cert = app.issue(&admin, json!({"subject": "CN=dev"})).await;
    let path = format!(
        "/api/v1/certificates/{}/revoke",
        cert["id"].as_str().unwrap()
    );
    let not_before = OffsetDateTime::parse(cert["not_before"].as_str().unwrap(), &Rfc3339).unwrap();
    let at = |t: OffsetDateTime| t.format(&Rfc3339).unwrap();
    let now = app.clock.now();
    let before = app.written_rows().await;
    for (body, code) in [
        (json!({"reason": "cACompromise"}), "invalid_reason"),
        (
            json!({"reason": "keyCompromise", "invalidity_date": at(not_before - time::Duration::seconds(1))}),
            "invalid_invalidity_date",
        ),
        (
            json!({"reason": "keyCompromise", "invalidity_date": at(now + time::Duration::hours(1))}),
            "invalid_invalidity_date",
        ),
    ] {
        let problem = refused(&app, &admin, Method::POST, &path, body.clone()).await;
        assert_eq!(
            (problem["status"].as_u64(), problem["code"].as_str()),
            (Some(422), Some(code)),
            "{body}: {problem}"
        );
    }
    assert_eq!(
        app.written_rows().await,
        before,
        "a refused revocation wrote rows"
    );
    // Between notBefore and now: accepted.
    let (status, revoked) = app
        .send(
            Method::POST,
            &path,
            &admin,
            json!({"reason": "keyCompromise", "invalidity_date": at(not_before)}),
        )
        .await;
    assert_eq!((status, revoked["status"].as_str()), (200, Some("REVOKED")));
}

#[tokio::test]
async fn a_revoked_certificates_key_is_not_exported_to_anyone() {
    let (app, admin) = admin_app().await;
    app.user("alice", UserRole::User).await;
    let alice = app.token("alice").await;
    let cert = app.issue(&alice, json!({"subject": "CN=alice-dev"})).await;
    let id = cert["id"].as_str().unwrap();
    let export = format!("/api/v1/certificates/{id}/pkcs12");
    let pin = json!({"pin": "s3cret-PIN"});
    assert_eq!(
        app.post_raw(&export, &alice, pin.clone()).await.status(),
        200
    );
    let (status, _) = app
        .send(
            Method::POST,
            &format!("/api/v1/certificates/{id}/revoke"),
            &alice,
            json!({"reason": "keyCompromise"}),
        )
        .await;
    assert_eq!(status, 200);
    for token in [&alice, &admin] {
        let problem = refused(&app, token, Method::POST, &export, pin.clone()).await;
        assert_eq!(
            (problem["status"].as_u64(), problem["code"].as_str()),
            (Some(409), Some("certificate_revoked")),
            "{problem}"
        );
    }
    let (_, audit) = app
        .get("/api/v1/audit?action=certificate.exported", &admin)
        .await;
    assert_eq!(
        audit["items"].as_array().unwrap().len(),
        1,
        "only the first export"
    );
}

#[tokio::test]
async fn a_modern_pkcs12_needs_an_8_character_pin_and_200000_iterations() {
    let (app, admin) = admin_app().await;
    let cert = app.issue(&admin, json!({"subject": "CN=dev"})).await;
    let export = format!(
        "/api/v1/certificates/{}/pkcs12",
        cert["id"].as_str().unwrap()
    );
    for body in [
        json!({"pin": "123456"}),
        json!({"pin": "1234567", "compat": "modern"}),
        json!({"pin": "12345", "compat": "legacy"}),
    ] {
        let problem = refused(&app, &admin, Method::POST, &export, body.clone()).await;
        assert_eq!(problem["code"], "invalid_pin", "{body}");
        assert!(!problem.to_string().contains(body["pin"].as_str().unwrap()));
    }
    let dir = Scratch::new();
    for (compat, pin, iterations) in [
        ("modern", "12345678", "Iteration 200000"),
        ("legacy", "123456", "Iteration 10000"),
    ] {
        let response = app
            .post_raw(&export, &admin, json!({"pin": pin, "compat": compat}))
            .await;
        assert_eq!(response.status(), 200, "{compat}");
        let file = dir.write(&format!("{compat}.p12"), response.bytes().await.unwrap());
        let info = openssl_ok(&[
            "pkcs12",
            "-info",
            "-noout",
            "-passin",
            &format!("pass:{pin}"),
            "-in",
            &file,
        ]);
        // The MAC, the certificate bag and the key bag.
        assert_eq!(info.matches(iterations).count(), 3, "{compat}: {info}");
        if compat == "modern" {
            assert!(info.contains("MAC: sha256, Iteration 200000"), "{info}");
            assert!(info.contains("PBKDF2, AES-256-CBC, Iteration 200000, PRF hmacWithSHA256"));
        }
    }
}

/// Another root with an issuing CA under it, made by openssl and imported with their keys.
fn openssl_hierarchy(dir: &Scratch) -> [(String, String); 2] {
    let key = |name: &str| {
        let path = dir.path(name);
        openssl_ok(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &path,
        ]);
        path
    };
    let (root_key, issuing_key) = (key("root.key"), key("issuing.key"));
    let root_ext = dir.write(
        "root.ext",
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n",
    );
    let issuing_ext = dir.write(
        "issuing.ext",
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    );
    let root_csr = csr(dir, "root", Some(&root_key), "/CN=Other Root", &[]);
    let _ = root_csr;
    let root_pem = dir.path("root.pem");
    openssl_ok(&[
        "x509",
        "-req",
        "-in",
        &dir.path("root.csr"),
        "-signkey",
        &root_key,
        "-days",
        "7300",
        "-extfile",
        &root_ext,
        "-out",
        &root_pem,
    ]);
    csr(
        dir,
        "issuing",
        Some(&issuing_key),
        "/CN=Other Issuing CA",
        &[],
    );
    let issuing_pem = dir.path("issuing.pem");
    openssl_ok(&[
        "x509",
        "-req",
        "-in",
        &dir.path("issuing.csr"),
        "-CA",
        &root_pem,
        "-CAkey",
        &root_key,
        "-set_serial",
        "4660",
        "-days",
        "3650",
        "-extfile",
        &issuing_ext,
        "-out",
        &issuing_pem,
    ]);
    let read = |p: &str| String::from_utf8(std::fs::read(p).unwrap()).unwrap();
    [
        (read(&root_pem), read(&root_key)),
        (read(&issuing_pem), read(&issuing_key)),
    ]
}

#[tokio::test]
async fn only_an_admin_names_the_ca_and_no_root_signs_leaves_once_an_issuing_ca_exists() {
    let (app, admin) = admin_app().await;
    app.user("alice", UserRole::User).await;
    let alice = app.token("alice").await;
    let (first_root, _) = app.ca().await;
    // With only a root, the root issues (the default installation).
    let early = app.issue(&admin, json!({"subject": "CN=early"})).await;
    assert_eq!(early["ca_id"], first_root.as_str());
    // A USER may not choose the CA, not even the one it would get.
    let problem = refused(
        &app,
        &alice,
        Method::POST,
        "/api/v1/certificates",
        json!({"subject": "CN=a", "ca_id": first_root}),
    )
    .await;
    assert_eq!(
        (problem["status"].as_u64(), problem["code"].as_str()),
        (Some(403), Some("forbidden"))
    );

    let dir = Scratch::new();
    let [(root_pem, root_key), (issuing_pem, issuing_key)] = openssl_hierarchy(&dir);
    let authority = &app.state.authority;
    let other_root = authority
        .ca_setup
        .import(
            &app.db,
            "other-root",
            root_pem.as_bytes(),
            Some(&root_key),
            &mut OsRandom,
        )
        .await
        .unwrap();
    let issuing = authority
        .ca_setup
        .import(
            &app.db,
            "other-issuing",
            issuing_pem.as_bytes(),
            Some(&issuing_key),
            &mut OsRandom,
        )
        .await
        .unwrap();
    assert_eq!(issuing.parent_ca_id, Some(other_root.id));

    // Now an issuing CA exists: by default it signs, for everyone.
    let mine = app.issue(&alice, json!({"subject": "CN=alice-dev"})).await;
    assert_eq!(mine["ca_id"], issuing.id.to_string());
    let before = app.written_rows().await;
    let problem = refused(
        &app,
        &alice,
        Method::POST,
        "/api/v1/certificates",
        json!({"subject": "CN=a", "ca_id": issuing.id}),
    )
    .await;
    assert_eq!(problem["code"], "forbidden");
    // An ADMIN may name the issuing CA, but neither root.
    for root in [first_root.clone(), other_root.id.to_string()] {
        issue_refused(
            &app,
            &admin,
            json!({"subject": "CN=a", "ca_id": root}),
            "root_ca_cannot_issue",
        )
        .await;
    }
    // Nor may the operator, nor may a renewal re-sign under a root.
    let operator = authority
        .issuer
        .issue(
            &app.db,
            &Principal::Operator,
            IssueRequest {
                key: KeySource::Generate(keyinfra_pki::KeyAlgorithm::EcdsaP256),
                subject: Some("CN=operator".into()),
                san: None,
                profile: "device".into(),
                validity_days: None,
                owner_id: None,
                ca_id: Some(other_root.id),
                policy_id: None,
            },
            &mut OsRandom,
        )
        .await;
    assert!(
        matches!(
            operator,
            Err(CoreError::Invalid {
                code: keyinfra_core::ErrorCode::RootCaCannotIssue,
                ..
            })
        ),
        "{operator:?}"
    );
    let problem = refused(
        &app,
        &admin,
        Method::POST,
        &format!(
            "/api/v1/certificates/{}/renew",
            early["id"].as_str().unwrap()
        ),
        json!({}),
    )
    .await;
    assert_eq!(
        (problem["status"].as_u64(), problem["code"].as_str()),
        (Some(409), Some("root_ca_cannot_issue"))
    );
    assert_eq!(
        app.written_rows().await,
        before,
        "a refused request wrote rows"
    );
    let chosen = app
        .issue(&admin, json!({"subject": "CN=b", "ca_id": issuing.id}))
        .await;
    assert_eq!(chosen["ca_id"], issuing.id.to_string());
}
