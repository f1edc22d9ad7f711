//! The server's secrets: the password pepper and the JWT signing secret.
//!
//! They never enter the database. In production they come from files
//! (`KEYINFRA_PEPPER_FILE`, `KEYINFRA_JWT_SECRET_FILE`) or the environment
//! (`KEYINFRA_PEPPER`, `KEYINFRA_JWT_SECRET`, read and then removed from our environment).
//! Otherwise they are generated once into `<data-dir>/secrets/` with mode 0600 and a
//! warning: fine for one server, but replicas must be given the same ones.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use zeroize::Zeroizing;

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
    if let Ok(value) = std::env::var(env_var) {
        let bytes = Zeroizing::new(value.into_bytes());
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
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let mut raw = Zeroizing::new([0u8; 48]);
    getrandom::fill(raw.as_mut())
        .map_err(|e| anyhow::anyhow!("the random number generator failed: {e}"))?;
    let text = Zeroizing::new(hex(raw.as_ref()));
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
