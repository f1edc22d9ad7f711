//! `keyinfra-bench`: the benchmarks behind docs/benchmarks.md. Not a test: it prints figures.
//!
//!     cargo run --release -p keyinfra-bench -- schema
//!     cargo run --release -p keyinfra-bench -- crl
//!     cargo run --release -p keyinfra-bench -- backup --certificates 100000
//!     cargo run --release -p keyinfra-bench -- ocsp-requests ...   (scripts/bench-ocsp runs it)
//!     cargo run --release -p keyinfra-bench -- scep                (scripts/bench-scep runs it)
//!
//! uses DATABASE_URL's server (default: the local PostgreSQL on 127.0.0.1:5432) and
//! (re)creates a database named keyinfra_bench there.

mod acme;
mod backup;
mod boot;
mod crl;
mod est;
mod ocsp;
mod scep;

use clap::{Parser, Subcommand};
use keyinfra_db::bench::{self, BenchConfig};

#[derive(Debug, Parser)]
#[command(name = "keyinfra-bench")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Load synthetic certificates into the real schema and time the hot queries.
    Schema {
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres",
            hide_env_values = true
        )]
        database_url: String,
        /// Certificate rows to load.
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
        /// Users the certificates are spread over.
        #[arg(long, default_value_t = 10_000)]
        users: i64,
        /// Expiry dates run from this many months ago...
        #[arg(long, default_value_t = 6)]
        months_back: i32,
        /// ...to this many months ahead (so months_back + months_ahead partitions hold data).
        #[arg(long, default_value_t = 24)]
        months_ahead: i32,
        /// Timed calls per query.
        #[arg(long, default_value_t = 2000)]
        samples: usize,
        /// Reuse the database a previous run loaded.
        #[arg(long)]
        reuse: bool,
    },
    /// Partition maintenance at scale: creating partitions ahead and dropping those past
    /// retention (with their certificates, revocations and keys).
    Partitions {
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres",
            hide_env_values = true
        )]
        database_url: String,
        /// Certificates (each with its own sealed key) to load.
        #[arg(long, default_value_t = 1_000_000)]
        rows: i64,
        /// Expiry dates run from this many months ago (beyond the 24-month retention)...
        #[arg(long, default_value_t = 30)]
        months_back: i32,
        /// ...to this many months ahead.
        #[arg(long, default_value_t = 6)]
        months_ahead: i32,
    },
    /// CRL build time and memory at many revocations, and revocation request latency.
    Crl {
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres",
            hide_env_values = true
        )]
        database_url: String,
        /// Revoked-certificate counts to measure at, ascending.
        #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
        sizes: Vec<i64>,
        /// Revocation requests timed at each size.
        #[arg(long, default_value_t = 500)]
        revocations: usize,
    },
    /// For scripts/bench-ocsp: issues and revokes certificates under a running KeyInfra's
    /// CA, and writes OCSP requests for them and what OpenSSL's responder needs to answer
    /// for the same certificates (an index, the CA and a responder certificate).
    OcspRequests {
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres",
            hide_env_values = true
        )]
        database_url: String,
        /// The master keys file the running KeyInfra was given (KEYINFRA_MASTER_KEYS_FILE).
        #[arg(long)]
        master_keys_file: std::path::PathBuf,
        /// The public key (PEM) OpenSSL's responder signs with; the CA certifies it.
        #[arg(long)]
        responder_public_key: std::path::PathBuf,
        /// Directory to write into.
        #[arg(long)]
        out: std::path::PathBuf,
        /// Certificates to issue.
        #[arg(long, default_value_t = 10_000)]
        certificates: usize,
        /// Revoke every Nth certificate (10: 10% revoked).
        #[arg(long, default_value_t = 10)]
        revoke_every: usize,
        /// Certificates, from the first issued on, to write request files for (each with
        /// and without a nonce).
        #[arg(long, default_value_t = 1000)]
        requests: usize,
        /// Issuing tasks at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// SCEP enrollments per second through /scep on loopback, from pre-made PKCSReqs.
    Scep {
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres",
            hide_env_values = true
        )]
        database_url: String,
        /// Enrollments at each concurrency (each with its own challenge and message).
        #[arg(long, default_value_t = 400)]
        enrollments: usize,
        /// Concurrent clients, one measurement each.
        #[arg(long, value_delimiter = ',', default_value = "1,16")]
        concurrency: Vec<usize>,
        /// RSA-2048 device keys the messages rotate through (each message has its own CSR).
        #[arg(long, default_value_t = 16)]
        device_keys: usize,
        /// Another SCEP server's URL (e.g. micromdm's scepserver: http://127.0.0.1:PORT/scep)
        /// to measure beside KeyInfra with the same kind of messages.
        #[arg(long, requires = "peer_challenge")]
        peer_url: Option<String>,
        /// The challenge password the peer enforces.
        #[arg(long)]
        peer_challenge: Option<String>,
    },
    /// ACME orders, newOrder to download, against REST issuance from CSRs.
    Acme {
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres",
            hide_env_values = true
        )]
        database_url: String,
        /// Orders (and REST certificates) at each concurrency.
        #[arg(long, default_value_t = 500)]
        orders: usize,
        /// Concurrent ACME clients (accounts, each with its keep-alive TLS connection).
        #[arg(long, value_delimiter = ',', default_value = "1,16")]
        concurrency: Vec<usize>,
        /// A peer ACME server's directory URL (pebble), timed with the same client.
        #[arg(long, requires = "peer_ca")]
        peer_url: Option<String>,
        /// The PEM file of the certificate the peer's TLS listener presents.
        #[arg(long)]
        peer_ca: Option<String>,
        /// The port of the http-01 responder on 127.0.0.2 (0: any; a peer must be told it).
        #[arg(long, default_value_t = 0)]
        responder_port: u16,
    },
    /// EST simpleenroll over keep-alive TLS against REST issuance from CSRs.
    Est {
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres",
            hide_env_values = true
        )]
        database_url: String,
        /// Certificates per path at each concurrency (each EST one with its own challenge).
        #[arg(long, default_value_t = 1000)]
        enrollments: usize,
        /// Concurrent clients (keep-alive TLS connections), one measurement each.
        #[arg(long, value_delimiter = ',', default_value = "1,16")]
        concurrency: Vec<usize>,
    },
    /// `backup create`, `verify` and `restore` over certificates with sealed keys.
    Backup {
        #[arg(
            long,
            env = "DATABASE_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres",
            hide_env_values = true
        )]
        database_url: String,
        /// Certificates (each with its own key row) to load.
        #[arg(long, default_value_t = 100_000)]
        certificates: i64,
    },
}

#[allow(clippy::print_stdout)] // Printing the figures is this program's purpose.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (database_url, rows, users, months_back, months_ahead, samples, reuse) = match Cli::parse()
        .command
    {
        Bench::Partitions {
            database_url,
            rows,
            months_back,
            months_ahead,
        } => {
            let config = BenchConfig {
                server_url: database_url,
                rows,
                users: 10_000,
                months_back,
                months_ahead,
                samples: 0,
                reuse: false,
                with_keys: true,
            };
            let log = |m: &str| eprintln!("keyinfra-bench: {m}");
            let r =
                bench::partition_maintenance(&config, 24, time::Duration::days(730), &log).await?;
            println!("## Partition maintenance\n");
            println!(
                "Loaded: {} certificates with {} keys, expiring from {months_back} months ago to {months_ahead} ahead, in {} partitions.\n",
                r.certificates_before, r.keys_before, r.partitions_before
            );
            println!("| step | seconds | partitions | certificates | keys |");
            println!("|---|---:|---:|---:|---:|");
            println!(
                "| create 24 months ahead | {:.3} | {} created | - | - |",
                r.ensure_seconds, r.partitions_created
            );
            println!(
                "| drop past 730-day retention | {:.3} | {} dropped | {} | {} |",
                r.drop_seconds, r.partitions_dropped, r.certificates_dropped, r.keys_dropped
            );
            println!("\nPartitions after: {}", r.partitions_after);
            return Ok(());
        }
        Bench::Scep {
            database_url,
            enrollments,
            concurrency,
            device_keys,
            peer_url,
            peer_challenge,
        } => {
            return scep::run(&scep::ScepConfig {
                server_url: database_url,
                enrollments,
                concurrency,
                device_keys,
                peer: peer_url.zip(peer_challenge),
            })
            .await;
        }
        Bench::Acme {
            database_url,
            orders,
            concurrency,
            peer_url,
            peer_ca,
            responder_port,
        } => {
            return acme::run(&acme::AcmeConfig {
                server_url: database_url,
                peer: peer_url.zip(peer_ca),
                responder_port,
                orders,
                concurrency,
            })
            .await;
        }
        Bench::Est {
            database_url,
            enrollments,
            concurrency,
        } => {
            return est::run(&est::EstConfig {
                server_url: database_url,
                enrollments,
                concurrency,
            })
            .await;
        }
        Bench::Crl {
            database_url,
            sizes,
            revocations,
        } => {
            return crl::run(&crl::CrlConfig {
                server_url: database_url,
                sizes,
                revocations,
            })
            .await;
        }
        Bench::OcspRequests {
            database_url,
            master_keys_file,
            responder_public_key,
            out,
            certificates,
            revoke_every,
            requests,
            concurrency,
        } => {
            return ocsp::run(&ocsp::OcspConfig {
                database_url,
                master_keys_file,
                responder_public_key,
                out,
                certificates,
                revoke_every,
                requests,
                concurrency,
            })
            .await;
        }
        Bench::Backup {
            database_url,
            certificates,
        } => {
            return backup::run(&backup::BackupConfig {
                server_url: database_url,
                certificates,
            })
            .await;
        }
        Bench::Schema {
            database_url,
            rows,
            users,
            months_back,
            months_ahead,
            samples,
            reuse,
        } => (
            database_url,
            rows,
            users,
            months_back,
            months_ahead,
            samples,
            reuse,
        ),
    };
    let config = BenchConfig {
        server_url: database_url,
        rows,
        users,
        months_back,
        months_ahead,
        samples,
        reuse,
        with_keys: false,
    };
    let started = std::time::Instant::now();
    let log = move |line: &str| println!("[{:>7.1}s] {line}", started.elapsed().as_secs_f64());
    let report = bench::run(&config, &log).await?;

    println!();
    println!("## Schema benchmark");
    println!();
    println!("- machine: {} cores, {}", cores(), memory());
    println!("- PostgreSQL {}", report.server_version);
    println!(
        "- {} certificates in {} partitions of `certificates` (incl. default)",
        report.rows, report.partitions
    );
    if report.load_seconds > 0.0 {
        println!(
            "- load time: {:.1} s ({:.0} rows/s)",
            report.load_seconds,
            report.rows as f64 / report.load_seconds
        );
    }
    println!();
    println!("| query | samples | rows/call | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for l in &report.latencies {
        println!(
            "| {} | {} | {:.1} | {:.3} | {:.3} | {:.3} |",
            l.name, l.samples, l.rows_per_call, l.p50_ms, l.p99_ms, l.max_ms
        );
    }
    println!();
    let refresh: Vec<String> = report
        .refresh_ms
        .iter()
        .map(|ms| format!("{:.0} ms", ms))
        .collect();
    println!(
        "REFRESH MATERIALIZED VIEW CONCURRENTLY certificate_stats: {}",
        refresh.join(", ")
    );
    for (name, plan) in &report.explains {
        println!();
        println!("### EXPLAIN ANALYZE: {name}");
        println!();
        println!("{}", pruning_summary(plan, report.partitions));
        println!();
        println!("```");
        println!("{plan}");
        println!("```");
    }
    Ok(())
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0)
}

fn memory() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{:.0} GiB RAM", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown RAM".to_owned())
}

/// "Partitions read: N of M" from an EXPLAIN ANALYZE text: scan nodes on a partition that
/// ran, against every partition of the table (the others were pruned at plan time, pruned
/// at executor start, "Subplans Removed", or never executed).
fn pruning_summary(plan: &str, partitions: i64) -> String {
    let scans = plan.lines().filter(|l| {
        (l.contains(" on certificates_p") || l.contains(" on certificates_default"))
            && l.contains("Scan")
    });
    let (mut ran, mut never) = (0, 0);
    for line in scans {
        if line.contains("never executed") {
            never += 1;
        } else {
            ran += 1;
        }
    }
    let removed: i64 = plan
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Subplans Removed: "))
        .filter_map(|n| n.trim().parse::<i64>().ok())
        .sum();
    format!(
        "Partitions read: **{ran} of {partitions}** ({never} planned but never executed, {removed} removed by run-time pruning, {} pruned at plan time)",
        (partitions - ran - never - removed).max(0)
    )
}
