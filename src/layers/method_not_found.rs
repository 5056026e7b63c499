//! Answers a gRPC call of a method this server does not serve — an unknown
//! service, or a method of a listed service that tokengate leaves out (its
//! `Domain` serves `get_public_key` only, where SpaceONE's has `list`,
//! `get`, …) — with UNIMPLEMENTED and a message naming the method asked for
//! and the ones served. tonic's own answer carries an empty message, which
//! leaves a SpaceONE client built from the full protos guessing.
//!
//! Sits in front of the tonic services, inside gRPC-Web decoding, so both
//! native gRPC and gRPC-Web get the same answer; the list of served methods
//! comes from the descriptors of the routed services
//! ([`crate::transport::reflection::Descriptors::methods_of`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use http::{Request, Response};
use tokengate_core::TokenError;
use tower::{Layer, Service};

use crate::transport::status::to_status;

/// The longest path echoed back: the path is the client's, and the answer
/// travels in a header.
const MAX_ECHOED_PATH: usize = 256;

/// See the module docs.
#[derive(Debug, Clone)]
pub struct MethodNotFoundLayer {
    served: Arc<Served>,
}

#[derive(Debug)]
struct Served {
    /// `/package.Service/method` of every served method.
    paths: HashSet<String>,
    /// `package.Service/method, …`, in the order given.
    listing: String,
}

impl MethodNotFoundLayer {
    /// `methods`: the gRPC paths served (`/package.Service/method`).
    pub fn new(methods: impl IntoIterator<Item = String>) -> Self {
        let methods: Vec<String> = methods.into_iter().collect();
        let listing = methods
            .iter()
            .map(|m| m.trim_start_matches('/'))
            .collect::<Vec<_>>()
            .join(", ");
        Self {
            served: Arc::new(Served {
                paths: methods.into_iter().collect(),
                listing,
            }),
        }
    }
}

impl Served {
    fn not_found(&self, path: &str) -> tonic::Status {
        // A request path is ASCII (http checks it); the boundary check
        // keeps the cut safe whatever it is given.
        let mut end = path.len().min(MAX_ECHOED_PATH);
        while !path.is_char_boundary(end) {
            end -= 1;
        }
        let cut = if end < path.len() { "…" } else { "" };
        to_status(&TokenError::MethodNotFound {
            path: format!("{}{cut}", &path[..end]),
            provides: self.listing.clone(),
        })
    }
}

impl<S> Layer<S> for MethodNotFoundLayer {
    type Service = MethodNotFound<S>;
    fn layer(&self, inner: S) -> Self::Service {
        MethodNotFound {
            inner,
            served: Arc::clone(&self.served),
        }
    }
}

/// See [`MethodNotFoundLayer`].
#[derive(Debug, Clone)]
pub struct MethodNotFound<S> {
    inner: S,
    served: Arc<Served>,
}

impl<S, B, ResBody> Service<Request<B>> for MethodNotFound<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<ResBody>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let path = request.uri().path();
        if self.served.paths.contains(path) {
            Either::Right(self.inner.call(request))
        } else {
            Either::Left(ready(Ok(self.served.not_found(path).into_http())))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use prost::Message as _;
    use tower::ServiceExt as _;

    use super::*;

    fn layer() -> MethodNotFoundLayer {
        MethodNotFoundLayer::new([
            "/a.v1.Svc/get".to_owned(),
            "/a.v1.Svc/put".to_owned(),
            "/grpc.health.v1.Health/Check".to_owned(),
        ])
    }

    async fn call(path: &str) -> Response<String> {
        let inner = tower::service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new("served".to_owned()))
        });
        let request = Request::post(path).body(()).expect("request");
        layer()
            .layer(inner)
            .oneshot(request)
            .await
            .expect("infallible")
    }

    #[tokio::test]
    async fn served_methods_pass_through() {
        assert_eq!(call("/a.v1.Svc/put").await.into_body(), "served");
        assert_eq!(
            call("/grpc.health.v1.Health/Check").await.into_body(),
            "served"
        );
    }

    #[tokio::test]
    async fn others_are_unimplemented_with_what_is_served() {
        for path in ["/a.v1.Svc/list", "/b.v1.Other/get", "/", "/a.v1.Svc/get/x"] {
            let response = call(path).await;
            assert!(response.body().is_empty(), "{path} not passed on");
            let status = tonic::Status::from_header_map(response.headers()).expect("a status");
            assert_eq!(status.code(), tonic::Code::Unimplemented, "{path}");
            assert_eq!(
                status.message(),
                format!(
                    "ERROR_METHOD_NOT_FOUND: Method not found: {path}. This server provides: \
                     a.v1.Svc/get, a.v1.Svc/put, grpc.health.v1.Health/Check."
                )
            );
            let details =
                crate::proto::google::rpc::Status::decode(status.details()).expect("details");
            let info =
                crate::proto::google::rpc::ErrorInfo::decode(details.details[0].value.as_ref())
                    .expect("an ErrorInfo");
            assert_eq!(info.reason, "ERROR_METHOD_NOT_FOUND");
        }
    }

    #[tokio::test]
    async fn a_long_path_is_cut_in_the_answer() {
        let path = format!("/{}", "x".repeat(10_000));
        let status = tonic::Status::from_header_map(call(&path).await.headers()).expect("status");
        assert!(status.message().len() < 500, "{}", status.message());
        assert!(status.message().contains("xx…. This server provides"));
    }
}
