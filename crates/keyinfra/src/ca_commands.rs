//! `init`, `ca`, `cert` and `keys`: the operator's side of the certificate authority. Each
//! calls the same use cases as the API (keyinfra_core::issuer, ::renewal, ::revocation, ...),
//! as `Principal::Operator`.

use std::io::{BufRead, IsTerminal};
use std::sync::Arc;

use anyhow::Context;
use keyinfra_core::authority::{Authority, AuthoritySettings};
use keyinfra_core::ca_setup::InitOptions;
use keyinfra_core::issuer::{IssueRequest, KeySource};
use keyinfra_core::issuing_ca::IssuingCaOptions;
use keyinfra_core::renewal::RenewRequest;
use keyinfra_core::revocation::parse_reason;
use keyinfra_core::{OsRandom, Principal, SystemClock};
use keyinfra_db::certificates::{CertificateFilter, CertificateRecord};
use keyinfra_db::{Actor, CertificateStatus, Database};
use keyinfra_pki::KeyAlgorithm;
use keyinfra_pki::constraints::NameConstraints;
use keyinfra_pki::pkcs12::Pin;
use keyinfra_pki::seal::MasterKeys;

use crate::cli::{
    AuthorityArgs, CaCommand, CertCommand, DatabaseArgs, InitArgs, KeysCommand, NameConstraintArgs,
};
use crate::secrets;

#[allow(clippy::print_stdout)] // A command's output is its result.
pub(crate) fn out(line: String) {
    println!("{line}");
}

/// KEYINFRA_PUBLIC_URL when unset, except in `serve` (see crate::listen).
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

/// The CA service from the settings, for commands that act as the operator (who may get
/// any name, so none is reserved).
pub fn authority(database: &DatabaseArgs, args: &AuthorityArgs) -> anyhow::Result<Authority> {
    let (settings, masters) = authority_settings(database, args)?;
    Ok(Authority::new(settings, masters, Arc::new(SystemClock)))
}

/// The CA settings and the master keys, checked (`serve` hands them to `App::build`, with
/// its own names reserved).
pub fn authority_settings(
    database: &DatabaseArgs,
    args: &AuthorityArgs,
) -> anyhow::Result<(AuthoritySettings, MasterKeys)> {
    let masters = secrets::load_master_keys(args.master_keys_file.as_deref(), &database.data_dir)?;
    let url = args
        .public_url
        .as_deref()
        .unwrap_or(DEFAULT_PUBLIC_URL)
        .trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://"))
        || url.contains(char::is_whitespace)
    {
        anyhow::bail!(
            "KEYINFRA_PUBLIC_URL (--public-url) must be an http:// or https:// URL, not {url:?}"
        );
    }
    let mut settings = AuthoritySettings::new(url);
    settings.profiles = keyinfra_pki::profile::builtin_profiles(args.max_validity_days);
    settings.quota = (args.cert_quota > 0).then_some(args.cert_quota);
    settings.write_rate = (args.issue_rate > 0).then_some(keyinfra_core::rate::WriteRate {
        per_minute: args.issue_rate,
        admins_too: args.issue_rate_admins,
    });
    let to_time = |d: std::time::Duration, name: &str| {
        time::Duration::try_from(d)
            .ok()
            .filter(|d| *d >= time::Duration::minutes(1))
            .with_context(|| format!("{name} must be at least one minute"))
    };
    settings.crl_validity = to_time(args.crl_validity, "KEYINFRA_CRL_VALIDITY (--crl-validity)")?;
    settings.crl_republish_after = to_time(
        args.crl_republish_after,
        "KEYINFRA_CRL_REPUBLISH_AFTER (--crl-republish-after)",
    )?;
    settings.crl_full_min_interval = time::Duration::try_from(args.crl_full_min_interval)
        .context("KEYINFRA_CRL_FULL_MIN_INTERVAL (--crl-full-min-interval) is too long")?;
    if settings.crl_full_min_interval >= settings.crl_republish_after {
        anyhow::bail!(
            "KEYINFRA_CRL_FULL_MIN_INTERVAL must be shorter than KEYINFRA_CRL_REPUBLISH_AFTER: the complete CRL is re-issued at least that often anyway"
        );
    }
    settings.ocsp_validity = to_time(
        args.ocsp_validity,
        "KEYINFRA_OCSP_VALIDITY (--ocsp-validity)",
    )?;
    if settings.ocsp_validity > time::Duration::days(7) {
        anyhow::bail!(
            "KEYINFRA_OCSP_VALIDITY (--ocsp-validity) must be at most 7 days: clients may trust an answer that long after a revocation"
        );
    }
    settings.ocsp_cache_entries = usize::try_from(args.ocsp_cache_entries).unwrap_or(usize::MAX);
    settings.ocsp_in_certificates = args.ocsp_in_certificates;
    settings.est_channel_binding_required = args.est_channel_binding == "required";
    if settings.crl_republish_after >= settings.crl_validity {
        anyhow::bail!(
            "KEYINFRA_CRL_REPUBLISH_AFTER must be shorter than KEYINFRA_CRL_VALIDITY, so that a new CRL exists before the old one runs out"
        );
    }
    Ok((settings, masters))
}

pub fn init_options(args: &InitArgs) -> anyhow::Result<InitOptions> {
    let algorithm = KeyAlgorithm::from_label(&args.algorithm).with_context(|| {
        format!(
            "KEYINFRA_CA_ALGORITHM (--algorithm) {:?} is not one of {}",
            args.algorithm,
            KeyAlgorithm::labels()
        )
    })?;
    let name_constraints = name_constraints(&NameConstraintArgs {
        permitted_dns: args.permitted_dns.clone(),
        excluded_dns: args.excluded_dns.clone(),
        permitted_ip: args.permitted_ip.clone(),
        excluded_ip: args.excluded_ip.clone(),
    })?;
    Ok(InitOptions {
        root_subject: args.root_subject.clone(),
        root_algorithm: algorithm,
        intermediate_subject: args.intermediate.clone(),
        name_constraints,
        ..InitOptions::default()
    })
}

/// The constraint flags, each value checked (None when no flag is given). A bad value is
/// an error naming its flag, before anything is written.
fn name_constraints(args: &NameConstraintArgs) -> anyhow::Result<Option<NameConstraints>> {
    let dns = |flag: &str, values: &[String]| {
        values
            .iter()
            .map(|v| NameConstraints::parse_dns_subtree(v).with_context(|| format!("--{flag}")))
            .collect::<anyhow::Result<Vec<_>>>()
    };
    let ip = |flag: &str, values: &[String]| {
        values
            .iter()
            .map(|v| NameConstraints::parse_ip_subtree(v).with_context(|| format!("--{flag}")))
            .collect::<anyhow::Result<Vec<_>>>()
    };
    let constraints = NameConstraints {
        permitted_dns: dns("permitted-dns", &args.permitted_dns)?,
        excluded_dns: dns("excluded-dns", &args.excluded_dns)?,
        permitted_ip: ip("permitted-ip", &args.permitted_ip)?,
        excluded_ip: ip("excluded-ip", &args.excluded_ip)?,
        unsupported: Vec::new(),
    };
    Ok((!constraints.is_empty()).then_some(constraints))
}

pub async fn init(db: &Database, authority: &Authority, args: &InitArgs) -> anyhow::Result<()> {
    let options = init_options(args)?;
    let created = authority.ca_setup.init(db, &options, &mut OsRandom).await?;
    for ca in created {
        out(format!(
            "created CA {} {:?}: {}",
            ca.id, ca.name, ca.subject_dn
        ));
    }
    Ok(())
}

pub async fn ca(db: &Database, authority: &Authority, command: CaCommand) -> anyhow::Result<()> {
    match command {
        CaCommand::List => {
            for ca in authority.cas.list_cas(db).await? {
                let key = if ca.private_key_id.is_some() {
                    "signs"
                } else {
                    "offline"
                };
                out(format!(
                    "{}  {:<8} {:<16} until {}  {}",
                    ca.id,
                    key,
                    ca.name,
                    ca.not_after.date(),
                    ca.subject_dn
                ));
                // The CA's label in EST URLs (/.well-known/est/{label}/...).
                out(format!("    short name: {}", ca.short_name));
                if let Ok(Some(c)) = NameConstraints::from_certificate(&ca.certificate_der) {
                    out(format!("    name constraints: {c}"));
                }
            }
        }
        CaCommand::Create {
            parent,
            subject,
            name,
            algorithm,
            validity_days,
            starts_at,
            constraints,
        } => {
            let algorithm = match algorithm {
                Some(label) => Some(KeyAlgorithm::from_label(&label).with_context(|| {
                    format!(
                        "--algorithm {label:?} is not one of {}",
                        KeyAlgorithm::labels()
                    )
                })?),
                None => None,
            };
            let name_constraints = name_constraints(&constraints)?;
            let name = match name {
                Some(name) => name,
                None => keyinfra_pki::names::DistinguishedName::parse(&subject)
                    .context("--subject")?
                    .common_name()
                    .map(str::to_owned)
                    .context("the subject has no CN to name the CA by; give --name")?,
            };
            let options = IssuingCaOptions {
                name,
                subject,
                algorithm,
                validity: validity_days.map(|d| time::Duration::days(i64::from(d))),
                name_constraints,
                starts_at,
            };
            let ca = authority
                .ca_setup
                .create_issuing_ca(db, &Principal::Operator, parent, &options, &mut OsRandom)
                .await?;
            out(format!(
                "created CA {} {:?}: {}",
                ca.id, ca.name, ca.subject_dn
            ));
        }
        CaCommand::Import { cert, key, name } => {
            let certificate = std::fs::read(&cert)
                .with_context(|| format!("cannot read --cert {}", cert.display()))?;
            let key_pem = match &key {
                Some(path) => Some(zeroize::Zeroizing::new(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read --key {}", path.display()))?,
                )),
                None => None,
            };
            let ca = authority
                .ca_setup
                .import(
                    db,
                    &name,
                    &certificate,
                    key_pem.as_deref().map(String::as_str),
                    &mut OsRandom,
                )
                .await?;
            out(format!(
                "imported CA {} {:?}: {}",
                ca.id, ca.name, ca.subject_dn
            ));
        }
    }
    Ok(())
}

fn describe(c: &CertificateRecord) -> String {
    format!(
        "{}  {:<10} v{}  serial {}  until {}  {}",
        c.id,
        c.status.as_str(),
        c.version,
        c.serial_number,
        c.not_after.date(),
        c.subject_dn
    )
}

async fn owner_id(db: &Database, username: &str) -> anyhow::Result<uuid::Uuid> {
    let mut tx = db.begin(&Actor::System).await?;
    let found = keyinfra_db::users::id_by_username(&mut tx, username).await?;
    tx.commit().await?;
    found.with_context(|| format!("no user is named {username:?} (--owner)"))
}

pub async fn cert(
    db: &Database,
    authority: &Authority,
    command: CertCommand,
) -> anyhow::Result<()> {
    let operator = Principal::Operator;
    match command {
        CertCommand::Issue {
            subject,
            san,
            algorithm,
            csr,
            profile,
            validity_days,
            owner,
        } => {
            let key = match (csr, algorithm) {
                (Some(path), _) => KeySource::Csr(
                    std::fs::read(&path)
                        .with_context(|| format!("cannot read --csr {}", path.display()))?,
                ),
                (None, Some(label)) => KeySource::Generate(
                    KeyAlgorithm::from_label(&label)
                        .with_context(|| format!("unknown --algorithm {label:?}"))?,
                ),
                (None, None) => KeySource::Generate(KeyAlgorithm::EcdsaP256),
            };
            let owner_id = match owner {
                Some(name) => Some(owner_id(db, &name).await?),
                None => None,
            };
            let request = IssueRequest {
                key,
                subject,
                san: (!san.is_empty()).then_some(san),
                profile,
                validity_days,
                owner_id,
                ca_id: None,
                policy_id: None,
            };
            let c = authority
                .issuer
                .issue(db, &operator, request, &mut OsRandom)
                .await?;
            out(format!("issued {}", describe(&c)));
        }
        CertCommand::List { status, limit } => {
            let status = match status.as_deref() {
                None => None,
                Some(label) => Some(CertificateStatus::from_label(label).with_context(|| {
                    format!("--status {label:?} is not ACTIVE, SUPERSEDED, REVOKED or EXPIRED")
                })?),
            };
            let filter = CertificateFilter {
                status,
                ..CertificateFilter::default()
            };
            for c in authority
                .queries
                .list(db, &operator, filter, limit.clamp(1, 10_000))
                .await?
            {
                out(describe(&c));
            }
        }
        CertCommand::Show { id, pem } => {
            if pem {
                #[allow(clippy::print_stdout)]
                {
                    print!("{}", authority.exports.pem_chain(db, &operator, id).await?);
                }
            } else {
                let c = authority.queries.get(db, &operator, id).await?;
                out(describe(&c));
                out(format!("  SANs: {}", c.subject_alt_names.join(", ")));
                out(format!(
                    "  profile {}, has private key: {}, channel {}",
                    c.profile,
                    c.private_key_id.is_some(),
                    c.channel
                ));
            }
        }
        CertCommand::Revoke { id, reason } => {
            let reason = parse_reason(&reason)?;
            let c = authority
                .revocations
                .revoke(db, &operator, id, reason, None)
                .await?;
            let crl = authority.crls.publish_crl(db, c.ca_id).await?;
            out(format!("revoked {}", describe(&c)));
            out(format!("published CRL number {}", crl.crl_number));
        }
        CertCommand::Renew {
            id,
            validity_days,
            rekey,
            revoke_previous,
        } => {
            let request = RenewRequest {
                validity_days,
                rekey,
                revoke_previous,
            };
            let c = authority
                .renewals
                .renew(db, &operator, id, request, &mut OsRandom)
                .await?;
            if revoke_previous {
                authority.crls.publish_crl(db, c.ca_id).await?;
            }
            out(format!("renewed as {}", describe(&c)));
        }
        CertCommand::Export {
            id,
            out: path,
            compat,
        } => {
            let pin =
                Pin::new(read_pin()?.to_string(), compat).map_err(|e| anyhow::anyhow!("{e}"))?;
            let bytes = authority
                .exports
                .export_pkcs12(db, &operator, id, pin, compat)
                .await?;
            write_private_file(&path, &bytes)?;
            out(format!("wrote {}", path.display()));
        }
    }
    Ok(())
}

fn read_pin() -> anyhow::Result<zeroize::Zeroizing<String>> {
    if std::io::stdin().is_terminal() {
        return Ok(zeroize::Zeroizing::new(
            rpassword::prompt_password("PIN: ").context("cannot read the PIN")?,
        ));
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the PIN from standard input")?;
    Ok(zeroize::Zeroizing::new(
        line.trim_end_matches(['\n', '\r']).to_owned(),
    ))
}

fn write_private_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

pub async fn keys(
    db: &Database,
    authority: &Authority,
    command: KeysCommand,
) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate { batch } => {
            let (newest, pending) = authority.key_rotation.keys_to_rotate(db).await?;
            out(format!(
                "{pending} keys to re-seal under master key version {newest}"
            ));
            let bar = indicatif::ProgressBar::new(pending);
            if !std::io::stderr().is_terminal() {
                bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} keys ({eta} left)")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let done = authority
                .key_rotation
                .rotate_keys(db, batch.clamp(1, 10_000), &mut OsRandom, |p| {
                    bar.set_length(p.total);
                    bar.set_position(p.done);
                })
                .await?;
            bar.finish_and_clear();
            out(format!(
                "re-sealed {} keys; every key is now under version {newest}",
                done.done
            ));
        }
    }
    Ok(())
}
