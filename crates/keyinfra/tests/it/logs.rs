//! Structured logs: JSON lines, the request id on every line of a request, slow requests
//! and slow statements logged with their duration, and no secret in any line.

use std::time::Duration;

use keyinfra_db::testing::TestDatabase;
use serde_json::{Value, json};

use crate::support::{Server, keyinfra};

const PASSWORD: &str = "log-test-admin-password-1";

#[tokio::test]
async fn json_logs_carry_the_request_id_log_slow_requests_and_hold_no_secret() {
    let db = TestDatabase::new().await;
    let mut cmd = keyinfra();
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
        // Every request is "slow": each one must be logged with its duration.
        "--slow-request",
        "0s",
        // ...and so is every SQL statement.
        "--slow-query",
        "0s",
    ])
    .env("DATABASE_URL", db.url())
    .env("KEYINFRA_ADMIN_PASSWORD", PASSWORD);
    let mut server = Server::spawn(cmd);
    let line = server.wait_for("listening on http://", Duration::from_secs(180));
    let start = line.find("http://").unwrap();
    let base: String = line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"')
        .collect();

    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .header("x-request-id", "login-req-42")
        .json(&json!({ "username": "admin", "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();
    let me = http
        .get(format!("{base}/api/v1/users/me"))
        .bearer_auth(&token)
        .header("x-request-id", "me-req-43")
        .send()
        .await
        .unwrap();
    assert_eq!(me.headers()["x-request-id"], "me-req-43");
    server.wait_for("me-req-43", Duration::from_secs(30));
    server.terminate();

    let lines: Vec<&String> = server
        .seen
        .iter()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for entry in &parsed {
        assert!(
            entry["level"].is_string() && entry["fields"].is_object(),
            "{entry}"
        );
    }
    // The slow-request line of each request names the request id, route, status, duration.
    let slow = |id: &str| {
        parsed
            .iter()
            .find(|e| e["fields"]["message"] == "slow request" && e["span"]["request_id"] == id)
            .unwrap_or_else(|| panic!("no slow-request line for {id}:\n{lines:#?}"))
            .clone()
    };
    let login_line = slow("login-req-42");
    assert_eq!(login_line["fields"]["route"], "/api/v1/auth/login");
    assert_eq!(login_line["fields"]["status"], "200");
    assert!(login_line["fields"]["duration_ms"].is_u64());
    assert_eq!(login_line["level"], "WARN");
    assert_eq!(slow("me-req-43")["fields"]["route"], "/api/v1/users/me");

    // Slow statements are logged with their duration (sqlx's WARN line), parameters never.
    assert!(
        parsed.iter().any(
            |e| e["target"].as_str().is_some_and(|t| t.starts_with("sqlx"))
                && e["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("slow statement"))
        ),
        "no slow-statement line:\n{lines:#?}"
    );
    let all = lines
        .iter()
        .map(|l| l.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!all.contains(PASSWORD), "the password is in the log");
    assert!(!all.contains(&token), "the token is in the log");
}
