//! Issue 17: issuance policies through the API. Every refusal is a 422 with the rule's
//! code, names the offending name and rule, and writes nothing; the default policy keeps
//! today's behaviour; changes apply to renewals and reassignments.

use keyinfra_db::UserRole;
use reqwest::Method;
use serde_json::{Value, json};

use crate::openssl::{Scratch, openssl_ok};
use crate::support::TestApp;

struct Setup {
    app: TestApp,
    admin: String,
    user: String,
    user_id: uuid::Uuid,
}

async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let user_id = app.user("site1-noc", UserRole::User).await;
    let admin = app.token("root").await;
    let user = app.token("site1-noc").await;
    Setup {
        app,
        admin,
        user,
        user_id,
    }
}

/// Creates a policy as the admin and moves the user to it; answers the policy.
async fn site_policy(s: &Setup, body: Value) -> Value {
    let (status, policy) = s
        .app
        .send(Method::POST, "/api/v1/policies", &s.admin, body)
        .await;
    assert_eq!(status, 201, "{policy}");
    let (status, user) = s
        .app
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{}", s.user_id),
            &s.admin,
            json!({ "policy_id": policy["id"] }),
        )
        .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["policy_id"], policy["id"]);
    policy
}

/// A request the policy must refuse: 422, the code, the detail naming `mentions`, and no
/// row written.
async fn refused(s: &Setup, token: &str, body: Value, code: &str, mentions: &[&str]) -> Value {
    let before = s.app.written_rows().await;
    let keys_before = s.app.state.authority.issuer.leaf_keys_generated();
    let (status, problem) = s
        .app
        .send(Method::POST, "/api/v1/certificates", token, body)
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], code, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    for m in mentions {
        assert!(detail.contains(m), "{detail:?} should mention {m:?}");
    }
    assert_eq!(s.app.written_rows().await, before, "a refusal wrote rows");
    assert_eq!(
        s.app.state.authority.issuer.leaf_keys_generated(),
        keys_before,
        "a refusal generated a key"
    );
    problem
}

fn issue_body(cn: &str, sans: &[&str]) -> Value {
    json!({ "subject": format!("CN={cn}"), "san": sans })
}

#[tokio::test]
async fn the_default_policy_keeps_todays_behaviour_but_refuses_public_suffix_wildcards_and_reserved_names()
 {
    let s = setup().await;
    // Any name and address, as before.
    s.app
        .issue(
            &s.user,
            issue_body(
                "edge-1",
                &["edge-1.example.net", "192.0.2.7", "2001:db8::7"],
            ),
        )
        .await;
    let (status, me) = s.app.get("/api/v1/users/me/policy", &s.user).await;
    assert_eq!(status, 200);
    assert_eq!(me["name"], "default");
    assert_eq!(me["allowed_dns"], json!(["*"]));
    for wildcard in ["*.com", "*.co.uk"] {
        refused(
            &s,
            &s.user,
            issue_body("x", &[wildcard]),
            "name_not_allowed",
            &[wildcard, "public-suffix wildcard"],
        )
        .await;
    }
    // KeyInfra's own names: a USER is refused, an ADMIN may.
    for reserved in ["localhost", "127.0.0.1"] {
        refused(
            &s,
            &s.user,
            issue_body("x", &[reserved]),
            "name_not_allowed",
            &[reserved, "reserved name"],
        )
        .await;
    }
    s.app
        .issue(&s.admin, issue_body("local", &["localhost"]))
        .await;
}

#[tokio::test]
async fn a_site_policy_allows_its_names_and_refuses_every_other_with_the_rule() {
    let s = setup().await;
    let policy = site_policy(
        &s,
        json!({
            "name": "site1",
            "allowed_dns": ["*.site1.example.net", ".lab.site1.example.net", "router1.site1.example.net"],
            "denied_dns": ["bad.lab.site1.example.net"],
            "allowed_ips": ["192.0.2.0/24"],
            "subject": {"allowed_attributes": ["CN", "O"], "fixed": {"O": "Example Corp"}},
            "profiles": ["device"],
            "key_algorithms": ["ecdsa-p256", "rsa-3072"],
            "min_rsa_bits": 3072,
            "max_validity_days": 90,
        }),
    )
    .await;
    assert_eq!(policy["name"], "site1");
    // Omitted fields took the default policy's values.
    assert_eq!(policy["allowed_emails"], json!([]));

    // Allowed: one label under the wildcard, the wildcard itself (it covers no denied
    // name), any depth under the dot pattern, an address in range. The fixed O is added.
    let cert = s
        .app
        .issue(
            &s.user,
            json!({
                "subject": "CN=sw1.site1.example.net",
                "san": ["sw1.site1.example.net", "*.site1.example.net", "a.b.lab.site1.example.net", "192.0.2.9"],
                "validity_days": 90,
            }),
        )
        .await;
    assert_eq!(cert["subject"], "CN=sw1.site1.example.net,O=Example Corp");

    refused(
        &s,
        &s.user,
        issue_body("x", &["a.b.site1.example.net"]),
        "name_not_allowed",
        &["a.b.site1.example.net", "not in allowed names"],
    )
    .await;
    refused(
        &s,
        &s.user,
        issue_body("x", &["bad.lab.site1.example.net"]),
        "name_not_allowed",
        &["bad.lab.site1.example.net", "denied by"],
    )
    .await;
    refused(
        &s,
        &s.user,
        issue_body("x", &["site2.example.net"]),
        "name_not_allowed",
        &["site2.example.net", "not in allowed names"],
    )
    .await;
    refused(
        &s,
        &s.user,
        issue_body("x", &["198.51.100.1"]),
        "name_not_allowed",
        &["198.51.100.1"],
    )
    .await;
    // The CN is checked like a SAN when it is a host name.
    refused(
        &s,
        &s.user,
        issue_body("evil.example.com", &[]),
        "name_not_allowed",
        &["evil.example.com"],
    )
    .await;
    refused(
        &s,
        &s.user,
        json!({"subject": "CN=x,O=Other", "san": []}),
        "subject_not_allowed",
        &["O"],
    )
    .await;
    refused(
        &s,
        &s.user,
        json!({"subject": "CN=x,OU=Ops", "san": []}),
        "subject_not_allowed",
        &["OU"],
    )
    .await;
    refused(
        &s,
        &s.user,
        json!({"subject": "CN=x", "profile": "server"}),
        "profile_not_allowed",
        &["server"],
    )
    .await;
    refused(
        &s,
        &s.user,
        json!({"subject": "CN=x", "key_algorithm": "ed25519"}),
        "key_algorithm_not_allowed",
        &["ed25519"],
    )
    .await;
    refused(
        &s,
        &s.user,
        json!({"subject": "CN=x", "key_algorithm": "rsa-2048"}),
        "key_algorithm_not_allowed",
        &["rsa-2048"],
    )
    .await;
    refused(
        &s,
        &s.user,
        json!({"subject": "CN=x", "validity_days": 91}),
        "validity_too_long",
        &["90"],
    )
    .await;
    // Names from a CSR are checked exactly like names given in JSON.
    let csr = keyinfra_pki_csr("evil.example.com");
    refused(
        &s,
        &s.user,
        json!({"csr": csr}),
        "name_not_allowed",
        &["evil.example.com"],
    )
    .await;
}

/// A CSR for `name` (CN and SAN), made by openssl.
fn keyinfra_pki_csr(name: &str) -> String {
    let dir = Scratch::new();
    let out = dir.path("device.csr");
    let key = dir.path("device.key");
    let subject = format!("/CN={name}");
    let san = format!("subjectAltName=DNS:{name}");
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
        "-subj",
        &subject,
        "-addext",
        &san,
        "-out",
        &out,
    ]);
    String::from_utf8(dir.read("device.csr")).unwrap()
}

#[tokio::test]
async fn a_dry_run_answers_what_would_be_issued_or_the_refusal_and_writes_nothing() {
    let s = setup().await;
    site_policy(&s, json!({"name": "site1", "allowed_dns": [".site1.example.net"], "subject": {"allowed_attributes": ["CN","O"], "fixed": {"O": "Example Corp"}}})).await;
    let before = s.app.written_rows().await;
    let (status, preview) = s
        .app
        .send(
            Method::POST,
            "/api/v1/certificates?dry_run=true",
            &s.user,
            json!({"subject": "CN=ap1", "san": ["ap1.site1.example.net"], "key_algorithm": "rsa-4096", "validity_days": 30}),
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["subject"], "CN=ap1,O=Example Corp");
    assert_eq!(
        preview["subject_alt_names"],
        json!(["DNS:ap1.site1.example.net"])
    );
    assert_eq!(preview["validity_days"], 30);
    assert_eq!(preview["policy_name"], "site1");
    assert_eq!(preview["key_algorithm"], "rsa-4096");
    let (status, problem) = s
        .app
        .send(
            Method::POST,
            "/api/v1/certificates?dry_run=true",
            &s.user,
            json!({"subject": "CN=ap1", "san": ["ap1.elsewhere.net"]}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(problem["code"], "name_not_allowed");
    assert_eq!(s.app.written_rows().await, before);
    assert_eq!(s.app.state.authority.issuer.leaf_keys_generated(), 0);
    let (status, problem) = s
        .app
        .send(
            Method::POST,
            "/api/v1/certificates?dry_run=yes",
            &s.user,
            json!({"subject": "CN=a"}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("invalid_dry_run"))
    );
}

#[tokio::test]
async fn a_tightened_policy_refuses_renewal_and_reassignment_unless_forced() {
    let s = setup().await;
    let other = s.app.user("site2-noc", UserRole::User).await;
    let cert = s
        .app
        .issue(&s.user, issue_body("old", &["old.example.net"]))
        .await;
    let id = cert["id"].as_str().unwrap();
    // The default policy is tightened: example.net is no longer allowed.
    let (_, policies) = s.app.get("/api/v1/policies", &s.admin).await;
    let default_id = policies["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "default")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, changed) = s
        .app
        .send(
            Method::PATCH,
            &format!("/api/v1/policies/{default_id}"),
            &s.admin,
            json!({"allowed_dns": [".example.org"]}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let (status, problem) = s
        .app
        .send(
            Method::POST,
            &format!("/api/v1/certificates/{id}/renew"),
            &s.admin,
            json!({}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "name_not_allowed");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("no longer allows"),
        "{problem}"
    );

    // Reassignment checks the new owner's policy (site2 holds the default too).
    let path = format!("/api/v1/certificates/{id}");
    let (status, problem) = s
        .app
        .send(Method::PATCH, &path, &s.admin, json!({"owner_id": other}))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "name_not_allowed");
    let (status, moved) = s
        .app
        .send(
            Method::PATCH,
            &path,
            &s.admin,
            json!({"owner_id": other, "force": true}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["owner_id"], json!(other));

    // Both changes are audited, the policy's with old and new values.
    let (_, events) = s
        .app
        .get("/api/v1/audit?action=policy.updated", &s.admin)
        .await;
    let event = &events["items"][0];
    assert_eq!(event["details"]["old"]["allowed_dns"], json!(["*"]));
    assert_eq!(
        event["details"]["new"]["allowed_dns"],
        json!([".example.org"])
    );
    let (_, events) = s
        .app
        .get("/api/v1/audit?action=certificate.reassigned", &s.admin)
        .await;
    assert_eq!(events["items"][0]["details"]["forced"], true);
}

#[tokio::test]
async fn policies_are_managed_by_admins_and_checked_before_they_are_stored() {
    let s = setup().await;
    // A USER may not list, read or create policies, nor move itself.
    let (status, _) = s.app.get("/api/v1/policies", &s.user).await;
    assert_eq!(status, 403);
    let (status, _) = s
        .app
        .send(
            Method::POST,
            "/api/v1/policies",
            &s.user,
            json!({"name": "mine"}),
        )
        .await;
    assert_eq!(status, 403);
    let policy = site_policy(&s, json!({"name": "site1"})).await;
    let (status, _) = s
        .app
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{}", s.user_id),
            &s.user,
            json!({"policy_id": keyinfra_core::policy::DEFAULT_POLICY_ID}),
        )
        .await;
    assert_eq!(status, 403);

    for (body, mentions) in [
        (json!({"name": "Bad Name"}), "name"),
        (
            json!({"name": "x", "allowed_dns": ["a*.example.net"]}),
            "allowed_dns",
        ),
        (
            json!({"name": "x", "allowed_ips": ["300.1.2.3/8"]}),
            "allowed_ips",
        ),
        (json!({"name": "x", "profiles": ["nosuch"]}), "profiles"),
        (
            json!({"name": "x", "key_algorithms": ["dsa-1024"]}),
            "key_algorithms",
        ),
        (json!({"name": "x", "min_rsa_bits": 1024}), "min_rsa_bits"),
        (
            json!({"name": "x", "max_validity_days": 0}),
            "max_validity_days",
        ),
        (
            json!({"name": "x", "subject": {"allowed_attributes": ["CN", "XX"], "fixed": {}}}),
            "XX",
        ),
        (
            json!({"name": "x", "ca_ids": [uuid::Uuid::nil()]}),
            "ca_ids",
        ),
    ] {
        let (status, problem) = s
            .app
            .send(Method::POST, "/api/v1/policies", &s.admin, body.clone())
            .await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["code"], "invalid_policy", "{body}");
        assert!(
            problem["detail"].as_str().unwrap().contains(mentions),
            "{body}: {problem}"
        );
    }
    let (status, problem) = s
        .app
        .send(
            Method::POST,
            "/api/v1/policies",
            &s.admin,
            json!({"name": "site1"}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("policy_name_taken"))
    );

    // Deleting a policy a user holds is refused; once the user moves, it goes.
    let path = format!("/api/v1/policies/{}", policy["id"].as_str().unwrap());
    let (status, problem) = s
        .app
        .send(Method::DELETE, &path, &s.admin, Value::Null)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("policy_in_use"))
    );
    let (status, _) = s
        .app
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{}", s.user_id),
            &s.admin,
            json!({"policy_id": keyinfra_core::policy::DEFAULT_POLICY_ID}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = s
        .app
        .send(Method::DELETE, &path, &s.admin, Value::Null)
        .await;
    assert_eq!(status, 204);
    let (status, _) = s.app.get(&path, &s.admin).await;
    assert_eq!(status, 404);
    let (_, events) = s
        .app
        .get("/api/v1/audit?action=policy.deleted", &s.admin)
        .await;
    assert_eq!(events["items"][0]["details"]["old"]["name"], "site1");
}

#[tokio::test]
async fn only_an_admin_may_name_the_policy_a_request_is_checked_against() {
    let s = setup().await;
    let strict = site_policy(
        &s,
        json!({"name": "strict", "allowed_dns": [".strict.example.net"]}),
    )
    .await;
    // Back to the default policy: the user names the strict one and is refused (403).
    let (status, _) = s
        .app
        .send(
            Method::PATCH,
            &format!("/api/v1/users/{}", s.user_id),
            &s.admin,
            json!({"policy_id": keyinfra_core::policy::DEFAULT_POLICY_ID}),
        )
        .await;
    assert_eq!(status, 200);
    let body = json!({"subject": "CN=x", "san": ["x.elsewhere.net"], "policy_id": strict["id"]});
    let (status, _) = s
        .app
        .send(Method::POST, "/api/v1/certificates", &s.user, body.clone())
        .await;
    assert_eq!(status, 403);
    // An ADMIN issuing under the strict policy is held to it, and to nothing else.
    refused(
        &s,
        &s.admin,
        body,
        "name_not_allowed",
        &["x.elsewhere.net", "strict"],
    )
    .await;
    s.app
        .issue(
            &s.admin,
            json!({"subject": "CN=y", "san": ["y.strict.example.net"], "policy_id": strict["id"]}),
        )
        .await;
    let (status, problem) = s
        .app
        .send(
            Method::POST,
            "/api/v1/certificates",
            &s.admin,
            json!({"subject": "CN=y", "policy_id": uuid::Uuid::nil()}),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("unknown_policy"))
    );
}
