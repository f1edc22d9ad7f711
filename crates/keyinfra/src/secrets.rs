//! The server's secrets: the password pepper and the JWT signing secret, and the secrets
//! that arrive in environment variables.
//!
//! They never enter the database. In production they come from files
//! (`KEYINFRA_PEPPER_FILE`, `KEYINFRA_JWT_SECRET_FILE`, `KEYINFRA_MASTER_KEYS_FILE`, ...).
//! They may also be given in the environment (`KEYINFRA_PEPPER`, `KEYINFRA_JWT_SECRET`, ...):
//! [`take_from_environment`] then moves them out of the process environment at the start of
//! `main`, before any thread exists, so that no child process (`pg_config`, the embedded
//! PostgreSQL, anything a library starts) inherits them. That does not erase them from the
//! kernel's copy: on Linux `/proc/<pid>/environ` keeps showing the environment the process
//! was started with, to its own user and to root, for as long as it runs. Hence the files.
//! Otherwise they are generated once into `<data-dir>/secrets/` with mode 0600 and a
//! warning: fine for one server, but replicas must be given the same ones.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, bail};
use zeroize::Zeroizing;

/// The environment variables that may hold a secret. `DATABASE_URL` and `KEYINFRA_SMTP_URL`
/// may carry a password; clap has read them into the command line's settings before they
/// are removed.
pub const SECRET_VARIABLES: [&str; 9] = [
    "KEYINFRA_ADMIN_PASSWORD",
    "KEYINFRA_METRICS_TOKEN",
    "KEYINFRA_PEPPER",
    "KEYINFRA_JWT_SECRET",
    "KEYINFRA_MASTER_KEYS",
    "KEYINFRA_ALERT_WEBHOOK_SECRET",
    "KEYINFRA_BACKUP_PASSPHRASE",
    "KEYINFRA_SMTP_URL",
    "DATABASE_URL",
];

/// The values [`take_from_environment`] took, by variable name.
static TAKEN: OnceLock<Vec<(&'static str, Zeroizing<String>)>> = OnceLock::new();

/// Moves every variable of [`SECRET_VARIABLES`] out of the process environment into this
/// module, where [`from_environment`] finds it. Call it once, first thing in `main`, while
/// the process has a single thread: removing environment variables is unsound while another
/// thread may read the environment. A value that is not UTF-8 is removed and treated as
/// unset, as `std::env::var` treated it.
#[allow(unsafe_code)]
pub fn take_from_environment() {
    let mut taken = Vec::new();
    for name in SECRET_VARIABLES {
        let Some(value) = std::env::var_os(name) else {
            continue;
        };
        if let Ok(value) = value.into_string() {
            taken.push((name, Zeroizing::new(value)));
        }
        // SAFETY: `main` calls this before it builds the tokio runtime, initialises logging
        // or starts anything else, and nothing before it spawns a thread (argument parsing
        // does not): no other thread exists that could read or write the environment while
        // it changes, which is the only requirement of `remove_var`.
        unsafe { std::env::remove_var(name) };
    }
    let _ = TAKEN.set(taken);
}

/// The value a secret variable had when the process started (see
/// [`take_from_environment`]); None when it was unset.
pub fn from_environment(name: &str) -> Option<Zeroizing<String>> {
    TAKEN
        .get()?
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.clone())
}

pub struct Secret {
    pub bytes: Zeroizing<Vec<u8>>,
}

/// Loads a secret from `env_var`, else `file`, else `<data_dir>/secrets/<name>` (generated
/// when missing).
pub fn load(
    env_var: &str,
    file_setting: &str,
    file: Option<&Path>,
    data_dir: &Path,
    name: &str,
) -> anyhow::Result<Secret> {
    if let Some(value) = from_environment(env_var) {
        let bytes = Zeroizing::new(value.as_bytes().to_vec());
        if bytes.len() < 32 {
            bail!("{env_var} must be at least 32 bytes long");
        }
        return Ok(Secret { bytes });
    }
    let (path, configured) = match file {
        Some(p) => (p.to_owned(), true),
        None => (data_dir.join("secrets").join(name), false),
    };
    if !path.exists() {
        if configured {
            bail!("{file_setting}={} does not exist", path.display());
        }
        generate(&path).with_context(|| {
            format!(
                "cannot create {} (--data-dir / KEYINFRA_DATA_DIR)",
                path.display()
            )
        })?;
        tracing::warn!(
            path = %path.display(),
            "generated a new {name}; every replica must use the same one: set {file_setting} in production"
        );
    }
    let mut bytes = Zeroizing::new(
        std::fs::read(&path)
            .with_context(|| format!("cannot read {} ({file_setting})", path.display()))?,
    );
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    if bytes.len() < 32 {
        bail!(
            "{} ({file_setting}) must hold at least 32 bytes",
            path.display()
        );
    }
    Ok(Secret { bytes })
}

fn generate(path: &PathBuf) -> anyhow::Result<()> {
    let raw = random_bytes::<48>()?;
    write_secret_file(path, &hex(raw.as_ref()))
}

fn random_bytes<const N: usize>() -> anyhow::Result<Zeroizing<[u8; N]>> {
    let mut raw = Zeroizing::new([0u8; N]);
    getrandom::fill(raw.as_mut())
        .map_err(|e| anyhow::anyhow!("the random number generator failed: {e}"))?;
    Ok(raw)
}

/// Creates `path` (never overwriting) with mode 0600, in a 0700 directory.
fn write_secret_file(path: &PathBuf, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The master keys that seal private keys, as `VERSION:HEX` entries (64 hex digits = 32
/// bytes), separated by commas or newlines; `#` starts a comment line. From
/// KEYINFRA_MASTER_KEYS, else KEYINFRA_MASTER_KEYS_FILE, else
/// `<data-dir>/secrets/master-keys` (generated with version 1 when missing, with a warning).
/// The newest version seals; every listed version opens.
pub fn load_master_keys(
    file: Option<&Path>,
    data_dir: &Path,
) -> anyhow::Result<keyinfra_pki::seal::MasterKeys> {
    const SETTING: &str = "KEYINFRA_MASTER_KEYS_FILE";
    if let Some(text) = from_environment("KEYINFRA_MASTER_KEYS") {
        return parse_master_keys(&text).context("KEYINFRA_MASTER_KEYS");
    }
    let (path, configured) = match file {
        Some(p) => (p.to_owned(), true),
        None => (data_dir.join("secrets").join("master-keys"), false),
    };
    if !path.exists() {
        if configured {
            bail!("{SETTING}={} does not exist", path.display());
        }
        generate_master_keys(&path).with_context(|| {
            format!(
                "cannot create {} (--data-dir / KEYINFRA_DATA_DIR)",
                path.display()
            )
        })?;
        tracing::warn!(
            path = %path.display(),
            "generated a new master key (version 1) for private keys; back it up apart from the database, and give every replica the same file with {SETTING}"
        );
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {} ({SETTING})", path.display()))?,
    );
    parse_master_keys(&text).with_context(|| format!("{} ({SETTING})", path.display()))
}

fn parse_master_keys(text: &str) -> anyhow::Result<keyinfra_pki::seal::MasterKeys> {
    let mut keys = keyinfra_pki::seal::MasterKeys::new();
    for (n, entry) in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.starts_with('#'))
        .enumerate()
    {
        let (version, hex_key) = entry
            .split_once(':')
            .with_context(|| format!("entry {} is not VERSION:HEX", n + 1))?;
        let version: i32 = version
            .trim()
            .parse()
            .with_context(|| format!("entry {}: the version is not a number", n + 1))?;
        let bytes = Zeroizing::new(
            hex::decode(hex_key.trim())
                .map_err(|_| anyhow::anyhow!("entry {}: the key is not hex", n + 1))?,
        );
        keys.insert(version, &bytes)
            .map_err(|e| anyhow::anyhow!("entry {}: {e}", n + 1))?;
    }
    if keys.newest_version().is_none() {
        bail!("no master key is listed");
    }
    Ok(keys)
}

fn generate_master_keys(path: &PathBuf) -> anyhow::Result<()> {
    let raw = random_bytes::<32>()?;
    let text = Zeroizing::new(format!(
        "# KeyInfra master keys (VERSION:HEX). Add a higher version and run `keyinfra keys rotate`.\n1:{}\n",
        hex(raw.as_ref())
    ));
    write_secret_file(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_lists_parse_and_refuse_with_the_entry_named() {
        let k1 = "11".repeat(32);
        let k2 = "22".repeat(32);
        let keys = parse_master_keys(&format!("# c\n1:{k1}\n2:{k2}\n")).unwrap();
        assert_eq!(keys.newest_version(), Some(2));
        assert!(
            parse_master_keys(&format!("1:{k1},x"))
                .unwrap_err()
                .to_string()
                .contains("entry 2")
        );
        assert!(parse_master_keys("1:abcd").is_err());
        assert!(parse_master_keys("").is_err());
        let err = format!(
            "{:#}",
            parse_master_keys(&format!("1:{k1}\n1:{k2}")).unwrap_err()
        );
        assert!(err.contains("twice") && !err.contains(&k2), "{err}");
    }
}
