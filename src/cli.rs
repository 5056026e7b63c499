//! The command line: `serve`, `hash-password`, `keys`, `revoke`,
//! `check-config`, `import`, and for a PostgreSQL directory `directory
//! migrate`, `domain`, `user` and `owner` (passwords on stdin, never in
//! argv).

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use tokengate_config::DirectoryBackend;
use tokengate_config::{Config, LogFormat, StoreBackend};
use tokengate_directory::{DomainState, PrincipalState, UserType};
use tokengate_directory_postgres::admin::{self, NewPrincipal, PrincipalTable};
use tokengate_directory_postgres::{PostgresSettings, schema};
use tokengate_keys::{Algorithm, KeyDir, Purpose};

use crate::app::{self, DirectorySource};
use crate::devmode;
use crate::telemetry::LogWriter;

/// tokengate: SpaceONE identity v1 Token service (native gRPC, gRPC-Web and
/// REST on one port).
#[derive(Debug, Parser)]
#[command(name = "tokengate", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service. Without a config it starts in dev mode: loopback,
    /// in-memory store, a demo user whose password is printed once.
    Serve(ServeArgs),
    /// Read a password on stdin and print its hash (argon2id by default).
    HashPassword(HashArgs),
    /// Create or rotate signing keys in the configured keys folder.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// End refresh families: every family of a user, or the family of one token.
    Revoke(RevokeArgs),
    /// Validate a config file (and the directory it names) and exit.
    CheckConfig {
        /// The config file to check.
        file: PathBuf,
    },
    /// The PostgreSQL directory's schema.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Domains of the PostgreSQL directory.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Users of the PostgreSQL directory (passwords are read on stdin).
    #[command(subcommand)]
    User(PrincipalCommand<UserTarget>),
    /// Domain owners of the PostgreSQL directory (passwords are read on stdin).
    #[command(subcommand)]
    Owner(PrincipalCommand<OwnerTarget>),
    /// Import users, owners, domains and keys from another identity service.
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// From SpaceONE identity 1.x: `mongoexport` output of the `domain`,
    /// `user`, `domain_owner` and `domain_secret` collections (`<name>.json`,
    /// Extended JSON v2 canonical or relaxed, lines or --jsonArray).
    Spaceone {
        /// The folder holding the exports.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// The directory file to write, or a PostgreSQL directory
        /// (`postgres://…`, migrated with `tokengate directory migrate`)
        /// whose rows to add and update.
        #[arg(long, value_name = "FILE|URL")]
        to: String,
        /// For a PostgreSQL target: a file holding the database password
        /// (not the URL: other users of the machine can read argv).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// The keys folder to write the domains' keys into.
        #[arg(long, value_name = "DIR")]
        keys: PathBuf,
        /// Report what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Replace a directory file that no import wrote.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DirectoryCommand {
    /// Create or upgrade the tables (the migrations shipped in this binary;
    /// safe to run again and from several places at once).
    Migrate {
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Args)]
struct DomainTarget {
    #[command(flatten)]
    config: ConfigArg,
    /// The domain.
    #[arg(long)]
    domain: String,
}

#[derive(Debug, Subcommand)]
enum DomainCommand {
    /// Add a domain (enabled unless --disabled).
    Add {
        #[command(flatten)]
        target: DomainTarget,
        /// Add it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Disable a domain: its logins and refreshes are refused.
    Disable(DomainTarget),
    /// Enable a domain.
    Enable(DomainTarget),
    /// Remove a domain with its users and owners.
    Remove(DomainTarget),
}

/// A user or owner named on the command line.
trait Target: Args {
    const TABLE: PrincipalTable;
    fn config(&self) -> &ConfigArg;
    fn domain(&self) -> &str;
    fn id(&self) -> &str;
}

#[derive(Debug, Args)]
struct UserTarget {
    #[command(flatten)]
    config: ConfigArg,
    /// The user's domain.
    #[arg(long)]
    domain: String,
    /// The user id.
    #[arg(long)]
    user: String,
}

impl Target for UserTarget {
    const TABLE: PrincipalTable = PrincipalTable::User;
    fn config(&self) -> &ConfigArg {
        &self.config
    }
    fn domain(&self) -> &str {
        &self.domain
    }
    fn id(&self) -> &str {
        &self.user
    }
}

#[derive(Debug, Args)]
struct OwnerTarget {
    #[command(flatten)]
    config: ConfigArg,
    /// The owner's domain.
    #[arg(long)]
    domain: String,
    /// The owner id.
    #[arg(long)]
    owner: String,
}

impl Target for OwnerTarget {
    const TABLE: PrincipalTable = PrincipalTable::Owner;
    fn config(&self) -> &ConfigArg {
        &self.config
    }
    fn domain(&self) -> &str {
        &self.domain
    }
    fn id(&self) -> &str {
        &self.owner
    }
}

#[derive(Debug, Subcommand)]
enum PrincipalCommand<T: Target> {
    /// Add one; the password is read on stdin.
    Add {
        #[command(flatten)]
        target: T,
        /// A machine account (API_USER): may not log in with a password.
        #[arg(long)]
        api_user: bool,
        /// Add it disabled.
        #[arg(long)]
        disabled: bool,
        #[command(flatten)]
        hash: HashArgs,
    },
    /// Set the password (read on stdin): its sessions end at their next
    /// refresh.
    SetPassword {
        #[command(flatten)]
        target: T,
        #[command(flatten)]
        hash: HashArgs,
    },
    /// Disable: logins refused, sessions end at their next refresh.
    Disable(T),
    /// Enable.
    Enable(T),
    /// Remove: sessions end at their next refresh.
    Remove(T),
}

#[derive(Debug, Args)]
struct ConfigArg {
    /// Config file (TOML). Defaults to $TOKENGATE_CONFIG.
    #[arg(long, env = "TOKENGATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Listen address, overriding the config (dev mode: 127.0.0.1:50051).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Dev mode only: folder for generated keys.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct HashArgs {
    /// Use bcrypt ($2b$) instead of argon2id.
    #[arg(long)]
    bcrypt: bool,
    /// bcrypt cost (4–16; the directory refuses costlier hashes).
    #[arg(long, default_value_t = 12, requires = "bcrypt")]
    cost: u32,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create access and refresh keys for every domain of the directory that
    /// has none.
    Generate {
        #[command(flatten)]
        config: ConfigArg,
        /// Algorithm for new keys (default: keys.algorithm).
        #[arg(long, value_enum)]
        algorithm: Option<Algorithm>,
    },
    /// Add a new signing key for a domain; older keys keep verifying until
    /// retired. Running servers pick it up within seconds (or on SIGHUP).
    Rotate {
        #[command(flatten)]
        config: ConfigArg,
        /// The domain whose keys rotate.
        #[arg(long, required_unless_present = "all")]
        domain: Option<String>,
        /// Rotate every domain of the directory.
        #[arg(long)]
        all: bool,
        /// Algorithm for the new keys (default: keys.algorithm).
        #[arg(long, value_enum)]
        algorithm: Option<Algorithm>,
        /// Also remove all but the newest N keys per purpose (tokens signed
        /// by removed keys stop verifying).
        #[arg(long, value_name = "N")]
        retire_keep: Option<usize>,
    },
}

#[derive(Debug, Args)]
struct RevokeArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The user's domain.
    #[arg(long, requires = "user", conflicts_with = "token")]
    domain: Option<String>,
    /// The user (or owner) id whose families end.
    #[arg(long, requires = "domain")]
    user: Option<String>,
    /// A refresh token whose family ends.
    #[arg(long, value_name = "JWT")]
    token: Option<String>,
}

fn load_config(arg: &ConfigArg) -> anyhow::Result<(PathBuf, Config)> {
    let Some(path) = &arg.config else {
        bail!("this command needs a config: pass --config FILE or set TOKENGATE_CONFIG");
    };
    let config = Config::load(path, std::env::vars())?;
    Ok((path.clone(), config))
}

/// Logging for a one-shot command: lines are written as they come (no
/// background queue that could lose the last ones at exit).
fn init_logging(format: LogFormat, level: &str) {
    // Without trace export this cannot fail.
    let _ = crate::telemetry::init(format, level, LogWriter::Direct, None);
}

/// Parses the command line and runs the command.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::HashPassword(args) => hash_password(&args),
        Command::Keys(command) => keys(command),
        Command::Revoke(args) => revoke(args),
        Command::CheckConfig { file } => check_config(&file),
        Command::Directory(command) => directory(command),
        Command::Domain(command) => domain(command),
        Command::User(command) => principal(command),
        Command::Owner(command) => principal(command),
        Command::Import(command) => import(command),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    // A task woken by the one running now would run next (the LIFO slot):
    // each HTTP/2 stream that finishes wakes its connection task, which
    // then writes that one response with a syscall of its own. Without the
    // slot the connection task queues behind the other finished streams and
    // writes all their responses at once (.cargo/config.toml, BENCHMARKS.md).
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    builder.build().context("starting the async runtime")
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    match load_config(&args.config).ok() {
        Some((_, mut config)) => {
            // Dropped after the server stops: pending spans are flushed.
            let _telemetry = crate::telemetry::init(
                config.log.format,
                &config.log.level,
                LogWriter::Background,
                Some(&config.telemetry),
            )?;
            if let Some(listen) = args.listen {
                config.listen = listen;
            }
            let directory = DirectorySource::from_config(&config)?;
            runtime()?.block_on(app::run(config, directory, |_| {}))
        }
        None if args.config.config.is_some() => {
            // A config was named but failed: say why instead of falling back.
            load_config(&args.config).map(|_| ())
        }
        None => {
            let data_dir = args.data_dir.unwrap_or_else(devmode::default_data_dir);
            let setup = devmode::setup(&data_dir, args.listen)?;
            // Dropped after the server stops: queued log lines are written.
            let _telemetry = crate::telemetry::init(
                setup.config.log.format,
                &setup.config.log.level,
                LogWriter::Background,
                None,
            )?;
            tracing::warn!("no config given: dev mode (in-memory store, demo credentials)");
            let password = setup.password.clone();
            let shown_dir = std::fs::canonicalize(&data_dir).unwrap_or(data_dir);
            runtime()?.block_on(app::run(
                setup.config,
                DirectorySource::Fixed(Box::new(setup.directory)),
                move |addr| println!("{}", devmode::banner(addr, &password, &shown_dir)),
            ))
        }
    }
}

fn hash_password(args: &HashArgs) -> anyhow::Result<()> {
    println!("{}", hash_stdin(args)?);
    Ok(())
}

/// Reads a password on stdin (one trailing newline dropped) and hashes it
/// as `args` say. The password never appears in argv or a log.
fn hash_stdin(args: &HashArgs) -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the password from stdin")?;
    let password = input
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&input);
    if password.is_empty() {
        bail!("empty password on stdin");
    }
    let hash = if args.bcrypt {
        let max = tokengate_directory::MAX_BCRYPT_COST;
        if !(4..=max).contains(&args.cost) {
            bail!("--cost must be between 4 and {max}");
        }
        tokengate_directory::hash_bcrypt(password, args.cost)?
    } else {
        tokengate_directory::hash_argon2id(password)?
    };
    Ok(hash)
}

fn keys(command: KeysCommand) -> anyhow::Result<()> {
    init_logging(LogFormat::Text, "warn");
    match command {
        KeysCommand::Generate { config, algorithm } => {
            let (_, config) = load_config(&config)?;
            let directory = runtime()?.block_on(app::load_directory(&config))?;
            let algorithm = algorithm.unwrap_or(config.keys.algorithm);
            let created = KeyDir::new(&config.keys.dir)
                .generate_missing(directory.domain_ids(), algorithm)?;
            if created.is_empty() {
                println!("every domain already has keys");
            }
            for (domain, purpose, kid) in created {
                println!("created {} key {kid} for {domain}", purpose.as_str());
            }
            Ok(())
        }
        KeysCommand::Rotate {
            config,
            domain,
            all,
            algorithm,
            retire_keep,
        } => {
            let (_, config) = load_config(&config)?;
            let algorithm = algorithm.unwrap_or(config.keys.algorithm);
            let domains: Vec<String> = if all {
                runtime()?
                    .block_on(app::load_directory(&config))?
                    .domain_ids()
                    .map(str::to_owned)
                    .collect()
            } else {
                domain.into_iter().collect()
            };
            let key_dir = KeyDir::new(&config.keys.dir);
            for domain in &domains {
                for purpose in Purpose::ALL {
                    let kid = key_dir.generate(domain, purpose, algorithm)?;
                    println!(
                        "rotated {domain} {}: new signing key {kid}",
                        purpose.as_str()
                    );
                    tracing::warn!(audit = "key_rotated", domain_id = %domain, purpose = purpose.as_str(), %kid, "key rotated");
                    if let Some(keep) = retire_keep {
                        for old in key_dir.retire(domain, purpose, keep)? {
                            println!("retired {domain} {}: {old}", purpose.as_str());
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

fn import(command: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Spaceone {
        from,
        to,
        password_file,
        keys,
        dry_run,
        force,
    } = command;
    if !tokengate_directory_postgres::is_postgres_url(&to) {
        if password_file.is_some() {
            bail!("--password-file is for a PostgreSQL target (--to postgres://…)");
        }
        let report = tokengate_import::import(&tokengate_import::ImportOptions {
            from,
            to: PathBuf::from(to),
            keys,
            dry_run,
            force,
        })?;
        print!("{report}");
        return Ok(());
    }
    // A database target: rows are upserted, never replaced wholesale, so
    // --force has nothing to override.
    let mut settings = PostgresSettings::new(to);
    if let Some(path) = password_file {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        settings.password = Some(text.trim_end_matches(['\r', '\n']).to_owned());
    }
    let options = tokengate_import::PostgresImportOptions {
        from,
        keys,
        dry_run,
    };
    let report = with_client(&settings, async |client| {
        Ok(tokengate_import::import_postgres(&options, client).await?)
    })?;
    print!("{report}");
    Ok(())
}

fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    let (_, config) = load_config(&args.config)?;
    init_logging(config.log.format, "warn");
    if config.store.redis_url.is_none() && config.store.cluster_nodes.is_empty() {
        bail!(
            "revoke needs the shared store: the in-memory store lives inside the running server (set store.redis_url)"
        );
    }
    runtime()?.block_on(async {
        let directory = app::load_directory(&config).await?;
        let core = app::build_core(&config, directory, None, None).await?;
        match (args.domain, args.user, args.token) {
            (Some(domain), Some(user), None) => {
                core.revoke_principal(&domain, &user).await?;
                tracing::warn!(audit = "revoke_command", domain_id = %domain, user_id = %user, "revoked every family of a user");
                println!("revoked every refresh family of {user} in {domain}");
            }
            (None, None, Some(token)) => {
                let family = core.revoke_token(&token).await?;
                tracing::warn!(audit = "revoke_command", domain_id = %family.domain_id, user_id = %family.principal_id, "revoked one family");
                println!("revoked the refresh family of {} in {}", family.principal_id, family.domain_id);
            }
            _ => bail!("give either --domain D --user U, or --token JWT"),
        }
        Ok(())
    })
}

fn check_config(file: &Path) -> anyhow::Result<()> {
    let config = Config::load(file, std::env::vars())?;
    let directory = runtime()?.block_on(app::load_directory(&config))?;
    let keys = KeyDir::new(&config.keys.dir).load()?;
    let missing: Vec<&str> = directory
        .domain_ids()
        .filter(|d| !keys.domain(d).is_some_and(|k| k.is_complete()))
        .collect();
    let store = match StoreBackend::try_from(&config.store)? {
        StoreBackend::Memory => "in-memory".to_owned(),
        StoreBackend::Redis(redis) => redis.check()?,
    };
    let source = match DirectoryBackend::try_from(&config)? {
        DirectoryBackend::File(path) => format!("file {}", path.display()),
        DirectoryBackend::Postgres(settings) => format!(
            "postgres {} (schema version {})",
            settings.redacted_url(),
            schema::SCHEMA_VERSION
        ),
        DirectoryBackend::Ldap(settings) => format!("ldap {}", settings.url),
    };
    let principals = match DirectoryBackend::try_from(&config)? {
        // The principals live in LDAP: read them the way `serve` does
        // before serving, so a filter or a size limit that stops the read
        // fails here, not in production.
        DirectoryBackend::Ldap(settings) => {
            let ldap = tokengate_directory_ldap::LdapDirectory::new(settings)?;
            runtime()?.block_on(ldap.sync_now())?
        }
        _ => directory.principal_count(),
    };
    println!(
        "config OK: listen {}, directory {source}: {} domains, {principals} users/owners, store {store}",
        config.listen,
        directory.domain_count(),
    );
    if !missing.is_empty() {
        if config.keys.generate_missing {
            println!(
                "keys will be generated at start for: {}",
                missing.join(", ")
            );
        } else {
            bail!(
                "no keys for domains {} and keys.generate_missing is false",
                missing.join(", ")
            );
        }
    }
    Ok(())
}

/// The PostgreSQL settings of a command's config, or why there are none.
fn postgres_settings(arg: &ConfigArg) -> anyhow::Result<(Config, PostgresSettings)> {
    let (_, config) = load_config(arg)?;
    init_logging(config.log.format, "warn");
    match DirectoryBackend::try_from(&config)? {
        DirectoryBackend::Postgres(settings) => Ok((config, settings)),
        DirectoryBackend::File(path) => bail!(
            "this command manages a PostgreSQL directory; the config names the file {} (edit it instead)",
            path.display()
        ),
        DirectoryBackend::Ldap(_) => bail!(
            "this command manages a PostgreSQL directory; the config names an LDAP server (manage its users there)"
        ),
    }
}

/// Runs one command's statements on a fresh connection.
fn with_client<T>(
    settings: &PostgresSettings,
    work: impl AsyncFnOnce(
        &mut tokengate_directory_postgres::tokio_postgres::Client,
    ) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    runtime()?.block_on(async {
        let mut client = tokengate_directory_postgres::connect(settings).await?;
        work(&mut client).await
    })
}

fn directory(command: DirectoryCommand) -> anyhow::Result<()> {
    match command {
        DirectoryCommand::Migrate { config } => {
            let (_, settings) = postgres_settings(&config)?;
            let applied =
                with_client(&settings, async |client| Ok(schema::migrate(client).await?))?;
            if applied.is_empty() {
                println!("schema is up to date (version {})", schema::SCHEMA_VERSION);
            }
            for (version, name) in applied {
                println!("applied migration {version} ({name})");
            }
            Ok(())
        }
    }
}

fn domain(command: DomainCommand) -> anyhow::Result<()> {
    let (target, action): (&DomainTarget, &str) = match &command {
        DomainCommand::Add { target, .. } => (target, "added"),
        DomainCommand::Disable(t) => (t, "disabled"),
        DomainCommand::Enable(t) => (t, "enabled"),
        DomainCommand::Remove(t) => (t, "removed"),
    };
    let (_, settings) = postgres_settings(&target.config)?;
    let id = target.domain.as_str();
    with_client(&settings, async |client| {
        match &command {
            DomainCommand::Add { disabled, .. } => {
                let state = if *disabled {
                    DomainState::Disabled
                } else {
                    DomainState::Enabled
                };
                admin::add_domain(client, id, state).await?
            }
            DomainCommand::Disable(_) => {
                admin::set_domain_state(client, id, DomainState::Disabled).await?
            }
            DomainCommand::Enable(_) => {
                admin::set_domain_state(client, id, DomainState::Enabled).await?
            }
            DomainCommand::Remove(_) => admin::remove_domain(client, id).await?,
        }
        Ok(())
    })?;
    tracing::warn!(audit = "directory_domain", domain_id = %id, action, "domain changed");
    println!("domain {id} {action}");
    Ok(())
}

fn principal<T: Target>(command: PrincipalCommand<T>) -> anyhow::Result<()> {
    let (target, action): (&T, &str) = match &command {
        PrincipalCommand::Add { target, .. } => (target, "added"),
        PrincipalCommand::SetPassword { target, .. } => (target, "password set"),
        PrincipalCommand::Disable(t) => (t, "disabled"),
        PrincipalCommand::Enable(t) => (t, "enabled"),
        PrincipalCommand::Remove(t) => (t, "removed"),
    };
    let (_, settings) = postgres_settings(target.config())?;
    // Hash before connecting: the stdin read and the hash do not hold a
    // connection open.
    let hash = match &command {
        PrincipalCommand::Add { hash, .. } | PrincipalCommand::SetPassword { hash, .. } => {
            Some(hash_stdin(hash)?)
        }
        _ => None,
    };
    let (domain_id, id) = (target.domain(), target.id());
    with_client(&settings, async |client| {
        match (&command, hash.as_deref()) {
            (
                PrincipalCommand::Add {
                    api_user, disabled, ..
                },
                Some(password_hash),
            ) => {
                if *api_user && T::TABLE == PrincipalTable::Owner {
                    bail!("owners cannot be API users");
                }
                let new = NewPrincipal {
                    domain_id,
                    id,
                    password_hash,
                    state: if *disabled {
                        PrincipalState::Disabled
                    } else {
                        PrincipalState::Enabled
                    },
                    user_type: if *api_user {
                        UserType::ApiUser
                    } else {
                        UserType::User
                    },
                };
                admin::add_principal(client, T::TABLE, &new).await?
            }
            (PrincipalCommand::SetPassword { .. }, Some(password_hash)) => {
                admin::set_password_hash(client, T::TABLE, domain_id, id, password_hash).await?
            }
            (PrincipalCommand::Disable(_), _) => {
                admin::set_principal_state(
                    client,
                    T::TABLE,
                    domain_id,
                    id,
                    PrincipalState::Disabled,
                )
                .await?
            }
            (PrincipalCommand::Enable(_), _) => {
                admin::set_principal_state(client, T::TABLE, domain_id, id, PrincipalState::Enabled)
                    .await?
            }
            (PrincipalCommand::Remove(_), _) => {
                admin::remove_principal(client, T::TABLE, domain_id, id).await?
            }
            _ => bail!("no password hash"),
        }
        Ok(())
    })?;
    let kind = match T::TABLE {
        PrincipalTable::User => "user",
        PrincipalTable::Owner => "owner",
    };
    tracing::warn!(audit = "directory_principal", %domain_id, principal = %id, kind, action, "directory changed");
    println!("{kind} {id} in {domain_id}: {action}");
    Ok(())
}
