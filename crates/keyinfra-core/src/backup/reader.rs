//! The decrypted stream of a backup file: opening it with the passphrase, the header,
//! the frames, the end marker, and the first-pass check of every table.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use zeroize::Zeroizing;

use super::copy::CopyParser;
use super::format::{END_MAGIC, FORMAT, FORMAT_VERSION, Header, MAGIC, MAX_FRAME, MAX_HEADER};
use super::{BackupError, BackupPassphrase, Phase, Progress};

/// The decrypted stream of one backup file (or, for the fuzz target, any plaintext).
pub(super) struct BackupReader<R> {
    inner: R,
    shown: String,
    position: u64,
}

impl BackupReader<age::stream::StreamReader<BufReader<File>>> {
    /// Opens `path`, unlocks it with the passphrase and reads the header.
    pub(super) fn open(
        path: &Path,
        passphrase: &BackupPassphrase,
    ) -> Result<(Self, Header), BackupError> {
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
    pub(super) fn start(inner: R, shown: String) -> Result<(Self, Header), BackupError> {
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

    pub(super) fn damaged(&self, why: &str) -> BackupError {
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
    pub(super) fn next_frame(&mut self, buf: &mut Zeroizing<Vec<u8>>) -> Result<bool, BackupError> {
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
    pub(super) fn expect_end(&mut self) -> Result<(), BackupError> {
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
pub(super) fn check_tables<R: Read>(
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
