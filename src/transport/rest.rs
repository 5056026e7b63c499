//! REST/JSON transcoding. Routes come from the `google.api.http`
//! annotations (see `build.rs`): each generated handler decodes the JSON
//! body into the method's input message (proto3 JSON: proto and JSON field
//! names accepted, unknown fields ignored in every message — see
//! [`super::unknown_fields`]), calls the generated tonic
//! service trait, and renders the output with proto field names.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::routing::{MethodFilter, MethodRouter};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokengate_core::TokenError;
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::peer::{ClientFault, Peer};
use crate::transport::grpc::GrpcAdapter;
use crate::transport::protocol::Protocol;
use crate::transport::status::{rest_error, rest_error_of, to_status};
use crate::transport::unknown_fields::IgnoreUnknownFields;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/rest_routes.rs"));
}

pub use generated::rest_routes;

/// One annotated route.
#[derive(Debug, Clone, Copy)]
pub struct RestBinding {
    /// GET, POST, ...
    pub http_method: &'static str,
    /// The path template.
    pub path: &'static str,
    /// The gRPC method path, e.g. `/spaceone.api.identity.v1.Token/issue`.
    pub grpc_method: &'static str,
}

/// What a generated handler returns: the JSON body, or a status.
pub type RestFuture = Pin<Box<dyn Future<Output = Result<Bytes, Status>> + Send>>;

/// A route and the generated function that serves it.
pub struct RestRoute<S> {
    /// Where it is served.
    pub binding: RestBinding,
    /// Decode, call the service trait, encode.
    pub handler: fn(Arc<S>, RestCall) -> RestFuture,
}

/// One REST request as the generated handlers see it.
#[derive(Debug)]
pub struct RestCall {
    headers: HeaderMap,
    body: Bytes,
    peer: Option<Peer>,
}

impl RestCall {
    /// Decodes the body (any content type; empty means `{}`) into `T` and
    /// wraps it in a tonic request whose metadata holds the HTTP headers.
    pub fn decode<T: DeserializeOwned>(self) -> Result<tonic::Request<T>, Status> {
        let message: T = decode_json_body(&self.body)?;
        let mut request = tonic::Request::new(message);
        *request.metadata_mut() = MetadataMap::from_headers(self.headers);
        if let Some(peer) = self.peer {
            request.extensions_mut().insert(peer);
        }
        request.extensions_mut().insert(Protocol::Rest);
        Ok(request)
    }

    /// Renders a response message as proto3 JSON with proto field names.
    pub fn encode<T: Serialize>(response: tonic::Response<T>) -> Result<Bytes, Status> {
        serde_json::to_vec(response.get_ref())
            .map(Bytes::from)
            .map_err(|_| {
                to_status(&TokenError::Internal {
                    detail: "cannot encode response",
                })
            })
    }
}

/// Decodes a REST body into `T` exactly as every generated handler does
/// (any content type; an empty or all-whitespace body means `{}`; unknown
/// fields skipped in every message, the well-known types' included; trailing
/// data refused): INVALID_ARGUMENT `ERROR_INVALID_PARAMETER` naming the
/// offending key otherwise. Public for the fuzz targets (`fuzz/`).
pub fn decode_json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, Status> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let message: T =
        serde_path_to_error::deserialize(IgnoreUnknownFields(&mut de)).map_err(|e| {
            let path = e.path().to_string();
            let key = if path == "." || path.is_empty() {
                "body".to_owned()
            } else if path.chars().count() > MAX_KEY_CHARS {
                // Struct keys are the client's: as long as the body allows.
                let mut cut: String = path.chars().take(MAX_KEY_CHARS).collect();
                cut.push('…');
                cut
            } else {
                path
            };
            to_status(&TokenError::InvalidParameter {
                key: key.into(),
                reason: without_values(&e.inner().to_string()),
            })
        })?;
    de.end().map_err(|e| {
        to_status(&TokenError::InvalidParameter {
            key: "body".into(),
            reason: without_values(&e.to_string()),
        })
    })?;
    Ok(message)
}

/// Longest key path echoed back (the same bound as echoed ids).
const MAX_KEY_CHARS: usize = 128;

/// Longest decode-error reason echoed back (key names chosen by the client
/// can be as long as the body).
const MAX_REASON_CHARS: usize = 200;

/// serde's error text with every quoted value replaced by `"…"`: a field of
/// the wrong type may be a password (`"credentials": "hunter2"`), and an
/// answer, or a log line made from it, must not carry it back. Cut to
/// [`MAX_REASON_CHARS`].
fn without_values(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len().min(MAX_REASON_CHARS));
    let mut chars = reason.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            // Skip to the closing quote; `\"` inside is escaped.
            while let Some(inner) = chars.next() {
                match inner {
                    '\\' => {
                        chars.next();
                    }
                    '"' => break,
                    _ => {}
                }
            }
            out.push_str("\"…\"");
        } else {
            out.push(c);
        }
    }
    if out.chars().count() > MAX_REASON_CHARS {
        out = out.chars().take(MAX_REASON_CHARS).collect();
        out.push('…');
    }
    out
}

/// The REST router: every annotated route, plus JSON 404 and 405 answers in
/// the google.rpc.Status shape.
pub fn router(service: Arc<GrpcAdapter>, max_body_bytes: usize) -> axum::Router {
    let mut by_path: BTreeMap<&'static str, (MethodRouter, Vec<&'static str>)> = BTreeMap::new();
    for route in rest_routes::<GrpcAdapter>() {
        let binding = route.binding;
        let handler = route.handler;
        let service = Arc::clone(&service);
        let filter = Method::from_bytes(binding.http_method.as_bytes())
            .ok()
            .and_then(|m| MethodFilter::try_from(m).ok())
            .unwrap_or(MethodFilter::POST);
        let method_router = axum::routing::on(filter, move |request: Request<Body>| {
            serve(Arc::clone(&service), handler, request, max_body_bytes)
        });
        let entry = by_path
            .entry(binding.path)
            .or_insert_with(|| (MethodRouter::new(), Vec::new()));
        entry.0 = std::mem::take(&mut entry.0).merge(method_router);
        entry.1.push(binding.http_method);
    }
    let mut router = axum::Router::new();
    for (path, (method_router, methods)) in by_path {
        let allow = methods.join(", ");
        router = router.route(
            path,
            method_router
                .fallback(move |request: Request<Body>| method_not_allowed(request, allow.clone())),
        );
    }
    router.fallback(not_found)
}

async fn serve(
    service: Arc<GrpcAdapter>,
    handler: fn(Arc<GrpcAdapter>, RestCall) -> RestFuture,
    request: Request<Body>,
    max_body_bytes: usize,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, max_body_bytes).await {
        Ok(body) => body,
        Err(e) => {
            // Only a body past the limit is the client's fault; one cut
            // short (the client went away) is not.
            let past_the_limit = std::error::Error::source(&e)
                .is_some_and(|inner| inner.is::<http_body_util::LengthLimitError>());
            if past_the_limit {
                Peer::report_for(&parts.extensions, ClientFault::BodyTooLarge);
            }
            return rest_error_of(&TokenError::RequestTooLarge { max_body_bytes });
        }
    };
    let call = RestCall {
        peer: parts.extensions.get::<Peer>().cloned(),
        headers: parts.headers,
        body,
    };
    match handler(service, call).await {
        Ok(json) => {
            let mut response = Response::new(Body::from(json));
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(status) => rest_error(&status),
    }
}

async fn not_found(request: Request<Body>) -> Response<Body> {
    rest_error_of(&TokenError::UnknownPath {
        path: request.uri().path().to_owned(),
    })
}

async fn method_not_allowed(request: Request<Body>, allow: String) -> Response<Body> {
    let mut response = rest_error_of(&TokenError::MethodNotAllowed {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
    });
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(http::header::ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_never_echo_values() {
        let refused = decode_json_body::<crate::proto::identity_v1::IssueTokenRequest>(
            br#"{"user_id": "u", "credentials": "hunter2 \" still secret"}"#,
        )
        .expect_err("credentials must be an object");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(
            !refused.message().contains("hunter2"),
            "{}",
            refused.message()
        );
        assert!(
            !refused.message().contains("secret"),
            "{}",
            refused.message()
        );
        assert!(
            refused.message().contains("key = credentials"),
            "{}",
            refused.message()
        );

        let long_key = format!(r#"{{"credentials": {{"{}": 1e999}}}}"#, "k".repeat(10_000));
        let refused =
            decode_json_body::<crate::proto::identity_v1::IssueTokenRequest>(long_key.as_bytes())
                .expect_err("a number out of range");
        assert!(refused.message().len() < 600, "{}", refused.message());
    }

    #[test]
    fn without_values_keeps_the_shape_of_the_reason() {
        assert_eq!(
            without_values(r#"invalid type: string "pw", expected a map at line 1 column 9"#),
            r#"invalid type: string "…", expected a map at line 1 column 9"#
        );
        assert_eq!(without_values("unknown field `x`"), "unknown field `x`");
        assert_eq!(without_values(r#"a "b\"c" d"#), r#"a "…" d"#);
    }
}
