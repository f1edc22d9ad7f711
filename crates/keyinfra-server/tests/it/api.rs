//! Conventions shared by every endpoint: bodies, errors, the OpenAPI document.

use keyinfra_db::UserRole;
use reqwest::Method;
use serde_json::Value;

use crate::support::TestApp;

#[tokio::test]
async fn bodies_too_large_malformed_or_untyped_get_precise_problems() {
    let app = TestApp::spawn().await;
    let login = app.url("/api/v1/auth/login");

    let big = format!(
        r#"{{"username":"a","password":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    let r = app
        .http
        .post(&login)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "body_too_large");

    let r = app
        .http
        .post(&login)
        .header("content-type", "application/json")
        .body("{\"username\": \"a\",\n \"password\": }")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "malformed_json");
    assert!(
        body["detail"].as_str().unwrap().contains("line 2 column"),
        "{body}"
    );

    let r = app
        .http
        .post(&login)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    let r = app
        .http
        .post(&login)
        .header("content-type", "application/json")
        .body(r#"{"user": "a"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);

    let text = r.text().await.unwrap();
    assert!(
        !text.contains("/work/") && !text.contains("sqlx") && !text.contains("panicked"),
        "{text}"
    );
}

#[tokio::test]
async fn the_openapi_document_parses_and_lists_every_route() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let r = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let mut listed: Vec<&str> = paths.keys().map(String::as_str).collect();
    listed.sort_unstable();
    assert_eq!(
        listed,
        [
            "/.well-known/est/{label}/{operation}",
            "/.well-known/est/{operation}",
            "/api/v1/acme/accounts",
            "/api/v1/acme/accounts/{id}/deactivate",
            "/api/v1/acme/eab",
            "/api/v1/alerts",
            "/api/v1/audit",
            "/api/v1/auth/login",
            "/api/v1/auth/logout",
            "/api/v1/cas",
            "/api/v1/certificates",
            "/api/v1/certificates/expiring",
            "/api/v1/certificates/{id}",
            "/api/v1/certificates/{id}/pem",
            "/api/v1/certificates/{id}/pkcs12",
            "/api/v1/certificates/{id}/renew",
            "/api/v1/certificates/{id}/revoke",
            "/api/v1/certificates/{id}/versions",
            "/api/v1/enrollment/challenges",
            "/api/v1/enrollment/challenges/{id}",
            "/api/v1/enrollment/requests",
            "/api/v1/enrollment/requests/{id}",
            "/api/v1/enrollment/requests/{id}/approve",
            "/api/v1/enrollment/requests/{id}/reject",
            "/api/v1/jobs",
            "/api/v1/jobs/{name}/runs",
            "/api/v1/policies",
            "/api/v1/policies/{id}",
            "/api/v1/users",
            "/api/v1/users/me",
            "/api/v1/users/me/password",
            "/api/v1/users/me/policy",
            "/api/v1/users/{id}",
            "/ca/{file}",
            "/cgi-bin/pkiclient.exe",
            "/crl/{file}",
            "/crl/{id}/{file}",
            "/healthz",
            "/ocsp",
            "/ocsp/{request}",
            "/readyz",
            "/scep"
        ]
    );
    // Every documented operation is routed: none answers 404 "no such resource" or 405.
    let mut operations = 0;
    for (path, item) in paths {
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
        {
            let concrete = path
                .replace("{id}", &uuid::Uuid::new_v4().to_string())
                .replace("{file}", &format!("{}.pem", uuid::Uuid::new_v4()))
                .replace("{name}", "stats-refresh")
                .replace("{label}", "root")
                .replace("{operation}", "cacerts");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = app
                .http
                .request(method.clone(), app.url(&concrete))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert!(
                status != 405 && !(status == 404 && body["detail"] == "no such resource"),
                "{method} {path}: {status} {body}"
            );
            operations += 1;
        }
    }
    assert_eq!(operations, 56);
    // The routes the server has but the document does not describe are only the document
    // itself and /metrics (Prometheus text, not JSON).
    assert_eq!(
        app.http
            .get(app.url("/api/v1/nothing-here"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}
