//! Assembles a running tokengate from configuration: directory, keys,
//! store, core service, reloaders and the listener.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokengate_config::{Config, DirectoryBackend, StoreBackend};
use tokengate_core::{PasswordPool, TokenService, TokenSettings};
use tokengate_directory::{Directory, Freshness, RemotePrincipals};
use tokengate_directory_ldap::{LdapDirectory, LdapSettings};
use tokengate_directory_postgres::{Feed, PostgresSettings};
use tokengate_keys::KeyDir;
use tokengate_store::{InstrumentedStore, MemoryStore, RedisStore, RefreshStore};
use tokio::net::TcpListener;

use crate::lifecycle::Lifecycle;
use crate::reload;
use crate::server::{self, ConnectionSettings, SourceGuardSettings};
use crate::stack::{self, StackSettings};
use crate::transport::http_endpoints::EndpointState;

/// The directory to serve: a file (reloaded on change), a PostgreSQL
/// database (kept current by LISTEN/NOTIFY) or a fixed one (dev mode).
pub enum DirectorySource {
    /// Load and watch this file.
    File(PathBuf),
    /// Sync from this database.
    Postgres(PostgresSettings),
    /// Ask this LDAP server per call (domains from the config).
    Ldap(LdapSettings),
    /// Serve this directory as is.
    Fixed(Box<Directory>),
}

impl DirectorySource {
    /// The directory a config names.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        Ok(match DirectoryBackend::try_from(config)? {
            DirectoryBackend::File(path) => DirectorySource::File(path),
            DirectoryBackend::Postgres(settings) => DirectorySource::Postgres(settings),
            DirectoryBackend::Ldap(settings) => DirectorySource::Ldap(settings),
        })
    }
}

/// The directory a config names, read once (for one-shot commands: keys,
/// revoke, check-config). A database is read in one snapshot.
pub async fn load_directory(config: &Config) -> anyhow::Result<Directory> {
    match DirectorySource::from_config(config)? {
        DirectorySource::File(path) => {
            Directory::load(&path).with_context(|| format!("loading directory {}", path.display()))
        }
        DirectorySource::Postgres(settings) => {
            let mut client = tokengate_directory_postgres::connect(&settings).await?;
            tokengate_directory_postgres::schema::check_schema(&client).await?;
            Ok(tokengate_directory_postgres::snapshot::load(&mut client, None).await?)
        }
        DirectorySource::Ldap(settings) => {
            let ldap = LdapDirectory::new(settings)?;
            ldap.check().await?;
            Ok(ldap.domains_snapshot()?)
        }
        DirectorySource::Fixed(d) => Ok(*d),
    }
}

/// The refresh store a config names: Redis (standalone or cluster) when
/// `store.redis_url` or `store.cluster_nodes` is set, else in-memory.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn RefreshStore>> {
    match StoreBackend::try_from(&config.store)? {
        StoreBackend::Memory => {
            tracing::warn!(
                "no store.redis_url: in-memory refresh state, valid for ONE instance only"
            );
            Ok(Arc::new(MemoryStore::new()))
        }
        StoreBackend::Redis(redis) => Ok(Arc::new(RedisStore::connect(redis).await?)),
    }
}

/// Loads the directory and keys (creating missing keys when configured)
/// and builds the core service.
pub async fn build_core(
    config: &Config,
    directory: Directory,
    freshness: Option<Arc<dyn Freshness>>,
    remote: Option<Arc<dyn RemotePrincipals>>,
) -> anyhow::Result<Arc<TokenService>> {
    let key_dir = KeyDir::new(&config.keys.dir);
    if config.keys.generate_missing {
        let created = key_dir
            .generate_missing(directory.domain_ids(), config.keys.algorithm)
            .context("generating missing keys")?;
        for (domain, purpose, kid) in created {
            tracing::info!(audit = "key_generated", domain_id = %domain, purpose = purpose.as_str(), %kid, "generated signing key");
        }
    }
    let keys = key_dir.load().context("loading keys")?;
    for domain in directory.domain_ids() {
        if !keys.domain(domain).is_some_and(|d| d.is_complete()) {
            tracing::warn!(domain_id = %domain, "domain has no access or refresh key: its logins will fail until keys exist");
        }
    }
    let store: Arc<dyn RefreshStore> = Arc::new(InstrumentedStore::new(open_store(config).await?));
    tracing::info!(store = %store.describe(), "refresh store");
    let core = TokenService::new(
        directory,
        keys,
        store,
        PasswordPool::new(config.token.password_workers, config.token.password_queue),
        TokenSettings::from(config),
    );
    let core = match freshness {
        Some(f) => core.with_freshness(f),
        None => core,
    };
    Ok(Arc::new(match remote {
        Some(r) => core.with_remote_principals(r),
        None => core,
    }))
}

/// Starts a PostgreSQL directory's feed: every snapshot it syncs replaces
/// the core's directory (with keys generated first for new domains, when
/// configured).
async fn start_postgres_feed(config: &Config, feed: Feed, core: Arc<TokenService>) {
    let keys_dir = config.keys.dir.clone();
    let generate = config
        .keys
        .generate_missing
        .then_some(config.keys.algorithm);
    feed.start(Box::new(move |directory: Directory| {
        if let Some(algorithm) = generate {
            match KeyDir::new(&keys_dir).generate_missing(directory.domain_ids(), algorithm) {
                Ok(created) if !created.is_empty() => {
                    for (domain, purpose, kid) in created {
                        tracing::info!(audit = "key_generated", domain_id = %domain, purpose = purpose.as_str(), %kid, "generated signing key");
                    }
                    reload::reload_keys(&core, &keys_dir);
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot generate keys for new domains"),
            }
        }
        core.replace_directory(directory);
    }))
    .await;
}

/// Runs the server until SIGTERM/SIGINT, then drains and returns.
pub async fn run(
    config: Config,
    directory: DirectorySource,
    on_listening: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    // The recorder first: the directory feed and the store count from the
    // start.
    let metrics = crate::telemetry::metrics_handle();
    let core = match &directory {
        DirectorySource::Postgres(settings) => {
            tracing::info!(directory = %settings.redacted_url(), "postgres directory: syncing");
            // Empty until the feed's first sync; logins answer UNAVAILABLE
            // until then (the feed is down).
            let feed = Feed::new(settings.clone());
            let freshness: Arc<dyn Freshness> = Arc::new(feed.freshness());
            let empty = Directory::from_records(Vec::new(), None)?;
            let core = build_core(&config, empty, Some(freshness), None).await?;
            start_postgres_feed(&config, feed, Arc::clone(&core)).await;
            core
        }
        DirectorySource::File(path) => {
            let loaded = Directory::load(path)
                .with_context(|| format!("loading directory {}", path.display()))?;
            log_loaded(&loaded);
            build_core(&config, loaded, None, None).await?
        }
        DirectorySource::Ldap(settings) => {
            tracing::info!(directory = %settings.url, "ldap directory");
            let ldap = Arc::new(LdapDirectory::new(settings.clone())?);
            let domains = ldap.domains_snapshot()?;
            // The principals are counted when they are read, below.
            tracing::info!(domains = domains.domain_count(), "ldap domains loaded");
            // The first check now, so a healthy start is ready at once; a
            // server that is down is checked again every health interval.
            if let Err(e) = ldap.check().await {
                tracing::warn!(error = %e, "ldap directory unreachable at start");
            }
            // The principals read before serving, so refreshes read memory
            // from the start; if this fails, refreshes search until a
            // later read succeeds.
            match ldap.sync_now().await {
                Ok(held) if held > 0 => tracing::info!(principals = held, "ldap principals read"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "ldap principals not read at start"),
            }
            ldap.spawn_background();
            let freshness: Arc<dyn Freshness> = Arc::new(ldap.freshness());
            let remote: Arc<dyn RemotePrincipals> = ldap;
            build_core(&config, domains, Some(freshness), Some(remote)).await?
        }
        DirectorySource::Fixed(d) => {
            log_loaded(d);
            build_core(&config, (**d).clone(), None, None).await?
        }
    };
    let lifecycle = Lifecycle::new();
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<crate::proto::identity_v1::token_server::TokenServer<crate::transport::grpc::GrpcAdapter>>()
        .await;
    health_reporter
        .set_serving::<crate::proto::identity_v1::domain_server::DomainServer<crate::transport::grpc::GrpcAdapter>>()
        .await;
    health_reporter.set_serving::<SessionGrpc>().await;

    let endpoints = EndpointState {
        core: Arc::clone(&core),
        metrics,
        lifecycle: lifecycle.clone(),
        openapi: crate::transport::openapi::for_config(&config)
            .context("completing the OpenAPI document")?,
    };
    let service = stack::build(
        Arc::clone(&core),
        endpoints,
        health_service,
        &StackSettings::from(&config),
    )?;

    let reload_paths = reload::Watched {
        directory: match &directory {
            DirectorySource::File(path) => Some(path.clone()),
            DirectorySource::Postgres(_) | DirectorySource::Ldap(_) | DirectorySource::Fixed(_) => {
                None
            }
        },
        keys: config.keys.dir.clone(),
        generate_missing: config
            .keys
            .generate_missing
            .then_some(config.keys.algorithm),
    };
    tokio::spawn(reload::watch(Arc::clone(&core), reload_paths));
    tokio::spawn(export_key_ages(Arc::clone(&core)));
    tokio::spawn(track_token_health(
        Arc::clone(&core),
        health_reporter.clone(),
        lifecycle.clone(),
    ));

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let local = listener.local_addr()?;
    tracing::info!(listen = %local, "serving gRPC, gRPC-Web and REST on one port");
    on_listening(local);

    let settings = ConnectionSettings::from(&config.server);
    let guard = Arc::new(server::SourceGuard::new(SourceGuardSettings::from(
        &config.limits,
    )));
    let reporter = health_reporter.clone();
    let shutdown = async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested: health NOT_SERVING, draining");
        reporter
            .set_not_serving::<crate::proto::identity_v1::token_server::TokenServer<
                crate::transport::grpc::GrpcAdapter,
            >>()
            .await;
        reporter
            .set_not_serving::<crate::proto::identity_v1::domain_server::DomainServer<
                crate::transport::grpc::GrpcAdapter,
            >>()
            .await;
        reporter.set_not_serving::<SessionGrpc>().await;
    };
    server::serve(listener, service, settings, guard, lifecycle, shutdown).await;
    tracing::info!("stopped");
    Ok(())
}

fn log_loaded(directory: &Directory) {
    tracing::info!(
        domains = directory.domain_count(),
        principals = directory.principal_count(),
        "directory loaded"
    );
}

/// Exports the age of every domain's signing keys (from their kids), so an
/// alert can ask for a rotation.
async fn export_key_ages(core: Arc<TokenService>) {
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let keys = core.keys();
        for domain in keys.domain_ids() {
            let Some(domain_keys) = keys.domain(domain) else {
                continue;
            };
            for purpose in tokengate_keys::Purpose::ALL {
                if let Some(created) = domain_keys
                    .get(purpose)
                    .signing_key()
                    .and_then(|k| k.created_at())
                {
                    metrics::gauge!(
                        "tokengate_signing_key_age_seconds",
                        "domain" => domain.to_owned(),
                        "purpose" => purpose.as_str()
                    )
                    .set(now.saturating_sub(created) as f64);
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
}

type SessionGrpc =
    crate::proto::session_v1::session_server::SessionServer<crate::transport::grpc::GrpcAdapter>;

type TokenGrpc =
    crate::proto::identity_v1::token_server::TokenServer<crate::transport::grpc::GrpcAdapter>;

/// Keeps `grpc.health.v1` for the Token and Session services in step with
/// readiness: a store outage turns them NOT_SERVING (issue, refresh and the
/// session calls fail closed then), recovery turns them back. Draining wins
/// over everything.
async fn track_token_health(
    core: Arc<TokenService>,
    reporter: tonic_health::server::HealthReporter,
    lifecycle: Lifecycle,
) {
    let mut serving = true;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if lifecycle.is_draining() {
            return;
        }
        let ready = core.readiness().await;
        match (&ready, serving) {
            (Ok(()), false) => {
                tracing::info!("ready again: Token service SERVING");
                reporter.set_serving::<TokenGrpc>().await;
                reporter.set_serving::<SessionGrpc>().await;
                serving = true;
            }
            (Err(reason), true) => {
                tracing::warn!(%reason, "not ready: Token service NOT_SERVING");
                reporter.set_not_serving::<TokenGrpc>().await;
                reporter.set_not_serving::<SessionGrpc>().await;
                serving = false;
            }
            _ => {}
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
