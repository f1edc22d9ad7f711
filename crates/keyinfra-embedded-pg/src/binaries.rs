//! Finding the PostgreSQL server programs.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::EmbeddedPgError;

/// Directory where Debian installs one directory per PostgreSQL major version.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// A directory holding the PostgreSQL server programs (`initdb` and `postgres`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBinaries {
    bindir: PathBuf,
}

impl PgBinaries {
    /// Finds the server programs.
    ///
    /// `explicit` is the `KEYINFRA_PG_BINDIR` setting. When it is given it must contain
    /// `initdb` and `postgres`, and nothing else is searched (a typo should not silently
    /// select a different PostgreSQL version). Otherwise the search order is
    /// `pg_config --bindir`, the highest-numbered `/usr/lib/postgresql/<version>/bin`, and
    /// finally the directory of `initdb` on `PATH`.
    ///
    /// # Errors
    ///
    /// [`EmbeddedPgError::BindirIncomplete`] when `explicit` lacks a program,
    /// [`EmbeddedPgError::BinariesNotFound`] when the search finds nothing.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, EmbeddedPgError> {
        if let Some(dir) = explicit {
            return if is_server_bindir(dir) {
                Ok(Self::at(dir))
            } else {
                Err(EmbeddedPgError::BindirIncomplete {
                    path: dir.to_path_buf(),
                })
            };
        }
        from_pg_config()
            .or_else(from_debian_layout)
            .or_else(from_path)
            .map(|dir| Self::at(&dir))
            .ok_or(EmbeddedPgError::BinariesNotFound)
    }

    /// The directory holding `initdb` and `postgres`.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// The full path of a program in [`bindir`](Self::bindir).
    pub(crate) fn program(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    fn at(dir: &Path) -> Self {
        // Relative paths would break once the child changes its working directory.
        let bindir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        Self { bindir }
    }
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn is_server_bindir(dir: &Path) -> bool {
    is_executable(&dir.join("initdb")) && is_executable(&dir.join("postgres"))
}

fn from_pg_config() -> Option<PathBuf> {
    let output = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let dir = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    // pg_config may come from a client-only package whose bindir lacks the server.
    is_server_bindir(&dir).then_some(dir)
}

/// Parses a Debian version directory name such as `15` or `9.6` into comparable numbers.
fn parse_version(name: &OsStr) -> Option<Vec<u32>> {
    name.to_str()?
        .split('.')
        .map(|part| part.parse().ok())
        .collect()
}

fn from_debian_layout() -> Option<PathBuf> {
    highest_version_bindir(Path::new(DEBIAN_ROOT))
}

fn highest_version_bindir(root: &Path) -> Option<PathBuf> {
    std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = parse_version(&entry.file_name())?;
            let bin = entry.path().join("bin");
            is_server_bindir(&bin).then_some((version, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

fn from_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find_map(|dir| {
        let initdb = dir.join("initdb");
        if !is_executable(&initdb) {
            return None;
        }
        if is_server_bindir(&dir) {
            return Some(dir);
        }
        // A symlinked initdb (e.g. in /usr/local/bin) points into the real bindir.
        let real = initdb.canonicalize().ok()?;
        let real_dir = real.parent()?;
        is_server_bindir(real_dir).then(|| real_dir.to_path_buf())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version(OsStr::new("10")) > parse_version(OsStr::new("9.6")));
        assert_eq!(parse_version(OsStr::new("common")), None);
    }

    #[test]
    fn highest_version_wins_and_incomplete_dirs_are_skipped() {
        let root = tempfile::tempdir().unwrap();
        for (version, programs) in [
            ("9.6", &["initdb", "postgres"][..]),
            ("13", &["initdb", "postgres"][..]),
            ("16", &["initdb"][..]),
        ] {
            let bin = root.path().join(version).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            for program in programs {
                let file = bin.join(program);
                std::fs::write(&file, "#!/bin/sh\n").unwrap();
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
        }
        assert_eq!(
            highest_version_bindir(root.path()),
            Some(root.path().join("13").join("bin"))
        );
    }
}
