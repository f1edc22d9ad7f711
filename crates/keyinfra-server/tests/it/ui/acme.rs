//! ACME in the UI (issue 21): a user creates a binding key in the browser and sees its HMAC
//! key once (it works: an ACME client registers with it), the account then appears in the
//! list with the key used, and the Deactivate button locks the account out. Bad input is
//! shown with nothing created; forms need their CSRF token; another user sees none of it,
//! an ADMIN all of it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fantoccini::Locator;
use keyinfra_db::UserRole;
use serde_json::json;

use super::{Browser, csrf_of, form_login, page, post_form};
use crate::acme::{ClientKey, as_account, binding, nonce, post_jws};
use crate::support::{PASSWORD, TestApp};

async fn text_of(b: &Browser, css: &str) -> String {
    b.client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// A row's state as the page marks it (`data-state`), or None without the row.
fn row_state(html: &str, prefix: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{prefix}-{id}\" data-state=\"");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..].split('"').next().unwrap().to_owned())
}

#[tokio::test]
async fn a_user_creates_a_binding_key_in_the_browser_and_deactivates_the_account() {
    let (app, tls) = TestApp::spawn_tls().await;
    app.user("alice", UserRole::Admin).await;
    app.user("bob", UserRole::User).await;
    app.user("carol", UserRole::User).await;
    let keys = || async {
        app.tdb
            .scalar_i64("SELECT count(*) FROM acme_eab_keys")
            .await
    };

    let browser = Browser::start().await;
    let b = &browser;
    b.log_in(&app.base, "bob", PASSWORD).await;
    b.click_to_next_page("nav.mainnav a[href='/ui/acme']").await;
    assert_eq!(b.path().await, "/ui/acme");
    let empty = b.source().await;
    assert!(empty.contains("No ACME accounts yet."), "{empty}");
    assert!(
        !empty.contains("for=\"owner_id\""),
        "only an ADMIN chooses an owner"
    );
    assert!(
        text_of(b, "#directory-url")
            .await
            .ends_with("/acme/directory")
    );

    // Bad input: the page again with the reason, nothing created.
    b.fill("expires_in_minutes", "soon").await;
    b.click_to_next_page("#eab-submit").await;
    assert!(text_of(b, "#eab-error").await.contains("whole number"));
    b.fill("expires_in_minutes", "999999").await;
    b.click_to_next_page("#eab-submit").await;
    assert!(text_of(b, "#eab-error").await.contains("30 days"));
    assert_eq!(keys().await, 0);

    // Created: the key id and the HMAC key, this once, with the clients' command lines.
    b.fill("expires_in_minutes", "60").await;
    b.click_to_next_page("#eab-submit").await;
    let kid = text_of(b, "#eab-kid").await;
    let hmac = text_of(b, "#eab-hmac").await;
    assert_eq!(hmac.len(), 43, "{hmac}");
    let shown = b.source().await;
    assert!(shown.contains("shown only this once") && shown.contains("--eab-hmac-key"));
    b.screenshot("acme-eab-created").await;

    // The key works: an ACME client registers with it.
    let dir = crate::openssl::Scratch::new();
    let new_account = tls.url("/acme/new-account");
    let client = ClientKey::new();
    let eab = binding(
        &kid,
        &URL_SAFE_NO_PAD.decode(&hmac).unwrap(),
        &new_account,
        &client,
    );
    let jws = client.sign(
        &new_account,
        &nonce(&tls, &dir).await,
        None,
        Some(&json!({ "externalAccountBinding": eab, "contact": ["mailto:bob@example.net"] })),
    );
    let registered = post_jws(&tls, &dir, "/acme/new-account", &jws).await;
    assert_eq!(
        registered.status,
        201,
        "{}",
        String::from_utf8_lossy(&registered.body)
    );
    let account_url = registered.header("location").unwrap();
    let account_id = account_url.rsplit('/').next().unwrap().to_owned();

    // The list: the account (valid, its contact), the key used, and never the HMAC key.
    b.click_to_next_page("a.button.primary").await;
    let list = b.source().await;
    assert!(!list.contains(&hmac));
    assert_eq!(
        row_state(&list, "account", &account_id).as_deref(),
        Some("valid")
    );
    assert_eq!(row_state(&list, "eab", &kid).as_deref(), Some("used"));
    assert!(list.contains("bob@example.net"));
    b.screenshot_sized("acme-list", 1280, 1200).await;

    // Carol sees nothing of bob's and cannot deactivate it; the CSRF token is checked first.
    let (carol_cookie, _) = form_login(&app, "carol").await;
    let (_, carols) = page(&app, &carol_cookie, "/ui/acme").await;
    assert!(row_state(&carols, "account", &account_id).is_none());
    let csrf = csrf_of(&carols);
    let deactivate = format!("/ui/acme/accounts/{account_id}/deactivate");
    let (status, _, _) = post_form(&app, &carol_cookie, &deactivate, &[("csrf", &csrf)]).await;
    assert_eq!(status, 404);
    let (bob_cookie, _) = form_login(&app, "bob").await;
    let (status, _, _) = post_form(&app, &bob_cookie, &deactivate, &[("csrf", "wrong")]).await;
    assert_eq!(status, 403);
    let (status, _, _) = post_form(&app, &bob_cookie, "/ui/acme/eab", &[("csrf", "wrong")]).await;
    assert_eq!(status, 403);
    assert_eq!(keys().await, 1);

    // An ADMIN sees it, with its owner.
    let (alice_cookie, _) = form_login(&app, "alice").await;
    let (_, alices) = page(&app, &alice_cookie, "/ui/acme").await;
    assert_eq!(
        row_state(&alices, "account", &account_id).as_deref(),
        Some("valid")
    );
    assert!(alices.contains("for=\"owner_id\""));

    // Bob deactivates it: the notice, the row, and the account signs nothing any more.
    b.click_to_next_page(&format!("#account-{account_id} button"))
        .await;
    assert!(text_of(b, "#acme-notice").await.contains("deactivated"));
    let list = b.source().await;
    assert_eq!(
        row_state(&list, "account", &account_id).as_deref(),
        Some("deactivated")
    );
    let answer = as_account(&tls, &dir, &client, &account_url, &account_url, None).await;
    assert_eq!(answer.status, 401);
}
