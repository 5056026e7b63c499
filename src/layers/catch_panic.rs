//! Turns a panic in a handler into an INTERNAL answer in the caller's own
//! protocol — a trailers-only gRPC status for gRPC and gRPC-Web clients, the
//! google.rpc.Status JSON for REST — instead of a dropped connection. The
//! panic's message stays in the server's log, never in the answer.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use futures::FutureExt as _;
use futures::future::CatchUnwind;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tokengate_core::TokenError;
use tower::{Layer, Service};

use crate::transport::protocol::Protocol;

/// See the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer;

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CatchPanic { inner }
    }
}

/// See [`CatchPanicLayer`].
#[derive(Debug, Clone)]
pub struct CatchPanic<S> {
    inner: S,
}

/// The answer to a call whose handler panicked.
fn panic_response(protocol: Protocol) -> Response<Body> {
    tracing::error!("a request handler panicked");
    protocol.error_response(&TokenError::Panicked)
}

impl<S, B> Service<Request<B>> for CatchPanic<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let protocol = Protocol::of(&request);
        // A service may panic while building its future, not only in it.
        let state = match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => State::Running {
                future: AssertUnwindSafe(future).catch_unwind(),
            },
            Err(_) => State::Panicked,
        };
        ResponseFuture { state, protocol }
    }
}

pin_project! {
    /// The future of [`CatchPanic`].
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
        protocol: Protocol,
    }
}

pin_project! {
    #[project = StateProjection]
    enum State<F> {
        Running { #[pin] future: CatchUnwind<AssertUnwindSafe<F>> },
        Panicked,
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.state.project() {
            StateProjection::Running { future } => Poll::Ready(match ready!(future.poll(cx)) {
                Ok(result) => result,
                Err(_) => Ok(panic_response(*this.protocol)),
            }),
            StateProjection::Panicked => Poll::Ready(Ok(panic_response(*this.protocol))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt as _;

    fn request(content_type: &str) -> Request<Body> {
        Request::builder()
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Body::empty())
            .expect("request")
    }

    async fn panicking(_: Request<Body>) -> Result<Response<Body>, Infallible> {
        panic!("handler bug");
    }

    #[tokio::test]
    async fn a_panic_in_the_future_answers_in_the_callers_protocol() {
        let service = CatchPanicLayer.layer(tower::service_fn(panicking));
        let grpc = service
            .clone()
            .oneshot(request("application/grpc"))
            .await
            .expect("infallible");
        assert_eq!(grpc.status(), http::StatusCode::OK);
        assert_eq!(grpc.headers()["grpc-status"], "13");
        assert_eq!(grpc.headers()["content-type"], "application/grpc");
        let web = service
            .clone()
            .oneshot(request("application/grpc-web-text"))
            .await
            .expect("infallible");
        assert_eq!(web.headers()["grpc-status"], "13");
        assert_eq!(
            web.headers()["content-type"],
            "application/grpc-web-text+proto"
        );
        let rest = service
            .oneshot(request("application/json"))
            .await
            .expect("infallible");
        assert_eq!(rest.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(rest.into_body(), 4096)
            .await
            .expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["code"], 13);
        assert_eq!(json["message"], "ERROR_INTERNAL_API: Internal error.");
    }

    /// A service that panics in `call` itself, before returning a future.
    #[derive(Clone)]
    struct PanicsInCall;

    impl Service<Request<Body>> for PanicsInCall {
        type Response = Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<Body>, Infallible>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: Request<Body>) -> Self::Future {
            panic!("bug while building the future");
        }
    }

    #[tokio::test]
    async fn a_panic_in_call_answers_too() {
        let answer = CatchPanicLayer
            .layer(PanicsInCall)
            .oneshot(request("application/grpc-web"))
            .await
            .expect("infallible");
        assert_eq!(answer.headers()["grpc-status"], "13");
    }
}
