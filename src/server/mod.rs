//! The one listener: HTTP/1.1 and h2c on the same port (hyper-util's auto
//! builder), with connection hygiene tonic's server lacks — header read
//! timeout, idle timeout, maximum connection age — and a graceful drain.

mod client_stream;
mod closing;
mod connection;
#[cfg(test)]
mod test_support;
mod unread_body;

mod source_guard;

pub use source_guard::{SourceGuard, SourceGuardSettings};

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use std::convert::Infallible;

use axum::body::Body;
use http::{Request, Response};
use tower::util::BoxCloneSyncService;

use crate::lifecycle::Lifecycle;
use crate::peer::{FaultSink, Peer};

/// The service every connection serves: the whole request stack, boxed.
pub type AppService = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// Connection settings, from `[server]`.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// Time allowed for a request's headers (HTTP/1.1).
    pub header_read_timeout: Duration,
    /// Close connections with no call in flight for this long.
    pub idle_timeout: Duration,
    /// HTTP/2 PING interval (None = off).
    pub http2_keepalive_interval: Option<Duration>,
    /// HTTP/2 PING answer timeout.
    pub http2_keepalive_timeout: Duration,
    /// Concurrent streams per HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
    /// Ask connections to go away after this long (None = never).
    pub max_connection_age: Option<Duration>,
    /// How long a drain waits for in-flight calls.
    pub drain_timeout: Duration,
    /// Open connections at most; more are closed as soon as accepted.
    pub max_connections: usize,
}

/// Serves `service` on `listener` until `shutdown` resolves, then drains:
/// stops accepting (new connections are refused), asks every connection to
/// finish its in-flight calls, and waits up to the drain timeout. `guard`
/// counts clients' protocol faults and throttles the addresses that keep
/// making them.
pub async fn serve(
    listener: TcpListener,
    service: AppService,
    settings: ConnectionSettings,
    guard: Arc<SourceGuard>,
    lifecycle: Lifecycle,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let lingering = Arc::new(closing::Lingering::default());
    let mut last_refusal_logged: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if !guard.admit(peer.ip()) {
                        reset(stream);
                        metrics::counter!("tokengate_connections_rejected_total", "reason" => "source_throttled").increment(1);
                        continue;
                    }
                    // Accept-then-close rather than leaving the backlog to
                    // fill: the kernel queue would hold the flood and honest
                    // clients would time out behind it.
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        drop(stream);
                        metrics::counter!("tokengate_connections_rejected_total", "reason" => "max_connections").increment(1);
                        if last_refusal_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                            tracing::warn!(
                                max_connections = settings.max_connections,
                                "connection limit reached: closing new connections"
                            );
                            last_refusal_logged = Some(Instant::now());
                        }
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let connection = connection::serve_connection(
                        stream,
                        Peer::new(peer, Arc::clone(&guard) as Arc<dyn FaultSink>),
                        service.clone(),
                        Arc::clone(&lingering),
                        settings.clone(),
                        lifecycle.clone(),
                    );
                    tracker.spawn(async move {
                        metrics::gauge!("tokengate_connections_open").increment(1.0);
                        connection.await;
                        metrics::gauge!("tokengate_connections_open").decrement(1.0);
                        drop(slot);
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    lifecycle.start_draining();
    tracker.close();
    tracing::info!(connections = tracker.len(), "draining in-flight calls");
    if tokio::time::timeout(settings.drain_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = tracker.len(),
            "drain timeout passed; closing remaining connections"
        );
    }
}

/// Closes a connection with a reset: nothing is read or written, and no
/// TIME_WAIT is left behind for each connection of a reconnect loop.
fn reset(stream: tokio::net::TcpStream) {
    // SO_LINGER 0 makes close() send RST at once; it cannot block (only a
    // positive linger time can, which is why tokio deprecated its setter).
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}
