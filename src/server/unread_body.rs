//! Whether an HTTP/1.1 request's body was read to its end before the answer.
//!
//! When the service answers without reading the whole body (a 413), hyper
//! closes the connection after the answer — but does not say so in it. A
//! client that had finished sending would then put the connection back in
//! its pool and lose its next request to the close (hyper's client reports
//! `IncompleteMessage`). So such answers get `Connection: close`.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// Whether the current request's body has been read to its end. One per
/// HTTP/1.1 connection, whose requests are served one at a time, so a
/// request costs no allocation for it.
#[derive(Clone)]
pub(super) struct BodyEnd(Arc<AtomicBool>);

impl BodyEnd {
    /// A flag for a new connection.
    pub(super) fn new() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }

    /// Wraps the body of the connection's next request.
    pub(super) fn watch(&self, inner: Incoming) -> WatchedBody {
        self.0.store(inner.is_end_stream(), Ordering::Relaxed);
        WatchedBody {
            inner,
            ended: Arc::clone(&self.0),
        }
    }

    /// Whether the body was read to its end (or had nothing in it).
    pub(super) fn reached(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// A request body that notes, in its connection's [`BodyEnd`], when it has
/// been read to its end.
pub(super) struct WatchedBody {
    inner: Incoming,
    ended: Arc<AtomicBool>,
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
            self.ended.store(true, Ordering::Relaxed);
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
