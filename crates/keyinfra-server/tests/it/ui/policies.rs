//! Issuance policies in the UI (issue 17): an admin writes a policy and moves a user to it
//! in the browser; the user's issue page shows the policy, "Preview names" runs the dry run
//! (fixed attributes added, names outside the policy refused) and writes nothing, and the
//! issue itself is refused with the same message. The pages are for admins, every form
//! needs the CSRF token, and a policy users hold is not deleted.

use fantoccini::Locator;
use keyinfra_core::policy::DEFAULT_POLICY_ID;
use keyinfra_db::UserRole;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Browser, csrf_of, form_login, page, post_form};
use crate::support::{PASSWORD, TestApp};

impl Browser {
    /// The text of the first element that matches a CSS selector.
    async fn text_of(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .unwrap()
    }
}

/// How many certificates the admin's API sees.
async fn certificate_count(app: &TestApp, admin_token: &str) -> usize {
    let (status, page) = app.get("/api/v1/certificates?limit=500", admin_token).await;
    assert_eq!(status, 200);
    page["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn an_admin_writes_a_policy_in_the_browser_and_the_users_issue_page_follows_it() {
    let app = TestApp::spawn().await;
    app.user("alice", UserRole::Admin).await;
    let bob = app.user("bob", UserRole::User).await;
    let admin_token = app.token("alice").await;
    let browser = Browser::start().await;
    browser.log_in(&app.base, "alice", PASSWORD).await;

    // From the navigation to a new policy; it starts as a copy of the default's rules.
    browser.goto(&app, "/ui/users").await;
    browser.click_link("Policies").await;
    browser.wait_for("#new-name").await;
    assert!(browser.source().await.contains(">default</a>"));
    browser.fill("new-name", "site1").await;
    browser.fill("new-description", "Site 1 routers").await;
    browser.click_to_next_page("#new-policy-submit").await;
    browser.wait_for("#policy-notice").await;
    let path = browser.path().await;
    let id = path.strip_prefix("/ui/policies/").unwrap().to_owned();
    let (status, created) = app
        .get(&format!("/api/v1/policies/{id}"), &admin_token)
        .await;
    assert_eq!(status, 200);
    assert_eq!(created["name"], "site1");
    assert_eq!(created["description"], "Site 1 routers");
    assert_eq!(created["allowed_dns"], json!(["*"]), "the default's rules");

    // Edit it: names, a fixed O, fewer key algorithms, validity and quota.
    browser.fill("allowed_dns", ".site1.example.net").await;
    browser.fill("allowed_ips", "192.0.2.0/24").await;
    browser.fill("subject_fixed", "O=Example Corp").await;
    browser.fill("max_validity_days", "90").await;
    browser.fill("quota", "5").await;
    browser
        .click("input[name=key_algorithm][value=rsa-2048]")
        .await;
    browser.click_to_next_page("#policy-save").await;
    assert!(browser.text_of("#policy-notice").await.contains("saved"));
    let (_, saved) = app
        .get(&format!("/api/v1/policies/{id}"), &admin_token)
        .await;
    assert_eq!(saved["allowed_dns"], json!([".site1.example.net"]));
    assert_eq!(saved["allowed_ips"], json!(["192.0.2.0/24"]));
    assert_eq!(saved["subject"]["fixed"], json!({"O": "Example Corp"}));
    assert_eq!(saved["max_validity_days"], 90);
    assert_eq!(saved["quota"], 5);
    assert!(
        !saved["key_algorithms"]
            .as_array()
            .unwrap()
            .contains(&json!("rsa-2048"))
    );
    assert_eq!(
        saved["key_algorithms"].as_array().unwrap().len(),
        5,
        "only the one unticked"
    );
    assert_eq!(saved["profiles"], created["profiles"], "untouched");
    assert_eq!(
        saved["subject"]["allowed_attributes"],
        created["subject"]["allowed_attributes"]
    );

    // A refused save shows the use case's detail next to the field and keeps the form.
    browser
        .fill("allowed_dns", ".site1.example.net\na*.example.net")
        .await;
    browser.fill("description", "typed, then refused").await;
    browser.click_to_next_page("#policy-save").await;
    browser.wait_for("#allowed_dns-error").await;
    assert!(
        browser
            .text_of("#allowed_dns-error")
            .await
            .contains("a*.example.net")
    );
    assert!(browser.text_of("#policy-error").await.contains("not saved"));
    let html = browser.source().await;
    assert!(html.contains("a*.example.net</textarea>") && html.contains("typed, then refused"));
    browser.screenshot_sized("policy-refused", 1280, 2400).await;
    let (_, unchanged) = app
        .get(&format!("/api/v1/policies/{id}"), &admin_token)
        .await;
    assert_eq!(unchanged, saved, "nothing saved");

    // Move bob to it from his page; the list and his page name it.
    browser.goto(&app, &format!("/ui/users/{bob}")).await;
    browser
        .client
        .find(Locator::Id("policy_id"))
        .await
        .unwrap()
        .select_by_value(&id)
        .await
        .unwrap();
    browser.click_to_next_page("#policy-submit").await;
    assert_eq!(browser.text_of("#user-policy").await, "site1");
    let (_, user) = app.get(&format!("/api/v1/users/{bob}"), &admin_token).await;
    assert_eq!(user["policy_id"], id.as_str());
    browser.goto(&app, "/ui/users").await;
    assert!(
        browser
            .source()
            .await
            .contains(&format!("<a href=\"/ui/policies/{id}\">site1</a>"))
    );

    // Bob holds it now: the policy cannot be deleted, and the page says why.
    browser.goto(&app, &format!("/ui/policies/{id}")).await;
    browser.click_to_next_page("#policy-delete").await;
    let refusal = browser.text_of("#policy-error").await;
    assert!(
        refusal.contains("not deleted") && refusal.contains("hold policy \"site1\""),
        "{refusal}"
    );
    let (status, _) = app
        .get(&format!("/api/v1/policies/{id}"), &admin_token)
        .await;
    assert_eq!(status, 200, "still there");

    // The list counts who holds each policy: bob holds site1 now.
    browser.goto(&app, "/ui/policies").await;
    let html = browser.source().await;
    let row_start = html
        .find(&format!("<a href=\"/ui/policies/{id}\">site1</a>"))
        .unwrap();
    let row = &html[row_start..row_start + html[row_start..].find("</tr>").unwrap()];
    assert!(
        row.trim_end().ends_with("<td class=\"nowrap\">1</td>"),
        "one holder in {row}"
    );

    // An admin may issue under another policy than its own: the form offers every policy,
    // and the dry run checks against the one chosen (site1 refuses what the default allows).
    browser.goto(&app, "/ui/certificates/new").await;
    browser.fill("subject", "CN=r0").await;
    browser.fill("san", "r0.other.example.net").await;
    browser
        .client
        .find(Locator::Id("policy_id"))
        .await
        .unwrap()
        .select_by_value(&id)
        .await
        .unwrap();
    browser.click_to_next_page("button[value=preview]").await;
    let refused = browser.text_of("#preview-refusal").await;
    assert!(refused.contains("name_not_allowed"), "{refused}");
    browser.fill("san", "r0.site1.example.net").await;
    browser.click_to_next_page("button[value=preview]").await;
    let preview = browser.text_of("#preview").await;
    assert!(
        preview.contains("site1") && preview.contains("Example Corp"),
        "{preview}"
    );
    browser.log_out().await;
    // Logging out ended every session of alice's, the API token's too.
    let admin_token = app.token("alice").await;

    // Bob's issue page shows what he may ask for.
    browser.log_in(&app.base, "bob", PASSWORD).await;
    browser.goto(&app, "/ui/certificates/new").await;
    assert!(
        !browser.source().await.contains("id=\"policy_id\""),
        "only admins choose a policy"
    );
    let summary = browser.text_of("#my-policy").await;
    for fact in [
        "Your issuance policy: site1",
        ".site1.example.net",
        "192.0.2.0/24",
        "O=Example Corp",
        "90 days",
        "at most 5",
    ] {
        assert!(summary.contains(fact), "{fact} in {summary}");
    }

    // "Preview names": the fixed O is added, and nothing is written.
    let written = app.written_rows().await;
    browser.fill("subject", "CN=r1").await;
    browser.fill("san", "r1.site1.example.net").await;
    browser.fill("validity_days", "30").await;
    browser.click_to_next_page("button[value=preview]").await;
    let preview = browser.text_of("#preview").await;
    for fact in [
        "Organization (O)",
        "Example Corp",
        "r1.site1.example.net",
        "30 days",
        "site1",
    ] {
        assert!(preview.contains(fact), "{fact} in {preview}");
    }
    browser
        .screenshot_sized("issue-preview-policy", 1280, 2200)
        .await;
    assert_eq!(
        app.written_rows().await,
        written,
        "the preview wrote nothing"
    );

    // A name outside the policy: the preview says it would be refused, and why.
    browser.fill("san", "r1.other.example.net").await;
    browser.click_to_next_page("button[value=preview]").await;
    let refused = browser.text_of("#preview-refusal").await;
    assert!(refused.contains("name_not_allowed"), "{refused}");
    let detail = browser.text_of("#preview-refusal .field-error").await;
    assert!(detail.contains("r1.other.example.net"), "{detail}");
    assert_eq!(browser.text_of("#san-error").await, detail);
    assert_eq!(
        app.written_rows().await,
        written,
        "the preview wrote nothing"
    );

    // The issue itself is refused with the same message, and creates nothing.
    browser.click_to_next_page("form button.primary").await;
    assert_eq!(browser.text_of("#san-error").await, detail);
    assert_eq!(app.written_rows().await, written);
    assert_eq!(certificate_count(&app, &admin_token).await, 0);

    // The previewed request issues what the preview showed.
    browser.fill("san", "r1.site1.example.net").await;
    browser.click_to_next_page("form button.primary").await;
    let path = browser.path().await;
    let cert_id = path.strip_prefix("/ui/certificates/").unwrap();
    let (_, cert) = app
        .get(&format!("/api/v1/certificates/{cert_id}"), &admin_token)
        .await;
    assert_eq!(cert["subject"], "CN=r1,O=Example Corp");
    assert_eq!(cert["san"], json!(["r1.site1.example.net"]));
    browser.quit().await;
}

/// A policy form with every field, changed by `changes` (a name given twice replaces).
fn policy_form<'a>(csrf: &'a str, changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("csrf", csrf),
        ("name", "lab"),
        ("description", "the lab"),
        ("allowed_dns", ".lab.example.net"),
        ("denied_dns", ""),
        ("allowed_ips", ""),
        ("allowed_emails", ""),
        ("allowed_uris", ""),
        ("subject_attribute", "CN"),
        ("subject_attribute", "O"),
        ("subject_fixed", ""),
        ("profile", "device"),
        ("key_algorithm", "ecdsa-p256"),
        ("min_rsa_bits", "2048"),
        ("max_validity_days", "90"),
        ("quota", ""),
    ];
    for (name, value) in changes {
        form.retain(|(n, _)| n != name);
        form.push((name, value));
    }
    form
}

#[tokio::test]
async fn policy_pages_are_for_admins_their_forms_need_the_token_and_refusals_change_nothing() {
    let app = TestApp::spawn().await;
    app.user("alice", UserRole::Admin).await;
    let bob = app.user("bob", UserRole::User).await;
    let admin_token = app.token("alice").await;
    let (status, lab) = app
        .send(
            Method::POST,
            "/api/v1/policies",
            &admin_token,
            json!({"name": "lab", "description": "the lab"}),
        )
        .await;
    assert_eq!(status, 201);
    let lab_id = lab["id"].as_str().unwrap().to_owned();
    let policies = "SELECT count(*) FROM issuance_policies";
    let count = app.tdb.scalar_i64(policies).await;

    // A USER gets the UI's 404 page for every policy page, and its posts change nothing.
    let (user_cookie, _) = form_login(&app, "bob").await;
    let user_csrf = csrf_of(&page(&app, &user_cookie, "/ui/certificates/new").await.1);
    for path in ["/ui/policies".to_owned(), format!("/ui/policies/{lab_id}")] {
        let (status, body) = page(&app, &user_cookie, &path).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("There is no page at this address."));
        assert!(!body.contains("the lab"));
    }
    let (status, _, _) = post_form(
        &app,
        &user_cookie,
        "/ui/policies",
        &[("csrf", &user_csrf), ("name", "mine")],
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = post_form(
        &app,
        &user_cookie,
        &format!("/ui/policies/{lab_id}/delete"),
        &[("csrf", &user_csrf)],
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = post_form(
        &app,
        &user_cookie,
        &format!("/ui/users/{bob}/policy"),
        &[("csrf", &user_csrf), ("policy_id", &lab_id)],
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(app.tdb.scalar_i64(policies).await, count);

    // Without the CSRF token every form is refused with 403 before anything changes.
    let (cookie, _) = form_login(&app, "alice").await;
    let (status, html) = page(&app, &cookie, &format!("/ui/policies/{lab_id}")).await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&html);
    let events = "SELECT count(*) FROM audit_events";
    let audited = app.tdb.scalar_i64(events).await;
    let (status, _, body) = post_form(&app, &cookie, "/ui/policies", &[("name", "sneaky")]).await;
    assert_eq!(status, 403);
    assert!(body.contains("reload the page"));
    let (status, _, _) = post_form(
        &app,
        &cookie,
        &format!("/ui/policies/{lab_id}"),
        &policy_form("", &[("name", "renamed")]),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = post_form(
        &app,
        &cookie,
        &format!("/ui/policies/{lab_id}/delete"),
        &[("csrf", "forged")],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = post_form(
        &app,
        &cookie,
        &format!("/ui/users/{bob}/policy"),
        &[("policy_id", &lab_id)],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(app.tdb.scalar_i64(policies).await, count);
    assert_eq!(app.tdb.scalar_i64(events).await, audited);
    let (_, now) = app
        .get(&format!("/api/v1/policies/{lab_id}"), &admin_token)
        .await;
    assert_eq!(now, lab, "unchanged");
    let (_, user) = app.get(&format!("/api/v1/users/{bob}"), &admin_token).await;
    assert_eq!(user["policy_id"], DEFAULT_POLICY_ID.to_string());

    // Bad input: the field that is wrong is marked, what was typed stays, nothing saved.
    let path = format!("/ui/policies/{lab_id}");
    for (changes, marker) in [
        (
            vec![("max_validity_days", "many")],
            "id=\"max_validity_days-error\"",
        ),
        (vec![("quota", "-3")], "id=\"quota-error\""),
        (
            vec![("subject_fixed", "O Example")],
            "id=\"subject_fixed-error\"",
        ),
        (
            vec![("allowed_dns", "a*.example.net")],
            "id=\"allowed_dns-error\"",
        ),
        (
            vec![("allowed_ips", "300.1.2.3/8")],
            "id=\"allowed_ips-error\"",
        ),
        (vec![("profile", "nosuch")], "id=\"profiles-error\""),
        (vec![("name", "Bad Name")], "id=\"name-error\""),
        (
            vec![("subject_fixed", "XX=1")],
            "id=\"subject_fixed-error\"",
        ),
    ] {
        let mut changes = changes;
        changes.push(("description", "kept as typed"));
        let (status, _, body) =
            post_form(&app, &cookie, &path, &policy_form(&csrf, &changes)).await;
        assert_eq!(status, 422, "{changes:?}");
        assert!(body.contains(marker), "{marker} for {changes:?}");
        assert!(body.contains("kept as typed"), "{changes:?}");
        let (_, now) = app
            .get(&format!("/api/v1/policies/{lab_id}"), &admin_token)
            .await;
        assert_eq!(now, lab, "nothing saved for {changes:?}");
    }
    let (status, _, body) = post_form(
        &app,
        &cookie,
        "/ui/policies",
        &[("csrf", &csrf), ("name", "lab")],
    )
    .await;
    assert_eq!(status, 409, "the name is taken");
    assert!(body.contains("id=\"new-name-error\""));
    assert_eq!(app.tdb.scalar_i64(policies).await, count);

    // A good save: every field as the form gives it, and audited with old and new.
    let (status, location, _) = post_form(
        &app,
        &cookie,
        &path,
        &policy_form(&csrf, &[("quota", "3"), ("subject_fixed", "O=Lab")]),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location.unwrap(), format!("{path}?saved=1"));
    let (_, now) = app
        .get(&format!("/api/v1/policies/{lab_id}"), &admin_token)
        .await;
    assert_eq!(now["profiles"], json!(["device"]));
    assert_eq!(now["key_algorithms"], json!(["ecdsa-p256"]));
    assert_eq!(now["subject"]["allowed_attributes"], json!(["CN", "O"]));
    assert_eq!(now["subject"]["fixed"], json!({"O": "Lab"}));
    assert_eq!(now["quota"], 3);
    let (_, log) = app
        .get("/api/v1/audit?action=policy.updated", &admin_token)
        .await;
    let event = &log["items"][0];
    assert_eq!(event["details"]["old"]["quota"], Value::Null);
    assert_eq!(event["details"]["new"]["quota"], 3);

    // Deleting a held policy is refused with 409 and the reason; once free, it goes.
    let (status, _, _) = post_form(
        &app,
        &cookie,
        &format!("/ui/users/{bob}/policy"),
        &[("csrf", &csrf), ("policy_id", &lab_id)],
    )
    .await;
    assert_eq!(status, 303);
    let (status, _, body) = post_form(
        &app,
        &cookie,
        &format!("/ui/policies/{lab_id}/delete"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, 409);
    assert!(body.contains("id=\"policy-error\"") && body.contains("1 user(s) hold policy"));
    assert_eq!(app.tdb.scalar_i64(policies).await, count);
    let default_id = DEFAULT_POLICY_ID.to_string();
    let (status, _, _) = post_form(
        &app,
        &cookie,
        &format!("/ui/users/{bob}/policy"),
        &[("csrf", &csrf), ("policy_id", &default_id)],
    )
    .await;
    assert_eq!(status, 303);
    let (status, location, _) = post_form(
        &app,
        &cookie,
        &format!("/ui/policies/{lab_id}/delete"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(location.as_deref(), Some("/ui/policies?deleted=1"));
    assert_eq!(app.tdb.scalar_i64(policies).await, count - 1);
    let (status, _) = app
        .get(&format!("/api/v1/policies/{lab_id}"), &admin_token)
        .await;
    assert_eq!(status, 404);
    // The default policy has no delete button, and its name cannot change.
    let (_, html) = page(&app, &cookie, &format!("/ui/policies/{default_id}")).await;
    assert!(!html.contains("id=\"policy-delete\"") && html.contains(" readonly"));
}
