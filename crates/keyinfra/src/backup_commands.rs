//! `keyinfra backup create|restore|verify`. The work is `keyinfra_core::backup` (which the
//! benchmark calls too); this is the passphrase, the progress bar and the output.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context;
use keyinfra_core::SystemClock;
use keyinfra_core::backup::{self, BackupPassphrase, Phase, Progress};
use zeroize::Zeroizing;

use crate::cli::{BackupCommand, DatabaseArgs, PassphraseArgs};
use crate::database::Target;

#[allow(clippy::print_stdout)] // A command's output is its result.
fn out(line: String) {
    println!("{line}");
}

pub async fn run(database: &DatabaseArgs, command: BackupCommand) -> anyhow::Result<()> {
    match command {
        BackupCommand::Create {
            out: path,
            passphrase,
        } => {
            let passphrase = read_passphrase(&passphrase, true)?;
            let target = Target::open(database).await?;
            let bar = ProgressBar::new();
            let outcome = backup::create(&target.url, &path, &passphrase, &SystemClock, &mut |p| {
                bar.show(p)
            })
            .await;
            bar.finish();
            let closed = target.close().await;
            let summary = outcome.context("the backup failed")?;
            closed?;
            let rows: u64 = summary.tables.iter().map(|(_, n)| n).sum();
            for (table, n) in &summary.tables {
                out(format!("  {table}: {n} rows"));
            }
            out(format!(
                "wrote {} ({} bytes, schema version {}, {rows} rows in {} tables)",
                summary.path.display(),
                summary.bytes,
                summary.schema_version,
                summary.tables.len()
            ));
            out("keep the master keys, the pepper and the JWT secret apart from this file: a restore needs them".to_owned());
            Ok(())
        }
        BackupCommand::Restore { file, passphrase } => {
            let passphrase = read_passphrase(&passphrase, false)?;
            require_file(&file)?;
            let target = Target::open(database).await?;
            let bar = ProgressBar::new();
            let outcome =
                backup::restore(&target.url, &file, &passphrase, &mut |p| bar.show(p)).await;
            bar.finish();
            let closed = target.close().await;
            let summary = outcome.with_context(|| format!("cannot restore {}", file.display()))?;
            closed?;
            let rows: u64 = summary.tables.iter().map(|(_, n)| n).sum();
            for (table, n) in &summary.tables {
                out(format!("  {table}: {n} rows"));
            }
            out(format!(
                "restored the backup made {} (schema version {}): {rows} rows in {} tables",
                summary.created_at,
                summary.schema_version,
                summary.tables.len()
            ));
            out("start KeyInfra with the master keys, pepper and JWT secret of the backed-up installation".to_owned());
            Ok(())
        }
        BackupCommand::Verify { file, passphrase } => {
            let passphrase = read_passphrase(&passphrase, false)?;
            require_file(&file)?;
            let bar = ProgressBar::new();
            let outcome = backup::verify(&file, &passphrase, &mut |p| bar.show(p));
            bar.finish();
            let summary = outcome.with_context(|| format!("cannot verify {}", file.display()))?;
            let rows: u64 = summary.tables.iter().map(|(_, n)| n).sum();
            out(format!(
                "{} is intact: made {}, schema version {}, {rows} rows in {} tables",
                file.display(),
                summary.created_at,
                summary.schema_version,
                summary.tables.len()
            ));
            Ok(())
        }
    }
}

/// A missing backup is refused before any database is opened or started.
fn require_file(file: &Path) -> anyhow::Result<()> {
    match std::fs::metadata(file) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => anyhow::bail!("{} is not a file", file.display()),
        Err(e) => {
            Err(anyhow::Error::new(e).context(format!("cannot open the backup {}", file.display())))
        }
    }
}

/// The passphrase from --passphrase-file / KEYINFRA_BACKUP_PASSPHRASE_FILE, else
/// KEYINFRA_BACKUP_PASSPHRASE, else a prompt on a terminal (twice when it is new).
fn read_passphrase(args: &PassphraseArgs, new: bool) -> anyhow::Result<BackupPassphrase> {
    let text = if let Some(path) = &args.passphrase_file {
        let bytes = Zeroizing::new(std::fs::read(path).with_context(|| {
            format!(
                "cannot read the backup passphrase file {} (--passphrase-file / KEYINFRA_BACKUP_PASSPHRASE_FILE)",
                path.display()
            )
        })?);
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            anyhow::anyhow!(
                "the backup passphrase file {} is not UTF-8 text",
                path.display()
            )
        })?;
        Zeroizing::new(text.trim_end_matches(['\n', '\r']).to_owned())
    } else if let Some(value) = crate::secrets::from_environment("KEYINFRA_BACKUP_PASSPHRASE") {
        value
    } else if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(
            rpassword::prompt_password("Backup passphrase: ")
                .context("cannot read the backup passphrase")?,
        );
        if new {
            let again = Zeroizing::new(
                rpassword::prompt_password("Backup passphrase again: ")
                    .context("cannot read the backup passphrase")?,
            );
            if first != again {
                anyhow::bail!("the two passphrases differ");
            }
        }
        first
    } else {
        anyhow::bail!(
            "no backup passphrase: give --passphrase-file FILE, KEYINFRA_BACKUP_PASSPHRASE_FILE or KEYINFRA_BACKUP_PASSPHRASE"
        );
    };
    Ok(BackupPassphrase::new(text)?)
}

/// Rows done, on stderr, only on a terminal.
struct ProgressBar {
    bar: indicatif::ProgressBar,
}

impl ProgressBar {
    fn new() -> Self {
        let bar = indicatif::ProgressBar::new(0);
        if !std::io::stderr().is_terminal() {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg:10} {bar:40} {pos}/{len} rows ({eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Self { bar }
    }

    fn show(&self, p: Progress) {
        let phase = match p.phase {
            Phase::Backup => "backing up",
            Phase::Verify => "verifying",
            Phase::Restore => "restoring",
        };
        if self.bar.message() != phase {
            self.bar.set_message(phase);
            self.bar.reset_eta();
        }
        self.bar.set_length(p.rows_total);
        self.bar.set_position(p.rows_done);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
