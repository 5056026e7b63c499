//! Deadlines: a gRPC or gRPC-Web call's `grpc-timeout` is honoured up to the
//! server's maximum; other calls (REST, or no `grpc-timeout`) get the server
//! default. An expired call answers DEADLINE_EXCEEDED (504 over REST).
//!
//! The maximum matters for more than slow handlers: the deadline also bounds
//! reading the request body, so without it a client announcing
//! `grpc-timeout: 99999999H` and then sending its body one byte a day would
//! hold a connection (and a `server.max_connections` slot) forever.

use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use futures::future::BoxFuture;
use http::{Request, Response};
use tokengate_core::TokenError;
use tower::{Layer, Service};

use crate::transport::protocol::Protocol;

/// Adds a deadline to every call.
#[derive(Debug, Clone)]
pub struct DeadlineLayer {
    default: Duration,
    max: Duration,
}

impl DeadlineLayer {
    /// `default` applies when the client names no deadline; no call gets
    /// more than `max`.
    pub fn new(default: Duration, max: Duration) -> Self {
        Self {
            default: default.min(max),
            max,
        }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            default: self.default,
            max: self.max,
        }
    }
}

/// See [`DeadlineLayer`].
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    default: Duration,
    max: Duration,
}

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (H M S m u n).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The deadline of one call: its `grpc-timeout` up to `max` for gRPC and
/// gRPC-Web, `default` otherwise. REST has no deadline header of its own; a
/// stray `grpc-timeout` there is not a deadline the client agreed to.
fn effective_deadline(
    protocol: Protocol,
    grpc_timeout: Option<&http::HeaderValue>,
    default: Duration,
    max: Duration,
) -> Duration {
    let requested = match protocol {
        Protocol::Rest => None,
        _ => grpc_timeout
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout),
    };
    requested.map_or(default, |d| d.min(max))
}

impl<S, B> Service<Request<B>> for Deadline<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let protocol = Protocol::of(&request);
        let deadline = effective_deadline(
            protocol,
            request.headers().get("grpc-timeout"),
            self.default,
            self.max,
        );
        let future = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(deadline, future).await {
                Ok(result) => result,
                Err(_) => Ok(protocol.error_response(&TokenError::DeadlineExceeded)),
            }
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn grpc_timeout_is_capped_and_ignored_over_rest() {
        let (default, max) = (Duration::from_secs(10), Duration::from_secs(60));
        let huge = http::HeaderValue::from_static("99999999H");
        let short = http::HeaderValue::from_static("250m");
        let deadline = |p, v| effective_deadline(p, v, default, max);
        assert_eq!(deadline(Protocol::Grpc, Some(&huge)), max);
        assert_eq!(deadline(Protocol::GrpcWeb, Some(&huge)), max);
        assert_eq!(
            deadline(Protocol::Grpc, Some(&short)),
            Duration::from_millis(250)
        );
        assert_eq!(deadline(Protocol::Grpc, None), default);
        assert_eq!(deadline(Protocol::Rest, Some(&short)), default);
        assert_eq!(deadline(Protocol::Rest, Some(&huge)), default);
    }
    use super::*;

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("5x"), None);
    }
}
