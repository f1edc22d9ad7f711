//! The issue form: field errors, the preview, and nothing created on bad input.

use keyinfra_db::UserRole;
use serde_json::json;

use super::{csrf_of, form_login, page, post_form};
use crate::support::{PEPPER, TestApp, test_edge};

/// The issue form's fields as sent.
type IssueFormFields = Vec<(&'static str, String)>;

/// The fields as `post_form` sends them.
fn pairs(form: &IssueFormFields) -> Vec<(&str, &str)> {
    form.iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}

/// How many certificates the admin's API sees.
async fn certificate_count(app: &TestApp, admin_token: &str) -> usize {
    let (status, page) = app.get("/api/v1/certificates?limit=500", admin_token).await;
    assert_eq!(status, 200);
    page["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn the_issue_form_maps_errors_to_fields_and_creates_nothing_on_bad_input() {
    let app = TestApp::spawn().await;
    app.user("alice", UserRole::Admin).await;
    let bob = app.user("bob", UserRole::User).await;
    let carol = app.user("carol", UserRole::User).await;
    let admin_token = app.token("alice").await;
    let (cookie, _) = form_login(&app, "bob").await;
    let (status, html) = page(&app, &cookie, "/ui/certificates/new").await;
    assert_eq!(status, 200);
    for label in [
        "for=\"subject\"",
        "for=\"san\"",
        "for=\"profile\"",
        "for=\"validity_days\"",
        "for=\"key_algorithm\"",
        "for=\"csr\"",
    ] {
        assert!(html.contains(label), "a label {label}");
    }
    assert!(
        !html.contains("for=\"owner_id\""),
        "only admins choose the owner"
    );
    let csrf = csrf_of(&html);
    let carol_id = carol.to_string();
    let good = |extra: &[(&'static str, &str)]| {
        let mut form: Vec<(&'static str, String)> = vec![
            ("csrf", csrf.clone()),
            ("subject", "CN=bob-ap-1,O=Example".into()),
            ("san", "bob-ap-1.example.net\n192.0.2.7".into()),
            ("profile", "device".into()),
            ("validity_days", "90".into()),
            ("key_source", "generate".into()),
            ("key_algorithm", "ecdsa-p256".into()),
        ];
        for (name, value) in extra {
            form.retain(|(n, _)| n != name);
            form.push((name, (*value).to_owned()));
        }
        form
    };

    let refusals: Vec<(IssueFormFields, u16, &str)> = vec![
        (good(&[("csrf", "")]), 403, "reload the page"),
        (good(&[("subject", "")]), 422, "id=\"subject-error\""),
        (
            good(&[("san", "not a host name!")]),
            422,
            "id=\"san-error\"",
        ),
        (
            good(&[("validity_days", "ninety")]),
            422,
            "id=\"validity-error\"",
        ),
        (
            good(&[("validity_days", "5000")]),
            422,
            "id=\"validity-error\"",
        ),
        (
            good(&[("key_source", "csr"), ("csr", "")]),
            422,
            "id=\"key-error\"",
        ),
        (
            good(&[
                ("key_source", "csr"),
                (
                    "csr",
                    "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----",
                ),
            ]),
            422,
            "id=\"key-error\"",
        ),
        (
            good(&[("owner_id", carol_id.as_str())]),
            422,
            "Only administrators",
        ),
    ];
    for (form, status, marker) in refusals {
        let (answer, _, body) =
            post_form(&app, &cookie, "/ui/certificates/new", &pairs(&form)).await;
        assert_eq!(answer, status, "{form:?}");
        assert!(body.contains(marker), "{marker} in the answer to {form:?}");
        if status == 422 && !marker.contains("subject") {
            assert!(
                body.contains("value=\"CN=bob-ap-1,O=Example\""),
                "the form keeps what was typed"
            );
        }
        assert_eq!(
            certificate_count(&app, &admin_token).await,
            0,
            "nothing created"
        );
    }

    // "Preview names" shows how the subject and SANs are read, and issues nothing.
    let (status, _, body) = post_form(
        &app,
        &cookie,
        "/ui/certificates/new",
        &pairs(&good(&[("action", "preview")])),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("Common name (CN)") && body.contains("Organization (O)"));
    assert!(body.contains("<code>bob-ap-1</code>") && body.contains("192.0.2.7"));
    let (_, _, body) = post_form(
        &app,
        &cookie,
        "/ui/certificates/new",
        &pairs(&good(&[
            ("action", "preview"),
            ("subject", "CN=x,Nonsense"),
        ])),
    )
    .await;
    assert!(body.contains("id=\"subject-error\""));
    assert_eq!(certificate_count(&app, &admin_token).await, 0);

    // The form as sent: issued for the session's user, and the detail page follows.
    let (status, location, _) =
        post_form(&app, &cookie, "/ui/certificates/new", &pairs(&good(&[]))).await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    let id = location.strip_prefix("/ui/certificates/").unwrap();
    let (status, cert) = app
        .get(&format!("/api/v1/certificates/{id}"), &admin_token)
        .await;
    assert_eq!(status, 200);
    assert_eq!(cert["owner_id"], bob.to_string());
    assert_eq!(cert["subject"], "CN=bob-ap-1,O=Example");
    assert_eq!(cert["san"], json!(["bob-ap-1.example.net", "192.0.2.7"]));
    assert_eq!(certificate_count(&app, &admin_token).await, 1);
}

/// The form states the limits the server applies, from its settings: with
/// KEYINFRA_MAX_VALIDITY_DAYS at 90, every profile reads "up to 90 days", and the use case
/// refuses 91 next to the validity field.
#[tokio::test]
async fn the_issue_form_shows_the_configured_limits_and_profiles() {
    let app = TestApp::spawn_with(PEPPER, None, test_edge(), |settings| {
        settings.profiles = keyinfra_pki::profile::builtin_profiles(Some(90));
    })
    .await;
    app.user("bob", UserRole::User).await;
    let (cookie, _) = form_login(&app, "bob").await;
    let (status, html) = page(&app, &cookie, "/ui/certificates/new").await;
    assert_eq!(status, 200);
    for profile in &app.state.authority.settings.profiles {
        let option = format!(
            "<option value=\"{}\"{}>{}: up to 90 days, {} if left empty</option>",
            profile.name,
            if profile.name == "device" {
                " selected"
            } else {
                ""
            },
            profile.name,
            profile.default_validity_days
        );
        assert!(html.contains(&option), "{option}");
        assert!(html.contains(&profile.description), "{}", profile.name);
    }
    // As the page would write a limit ("up to 825 days", "398 if left empty"): the bare
    // digits also turn up in the page's random ids and tokens now and then.
    for builtin in ["825", "398"] {
        assert!(
            !html.contains(&format!("{builtin} days"))
                && !html.contains(&format!("{builtin} if left empty")),
            "a built-in limit ({builtin}) on the page"
        );
    }

    let csrf = csrf_of(&html);
    let form = |days: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("subject", "CN=bob-ap-1".to_owned()),
            ("san", "bob-ap-1.example.net".to_owned()),
            ("profile", "server".to_owned()),
            ("validity_days", days.to_owned()),
            ("key_source", "generate".to_owned()),
            ("key_algorithm", "ecdsa-p256".to_owned()),
        ]
    };
    let (status, _, body) =
        post_form(&app, &cookie, "/ui/certificates/new", &pairs(&form("91"))).await;
    assert_eq!(status, 422);
    assert!(body.contains("id=\"validity-error\"") && body.contains("90"));
    let (status, _, _) =
        post_form(&app, &cookie, "/ui/certificates/new", &pairs(&form("90"))).await;
    assert_eq!(status, 303, "the limit itself is allowed");
}
