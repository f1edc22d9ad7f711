//! Issue 16's hardening, seen from outside the process: a superuser DATABASE_URL is warned
//! about.

use std::time::Duration;

use keyinfra_db::testing::TestDatabase;

use crate::support::{Server, keyinfra};

#[tokio::test(flavor = "multi_thread")]
async fn serve_warns_when_database_url_logs_in_as_a_superuser() {
    // The tests' server URL names its superuser (in CI `postgres`).
    let db = TestDatabase::new().await;
    let superuser: bool = db
        .scalar("SELECT rolsuper FROM pg_roles WHERE rolname = session_user")
        .await;
    assert!(superuser, "this test needs a superuser DATABASE_URL");

    let mut cmd = keyinfra();
    cmd.env("DATABASE_URL", db.url())
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let mut server = Server::spawn(cmd);
    let warning = server.wait_for("superuser or BYPASSRLS", Duration::from_secs(120));
    assert!(
        warning.contains("WARN") && warning.contains("RESET ROLE"),
        "{warning}"
    );
    server.wait_for("listening on", Duration::from_secs(60));
    assert!(server.terminate().success());
}
