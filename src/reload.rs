//! Reloads the directory file and the keys folder when they change (polled)
//! or on SIGHUP. A file that fails to load keeps the previous state and logs
//! why — never its contents.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokengate_core::TokenService;
use tokengate_directory::Directory;
use tokengate_keys::{Algorithm, KeyDir};

/// What to watch.
#[derive(Debug, Clone)]
pub struct Watched {
    /// The directory file (None in dev mode).
    pub directory: Option<PathBuf>,
    /// The keys folder.
    pub keys: PathBuf,
    /// Generate keys for new domains with this algorithm.
    pub generate_missing: Option<Algorithm>,
}

/// How often files are checked for changes.
const POLL: Duration = Duration::from_secs(2);

/// A cheap change detector: modification times and sizes of the files.
fn stamp(path: &Path) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&p) {
                stack.extend(entries.filter_map(Result::ok).map(|e| e.path()));
            }
        } else {
            out.push((p, meta.modified().ok(), meta.len()));
        }
    }
    out.sort();
    out
}

/// Reloads the directory; true when swapped in.
pub fn reload_directory(
    core: &TokenService,
    path: &Path,
    generate: Option<Algorithm>,
    keys: &Path,
) -> bool {
    match Directory::load(path) {
        Ok(directory) => {
            if let Some(algorithm) = generate
                && let Err(e) =
                    KeyDir::new(keys).generate_missing(directory.domain_ids(), algorithm)
            {
                tracing::error!(error = %e, "cannot generate keys for new domains");
            }
            tracing::info!(
                domains = directory.domain_count(),
                principals = directory.principal_count(),
                "directory reloaded"
            );
            metrics::counter!("tokengate_directory_reloads_total", "result" => "ok").increment(1);
            core.replace_directory(directory);
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "directory reload failed; keeping the previous directory");
            metrics::counter!("tokengate_directory_reloads_total", "result" => "failed")
                .increment(1);
            false
        }
    }
}

/// Reloads the keys folder; true when swapped in.
pub fn reload_keys(core: &TokenService, keys: &Path) -> bool {
    match KeyDir::new(keys).load() {
        Ok(ring) => {
            tracing::info!(domains = ring.domain_ids().count(), "keys reloaded");
            core.replace_keys(ring);
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "key reload failed; keeping the previous keys");
            false
        }
    }
}

/// Runs forever: polls for changes and listens for SIGHUP.
pub async fn watch(core: Arc<TokenService>, watched: Watched) {
    let mut directory_stamp = watched.directory.as_deref().map(stamp);
    let mut keys_stamp = stamp(&watched.keys);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let forced = match hangup.as_mut() {
            Some(signal) => tokio::select! {
                _ = signal.recv() => true,
                _ = tokio::time::sleep(POLL) => false,
            },
            None => {
                tokio::time::sleep(POLL).await;
                false
            }
        };
        #[cfg(not(unix))]
        let forced = {
            tokio::time::sleep(POLL).await;
            false
        };
        if forced {
            tracing::info!("SIGHUP: reloading directory and keys");
        }
        if let Some(path) = &watched.directory {
            let now = stamp(path);
            if forced || directory_stamp.as_ref() != Some(&now) {
                directory_stamp = Some(now);
                reload_directory(&core, path, watched.generate_missing, &watched.keys);
            }
        }
        let now = stamp(&watched.keys);
        if forced || now != keys_stamp {
            keys_stamp = now;
            reload_keys(&core, &watched.keys);
        }
    }
}
