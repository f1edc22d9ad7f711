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
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let mut server = Server::spawn(cmd);
    let line = server.wait_for("listening on", Duration::from_secs(180));
    let base = base_url(&line);

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
        !again.seen.iter().any(|l| l.contains("applied migrations")),
        "{:?}",
        again.seen
    );
    assert!(again.terminate().success());
}
