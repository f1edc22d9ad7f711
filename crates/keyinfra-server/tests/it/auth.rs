use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keyinfra_db::UserRole;
use reqwest::Method;
use serde_json::{Value, json};
use time::Duration;

use crate::support::{JWT_SECRET, PASSWORD, PEPPER, TestApp};

#[tokio::test]
async fn login_returns_a_bearer_token_and_the_hash_is_peppered_argon2id() {
    let app = TestApp::spawn().await;
    app.user("alice", UserRole::User).await;
    let r = app.login("alice", PASSWORD).await;
    assert_eq!(r.status(), 200);
    // RFC 6749 5.1: an answer with a token is not stored.
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    let token = body["access_token"].as_str().unwrap();
    let (status, me) = app.get("/api/v1/users/me", token).await;
    assert_eq!((status, me["username"].as_str()), (200, Some("alice")));
    // Case-insensitive login name.
    assert_eq!(app.login("ALICE", PASSWORD).await.status(), 200);

    let phc = app
        .tdb
        .scalar_text("SELECT password_hash FROM users WHERE username = 'alice'")
        .await;
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");

    // The same database behind a server with another pepper: the password no longer works.
    let other = TestApp::spawn_with_pepper(b"another-pepper-another-pepper-0002", None).await;
    drop(other);
    let tdb = app.tdb;
    let second = TestApp::spawn_with_pepper(b"another-pepper-another-pepper-0002", Some(tdb)).await;
    assert_eq!(second.login("alice", PASSWORD).await.status(), 401);
    let _ = PEPPER;
}

#[tokio::test]
async fn unknown_user_and_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.user("bob", UserRole::User).await;
    let wrong = app.login("bob", "not the password at all").await;
    let unknown = app.login("nobody", "not the password at all").await;
    assert_eq!(
        (wrong.status().as_u16(), unknown.status().as_u16()),
        (401, 401)
    );
    assert!(wrong.headers().contains_key("www-authenticate"));
    let a: Value = wrong.json().await.unwrap();
    let b: Value = unknown.json().await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a["code"], "invalid_credentials");
}

fn forge(claims: &Value, header: Header, key: &[u8]) -> String {
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key)).unwrap()
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let id = app.user("carol", UserRole::Admin).await;
    let good = app.token("carol").await;
    let now = app.clock.now_unix();
    // The session epoch of the good token, so that a forged token fails for its forgery
    // alone.
    let good_payload: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(good.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let sep = good_payload["sep"]
        .as_i64()
        .expect("tokens carry their session epoch");
    let claims = json!({"sub": id, "role": "ADMIN", "iat": now, "exp": now + 600, "jti": uuid::Uuid::new_v4(), "sep": sep});

    let other_key = forge(
        &claims,
        Header::new(Algorithm::HS256),
        b"some-other-secret-some-other-secret!!",
    );
    let hs512 = forge(&claims, Header::new(Algorithm::HS512), JWT_SECRET);
    // alg "none": header and payload, empty signature.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    // HS/RS confusion: an RS256 header with an HMAC made from our secret.
    let rs_confused = {
        let hs = forge(&claims, Header::new(Algorithm::HS256), JWT_SECRET);
        let sig = hs.rsplit('.').next().unwrap().to_owned();
        format!(
            "{}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    };
    // A tampered payload: USER -> ADMIN, original signature.
    let tampered = {
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let mut payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        payload["exp"] = json!(now + 999_999);
        parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
        parts.join(".")
    };
    let expired = forge(
        &json!({"sub": id, "role": "ADMIN", "iat": now - 1000, "exp": now - 1, "jti": uuid::Uuid::new_v4(), "sep": sep}),
        Header::new(Algorithm::HS256),
        JWT_SECRET,
    );
    for (name, token) in [
        ("other key", other_key),
        ("HS512", hs512),
        ("none", none),
        ("RS/HS", rs_confused),
        ("tampered", tampered),
        ("expired", expired),
        ("garbage", "abc".to_owned()),
    ] {
        let (status, body) = app.get("/api/v1/users/me", &token).await;
        assert_eq!(status, 401, "{name} accepted: {body}");
        assert_eq!(body["code"], "unauthenticated", "{name}");
    }
    let r = app
        .http
        .get(app.url("/api/v1/users/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"keyinfra\"");
    // The well-formed token still works, and a forged token with the right key too (the
    // secret is the trust anchor).
    assert_eq!(app.get("/api/v1/users/me", &good).await.0, 200);

    // Our clock moves past the lifetime: the good token expires.
    app.clock.advance(Duration::minutes(16));
    let (status, body) = app.get("/api/v1/users/me", &good).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (401, Some("the access token has expired"))
    );
}

#[tokio::test]
async fn tokens_of_disabled_deleted_demoted_or_repassworded_users_stop_working_at_once() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let cases = ["disabled", "deleted", "demoted", "password"];
    for case in cases {
        let role = if case == "demoted" {
            UserRole::Admin
        } else {
            UserRole::User
        };
        let id = app.user(case, role).await;
        let token = app.token(case).await;
        assert_eq!(app.get("/api/v1/users/me", &token).await.0, 200);
        let path = format!("/api/v1/users/{id}");
        match case {
            "disabled" => assert_eq!(
                app.send(Method::PATCH, &path, &admin, json!({"disabled": true}))
                    .await
                    .0,
                200
            ),
            "deleted" => assert_eq!(
                app.send(Method::DELETE, &path, &admin, json!(null)).await.0,
                204
            ),
            "demoted" => assert_eq!(
                app.send(Method::PATCH, &path, &admin, json!({"role": "USER"}))
                    .await
                    .0,
                200
            ),
            _ => {
                // A password change happens a second later than the token.
                app.clock.advance(Duration::seconds(1));
                tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
                let body =
                    json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
                assert_eq!(
                    app.send(Method::PUT, "/api/v1/users/me/password", &token, body)
                        .await
                        .0,
                    204
                );
            }
        }
        let (status, body) = app.get("/api/v1/users/me", &token).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(
            body["detail"], "the access token is no longer valid",
            "{case}"
        );
    }
    // Disabled users cannot log in either.
    assert_eq!(app.login("disabled", PASSWORD).await.status(), 401);
    assert_eq!(
        app.login("password", "a brand new passphrase")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn repeated_failures_back_off_with_429_and_a_success_clears_the_pair() {
    let app = TestApp::spawn().await;
    app.user("dave", UserRole::User).await;
    for _ in 0..keyinfra_core::auth::throttle::PAIR_FREE {
        assert_eq!(app.login("dave", "wrong wrong wrong").await.status(), 401);
    }
    let r = app.login("dave", PASSWORD).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "too_many_attempts");
    // After the wait, the right password works and clears the record.
    app.clock.advance(Duration::seconds(2));
    assert_eq!(app.login("dave", PASSWORD).await.status(), 200);
    assert_eq!(app.login("dave", "wrong wrong wrong").await.status(), 401);
    assert_eq!(app.login("dave", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn a_hash_with_old_parameters_is_rehashed_at_the_next_login() {
    use keyinfra_core::OsRandom;
    use keyinfra_core::auth::{PasswordHasher, Pepper};
    let app = TestApp::spawn().await;
    // A user whose hash was made with cheaper, older parameters (same pepper).
    let mut old = crate::support::service(PEPPER, std::sync::Arc::new(keyinfra_core::SystemClock));
    old.hasher = std::sync::Arc::new(
        PasswordHasher::with_costs(
            Pepper::new(PEPPER.to_vec()).unwrap(),
            1024,
            1,
            1,
            &mut OsRandom,
        )
        .unwrap(),
    );
    old.create(
        &app.db,
        None,
        "legacy",
        PASSWORD.to_owned(),
        UserRole::User,
        None,
        &mut OsRandom,
    )
    .await
    .unwrap();
    let before = app
        .tdb
        .scalar_text("SELECT password_hash FROM users WHERE username = 'legacy'")
        .await;
    assert!(before.contains("m=1024,t=1,p=1"), "{before}");

    assert_eq!(app.login("legacy", PASSWORD).await.status(), 200);
    let after = app
        .tdb
        .scalar_text("SELECT password_hash FROM users WHERE username = 'legacy'")
        .await;
    assert!(
        after.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{after}"
    );
    // Still the same password, and the rehash did not end existing tokens (not a change).
    assert_eq!(app.login("legacy", PASSWORD).await.status(), 200);
    let changed = app.tdb.scalar_i64(
        "SELECT count(*) FROM users WHERE username = 'legacy' AND password_changed_at = created_at",
    ).await;
    assert_eq!(changed, 1);
}
