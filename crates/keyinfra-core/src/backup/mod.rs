//! Encrypted backups: `keyinfra backup create` and `keyinfra backup restore`.
//!
//! A backup file is an [age](https://age-encryption.org/v1) file encrypted to a passphrase
//! (scrypt recipient, work factor calibrated to about a second on the machine that makes
//! it). age's payload is ChaCha20-Poly1305 in 64 KiB chunks whose nonces count the chunks
//! and flag the last one, so a changed, reordered, dropped or truncated chunk fails
//! authentication. The plaintext inside is:
//!
//! ```text
//! "KEYINFRA-BACKUP\0"                       16 bytes
//! u32 big-endian length, header as JSON     format version, schema version, created_at,
//!                                           tables (name, columns, rows), sequences,
//!                                           certificate partitions
//! for each table of the header, in order:   frames: u32 big-endian length (1..=1 MiB) and
//!                                           that many bytes of PostgreSQL binary COPY
//!                                           data; a zero length ends the table
//! "KEYINFRA-END\0\0\0\0"                     16 bytes, then the end of the stream
//! ```
//!
//! Rows are copied as stored: sealed private keys stay sealed under their master-key
//! version, password hashes stay hashes. Restoring is useless without the master keys, and
//! logins need the pepper: those are kept apart from backups (README, "Backups").
//!
//! A restore reads the file twice. The first pass decrypts and authenticates every byte to
//! the end and parses the header, every frame and every table's COPY data (row by row,
//! counted against the header), keeping nothing; only then is the database written, in
//! one transaction, from a second pass. Plaintext never touches the disk.
//!
//! The module's parts: `format` (the header and the frames), `copy` (the streaming check
//! of binary COPY data), `reader` (the decrypted stream and the first-pass check) and
//! `orchestration` (`create`, `verify`, `restore`).

use age::secrecy::SecretString;
use keyinfra_db::DbError;
use std::path::PathBuf;
use zeroize::Zeroizing;

mod copy;
mod format;
mod orchestration;
mod reader;

#[cfg(feature = "fuzzing")]
pub use orchestration::check_plaintext;
pub use orchestration::{create, restore, verify};

/// The shortest passphrase accepted.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// Why a backup or restore failed. Every message is one sentence for an operator; none
/// contains the passphrase or any row.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "the backup passphrase must have at least {MIN_PASSPHRASE_CHARS} characters (it has {0})"
    )]
    PassphraseTooShort(usize),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0} is not a KeyInfra backup ({1})")]
    NotABackup(String, String),
    #[error(
        "wrong passphrase for {0} (or its header was altered): nothing was decrypted and nothing written"
    )]
    WrongPassphrase(String),
    #[error("{0} is damaged or was tampered with: {1}; nothing was written")]
    Damaged(String, String),
    #[error(
        "the backup has schema version {backup}, but this build of KeyInfra has {build}; restore it with the KeyInfra release that made it, then upgrade"
    )]
    SchemaMismatch { backup: i64, build: i64 },
    #[error(
        "the database is not empty (rows in: {}); restore only into an empty database",
        .0.join(", ")
    )]
    NotEmpty(Vec<String>),
    #[error(
        "the database's schema is at version {found}, newer than this build's {build}; use a KeyInfra release that knows it"
    )]
    TargetAhead { found: i64, build: i64 },
    #[error("the snapshot is inconsistent: {0}")]
    Inconsistent(String),
    #[error(transparent)]
    Database(#[from] DbError),
}

/// The passphrase that encrypts backups: separate from the master keys, at least
/// [`MIN_PASSPHRASE_CHARS`] characters, wiped on drop, never printed.
pub struct BackupPassphrase(Zeroizing<String>);

impl BackupPassphrase {
    pub fn new(passphrase: Zeroizing<String>) -> Result<Self, BackupError> {
        let chars = passphrase.chars().count();
        if chars < MIN_PASSPHRASE_CHARS {
            return Err(BackupError::PassphraseTooShort(chars));
        }
        Ok(Self(passphrase))
    }

    fn secret(&self) -> SecretString {
        SecretString::from(self.0.as_str().to_owned())
    }
}

impl std::fmt::Debug for BackupPassphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BackupPassphrase(..)")
    }
}

/// What is being done, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Copying the snapshot into the file.
    Backup,
    /// The restore's first pass: decrypting and checking the whole file.
    Verify,
    /// The restore's second pass: loading the rows.
    Restore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    pub rows_done: u64,
    pub rows_total: u64,
}

/// What `create` wrote.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    pub path: PathBuf,
    pub bytes: u64,
    pub schema_version: i64,
    /// (table, rows), in restore order.
    pub tables: Vec<(String, u64)>,
}

/// What `restore` loaded.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    pub schema_version: i64,
    pub created_at: String,
    pub tables: Vec<(String, u64)>,
}
