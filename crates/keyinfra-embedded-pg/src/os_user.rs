//! Choosing the OS account PostgreSQL runs as.
//!
//! `initdb` and `postgres` refuse to run as root, while KeyInfra (and CI) often runs as root.
//! In that case the server runs as an unprivileged account, `postgres` by default, and the
//! directories it needs are handed over to that account.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, User};

use crate::EmbeddedPgError;

/// The account used when running as root and no other was configured.
pub(crate) const DEFAULT_OS_USER: &str = "postgres";

/// The account the PostgreSQL programs run as.
#[derive(Debug, Clone)]
pub(crate) enum RunAs {
    /// We are not root: run as ourselves, no ownership changes needed.
    Current,
    /// We are root: switch to this account in the child.
    Switch { name: String, uid: Uid, gid: Gid },
}

impl RunAs {
    /// Decides whom to run as. `configured` is only consulted when we are root: an
    /// unprivileged process cannot switch accounts anyway.
    pub(crate) fn resolve(configured: Option<&str>) -> Result<Self, EmbeddedPgError> {
        if !nix::unistd::geteuid().is_root() {
            if let Some(name) = configured {
                tracing::debug!(
                    os_user = name,
                    "not running as root; PostgreSQL runs as the current user"
                );
            }
            return Ok(Self::Current);
        }
        let name = configured.unwrap_or(DEFAULT_OS_USER);
        let user = User::from_name(name)
            .map_err(|source| EmbeddedPgError::OsUserLookup {
                user: name.to_owned(),
                source,
            })?
            .ok_or_else(|| EmbeddedPgError::OsUserMissing {
                user: name.to_owned(),
            })?;
        Ok(Self::Switch {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
        })
    }

    /// Makes `path` owned by the target account (a no-op when running as ourselves).
    pub(crate) fn give(&self, path: &Path) -> Result<(), EmbeddedPgError> {
        match self {
            Self::Current => Ok(()),
            Self::Switch { name, uid, gid } => nix::unistd::chown(path, Some(*uid), Some(*gid))
                .map_err(|source| EmbeddedPgError::Chown {
                    path: path.to_path_buf(),
                    user: name.clone(),
                    source,
                }),
        }
    }

    /// Checks that the target account can search every directory from `/` down to and
    /// including `dir`, so that it can reach the subdirectories we hand over to it.
    ///
    /// `dir` must be absolute and free of symlinks (canonicalized). Only the account's
    /// primary group counts, because std clears supplementary groups when it switches uid.
    /// ACLs are ignored; they could only grant more access, so this errs on the strict side.
    pub(crate) fn check_reachable(&self, dir: &Path, pgdata: &Path) -> Result<(), EmbeddedPgError> {
        let Self::Switch { name, uid, gid } = self else {
            return Ok(());
        };
        for ancestor in dir.ancestors() {
            let meta = ancestor
                .metadata()
                .map_err(|source| EmbeddedPgError::DataDir {
                    path: ancestor.to_path_buf(),
                    source,
                })?;
            if !searchable(meta.uid(), meta.gid(), meta.mode(), *uid, *gid) {
                return Err(EmbeddedPgError::NotReachable {
                    pgdata: pgdata.to_path_buf(),
                    user: name.clone(),
                    blocking: PathBuf::from(ancestor),
                });
            }
        }
        Ok(())
    }

    /// Whether the child switches account (and so whether we must chown).
    pub(crate) fn switches(&self) -> bool {
        matches!(self, Self::Switch { .. })
    }
}

/// POSIX permission check for the execute (search) bit: exactly one of the owner, group or
/// other classes applies, the first that matches.
fn searchable(owner: u32, group: u32, mode: u32, uid: Uid, gid: Gid) -> bool {
    if owner == uid.as_raw() {
        mode & 0o100 != 0
    } else if group == gid.as_raw() {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_matching_permission_class_counts() {
        let (uid, gid) = (Uid::from_raw(101), Gid::from_raw(104));
        assert!(searchable(0, 0, 0o711, uid, gid));
        assert!(!searchable(0, 0, 0o770, uid, gid));
        assert!(searchable(0, 104, 0o710, uid, gid));
        assert!(searchable(101, 0, 0o700, uid, gid));
        // The owner class applies even when "other" would allow it.
        assert!(!searchable(101, 0, 0o077, uid, gid));
    }
}
