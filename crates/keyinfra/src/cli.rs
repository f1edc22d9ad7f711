//! Command-line and environment settings. Every setting has a flag and an environment
//! variable; README.md's configuration reference lists them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "keyinfra",
    version,
    about = "A certificate authority for network devices"
)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseArgs,

    #[command(flatten)]
    pub secrets: SecretArgs,

    #[command(flatten)]
    pub authority: AuthorityArgs,

    /// Log filter (tracing's EnvFilter syntax), e.g. `info` or `keyinfra=debug,info`.
    #[arg(
        long,
        env = "KEYINFRA_LOG",
        default_value = "info,sqlx=warn",
        global = true
    )]
    pub log: String,

    /// Log format: `text` (human-readable) or `json` (one object per line).
    #[arg(long, env = "KEYINFRA_LOG_FORMAT", default_value = "text", global = true,
          value_parser = ["text", "json"])]
    pub log_format: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL. Unset: KeyInfra runs its own cluster in the data directory.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Where KeyInfra keeps its state (the embedded PostgreSQL cluster, later its secrets).
    #[arg(
        long,
        env = "KEYINFRA_DATA_DIR",
        default_value = "./keyinfra-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Directory with PostgreSQL's `initdb` and `postgres` (default: `pg_config --bindir`,
    /// then /usr/lib/postgresql/*/bin, then PATH).
    #[arg(long, env = "KEYINFRA_PG_BINDIR", global = true)]
    pub pg_bindir: Option<PathBuf>,

    /// OS account that runs the embedded PostgreSQL when keyinfra runs as root.
    #[arg(
        long,
        env = "KEYINFRA_PG_OS_USER",
        default_value = "postgres",
        global = true
    )]
    pub pg_os_user: String,

    /// Connections kept open.
    #[arg(long, env = "KEYINFRA_DB_POOL_MIN", default_value_t = 5, global = true)]
    pub db_pool_min: u32,

    /// Most connections open at once.
    #[arg(
        long,
        env = "KEYINFRA_DB_POOL_MAX",
        default_value_t = 20,
        global = true
    )]
    pub db_pool_max: u32,

    /// How long a request waits for a connection before it gets 503 (e.g. `5s`, `500ms`).
    #[arg(long, env = "KEYINFRA_DB_ACQUIRE_TIMEOUT", default_value = "5s",
          value_parser = humantime::parse_duration, global = true)]
    pub db_acquire_timeout: Duration,

    /// Longest a single SQL statement may run (PostgreSQL's statement_timeout).
    #[arg(long, env = "KEYINFRA_DB_STATEMENT_TIMEOUT", default_value = "30s",
          value_parser = humantime::parse_duration, global = true)]
    pub db_statement_timeout: Duration,

    /// SQL statements slower than this are logged (WARN, with their duration).
    #[arg(long, env = "KEYINFRA_SLOW_QUERY", default_value = "500ms",
          value_parser = humantime::parse_duration, global = true)]
    pub slow_query: Duration,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (applies pending migrations first unless --no-migrate).
    Serve(Box<ServeArgs>),
    /// Apply, revert or list schema migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Manage users as an operator (acts directly on the database).
    #[command(subcommand)]
    User(UserCommand),
    /// Create the root CA (and optionally an issuing intermediate).
    Init(InitArgs),
    /// Certificate authorities: list, import, create.
    #[command(subcommand)]
    Ca(CaCommand),
    /// The certificate lifecycle, as an operator (the same use cases as the API).
    #[command(subcommand)]
    Cert(CertCommand),
    /// Issuance policies: which names, profiles, keys, validity and CAs users may get.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Private-key sealing: re-seal every key under the newest master key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Scheduled jobs: run one now, or list their last runs.
    #[command(subcommand)]
    Jobs(crate::operations::JobsCommand),
    /// Encrypted backups of the whole database; restoring one into an empty database.
    #[command(subcommand)]
    Backup(BackupCommand),
}

#[derive(Debug, Args)]
pub struct AuthorityArgs {
    /// Base URL devices reach this server at over plain HTTP; CRL and CA-certificate URLs
    /// inside every certificate are built from it. Default: `serve` uses the URL of its
    /// plain-HTTP listener; other commands use http://127.0.0.1:8080.
    #[arg(long, env = "KEYINFRA_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Most active certificates one user may own (0 = no limit).
    #[arg(long, env = "KEYINFRA_CERT_QUOTA", default_value_t = 10, global = true)]
    pub cert_quota: u32,

    /// Certificate writes (issues, renewals, revocations) one user may make a minute, on
    /// each replica (0 = no limit); more get 429 with Retry-After.
    #[arg(long, env = "KEYINFRA_ISSUE_RATE", default_value_t = 60, global = true)]
    pub issue_rate: u32,

    /// Apply KEYINFRA_ISSUE_RATE to ADMINs too (by default they are exempt; the operator's
    /// CLI always is).
    #[arg(long, env = "KEYINFRA_ISSUE_RATE_ADMINS", global = true)]
    pub issue_rate_admins: bool,

    /// Caps every profile's longest validity, in days.
    #[arg(long, env = "KEYINFRA_MAX_VALIDITY_DAYS", global = true,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub max_validity_days: Option<u32>,

    /// How long each CRL is valid (its nextUpdate - thisUpdate).
    #[arg(long, env = "KEYINFRA_CRL_VALIDITY", default_value = "7days",
          value_parser = humantime::parse_duration, global = true)]
    pub crl_validity: Duration,

    /// A CRL is re-issued once it is this old, even without revocations.
    #[arg(long, env = "KEYINFRA_CRL_REPUBLISH_AFTER", default_value = "1day",
          value_parser = humantime::parse_duration, global = true)]
    pub crl_republish_after: Duration,

    /// After revocations the delta CRL is always re-issued at once; the complete CRL only if
    /// its newest one is at least this old. 0 (the default) re-issues both, for devices that
    /// never read delta CRLs; e.g. `1h` keeps long complete CRLs from being rebuilt per
    /// revocation burst.
    #[arg(long, env = "KEYINFRA_CRL_FULL_MIN_INTERVAL", default_value = "0s",
          value_parser = humantime::parse_duration, global = true)]
    pub crl_full_min_interval: Duration,

    /// thisUpdate to nextUpdate of each OCSP answer (clients and proxies may cache it that
    /// long); cached answers are re-signed after half of it.
    #[arg(long, env = "KEYINFRA_OCSP_VALIDITY", default_value = "1h",
          value_parser = humantime::parse_duration, global = true)]
    pub ocsp_validity: Duration,

    /// Pre-signed OCSP answers kept in memory per replica (about 1 KB each).
    #[arg(long, env = "KEYINFRA_OCSP_CACHE_ENTRIES", default_value_t = 200_000, global = true,
          value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    pub ocsp_cache_entries: u64,

    /// Put the OCSP URL ({public URL}/ocsp) in new certificates' Authority Information
    /// Access. `false` for CAs whose clients must not try OCSP; the responder still answers.
    #[arg(long, env = "KEYINFRA_OCSP_IN_CERTIFICATES", default_value_t = true,
          action = clap::ArgAction::Set, global = true)]
    pub ocsp_in_certificates: bool,

    /// EST channel binding (RFC 7030 3.5, RFC 9266): `optional` checks a tls-exporter
    /// binding a CSR carries; `required` also refuses CSRs without one (TLS 1.3 clients
    /// that support it only; strongSwan and curl do not).
    #[arg(long, env = "KEYINFRA_EST_CHANNEL_BINDING", default_value = "optional", global = true,
          value_parser = ["optional", "required"])]
    pub est_channel_binding: String,

    /// File of master keys (`VERSION:HEX` lines) that seal private keys. Default:
    /// <data-dir>/secrets/master-keys, generated on first start. KEYINFRA_MASTER_KEYS may
    /// hold the same text instead.
    #[arg(long, env = "KEYINFRA_MASTER_KEYS_FILE", global = true)]
    pub master_keys_file: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct InitArgs {
    /// Subject of the root CA (RFC 4514).
    #[arg(
        long,
        env = "KEYINFRA_ROOT_SUBJECT",
        default_value = "CN=KeyInfra Root CA,O=KeyInfra"
    )]
    pub root_subject: String,
    /// Key algorithm of the CA(s).
    #[arg(long, env = "KEYINFRA_CA_ALGORITHM", default_value = "ecdsa-p384")]
    pub algorithm: String,
    /// Also create an issuing CA under the root with this subject; it then signs every
    /// certificate and the root's key can be kept for CA work only.
    #[arg(long, env = "KEYINFRA_INTERMEDIATE_SUBJECT")]
    pub intermediate: Option<String>,
    /// Name constraints (RFC 5280), written as a critical extension into the CA that signs
    /// certificates: the intermediate with --intermediate, else the root. A DNS subtree
    /// `example.net` holds that name and every name below it, `.example.net` only the
    /// names below. Repeat the flag for several (the environment variable takes a
    /// comma-separated list).
    #[arg(long, env = "KEYINFRA_PERMITTED_DNS", value_delimiter = ',', value_parser = dns_subtree)]
    pub permitted_dns: Vec<String>,
    /// DNS subtrees no certificate may name, even inside a permitted one (repeatable).
    #[arg(long, env = "KEYINFRA_EXCLUDED_DNS", value_delimiter = ',', value_parser = dns_subtree)]
    pub excluded_dns: Vec<String>,
    /// Address ranges (CIDR, IPv4 or IPv6) that IP SANs must lie in (repeatable).
    #[arg(long, env = "KEYINFRA_PERMITTED_IP", value_delimiter = ',', value_parser = ip_subtree)]
    pub permitted_ip: Vec<String>,
    /// Address ranges (CIDR) no IP SAN may lie in (repeatable).
    #[arg(long, env = "KEYINFRA_EXCLUDED_IP", value_delimiter = ',', value_parser = ip_subtree)]
    pub excluded_ip: Vec<String>,
}

/// The name-constraint flags of `ca create` (no environment fallbacks: a variable set for
/// `serve` must not constrain a CA made later by hand).
#[derive(Debug, Args, Clone)]
pub struct NameConstraintArgs {
    /// DNS subtree the CA's certificates must lie in: `example.net` (it and every name
    /// below) or `.example.net` (only the names below). Repeatable; commas also separate.
    #[arg(long, value_delimiter = ',', value_parser = dns_subtree)]
    pub permitted_dns: Vec<String>,
    /// DNS subtree no certificate may name, even inside a permitted one (repeatable).
    #[arg(long, value_delimiter = ',', value_parser = dns_subtree)]
    pub excluded_dns: Vec<String>,
    /// Address range (CIDR, IPv4 or IPv6) that IP SANs must lie in (repeatable).
    #[arg(long, value_delimiter = ',', value_parser = ip_subtree)]
    pub permitted_ip: Vec<String>,
    /// Address range (CIDR) no IP SAN may lie in (repeatable).
    #[arg(long, value_delimiter = ',', value_parser = ip_subtree)]
    pub excluded_ip: Vec<String>,
}

/// A DNS name constraint, checked (and put in normal form) while the arguments are parsed,
/// so that a bad one stops the command before it connects to anything.
fn dns_subtree(value: &str) -> Result<String, String> {
    keyinfra_pki::constraints::NameConstraints::parse_dns_subtree(value).map_err(|e| e.to_string())
}

/// An IP name constraint (CIDR), checked like [`dns_subtree`].
fn ip_subtree(value: &str) -> Result<String, String> {
    keyinfra_pki::constraints::NameConstraints::parse_ip_subtree(value)
        .map(|net| net.to_string())
        .map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// List the CAs.
    List,
    /// Adopt an existing CA: its certificate, and its PKCS#8 PEM key if KeyInfra is to sign
    /// with it (without --key it is recorded as an offline parent).
    Import {
        #[arg(long)]
        cert: PathBuf,
        #[arg(long)]
        key: Option<PathBuf>,
        #[arg(long)]
        name: String,
    },
    /// Create an issuing CA under a CA whose key KeyInfra holds; it then signs new
    /// certificates. Prints the new CA's id.
    Create {
        /// The id of the CA that signs it (see `ca list`).
        #[arg(long)]
        parent: uuid::Uuid,
        /// Its subject (RFC 4514), e.g. "CN=Site 1 Issuing CA,O=Example".
        #[arg(long)]
        subject: String,
        /// Its name in KeyInfra (default: the subject's CN).
        #[arg(long)]
        name: Option<String>,
        /// Key algorithm (default: the parent's).
        #[arg(long)]
        algorithm: Option<String>,
        /// Days it is valid (default: 10 years, or until the parent expires if sooner); it
        /// may not outlive its parent.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        validity_days: Option<u32>,
        /// Prepares a rollover: the CA's validity starts at this time (RFC 3339, e.g.
        /// 2027-01-01T00:00:00Z), and it becomes the default issuing CA only then. SCEP
        /// devices learn of it beforehand with GetNextCACert. Default: now.
        #[arg(long, value_parser = parse_rfc3339)]
        starts_at: Option<time::OffsetDateTime>,
        #[command(flatten)]
        constraints: NameConstraintArgs,
    },
}

fn parse_rfc3339(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time such as 2027-01-01T00:00:00Z ({e})"))
}

/// A policy file: YAML or JSON (any subset of the policy's fields), `-` for stdin.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// List the policies.
    List,
    /// Show one policy (by name or id) as JSON.
    Show { policy: String },
    /// Create a policy from a file; omitted fields take the default policy's values.
    Create {
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Change a policy (by name or id) with the fields a file gives.
    Update {
        policy: String,
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Delete a policy no user holds.
    Delete { policy: String },
    /// Move a user (by name) to a policy (by name or id).
    Assign { username: String, policy: String },
}

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Issue a certificate: a key made here (--algorithm) or the device's CSR (--csr FILE).
    Issue {
        #[arg(long)]
        subject: Option<String>,
        /// A DNS name or IP address (repeatable).
        #[arg(long)]
        san: Vec<String>,
        #[arg(long, conflicts_with = "csr")]
        algorithm: Option<String>,
        #[arg(long)]
        csr: Option<PathBuf>,
        #[arg(long, default_value = "device")]
        profile: String,
        #[arg(long)]
        validity_days: Option<u32>,
        /// Owner's username.
        #[arg(long)]
        owner: Option<String>,
    },
    /// List certificates, soonest expiry first.
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show one certificate (and write its PEM chain with --pem).
    Show {
        id: uuid::Uuid,
        #[arg(long)]
        pem: bool,
    },
    /// Revoke a certificate and publish the CRL.
    Revoke {
        id: uuid::Uuid,
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
    /// Renew a certificate.
    Renew {
        id: uuid::Uuid,
        #[arg(long)]
        validity_days: Option<u32>,
        #[arg(long)]
        rekey: bool,
        #[arg(long)]
        revoke_previous: bool,
    },
    /// Write a PKCS#12 file; the PIN is read from standard input (or prompted for).
    Export {
        id: uuid::Uuid,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "modern")]
        compat: keyinfra_pki::pkcs12::Pkcs12Compat,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-seal every private key under the newest master key (batched, resumable).
    Rotate {
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Write a consistent, encrypted backup of every table to FILE (mode 0600).
    Create {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Restore a backup into an empty database: the whole file is decrypted and checked
    /// first, then every table is loaded in one transaction.
    Restore {
        file: PathBuf,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Decrypt and check a whole backup without touching any database.
    Verify {
        file: PathBuf,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
}

#[derive(Debug, Args)]
pub struct PassphraseArgs {
    /// File holding the backup passphrase (at least 12 characters; a final newline is
    /// ignored). KEYINFRA_BACKUP_PASSPHRASE may hold the passphrase itself; on a terminal
    /// it is prompted for. Keep it apart from the master keys.
    #[arg(long, env = "KEYINFRA_BACKUP_PASSPHRASE_FILE")]
    pub passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SecretArgs {
    /// File holding the password pepper (>= 32 bytes). Default: <data-dir>/secrets/pepper,
    /// generated on first start. Every replica must use the same pepper.
    #[arg(long, env = "KEYINFRA_PEPPER_FILE", global = true)]
    pub pepper_file: Option<PathBuf>,

    /// File holding the JWT signing secret (>= 32 bytes). Default:
    /// <data-dir>/secrets/jwt-secret, generated on first start. Shared by all replicas.
    #[arg(long, env = "KEYINFRA_JWT_SECRET_FILE", global = true)]
    pub jwt_secret_file: Option<PathBuf>,

    /// Access-token lifetime (e.g. `15m`).
    #[arg(long, env = "KEYINFRA_TOKEN_LIFETIME", default_value = "15m",
          value_parser = humantime::parse_duration, global = true)]
    pub token_lifetime: Duration,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input (or prompted for on a terminal).
    Add {
        #[arg(long)]
        username: String,
        #[arg(long, value_enum, default_value = "user")]
        role: RoleArg,
        /// Where the user's expiry alerts go.
        #[arg(long)]
        email: Option<String>,
    },
    /// List users.
    List,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum RoleArg {
    #[value(alias = "admin")]
    Admin,
    #[value(alias = "user")]
    User,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where and how to listen: address, TLS, the plain-HTTP listener, shutdown deadline.
    #[command(flatten)]
    pub net: ListenArgs,

    /// ACME (on the TLS listener, /acme/directory): every new account must carry an
    /// external account binding from `POST /api/v1/acme/eab`, which makes it that user's.
    /// `false` lets accounts register without one, owned by KEYINFRA_ACME_DEFAULT_OWNER.
    #[arg(long, env = "KEYINFRA_ACME_EAB_REQUIRED", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub acme_eab_required: bool,

    /// ACME: the username that owns accounts registered without a binding (only with
    /// KEYINFRA_ACME_EAB_REQUIRED=false); its policy and quota apply to what they order.
    #[arg(long, env = "KEYINFRA_ACME_DEFAULT_OWNER")]
    pub acme_default_owner: Option<String>,

    /// ACME: a terms-of-service URL for the directory's meta; clients must then agree to
    /// it to register.
    #[arg(long, env = "KEYINFRA_ACME_TERMS_OF_SERVICE")]
    pub acme_terms_of_service: Option<String>,

    /// ACME: the names this CA goes by in CAA records (comma-separated, such as
    /// ca.example.net), listed in the directory's meta.caaIdentities. KeyInfra does not look
    /// up CAA records itself.
    #[arg(long, env = "KEYINFRA_ACME_CAA_IDENTITIES", value_delimiter = ',')]
    pub acme_caa_identities: Vec<String>,

    /// ACME http-01: the port the validator fetches
    /// http://NAME:PORT/.well-known/acme-challenge/TOKEN from (RFC 8555 says 80; another
    /// port is for tests and networks that map it).
    #[arg(long, env = "KEYINFRA_ACME_HTTP01_PORT", default_value_t = 80)]
    pub acme_http01_port: u16,

    /// ACME tls-alpn-01: the port the validator connects to (RFC 8737 says 443).
    #[arg(long, env = "KEYINFRA_ACME_TLSALPN01_PORT", default_value_t = 443)]
    pub acme_tlsalpn01_port: u16,

    /// ACME validation never connects to these networks (comma-separated CIDRs, such as
    /// 10.0.0.0/8,169.254.0.0/16,::1/128). Empty by default: the validator connects
    /// wherever an identifier resolves, so any ACME account can make this server open
    /// connections inside its network. List what it must not reach (see docs/security.md).
    #[arg(long, env = "KEYINFRA_ACME_VALIDATION_DENY", value_delimiter = ',')]
    pub acme_validation_deny: Vec<ipnet::IpNet>,

    /// ACME dns-01: the DNS server (IP:port) asked for _acme-challenge TXT records; the
    /// system's resolvers (/etc/resolv.conf) when unset.
    #[arg(long, env = "KEYINFRA_ACME_DNS_RESOLVER")]
    pub acme_dns_resolver: Option<std::net::SocketAddr>,

    /// Do not apply pending migrations at start; refuse to start if the schema is behind.
    #[arg(long, env = "KEYINFRA_NO_MIGRATE")]
    pub no_migrate: bool,

    /// Name of the administrator created when the database has no user.
    #[arg(long, env = "KEYINFRA_ADMIN_USERNAME", default_value = "admin")]
    pub admin_username: String,

    /// The CA created on the first start, when none exists.
    #[command(flatten)]
    pub init: InitArgs,

    /// HTTP requests slower than this are logged (WARN, with route, status and duration).
    #[arg(long, env = "KEYINFRA_SLOW_REQUEST", default_value = "1s",
          value_parser = humantime::parse_duration)]
    pub slow_request: Duration,

    /// Scheduled jobs and expiry alerts.
    #[command(flatten)]
    pub jobs: crate::operations::JobArgs,
}

/// `serve`'s listeners (see crate::listen for what the defaults mean together).
#[derive(Debug, Args, Clone)]
pub struct ListenArgs {
    /// Address to listen on. Default: 127.0.0.1:8080, or 127.0.0.1:8443 with TLS.
    #[arg(long, env = "KEYINFRA_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// `auto`: serve HTTPS with a server certificate that serve issues itself from its CA
    /// at start (and again before it expires); `off`: plain HTTP (the default).
    #[arg(long, env = "KEYINFRA_TLS", value_enum)]
    pub tls: Option<TlsMode>,

    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, env = "KEYINFRA_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC) of --tls-cert.
    #[arg(long, env = "KEYINFRA_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// With --tls auto: more DNS names or IP addresses for the server certificate, besides
    /// the listen address, localhost and 127.0.0.1 (comma-separated).
    #[arg(long, env = "KEYINFRA_TLS_NAMES", value_delimiter = ',')]
    pub tls_names: Vec<String>,

    /// With TLS: the plain-HTTP listener that serves only CRLs and CA certificates (which
    /// clients fetch over plain HTTP). Default: the --listen address with port 8080.
    #[arg(long, env = "KEYINFRA_HTTP_LISTEN")]
    pub http_listen: Option<SocketAddr>,

    /// Allow plain HTTP on an address other than loopback (e.g. behind a TLS proxy).
    #[arg(long, env = "KEYINFRA_INSECURE_HTTP")]
    pub insecure_http: bool,

    /// Reverse proxies (CIDRs or addresses, comma-separated) whose `X-Forwarded-For` names
    /// the client; without it the socket's address is the client's and the header is
    /// ignored. The login throttle and the audit log see this address.
    #[arg(long, env = "KEYINFRA_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: String,

    /// SCEP PKIOperations one client address may send a minute (a burst of that many,
    /// refilled evenly); more get 429 with Retry-After. 0: no limit.
    #[arg(long, env = "KEYINFRA_SCEP_RATE", default_value_t = keyinfra_server::edge::DEFAULT_SCEP_PER_MINUTE)]
    pub scep_rate: u32,

    /// EST requests one client address may send a minute (a burst of that many, refilled
    /// evenly); more get 429 with Retry-After. 0: no limit.
    #[arg(long, env = "KEYINFRA_EST_RATE", default_value_t = keyinfra_server::edge::DEFAULT_EST_PER_MINUTE)]
    pub est_rate: u32,

    /// ACME requests one client address may send a minute (a burst of that many, refilled
    /// evenly); more get ACME's rateLimited (429) with Retry-After. 0: no limit.
    #[arg(long, env = "KEYINFRA_ACME_RATE", default_value_t = keyinfra_server::edge::DEFAULT_ACME_PER_MINUTE)]
    pub acme_rate: u32,

    /// Most client connections open at once, over every listener; more are answered 503
    /// and closed.
    #[arg(long, env = "KEYINFRA_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Largest request head (request line and headers), in bytes; larger ones get 431.
    #[arg(long, env = "KEYINFRA_MAX_HEADER_BYTES", default_value_t = 16 * 1024,
          value_parser = clap::value_parser!(u32).range(8192..=1_048_576))]
    pub max_header_bytes: u32,

    /// How long a client may take to send a request's body once its headers arrived; a
    /// slower one gets 408 (the headers have their own 30 s).
    #[arg(long, env = "KEYINFRA_BODY_TIMEOUT", default_value = "30s",
          value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,

    /// Also serve `GET /metrics`, without credentials, on this address (plain HTTP), for a
    /// Prometheus on a monitoring network. On the API's listeners /metrics always needs
    /// KEYINFRA_METRICS_TOKEN or an ADMIN's access token.
    #[arg(long, env = "KEYINFRA_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// File holding the bearer token Prometheus sends to /metrics (at least 16 characters;
    /// KEYINFRA_METRICS_TOKEN may hold the token itself).
    #[arg(long, env = "KEYINFRA_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,

    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish before they are
    /// dropped (e.g. `30s`).
    #[arg(long, env = "KEYINFRA_SHUTDOWN_TIMEOUT", default_value = "30s",
          value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMode {
    Off,
    Auto,
}

#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Apply every pending migration.
    Up,
    /// Revert the newest migration, or every migration newer than --to.
    Down {
        /// Revert down to this version (0 reverts everything).
        #[arg(long)]
        to: Option<i64>,
    },
    /// List migrations and whether each is applied.
    Status,
}
