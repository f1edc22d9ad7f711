//! The backup benchmark: `backup create` and `backup restore` (the library functions the
//! CLI calls) over N certificates with their sealed keys.

use std::time::Instant;

use keyinfra_core::SystemClock;
use keyinfra_core::backup::{self, BackupPassphrase};
use keyinfra_db::migrations;

pub struct BackupConfig {
    pub server_url: String,
    pub certificates: i64,
}

#[allow(clippy::print_stdout)]
pub async fn run(config: &BackupConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    let log = |line: &str| println!("[{:>7.1}s] {line}", started.elapsed().as_secs_f64());
    let source =
        keyinfra_db::bench::recreate_database(&config.server_url, "keyinfra_bench_backup").await?;
    migrations::up(&source).await?;
    keyinfra_db::bench::load_certificates_with_keys(&source, config.certificates, &log).await?;

    let passphrase = BackupPassphrase::new(zeroize::Zeroizing::new(
        "benchmark backup passphrase".to_owned(),
    ))?;
    let file = std::env::temp_dir().join("keyinfra-bench.backup");
    log("backup create");
    let t = Instant::now();
    let created = backup::create(&source, &file, &passphrase, &SystemClock, &mut |_| {}).await?;
    let create_s = t.elapsed().as_secs_f64();
    let rows: u64 = created.tables.iter().map(|(_, n)| n).sum();

    log("backup verify");
    let t = Instant::now();
    backup::verify(&file, &passphrase, &mut |_| {})?;
    let verify_s = t.elapsed().as_secs_f64();

    let target =
        keyinfra_db::bench::recreate_database(&config.server_url, "keyinfra_bench_restore").await?;
    log("backup restore (into an empty database without schema)");
    let t = Instant::now();
    backup::restore(&target, &file, &passphrase, &mut |_| {}).await?;
    let restore_s = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);

    println!();
    println!("## Backup benchmark");
    println!();
    println!(
        "- machine: {} cores; PostgreSQL on the same machine",
        crate::cores()
    );
    println!(
        "- {} certificates with sealed keys; {rows} rows in {} tables",
        config.certificates,
        created.tables.len()
    );
    for (table, n) in &created.tables {
        println!("  - {table}: {n}");
    }
    println!();
    println!("| step | seconds | rows/s |");
    println!("|---|---:|---:|");
    for (step, s) in [
        (
            "backup create (snapshot, COPY out, encrypt, fsync)",
            create_s,
        ),
        ("backup verify (decrypt, authenticate, parse)", verify_s),
        (
            "backup restore (verify pass, migrate, COPY in, refresh, commit)",
            restore_s,
        ),
    ] {
        println!("| {step} | {s:.1} | {:.0} |", rows as f64 / s.max(1e-9));
    }
    println!();
    println!(
        "backup file: {:.1} MiB ({} bytes)",
        created.bytes as f64 / 1_048_576.0,
        created.bytes
    );
    Ok(())
}
