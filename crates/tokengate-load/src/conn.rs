//! Bare hyper 1 client connections: one HTTP/2 connection shared by the M
//! in-flight slots of a worker (streams multiplexed), or one HTTP/1.1
//! connection per slot (no pipelining). Dead connections are re-opened.

use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::task::AbortHandle;

use crate::protocol::HttpVersion;
use crate::target::Dial;
use crate::wire::Failure;

/// A complete answer: status, headers, body and trailers.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// HTTP/2 (or chunked HTTP/1.1) trailers.
    pub trailers: Option<HeaderMap>,
}

/// The connection tasks of a run, aborted when the run ends.
#[derive(Debug, Clone, Default)]
pub struct ConnTasks(Arc<StdMutex<Vec<AbortHandle>>>);

impl ConnTasks {
    fn push(&self, handle: AbortHandle) {
        if let Ok(mut v) = self.0.lock() {
            v.retain(|h| !h.is_finished());
            v.push(handle);
        }
    }

    /// Aborts every connection task still running.
    pub fn abort_all(&self) {
        if let Ok(mut v) = self.0.lock() {
            for h in v.drain(..) {
                h.abort();
            }
        }
    }
}

type Body = Full<Bytes>;

async fn tcp(dial: Dial) -> Result<TokioIo<TcpStream>, Failure> {
    let stream = dial
        .connect()
        .await
        .map_err(|e| Failure::new("CONNECT", format!("connect {}: {e}", dial.addr)))?;
    stream
        .set_nodelay(true)
        .map_err(|e| Failure::new("CONNECT", format!("TCP_NODELAY: {e}")))?;
    Ok(TokioIo::new(stream))
}

async fn open_h1(dial: Dial, tasks: &ConnTasks) -> Result<http1::SendRequest<Body>, Failure> {
    let io = tcp(dial).await?;
    let (sender, conn) = http1::handshake(io)
        .await
        .map_err(|e| Failure::new("CONNECT", format!("HTTP/1.1 handshake: {e}")))?;
    tasks.push(tokio::spawn(async move { drop(conn.await) }).abort_handle());
    Ok(sender)
}

async fn open_h2(dial: Dial, tasks: &ConnTasks) -> Result<http2::SendRequest<Body>, Failure> {
    let io = tcp(dial).await?;
    let (sender, conn) = http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(4 << 20)
        .handshake(io)
        .await
        .map_err(|e| Failure::new("CONNECT", format!("HTTP/2 handshake: {e}")))?;
    tasks.push(tokio::spawn(async move { drop(conn.await) }).abort_handle());
    Ok(sender)
}

/// One HTTP/2 connection shared by several lanes; re-opened when it dies.
#[derive(Debug)]
pub struct SharedH2 {
    dial: Dial,
    tasks: ConnTasks,
    slot: tokio::sync::Mutex<Option<http2::SendRequest<Body>>>,
}

impl SharedH2 {
    /// Opens the connection.
    pub async fn open(dial: Dial, tasks: ConnTasks) -> Result<Arc<Self>, Failure> {
        let sender = open_h2(dial, &tasks).await?;
        Ok(Arc::new(Self {
            dial,
            tasks,
            slot: tokio::sync::Mutex::new(Some(sender)),
        }))
    }

    /// The live sender; the first lane to find the connection dead re-opens it
    /// for all (the others wait on the lock and get the new one).
    async fn get(&self) -> Result<http2::SendRequest<Body>, Failure> {
        let mut slot = self.slot.lock().await;
        if let Some(s) = slot.as_ref().filter(|s| !s.is_closed()) {
            return Ok(s.clone());
        }
        *slot = None;
        let sender = open_h2(self.dial, &self.tasks).await?;
        *slot = Some(sender.clone());
        Ok(sender)
    }
}

/// What one in-flight slot sends its calls on.
#[derive(Debug)]
pub enum Lane {
    /// A connection of its own, one call at a time.
    H1 {
        /// Where to (re)connect.
        dial: Dial,
        /// Connection tasks of the run.
        tasks: ConnTasks,
        /// The open connection, if any.
        sender: Option<http1::SendRequest<Body>>,
    },
    /// A stream slot on a shared HTTP/2 connection.
    H2 {
        /// The shared connection.
        shared: Arc<SharedH2>,
        /// The sender last used (a clone of the shared one).
        sender: Option<http2::SendRequest<Body>>,
    },
}

impl Lane {
    /// Opens the lanes of one worker: `in_flight` lanes on one HTTP/2
    /// connection, or `in_flight` HTTP/1.1 connections.
    pub async fn open_worker(
        dial: Dial,
        version: HttpVersion,
        in_flight: usize,
        tasks: &ConnTasks,
    ) -> Result<Vec<Lane>, Failure> {
        match version {
            HttpVersion::H2 => {
                let shared = SharedH2::open(dial, tasks.clone()).await?;
                Ok((0..in_flight)
                    .map(|_| Lane::H2 {
                        shared: shared.clone(),
                        sender: None,
                    })
                    .collect())
            }
            HttpVersion::H1 => {
                let mut lanes = Vec::with_capacity(in_flight);
                for _ in 0..in_flight {
                    lanes.push(Lane::H1 {
                        dial,
                        tasks: tasks.clone(),
                        sender: Some(open_h1(dial, tasks).await?),
                    });
                }
                Ok(lanes)
            }
        }
    }

    /// Sends `req` and reads the whole answer. A transport failure drops the
    /// connection so the next call re-opens it.
    pub async fn send(&mut self, req: Request<Body>) -> Result<Response, Failure> {
        let response = match self {
            Lane::H1 {
                dial,
                tasks,
                sender,
            } => {
                let mut s = match sender.take() {
                    Some(s) if !s.is_closed() => s,
                    _ => open_h1(*dial, tasks).await?,
                };
                if s.ready().await.is_err() {
                    // Closed by the server while idle: one fresh connection, no retry of the call.
                    s = open_h1(*dial, tasks).await?;
                    s.ready().await.map_err(transport)?;
                }
                let r = s.send_request(req).await.map_err(transport)?;
                let (parts, body) = r.into_parts();
                let collected = body.collect().await.map_err(transport)?;
                *sender = Some(s);
                (parts, collected)
            }
            Lane::H2 { shared, sender } => {
                let mut s = match sender.take() {
                    Some(s) if !s.is_closed() => s,
                    _ => shared.get().await?,
                };
                s.ready().await.map_err(transport)?;
                let r = s.send_request(req).await.map_err(transport)?;
                *sender = Some(s);
                let (parts, body) = r.into_parts();
                let collected = body.collect().await.map_err(transport)?;
                (parts, collected)
            }
        };
        let (parts, collected) = response;
        let trailers = collected.trailers().cloned();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body: collected.to_bytes(),
            trailers,
        })
    }
}

fn transport(e: hyper::Error) -> Failure {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    Failure::new("TRANSPORT", message)
}

/// A short pause after a transport failure, so a dead target is not spun on.
pub const TRANSPORT_BACKOFF: Duration = Duration::from_millis(20);
