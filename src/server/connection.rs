//! One client connection: serve it until it ends, or ask it to go away
//! gracefully when it idles, reaches its maximum age, or the server drains.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpStream;
use tower::ServiceExt as _;

use super::client_stream::ClientStream;
use super::closing::Lingering;
use super::unread_body::BodyEnd;
use super::{AppService, ConnectionSettings};
use crate::lifecycle::Lifecycle;
use crate::peer::{ClientFault, Peer};

/// Calls in flight and the time of the last activity on one connection.
struct Activity {
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
    started: Instant,
}

impl Activity {
    fn touch(&self) {
        self.last_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        Some(self.started.elapsed().saturating_sub(last))
    }
}

/// Largest HTTP/1.1 read buffer, i.e. request head (hyper's minimum is 8 KiB).
const MAX_HTTP1_HEAD_BYTES: usize = 32 * 1024;

/// Streams the server may reset on one HTTP/2 connection for the client's
/// errors before it sends GOAWAY (ENHANCE_YOUR_CALM) and closes.
const MAX_LOCAL_ERROR_RESETS: usize = 32;

/// How long an idle connection asked to close may take to do so.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Sleeps until `at`, or forever when there is no such instant.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

pub(super) async fn serve_connection(
    stream: TcpStream,
    client: Peer,
    service: AppService,
    lingering: Arc<Lingering>,
    settings: ConnectionSettings,
    lifecycle: Lifecycle,
) {
    let activity = Arc::new(Activity {
        in_flight: AtomicUsize::new(0),
        last_ms: AtomicU64::new(0),
        started: Instant::now(),
    });
    let per_call = Arc::clone(&activity);
    let body_end = BodyEnd::new();
    let per_call_body_end = body_end.clone();
    let per_call_peer = client.clone();
    let peer = client.addr();
    let hyper_service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let service = service.clone();
        let activity = Arc::clone(&per_call);
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        request.extensions_mut().insert(per_call_peer.clone());
        let http1 = request.version() <= http::Version::HTTP_11;
        let (request, body_end) = if http1 {
            let (parts, body) = request.into_parts();
            let body = Body::new(per_call_body_end.watch(body));
            (
                hyper::Request::from_parts(parts, body),
                Some(per_call_body_end.clone()),
            )
        } else {
            (request.map(Body::new), None)
        };
        async move {
            let mut response = service.oneshot(request).await;
            if let (Ok(response), Some(end)) = (&mut response, body_end)
                && !end.reached()
            {
                // hyper will close after this answer (unread_body.rs).
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            activity.in_flight.fetch_sub(1, Ordering::Relaxed);
            activity.touch();
            response
        }
    });

    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        // Few headers are ever needed here; many headers is an attack.
        .max_headers(64)
        // hyper's default read buffer grows far past any honest request
        // head, so stalled connections each hold that much (BENCHMARKS.md,
        // "Memory"). The cap holds any honest head (a token is about a
        // kilobyte) and larger heads get 431.
        .max_buf_size(MAX_HTTP1_HEAD_BYTES)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(settings.http2_keepalive_interval)
        .keep_alive_timeout(settings.http2_keepalive_timeout)
        .max_concurrent_streams(settings.http2_max_concurrent_streams)
        .max_pending_accept_reset_streams(Some(64))
        // Streams we had to reset (over the stream limit, malformed) before
        // GOAWAY ENHANCE_YOUR_CALM; h2's default is 1,024, and a client
        // sending 1,000 streams at once was refused them one by one, its
        // burst holding the core for milliseconds each time.
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
        // 16 KiB of headers per request (HPACK-decoded): tokens are ~1 KiB.
        .max_header_list_size(16 * 1024);
    let (stream, watch) = ClientStream::new(stream);
    let mut connection = Box::pin(builder.serve_connection(TokioIo::new(stream), hyper_service));

    let mut draining = lifecycle.subscribe();
    let check_every =
        (settings.idle_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut ticker = tokio::time::interval(check_every);
    let mut asked_to_close = false;
    // A graceful close waits for the client: HTTP/2 sends GOAWAY and a PING
    // and waits for the answer, which a silent client never gives. Past
    // this instant the connection is dropped whatever it is doing.
    let mut close_by: Option<tokio::time::Instant> = None;
    let first_byte_by = tokio::time::Instant::now() + settings.header_read_timeout;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                    if let Some(fault) = fault_of(&*e) {
                        client.report(fault);
                    }
                }
                break;
            }
            _ = draining.changed(), if !asked_to_close => {
                connection.as_mut().graceful_shutdown();
                asked_to_close = true;
                close_by = Some(tokio::time::Instant::now() + settings.drain_timeout);
            }
            _ = ticker.tick(), if !asked_to_close => {
                let idle = activity.idle_for().is_some_and(|idle| idle >= settings.idle_timeout);
                let too_old = settings
                    .max_connection_age
                    .is_some_and(|age| activity.started.elapsed() >= age);
                if idle || too_old || *draining.borrow() {
                    tracing::debug!(%peer, idle, too_old, "closing connection");
                    connection.as_mut().graceful_shutdown();
                    asked_to_close = true;
                    // An idle connection has nothing to finish; an old one
                    // may have calls in flight, which get the drain time.
                    let grace = if idle { IDLE_CLOSE_GRACE } else { settings.drain_timeout };
                    close_by = Some(tokio::time::Instant::now() + grace);
                }
            }
            // hyper's header read timeout starts with the first byte; a
            // connection that never sends one would otherwise hold its
            // slot until the idle timeout.
            _ = tokio::time::sleep_until(first_byte_by), if !watch.client_spoke() && !asked_to_close => {
                if !watch.client_spoke() {
                    tracing::debug!(%peer, "no byte within the header read timeout; closing");
                    return;
                }
            }
            _ = sleep_until_some(close_by) => {
                tracing::debug!(%peer, "client did not finish closing; dropping the connection");
                return;
            }
        }
    }
    // hyper is done with the connection. An HTTP/1.1 client that has not
    // closed its side may still be sending a body we answered without
    // reading (a 413): close lingering (closing.rs). Only there: a client
    // whose request head hyper refused (400, 431) is sending garbage, and
    // lingering on a flood of those would only multiply the work it causes;
    // an HTTP/2 client gets its refusal as a stream reset and keeps the
    // connection.
    drop(connection);
    if !body_end.served_a_request() {
        return;
    }
    let Some(socket) = watch.take_unfinished_socket() else {
        return;
    };
    let Some(place) = lingering.try_place() else {
        tracing::debug!(%peer, "too many lingering closes; closing at once");
        return;
    };
    let end = place.close(socket).await;
    tracing::trace!(%peer, ?end, "lingering close");
}

/// The client's fault in how its connection ended, if it was one: hyper
/// refused its request head, or HTTP/2 closed it with GOAWAY for its
/// errors. Timeouts, resets and clients vanishing mid-request are not
/// counted: they cost the server nothing to refuse, and honest clients on
/// bad networks do them too.
fn fault_of(error: &(dyn std::error::Error + 'static)) -> Option<ClientFault> {
    let hyper_error = error.downcast_ref::<hyper::Error>()?;
    if hyper_error.is_parse_too_large() {
        return Some(ClientFault::RequestHeadTooLarge);
    }
    if hyper_error.is_parse() {
        return Some(ClientFault::MalformedRequest);
    }
    let h2_error = std::error::Error::source(hyper_error)?.downcast_ref::<h2::Error>()?;
    let our_goaway = h2_error.is_go_away() && !h2_error.is_remote();
    let client_broke_it = h2_error.reason().is_some_and(|reason| {
        [
            h2::Reason::PROTOCOL_ERROR,
            h2::Reason::FLOW_CONTROL_ERROR,
            h2::Reason::FRAME_SIZE_ERROR,
            h2::Reason::COMPRESSION_ERROR,
            h2::Reason::ENHANCE_YOUR_CALM,
        ]
        .contains(&reason)
    });
    (our_goaway && client_broke_it).then_some(ClientFault::Http2ProtocolError)
}
