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

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use age::secrecy::SecretString;
use keyinfra_db::DbError;
use keyinfra_db::backup::{
    Catalog, CopyOutError, PartitionSpan, RestoreTarget, SequenceValue, Snapshot, TableSpec,
};
use keyinfra_db::migrations;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

use crate::Clock;

const MAGIC: &[u8; 16] = b"KEYINFRA-BACKUP\0";
const END_MAGIC: &[u8; 16] = b"KEYINFRA-END\0\0\0\0";
const FORMAT: &str = "keyinfra-backup";
const FORMAT_VERSION: u32 = 1;
/// Largest frame (and so the largest plaintext buffer a reader holds).
const MAX_FRAME: usize = 1 << 20;
const MAX_HEADER: usize = 16 << 20;
/// The size `create` gathers rows into before it writes a frame.
const FRAME_TARGET: usize = 256 << 10;
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Header {
    format: String,
    format_version: u32,
    schema_version: i64,
    /// RFC 3339, UTC.
    created_at: String,
    keyinfra_version: String,
    tables: Vec<HeaderTable>,
    sequences: Vec<HeaderSequence>,
    certificate_partitions: Option<HeaderPartitions>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HeaderTable {
    name: String,
    columns: Vec<String>,
    rows: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HeaderSequence {
    name: String,
    last_value: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HeaderPartitions {
    /// RFC 3339: the start of the first monthly partition.
    first_month: String,
    months_after: i32,
}

impl Header {
    fn from_catalog(catalog: &Catalog, created_at: OffsetDateTime) -> Result<Self, BackupError> {
        let rfc3339 = |t: OffsetDateTime| {
            t.format(&Rfc3339)
                .map_err(|e| BackupError::Inconsistent(format!("cannot format a time: {e}")))
        };
        Ok(Header {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            schema_version: catalog.schema_version,
            created_at: rfc3339(created_at)?,
            keyinfra_version: env!("CARGO_PKG_VERSION").to_owned(),
            tables: catalog
                .tables
                .iter()
                .map(|t| HeaderTable {
                    name: t.name.clone(),
                    columns: t.columns.clone(),
                    rows: t.rows,
                })
                .collect(),
            sequences: catalog
                .sequences
                .iter()
                .map(|s| HeaderSequence {
                    name: s.name.clone(),
                    last_value: s.last_value,
                })
                .collect(),
            certificate_partitions: match catalog.certificate_partitions {
                Some(p) => Some(HeaderPartitions {
                    first_month: rfc3339(p.first_month)?,
                    months_after: p.months_after,
                }),
                None => None,
            },
        })
    }

    fn catalog(&self) -> Result<Catalog, String> {
        let certificate_partitions = match &self.certificate_partitions {
            Some(p) => Some(PartitionSpan {
                first_month: OffsetDateTime::parse(&p.first_month, &Rfc3339)
                    .map_err(|e| format!("bad partition start in the header: {e}"))?,
                months_after: p.months_after,
            }),
            None => None,
        };
        if let Some(t) = self
            .tables
            .iter()
            .find(|t| t.rows < 0 || t.columns.is_empty())
        {
            return Err(format!("the header describes table {} wrongly", t.name));
        }
        Ok(Catalog {
            schema_version: self.schema_version,
            tables: self
                .tables
                .iter()
                .map(|t| TableSpec {
                    name: t.name.clone(),
                    columns: t.columns.clone(),
                    rows: t.rows,
                })
                .collect(),
            sequences: self
                .sequences
                .iter()
                .map(|s| SequenceValue {
                    name: s.name.clone(),
                    last_value: s.last_value,
                })
                .collect(),
            certificate_partitions,
        })
    }

    fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows.max(0) as u64).sum()
    }
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

/// A streaming parser of PostgreSQL's binary COPY format: checks the signature, that every
/// row has the table's number of fields, that every field is complete and that the trailer
/// ends the data; counts the rows.
#[derive(Debug)]
struct CopyParser {
    fields: usize,
    step: Step,
    small: Vec<u8>,
    fields_left: usize,
    rows: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// 11-byte signature, 4-byte flags, 4-byte header-extension length.
    Header,
    /// A 16-bit field count (-1: the trailer).
    Tuple,
    /// A 32-bit field length (-1: NULL).
    FieldLength,
    /// Bytes to skip (an extension area or a field's value).
    Skip(u64),
    Done,
}

const COPY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

impl CopyParser {
    fn new(fields: usize) -> Self {
        Self {
            fields,
            step: Step::Header,
            small: Vec::with_capacity(19),
            fields_left: 0,
            rows: 0,
        }
    }

    fn after_value(&self) -> Step {
        if self.fields_left > 0 {
            Step::FieldLength
        } else {
            Step::Tuple
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> Result<(), String> {
        while !data.is_empty() {
            let need = match self.step {
                Step::Done => return Err("data follows the end of the table".to_owned()),
                Step::Skip(n) => {
                    let take = n.min(data.len() as u64);
                    data = &data[take as usize..];
                    self.step = if n == take {
                        self.after_value()
                    } else {
                        Step::Skip(n - take)
                    };
                    continue;
                }
                Step::Header => 19,
                Step::Tuple => 2,
                Step::FieldLength => 4,
            };
            let take = (need - self.small.len()).min(data.len());
            self.small.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.small.len() == need {
                self.complete()?;
                self.small.clear();
            }
        }
        Ok(())
    }

    fn complete(&mut self) -> Result<(), String> {
        let b = &self.small;
        match self.step {
            Step::Header => {
                if &b[..11] != COPY_SIGNATURE {
                    return Err("not PostgreSQL binary COPY data".to_owned());
                }
                let flags = u32::from_be_bytes([b[11], b[12], b[13], b[14]]);
                if flags & (1 << 16) != 0 {
                    return Err("COPY data with OIDs".to_owned());
                }
                let extension = u32::from_be_bytes([b[15], b[16], b[17], b[18]]);
                self.fields_left = 0;
                self.step = if extension == 0 {
                    Step::Tuple
                } else {
                    Step::Skip(u64::from(extension))
                };
            }
            Step::Tuple => {
                let n = i16::from_be_bytes([b[0], b[1]]);
                if n == -1 {
                    self.step = Step::Done;
                } else if usize::try_from(n).ok() != Some(self.fields) {
                    return Err(format!(
                        "a row has {n} fields where the table has {}",
                        self.fields
                    ));
                } else {
                    self.rows += 1;
                    self.fields_left = self.fields;
                    self.step = self.after_value();
                }
            }
            Step::FieldLength => {
                let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                self.fields_left -= 1;
                self.step = match len {
                    -1 | 0 => self.after_value(),
                    l if l < 0 => return Err(format!("a field has length {l}")),
                    l => Step::Skip(l as u64),
                };
            }
            Step::Skip(_) | Step::Done => {}
        }
        Ok(())
    }

    fn finish(&self) -> Result<u64, String> {
        if self.step == Step::Done {
            Ok(self.rows)
        } else {
            Err("the table's data ends early".to_owned())
        }
    }
}

fn write_frames(out: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    for chunk in data.chunks(MAX_FRAME) {
        // A chunk is at most MAX_FRAME (1 MiB) long: it fits.
        out.write_all(&(chunk.len() as u32).to_be_bytes())?;
        out.write_all(chunk)?;
    }
    Ok(())
}

/// Makes a backup of the database at `url` (as its owner) into `out`. The file is written
/// next to `out` under a temporary name (mode 0600) and renamed when complete, so `out`
/// never holds half a backup.
pub async fn create(
    url: &str,
    out: &Path,
    passphrase: &BackupPassphrase,
    clock: &dyn Clock,
    progress: &mut dyn FnMut(Progress),
) -> Result<BackupSummary, BackupError> {
    let shown = out.display().to_string();
    let io = |what: &str| {
        let what = format!("{what} {shown}");
        move |source| BackupError::Io { what, source }
    };
    let partial = {
        let mut name = out
            .file_name()
            .ok_or_else(|| BackupError::Io {
                what: format!("cannot write the backup to {shown}"),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
            })?
            .to_os_string();
        name.push(".partial");
        out.with_file_name(name)
    };
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(io("cannot write the backup to"))?
    };
    let result = write_backup(url, file, passphrase, clock, progress, &shown).await;
    match result {
        Ok(mut summary) => {
            std::fs::rename(&partial, out).map_err(io("cannot write the backup to"))?;
            summary.path = out.to_owned();
            summary.bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

async fn write_backup(
    url: &str,
    file: File,
    passphrase: &BackupPassphrase,
    clock: &dyn Clock,
    progress: &mut dyn FnMut(Progress),
    shown: &str,
) -> Result<BackupSummary, BackupError> {
    let io = |source| BackupError::Io {
        what: format!("cannot write the backup to {shown}"),
        source,
    };
    let mut snapshot = Snapshot::begin(url).await?;
    let catalog = snapshot.catalog().await?;
    let header = Header::from_catalog(&catalog, clock.now())?;
    let header_json = Zeroizing::new(
        serde_json::to_vec(&header)
            .map_err(|e| BackupError::Inconsistent(format!("cannot encode the header: {e}")))?,
    );
    let mut total = Progress {
        phase: Phase::Backup,
        rows_done: 0,
        rows_total: header.total_rows(),
    };
    progress(total);

    let encryptor = age::Encryptor::with_user_passphrase(passphrase.secret());
    let mut writer = encryptor
        .wrap_output(BufWriter::with_capacity(1 << 16, file))
        .map_err(io)?;
    writer.write_all(MAGIC).map_err(io)?;
    writer
        .write_all(&(header_json.len() as u32).to_be_bytes())
        .map_err(io)?;
    writer.write_all(&header_json).map_err(io)?;

    let mut tables = Vec::with_capacity(catalog.tables.len());
    for table in &catalog.tables {
        let mut parser = CopyParser::new(table.columns.len());
        let before = total.rows_done;
        // PostgreSQL sends one message per row: rows are gathered into frames of about
        // FRAME_TARGET bytes, so that a restore sends few, large COPY messages.
        let mut pending = Zeroizing::new(Vec::with_capacity(FRAME_TARGET + (64 << 10)));
        snapshot
            .copy_out(table, |chunk| {
                parser
                    .feed(chunk)
                    .map_err(|e| BackupError::Inconsistent(format!("table {}: {e}", table.name)))?;
                pending.extend_from_slice(chunk);
                if pending.len() >= FRAME_TARGET {
                    write_frames(&mut writer, &pending).map_err(io)?;
                    pending.clear();
                    total.rows_done = before + parser.rows;
                    progress(total);
                }
                Ok::<(), BackupError>(())
            })
            .await
            .map_err(|e| match e {
                CopyOutError::Database(d) => BackupError::Database(d),
                CopyOutError::Sink(s) => s,
            })?;
        write_frames(&mut writer, &pending).map_err(io)?;
        total.rows_done = before + parser.rows;
        progress(total);
        let rows = parser
            .finish()
            .map_err(|e| BackupError::Inconsistent(format!("table {}: {e}", table.name)))?;
        if rows != table.rows as u64 {
            return Err(BackupError::Inconsistent(format!(
                "table {} had {} rows when counted and {rows} when copied",
                table.name, table.rows
            )));
        }
        writer.write_all(&0u32.to_be_bytes()).map_err(io)?;
        tables.push((table.name.clone(), rows));
    }
    writer.write_all(END_MAGIC).map_err(io)?;
    let buffered = writer.finish().map_err(io)?;
    let file = buffered.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    snapshot.finish().await?;
    Ok(BackupSummary {
        path: PathBuf::new(),
        bytes: 0,
        schema_version: catalog.schema_version,
        tables,
    })
}

/// The decrypted stream of one backup file (or, for the fuzz target, any plaintext).
struct BackupReader<R> {
    inner: R,
    shown: String,
    position: u64,
}

impl BackupReader<age::stream::StreamReader<BufReader<File>>> {
    /// Opens `path`, unlocks it with the passphrase and reads the header.
    fn open(path: &Path, passphrase: &BackupPassphrase) -> Result<(Self, Header), BackupError> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|source| BackupError::Io {
            what: format!("cannot open the backup {shown}"),
            source,
        })?;
        let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(1 << 16, file))
            .map_err(|e| match e {
                age::DecryptError::Io(io) if io.kind() != std::io::ErrorKind::UnexpectedEof => {
                    BackupError::Io {
                        what: format!("cannot read the backup {shown}"),
                        source: io,
                    }
                }
                _ => BackupError::NotABackup(shown.clone(), "no age header".to_owned()),
            })?;
        if !decryptor.is_scrypt() {
            return Err(BackupError::NotABackup(
                shown,
                "it is not encrypted to a passphrase".to_owned(),
            ));
        }
        let identity = age::scrypt::Identity::new(passphrase.secret());
        let inner = decryptor
            .decrypt(std::iter::once(&identity as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::DecryptionFailed
                | age::DecryptError::NoMatchingKeys
                | age::DecryptError::KeyDecryptionFailed => {
                    BackupError::WrongPassphrase(shown.clone())
                }
                age::DecryptError::InvalidMac => {
                    BackupError::Damaged(shown.clone(), "its header was altered".to_owned())
                }
                age::DecryptError::ExcessiveWork { .. } => BackupError::NotABackup(
                    shown.clone(),
                    "its passphrase work factor is far above this machine's".to_owned(),
                ),
                other => BackupError::NotABackup(shown.clone(), other.to_string()),
            })?;
        Self::start(inner, shown)
    }
}

impl<R: Read> BackupReader<R> {
    /// Reads the magic and the header from the start of the plaintext.
    fn start(inner: R, shown: String) -> Result<(Self, Header), BackupError> {
        let mut reader = Self {
            inner,
            shown,
            position: 0,
        };
        let mut magic = [0u8; 16];
        reader.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(BackupError::NotABackup(
                reader.shown,
                "it decrypts, but holds something else".to_owned(),
            ));
        }
        let mut length = [0u8; 4];
        reader.read_exact(&mut length)?;
        let length = u32::from_be_bytes(length) as usize;
        if length > MAX_HEADER {
            return Err(reader.damaged("the header is implausibly long"));
        }
        let mut json = Zeroizing::new(vec![0u8; length]);
        reader.read_exact(&mut json)?;
        let header: Header = serde_json::from_slice(&json)
            .map_err(|e| reader.damaged(&format!("the header does not parse ({e})")))?;
        if header.format != FORMAT || header.format_version != FORMAT_VERSION {
            return Err(BackupError::NotABackup(
                reader.shown,
                format!(
                    "format {:?} version {}, this build reads {FORMAT:?} version {FORMAT_VERSION}",
                    header.format, header.format_version
                ),
            ));
        }
        Ok((reader, header))
    }

    fn damaged(&self, why: &str) -> BackupError {
        BackupError::Damaged(self.shown.clone(), why.to_owned())
    }

    fn read_error(&self, e: std::io::Error) -> BackupError {
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof => self.damaged(&format!(
                "it is truncated (it ends after {} bytes of content)",
                self.position
            )),
            std::io::ErrorKind::InvalidData => self.damaged(&format!(
                "authentication failed after {} bytes of content (altered, reordered or truncated)",
                self.position
            )),
            _ => BackupError::Io {
                what: format!("cannot read the backup {}", self.shown),
                source: e,
            },
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), BackupError> {
        self.inner.read_exact(buf).map_err(|e| self.read_error(e))?;
        self.position += buf.len() as u64;
        Ok(())
    }

    /// The next frame of the current table into `buf`; `false` at the table's end.
    fn next_frame(&mut self, buf: &mut Zeroizing<Vec<u8>>) -> Result<bool, BackupError> {
        let mut length = [0u8; 4];
        self.read_exact(&mut length)?;
        let length = u32::from_be_bytes(length) as usize;
        if length == 0 {
            return Ok(false);
        }
        if length > MAX_FRAME {
            return Err(self.damaged("a frame is longer than the format allows"));
        }
        buf.resize(length, 0);
        self.read_exact(buf)?;
        Ok(true)
    }

    /// The end marker, then the end of the stream (reading it authenticates the last chunk).
    fn expect_end(&mut self) -> Result<(), BackupError> {
        let mut magic = [0u8; 16];
        self.read_exact(&mut magic)?;
        if &magic != END_MAGIC {
            return Err(self.damaged("the end marker is missing"));
        }
        let mut extra = [0u8; 1];
        loop {
            match self.inner.read(&mut extra) {
                Ok(0) => return Ok(()),
                Ok(_) => return Err(self.damaged("data follows the end marker")),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(e)),
            }
        }
    }
}

/// Reads every table of an opened backup, checking each one's COPY data against the
/// header; `each_frame` sees every frame.
fn check_tables<R: Read>(
    reader: &mut BackupReader<R>,
    header: &Header,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), BackupError> {
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_FRAME));
    let mut done = Progress {
        phase: Phase::Verify,
        rows_done: 0,
        rows_total: header.total_rows(),
    };
    progress(done);
    for table in &header.tables {
        let mut parser = CopyParser::new(table.columns.len());
        let before = done.rows_done;
        while reader.next_frame(&mut buf)? {
            parser
                .feed(&buf)
                .map_err(|e| reader.damaged(&format!("table {}: {e}", table.name)))?;
            done.rows_done = before + parser.rows;
            progress(done);
        }
        let rows = parser
            .finish()
            .map_err(|e| reader.damaged(&format!("table {}: {e}", table.name)))?;
        if rows != table.rows as u64 {
            return Err(reader.damaged(&format!(
                "table {} holds {rows} rows where the header says {}",
                table.name, table.rows
            )));
        }
    }
    reader.expect_end()
}

/// Checks a backup without touching any database: decrypts and authenticates all of it
/// and parses every table. Returns the header's summary.
pub fn verify(
    path: &Path,
    passphrase: &BackupPassphrase,
    progress: &mut dyn FnMut(Progress),
) -> Result<RestoreSummary, BackupError> {
    let (mut reader, header) = BackupReader::open(path, passphrase)?;
    check_tables(&mut reader, &header, progress)?;
    Ok(summary_of(&header))
}

/// The checks of [`verify`] and of a restore's first pass on plaintext that age has already
/// decrypted: the header, the catalog it describes, every table's COPY data, the end. For
/// the fuzz target (`fuzz/`), which cannot afford scrypt per input.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub fn check_plaintext(plaintext: impl Read) -> Result<RestoreSummary, BackupError> {
    let (mut reader, header) = BackupReader::start(plaintext, "(plaintext)".to_owned())?;
    header.catalog().map_err(|e| reader.damaged(&e))?;
    check_tables(&mut reader, &header, &mut |_| {})?;
    Ok(summary_of(&header))
}

fn summary_of(header: &Header) -> RestoreSummary {
    RestoreSummary {
        schema_version: header.schema_version,
        created_at: header.created_at.clone(),
        tables: header
            .tables
            .iter()
            .map(|t| (t.name.clone(), t.rows.max(0) as u64))
            .collect(),
    }
}

/// Restores the backup at `path` into the EMPTY database at `url` (as its owner): checks
/// the whole file first, applies the migrations, then loads every table in one transaction.
/// A refused or failed restore leaves no row behind.
pub async fn restore(
    url: &str,
    path: &Path,
    passphrase: &BackupPassphrase,
    progress: &mut dyn FnMut(Progress),
) -> Result<RestoreSummary, BackupError> {
    // The header first: a wrong passphrase or another schema is refused at once.
    let (mut reader, header) = BackupReader::open(path, passphrase)?;
    let build = migrations::latest_version();
    if header.schema_version != build {
        return Err(BackupError::SchemaMismatch {
            backup: header.schema_version,
            build,
        });
    }
    let catalog = header.catalog().map_err(|e| reader.damaged(&e))?;

    // Read-only checks of the target.
    let mut target = RestoreTarget::connect(url).await?;
    let found = target.schema_version().await?;
    if found > build {
        return Err(BackupError::TargetAhead { found, build });
    }
    let filled = target.tables_with_rows().await?;
    if !filled.is_empty() {
        return Err(BackupError::NotEmpty(filled));
    }

    // The first pass: all of the file, nothing kept.
    check_tables(&mut reader, &header, progress)?;
    drop(reader);

    migrations::up(url).await?;
    let found = target.schema_version().await?;
    if found != header.schema_version {
        return Err(BackupError::TargetAhead { found, build });
    }

    // The second pass, into one transaction.
    let (mut reader, again) = BackupReader::open(path, passphrase)?;
    if again != header {
        return Err(reader.damaged("it changed while it was being restored"));
    }
    let mut restore = target.begin(&catalog).await?;
    let loaded = async {
        let mut buf = Zeroizing::new(Vec::with_capacity(MAX_FRAME));
        let mut done = Progress {
            phase: Phase::Restore,
            rows_done: 0,
            rows_total: header.total_rows(),
        };
        progress(done);
        for table in &catalog.tables {
            let mut loader = restore.load(table).await?;
            let mut parser = CopyParser::new(table.columns.len());
            let before = done.rows_done;
            loop {
                let more = match reader.next_frame(&mut buf) {
                    Ok(more) => more,
                    Err(e) => {
                        loader.abort("the backup could not be read").await;
                        return Err(e);
                    }
                };
                if !more {
                    break;
                }
                if let Err(e) = parser.feed(&buf) {
                    loader.abort("the backup's data is malformed").await;
                    return Err(reader.damaged(&format!("table {}: {e}", table.name)));
                }
                loader.send(&buf).await?;
                done.rows_done = before + parser.rows;
                progress(done);
            }
            let rows = loader.finish().await?;
            if rows != table.rows as u64 {
                return Err(BackupError::Inconsistent(format!(
                    "table {}: {rows} rows loaded where the backup has {}",
                    table.name, table.rows
                )));
            }
        }
        reader.expect_end()
    }
    .await;
    match loaded {
        Ok(()) => restore.commit(&catalog).await?,
        Err(e) => {
            restore.rollback().await;
            target.close().await;
            return Err(e);
        }
    }
    target.close().await;
    Ok(summary_of(&header))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Binary COPY data of `rows` rows of `fields` fields (a NULL, then 3-byte values).
    fn copy_data(rows: usize, fields: usize) -> Vec<u8> {
        let mut d = COPY_SIGNATURE.to_vec();
        d.extend_from_slice(&0u32.to_be_bytes());
        d.extend_from_slice(&4u32.to_be_bytes());
        d.extend_from_slice(b"ext!");
        for _ in 0..rows {
            d.extend_from_slice(&(fields as i16).to_be_bytes());
            for f in 0..fields {
                if f == 0 {
                    d.extend_from_slice(&(-1i32).to_be_bytes());
                } else {
                    d.extend_from_slice(&3i32.to_be_bytes());
                    d.extend_from_slice(b"abc");
                }
            }
        }
        d.extend_from_slice(&(-1i16).to_be_bytes());
        d
    }

    #[test]
    fn the_copy_parser_counts_rows_in_any_chunking() {
        let data = copy_data(5, 3);
        for size in [1, 2, 3, 7, 64, data.len()] {
            let mut p = CopyParser::new(3);
            for chunk in data.chunks(size) {
                p.feed(chunk).unwrap();
            }
            assert_eq!(p.finish().unwrap(), 5, "chunks of {size}");
        }
        let mut p = CopyParser::new(3);
        p.feed(&copy_data(0, 3)).unwrap();
        assert_eq!(p.finish().unwrap(), 0);
    }

    #[test]
    fn the_copy_parser_refuses_malformed_data() {
        let data = copy_data(2, 3);
        let mut short = CopyParser::new(3);
        short.feed(&data[..data.len() - 3]).unwrap();
        assert!(short.finish().is_err());
        assert!(CopyParser::new(4).feed(&data).is_err());
        let mut extra = data.clone();
        extra.push(0);
        assert!(CopyParser::new(3).feed(&extra).is_err());
        let mut bad = data;
        bad[0] = b'X';
        assert!(CopyParser::new(3).feed(&bad).is_err());
    }

    #[test]
    fn short_passphrases_are_refused_and_never_shown() {
        let err = BackupPassphrase::new(Zeroizing::new("short-pass".to_owned())).unwrap_err();
        assert!(err.to_string().contains("at least 12"), "{err}");
        assert!(!err.to_string().contains("short-pass"));
        let ok = BackupPassphrase::new(Zeroizing::new("twelve chars".to_owned())).unwrap();
        assert_eq!(format!("{ok:?}"), "BackupPassphrase(..)");
    }

    const PASS: &str = "unit-test passphrase";

    fn passphrase(text: &str) -> BackupPassphrase {
        BackupPassphrase::new(Zeroizing::new(text.to_owned())).unwrap()
    }

    fn test_header(schema_version: i64, rows: i64) -> Header {
        Header {
            format: FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            schema_version,
            created_at: "2026-01-01T00:00:00Z".to_owned(),
            keyinfra_version: "test".to_owned(),
            tables: vec![HeaderTable {
                name: "t".to_owned(),
                columns: vec!["a".to_owned(), "b".to_owned(), "c".to_owned()],
                rows,
            }],
            sequences: vec![],
            certificate_partitions: None,
        }
    }

    /// A backup file as `create` lays it out, with a cheap scrypt work factor.
    fn write_file(dir: &Path, name: &str, header: &Header, copy: &[u8], tail: &[u8]) -> PathBuf {
        let mut plain = MAGIC.to_vec();
        let json = serde_json::to_vec(header).unwrap();
        plain.extend_from_slice(&(json.len() as u32).to_be_bytes());
        plain.extend_from_slice(&json);
        write_frames(&mut plain, copy).unwrap();
        plain.extend_from_slice(&0u32.to_be_bytes());
        plain.extend_from_slice(tail);
        let mut recipient = age::scrypt::Recipient::new(SecretString::from(PASS.to_owned()));
        recipient.set_work_factor(10);
        let path = dir.join(name);
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                .unwrap();
        let mut w = encryptor.wrap_output(File::create(&path).unwrap()).unwrap();
        w.write_all(&plain).unwrap();
        w.finish().unwrap();
        path
    }

    #[test]
    fn verify_checks_rows_markers_and_the_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let copy = copy_data(2, 3);
        let good = write_file(dir.path(), "good", &test_header(9, 2), &copy, END_MAGIC);
        let summary = verify(&good, &passphrase(PASS), &mut |_| {}).unwrap();
        assert_eq!(summary.tables, vec![("t".to_owned(), 2)]);

        let err = verify(&good, &passphrase("another passphrase"), &mut |_| {}).unwrap_err();
        assert!(matches!(err, BackupError::WrongPassphrase(_)), "{err}");

        let lying = write_file(dir.path(), "lying", &test_header(9, 3), &copy, END_MAGIC);
        let err = verify(&lying, &passphrase(PASS), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("holds 2 rows"), "{err}");

        let unended = write_file(dir.path(), "unended", &test_header(9, 2), &copy, b"");
        let err = verify(&unended, &passphrase(PASS), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");

        let mut tail = END_MAGIC.to_vec();
        tail.push(1);
        let trailing = write_file(dir.path(), "trailing", &test_header(9, 2), &copy, &tail);
        let err = verify(&trailing, &passphrase(PASS), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("follows the end marker"), "{err}");
    }

    #[tokio::test]
    async fn another_schema_version_is_refused_before_any_database_is_touched() {
        let dir = tempfile::tempdir().unwrap();
        let old = write_file(
            dir.path(),
            "old",
            &test_header(1, 2),
            &copy_data(2, 3),
            END_MAGIC,
        );
        // Nothing listens on port 1: reaching the database would be a different error.
        let err = restore(
            "postgres://nobody@127.0.0.1:1/none",
            &old,
            &passphrase(PASS),
            &mut |_| {},
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, BackupError::SchemaMismatch { backup: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("schema version 1"), "{err}");
    }

    #[test]
    fn frames_split_long_chunks() {
        let mut out = Vec::new();
        write_frames(&mut out, &vec![7u8; MAX_FRAME + 5]).unwrap();
        assert_eq!(out.len(), MAX_FRAME + 5 + 8);
        assert_eq!(&out[..4], &(MAX_FRAME as u32).to_be_bytes());
    }
}
