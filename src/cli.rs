//! The command line: `serve`, `hash-password`, `keys`, `revoke`,
//! `check-config`.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use tokengate_config::{Config, LogFormat, StoreBackend};
use tokengate_directory::Directory;
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
            let directory = DirectorySource::File(config.directory.clone());
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
    println!("{hash}");
    Ok(())
}

fn keys(command: KeysCommand) -> anyhow::Result<()> {
    init_logging(LogFormat::Text, "warn");
    match command {
        KeysCommand::Generate { config, algorithm } => {
            let (_, config) = load_config(&config)?;
            let directory = Directory::load(&config.directory)?;
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
                Directory::load(&config.directory)?
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

fn revoke(args: RevokeArgs) -> anyhow::Result<()> {
    let (_, config) = load_config(&args.config)?;
    init_logging(config.log.format, "warn");
    if config.store.redis_url.is_none() && config.store.cluster_nodes.is_empty() {
        bail!(
            "revoke needs the shared store: the in-memory store lives inside the running server (set store.redis_url)"
        );
    }
    runtime()?.block_on(async {
        let directory = Directory::load(&config.directory)?;
        let core = app::build_core(&config, directory).await?;
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
    let directory = Directory::load(&config.directory)?;
    let keys = KeyDir::new(&config.keys.dir).load()?;
    let missing: Vec<&str> = directory
        .domain_ids()
        .filter(|d| !keys.domain(d).is_some_and(|k| k.is_complete()))
        .collect();
    let store = match StoreBackend::try_from(&config.store)? {
        StoreBackend::Memory => "in-memory".to_owned(),
        StoreBackend::Redis(redis) => redis.check()?,
    };
    println!(
        "config OK: listen {}, {} domains, {} users/owners, store {store}",
        config.listen,
        directory.domain_count(),
        directory.principal_count(),
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
