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
    assert_eq!(*app.state.acme.eab.mac_key(kid(&first)), key);
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
    let recomputed = app.state.acme.eab.mac_key(kid_text.parse().unwrap());
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
    assert!(listed["next_cursor"].is_null());
    let listed = listed["items"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["kid"], second["kid"]);
    assert_eq!(listed[1]["kid"], first["kid"]);
    assert!(listed.iter().all(|k| k.get("hmac_key").is_none()));
    assert!(listed.iter().all(|k| k["used_at"].is_null()));
    // Pages of one: the cursor walks the same order.
    let (_, page) = app.get(&format!("{PATH}?limit=1"), &user).await;
    assert_eq!(page["items"][0]["kid"], second["kid"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, page) = app
        .get(&format!("{PATH}?limit=1&cursor={cursor}"), &user)
        .await;
    assert_eq!(page["items"][0]["kid"], first["kid"]);
    let (status, problem) = app.get(&format!("{PATH}?cursor=%%%"), &user).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_cursor"))
    );
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
    assert_eq!(mine["items"].as_array().unwrap().len(), 2);
    let (_, theirs) = app.get(PATH, &other).await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);
    // The ADMIN sees everyone's, or one owner's.
    let (_, all) = app.get(PATH, &admin).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    assert_eq!(all["items"][0]["created_by"], json!(admin_id));
    let (_, filtered) = app
        .get(&format!("{PATH}?owner_id={other_id}"), &admin)
        .await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 0);
    // A USER's owner filter cannot widen what they see.
    let (_, widened) = app.get(&format!("{PATH}?owner_id={other_id}"), &user).await;
    assert_eq!(widened["items"].as_array().unwrap().len(), 2);

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
    let (got, problem) = app.get(&format!("{PATH}?owner_id=nope"), &admin).await;
    assert_eq!(
        (got, problem["code"].as_str()),
        (422, Some("invalid_owner_id"))
    );
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

/// An ACME client's account key (ES256), signing flattened JWS as RFC 8555 6.2 has it.
pub(crate) struct ClientKey {
    pair: aws_lc_rs::signature::EcdsaKeyPair,
}

impl ClientKey {
    pub(crate) fn new() -> Self {
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        Self {
            pair: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
        }
    }

    pub(crate) fn jwk(&self) -> Value {
        use aws_lc_rs::signature::KeyPair;
        let point = self.pair.public_key().as_ref();
        json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }

    /// A JWS with `jwk` (`kid` = None) or `kid`, over `payload` (None: POST-as-GET).
    pub(crate) fn sign(
        &self,
        url: &str,
        nonce: &str,
        kid: Option<&str>,
        payload: Option<&Value>,
    ) -> String {
        let mut protected = json!({ "alg": "ES256", "nonce": nonce, "url": url });
        match kid {
            Some(kid) => protected["kid"] = json!(kid),
            None => protected["jwk"] = self.jwk(),
        }
        let protected = URL_SAFE_NO_PAD.encode(protected.to_string());
        let payload = payload.map_or(String::new(), |p| URL_SAFE_NO_PAD.encode(p.to_string()));
        let input = format!("{protected}.{payload}");
        let signature = self
            .pair
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        json!({
            "protected": protected,
            "payload": payload,
            "signature": URL_SAFE_NO_PAD.encode(signature.as_ref()),
        })
        .to_string()
    }

    /// The RFC 7638 thumbprint: a key authorization's suffix.
    pub(crate) fn thumbprint(&self) -> String {
        keyinfra_pki::acme::jws::Jwk::from_json_bytes(self.jwk().to_string().as_bytes())
            .unwrap()
            .thumbprint()
    }

    /// The private key as PKCS#8 PEM, for `openssl req` (a CSR with this key).
    pub(crate) fn pkcs8_pem(&self) -> String {
        let der = self.pair.to_pkcs8v1().unwrap();
        let text = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = text
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }
}

/// An RFC 8555 7.3.4 binding of `account` to the binding key (`kid`, `hmac_key`).
pub(crate) fn binding(kid: &str, hmac_key: &[u8], url: &str, account: &ClientKey) -> Value {
    let protected =
        URL_SAFE_NO_PAD.encode(json!({ "alg": "HS256", "kid": kid, "url": url }).to_string());
    let payload = URL_SAFE_NO_PAD.encode(account.jwk().to_string());
    let input = format!("{protected}.{payload}");
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, hmac_key),
        input.as_bytes(),
    );
    json!({ "protected": protected, "payload": payload, "signature": URL_SAFE_NO_PAD.encode(tag.as_ref()) })
}

/// A fresh nonce from HEAD new-nonce.
pub(crate) async fn nonce(
    tls: &crate::support::TlsEndpoint,
    dir: &crate::openssl::Scratch,
) -> String {
    let (_, answer) = crate::est::curl(tls, dir, "/acme/new-nonce", &["-I"]).await;
    assert_eq!(answer.status, 200);
    answer.header("replay-nonce").expect("a Replay-Nonce")
}

pub(crate) async fn post_jws(
    tls: &crate::support::TlsEndpoint,
    dir: &crate::openssl::Scratch,
    path: &str,
    jws: &str,
) -> crate::est::Answer {
    let body = dir.write("jws.json", jws);
    let data = format!("@{body}");
    crate::est::curl(
        tls,
        dir,
        path,
        &[
            "-H",
            "Content-Type: application/jose+json",
            "--data-binary",
            &data,
        ],
    )
    .await
    .1
}

#[tokio::test]
async fn accounts_bind_once_and_every_refusal_is_an_acme_problem() {
    let (app, tls) = TestApp::spawn_tls().await;
    let user_id = app.user("site1-noc", UserRole::User).await;
    let user = app.token("site1-noc").await;
    let dir = crate::openssl::Scratch::new();
    let new_account = tls.url("/acme/new-account");

    // The directory names what is served, and says a binding is required.
    let (_, answer) = crate::est::curl(&tls, &dir, "/acme/directory", &[]).await;
    assert_eq!(answer.status, 200);
    let directory = answer.json();
    assert_eq!(directory["newAccount"], json!(new_account));
    assert_eq!(directory["newNonce"], json!(tls.url("/acme/new-nonce")));
    assert_eq!(directory["meta"]["externalAccountRequired"], json!(true));
    // No CAA identities configured: none listed.
    assert!(
        directory["meta"].get("caaIdentities").is_none(),
        "{directory}"
    );
    // GET new-nonce is 204 with a nonce; no cache keeps either.
    let (_, answer) = crate::est::curl(&tls, &dir, "/acme/new-nonce", &[]).await;
    assert_eq!(answer.status, 204);
    assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(answer.header("replay-nonce").map(|n| n.len()), Some(54));
    // Plain HTTP is refused.
    let r = app
        .http
        .get(app.url("/acme/directory"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let key = ClientKey::new();
    let accounts = || async {
        app.tdb
            .scalar_i64("SELECT count(*) FROM acme_accounts")
            .await
    };
    // Without a binding: externalAccountRequired, a fresh nonce, nothing written.
    let jws = key.sign(
        &new_account,
        &nonce(&tls, &dir).await,
        None,
        Some(&json!({ "termsOfServiceAgreed": true })),
    );
    let answer = post_jws(&tls, &dir, "/acme/new-account", &jws).await;
    assert_eq!(
        answer.status,
        400,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(
        answer.json()["type"],
        "urn:ietf:params:acme:error:externalAccountRequired"
    );
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    assert!(answer.header("replay-nonce").is_some());
    // The same request again: its nonce is spent.
    let answer = post_jws(&tls, &dir, "/acme/new-account", &jws).await;
    assert_eq!(answer.json()["type"], "urn:ietf:params:acme:error:badNonce");
    // A url other than the one the request reached.
    let jws = key.sign(
        &tls.url("/acme/elsewhere"),
        &nonce(&tls, &dir).await,
        None,
        Some(&json!({})),
    );
    let answer = post_jws(&tls, &dir, "/acme/new-account", &jws).await;
    assert_eq!(
        answer.json()["type"],
        "urn:ietf:params:acme:error:unauthorized"
    );
    // Not application/jose+json: 415.
    let body = dir.write("plain.json", "{}");
    let (_, answer) = crate::est::curl(
        &tls,
        &dir,
        "/acme/new-account",
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &format!("@{body}"),
        ],
    )
    .await;
    assert_eq!(answer.status, 415);

    // A binding MACed with another key's HMAC key, or for another account key: unauthorized.
    let (_, eab) = app.send(Method::POST, PATH, &user, json!({})).await;
    let (_, other_eab) = app.send(Method::POST, PATH, &user, json!({})).await;
    let kid_text = eab["kid"].as_str().unwrap();
    let wrong_mac = binding(kid_text, &hmac_key(&other_eab), &new_account, &key);
    let other_key = ClientKey::new();
    let wrong_key = binding(kid_text, &hmac_key(&eab), &new_account, &other_key);
    for bad in [wrong_mac, wrong_key] {
        let jws = key.sign(
            &new_account,
            &nonce(&tls, &dir).await,
            None,
            Some(&json!({ "externalAccountBinding": bad })),
        );
        let answer = post_jws(&tls, &dir, "/acme/new-account", &jws).await;
        assert_eq!(
            answer.status,
            401,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(
            answer.json()["type"],
            "urn:ietf:params:acme:error:unauthorized"
        );
    }
    assert_eq!(accounts().await, 0);

    // The right binding: 201, the account is the user's, the key used up.
    let good = binding(kid_text, &hmac_key(&eab), &new_account, &key);
    let payload = json!({ "contact": ["mailto:noc@example.net"], "termsOfServiceAgreed": true, "externalAccountBinding": good });
    let jws = key.sign(&new_account, &nonce(&tls, &dir).await, None, Some(&payload));
    let answer = post_jws(&tls, &dir, "/acme/new-account", &jws).await;
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let location = answer.header("location").unwrap();
    assert!(
        location.starts_with(&tls.url("/acme/account/")),
        "{location}"
    );
    assert_eq!(answer.json()["status"], "valid");
    assert_eq!(answer.json()["contact"], json!(["mailto:noc@example.net"]));
    let owner = app
        .tdb
        .scalar_text("SELECT owner_id::text FROM acme_accounts")
        .await;
    assert_eq!(owner, user_id.to_string());
    let (_, keys) = app.get(PATH, &user).await;
    let used = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == eab["kid"])
        .unwrap()
        .clone();
    assert!(used["used_at"].is_string());
    // newAccount again with the same account key: 200 and the same account, nothing new.
    let jws = key.sign(
        &new_account,
        &nonce(&tls, &dir).await,
        None,
        Some(&json!({ "onlyReturnExisting": true })),
    );
    let answer = post_jws(&tls, &dir, "/acme/new-account", &jws).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("location").as_deref(),
        Some(location.as_str())
    );
    // The used binding key cannot bind a second account key.
    let second = ClientKey::new();
    let reused = binding(kid_text, &hmac_key(&eab), &new_account, &second);
    let jws = second.sign(
        &new_account,
        &nonce(&tls, &dir).await,
        None,
        Some(&json!({ "externalAccountBinding": reused })),
    );
    let answer = post_jws(&tls, &dir, "/acme/new-account", &jws).await;
    assert_eq!(
        answer.json()["type"],
        "urn:ietf:params:acme:error:unauthorized"
    );
    // Nor does an unknown account key find anything with onlyReturnExisting.
    let jws = second.sign(
        &new_account,
        &nonce(&tls, &dir).await,
        None,
        Some(&json!({ "onlyReturnExisting": true })),
    );
    let answer = post_jws(&tls, &dir, "/acme/new-account", &jws).await;
    assert_eq!(
        answer.json()["type"],
        "urn:ietf:params:acme:error:accountDoesNotExist"
    );
    assert_eq!(accounts().await, 1);

    // The account's URL: POST-as-GET fetches it; a contact update; another key may not.
    let answer = as_account(&tls, &dir, &key, &location, &location, None).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let answer = as_account(
        &tls,
        &dir,
        &key,
        &location,
        &location,
        Some(&json!({ "contact": ["mailto:ops@example.net"] })),
    )
    .await;
    assert_eq!(answer.json()["contact"], json!(["mailto:ops@example.net"]));
    let answer = as_account(
        &tls,
        &dir,
        &key,
        &location,
        &location,
        Some(&json!({ "contact": ["tel:+15555550100"] })),
    )
    .await;
    assert_eq!(
        answer.json()["type"],
        "urn:ietf:params:acme:error:unsupportedContact"
    );
    let answer = as_account(&tls, &dir, &second, &location, &location, None).await;
    assert_eq!(
        answer.json()["type"],
        "urn:ietf:params:acme:error:malformed"
    );
    // Deactivation: once, and the account signs nothing afterwards.
    let answer = as_account(
        &tls,
        &dir,
        &key,
        &location,
        &location,
        Some(&json!({ "status": "deactivated" })),
    )
    .await;
    assert_eq!(answer.json()["status"], "deactivated");
    let answer = as_account(&tls, &dir, &key, &location, &location, None).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        answer.json()["type"],
        "urn:ietf:params:acme:error:unauthorized"
    );
    let audited = app
        .tdb
        .scalar_i64("SELECT count(*) FROM audit_events WHERE action IN ('acme_account.created', 'acme_account.deactivated')")
        .await;
    assert_eq!(audited, 2);

    // /metrics counts ACME requests by resource and outcome (the problem type).
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let metrics = app.metrics(&admin).await;
    for (resource, outcome) in [
        ("new-account", "externalAccountRequired"),
        ("new-account", "badNonce"),
        ("new-account", "ok"),
        ("account", "unauthorized"),
        ("new-nonce", "ok"),
    ] {
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("keyinfra_acme_requests_total{")
                    && l.contains(&format!("resource=\"{resource}\""))
                    && l.contains(&format!("outcome=\"{outcome}\""))),
            "{resource} {outcome} not counted"
        );
    }
}

/// certbot, from Debian: registers with a binding key, updates its e-mail, and
/// deactivates the account (certbot 2.1's `register`, `update_account`, `unregister`).
#[tokio::test]
async fn certbot_registers_updates_and_unregisters() {
    let (app, tls) = TestApp::spawn_tls().await;
    app.user("site1-noc", UserRole::User).await;
    let user = app.token("site1-noc").await;
    let dir = crate::openssl::Scratch::new();
    let root = dir.write("root.pem", &tls.root_pem);
    let (_, eab) = app.send(Method::POST, PATH, &user, json!({})).await;
    let server = tls.url("/acme/directory");
    let common = |command: &str| -> Vec<String> {
        vec![
            command.to_owned(),
            "--server".into(),
            server.clone(),
            "--config-dir".into(),
            dir.path("etc"),
            "--work-dir".into(),
            dir.path("work"),
            "--logs-dir".into(),
            dir.path("logs"),
            "--non-interactive".into(),
        ]
    };
    let certbot = |list: Vec<String>| {
        let root = root.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let out = std::process::Command::new("certbot")
                    .args(&list)
                    .env("REQUESTS_CA_BUNDLE", &root)
                    .output()
                    .expect("certbot is installed (.ci/run installs it)");
                (
                    out.status.success(),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )
            })
            .await
            .unwrap()
        }
    };

    // Without the binding key certbot is refused, and says why.
    let mut list = common("register");
    list.extend(["--agree-tos".into(), "-m".into(), "noc@example.net".into()]);
    let (ok, stderr) = certbot(list.clone()).await;
    assert!(!ok);
    assert!(
        stderr.contains("external account") || stderr.contains("externalAccount"),
        "{stderr}"
    );

    list.extend([
        "--eab-kid".into(),
        eab["kid"].as_str().unwrap().to_owned(),
        "--eab-hmac-key".into(),
        eab["hmac_key"].as_str().unwrap().to_owned(),
    ]);
    let (ok, stderr) = certbot(list).await;
    assert!(ok, "{stderr}");
    let contact = app
        .tdb
        .scalar_text("SELECT contact::text FROM acme_accounts")
        .await;
    assert_eq!(contact, "{mailto:noc@example.net}");

    let mut list = common("update_account");
    list.extend(["-m".into(), "ops@example.net".into()]);
    let (ok, stderr) = certbot(list).await;
    assert!(ok, "{stderr}");
    let contact = app
        .tdb
        .scalar_text("SELECT contact::text FROM acme_accounts")
        .await;
    assert_eq!(contact, "{mailto:ops@example.net}");

    // The API lists the account for its owner (and an ADMIN), not for another user.
    let (status, mine) = app.get("/api/v1/acme/accounts", &user).await;
    assert_eq!(status, 200, "{mine}");
    let account = mine["items"][0].clone();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(account["status"], "valid");
    assert_eq!(account["contact"], json!(["mailto:ops@example.net"]));
    assert_eq!(account["eab_kid"], eab["kid"]);
    assert_eq!(account["key_thumbprint"].as_str().unwrap().len(), 43);
    app.user("site2-noc", UserRole::User).await;
    let other = app.token("site2-noc").await;
    let (_, theirs) = app.get("/api/v1/acme/accounts", &other).await;
    assert_eq!(theirs["items"].as_array().unwrap().len(), 0);
    let id = account["id"].as_str().unwrap();
    let deactivate = format!("/api/v1/acme/accounts/{id}/deactivate");
    let (status, _) = app.send(Method::POST, &deactivate, &other, json!({})).await;
    assert_eq!(status, 404);

    // certbot unregisters (RFC 8555 7.3.6); the API's deactivation after it changes nothing.
    let (ok, stderr) = certbot(common("unregister")).await;
    assert!(ok, "{stderr}");
    let status = app
        .tdb
        .scalar_text("SELECT status::text FROM acme_accounts")
        .await;
    assert_eq!(status, "deactivated");
    let (status, after) = app.send(Method::POST, &deactivate, &user, json!({})).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["status"], "deactivated");
    assert!(after["deactivated_at"].is_string());
    let audited = app
        .tdb
        .scalar_i64("SELECT count(*) FROM audit_events WHERE action = 'acme_account.deactivated'")
        .await;
    assert_eq!(audited, 1);
}

/// An owner (or an ADMIN) deactivating an account through the API locks its client out.
#[tokio::test]
async fn an_account_deactivated_through_the_api_signs_nothing() {
    let (app, tls) = TestApp::spawn_tls().await;
    app.user("site1-noc", UserRole::User).await;
    app.user("root", UserRole::Admin).await;
    let user = app.token("site1-noc").await;
    let admin = app.token("root").await;
    let dir = crate::openssl::Scratch::new();
    let (key, location) = register(&app, &tls, &dir, &user).await;
    let id = location.rsplit('/').next().unwrap().to_owned();

    let (status, body) = app
        .send(
            Method::POST,
            &format!("/api/v1/acme/accounts/{id}/deactivate"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("deactivated"))
    );
    let answer = as_account(&tls, &dir, &key, &location, &location, None).await;
    assert_eq!(answer.status, 401);
    // An unknown id is 404, a malformed one too.
    for bad in [uuid::Uuid::new_v4().to_string(), "nope".to_owned()] {
        let (status, _) = app
            .send(
                Method::POST,
                &format!("/api/v1/acme/accounts/{bad}/deactivate"),
                &admin,
                json!({}),
            )
            .await;
        assert_eq!(status, 404);
    }
}

/// KEYINFRA_ACME_RATE, per client address, before a body is read or a signature checked:
/// past the burst ACME's rateLimited with Retry-After; another address goes on.
#[tokio::test]
async fn acme_is_rate_limited_per_address() {
    let edge = keyinfra_server::edge::EdgeSettings {
        trusted_proxies: keyinfra_server::edge::parse_trusted_proxies("127.0.0.1/32").unwrap(),
        acme_per_minute: Some(3),
        ..Default::default()
    };
    let (_app, tls) = TestApp::spawn_tls_with(std::sync::Arc::new(edge)).await;
    let dir = crate::openssl::Scratch::new();
    for _ in 0..3 {
        let (_, answer) = crate::est::curl(
            &tls,
            &dir,
            "/acme/new-nonce",
            &["-I", "-H", "X-Forwarded-For: 192.0.2.7"],
        )
        .await;
        assert_eq!(answer.status, 200);
    }
    let (_, limited) = crate::est::curl(
        &tls,
        &dir,
        "/acme/new-account",
        &[
            "-H",
            "X-Forwarded-For: 192.0.2.7",
            "-H",
            "Content-Type: application/jose+json",
            "--data-binary",
            "{}",
        ],
    )
    .await;
    assert_eq!(limited.status, 429);
    assert_eq!(
        limited.json()["type"],
        "urn:ietf:params:acme:error:rateLimited"
    );
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(limited.header("replay-nonce").is_some());
    let (_, other) = crate::est::curl(
        &tls,
        &dir,
        "/acme/new-nonce",
        &["-I", "-H", "X-Forwarded-For: 198.51.100.9"],
    )
    .await;
    assert_eq!(other.status, 200);
}

/// A registered account: its key and its URL (the `kid`).
pub(crate) async fn register(
    app: &TestApp,
    tls: &crate::support::TlsEndpoint,
    dir: &crate::openssl::Scratch,
    token: &str,
) -> (ClientKey, String) {
    let new_account = tls.url("/acme/new-account");
    let (_, eab) = app.send(Method::POST, PATH, token, json!({})).await;
    let key = ClientKey::new();
    let good = binding(
        eab["kid"].as_str().unwrap(),
        &hmac_key(&eab),
        &new_account,
        &key,
    );
    let jws = key.sign(
        &new_account,
        &nonce(tls, dir).await,
        None,
        Some(&json!({ "externalAccountBinding": good })),
    );
    let answer = post_jws(tls, dir, "/acme/new-account", &jws).await;
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    (key, answer.header("location").unwrap())
}

/// POST (a payload) or POST-as-GET (None) to `url` as the account `kid`.
pub(crate) async fn as_account(
    tls: &crate::support::TlsEndpoint,
    dir: &crate::openssl::Scratch,
    key: &ClientKey,
    kid: &str,
    url: &str,
    payload: Option<&Value>,
) -> crate::est::Answer {
    let jws = key.sign(url, &nonce(tls, dir).await, Some(kid), payload);
    let path = url.strip_prefix(&tls.base).unwrap().to_owned();
    post_jws(tls, dir, &path, &jws).await
}

#[tokio::test]
async fn new_order_asks_the_policy_first_and_offers_the_right_challenges() {
    let (app, tls) = TestApp::spawn_tls().await;
    app.user("site1-noc", UserRole::User).await;
    app.user("site2-noc", UserRole::User).await;
    let user = app.token("site1-noc").await;
    let other = app.token("site2-noc").await;
    let dir = crate::openssl::Scratch::new();
    let (key, kid) = register(&app, &tls, &dir, &user).await;
    let new_order = tls.url("/acme/new-order");
    let orders = || async { app.tdb.scalar_i64("SELECT count(*) FROM acme_orders").await };

    // Refusals: nothing is written for any of them.
    for (payload, problem) in [
        (json!({ "identifiers": [] }), "malformed"),
        (
            json!({ "identifiers": [{ "type": "email", "value": "a@b.example" }] }),
            "unsupportedIdentifier",
        ),
        (
            json!({ "identifiers": [{ "type": "dns", "value": "bad..name" }] }),
            "malformed",
        ),
        (
            json!({ "identifiers": [{ "type": "dns", "value": "a.example.net" }], "notBefore": "2030-01-01T00:00:00Z" }),
            "malformed",
        ),
        (
            json!({ "identifiers": [{ "type": "dns", "value": "a.example.net" }], "notAfter": "yesterday" }),
            "malformed",
        ),
        (
            json!({ "identifiers": [{ "type": "dns", "value": "a.example.net" }], "extra": 1 }),
            "malformed",
        ),
        // A wildcard over a public suffix: every policy refuses it, at once.
        (
            json!({ "identifiers": [{ "type": "dns", "value": "*.com" }] }),
            "rejectedIdentifier",
        ),
    ] {
        let answer = as_account(&tls, &dir, &key, &kid, &new_order, Some(&payload)).await;
        assert_eq!(
            answer.status,
            400,
            "{payload}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(
            answer.json()["type"],
            format!("urn:ietf:params:acme:error:{problem}"),
            "{payload}"
        );
    }
    let answer = as_account(&tls, &dir, &key, &kid, &new_order, None).await;
    assert_eq!(
        answer.json()["type"],
        "urn:ietf:params:acme:error:malformed"
    );
    assert_eq!(orders().await, 0);

    // A name, an address and a wildcard.
    let payload = json!({ "identifiers": [
        { "type": "dns", "value": "Router.Example.NET" },
        { "type": "ip", "value": "192.0.2.10" },
        { "type": "dns", "value": "*.example.net" },
    ]});
    let answer = as_account(&tls, &dir, &key, &kid, &new_order, Some(&payload)).await;
    assert_eq!(
        answer.status,
        201,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let location = answer.header("location").unwrap();
    assert!(location.starts_with(&tls.url("/acme/order/")), "{location}");
    let order = answer.json();
    assert_eq!(order["status"], "pending");
    assert_eq!(order["identifiers"][0]["value"], "router.example.net");
    assert_eq!(order["finalize"], json!(format!("{location}/finalize")));
    let authorizations: Vec<String> = order["authorizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(authorizations.len(), 3);

    // Each authorization offers what its identifier can prove.
    let mut seen = Vec::new();
    for url in &authorizations {
        let answer = as_account(&tls, &dir, &key, &kid, url, None).await;
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        let authz = answer.json();
        assert_eq!(authz["status"], "pending");
        let mut kinds: Vec<String> = authz["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                assert_eq!(c["token"].as_str().unwrap().len(), 43);
                assert_eq!(c["status"], "pending");
                c["type"].as_str().unwrap().to_owned()
            })
            .collect();
        kinds.sort();
        seen.push((
            authz["identifier"]["value"].as_str().unwrap().to_owned(),
            authz["wildcard"].as_bool().unwrap_or(false),
            kinds.join(","),
        ));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            (
                "192.0.2.10".to_owned(),
                false,
                "http-01,tls-alpn-01".to_owned()
            ),
            ("example.net".to_owned(), true, "dns-01".to_owned()),
            (
                "router.example.net".to_owned(),
                false,
                "dns-01,http-01,tls-alpn-01".to_owned()
            ),
        ]
    );

    // The account's orders list names it; the account object points at the list.
    let account = as_account(&tls, &dir, &key, &kid, &kid, None).await.json();
    let orders_url = account["orders"].as_str().unwrap().to_owned();
    assert_eq!(orders_url, format!("{kid}/orders"));
    let listed = as_account(&tls, &dir, &key, &kid, &orders_url, None).await;
    assert_eq!(
        listed.status,
        200,
        "{}",
        String::from_utf8_lossy(&listed.body)
    );
    assert_eq!(listed.json()["orders"], json!([location.clone()]));

    // The order reads back; another account sees neither it nor its authorizations.
    let answer = as_account(&tls, &dir, &key, &kid, &location, None).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["authorizations"], order["authorizations"]);
    let (stranger, stranger_kid) = register(&app, &tls, &dir, &other).await;
    for url in [&location, &authorizations[0]] {
        let answer = as_account(&tls, &dir, &stranger, &stranger_kid, url, None).await;
        assert_eq!(answer.status, 404, "{url}");
    }
    // Nor another account's orders list.
    let answer = as_account(&tls, &dir, &stranger, &stranger_kid, &orders_url, None).await;
    assert_eq!(answer.status, 401);
    assert_eq!(orders().await, 1);
}

/// keyChange (RFC 8555 7.3.5): the account rolls over to a new key, signs with it only
/// afterwards, and every malformed rollover is refused without changing the key.
#[tokio::test]
async fn an_account_rolls_over_to_a_new_key() {
    let (app, tls) = TestApp::spawn_tls().await;
    app.user("site1-noc", UserRole::User).await;
    let user = app.token("site1-noc").await;
    let dir = crate::openssl::Scratch::new();
    let (old, kid) = register(&app, &tls, &dir, &user).await;
    let (other, other_kid) = register(&app, &tls, &dir, &user).await;
    let url = tls.url("/acme/key-change");
    let directory = crate::est::curl(&tls, &dir, "/acme/directory", &[])
        .await
        .1
        .json();
    assert_eq!(directory["keyChange"], json!(url));
    let thumbprint = || async {
        app.tdb
            .scalar_text("SELECT encode(jwk_thumbprint, 'hex') FROM acme_accounts ORDER BY created_at LIMIT 1")
            .await
    };
    let before = thumbprint().await;
    let new = ClientKey::new();
    // The inner JWS: signed by the new key, carrying it, for the same URL.
    let inner = |signer: &ClientKey, account: &str, old_key: &Value, url: &str| -> Value {
        let payload = json!({ "account": account, "oldKey": old_key });
        serde_json::from_str(&signer.sign(url, "unused", None, Some(&payload))).unwrap()
    };
    for (payload, why, status, problem) in [
        (
            inner(&new, &other_kid, &old.jwk(), &url),
            "another account",
            400,
            "malformed",
        ),
        (
            inner(&new, &kid, &new.jwk(), &url),
            "not the old key",
            400,
            "malformed",
        ),
        // As for any JWS: a url that is not where it was sent.
        (
            inner(&new, &kid, &old.jwk(), &tls.url("/acme/new-order")),
            "another URL",
            401,
            "unauthorized",
        ),
        (
            json!({ "account": kid, "oldKey": old.jwk() }),
            "no inner JWS",
            400,
            "malformed",
        ),
    ] {
        let answer = as_account(&tls, &dir, &old, &kid, &url, Some(&payload)).await;
        assert_eq!(
            answer.status,
            status,
            "{why}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        assert_eq!(
            answer.json()["type"],
            format!("urn:ietf:params:acme:error:{problem}"),
            "{why}"
        );
    }
    // The other account's key: 409, pointing at that account.
    let taken = inner(&other, &kid, &old.jwk(), &url);
    let answer = as_account(&tls, &dir, &old, &kid, &url, Some(&taken)).await;
    assert_eq!(answer.status, 409);
    assert_eq!(answer.header("location"), Some(other_kid.clone()));
    assert_eq!(thumbprint().await, before);

    let answer = as_account(
        &tls,
        &dir,
        &old,
        &kid,
        &url,
        Some(&inner(&new, &kid, &old.jwk(), &url)),
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_ne!(thumbprint().await, before);
    // The old key signs nothing now; the new one does.
    let answer = as_account(&tls, &dir, &old, &kid, &kid, None).await;
    assert_eq!(answer.status, 400);
    let answer = as_account(&tls, &dir, &new, &kid, &kid, None).await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(
        app.tdb
            .scalar_i64(
                "SELECT count(*) FROM audit_events WHERE action = 'acme_account.key_changed'"
            )
            .await,
        1
    );
}
