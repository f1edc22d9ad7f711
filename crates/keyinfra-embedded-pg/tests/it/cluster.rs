//! Starting, stopping and restarting a real cluster.

use std::os::unix::fs::MetadataExt;

use keyinfra_embedded_pg::{EmbeddedCluster, EmbeddedPgError};

use crate::{alive, psql, scratch, settings};

#[test]
fn starts_serves_over_the_socket_only_stops_and_restarts() {
    let dir = scratch();
    let data_dir = dir.path().join("data");
    let durable = keyinfra_embedded_pg::ClusterSettings {
        ephemeral: false,
        ..settings(&data_dir)
    };
    let mut cluster = EmbeddedCluster::start(durable.clone()).unwrap();

    let data_dir = data_dir.canonicalize().unwrap();
    assert_eq!(cluster.socket_dir(), data_dir.join("run"));
    assert_eq!(cluster.pgdata(), data_dir.join("postgres"));
    assert_eq!(cluster.port(), 5432);
    assert!(cluster.socket_dir().join(".s.PGSQL.5432").exists());
    assert_eq!(psql(&cluster, "select 1"), "1");
    assert_eq!(psql(&cluster, "show listen_addresses"), "");
    assert_eq!(psql(&cluster, "show fsync"), "on");
    assert_eq!(psql(&cluster, "show max_connections"), "100");
    assert_eq!(psql(&cluster, "select current_user"), "keyinfra");
    assert_eq!(
        cluster.database_url("postgres"),
        format!(
            "postgres://keyinfra@localhost/postgres?host={}&port=5432",
            data_dir.join("run").display()
        )
    );
    psql(&cluster, "create table survives_restart (x int)");

    let pgdata = cluster.pgdata().to_path_buf();
    let initialised = std::fs::metadata(pgdata.join("PG_VERSION")).unwrap();
    let pid = cluster.pid().unwrap();
    assert!(alive(pid));
    assert!(pgdata.join("postmaster.pid").exists());

    cluster.stop().unwrap();
    assert!(!pgdata.join("postmaster.pid").exists());
    assert_eq!(cluster.pid(), None);
    assert!(!alive(pid));
    assert!(!cluster.socket_dir().join(".s.PGSQL.5432").exists());
    cluster.stop().unwrap(); // idempotent
    drop(cluster);

    let cluster = EmbeddedCluster::start(durable).unwrap();
    let again = std::fs::metadata(pgdata.join("PG_VERSION")).unwrap();
    assert_eq!(
        (initialised.ino(), initialised.mtime()),
        (again.ino(), again.mtime()),
        "the cluster was initialised again"
    );
    assert_eq!(psql(&cluster, "select count(*) from survives_restart"), "0");
}

#[test]
fn runs_as_the_postgres_account_when_root() {
    if !crate::is_root() {
        println!("note: not running as root, so PostgreSQL runs as the current user; skipped");
        return;
    }
    let dir = scratch();
    let cluster = EmbeddedCluster::start(settings(&dir.path().join("data"))).unwrap();
    let postgres = nix::unistd::User::from_name("postgres").unwrap().unwrap();
    let uid = postgres.uid.as_raw();
    for path in [
        cluster.pgdata().to_path_buf(),
        cluster.pgdata().join("PG_VERSION"),
        cluster.pgdata().join("base"),
        cluster.socket_dir().to_path_buf(),
    ] {
        assert_eq!(
            std::fs::metadata(&path).unwrap().uid(),
            uid,
            "{} owner",
            path.display()
        );
    }
    let mode = std::fs::metadata(cluster.socket_dir()).unwrap().mode();
    assert_eq!(mode & 0o777, 0o700);
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", cluster.pid().unwrap())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|id| id == uid.to_string()),
        "{uid_line}"
    );
}

#[test]
fn a_stale_postmaster_pid_does_not_block_start() {
    let dir = scratch();
    let mut cluster = EmbeddedCluster::start(settings(&dir.path().join("data"))).unwrap();
    let pid_file = cluster.pgdata().join("postmaster.pid");
    let contents = std::fs::read_to_string(&pid_file).unwrap();
    cluster.stop().unwrap();

    // Simulate a crash: the pid file survives and names a process that no longer exists.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let rest = contents.split_once('\n').unwrap().1;
    std::fs::write(&pid_file, format!("{dead_pid}\n{rest}")).unwrap();
    drop(cluster);

    let cluster = EmbeddedCluster::start(settings(&dir.path().join("data"))).unwrap();
    assert_eq!(psql(&cluster, "select 1"), "1");
}

#[test]
fn a_directory_used_by_a_live_postmaster_is_refused() {
    let dir = scratch();
    let data_dir = dir.path().join("data");
    let first = EmbeddedCluster::start(settings(&data_dir)).unwrap();
    let error = EmbeddedCluster::start(settings(&data_dir)).unwrap_err();
    assert!(
        matches!(error, EmbeddedPgError::InUse { pid, .. } if Some(pid.unsigned_abs()) == first.pid()),
        "{error}"
    );
    assert!(error.to_string().contains("KEYINFRA_DATA_DIR"), "{error}");
    // The refused start must not have disturbed the running server.
    assert_eq!(psql(&first, "select 1"), "1");
}

#[test]
fn a_startup_failure_quotes_the_server_log() {
    let dir = scratch();
    let mut cluster = EmbeddedCluster::start(settings(&dir.path().join("data"))).unwrap();
    let conf = cluster.pgdata().join("postgresql.conf");
    cluster.stop().unwrap();
    drop(cluster);
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\nkeyinfra_bogus_setting = 1\n");
    std::fs::write(&conf, text).unwrap();

    let error = EmbeddedCluster::start(settings(&dir.path().join("data"))).unwrap_err();
    assert!(
        matches!(error, EmbeddedPgError::StartFailed { .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("keyinfra_bogus_setting"),
        "{error}"
    );
}
