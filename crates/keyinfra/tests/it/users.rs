use keyinfra_db::testing::TestDatabase;

use crate::support::{add_user, keyinfra};

#[tokio::test]
async fn user_add_reads_the_password_from_stdin_and_user_list_shows_it() {
    let db = TestDatabase::new().await;
    let add = |name: &str, role: &str, password: &str| add_user(db.url(), name, role, password);
    let ok = add("noc-operator", "ADMIN", "a sufficiently long password");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("added ADMIN noc-operator"));

    let weak = add("weakling", "user", "short");
    assert!(!weak.status.success());
    let stderr = String::from_utf8_lossy(&weak.stderr);
    assert!(
        stderr.contains("at least 12 characters") && !stderr.contains("short\n"),
        "{stderr}"
    );

    let taken = add("NOC-OPERATOR", "USER", "another long password");
    assert!(String::from_utf8_lossy(&taken.stderr).contains("already exists"));

    let list = keyinfra()
        .args(["user", "list"])
        .env("DATABASE_URL", db.url())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("ADMIN") && text.contains("noc-operator") && text.contains("active"));
}
