//! The postmaster must not outlive a SIGKILLed owner.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyinfra_embedded_pg::EmbeddedCluster;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{alive, scratch, settings};

const HELPER_DIR: &str = "KEYINFRA_EMBEDDED_PG_KILL_HELPER_DIR";

/// Not a test on its own: when re-executed by `postmaster_dies_with_a_sigkilled_owner`, it
/// starts a cluster, reports the postmaster PID and waits to be killed.
#[test]
fn helper_holds_a_cluster_until_killed() {
    let Some(dir) = std::env::var_os(HELPER_DIR).map(PathBuf::from) else {
        return;
    };
    let cluster = EmbeddedCluster::start(settings(&dir.join("data"))).unwrap();
    let pid = cluster.pid().unwrap();
    std::fs::write(dir.join("ready.tmp"), pid.to_string()).unwrap();
    std::fs::rename(dir.join("ready.tmp"), dir.join("ready")).unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[test]
fn postmaster_dies_with_a_sigkilled_owner() {
    let dir = scratch();
    let output = std::fs::File::create(dir.path().join("helper.out")).unwrap();
    let mut helper = Command::new(std::env::current_exe().unwrap())
        .args([
            "kill::helper_holds_a_cluster_until_killed",
            "--exact",
            "--nocapture",
        ])
        .env(HELPER_DIR, dir.path())
        .stdin(Stdio::null())
        .stdout(output.try_clone().unwrap())
        .stderr(output)
        .spawn()
        .unwrap();

    let ready = dir.path().join("ready");
    let deadline = Instant::now() + Duration::from_secs(180);
    let postmaster = loop {
        if let Ok(pid) = std::fs::read_to_string(&ready) {
            break pid.trim().parse::<u32>().unwrap();
        }
        if let Some(status) = helper.try_wait().unwrap() {
            let out = std::fs::read_to_string(dir.path().join("helper.out")).unwrap();
            panic!("the helper exited early ({status}):\n{out}");
        }
        assert!(
            Instant::now() < deadline,
            "the helper did not start a cluster in time"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(alive(postmaster));

    kill(
        Pid::from_raw(i32::try_from(helper.id()).unwrap()),
        Signal::SIGKILL,
    )
    .unwrap();
    helper.wait().unwrap();

    let pid_file = dir
        .path()
        .join("data")
        .join("postgres")
        .join("postmaster.pid");
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(postmaster) || pid_file.exists() {
        assert!(
            Instant::now() < deadline,
            "the postmaster (PID {postmaster}) survived its owner by 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
