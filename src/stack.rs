//! The whole request path in one place: the middleware every protocol
//! shares (outermost first), then the protocol dispatch.
//!
//! ```text
//! classify protocol → catch panic → request id → access log + metrics
//!   → CORS → deadline → body limit → dispatch
//!       ├─ gRPC       → method not found → message limit → tonic services
//!       ├─ gRPC-Web   → tonic-web → method not found → message limit → tonic services
//!       └─ REST/HTTP  → routes from google.api.http + endpoints
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use futures::future::BoxFuture;
use http::{Request, Response};
use tokengate_core::TokenService;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic_web::GrpcWebLayer;
use tower::util::BoxCloneSyncService;
use tower::{Layer as _, Service, ServiceBuilder, ServiceExt as _};
use tower_http::ServiceBuilderExt as _;

use crate::layers::access_log::AccessLogLayer;
use crate::layers::body_limit::BodyLimitLayer;
use crate::layers::catch_panic::CatchPanicLayer;
use crate::layers::classify_protocol::ClassifyProtocolLayer;
use crate::layers::cors::cors_layer;
use crate::layers::deadline::DeadlineLayer;
use crate::layers::grpc_message_limit::{GrpcMessageLimit, GrpcMessageLimitLayer};
use crate::layers::method_not_found::{MethodNotFound, MethodNotFoundLayer};
use crate::proto::identity_v1::domain_server::DomainServer;
use crate::proto::identity_v1::token_server::TokenServer;
use crate::proto::session_v1::session_server::SessionServer;
use crate::transport::grpc::GrpcAdapter;
use crate::transport::http_endpoints::{self, EndpointState};
use crate::transport::protocol::Protocol;
use crate::transport::{reflection, rest};

pub use crate::server::AppService;

/// What the stack needs.
pub struct StackSettings {
    /// Exact browser origins.
    pub allowed_origins: Vec<String>,
    /// Largest body / message.
    pub max_body_bytes: usize,
    /// Deadline for calls without `grpc-timeout`.
    pub default_timeout: Duration,
    /// Longest deadline a `grpc-timeout` may ask for.
    pub max_timeout: Duration,
    /// Header a trusted proxy sets with the client address.
    pub client_ip_header: Option<String>,
}

/// Builds the service for every connection.
pub fn build(
    core: Arc<TokenService>,
    endpoints: EndpointState,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    settings: &StackSettings,
) -> Result<AppService, tonic_reflection::server::Error> {
    let adapter = GrpcAdapter::new(core, settings.client_ip_header.as_deref());
    // Reflection serves the files under their upstream names (see
    // `transport::reflection`).
    let descriptors = reflection::descriptors()?;
    let routes = GrpcRoutes::default()
        .add(TokenServer::new(adapter.clone()))
        .add(DomainServer::new(adapter.clone()))
        .add(SessionServer::new(adapter.clone()))
        .add(health)
        .add(descriptors.build_v1()?)
        .add(descriptors.build_v1alpha()?);
    // Every method of the routed services; any other path is answered
    // before it reaches them.
    let served = descriptors.methods_of(&routes.services)?;
    let grpc = ServiceBuilder::new()
        .layer(MethodNotFoundLayer::new(served))
        .layer(GrpcMessageLimitLayer::new(settings.max_body_bytes))
        .service(routes.routes.prepare());
    let grpc_web = GrpcWebLayer::new().layer(grpc.clone());

    let mut known_paths: Vec<&'static str> = rest::rest_routes::<GrpcAdapter>()
        .iter()
        .flat_map(|r| [r.binding.path, r.binding.grpc_method])
        .collect();
    known_paths.extend(http_endpoints::PATHS);
    let rest = rest::router(Arc::new(adapter), settings.max_body_bytes)
        .merge(http_endpoints::router(endpoints));

    let dispatch = Dispatch {
        grpc,
        grpc_web,
        rest,
    };
    let service = ServiceBuilder::new()
        .map_response_body(Body::new)
        .layer(ClassifyProtocolLayer)
        .layer(CatchPanicLayer)
        .set_x_request_id(RequestIds::new())
        .propagate_x_request_id()
        .layer(AccessLogLayer::new(known_paths))
        .layer(cors_layer(&settings.allowed_origins))
        .layer(DeadlineLayer::new(
            settings.default_timeout,
            settings.max_timeout,
        ))
        .layer(BodyLimitLayer::new(settings.max_body_bytes))
        .service(dispatch);
    Ok(BoxCloneSyncService::new(service))
}

/// The whole stack around `core`, with a health service and metrics
/// handle of its own, for driving it in-process (benchmarks, fuzzing): what
/// `serve` builds, minus the listener and the lifecycle it shares.
/// `openapi` is the document `/openapi.json` answers (see
/// [`crate::transport::openapi`]).
#[cfg(feature = "fixture")]
pub fn in_process(
    core: Arc<TokenService>,
    settings: &StackSettings,
    openapi: bytes::Bytes,
) -> Result<AppService, tonic_reflection::server::Error> {
    let (_, health) = tonic_health::server::health_reporter();
    let endpoints = EndpointState {
        core: Arc::clone(&core),
        metrics: crate::telemetry::metrics_handle(),
        lifecycle: crate::lifecycle::Lifecycle::new(),
        openapi,
    };
    build(core, endpoints, health, settings)
}

/// tonic's routes and the names of the services they hold, kept together
/// so that the list of served methods cannot miss a routed service.
#[derive(Default)]
struct GrpcRoutes {
    routes: Routes,
    services: Vec<&'static str>,
}

impl GrpcRoutes {
    fn add<S>(mut self, service: S) -> Self
    where
        S: Service<http::Request<tonic::body::Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.services.push(S::NAME);
        self.routes = self.routes.add_service(service);
        self
    }
}

/// Request ids: a random per-process prefix and a counter. Unique across
/// replicas and restarts, and far cheaper than a random UUID per call (one
/// `getrandom` syscall each).
#[derive(Clone)]
struct RequestIds {
    prefix: u32,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl RequestIds {
    fn new() -> Self {
        Self {
            prefix: rand::random(),
            next: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        }
    }
}

impl tower_http::request_id::MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<tower_http::request_id::RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut value = http::HeaderValue::from_bytes(&format_request_id(self.prefix, n)).ok()?;
        // Unique per call: HPACK would insert every one into the
        // connection's table and evict the entries worth keeping; a
        // never-indexed literal costs the same bytes and no table churn.
        value.set_sensitive(true);
        Some(tower_http::request_id::RequestId::new(value))
    }
}

/// `pppppppp-nnnnnnnnnnnn`: the prefix and the low 48 bits of the counter
/// in lower-case hex, written without the formatting machinery (this runs
/// on every call).
fn format_request_id(prefix: u32, n: u64) -> [u8; 21] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [b'-'; 21];
    for (i, slot) in id[..8].iter_mut().enumerate() {
        *slot = HEX[((prefix >> (28 - 4 * i)) & 0xf) as usize];
    }
    for (i, slot) in id[9..].iter_mut().enumerate() {
        *slot = HEX[((n >> (44 - 4 * i)) & 0xf) as usize];
    }
    id
}

/// Sends each request to the service of its protocol.
#[derive(Clone)]
struct Dispatch<W> {
    grpc: MethodNotFound<GrpcMessageLimit<Routes>>,
    grpc_web: W,
    rest: axum::Router,
}

impl<W> Service<Request<Body>> for Dispatch<W>
where
    W: Service<Request<Body>, Response = Response<tonic::body::Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    W::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call drives a clone to readiness (`oneshot`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        match Protocol::of(&request) {
            Protocol::Grpc => {
                let grpc = self.grpc.clone();
                Box::pin(async move { Ok(grpc.oneshot(request).await?.map(Body::new)) })
            }
            Protocol::GrpcWeb | Protocol::GrpcWebText => {
                let web = self.grpc_web.clone();
                Box::pin(async move { Ok(web.oneshot(request).await?.map(Body::new)) })
            }
            Protocol::Rest => {
                let rest = self.rest.clone();
                Box::pin(async move { rest.oneshot(request).await })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::format_request_id;

    #[test]
    fn request_ids_are_prefix_dash_counter_in_hex() {
        assert_eq!(
            &format_request_id(0x0123_abcd, 0x42),
            b"0123abcd-000000000042"
        );
        assert_eq!(
            &format_request_id(u32::MAX, 0xfff_ffff_ffff_ffff),
            b"ffffffff-ffffffffffff",
            "the counter keeps its low 48 bits"
        );
        assert_eq!(
            format_request_id(7, 1).to_vec(),
            format!("{:08x}-{:012x}", 7, 1).into_bytes()
        );
    }
}
