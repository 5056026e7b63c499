//! Bounds gRPC messages by their length prefix as the frames stream in, so
//! an oversized message is refused with RESOURCE_EXHAUSTED (SPEC §1; tonic's
//! own limit answers OUT_OF_RANGE) before it is buffered. Sits directly in
//! front of the tonic services, inside gRPC-Web decoding, so it sees binary
//! frames for both native gRPC and gRPC-Web.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::Request;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokengate_core::TokenError;
use tower::{Layer, Service};

use crate::peer::{ClientFault, Peer};
use crate::transport::status::to_status;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// See the module docs.
#[derive(Debug, Clone, Copy)]
pub struct GrpcMessageLimitLayer {
    limit: usize,
}

impl GrpcMessageLimitLayer {
    /// Largest message, in bytes.
    pub fn new(limit: usize) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for GrpcMessageLimitLayer {
    type Service = GrpcMessageLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMessageLimit {
            inner,
            limit: self.limit,
        }
    }
}

/// See [`GrpcMessageLimitLayer`].
#[derive(Debug, Clone)]
pub struct GrpcMessageLimit<S> {
    inner: S,
    limit: usize,
}

impl<S, B> Service<Request<B>> for GrpcMessageLimit<S>
where
    S: Service<Request<LimitedFrames<B>>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let limit = self.limit;
        let faults = request.extensions().get::<Peer>().cloned();
        self.inner.call(request.map(|inner| LimitedFrames {
            inner,
            limit,
            faults,
            header: Vec::with_capacity(5),
            remaining: 0,
        }))
    }
}

pin_project! {
    /// A request body whose gRPC length prefixes are checked as they pass.
    pub struct LimitedFrames<B> {
        #[pin]
        inner: B,
        limit: usize,
        // Where an oversized message is reported (absent outside the server).
        faults: Option<Peer>,
        // Bytes of the current 5-byte frame header seen so far.
        header: Vec<u8>,
        // Payload bytes left in the current message.
        remaining: usize,
    }
}

impl<B> Body for LimitedFrames<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let frame = match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            let mut chunk = data.clone();
            while chunk.has_remaining() {
                if *this.remaining > 0 {
                    let skip = (*this.remaining).min(chunk.remaining());
                    chunk.advance(skip);
                    *this.remaining -= skip;
                    continue;
                }
                this.header.push(chunk.get_u8());
                if this.header.len() == 5 {
                    let len = u32::from_be_bytes([
                        this.header[1],
                        this.header[2],
                        this.header[3],
                        this.header[4],
                    ]) as usize;
                    this.header.clear();
                    if len > *this.limit {
                        if let Some(faults) = this.faults.take() {
                            faults.report(ClientFault::BodyTooLarge);
                        }
                        // tonic surfaces a Status found in a body error as is.
                        let too_large = TokenError::RequestTooLarge {
                            max_body_bytes: *this.limit,
                        };
                        return Poll::Ready(Some(Err(Box::new(to_status(&too_large)))));
                    }
                    *this.remaining = len;
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
