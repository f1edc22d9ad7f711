//! The subcommands.

use std::io::{BufRead, IsTerminal};
use std::sync::Arc;

use anyhow::Context;
use keyinfra_core::acme::{AcmeSettings, ValidationSettings};
use keyinfra_core::auth::{JwtSecret, Pepper};
use keyinfra_core::authority::AuthoritySettings;
use keyinfra_core::ca_setup::InitOptions;
use keyinfra_core::users::UserService;
use keyinfra_core::{Clock, OsRandom, SystemClock};
use keyinfra_db::{Actor, Database, UserRole, migrations, partitions};
use keyinfra_pki::seal::MasterKeys;
use keyinfra_server::{App, AppConfig, BuildError, SchedulerSettings, UserSettings};

use crate::ca_commands;
use crate::cli::{
    Cli, Command, DatabaseArgs, MigrateCommand, RoleArg, SecretArgs, ServeArgs, UserCommand,
};
use crate::database::{Target, pool_settings};
use crate::{listen, secrets};

#[allow(clippy::print_stdout)] // A command's output is its result.
fn out(line: String) {
    println!("{line}");
}

/// The secrets (configured or generated) and token lifetime of the user service.
fn user_settings(database: &DatabaseArgs, args: &SecretArgs) -> anyhow::Result<UserSettings> {
    let data_dir = &database.data_dir;
    let pepper = secrets::load(
        "KEYINFRA_PEPPER",
        "KEYINFRA_PEPPER_FILE",
        args.pepper_file.as_deref(),
        data_dir,
        "pepper",
    )?;
    let jwt = secrets::load(
        "KEYINFRA_JWT_SECRET",
        "KEYINFRA_JWT_SECRET_FILE",
        args.jwt_secret_file.as_deref(),
        data_dir,
        "jwt-secret",
    )?;
    let pepper = Pepper::new(pepper.bytes.to_vec()).map_err(anyhow::Error::msg)?;
    let jwt_secret = JwtSecret::new(jwt.bytes.to_vec()).map_err(anyhow::Error::msg)?;
    let token_lifetime = time::Duration::try_from(args.token_lifetime)
        .ok()
        .filter(|d| *d >= time::Duration::seconds(30) && *d <= time::Duration::days(1))
        .context("KEYINFRA_TOKEN_LIFETIME (--token-lifetime) must be between 30s and 24h")?;
    Ok(UserSettings {
        pepper,
        jwt_secret,
        token_lifetime,
    })
}

/// Password hashing and tokens, for `keyinfra user` (`serve` builds its own in `App::build`).
fn user_service(database: &DatabaseArgs, args: &SecretArgs) -> anyhow::Result<UserService> {
    user_settings(database, args)?
        .service(Arc::new(SystemClock), &mut OsRandom)
        .context("cannot set up password hashing")
}

/// What `serve` reads from its settings and secrets before it starts anything.
struct ServeSettings {
    users: UserSettings,
    authority: AuthoritySettings,
    master_keys: MasterKeys,
    init: InitOptions,
    scheduler: SchedulerSettings,
}

pub async fn run(mut cli: Cli) -> anyhow::Result<()> {
    cli.database.data_dir = crate::database::absolute(&cli.database.data_dir)?;
    // Settings are checked before anything starts.
    let pool = pool_settings(&cli.database)?;
    match cli.command {
        Command::Serve(args) => {
            // Listeners and TLS files are checked before anything starts; certificates
            // point at the plain listener unless KEYINFRA_PUBLIC_URL says otherwise.
            let listen = listen::Plan::new(&args.net)?;
            cli.authority
                .public_url
                .get_or_insert_with(|| listen.default_public_url());
            let (mut authority, master_keys) =
                ca_commands::authority_settings(&cli.database, &cli.authority)?;
            authority.reserved_names =
                crate::tls::reserved_names(listen.listen.ip(), &args.net.tls_names)?;
            let settings = ServeSettings {
                users: user_settings(&cli.database, &cli.secrets)?,
                authority,
                master_keys,
                init: ca_commands::init_options(&args.init)?,
                scheduler: crate::operations::scheduler_settings(&args.jobs)?,
            };
            let target = Target::open(&cli.database).await?;
            // Boxed: the settings make the future large (clippy::large_futures).
            let outcome = Box::pin(serve(&target, &pool, &args, &listen, settings)).await;
            let closed = target.close().await;
            outcome.and(closed)
        }
        Command::User(command) => {
            let users = user_service(&cli.database, &cli.secrets)?;
            let target = Target::open(&cli.database).await?;
            let outcome = user_command(&target.url, &pool, command, &users).await;
            let closed = target.close().await;
            outcome.and(closed)
        }
        Command::Init(args) => {
            let authority = ca_commands::authority(&cli.database, &cli.authority)?;
            with_database(&cli.database, &pool, |db| async move {
                ca_commands::init(&db, &authority, &args).await
            })
            .await
        }
        Command::Ca(command) => {
            let authority = ca_commands::authority(&cli.database, &cli.authority)?;
            with_database(&cli.database, &pool, |db| async move {
                ca_commands::ca(&db, &authority, command).await
            })
            .await
        }
        Command::Cert(command) => {
            let authority = ca_commands::authority(&cli.database, &cli.authority)?;
            with_database(&cli.database, &pool, |db| async move {
                ca_commands::cert(&db, &authority, command).await
            })
            .await
        }
        Command::Policy(command) => {
            let authority = ca_commands::authority(&cli.database, &cli.authority)?;
            with_database(&cli.database, &pool, |db| async move {
                crate::policy_commands::run(&db, &authority, command).await
            })
            .await
        }
        Command::Keys(command) => {
            let authority = ca_commands::authority(&cli.database, &cli.authority)?;
            with_database(&cli.database, &pool, |db| async move {
                ca_commands::keys(&db, &authority, command).await
            })
            .await
        }
        Command::Jobs(command) => {
            let authority = Arc::new(ca_commands::authority(&cli.database, &cli.authority)?);
            with_database(&cli.database, &pool, |db| async move {
                crate::operations::command(&db, authority, Arc::new(SystemClock), command).await
            })
            .await
        }
        Command::Backup(command) => crate::backup_commands::run(&cli.database, command).await,
        Command::Migrate(command) => {
            let target = Target::open(&cli.database).await?;
            let outcome = migrate(&target.url, command).await;
            let closed = target.close().await;
            outcome.and(closed)
        }
    }
}

/// Every request runs as keyinfra_app, but SQL run on one of the pool's connections can
/// `RESET ROLE` back to the URL's login role: a superuser or BYPASSRLS login role would then
/// undo row-level security (migration 0014). The embedded cluster is private to this
/// process and its only role is its superuser, so only `DATABASE_URL` is warned about.
fn warn_if_login_role_escapes_rls(db: &Database, embedded: bool) {
    let login = db.login_role();
    if !embedded && login.escapes_row_level_security() {
        tracing::warn!(
            role = %login.name,
            superuser = login.superuser,
            bypass_rls = login.bypass_rls,
            "DATABASE_URL logs in as a superuser or BYPASSRLS role: SQL run on a server connection could RESET ROLE to it and bypass row-level security; in production log in as a NOSUPERUSER role that owns nothing and is a member of keyinfra_app (README, \"Using an external PostgreSQL\")"
        );
    }
}

async fn serve(
    target: &Target,
    pool: &keyinfra_db::PoolSettings,
    args: &ServeArgs,
    listen: &listen::Plan,
    settings: ServeSettings,
) -> anyhow::Result<()> {
    let url = target.url.as_str();
    let shutdown = shutdown_signal()?;
    let expected = migrations::latest_version();
    if args.no_migrate {
        tracing::info!("--no-migrate: not applying migrations");
    } else {
        let applied = migrations::up(url).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "applied migrations");
        }
    }
    let db = Database::connect(url, pool).await?;
    warn_if_login_role_escapes_rls(&db, target.is_embedded());
    let found = db.schema_version().await.unwrap_or(0);
    if found != expected {
        anyhow::bail!(
            "the database schema is at version {found} but this build needs {expected}; run `keyinfra migrate up` (or start without --no-migrate)"
        );
    }

    // The partitions the next months need; the maintenance job keeps this going while the
    // server runs (and it is idempotent, so every replica may do it at start). It runs as
    // the URL's login role, which keyinfra_app is not (migration 0014): a login role that
    // may not is told once and the server starts anyway (the migrations created 24 months).
    let mut conn = db.maintenance().await?;
    match partitions::ensure(&mut conn, args.jobs.partitions_ahead, SystemClock.now()).await {
        Ok(created) if !created.is_empty() => {
            tracing::info!(count = created.len(), "created certificate partitions");
        }
        Ok(_) => {}
        Err(keyinfra_db::DbError::PermissionDenied) => tracing::warn!(
            role = %db.login_role().name,
            "the DATABASE_URL's role may not create certificate partitions; grant it EXECUTE on the maintenance functions or run `keyinfra jobs run partition-maintenance` as the owner (README, \"Using an external PostgreSQL\")"
        ),
        Err(e) => return Err(e.into()),
    }
    conn.close().await;

    // The services, the first CA, fresh CRLs, the CRL publisher and the scheduler: the
    // same App the tests build.
    let mut config = AppConfig::new(
        db.clone(),
        settings.users,
        settings.authority,
        settings.master_keys,
        Arc::new(SystemClock),
    );
    config.expected_schema_version = expected;
    config.init = settings.init;
    config.edge = listen.edge.clone();
    config.slow_request = args.slow_request;
    config.scheduler = Some(settings.scheduler);
    config.acme = acme_settings(&db, args).await?;
    let app = App::build(config, &mut OsRandom)
        .await
        .map_err(|e| match e {
            BuildError::FirstCa(cause) => anyhow::Error::new(cause).context(
                "cannot create the first CA (KEYINFRA_ROOT_SUBJECT / KEYINFRA_CA_ALGORITHM)",
            ),
            other => other.into(),
        })?;
    if let Err(e) = bootstrap_admin(&app, &db, args).await {
        app.shutdown().await;
        return Err(e);
    }

    // Serves (HTTP or HTTPS, see crate::listen) until SIGTERM/SIGINT, then drains requests.
    let served = listen::serve(listen, &app, shutdown).await;
    tracing::info!("shutting down: stopping background tasks");
    app.shutdown().await;
    served?;
    tracing::info!("shutting down: closing database connections");
    db.close().await;
    Ok(())
}

/// First start: an administrator, so that someone can log in.
async fn bootstrap_admin(app: &App, db: &Database, args: &ServeArgs) -> anyhow::Result<()> {
    let admin_password =
        secrets::from_environment("KEYINFRA_ADMIN_PASSWORD").map(|p| p.as_str().to_owned());
    if let Some((admin, generated)) = app
        .state()
        .users
        .bootstrap_admin(db, &args.admin_username, admin_password, &mut OsRandom)
        .await
        .context("cannot create the first administrator (KEYINFRA_ADMIN_USERNAME / KEYINFRA_ADMIN_PASSWORD)")?
    {
        tracing::info!(username = %admin.username, "created the first administrator");
        if let Some(password) = generated {
            // Shown once, on the console only; never logged, never stored in plaintext.
            #[allow(clippy::print_stdout)]
            {
                println!("keyinfra: created administrator {:?} with password: {password}", admin.username);
                println!("keyinfra: this password is shown only once; change it after logging in");
            }
        }
    }
    Ok(())
}

/// Opens the database (applying migrations, as an operator command may be the first thing
/// run), runs `work`, and closes everything.
async fn with_database<F, Fut>(
    database: &DatabaseArgs,
    pool: &keyinfra_db::PoolSettings,
    work: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Database) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let target = Target::open(database).await?;
    let outcome = async {
        migrations::up(&target.url).await?;
        let db = Database::connect(&target.url, pool).await?;
        let result = work(db.clone()).await;
        db.close().await;
        result
    }
    .await;
    let closed = target.close().await;
    outcome.and(closed)
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled: a signal that arrives while the server is still starting
/// must stop it cleanly, not kill it.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt =
        signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("received SIGINT"),
            _ = terminate.recv() => tracing::info!("received SIGTERM"),
        }
    })
}

async fn user_command(
    url: &str,
    pool: &keyinfra_db::PoolSettings,
    command: UserCommand,
    users: &UserService,
) -> anyhow::Result<()> {
    let db = Database::connect(url, pool).await?;
    let result = match command {
        UserCommand::Add {
            username,
            role,
            email,
        } => {
            let password = read_password()?;
            let role = match role {
                RoleArg::Admin => UserRole::Admin,
                RoleArg::User => UserRole::User,
            };
            let user = users
                .create(
                    &db,
                    None,
                    &username,
                    password,
                    role,
                    email.as_deref(),
                    &mut OsRandom,
                )
                .await?;
            out(format!(
                "added {} {} ({})",
                user.role.as_str(),
                user.username,
                user.id
            ));
            Ok(())
        }
        UserCommand::List => {
            let mut tx = db.begin(&Actor::System).await?;
            let mut after = None;
            loop {
                let page = keyinfra_db::users::list(&mut tx, after, 500).await?;
                for u in &page {
                    let state = if u.disabled { "disabled" } else { "active" };
                    out(format!(
                        "{}  {:<5}  {:<8}  {}",
                        u.id,
                        u.role.as_str(),
                        state,
                        u.username
                    ));
                }
                match page.last() {
                    Some(last) if page.len() == 500 => after = Some((last.created_at, last.id)),
                    _ => break,
                }
            }
            tx.commit().await?;
            Ok(())
        }
    };
    db.close().await;
    result
}

/// The new user's password: prompted for (not echoed) on a terminal, else one line of stdin.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
        let again =
            rpassword::prompt_password("Password again: ").context("cannot read the password")?;
        if first != again {
            anyhow::bail!("the two passwords differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    Ok(password)
}

async fn migrate(url: &str, command: MigrateCommand) -> anyhow::Result<()> {
    match command {
        MigrateCommand::Up => {
            let applied = migrations::up(url).await?;
            if applied.is_empty() {
                out("nothing to apply: the schema is current".to_owned());
            }
            for version in applied {
                out(format!("applied {version}"));
            }
        }
        MigrateCommand::Down { to } => {
            let reverted = migrations::down(url, to).await?;
            if reverted.is_empty() {
                out("nothing to revert".to_owned());
            }
            for version in reverted {
                out(format!("reverted {version}"));
            }
        }
        MigrateCommand::Status => {
            for m in migrations::status(url).await? {
                let state = match (m.applied_at, m.checksum_mismatch) {
                    (Some(_), true) => "applied, but the file changed since".to_owned(),
                    (Some(at), false) => format!("applied {at}"),
                    (None, _) => "pending".to_owned(),
                };
                out(format!("{:04} {:<28} {state}", m.version, m.description));
            }
        }
    }
    Ok(())
}

/// ACME's settings from `serve`'s options; the default owner is named by username and must
/// exist when the server starts.
async fn acme_settings(db: &Database, args: &ServeArgs) -> anyhow::Result<AcmeSettings> {
    if args.acme_eab_required && args.acme_default_owner.is_some() {
        tracing::warn!(
            "KEYINFRA_ACME_DEFAULT_OWNER is set but KEYINFRA_ACME_EAB_REQUIRED is true: every ACME account needs a binding and the default owner is not used"
        );
    }
    let default_owner = match &args.acme_default_owner {
        None => None,
        Some(name) => {
            let mut tx = db.begin(&Actor::System).await?;
            let id = keyinfra_db::users::id_by_username(&mut tx, name).await?;
            tx.commit().await?;
            Some(id.ok_or_else(|| {
                anyhow::anyhow!(
                    "KEYINFRA_ACME_DEFAULT_OWNER names no user ({name:?}); create the user first"
                )
            })?)
        }
    };
    if let Some(terms) = &args.acme_terms_of_service
        && !(terms.starts_with("https://") || terms.starts_with("http://"))
    {
        anyhow::bail!("KEYINFRA_ACME_TERMS_OF_SERVICE must be an http(s) URL");
    }
    // RFC 8659 4.2: an issuer domain name is a DNS name, nothing else.
    for name in &args.acme_caa_identities {
        let plausible = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !plausible {
            anyhow::bail!("KEYINFRA_ACME_CAA_IDENTITIES: {name:?} is not a domain name");
        }
    }
    Ok(AcmeSettings {
        eab_required: args.acme_eab_required,
        default_owner,
        terms_of_service: args.acme_terms_of_service.clone(),
        caa_identities: args.acme_caa_identities.clone(),
        validation: ValidationSettings {
            http01_port: args.acme_http01_port,
            tls_alpn01_port: args.acme_tlsalpn01_port,
            deny: args.acme_validation_deny.clone(),
            dns_resolver: args.acme_dns_resolver,
            ..ValidationSettings::default()
        },
    })
}
