//! Per-protocol cost without the network: `Domain.get_public_key` sent
//! through the whole in-process request path (middleware stack, dispatch,
//! tonic / tonic-web / REST transcoding, response body collected) as native
//! gRPC, gRPC-Web binary, gRPC-Web text and REST; plus REST JSON transcoding
//! of a login request on its own.

use std::hint::black_box;

use axum::body::Body;
use base64::Engine as _;
use bytes::{BufMut as _, Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt as _;
use prost::Message as _;
use tokengate::fixture;
use tokengate::proto::core_v1::AuthenticationRequest;
use tokengate::proto::identity_v1::IssueTokenRequest;
use tokengate::stack::AppService;
use tower::ServiceExt as _;

const LOGIN: &str = r#"{"domain_id":"domain-1a2b3c","user_id":"alice@example.com","credentials":{"password":"correct horse battery"},"timeout":600,"refresh_count":3}"#;

fn app(keys: &std::path::Path) -> AppService {
    fixture::stack(keys, fixture::Limits::default()).expect("fixture stack")
}

fn grpc_frame(message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(message.len() + 5);
    out.put_u8(0);
    out.put_u32(message.len() as u32);
    out.put_slice(message);
    out.freeze()
}

fn request(path: &str, content_type: &str, body: Bytes) -> http::Request<Body> {
    http::Request::post(path)
        .header("content-type", content_type)
        .header("accept", content_type)
        .header("te", "trailers")
        .body(Body::from(body))
        .expect("request")
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tmp = tempfile::tempdir().expect("tempdir");
    let service = runtime.block_on(async { app(tmp.path()) });
    let message = AuthenticationRequest {
        domain_id: fixture::DOMAIN_ID.into(),
    }
    .encode_to_vec();
    let framed = grpc_frame(&message);
    let text = Bytes::from(base64::engine::general_purpose::STANDARD.encode(&framed));
    let grpc_path = "/spaceone.api.identity.v1.Domain/get_public_key";
    let cases: [(&str, &str, &str, Bytes); 4] = [
        ("grpc", grpc_path, "application/grpc", framed.clone()),
        ("grpc-web", grpc_path, "application/grpc-web+proto", framed),
        (
            "grpc-web-text",
            grpc_path,
            "application/grpc-web-text",
            text,
        ),
        (
            "rest",
            "/identity/v1/domain/get-public-key",
            "application/json",
            Bytes::from_static(br#"{"domain_id":"d"}"#),
        ),
    ];
    for (name, path, content_type, body) in cases {
        c.bench_function(&format!("in-process get_public_key/{name}"), |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let response = service
                        .clone()
                        .oneshot(request(path, content_type, body.clone()))
                        .await
                        .expect("infallible");
                    assert_eq!(response.status(), 200);
                    response
                        .into_body()
                        .collect()
                        .await
                        .expect("body")
                        .to_bytes()
                })
            })
        });
    }
    c.bench_function("rest/decode IssueTokenRequest JSON", |b| {
        b.iter(|| serde_json::from_str::<IssueTokenRequest>(black_box(LOGIN)).expect("decode"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
