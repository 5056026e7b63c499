//! Whether an HTTP/1.1 request's body was read to its end before the answer.
//!
//! When the service answers without reading the whole body (a 413), hyper
//! closes the connection after the answer — but does not say so in it. A
//! client that had finished sending would then put the connection back in
//! its pool and lose its next request to the close (hyper's client reports
//! `IncompleteMessage`). So such answers get `Connection: close`.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// No request has been served on the connection yet.
const NO_REQUEST: u8 = 0;
/// The current request's body has not been read to its end.
const UNREAD: u8 = 1;
/// The current request's body was read to its end (or had nothing in it).
const ENDED: u8 = 2;

/// Where the current request's body stands. One per HTTP/1.1 connection,
/// whose requests are served one at a time, so a request costs no
/// allocation for it.
#[derive(Clone)]
pub(super) struct BodyEnd(Arc<AtomicU8>);

impl BodyEnd {
    /// The state of a new connection.
    pub(super) fn new() -> Self {
        Self(Arc::new(AtomicU8::new(NO_REQUEST)))
    }

    /// Wraps the body of the connection's next request.
    pub(super) fn watch(&self, inner: Incoming) -> WatchedBody {
        let state = if inner.is_end_stream() { ENDED } else { UNREAD };
        self.0.store(state, Ordering::Relaxed);
        WatchedBody {
            inner,
            state: Arc::clone(&self.0),
        }
    }

    /// Whether the current body was read to its end (or had nothing in it).
    pub(super) fn reached(&self) -> bool {
        self.0.load(Ordering::Relaxed) != UNREAD
    }

    /// Whether a request got through to the service on this connection
    /// (hyper's own 400/431 answers to malformed heads never do).
    pub(super) fn served_a_request(&self) -> bool {
        self.0.load(Ordering::Relaxed) != NO_REQUEST
    }
}

/// A request body that notes, in its connection's [`BodyEnd`], when it has
/// been read to its end.
pub(super) struct WatchedBody {
    inner: Incoming,
    state: Arc<AtomicU8>,
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.state.store(ENDED, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
