//! One access-log line and one metrics sample per call: request id,
//! protocol, method, status code and latency. Never headers or bodies (they
//! carry passwords and tokens).

use std::collections::HashSet;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use futures::future::BoxFuture;
use http::{Request, Response};
use tower::{Layer, Service};

use crate::transport::protocol::Protocol;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct AccessLogLayer {
    known_paths: Arc<HashSet<String>>,
}

impl AccessLogLayer {
    /// `known_paths` become metric labels; any other path is `unmatched`,
    /// so scanners cannot blow up label cardinality.
    pub fn new(known_paths: impl IntoIterator<Item = String>) -> Self {
        Self {
            known_paths: Arc::new(known_paths.into_iter().collect()),
        }
    }
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AccessLog {
            inner,
            known_paths: Arc::clone(&self.known_paths),
        }
    }
}

/// See [`AccessLogLayer`].
#[derive(Debug, Clone)]
pub struct AccessLog<S> {
    inner: S,
    known_paths: Arc<HashSet<String>>,
}

/// The status label of a response: the gRPC code name for gRPC calls whose
/// status is in the headers (tonic answers unary errors trailers-only), the
/// HTTP status otherwise.
fn code_label(protocol: Protocol, response: &Response<Body>) -> String {
    if protocol.is_grpc() {
        let code = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(if response.status().is_success() { 0 } else { 2 });
        return format!("{:?}", tonic::Code::from_i32(code));
    }
    response.status().as_u16().to_string()
}

impl<S, B> Service<Request<B>> for AccessLog<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let started = Instant::now();
        let protocol = Protocol::of(&request);
        let path = request.uri().path();
        let method = if self.known_paths.contains(path) {
            path.to_owned()
        } else {
            "unmatched".to_owned()
        };
        let http_method = request.method().clone();
        let request_id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            if let Ok(response) = &result {
                let elapsed = started.elapsed();
                let code = code_label(protocol, response);
                let labels = [
                    ("protocol", protocol.label().to_owned()),
                    ("method", method.clone()),
                    ("code", code.clone()),
                ];
                metrics::counter!("tokengate_requests_total", &labels).increment(1);
                metrics::histogram!(
                    "tokengate_request_duration_seconds",
                    &[
                        ("protocol", protocol.label().to_owned()),
                        ("method", method.clone())
                    ]
                )
                .record(elapsed.as_secs_f64());
                tracing::info!(
                    target: "tokengate::access",
                    request_id = %request_id,
                    protocol = protocol.label(),
                    http_method = %http_method,
                    method = %method,
                    code = %code,
                    latency_ms = elapsed.as_secs_f64() * 1000.0,
                    "call"
                );
            }
            result
        })
    }
}
