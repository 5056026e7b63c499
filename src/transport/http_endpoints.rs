//! Plain HTTP endpoints on the same port: liveness, readiness, metrics,
//! JWKS and the OpenAPI document.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http::{StatusCode, header};
use metrics_exporter_prometheus::PrometheusHandle;
use tokengate_core::TokenService;

use crate::lifecycle::Lifecycle;

/// What the endpoints read.
#[derive(Clone)]
pub struct EndpointState {
    /// The core service (keys, store).
    pub core: Arc<TokenService>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Whether the server is draining.
    pub lifecycle: Lifecycle,
    /// `/openapi.json`, its bounds resolved against the running
    /// configuration ([`crate::transport::openapi`]).
    pub openapi: Bytes,
}

/// The paths served here (for metric labels).
pub const PATHS: [&str; 5] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/.well-known/jwks.json",
    "/openapi.json",
];

/// The router of these endpoints.
pub fn router(state: EndpointState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/openapi.json", get(openapi))
        .with_state(state)
}

async fn healthz() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

async fn readyz(State(state): State<EndpointState>) -> Response {
    if state.lifecycle.is_draining() {
        return not_ready("draining");
    }
    match state.core.readiness().await {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"ready"}"#,
        )
            .into_response(),
        Err(reason) => not_ready(&reason),
    }
}

fn not_ready(reason: &str) -> Response {
    let body = serde_json::json!({"status": "not ready", "reason": reason}).to_string();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn metrics(State(state): State<EndpointState>) -> Response {
    crate::telemetry::record_dropped_log_lines();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn jwks(State(state): State<EndpointState>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/jwk-set+json"),
            (header::CACHE_CONTROL, "public, max-age=60"),
        ],
        state.core.jwks().to_string(),
    )
        .into_response()
}

async fn openapi(State(state): State<EndpointState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi,
    )
        .into_response()
}
