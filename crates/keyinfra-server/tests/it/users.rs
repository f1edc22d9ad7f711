use keyinfra_db::UserRole;
use reqwest::Method;
use serde_json::json;

use crate::support::{PASSWORD, TestApp};

#[tokio::test]
async fn a_user_gets_403_on_every_admin_endpoint() {
    let app = TestApp::spawn().await;
    let me = app.user("erin", UserRole::User).await;
    let other = app.user("frank", UserRole::User).await;
    let token = app.token("erin").await;
    let body = json!({"username": "x12345", "password": PASSWORD, "role": "USER"});
    let checks = [
        (Method::POST, "/api/v1/users".to_owned(), body),
        (Method::GET, "/api/v1/users".to_owned(), json!(null)),
        (Method::GET, format!("/api/v1/users/{other}"), json!(null)),
        (Method::GET, format!("/api/v1/users/{me}"), json!(null)),
        (
            Method::PATCH,
            format!("/api/v1/users/{other}"),
            json!({"role": "ADMIN"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/users/{me}"),
            json!({"role": "ADMIN"}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/users/{other}"),
            json!(null),
        ),
        (Method::GET, "/api/v1/audit".to_owned(), json!(null)),
    ];
    for (method, path, body) in checks {
        let (status, problem) = app.send(method.clone(), &path, &token, body).await;
        assert_eq!(status, 403, "{method} {path}: {problem}");
        assert_eq!(problem["code"], "forbidden");
    }
    // Nothing changed.
    assert_eq!(app.get("/api/v1/users/me", &token).await.1["role"], "USER");
}

#[tokio::test]
async fn admins_manage_users_with_keyset_pages_and_everything_is_audited() {
    let app = TestApp::spawn().await;
    let admin_id = app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;

    for i in 0..5 {
        let body =
            json!({"username": format!("device-owner-{i}"), "password": PASSWORD, "role": "USER"});
        let (status, user) = app.send(Method::POST, "/api/v1/users", &admin, body).await;
        assert_eq!(status, 201, "{user}");
        assert_eq!(user["role"], "USER");
        assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    }
    let (status, problem) = app
        .send(
            Method::POST,
            "/api/v1/users",
            &admin,
            json!({"username": "DEVICE-OWNER-0", "password": PASSWORD, "role": "USER"}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("username_taken"))
    );
    let (status, problem) = app
        .send(
            Method::POST,
            "/api/v1/users",
            &admin,
            json!({"username": "weak", "password": "short", "role": "USER"}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("weak_password"))
    );
    let (status, _) = app
        .send(
            Method::POST,
            "/api/v1/users",
            &admin,
            json!({"username": "samesame12345", "password": "samesame12345", "role": "USER"}),
        )
        .await;
    assert_eq!(status, 422);

    // Pages of 2 walk all 6 users exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?limit=2&cursor={c}"),
            None => "/api/v1/users?limit=2".to_owned(),
        };
        let (status, page) = app.get(&path, &admin).await;
        assert_eq!(status, 200, "{page}");
        for u in page["items"].as_array().unwrap() {
            seen.push(u["username"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert_eq!(app.get("/api/v1/users?limit=0", &admin).await.0, 422);
    assert_eq!(app.get("/api/v1/users?cursor=bogus", &admin).await.0, 400);

    // Role change, disable, self-protection, delete.
    let (_, list) = app.get("/api/v1/users?limit=10", &admin).await;
    let target = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "device-owner-1")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/users/{target}");
    assert_eq!(
        app.send(Method::PATCH, &path, &admin, json!({"role": "ADMIN"}))
            .await
            .1["role"],
        "ADMIN"
    );
    assert_eq!(
        app.send(Method::PATCH, &path, &admin, json!({"disabled": true}))
            .await
            .1["disabled"],
        true
    );
    let (status, problem) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{admin_id}"),
            &admin,
            json!({"role": "USER"}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("self_lockout"))
    );
    assert_eq!(
        app.send(Method::DELETE, &path, &admin, json!(null)).await.0,
        204
    );
    assert_eq!(app.get(&path, &admin).await.0, 404);
    assert_eq!(
        app.send(Method::DELETE, &path, &admin, json!(null)).await.0,
        404
    );
    assert_eq!(
        app.get(&format!("/api/v1/users/{}", uuid::Uuid::new_v4()), &admin)
            .await
            .0,
        404
    );
    assert_eq!(app.get("/api/v1/users/not-a-uuid", &admin).await.0, 400);

    // A failed login and a password change, then the audit trail, filtered.
    assert_eq!(
        app.login("device-owner-2", "wrong password!!")
            .await
            .status(),
        401
    );
    let user_token = app.token("device-owner-3").await;
    let body = json!({"current_password": PASSWORD, "new_password": "another long passphrase"});
    assert_eq!(
        app.send(Method::PUT, "/api/v1/users/me/password", &user_token, body)
            .await
            .0,
        204
    );
    let (_, audit) = app.get("/api/v1/audit?limit=100", &admin).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "user.created",
        "user.login",
        "user.login_failed",
        "user.role_changed",
        "user.disabled",
        "user.deleted",
        "user.password_changed",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let text = audit.to_string();
    assert!(
        !text.contains(PASSWORD) && !text.contains("wrong password!!") && !text.contains("argon2"),
        "a secret in the audit log"
    );
    let (_, failed) = app
        .get("/api/v1/audit?action=user.login_failed", &admin)
        .await;
    let failed = failed["items"].as_array().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["actor_name"], "device-owner-2");
    let (_, mine) = app
        .get(
            &format!("/api/v1/audit?actor={admin_id}&action=user.deleted"),
            &admin,
        )
        .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get("/api/v1/audit?since=yesterday", &admin).await.0,
        400
    );
    let (_, none) = app
        .get("/api/v1/audit?until=2000-01-01T00:00:00Z", &admin)
        .await;
    assert!(none["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn sql_injection_strings_are_stored_and_matched_literally() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let evil = "x' OR '1'='1'; DROP TABLE users; --";
    let (status, user) = app
        .send(
            Method::POST,
            "/api/v1/users",
            &admin,
            json!({"username": evil, "password": PASSWORD, "role": "USER"}),
        )
        .await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(user["username"], evil);
    assert_eq!(app.login(evil, PASSWORD).await.status(), 200);
    assert_eq!(app.login("x' OR '1'='1", PASSWORD).await.status(), 401);
    let (status, page) = app
        .get(&format!("/api/v1/audit?action={}", urlencode(evil)), &admin)
        .await;
    assert_eq!(status, 200);
    assert!(page["items"].as_array().unwrap().is_empty());
    assert_eq!(
        app.get("/api/v1/users?limit=10", &admin).await.1["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn deleting_a_user_revokes_their_certificates_first() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let owner = app.user("leaver", UserRole::User).await;
    for name in ["r1", "r2"] {
        let (status, body) = app
            .send(
                Method::POST,
                "/api/v1/certificates",
                &admin,
                json!({"subject": format!("CN={name}"), "owner_id": owner}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    assert_eq!(
        app.send(
            Method::DELETE,
            &format!("/api/v1/users/{owner}"),
            &admin,
            json!(null)
        )
        .await
        .0,
        204
    );
    let rows = app.tdb.scalar_i64(
        "SELECT count(*) FROM certificates c JOIN revoked_certificates r ON r.certificate_id = c.id
         WHERE c.status = 'REVOKED' AND r.reason = 'cessationOfOperation' AND c.owner_id IS NULL",
    ).await;
    assert_eq!(rows, 2);
    let (_, audit) = app.get("/api/v1/audit?action=user.deleted", &admin).await;
    assert_eq!(audit["items"][0]["details"]["certificates_revoked"], 2);
}
