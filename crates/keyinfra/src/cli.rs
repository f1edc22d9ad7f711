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

    /// Log filter (tracing's EnvFilter syntax), e.g. `info` or `keyinfra=debug,info`.
    #[arg(
        long,
        env = "KEYINFRA_LOG",
        default_value = "info,sqlx=warn",
        global = true
    )]
    pub log: String,

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
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (applies pending migrations first unless --no-migrate).
    Serve(ServeArgs),
    /// Apply, revert or list schema migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Manage users as an operator (acts directly on the database).
    #[command(subcommand)]
    User(UserCommand),
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
    /// Address to listen on.
    #[arg(long, env = "KEYINFRA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Do not apply pending migrations at start; refuse to start if the schema is behind.
    #[arg(long, env = "KEYINFRA_NO_MIGRATE")]
    pub no_migrate: bool,

    /// Name of the administrator created when the database has no user.
    #[arg(long, env = "KEYINFRA_ADMIN_USERNAME", default_value = "admin")]
    pub admin_username: String,

    /// Monthly certificate partitions to keep created ahead of the current month.
    #[arg(long, env = "KEYINFRA_PARTITIONS_AHEAD", default_value_t = 24,
          value_parser = clap::value_parser!(i32).range(0..=240))]
    pub partitions_ahead: i32,
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
