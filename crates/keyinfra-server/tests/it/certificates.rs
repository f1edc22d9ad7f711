//! The certificate lifecycle through the HTTP API, checked with the real openssl CLI.

use keyinfra_db::UserRole;
use reqwest::Method;
use serde_json::{Value, json};

use crate::openssl::{Scratch, openssl, openssl_ok};
use crate::support::TestApp;

const PIN: &str = "s3cret-PIN";

async fn admin_app() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let token = app.token("root").await;
    (app, token)
}

fn pem_of(cert: &Value) -> &str {
    cert["certificate_pem"].as_str().unwrap()
}

async fn export(app: &TestApp, token: &str, id: &str, compat: &str) -> reqwest::Response {
    app.post_raw(
        &format!("/api/v1/certificates/{id}/pkcs12"),
        token,
        json!({"pin": PIN, "compat": compat}),
    )
    .await
}

#[tokio::test]
async fn every_key_algorithm_issues_verifies_and_exports_in_both_pkcs12_modes() {
    let (app, admin) = admin_app().await;
    let (ca_id, ca_pem) = app.ca().await;
    let dir = Scratch::new();
    let ca_file = dir.write("ca.pem", &ca_pem);
    for (alg, key_text) in [
        ("ecdsa-p256", "prime256v1"),
        ("ecdsa-p384", "secp384r1"),
        ("ed25519", "ED25519"),
        ("rsa-2048", "(2048 bit)"),
        ("rsa-3072", "(3072 bit)"),
        ("rsa-4096", "(4096 bit)"),
    ] {
        let cert = app
            .issue(
                &admin,
                json!({
                    "subject": format!("CN=dev-{alg},O=Example,C=NL"),
                    "san": ["dev.example.net", "192.0.2.10", "2001:db8::10"],
                    "key_algorithm": alg,
                    "profile": "device",
                    "validity_days": 90
                }),
            )
            .await;
        assert_eq!(cert["key_algorithm"], alg);
        assert_eq!(cert["has_private_key"], true);
        assert_eq!(cert["status"], "ACTIVE");
        assert_eq!(cert["channel"], "api");
        assert_eq!(cert["version"], 1);
        let serial = cert["serial_number"].as_str().unwrap();
        assert!(
            serial.len() >= 16
                && serial
                    .chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()),
            "{serial}"
        );
        let leaf = dir.write(&format!("{alg}.pem"), pem_of(&cert));
        assert!(
            openssl_ok(&["verify", "-CAfile", &ca_file, &leaf]).contains(": OK"),
            "{alg}"
        );

        let text = openssl_ok(&["x509", "-in", &leaf, "-noout", "-text"]);
        for expected in [
            "X509v3 Subject Key Identifier",
            "X509v3 Authority Key Identifier",
            "X509v3 Basic Constraints: critical",
            "CA:FALSE",
            "X509v3 Key Usage: critical",
            "Digital Signature",
            "TLS Web Server Authentication, TLS Web Client Authentication",
            "DNS:dev.example.net, IP Address:192.0.2.10, IP Address:2001:DB8:0:0:0:0:0:10",
            &format!("URI:{}/crl/{ca_id}.crl", app.base),
            &format!("CA Issuers - URI:{}/ca/{ca_id}.crt", app.base),
            key_text,
        ] {
            assert!(
                text.contains(expected),
                "{alg}: {expected:?} missing in\n{text}"
            );
        }
        // keyEncipherment means RSA key transport: only on RSA keys.
        assert_eq!(
            text.contains("Key Encipherment"),
            alg.starts_with("rsa"),
            "{alg}\n{text}"
        );
        assert!(
            text.contains(&format!("Subject: C = NL, O = Example, CN = dev-{alg}")),
            "{text}"
        );

        let leaf_pub = openssl_ok(&["x509", "-in", &leaf, "-pubkey", "-noout"]);
        for (compat, marker) in [
            ("modern", "AES-256-CBC"),
            ("legacy", "pbeWithSHA1And3-KeyTripleDES-CBC"),
        ] {
            let response = export(&app, &admin, cert["id"].as_str().unwrap(), compat).await;
            assert_eq!(response.status(), 200, "{alg} {compat}");
            assert_eq!(response.headers()["content-type"], "application/x-pkcs12");
            let p12 = dir.write(
                &format!("{alg}-{compat}.p12"),
                response.bytes().await.unwrap(),
            );
            let pass = format!("pass:{PIN}");
            // No -legacy: OpenSSL 3 reads both files with its default provider.
            let info = openssl_ok(&["pkcs12", "-info", "-noout", "-passin", &pass, "-in", &p12]);
            assert!(info.contains(marker), "{alg} {compat}: {info}");
            let key_file = dir.path(&format!("{alg}-{compat}.key"));
            openssl_ok(&[
                "pkcs12", "-in", &p12, "-nocerts", "-nodes", "-passin", &pass, "-out", &key_file,
            ]);
            let key_pub = openssl_ok(&["pkey", "-in", &key_file, "-pubout"]);
            assert_eq!(
                key_pub, leaf_pub,
                "{alg} {compat}: the key does not match the certificate"
            );
            let certs = openssl_ok(&["pkcs12", "-in", &p12, "-nokeys", "-passin", &pass]);
            assert_eq!(
                certs.matches("BEGIN CERTIFICATE").count(),
                2,
                "leaf and CA: {certs}"
            );
            // The key carries the friendly name devices show (the certificate's CN).
            let key_bag = String::from_utf8(std::fs::read(&key_file).unwrap()).unwrap();
            assert!(
                key_bag.contains(&format!("friendlyName: dev-{alg}")),
                "{key_bag}"
            );
            let (ok, _) = openssl(&[
                "pkcs12",
                "-info",
                "-noout",
                "-passin",
                "pass:wrong-pin",
                "-in",
                &p12,
            ]);
            assert!(!ok, "a wrong PIN must not open the file");
        }
    }
    // Every export is audited with its compat mode (12 exports).
    let (_, audit) = app
        .get(
            "/api/v1/audit?action=certificate.exported&limit=100",
            &admin,
        )
        .await;
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 12);
    assert!(items.iter().any(|e| e["details"]["compat"] == "legacy"));
    assert!(
        items
            .iter()
            .all(|e| e["details"]["private_key_id"].is_string())
    );
    assert!(
        !audit.to_string().contains(PIN),
        "the PIN reached the audit log"
    );
}

fn make_csr(dir: &Scratch) -> String {
    let key = dir.path("device.key");
    let csr = dir.path("device.csr");
    openssl_ok(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &csr,
        "-subj",
        "/C=NL/O=Example/CN=ap-7",
        "-addext",
        "subjectAltName=DNS:ap-7.example.net,IP:10.0.0.7",
        "-addext",
        "nsComment=requested by the device",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
    ]);
    String::from_utf8(dir.read("device.csr")).unwrap()
}

#[tokio::test]
async fn a_csr_from_openssl_is_signed_and_the_profile_decides_the_extensions() {
    let (app, admin) = admin_app().await;
    let (_, ca_pem) = app.ca().await;
    let dir = Scratch::new();
    let ca_file = dir.write("ca.pem", &ca_pem);
    let csr = make_csr(&dir);
    let before = app
        .tdb
        .scalar_i64("SELECT count(*) FROM private_keys")
        .await;
    let cert = app
        .issue(
            &admin,
            json!({"csr": csr, "profile": "server", "validity_days": 30}),
        )
        .await;
    assert_eq!(cert["subject"], "CN=ap-7,O=Example,C=NL");
    assert_eq!(cert["san"], json!(["ap-7.example.net", "10.0.0.7"]));
    assert_eq!(cert["has_private_key"], false);
    assert_eq!(cert["key_algorithm"], "ecdsa-p256");
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT count(*) FROM private_keys")
            .await,
        before,
        "no private key is stored for a CSR"
    );
    let leaf = dir.write("leaf.pem", pem_of(&cert));
    assert!(openssl_ok(&["verify", "-CAfile", &ca_file, &leaf]).contains(": OK"));
    let text = openssl_ok(&["x509", "-in", &leaf, "-noout", "-text"]);
    assert!(
        text.contains("CA:FALSE") && !text.contains("CA:TRUE"),
        "{text}"
    );
    assert!(!text.contains("Netscape Comment"), "{text}");
    assert!(
        text.contains("TLS Web Server Authentication") && !text.contains("Client Authentication")
    );
    let csr_pub = openssl_ok(&["req", "-in", &dir.path("device.csr"), "-pubkey", "-noout"]);
    assert_eq!(
        openssl_ok(&["x509", "-in", &leaf, "-pubkey", "-noout"]),
        csr_pub
    );

    // The device key never reached the server: no PKCS#12.
    let response = export(&app, &admin, cert["id"].as_str().unwrap(), "modern").await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "no_private_key");

    // The request may override the CSR's names.
    let overridden = app
        .issue(
            &admin,
            json!({"csr": csr, "subject": "CN=ap-7-renamed", "san": ["ap-7b.example.net"]}),
        )
        .await;
    assert_eq!(overridden["subject"], "CN=ap-7-renamed");
    assert_eq!(overridden["san"], json!(["ap-7b.example.net"]));
}

#[tokio::test]
async fn broken_and_malformed_csrs_are_refused_and_nothing_is_written() {
    let (app, admin) = admin_app().await;
    let dir = Scratch::new();
    let csr = make_csr(&dir);
    openssl_ok(&[
        "req",
        "-in",
        &dir.path("device.csr"),
        "-outform",
        "DER",
        "-out",
        &dir.path("device.der"),
    ]);
    let mut der = dir.read("device.der");
    // The last byte is inside the signature.
    let last = der.len() - 1;
    der[last] ^= 0x01;
    let broken = dir.write("broken.der", &der);
    let broken_pem = openssl_ok(&["req", "-inform", "DER", "-in", &broken]);
    let before = app.written_rows().await;
    for (body, code) in [
        (json!({"csr": broken_pem}), "csr_signature_invalid"),
        (
            json!({"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}),
            "invalid_csr",
        ),
        (json!({"csr": "hello"}), "invalid_csr"),
        (
            json!({"csr": csr.replace("CERTIFICATE REQUEST", "CERTIFICATE")}),
            "invalid_csr",
        ),
        (
            json!({"csr": csr, "key_algorithm": "ecdsa-p256"}),
            "conflicting_key_source",
        ),
    ] {
        let (status, problem) = app
            .send(Method::POST, "/api/v1/certificates", &admin, body)
            .await;
        assert_eq!(
            (status, problem["code"].as_str().unwrap()),
            (422, code),
            "{problem}"
        );
    }
    assert_eq!(app.written_rows().await, before);
}

#[tokio::test]
async fn bad_requests_get_a_problem_with_a_stable_code_and_write_nothing() {
    let (app, admin) = admin_app().await;
    let good = app.issue(&admin, json!({"subject": "CN=ok"})).await;
    let id = good["id"].as_str().unwrap().to_owned();
    let before = app.written_rows().await;
    for (body, code) in [
        (json!({"subject": "CN=a,XX=b"}), "invalid_subject"),
        (json!({"subject": "C=Netherlands,CN=a"}), "invalid_subject"),
        (json!({"subject": ""}), "invalid_subject"),
        (json!({"san": ["a.example"]}), "invalid_subject"),
        (
            json!({"subject": "CN=a", "san": ["bad_name.example"]}),
            "invalid_san",
        ),
        (
            json!({"subject": "CN=a", "san": ["300.1.2.3"]}),
            "invalid_san",
        ),
        (
            json!({"subject": "CN=a", "san": ["a.example", "A.example"]}),
            "invalid_san",
        ),
        (
            json!({"subject": "CN=a", "profile": "server", "validity_days": 399}),
            "validity_too_long",
        ),
        (
            json!({"subject": "CN=a", "validity_days": 0}),
            "invalid_validity",
        ),
        (
            json!({"subject": "CN=a", "key_algorithm": "dsa-1024"}),
            "unknown_algorithm",
        ),
        (
            json!({"subject": "CN=a", "profile": "codesigning"}),
            "unknown_profile",
        ),
        (json!({"subject": "CN=a", "colour": "blue"}), "invalid_body"),
        (
            json!({"subject": "CN=a", "owner_id": "not-a-uuid"}),
            "invalid_body",
        ),
        (
            json!({"subject": "CN=a", "owner_id": uuid::Uuid::new_v4()}),
            "unknown_owner",
        ),
        (
            json!({"subject": "CN=a", "ca_id": uuid::Uuid::new_v4()}),
            "unknown_ca",
        ),
    ] {
        let (status, problem) = app
            .send(Method::POST, "/api/v1/certificates", &admin, body.clone())
            .await;
        assert_eq!(
            (status, problem["code"].as_str().unwrap_or("")),
            (422, code),
            "{body}: {problem}"
        );
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // PINs: 8 to 128 characters (modern, the default).
    for pin in ["12345".to_owned(), "x".repeat(129)] {
        let (status, problem) = app
            .send(
                Method::POST,
                &format!("/api/v1/certificates/{id}/pkcs12"),
                &admin,
                json!({"pin": pin}),
            )
            .await;
        assert_eq!(
            (status, problem["code"].as_str().unwrap()),
            (422, "invalid_pin")
        );
        assert!(!problem.to_string().contains(&pin));
    }
    let (status, problem) = app
        .send(
            Method::POST,
            &format!("/api/v1/certificates/{id}/pkcs12"),
            &admin,
            json!({"pin": PIN, "compat": "ancient"}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str().unwrap()),
        (422, "invalid_compat")
    );
    let (status, problem) = app
        .send(
            Method::POST,
            &format!("/api/v1/certificates/{id}/revoke"),
            &admin,
            json!({"reason": "certificateHold"}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str().unwrap()),
        (422, "invalid_reason")
    );
    // Unknown or malformed ids: 404.
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/api/v1/certificates/{unknown}"),
        "/api/v1/certificates/not-an-id".to_owned(),
        format!("/api/v1/certificates/{unknown}/pem"),
        format!("/api/v1/certificates/{unknown}/versions"),
    ] {
        let (status, problem) = app.get(&path, &admin).await;
        assert_eq!(
            (status, problem["code"].as_str().unwrap()),
            (404, "not_found"),
            "{path}"
        );
    }
    for (path, body) in [
        (
            format!("/api/v1/certificates/{unknown}/revoke"),
            json!({"reason": "unspecified"}),
        ),
        (
            format!("/api/v1/certificates/{unknown}/pkcs12"),
            json!({"pin": PIN}),
        ),
        (format!("/api/v1/certificates/{unknown}/renew"), json!({})),
    ] {
        let (status, problem) = app.send(Method::POST, &path, &admin, body).await;
        assert_eq!(
            (status, problem["code"].as_str().unwrap()),
            (404, "not_found"),
            "{path}"
        );
    }
    let (status, _) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/certificates/{unknown}"),
            &admin,
            json!({"owner_id": unknown}),
        )
        .await;
    assert_eq!(status, 404);
    // List parameters.
    for query in [
        "status=LOST",
        "limit=0",
        "expiring_within_days=-1",
        "owner_id=x",
        "cursor=zzz",
    ] {
        let (status, problem) = app
            .get(&format!("/api/v1/certificates?{query}"), &admin)
            .await;
        assert!(matches!(status, 400 | 422), "{query}: {status} {problem}");
        assert!(problem["code"].is_string(), "{query}");
    }
    assert_eq!(
        app.written_rows().await,
        before,
        "a refused request wrote rows"
    );
}

#[tokio::test]
async fn users_are_isolated_admins_reassign_and_the_quota_holds() {
    let (app, admin) = admin_app().await;
    let alice_id = app.user("alice", UserRole::User).await;
    let bob_id = app.user("bob", UserRole::User).await;
    let alice = app.token("alice").await;
    let bob = app.token("bob").await;
    let bobs = app.issue(&bob, json!({"subject": "CN=bob-router"})).await;
    assert_eq!(bobs["owner_id"], bob_id.to_string());
    let id = bobs["id"].as_str().unwrap();

    // Alice cannot see, export, revoke or reassign Bob's certificate, nor learn it exists.
    assert_eq!(
        app.get(&format!("/api/v1/certificates/{id}"), &alice)
            .await
            .0,
        404
    );
    assert_eq!(export(&app, &alice, id, "modern").await.status(), 404);
    let (status, _) = app
        .send(
            Method::POST,
            &format!("/api/v1/certificates/{id}/revoke"),
            &alice,
            json!({"reason": "unspecified"}),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(
        app.get(&format!("/api/v1/certificates/{id}/pem"), &alice)
            .await
            .0,
        404
    );
    let (_, list) = app.get("/api/v1/certificates", &alice).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    let (_, list) = app
        .get(&format!("/api/v1/certificates?owner_id={bob_id}"), &alice)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    // A USER cannot issue for someone else, nor reassign, nor renew.
    let (status, problem) = app
        .send(
            Method::POST,
            "/api/v1/certificates",
            &alice,
            json!({"subject": "CN=x", "owner_id": bob_id}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str().unwrap()),
        (403, "forbidden")
    );
    let (status, _) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/certificates/{id}"),
            &bob,
            json!({"owner_id": alice_id}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .send(
            Method::POST,
            &format!("/api/v1/certificates/{id}/renew"),
            &bob,
            json!({}),
        )
        .await;
    assert_eq!(status, 403);

    // The admin moves it to Alice: now hers, with its key; Bob no longer sees it.
    let (status, moved) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/certificates/{id}"),
            &admin,
            json!({"owner_id": alice_id}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["owner_id"], alice_id.to_string());
    assert_eq!(
        app.get(&format!("/api/v1/certificates/{id}"), &alice)
            .await
            .0,
        200
    );
    assert_eq!(export(&app, &alice, id, "modern").await.status(), 200);
    assert_eq!(
        app.get(&format!("/api/v1/certificates/{id}"), &bob).await.0,
        404
    );
    let (_, audit) = app
        .get("/api/v1/audit?action=certificate.reassigned", &admin)
        .await;
    let event = &audit["items"][0];
    assert_eq!(event["target_id"], id);
    assert_eq!(event["details"]["from_owner_id"], bob_id.to_string());
    assert_eq!(event["details"]["to_owner_id"], alice_id.to_string());
    let (status, problem) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/certificates/{id}"),
            &admin,
            json!({"owner_id": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str().unwrap()),
        (422, "unknown_owner")
    );

    // Quota: 10 active certificates per user by default; Alice has 1.
    for n in 0..9 {
        app.issue(&alice, json!({"subject": format!("CN=a{n}")}))
            .await;
    }
    let before = app.written_rows().await;
    let (status, problem) = app
        .send(
            Method::POST,
            "/api/v1/certificates",
            &alice,
            json!({"subject": "CN=one-too-many"}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str().unwrap()),
        (422, "quota_exceeded"),
        "{problem}"
    );
    assert!(problem["detail"].as_str().unwrap().contains("limit is 10"));
    assert_eq!(app.written_rows().await, before);
    // An admin cannot push her over it by reassignment either.
    let extra = app.issue(&bob, json!({"subject": "CN=bob-2"})).await;
    let (status, problem) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/certificates/{}", extra["id"].as_str().unwrap()),
            &admin,
            json!({"owner_id": alice_id}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str().unwrap()),
        (422, "quota_exceeded")
    );
    // Revoking one frees a place.
    let (status, _) = app
        .send(
            Method::POST,
            &format!("/api/v1/certificates/{id}/revoke"),
            &alice,
            json!({"reason": "cessationOfOperation"}),
        )
        .await;
    assert_eq!(status, 200);
    app.issue(&alice, json!({"subject": "CN=replacement"}))
        .await;
}

#[tokio::test]
async fn renewal_makes_a_new_version_and_supersedes_or_revokes_the_old() {
    let (app, admin) = admin_app().await;
    let (_, ca_pem) = app.ca().await;
    let dir = Scratch::new();
    let ca_file = dir.write("ca.pem", &ca_pem);
    let first = app
        .issue(
            &admin,
            json!({"subject": "CN=sw-1", "san": ["sw-1.example.net"], "validity_days": 30}),
        )
        .await;
    let id1 = first["id"].as_str().unwrap();
    let (status, second) = app
        .send(
            Method::POST,
            &format!("/api/v1/certificates/{id1}/renew"),
            &admin,
            json!({"validity_days": 60}),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["version"], 2);
    assert_eq!(second["renewed_from"], id1);
    // Renewals get time-ordered (version 7) ids too: the new version sorts after the old.
    let id2 = second["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id2).unwrap().get_version_num(), 7);
    assert!(id2 > id1, "{id2} after {id1}");
    assert!(second["renewed_at"].is_string() && second["renewed_by"].is_string());
    assert_ne!(second["serial_number"], first["serial_number"]);
    assert_eq!(second["subject"], "CN=sw-1");
    assert_eq!(second["san"], json!(["sw-1.example.net"]));
    let leaf = dir.write("v2.pem", pem_of(&second));
    assert!(openssl_ok(&["verify", "-CAfile", &ca_file, &leaf]).contains(": OK"));
    // Same key without rekey.
    let pub1 = openssl_ok(&[
        "x509",
        "-in",
        &dir.write("v1.pem", pem_of(&first)),
        "-pubkey",
        "-noout",
    ]);
    assert_eq!(
        openssl_ok(&["x509", "-in", &leaf, "-pubkey", "-noout"]),
        pub1
    );
    let (_, old) = app
        .get(&format!("/api/v1/certificates/{id1}"), &admin)
        .await;
    assert_eq!(old["status"], "SUPERSEDED");
    // A superseded certificate is not renewed again.
    let (status, problem) = app
        .send(
            Method::POST,
            &format!("/api/v1/certificates/{id1}/renew"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str().unwrap()),
        (409, "not_renewable")
    );

    let id2 = second["id"].as_str().unwrap();
    let (status, third) = app
        .send(
            Method::POST,
            &format!("/api/v1/certificates/{id2}/renew"),
            &admin,
            json!({"rekey": true, "revoke_previous": true}),
        )
        .await;
    assert_eq!(status, 201, "{third}");
    assert_eq!(third["version"], 3);
    let pub3 = openssl_ok(&[
        "x509",
        "-in",
        &dir.write("v3.pem", pem_of(&third)),
        "-pubkey",
        "-noout",
    ]);
    assert_ne!(pub3, pub1, "rekey makes a new key");
    let (_, v2) = app
        .get(&format!("/api/v1/certificates/{id2}"), &admin)
        .await;
    assert_eq!(v2["status"], "REVOKED");
    // The new key is exportable and matches.
    assert_eq!(
        export(&app, &admin, third["id"].as_str().unwrap(), "modern")
            .await
            .status(),
        200
    );

    let (_, chain) = app
        .get(&format!("/api/v1/certificates/{id2}/versions"), &admin)
        .await;
    let versions: Vec<i64> = chain["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![1, 2, 3]);
    let (_, audit) = app
        .get("/api/v1/audit?action=certificate.renewed", &admin)
        .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn inventory_filters_paginates_and_lists_what_expires() {
    let (app, admin) = admin_app().await;
    let user = app.user("ops", UserRole::User).await;
    let ops = app.token("ops").await;
    for (name, days) in [("fw-1", 5), ("fw-2", 6), ("ap-1", 20), ("ap-2", 200)] {
        app.issue(&ops, json!({"subject": format!("CN={name}"), "san": [format!("{name}.example.net")], "validity_days": days}))
            .await;
    }
    app.issue(
        &admin,
        json!({"subject": "CN=admins-own", "validity_days": 3}),
    )
    .await;
    let (_, page) = app.get("/api/v1/certificates?limit=2", &ops).await;
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["subject"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["CN=fw-1", "CN=fw-2"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = app
        .get(
            &format!("/api/v1/certificates?limit=2&cursor={cursor}"),
            &ops,
        )
        .await;
    let names: Vec<&str> = next["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["subject"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["CN=ap-1", "CN=ap-2"]);
    let (_, found) = app.get("/api/v1/certificates?q=ap-", &ops).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 2);
    let (_, soon) = app
        .get("/api/v1/certificates?expiring_within_days=7", &ops)
        .await;
    assert_eq!(soon["items"].as_array().unwrap().len(), 2);
    let (_, all) = app.get("/api/v1/certificates", &admin).await;
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        5,
        "an ADMIN sees everyone's"
    );
    let (_, one_user) = app
        .get(&format!("/api/v1/certificates?owner_id={user}"), &admin)
        .await;
    assert_eq!(one_user["items"].as_array().unwrap().len(), 4);
    let serial = all["items"][0]["serial_number"].as_str().unwrap();
    let (_, by_serial) = app
        .get(&format!("/api/v1/certificates?q={}", &serial[..8]), &admin)
        .await;
    assert!(
        by_serial["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["serial_number"] == serial)
    );

    let (status, expiring) = app.get("/api/v1/certificates/expiring?days=7", &ops).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = expiring["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["subject"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["CN=fw-1", "CN=fw-2"]);
    let (_, expiring) = app
        .get("/api/v1/certificates/expiring?days=7", &admin)
        .await;
    assert_eq!(expiring["items"].as_array().unwrap().len(), 3);
    let (status, problem) = app.get("/api/v1/certificates/expiring?days=0", &ops).await;
    assert_eq!(
        (status, problem["code"].as_str().unwrap()),
        (422, "invalid_days")
    );
}

#[tokio::test]
async fn ca_certificates_are_public_in_der_and_pem() {
    let app = TestApp::spawn().await;
    let (ca_id, ca_pem) = app.ca().await;
    let dir = Scratch::new();
    let der = app
        .http
        .get(app.url(&format!("/ca/{ca_id}.crt")))
        .send()
        .await
        .unwrap();
    assert_eq!(der.status(), 200);
    assert_eq!(der.headers()["content-type"], "application/pkix-cert");
    let der_file = dir.write("ca.der", der.bytes().await.unwrap());
    let text = openssl_ok(&[
        "x509", "-inform", "DER", "-in", &der_file, "-noout", "-text",
    ]);
    assert!(
        text.contains("CA:TRUE") && text.contains("Certificate Sign, CRL Sign"),
        "{text}"
    );
    assert!(
        text.contains("secp384r1"),
        "the default root key is P-384: {text}"
    );
    let pem = app
        .http
        .get(app.url(&format!("/ca/{ca_id}.pem")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(pem, ca_pem);
    for path in [
        format!("/ca/{ca_id}.exe"),
        "/ca/nothing.crt".to_owned(),
        format!("/ca/{}.crt", uuid::Uuid::new_v4()),
        format!("/crl/{}.crl", uuid::Uuid::new_v4()),
    ] {
        let r = app.http.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
}
