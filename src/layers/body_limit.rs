//! Refuses bodies above `limits.max_body_bytes` before anything decodes
//! them, by their declared length: 413 over REST, RESOURCE_EXHAUSTED over
//! gRPC and gRPC-Web. Bodies without a length are bounded while read (REST
//! handler, and [`super::grpc_message_limit`] for gRPC frames).

use std::task::{Context, Poll};

use axum::body::Body;
use futures::future::{BoxFuture, FutureExt as _};
use http::{Request, Response};
use tokengate_core::TokenError;
use tower::{Layer, Service};

use crate::peer::{ClientFault, Peer};
use crate::transport::protocol::Protocol;

/// See the module docs.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimitLayer {
    limit: usize,
}

impl BodyLimitLayer {
    /// Limit in bytes of the decoded message.
    pub fn new(limit: usize) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for BodyLimitLayer {
    type Service = BodyLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BodyLimit {
            inner,
            limit: self.limit,
        }
    }
}

/// See [`BodyLimitLayer`].
#[derive(Debug, Clone)]
pub struct BodyLimit<S> {
    inner: S,
    limit: usize,
}

/// The largest body a protocol may send for a message of `limit` bytes.
fn allowance(protocol: Protocol, limit: usize) -> usize {
    match protocol {
        Protocol::Rest => limit,
        // One 5-byte frame header (plus a trailer frame for gRPC-Web).
        Protocol::Grpc | Protocol::GrpcWeb => limit + 5 + 64,
        // base64 inflates by 4/3.
        Protocol::GrpcWebText => (limit + 5 + 64).div_ceil(3) * 4,
    }
}

impl<S, B> Service<Request<B>> for BodyLimit<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let protocol = Protocol::of(&request);
        let declared = request
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|len| len > allowance(protocol, self.limit)) {
            Peer::report_for(request.extensions(), ClientFault::BodyTooLarge);
            let response = protocol.error_response(&TokenError::RequestTooLarge {
                max_body_bytes: self.limit,
            });
            return async move { Ok(response) }.boxed();
        }
        self.inner.call(request).boxed()
    }
}
