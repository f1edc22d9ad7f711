//! Issue 21, who owns an ACME account: external account binding keys through the API. The
//! HMAC key is shown once and never stored (it is derived from the server secret and the
//! key id); every refusal is a 4xx problem with a code and writes nothing.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyinfra_core::Clock;
use keyinfra_db::UserRole;
use reqwest::Method;
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::support::TestApp;

const PATH: &str = "/api/v1/acme/eab";

/// Binding keys and their audit events: what a refused request must not change.
async fn written(app: &TestApp) -> i64 {
    app.tdb
        .scalar_i64(
            "SELECT (SELECT count(*) FROM acme_eab_keys)
                  + (SELECT count(*) FROM audit_events WHERE action LIKE 'acme_eab_key.%')",
        )
        .await
}

fn kid(created: &Value) -> Uuid {
    created["kid"].as_str().unwrap().parse().unwrap()
}

fn hmac_key(created: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(created["hmac_key"].as_str().unwrap())
        .unwrap()
}

#[tokio::test]
async fn a_binding_key_is_shown_once_and_recomputed_not_stored() {
    let app = TestApp::spawn().await;
    let user_id = app.user("site1-noc", UserRole::User).await;
    let user = app.token("site1-noc").await;

    // No body at all: every default.
    let before = app.clock.now();
    let r = app
        .http
        .post(app.url(PATH))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["owner_id"], json!(user_id));
    let key = hmac_key(&first);
    assert_eq!(key.len(), 32);
    let expires = OffsetDateTime::parse(first["expires_at"].as_str().unwrap(), &Rfc3339).unwrap();
    let lifetime = expires - before;
    assert!(
        lifetime > Duration::minutes(1439) && lifetime <= Duration::minutes(1441),
        "{lifetime}"
    );

    // The server recomputes the same key from the id; another id has another key.
    let second = app
        .send(
            Method::POST,
            PATH,
            &user,
            json!({ "expires_in_minutes": 5 }),
        )
        .await
        .1;
    assert_eq!(*app.state.acme_eab.mac_key(kid(&first)), key);
    assert_ne!(hmac_key(&second), key);
    assert_ne!(kid(&second), kid(&first));

    // A binding MACed with the key verifies as RFC 8555 7.3.4 has the client make it.
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(
            json!({"alg": "HS256", "kid": kid(&first).to_string(), "url": "https://ca/acme/new-account"})
                .to_string()
        ),
        URL_SAFE_NO_PAD.encode(r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#)
    );
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &key),
        signing_input.as_bytes(),
    );
    let (protected, payload) = signing_input.split_once('.').unwrap();
    let binding = keyinfra_pki::acme::jws::ExternalAccountBinding::from_json(&json!({
        "protected": protected, "payload": payload,
        "signature": URL_SAFE_NO_PAD.encode(tag.as_ref()),
    }))
    .unwrap();
    let account_key = keyinfra_pki::acme::jws::Jwk::from_json_bytes(
        br#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#,
    )
    .unwrap();
    let kid_text = binding.kid().to_owned();
    let recomputed = app.state.acme_eab.mac_key(kid_text.parse().unwrap());
    binding
        .verify(&recomputed, "https://ca/acme/new-account", &account_key)
        .unwrap();
    // Under another key id's HMAC key it does not.
    assert!(
        binding
            .verify(
                &hmac_key(&second),
                "https://ca/acme/new-account",
                &account_key
            )
            .is_err()
    );

    // Nothing secret is stored: the row has no column for it, and the audit event names
    // the owner and the expiry only.
    let columns = app
        .tdb
        .scalar_i64(
            "SELECT count(*) FROM information_schema.columns
             WHERE table_name = 'acme_eab_keys' AND column_name NOT IN
               ('id', 'owner_id', 'created_by', 'created_at', 'expires_at', 'used_at', 'account_id')",
        )
        .await;
    assert_eq!(columns, 0);
    // (owner_execute's count of a SELECT is its rows.)
    let audited = app
        .tdb
        .owner_execute(&format!(
            "SELECT 1 FROM audit_events WHERE action = 'acme_eab_key.created'
             AND target_id = '{}' AND details->>'owner_id' = '{user_id}'
             AND details::text NOT LIKE '%{}%'",
            kid(&first),
            first["hmac_key"].as_str().unwrap()
        ))
        .await;
    assert_eq!(audited, 1);

    // The list shows both, newest first, and never an HMAC key.
    let (status, listed) = app.get(PATH, &user).await;
    assert_eq!(status, 200, "{listed}");
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["kid"], second["kid"]);
    assert_eq!(listed[1]["kid"], first["kid"]);
    assert!(listed.iter().all(|k| k.get("hmac_key").is_none()));
    assert!(listed.iter().all(|k| k["used_at"].is_null()));
}

#[tokio::test]
async fn who_may_create_binding_keys_for_whom() {
    let app = TestApp::spawn().await;
    let admin_id = app.user("root", UserRole::Admin).await;
    let user_id = app.user("site1-noc", UserRole::User).await;
    let other_id = app.user("site2-noc", UserRole::User).await;
    let admin = app.token("root").await;
    let user = app.token("site1-noc").await;
    let other = app.token("site2-noc").await;

    // A USER binds only their own accounts.
    let before = written(&app).await;
    let (status, problem) = app
        .send(Method::POST, PATH, &user, json!({ "owner_id": other_id }))
        .await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(written(&app).await, before);
    // Naming themself is fine.
    let (status, own) = app
        .send(Method::POST, PATH, &user, json!({ "owner_id": user_id }))
        .await;
    assert_eq!(status, 201, "{own}");

    // An ADMIN makes one for a user; the user sees it, the other user does not.
    let (status, for_user) = app
        .send(Method::POST, PATH, &admin, json!({ "owner_id": user_id }))
        .await;
    assert_eq!(status, 201, "{for_user}");
    assert_eq!(for_user["owner_id"], json!(user_id));
    let (_, mine) = app.get(PATH, &user).await;
    assert_eq!(mine.as_array().unwrap().len(), 2);
    let (_, theirs) = app.get(PATH, &other).await;
    assert_eq!(theirs.as_array().unwrap().len(), 0);
    // The ADMIN sees everyone's, or one owner's.
    let (_, all) = app.get(PATH, &admin).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[0]["created_by"], json!(admin_id));
    let (_, filtered) = app
        .get(&format!("{PATH}?owner_id={other_id}"), &admin)
        .await;
    assert_eq!(filtered.as_array().unwrap().len(), 0);
    // A USER's owner filter cannot widen what they see.
    let (_, widened) = app.get(&format!("{PATH}?owner_id={other_id}"), &user).await;
    assert_eq!(widened.as_array().unwrap().len(), 2);

    // Unknown and disabled owners, bad lifetimes, unknown fields, no token: 4xx, nothing written.
    let before = written(&app).await;
    for (token, body, status, code) in [
        (
            &admin,
            json!({ "owner_id": Uuid::new_v4() }),
            422,
            "unknown_owner",
        ),
        (
            &user,
            json!({ "expires_in_minutes": 0 }),
            422,
            "invalid_expiry",
        ),
        (
            &user,
            json!({ "expires_in_minutes": 43201 }),
            422,
            "invalid_expiry",
        ),
        (&user, json!({ "kid": "mine" }), 422, "invalid_body"),
    ] {
        let (got, problem) = app.send(Method::POST, PATH, token, body.clone()).await;
        assert_eq!(got, status, "{body}: {problem}");
        assert_eq!(problem["code"], code, "{body}: {problem}");
    }
    let (got, problem) = app.get(&format!("{PATH}?limit=0"), &user).await;
    assert_eq!(
        (got, problem["code"].as_str()),
        (422, Some("invalid_limit"))
    );
    let r = app.http.post(app.url(PATH)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let (got, _) = app
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{other_id}"),
            &admin,
            json!({ "disabled": true }),
        )
        .await;
    assert_eq!(got, 200);
    let (got, problem) = app
        .send(Method::POST, PATH, &admin, json!({ "owner_id": other_id }))
        .await;
    assert_eq!(
        (got, problem["code"].as_str()),
        (422, Some("owner_disabled"))
    );
    assert_eq!(written(&app).await, before);
}

#[tokio::test]
async fn an_owner_holds_at_most_a_hundred_live_binding_keys() {
    let app = TestApp::spawn().await;
    app.user("site1-noc", UserRole::User).await;
    let user = app.token("site1-noc").await;
    for _ in 0..100 {
        let (status, created) = app.send(Method::POST, PATH, &user, json!({})).await;
        assert_eq!(status, 201, "{created}");
    }
    let before = written(&app).await;
    let (status, problem) = app.send(Method::POST, PATH, &user, json!({})).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "too_many_eab_keys");
    assert_eq!(written(&app).await, before);
    // An expired key no longer counts.
    app.tdb
        .owner_execute(
            "UPDATE acme_eab_keys SET created_at = created_at - interval '2 days',
                                      expires_at = created_at - interval '1 day'
             WHERE id = (SELECT id FROM acme_eab_keys ORDER BY created_at LIMIT 1)",
        )
        .await;
    let (status, created) = app.send(Method::POST, PATH, &user, json!({})).await;
    assert_eq!(status, 201, "{created}");
}
