//! The live directory: an in-memory snapshot of the tables, kept current
//! by LISTEN/NOTIFY with a full resync on every (re)connect, on every
//! notification and every `resync_interval`.
//!
//! Why a snapshot and not a query per login: the core then runs every rule
//! of SPEC §2 exactly as with the file — the password checked before the
//! principal's state, an unknown user verified against a dummy hash of the
//! directory's own profile — and a refresh pays no database round trip.
//! A change made by any SQL client fires the tables' trigger, every
//! instance's listening connection gets the notification and reloads (a
//! few milliseconds for thousands of users; BENCHMARKS.md), so a password
//! change, a disable or a removal reaches every replica well within a
//! second. The one connection per instance also runs the resync queries
//! and a `SELECT 1` every `ping_interval`, so a server that stops
//! answering is noticed within `ping_interval + query_timeout`.
//!
//! While the connection is down the snapshot may be stale: logins answer
//! UNAVAILABLE at once ([`Freshness::check_login`]); refreshes keep being
//! served from the last synced snapshot for `outage_refresh_grace`, then
//! answer UNAVAILABLE too (clients keep their refresh token and retry).
//! On reconnect a full resync catches every change missed meanwhile.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokengate_directory::{Directory, DirectoryUnavailable, Freshness};
use tokio::sync::{mpsc, watch};
use tokio_postgres::Client;

use crate::link::{self, Event};
use crate::{PostgresDirectoryError, PostgresSettings, schema, snapshot};

/// The channel the tables' trigger notifies.
pub const CHANNEL: &str = "tokengate_directory";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The feed's state, shared with the core through [`Freshness`].
#[derive(Debug)]
struct FeedState {
    /// Connected, listening and synced.
    up: AtomicBool,
    /// Some snapshot was ever synced.
    ever_synced: AtomicBool,
    /// When the connection was lost (unix ms); meaningful while `!up`.
    down_since_ms: AtomicU64,
    /// How long refreshes outlive the connection.
    grace_ms: u64,
    /// Why it is down (secret-free).
    reason: Mutex<String>,
}

impl FeedState {
    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::SeqCst) {
            tracing::info!("postgres directory connected and synced");
        }
        self.ever_synced.store(true, Ordering::SeqCst);
        metrics::gauge!("tokengate_directory_up").set(1.0);
    }

    fn mark_down(&self, reason: String) {
        if self.up.swap(false, Ordering::SeqCst) {
            self.down_since_ms.store(now_ms(), Ordering::SeqCst);
            metrics::counter!("tokengate_directory_connection_losses_total").increment(1);
            tracing::warn!(%reason, "postgres directory unreachable: logins answer UNAVAILABLE");
        }
        metrics::gauge!("tokengate_directory_up").set(0.0);
        *self.reason.lock().unwrap_or_else(|p| p.into_inner()) = reason;
    }

    fn unavailable(&self) -> DirectoryUnavailable {
        DirectoryUnavailable(format!(
            "postgres: {}",
            self.reason.lock().unwrap_or_else(|p| p.into_inner())
        ))
    }
}

/// How fresh the live snapshot is; what the core asks before a login or
/// a refresh.
#[derive(Debug, Clone)]
pub struct PostgresFreshness(Arc<FeedState>);

impl Freshness for PostgresFreshness {
    fn check_login(&self) -> Result<(), DirectoryUnavailable> {
        if self.0.up.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(self.0.unavailable())
        }
    }

    fn check_refresh(&self) -> Result<(), DirectoryUnavailable> {
        if self.0.up.load(Ordering::SeqCst) {
            return Ok(());
        }
        let down_for = now_ms().saturating_sub(self.0.down_since_ms.load(Ordering::SeqCst));
        if self.0.ever_synced.load(Ordering::SeqCst) && down_for < self.0.grace_ms {
            Ok(())
        } else {
            Err(self.0.unavailable())
        }
    }
}

/// What receives each new snapshot (the core's `replace_directory`, and
/// key generation for new domains).
pub type OnSnapshot = Box<dyn Fn(Directory) + Send + Sync>;

/// The feed before it runs: its [`Freshness`] can be handed to the core
/// first, then [`Feed::start`] runs it with a callback that reaches the core.
#[derive(Debug)]
pub struct Feed {
    settings: PostgresSettings,
    state: Arc<FeedState>,
}

impl Feed {
    /// A feed for these settings; down until started and synced.
    pub fn new(settings: PostgresSettings) -> Self {
        let state = Arc::new(FeedState {
            up: AtomicBool::new(false),
            ever_synced: AtomicBool::new(false),
            down_since_ms: AtomicU64::new(now_ms()),
            grace_ms: settings.outage_refresh_grace.as_millis() as u64,
            reason: Mutex::new("not yet connected".to_owned()),
        });
        metrics::gauge!("tokengate_directory_up").set(0.0);
        Self { settings, state }
    }

    /// What the core asks before a login or a refresh.
    pub fn freshness(&self) -> PostgresFreshness {
        PostgresFreshness(Arc::clone(&self.state))
    }

    /// Starts the feed: waits for the first sync for at most the connect
    /// and query timeouts (so a healthy start serves at once), then keeps
    /// the snapshot current in a background task for as long as the
    /// runtime runs. A database that is down at start is retried in the
    /// background: the server starts unready and recovers by itself.
    pub async fn start(self, on_snapshot: OnSnapshot) {
        let (attempts_tx, mut attempts) = watch::channel(0u64);
        let first_wait = self.settings.connect_timeout + self.settings.query_timeout * 3;
        tokio::spawn(run(self.settings, self.state, on_snapshot, attempts_tx));
        let _ = tokio::time::timeout(first_wait, attempts.wait_for(|n| *n > 0)).await;
    }
}

/// Reconnects forever, with a backoff of 250 ms doubling to 5 s (reset by
/// a session that synced).
async fn run(
    settings: PostgresSettings,
    state: Arc<FeedState>,
    on_snapshot: OnSnapshot,
    attempts: watch::Sender<u64>,
) {
    let mut previous: Option<Directory> = None;
    let mut backoff = Duration::from_millis(250);
    loop {
        let mut synced = false;
        let result = session(
            &settings,
            &state,
            &on_snapshot,
            &mut previous,
            &attempts,
            &mut synced,
        )
        .await;
        let reason = match result {
            Ok(()) => "connection closed".to_owned(),
            Err(e) => e.to_string(),
        };
        state.mark_down(reason.clone());
        attempts.send_modify(|n| *n += 1);
        if synced {
            backoff = Duration::from_millis(250);
        } else {
            tracing::warn!(%reason, retry_in = ?backoff, "postgres directory: cannot sync");
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One connection's life: LISTEN first (so no change between the load and
/// the LISTEN is missed), a full load, then a resync per notification
/// batch and per `resync_interval`, a ping per `ping_interval`. Returns
/// when the connection fails.
async fn session(
    settings: &PostgresSettings,
    state: &FeedState,
    on_snapshot: &OnSnapshot,
    previous: &mut Option<Directory>,
    attempts: &watch::Sender<u64>,
    synced: &mut bool,
) -> Result<(), PostgresDirectoryError> {
    let (mut client, mut events) = link::connect(settings).await?;
    let limit = settings.query_timeout;
    link::timed(limit, client.batch_execute(&format!("LISTEN {CHANNEL}"))).await?;
    match tokio::time::timeout(limit, schema::check_schema(&client)).await {
        Ok(result) => result?,
        Err(_) => return Err(PostgresDirectoryError::Timeout(limit)),
    };
    resync(&mut client, limit, previous, on_snapshot, "connect").await?;
    *synced = true;
    state.mark_up();
    attempts.send_modify(|n| *n += 1);
    let mut resync_tick = tokio::time::interval(settings.resync_interval);
    resync_tick.tick().await;
    let mut ping_tick = tokio::time::interval(settings.ping_interval);
    ping_tick.tick().await;
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::Notified) => {
                    metrics::counter!("tokengate_directory_notifications_total").increment(1);
                    if let Some(closed) = drain(&mut events) {
                        return Err(PostgresDirectoryError::Connect(closed));
                    }
                    resync(&mut client, limit, previous, on_snapshot, "notify").await?;
                }
                Some(Event::Closed(reason)) => return Err(PostgresDirectoryError::Connect(reason)),
                None => return Ok(()),
            },
            _ = resync_tick.tick() => {
                resync(&mut client, limit, previous, on_snapshot, "periodic").await?;
            }
            _ = ping_tick.tick() => {
                link::timed(limit, client.simple_query("SELECT 1")).await?;
            }
        }
    }
}

/// Takes every queued notification (one resync covers them all); returns
/// the reason if the connection closed meanwhile.
fn drain(events: &mut mpsc::UnboundedReceiver<Event>) -> Option<String> {
    while let Ok(event) = events.try_recv() {
        match event {
            Event::Notified => {
                metrics::counter!("tokengate_directory_notifications_total").increment(1);
            }
            Event::Closed(reason) => return Some(reason),
        }
    }
    None
}

/// Loads the whole directory and hands it over.
async fn resync(
    client: &mut Client,
    limit: Duration,
    previous: &mut Option<Directory>,
    on_snapshot: &OnSnapshot,
    why: &'static str,
) -> Result<(), PostgresDirectoryError> {
    let started = Instant::now();
    let loaded = match tokio::time::timeout(limit, snapshot::load(client, previous.as_ref())).await
    {
        Ok(result) => result,
        Err(_) => Err(PostgresDirectoryError::Timeout(limit)),
    };
    let elapsed = started.elapsed().as_secs_f64();
    metrics::histogram!("tokengate_directory_resync_seconds").record(elapsed);
    let directory = match loaded {
        Ok(d) => d,
        Err(e) => {
            metrics::counter!("tokengate_directory_resyncs_total", "reason" => why, "result" => "failed")
                .increment(1);
            return Err(e);
        }
    };
    metrics::counter!("tokengate_directory_resyncs_total", "reason" => why, "result" => "ok")
        .increment(1);
    metrics::gauge!("tokengate_directory_principals").set(directory.principal_count() as f64);
    tracing::debug!(
        reason = why,
        domains = directory.domain_count(),
        principals = directory.principal_count(),
        seconds = elapsed,
        "postgres directory synced"
    );
    *previous = Some(directory.clone());
    on_snapshot(directory);
    Ok(())
}
