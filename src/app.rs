//! Assembles a running tokengate from configuration: directory, keys,
//! store, core service, reloaders and the listener.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokengate_config::{Config, StoreBackend};
use tokengate_core::{PasswordPool, TokenService, TokenSettings};
use tokengate_directory::Directory;
use tokengate_keys::KeyDir;
use tokengate_store::{InstrumentedStore, MemoryStore, RedisStore, RefreshStore};
use tokio::net::TcpListener;

use crate::lifecycle::Lifecycle;
use crate::reload;
use crate::server::{self, ConnectionSettings, SourceGuardSettings};
use crate::stack::{self, StackSettings};
use crate::transport::http_endpoints::EndpointState;

/// The directory to serve: a file (reloaded on change) or a fixed one (dev mode).
pub enum DirectorySource {
    /// Load and watch this file.
    File(PathBuf),
    /// Serve this directory as is.
    Fixed(Box<Directory>),
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
    Ok(Arc::new(TokenService::new(
        directory,
        keys,
        store,
        PasswordPool::new(config.token.password_workers, config.token.password_queue),
        TokenSettings::from(config),
    )))
}

/// Runs the server until SIGTERM/SIGINT, then drains and returns.
pub async fn run(
    config: Config,
    directory: DirectorySource,
    on_listening: impl FnOnce(std::net::SocketAddr),
) -> anyhow::Result<()> {
    let loaded = match &directory {
        DirectorySource::File(path) => Directory::load(path)
            .with_context(|| format!("loading directory {}", path.display()))?,
        DirectorySource::Fixed(d) => (**d).clone(),
    };
    tracing::info!(
        domains = loaded.domain_count(),
        principals = loaded.principal_count(),
        "directory loaded"
    );
    let core = build_core(&config, loaded).await?;
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
        metrics: crate::telemetry::metrics_handle(),
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
            DirectorySource::Fixed(_) => None,
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
