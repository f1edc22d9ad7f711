//! The zero-configuration default: no DATABASE_URL, a private cluster in the data dir.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::support::{Server, base_url, keyinfra};

#[tokio::test(flavor = "multi_thread")]
async fn serve_with_no_configuration_runs_its_own_postgres_and_stops_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    // The embedded server may run as another OS user (when tests run as root), who must be
    // able to reach the data directory.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data_dir = dir.path().join("keyinfra-data");

    let mut cmd = keyinfra();
    cmd.current_dir(dir.path())
        .env_remove("KEYINFRA_DATA_DIR")
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let mut server = Server::spawn(cmd);
    // First start: an administrator with a generated password, shown once on the console.
    let created = server.wait_for("created administrator", Duration::from_secs(180));
    let password = created
        .rsplit("password: ")
        .next()
        .unwrap()
        .trim()
        .to_owned();
    let line = server.wait_for("listening on", Duration::from_secs(60));
    let base = base_url(&line);
    let login = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    // The secrets were generated into the data directory, readable by us only.
    let pepper = data_dir.join("secrets").join("pepper");
    let mode = std::fs::metadata(&pepper).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        !server
            .seen
            .iter()
            .any(|l| l.contains(&password) && !l.contains("created administrator"))
    );

    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        body["schema_version"],
        keyinfra_db::migrations::latest_version()
    );

    // The cluster lives in the default data directory and listens on a socket there only.
    let pid_file = data_dir.join("postgres").join("postmaster.pid");
    assert!(pid_file.exists(), "no cluster in {}", data_dir.display());
    let pid_text = std::fs::read_to_string(&pid_file).unwrap();
    let listen_line = pid_text.lines().nth(5).unwrap_or_default();
    assert!(
        listen_line.trim().is_empty(),
        "PostgreSQL listens on TCP: {listen_line:?}"
    );

    let status = server.terminate();
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        server.seen.join("\n")
    );
    assert!(
        !pid_file.exists(),
        "postmaster.pid left behind: the cluster was not stopped"
    );
    assert!(
        server
            .seen
            .iter()
            .any(|l| l.contains("stopping the embedded PostgreSQL"))
    );

    // A second start reuses the cluster (no initdb) and finds the schema current.
    let mut cmd = keyinfra();
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .env("KEYINFRA_DATA_DIR", &data_dir);
    let mut again = Server::spawn(cmd);
    again.wait_for("listening on", Duration::from_secs(120));
    assert!(
        !again
            .seen
            .iter()
            .any(|l| l.contains("created administrator")),
        "{:?}",
        again.seen
    );
    assert!(
        !again.seen.iter().any(|l| l.contains("applied migrations")),
        "{:?}",
        again.seen
    );
    let status = again.terminate();
    assert!(status.success(), "{status:?}:\n{}", again.seen.join("\n"));
}
