//! SCEP enrollment in the UI (issue 19): a user creates a challenge in the browser, sees
//! its secret once (the secret works: the SCEP handler's claim takes it), never again on the
//! list; the list shows the user's own challenges (an ADMIN's everyone's) with their state;
//! withdrawing works; bad input is shown next to its field with nothing created; every form
//! needs the CSRF token. An ADMIN approves and rejects held enrollments, which the device's
//! poll then sees; nobody else sees or decides them.

use fantoccini::Locator;
use keyinfra_core::enrollment::{HeldEnrollment, PollAnswer};
use keyinfra_core::issuer::{IssueRequest, KeySource};
use keyinfra_core::principal::EnrollmentChannel;
use keyinfra_core::{OsRandom, Principal};
use keyinfra_db::UserRole;
use keyinfra_pki::scep::client;
use keyinfra_pki::{KeyAlgorithm, PrivateKey};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Browser, csrf_of, form_login, page, post_form};
use crate::support::{PASSWORD, TestApp};

const ALPHABET: &str = "23456789abcdefghijkmnpqrstuvwxyz";
const API: &str = "/api/v1/enrollment/challenges";

/// The text of the first element that matches a CSS selector.
async fn text_of(b: &Browser, css: &str) -> String {
    b.client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// The challenges the token's user sees through the API.
async fn api_list(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("{API}?limit=500"), token).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn challenge_rows(app: &TestApp) -> i64 {
    app.tdb
        .scalar_i64("SELECT count(*) FROM enrollment_challenges")
        .await
}

/// The create form's fields as sent.
type Fields = Vec<(&'static str, String)>;

/// A row's state as the list page marks it (`data-state`), or None without the row.
fn row_state(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"challenge-{id}\" data-state=\"");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..].split('"').next().unwrap().to_owned())
}

#[tokio::test]
async fn a_user_creates_a_challenge_in_the_browser_sees_it_once_and_withdraws_one() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice", UserRole::Admin).await;
    let bob = app.user("bob", UserRole::User).await;
    app.user("carol", UserRole::User).await;
    let bob_token = app.token("bob").await;
    let carol_token = app.token("carol").await;
    let (status, carols) = app.send(Method::POST, API, &carol_token, json!({})).await;
    assert_eq!(status, 201);
    let carols_id = carols["id"].as_str().unwrap().to_owned();

    let browser = Browser::start().await;
    let b = &browser;
    b.log_in(&app.base, "bob", PASSWORD).await;
    // Every user has the page in the top bar.
    b.click_to_next_page("nav.mainnav a[href='/ui/enrollment']")
        .await;
    assert_eq!(b.path().await, "/ui/enrollment");
    let empty = b.source().await;
    assert!(
        empty.contains("No challenges yet."),
        "bob sees no one else's"
    );
    assert!(!empty.contains(&carols_id) && !empty.contains("for=\"owner_id\""));
    let expires = b
        .client
        .find(Locator::Id("expires_in_minutes"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(expires.as_deref(), Some("60"), "60 minutes unless changed");
    b.screenshot("enrollment-empty").await;

    // Bad input: the form again with the use case's reason at the field, nothing created.
    b.fill("subject", "CN=bob-ap-1,O=Example").await;
    b.fill("names", "bob-ap-1.example.net\n192.0.2.7").await;
    b.fill("validity_days", "5000").await;
    b.click_to_next_page("#create-submit").await;
    let refused = text_of(b, "#validity-error").await;
    assert!(refused.contains("825"), "{refused}");
    assert!(
        b.source().await.contains("value=\"CN=bob-ap-1,O=Example\""),
        "the form keeps what was typed"
    );
    assert_eq!(challenge_rows(&app).await, 1, "nothing created");
    b.screenshot("enrollment-refused").await;

    // Created: the secret, its id and expiry, and how a device uses it.
    b.fill("validity_days", "90").await;
    b.click_to_next_page("#create-submit").await;
    let secret = text_of(b, "#challenge-secret").await;
    assert_eq!(secret.len(), 32, "{secret}");
    assert!(secret.chars().all(|c| ALPHABET.contains(c)), "{secret}");
    let id = text_of(b, "#challenge-id").await;
    let scep_url = text_of(b, "#scep-url").await;
    assert_eq!(scep_url, format!("{}/scep", app.base));
    // EST takes the same challenge as HTTP Basic `{id}:{secret}`.
    assert_eq!(
        text_of(b, "#est-credential").await,
        format!("{id}:{secret}")
    );
    let shown = b.source().await;
    assert!(shown.contains("challengePassword") && shown.contains("shown only this once"));
    b.screenshot("enrollment-created").await;
    // The URL the page names answers SCEP.
    let caps = reqwest::get(format!("{scep_url}?operation=GetCACaps"))
        .await
        .unwrap();
    assert_eq!(caps.status(), 200);

    // The API lists the same challenge, with the terms typed in the form.
    let listed = api_list(&app, &bob_token).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["owner_id"], bob.to_string());
    assert_eq!(listed[0]["state"], "active");
    assert_eq!(listed[0]["validity_days"], 90);
    assert_eq!(listed[0]["subject"], "CN=bob-ap-1,O=Example");
    assert_eq!(
        listed[0]["names"],
        json!(["DNS:bob-ap-1.example.net", "IP:192.0.2.7"])
    );
    assert_eq!(listed[0]["approval"], false);
    let expires_at = listed[0]["expires_at"].as_str().unwrap();
    assert!(
        text_of(b, "#challenge-expires")
            .await
            .starts_with(&expires_at[..10]),
        "the expiry shown is the stored one"
    );

    // The list has the row, never the secret.
    b.click_to_next_page("a.button.primary").await;
    assert_eq!(b.path().await, "/ui/enrollment");
    let list = b.source().await;
    assert!(!list.contains(&secret), "the secret is shown once");
    assert_eq!(row_state(&list, &id).as_deref(), Some("open"));
    assert!(list.contains("bob-ap-1.example.net") && list.contains("192.0.2.7"));
    assert!(list.contains("in 60 minutes") || list.contains("in 59 minutes"));
    assert!(row_state(&list, &carols_id).is_none(), "only bob's own");
    b.screenshot_sized("enrollment-list", 1280, 1500).await;

    // The secret shown is the real one: the SCEP handler's claim takes it, and the
    // certificate it records is linked from the row, which has no Withdraw any more.
    let grant = app
        .state
        .authority
        .challenges
        .claim(&app.db, &secret)
        .await
        .unwrap()
        .expect("the shown secret is a live challenge");
    assert_eq!(grant.id.to_string(), id);
    assert_eq!(grant.owner_id, bob);
    // Bob's device enrolls with it: the issue links the challenge to its certificate.
    let device = Principal::Enrollment {
        channel: EnrollmentChannel::Scep,
        owner: bob,
        challenge_id: Some(grant.id),
    };
    let cert_id = app
        .state
        .authority
        .issuer
        .issue(
            &app.db,
            &device,
            IssueRequest {
                key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
                subject: Some("CN=bob-ap-1".into()),
                san: None,
                profile: grant.profile.clone(),
                validity_days: Some(90),
                owner_id: None,
                ca_id: None,
                policy_id: None,
            },
            &mut OsRandom,
        )
        .await
        .unwrap()
        .id;
    b.goto(&app, "/ui/enrollment").await;
    let list = b.source().await;
    assert_eq!(row_state(&list, &id).as_deref(), Some("used"));
    assert!(list.contains(&format!("href=\"/ui/certificates/{cert_id}\"")));
    assert!(!list.contains(&format!("/ui/enrollment/{id}/withdraw")));

    // A second one, with approval, withdrawn from the list.
    b.fill("expires_in_minutes", "5").await;
    b.click("#approval").await;
    b.click_to_next_page("#create-submit").await;
    let second = text_of(b, "#challenge-id").await;
    assert!(b.source().await.contains("required: the device waits"));
    b.goto(&app, "/ui/enrollment").await;
    assert_eq!(
        row_state(&b.source().await, &second).as_deref(),
        Some("open")
    );
    assert!(b.source().await.contains("Approval required</span>"));
    b.click_to_next_page(&format!(
        "form[action='/ui/enrollment/{second}/withdraw'] button"
    ))
    .await;
    assert_eq!(b.path().await, "/ui/enrollment");
    let after = b.source().await;
    assert!(after.contains("id=\"enrollment-notice\""));
    assert_eq!(row_state(&after, &second).as_deref(), Some("withdrawn"));
    assert!(!after.contains(&format!("/ui/enrollment/{second}/withdraw")));
    let listed = api_list(&app, &bob_token).await;
    let withdrawn = listed.iter().find(|c| c["id"] == second.as_str()).unwrap();
    assert_eq!(withdrawn["state"], "withdrawn");
    assert_eq!(withdrawn["approval"], true);
    b.screenshot_sized("enrollment-withdrawn", 1280, 1500).await;
    b.log_out().await;

    // The admin sees everyone's, with their owners, and creates one for bob.
    b.log_in(&app.base, "alice", PASSWORD).await;
    b.goto(&app, "/ui/enrollment").await;
    let admins = b.source().await;
    for one in [&id, &second, &carols_id] {
        assert!(
            row_state(&admins, one).is_some(),
            "{one} in the admin's list"
        );
    }
    assert!(admins.contains("<td>carol</td>") && admins.contains("<td>bob</td>"));
    b.click(&format!("#owner_id option[value='{bob}']")).await;
    b.click_to_next_page("#create-submit").await;
    let for_bob = text_of(b, "#challenge-id").await;
    b.screenshot("enrollment-created-admin").await;
    // Bob's logout ended his earlier tokens: a new one.
    let listed = api_list(&app, &app.token("bob").await).await;
    let made = listed.iter().find(|c| c["id"] == for_bob.as_str()).unwrap();
    assert_eq!(made["owner_id"], bob.to_string());
    assert_eq!(made["created_by"], alice.to_string());
    assert_eq!(made["profile"], "device");
    browser.quit().await;
}

#[tokio::test]
async fn bad_input_shows_at_its_field_and_writes_nothing_and_forms_need_the_csrf_token() {
    let app = TestApp::spawn().await;
    app.user("alice", UserRole::Admin).await;
    app.user("bob", UserRole::User).await;
    let carol = app.user("carol", UserRole::User).await;
    let bob_token = app.token("bob").await;
    let carol_token = app.token("carol").await;
    let (cookie, _) = form_login(&app, "bob").await;
    let (status, html) = page(&app, &cookie, "/ui/enrollment").await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&html);
    let carol_id = carol.to_string();
    let form = |changes: &[(&'static str, &str)]| {
        let mut form: Fields = vec![
            ("csrf", csrf.clone()),
            ("profile", "device".into()),
            ("validity_days", "".into()),
            ("expires_in_minutes", "60".into()),
            ("subject", "CN=bob-ap-1".into()),
            ("names", "".into()),
        ];
        for (name, value) in changes {
            form.retain(|(n, _)| n != name);
            form.push((name, (*value).to_owned()));
        }
        form
    };
    let refusals: Vec<(Fields, u16, &str)> = vec![
        (form(&[("csrf", "")]), 403, "reload the page"),
        (
            form(&[("validity_days", "ninety")]),
            422,
            "id=\"validity-error\"",
        ),
        (
            form(&[("validity_days", "5000")]),
            422,
            "id=\"validity-error\"",
        ),
        (
            form(&[("validity_days", "0")]),
            422,
            "id=\"validity-error\"",
        ),
        (
            form(&[("expires_in_minutes", "0")]),
            422,
            "id=\"expires-error\"",
        ),
        (
            form(&[("expires_in_minutes", "10081")]),
            422,
            "id=\"expires-error\"",
        ),
        (
            form(&[("expires_in_minutes", "soon")]),
            422,
            "id=\"expires-error\"",
        ),
        (
            form(&[("subject", "CN=x,Nonsense")]),
            422,
            "id=\"subject-error\"",
        ),
        (
            form(&[("names", "not a host name!")]),
            422,
            "id=\"names-error\"",
        ),
        (form(&[("profile", "nope")]), 422, "id=\"profile-error\""),
        (form(&[("owner_id", "someone")]), 422, "id=\"owner-error\""),
        (
            form(&[("owner_id", carol_id.as_str())]),
            403,
            "Only administrators may create challenges for another user.",
        ),
    ];
    for (fields, status, marker) in refusals {
        let sent: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let (answer, _, body) = post_form(&app, &cookie, "/ui/enrollment", &sent).await;
        assert_eq!(answer, status, "{fields:?}");
        assert!(
            body.contains(marker),
            "{marker} in the answer to {fields:?}"
        );
        if status == 422 {
            assert!(body.contains("id=\"create-form\""), "the form again");
        }
        assert_eq!(challenge_rows(&app).await, 0, "nothing created: {fields:?}");
    }

    // The form as sent creates one for bob; the answer has the secret, the list not.
    let good: Fields = form(&[("names", "bob-ap-1.example.net\n\n192.0.2.7\n")]);
    let sent: Vec<(&str, &str)> = good.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let (status, _, created) = post_form(&app, &cookie, "/ui/enrollment", &sent).await;
    assert_eq!(status, 201);
    let listed = api_list(&app, &bob_token).await;
    assert_eq!(listed.len(), 1);
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        listed[0]["names"],
        json!(["DNS:bob-ap-1.example.net", "IP:192.0.2.7"])
    );
    assert!(created.contains(&format!("<code id=\"challenge-id\">{id}</code>")));
    let secret_start = created.find("id=\"challenge-secret\">").unwrap() + 22;
    let secret = &created[secret_start..secret_start + 32];
    assert!(secret.chars().all(|c| ALPHABET.contains(c)), "{secret}");
    let (_, list) = page(&app, &cookie, "/ui/enrollment").await;
    assert!(!list.contains(secret));
    assert_eq!(row_state(&list, &id).as_deref(), Some("open"));

    // Withdrawing: the CSRF token first; someone else's is the UI's 404, unchanged.
    let (status, _, _) = post_form(
        &app,
        &cookie,
        &format!("/ui/enrollment/{id}/withdraw"),
        &[("csrf", "wrong")],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(api_list(&app, &bob_token).await[0]["state"], "active");
    let (_, carols) = app.send(Method::POST, API, &carol_token, json!({})).await;
    let carols_id = carols["id"].as_str().unwrap();
    let (status, _, _) = post_form(
        &app,
        &cookie,
        &format!("/ui/enrollment/{carols_id}/withdraw"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(api_list(&app, &carol_token).await[0]["state"], "active");
    let (status, location, _) = post_form(
        &app,
        &cookie,
        &format!("/ui/enrollment/{id}/withdraw"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/ui/enrollment?done=withdrawn"));
    assert_eq!(api_list(&app, &bob_token).await[0]["state"], "withdrawn");

    // A used challenge (it produced a certificate) is not withdrawn: the list again, with
    // why.
    let (_, used) = app.send(Method::POST, API, &bob_token, json!({})).await;
    let used_id = used["id"].as_str().unwrap();
    let grant = app
        .state
        .authority
        .challenges
        .claim(&app.db, used["challenge"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let device = Principal::Enrollment {
        channel: EnrollmentChannel::Scep,
        owner: grant.owner_id,
        challenge_id: Some(grant.id),
    };
    let request = IssueRequest {
        key: KeySource::Generate(KeyAlgorithm::EcdsaP256),
        subject: Some("CN=bob-ap-2".into()),
        san: None,
        profile: grant.profile.clone(),
        validity_days: Some(90),
        owner_id: None,
        ca_id: None,
        policy_id: None,
    };
    app.state
        .authority
        .issuer
        .issue(&app.db, &device, request, &mut OsRandom)
        .await
        .unwrap();
    let (status, _, body) = post_form(
        &app,
        &cookie,
        &format!("/ui/enrollment/{used_id}/withdraw"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, 409);
    assert!(body.contains("id=\"withdraw-error\"") && body.contains("revoke the certificate"));
    assert_eq!(row_state(&body, used_id).as_deref(), Some("used"));

    // An expired one: its state, and no Withdraw (a session lasts less than an hour).
    let (_, fresh) = app
        .send(
            Method::POST,
            API,
            &bob_token,
            json!({"expires_in_minutes": 1}),
        )
        .await;
    let fresh_id = fresh["id"].as_str().unwrap();
    app.clock.advance(time::Duration::minutes(2));
    let (_, list) = page(&app, &cookie, "/ui/enrollment").await;
    assert_eq!(row_state(&list, fresh_id).as_deref(), Some("expired"));
    assert_eq!(row_state(&list, &id).as_deref(), Some("withdrawn"));
    assert!(!list.contains(&format!("/ui/enrollment/{fresh_id}/withdraw")));
}

/// What the SCEP handler does with a PKCSReq whose challenge asks for approval: claims the
/// challenge and holds the device's CSR (made with its own key, the challenge inside).
/// The transaction id and the key's hash, returned with the request's id, are what the
/// device's polls name it by.
async fn held_enrollment(
    app: &TestApp,
    owner_token: &str,
    cn: &str,
    transaction_id: &str,
) -> (Uuid, [u8; 32]) {
    let (status, created) = app
        .send(Method::POST, API, owner_token, json!({"approval": true}))
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["challenge"].as_str().unwrap();
    let grant = app
        .state
        .authority
        .challenges
        .claim(&app.db, secret)
        .await
        .unwrap()
        .unwrap();
    assert!(grant.approval);
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let csr = client::csr(&key, cn, Some(secret)).unwrap();
    let subject = format!("CN={cn}");
    let key_sha256 = key.public_key_fingerprint();
    let id = app
        .state
        .authority
        .enrollment_requests
        .hold(
            &app.db,
            &grant,
            HeldEnrollment {
                channel: EnrollmentChannel::Scep,
                transaction_id,
                requester_key_sha256: &key_sha256,
                csr_der: &csr,
                requested_subject: Some(&subject),
            },
        )
        .await
        .unwrap();
    (id, key_sha256)
}

/// What the device's poll for this transaction, signed with the key of this hash, learns.
async fn poll(app: &TestApp, transaction_id: &str, key_sha256: &[u8; 32]) -> PollAnswer {
    app.state
        .authority
        .enrollment_requests
        .poll(&app.db, EnrollmentChannel::Scep, transaction_id, key_sha256)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_admin_approves_and_rejects_held_enrollments_and_nobody_else_sees_them() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let fay = app.user("fay", UserRole::User).await;
    let admin_token = app.token("root").await;
    let fay_token = app.token("fay").await;
    let (first, first_key) = held_enrollment(&app, &fay_token, "held-device", "TX-UI-1").await;
    let (second, second_key) = held_enrollment(&app, &fay_token, "other-device", "TX-UI-2").await;
    let request = |id: Uuid| {
        let app = &app;
        let admin_token = admin_token.clone();
        async move {
            let (status, request) = app
                .get(&format!("/api/v1/enrollment/requests/{id}"), &admin_token)
                .await;
            assert_eq!(status, 200, "{request}");
            request
        }
    };

    // The owner, a USER, neither sees the table nor decides: the UI's 404, still pending.
    let (cookie, _) = form_login(&app, "fay").await;
    let (_, html) = page(&app, &cookie, "/ui/enrollment").await;
    assert!(!html.contains("Waiting for approval") && !html.contains("TX-UI-1"));
    let csrf = csrf_of(&html);
    for action in ["approve", "reject"] {
        let (status, _, _) = post_form(
            &app,
            &cookie,
            &format!("/ui/enrollment/requests/{first}/{action}"),
            &[("csrf", &csrf)],
        )
        .await;
        assert_eq!(status, 404, "{action}");
    }
    assert_eq!(request(first).await["state"], "pending");

    // The ADMIN sees both, oldest first, with what the device asked for and whose it is.
    let browser = Browser::start().await;
    let b = &browser;
    b.log_in(&app.base, "root", PASSWORD).await;
    b.goto(&app, "/ui/enrollment").await;
    let html = b.source().await;
    let (at_first, at_second) = (
        html.find(&format!("id=\"request-{first}\""))
            .expect("the first"),
        html.find(&format!("id=\"request-{second}\""))
            .expect("the second"),
    );
    assert!(at_first < at_second, "oldest first");
    for shown in [
        "CN=held-device",
        "CN=other-device",
        "TX-UI-1",
        "<td>fay</td>",
    ] {
        assert!(html.contains(shown), "{shown}");
    }
    b.screenshot_sized("enrollment-pending", 1280, 1100).await;

    // Approve: issued for the challenge's owner, linked from the challenge, and the
    // device's poll collects it.
    b.click_to_next_page(&format!(
        "form[action='/ui/enrollment/requests/{first}/approve'] button"
    ))
    .await;
    assert_eq!(b.path().await, "/ui/enrollment");
    let html = b.source().await;
    assert!(html.contains("id=\"enrollment-notice\"") && html.contains("approved"));
    assert!(!html.contains(&format!("id=\"request-{first}\"")));
    assert!(html.contains(&format!("id=\"request-{second}\"")));
    let approved = request(first).await;
    assert_eq!(approved["state"], "approved");
    let certificate_id = approved["certificate_id"].as_str().unwrap().to_owned();
    let (status, certificate) = app
        .get(
            &format!("/api/v1/certificates/{certificate_id}"),
            &admin_token,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(certificate["owner_id"], fay.to_string());
    assert_eq!(certificate["subject"], "CN=held-device");
    assert!(html.contains(&format!("href=\"/ui/certificates/{certificate_id}\"")));
    match poll(&app, "TX-UI-1", &first_key).await {
        PollAnswer::Issued(der) => assert_eq!(
            hex::encode(keyinfra_pki::sha256_fingerprint(&der)),
            certificate["fingerprint_sha256"].as_str().unwrap()
        ),
        other => panic!("the device collects its certificate, not {other:?}"),
    }

    // Reject, with a reason: the device's poll is refused, nothing issued.
    b.fill(&format!("reason-{second}"), "not one of ours").await;
    b.click_to_next_page(&format!(
        "form[action='/ui/enrollment/requests/{second}/reject'] button"
    ))
    .await;
    let html = b.source().await;
    assert!(html.contains("rejected") && html.contains("Nothing waits for approval."));
    let rejected = request(second).await;
    assert_eq!(rejected["state"], "rejected");
    assert_eq!(rejected["reason"], "not one of ours");
    assert!(rejected["certificate_id"].is_null());
    assert_eq!(
        poll(&app, "TX-UI-2", &second_key).await,
        PollAnswer::Refused
    );
    b.screenshot("enrollment-decided").await;
    browser.quit().await;

    // A decision is final: approving the rejected one says so on the page (409), and
    // nothing is issued.
    let (admin_cookie, _) = form_login(&app, "root").await;
    let (_, html) = page(&app, &admin_cookie, "/ui/enrollment").await;
    let admin_csrf = csrf_of(&html);
    let (status, _, body) = post_form(
        &app,
        &admin_cookie,
        &format!("/ui/enrollment/requests/{second}/approve"),
        &[("csrf", &admin_csrf)],
    )
    .await;
    assert_eq!(status, 409);
    assert!(body.contains("id=\"requests-error\"") && body.contains("already rejected"));
    assert!(request(second).await["certificate_id"].is_null());
    // Without the CSRF token nothing is decided.
    let (third, _) = held_enrollment(&app, &fay_token, "third-device", "TX-UI-3").await;
    let (status, _, _) = post_form(
        &app,
        &admin_cookie,
        &format!("/ui/enrollment/requests/{third}/reject"),
        &[("csrf", "forged")],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(request(third).await["state"], "pending");
}
