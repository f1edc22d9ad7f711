//! What a PKCS#12 export costs at a given PBKDF2 iteration count: builds a modern file (an
//! ECDSA P-256 key and its certificate) with `keyinfra_pki::pkcs12`, as the server does,
//! RUNS times per count, prints the median, and writes `modern-<count>.p12` (and
//! `legacy-10000.p12`) into OUT_DIR for `scripts/bench-pkcs12` to time importing them.
//!
//!     cargo run --release -p keyinfra-pki --example pkcs12-bench -- OUT_DIR PIN COUNT...
//!
//! Not a test: it prints figures (docs/benchmarks.md, "PKCS#12 iterations").

use std::time::{Duration, Instant};

use keyinfra_pki::SerialNumber;
use keyinfra_pki::ca::{CaSigner, CaSpec};
use keyinfra_pki::names::DistinguishedName;
use keyinfra_pki::pkcs12::{Pin, Pkcs12Compat, build_pkcs12_for_benchmark};
use keyinfra_pki::{KeyAlgorithm, PrivateKey};

const RUNS: usize = 5;

#[allow(clippy::print_stdout)] // Printing the figures is this program's purpose.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: pkcs12-bench OUT_DIR PIN COUNT...";
    let out = std::path::PathBuf::from(args.next().ok_or(usage)?);
    let pin_text = args.next().ok_or(usage)?;
    let counts = args
        .map(|a| a.parse::<u32>())
        .collect::<Result<Vec<_>, _>>()?;
    if counts.is_empty() {
        return Err(usage.into());
    }
    // A self-signed certificate stands in for the leaf: the file's cost is the KDF's.
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)?;
    let subject = DistinguishedName::parse("CN=pkcs12-bench")?;
    let now = time::OffsetDateTime::from_unix_timestamp(1_767_225_600)?;
    let signer = CaSigner::create_root(
        key,
        &CaSpec {
            subject: &subject,
            serial: &SerialNumber::from_bytes(&[1; 16])?,
            not_before: now,
            not_after: now + time::Duration::days(365),
            path_len: None,
            name_constraints: None,
        },
    )?;
    let leaf = signer.certificate_der().to_vec();
    let mut jobs: Vec<(Pkcs12Compat, u32)> =
        counts.iter().map(|c| (Pkcs12Compat::Modern, *c)).collect();
    jobs.push((Pkcs12Compat::Legacy, 10_000));
    println!("export (build the file: 2 PBKDF2 runs and the MAC's KDF), median of {RUNS}:");
    for (compat, count) in jobs {
        let pin = Pin::new(pin_text.clone(), compat)?;
        let mut times = Vec::with_capacity(RUNS);
        let mut file = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            file = build_pkcs12_for_benchmark(signer.key(), &leaf, &pin, compat, count)?;
            times.push(started.elapsed());
        }
        times.sort();
        let median: Duration = times[RUNS / 2];
        println!(
            "  {:<6} {count:>9} iterations  {:>8.1} ms",
            compat.label(),
            median.as_secs_f64() * 1000.0
        );
        std::fs::write(out.join(format!("{}-{count}.p12", compat.label())), &file)?;
    }
    Ok(())
}
