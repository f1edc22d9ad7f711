//! The real `openssl` CLI, to check what KeyInfra produces.

use std::path::PathBuf;
use std::process::Command;

/// A scratch directory for one test's files.
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    pub fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    pub fn path(&self, name: &str) -> String {
        self.0.path().join(name).to_string_lossy().into_owned()
    }

    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> String {
        let path: PathBuf = self.0.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_string_lossy().into_owned()
    }

    pub fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.0.path().join(name)).unwrap()
    }
}

/// Runs openssl; returns (success, stdout + stderr).
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl CLI is installed (scripts/test installs it)");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Runs openssl and insists it succeeds.
pub fn openssl_ok(args: &[&str]) -> String {
    let (ok, text) = openssl(args);
    assert!(ok, "openssl {args:?} failed:\n{text}");
    text
}

/// The hex digits of the private part of a PEM key (`priv:` for EC and Ed25519,
/// `privateExponent:` for RSA), as `openssl pkey -text` prints them.
pub fn private_part_hex(key_pem_file: &str) -> String {
    let text = openssl_ok(&["pkey", "-in", key_pem_file, "-text", "-noout"]);
    let mut hex = String::new();
    let mut inside = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("priv:") || t.starts_with("privateExponent:") {
            inside = true;
            continue;
        }
        if inside {
            if t.chars().all(|c| c.is_ascii_hexdigit() || c == ':') && !t.is_empty() {
                hex.push_str(&t.replace(':', ""));
            } else {
                break;
            }
        }
    }
    // A big number (RSA, EC) is printed with a 00 sign byte when its top bit is set; drop
    // that one byte. An Ed25519 key is printed as its 32 raw bytes, and may itself start
    // with 00 (1 in 256 keys): trimming every leading 00 made those look empty.
    let hex = hex.to_ascii_lowercase();
    let hex = match hex.strip_prefix("00") {
        Some(rest) if rest.len() % 2 == 0 && rest.chars().next().is_some_and(|c| c >= '8') => {
            rest.to_owned()
        }
        _ => hex,
    };
    assert!(hex.len() >= 62, "no private part found in:\n{text}");
    hex
}
