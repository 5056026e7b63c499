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
use tracing::Instrument as _;

use crate::transport::protocol::Protocol;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct AccessLogLayer {
    known_paths: Arc<HashSet<&'static str>>,
}

impl AccessLogLayer {
    /// `known_paths` become metric labels; any other path is `unmatched`,
    /// so scanners cannot blow up label cardinality.
    pub fn new(known_paths: impl IntoIterator<Item = &'static str>) -> Self {
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
    known_paths: Arc<HashSet<&'static str>>,
}

/// The status label of a response: the gRPC code name for gRPC calls whose
/// status is in the headers (tonic answers unary errors trailers-only), the
/// HTTP status otherwise.
/// Static strings keep the per-call metric bookkeeping free of allocations.
fn code_label(protocol: Protocol, response: &Response<Body>) -> &'static str {
    if protocol.is_grpc() {
        let code = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(if response.status().is_success() { 0 } else { 2 });
        return grpc_code_name(code);
    }
    match response.status().as_u16() {
        200 => "200",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        429 => "429",
        500 => "500",
        501 => "501",
        503 => "503",
        504 => "504",
        _ => "other",
    }
}

fn grpc_code_name(code: i32) -> &'static str {
    match code {
        0 => "Ok",
        1 => "Cancelled",
        3 => "InvalidArgument",
        4 => "DeadlineExceeded",
        5 => "NotFound",
        6 => "AlreadyExists",
        7 => "PermissionDenied",
        8 => "ResourceExhausted",
        9 => "FailedPrecondition",
        10 => "Aborted",
        11 => "OutOfRange",
        12 => "Unimplemented",
        13 => "Internal",
        14 => "Unavailable",
        15 => "DataLoss",
        16 => "Unauthenticated",
        _ => "Unknown",
    }
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
        let method: &'static str = self
            .known_paths
            .get(request.uri().path())
            .copied()
            .unwrap_or("unmatched");
        let http_method = request.method().clone();
        let request_id = request.headers().get("x-request-id").cloned();
        let span = crate::telemetry::call_span(request.headers(), protocol.label(), method);
        let future = self.inner.call(request);
        // The whole call, access line included, runs in the call span.
        Box::pin(async move {
            let result = future.await;
            if let Ok(response) = &result {
                let elapsed = started.elapsed();
                let code = code_label(protocol, response);
                let protocol = protocol.label();
                metrics::counter!(
                    "tokengate_requests_total",
                    "protocol" => protocol,
                    "method" => method,
                    "code" => code
                )
                .increment(1);
                metrics::histogram!(
                    "tokengate_request_duration_seconds",
                    "protocol" => protocol,
                    "method" => method
                )
                .record(elapsed.as_secs_f64());
                tracing::info!(
                    target: "tokengate::access",
                    request_id = request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or(""),
                    protocol,
                    http_method = %http_method,
                    method,
                    code,
                    latency_ms = elapsed.as_secs_f64() * 1000.0,
                    "call"
                );
            }
            result
        }
        .instrument(span))
    }
}
