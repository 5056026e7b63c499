//! Which of the three protocols a request speaks, and how to answer it with
//! a status before it reaches a service (limits, deadlines).

use axum::body::Body;
use http::{HeaderValue, Request, Response, header};

use tokengate_core::TokenError;

use crate::transport::status::{rest_error_of, to_status};

/// The protocol of a request, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `application/grpc[+proto]`.
    Grpc,
    /// `application/grpc-web[+proto]`.
    GrpcWeb,
    /// `application/grpc-web-text[+proto]` (base64).
    GrpcWebText,
    /// Everything else: REST/JSON and plain HTTP endpoints.
    Rest,
}

impl Protocol {
    /// The protocol of a request: classified once, by the outermost layer
    /// ([`crate::layers::classify_protocol`]), and read back from the
    /// request's extensions by every layer after it.
    pub fn of<B>(request: &Request<B>) -> Self {
        request
            .extensions()
            .get::<Protocol>()
            .copied()
            .unwrap_or_else(|| Self::classify(request))
    }

    /// Classifies a request by its content type.
    pub fn classify<B>(request: &Request<B>) -> Self {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if content_type.starts_with("application/grpc-web-text") {
            Protocol::GrpcWebText
        } else if content_type.starts_with("application/grpc-web") {
            Protocol::GrpcWeb
        } else if content_type.starts_with("application/grpc") {
            Protocol::Grpc
        } else {
            Protocol::Rest
        }
    }

    /// A short label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::GrpcWeb | Protocol::GrpcWebText => "grpc-web",
            Protocol::Rest => "rest",
        }
    }

    /// Whether the request is gRPC or gRPC-Web.
    pub fn is_grpc(self) -> bool {
        !matches!(self, Protocol::Rest)
    }

    /// Answers `err` in this protocol's shape: a trailers-only gRPC
    /// response, or the REST JSON error.
    pub fn error_response(self, err: &TokenError) -> Response<Body> {
        let content_type = match self {
            Protocol::Rest => return rest_error_of(err),
            Protocol::Grpc => "application/grpc",
            Protocol::GrpcWeb => "application/grpc-web+proto",
            Protocol::GrpcWebText => "application/grpc-web-text+proto",
        };
        let mut response = to_status(err).into_http::<Body>();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}
