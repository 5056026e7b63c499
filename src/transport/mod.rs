//! Transport adapters around the core service. Each one only translates:
//! native gRPC and gRPC-Web share the tonic service in [`grpc`]; REST calls
//! the same generated service traits through [`rest`], with routes derived
//! from the `google.api.http` annotations.

pub mod grpc;
pub mod http_endpoints;
pub mod openapi;
pub mod protocol;
pub mod reflection;
pub mod rest;
pub mod status;
pub mod unknown_fields;
