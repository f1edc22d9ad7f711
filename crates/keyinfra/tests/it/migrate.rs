use keyinfra_db::testing::TestDatabase;

use crate::support::{keyinfra, run};

fn stdout_of(args: &[&str], url: &str) -> String {
    let out = run(keyinfra().args(args).env("DATABASE_URL", url));
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn migrate_up_down_and_status_work_from_the_command_line() {
    let db = TestDatabase::empty().await;
    let url = db.url();
    let latest = keyinfra_db::migrations::latest_version();

    let status = stdout_of(&["migrate", "status"], url);
    assert_eq!(status.lines().count() as i64, latest);
    assert!(status.lines().all(|l| l.ends_with("pending")), "{status}");

    let up = stdout_of(&["migrate", "up"], url);
    assert_eq!(up.lines().count() as i64, latest, "{up}");
    assert!(up.contains("applied 1") && up.contains(&format!("applied {latest}")));
    assert!(stdout_of(&["migrate", "up"], url).contains("nothing to apply"));

    let down = stdout_of(&["migrate", "down"], url);
    assert_eq!(down.trim(), format!("reverted {latest}"));
    let status = stdout_of(&["migrate", "status"], url);
    assert_eq!(
        status.lines().filter(|l| l.ends_with("pending")).count(),
        1,
        "{status}"
    );

    let down = stdout_of(&["migrate", "down", "--to", "2"], url);
    assert_eq!(down.lines().count() as i64, latest - 3, "{down}");
    let status = stdout_of(&["migrate", "status"], url);
    assert_eq!(
        status.lines().filter(|l| l.contains(" applied ")).count(),
        2,
        "{status}"
    );

    let down = stdout_of(&["migrate", "down", "--to", "0"], url);
    assert_eq!(down.lines().count(), 2);
    assert!(
        stdout_of(&["migrate", "status"], url)
            .lines()
            .all(|l| l.ends_with("pending"))
    );

    let out = run(keyinfra()
        .args(["migrate", "down", "--to", "999"])
        .env("DATABASE_URL", url));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--to 999 is not a known migration version")
    );
}
