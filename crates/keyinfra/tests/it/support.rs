use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// The binary under test, with a clean environment for the settings it reads.
pub fn keyinfra() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyinfra"));
    // DATABASE_URL and every KEYINFRA_ setting the test runner's environment may hold: a
    // command sees only what its test gives it (new settings need no list here).
    cmd.env_remove("DATABASE_URL");
    for (var, _) in std::env::vars_os() {
        if var.to_str().is_some_and(|v| v.starts_with("KEYINFRA_")) {
            cmd.env_remove(var);
        }
    }
    cmd.stdin(Stdio::null());
    // Each command gets its own data directory (secrets are generated there), readable by
    // the embedded PostgreSQL's account; tests that care set their own.
    let dir = tempfile::Builder::new()
        .prefix("keyinfra-cli-")
        .tempdir()
        .unwrap()
        .keep();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    cmd.env("KEYINFRA_DATA_DIR", dir);
    cmd
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run keyinfra")
}

/// `keyinfra user add` against `database_url`, the password given on standard input.
pub fn add_user(database_url: &str, name: &str, role: &str, password: &str) -> Output {
    let mut child = keyinfra()
        .args(["user", "add", "--username", name, "--role", role])
        .env("DATABASE_URL", database_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        format!("{password}\n").as_bytes(),
    )
    .unwrap();
    child.wait_with_output().unwrap()
}

/// A running `keyinfra serve`, with its stderr lines collected.
pub struct Server {
    pub child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Server {
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn keyinfra");
        let (tx, lines) = channel();
        let stderr = child.stderr.take().unwrap();
        let tx_err = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx_err.send(line);
            }
        });
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; returns it.
    ///
    /// stdout and stderr arrive through two threads, so their lines may interleave in any
    /// order: a line seen earlier counts too.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no line with {needle:?} within {limit:?}; saw:\n{}",
            self.seen.join("\n")
        );
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(90))
    }

    /// Sends a signal (`TERM`, `INT`) without waiting.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args([&format!("-{name}"), &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits for the process to exit, collecting its remaining output.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader threads end with the pipes; take everything they read.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
                    self.seen.push(line);
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "keyinfra did not exit after the signal; saw:\n{}",
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `http://host:port` from a "listening on http://..." line.
pub fn base_url(line: &str) -> String {
    let start = line.find("http://").expect("an address");
    line[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches(['"', '\''])
        .to_owned()
}

/// Runs the openssl CLI, asserting success; its stdout and stderr together.
pub fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {args:?}: {text}");
    text
}

/// The uuid in an "issued <uuid> ..." / "renewed as <uuid> ..." line.
pub fn id_in(line: &str) -> String {
    line.split_whitespace()
        .find(|w| w.parse::<uuid::Uuid>().is_ok())
        .unwrap()
        .to_owned()
}
