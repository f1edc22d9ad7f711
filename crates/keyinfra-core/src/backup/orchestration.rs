//! `backup create`, `backup verify` and `backup restore`: the snapshot into a file, the
//! file's check, and the two-pass restore into an empty database.

use std::fs::File;
#[cfg(feature = "fuzzing")]
use std::io::Read;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use keyinfra_db::backup::{CopyOutError, RestoreTarget, Snapshot};
use keyinfra_db::migrations;
use zeroize::Zeroizing;

use super::copy::CopyParser;
use super::format::{END_MAGIC, FRAME_TARGET, Header, MAGIC, MAX_FRAME, write_frames};
use super::reader::{BackupReader, check_tables};
use super::{BackupError, BackupPassphrase, BackupSummary, Phase, Progress, RestoreSummary};
use crate::Clock;

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
    use crate::backup::copy::copy_data;
    use crate::backup::format::{FORMAT, FORMAT_VERSION, HeaderTable};
    use age::secrecy::SecretString;
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
