//! `grpc_web_framing`: the whole in-process request path (the stack of
//! `tokengate::stack::build`, as `benches/transport.rs` builds it: catch
//! panic, CORS, deadline, body limit, dispatch, tonic-web, the gRPC message
//! limit, the tonic services) fed a gRPC-Web request whose body is the
//! fuzz input.
//!
//! Input: first byte picks binary (`application/grpc-web+proto`) or text
//! (`application/grpc-web-text`, base64), `Domain/get_public_key` or
//! `Token/refresh`, whether a `content-length` is declared, and whether the
//! body streams in small chunks; the rest is the body.
//!
//! Properties: never panics, always answers within the deadline; the answer
//! is HTTP 200 with a well-formed gRPC-Web body (frames complete, at most
//! one trailer frame, last) and exactly one `grpc-status`, in the headers or
//! in the trailer frame; the status is one the service documents for a bad
//! request; OK comes with exactly one message of the method's output type,
//! an error with none; `grpc-message` stays short (echoed ids are cut).

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::BodyExt as _;
use prost::Message as _;
use tokengate::fixture;
use tokengate::proto::core_v1::AuthenticationResponse;
use tokengate::proto::identity_v1::TokenInfo;
use tokengate::stack::AppService;
use tower::ServiceExt as _;

/// `Domain/get_public_key`: a known domain (`d`) answers OK.
pub const GET_PUBLIC_KEY: &str = "/spaceone.api.identity.v1.Domain/get_public_key";
/// `Token/refresh`: without a token it is always refused.
pub const REFRESH: &str = "/spaceone.api.identity.v1.Token/refresh";
/// The stack's `limits.max_body_bytes` (small, so the limits are reachable).
pub const MAX_BODY_BYTES: usize = 1024;

struct Harness {
    runtime: tokio::runtime::Runtime,
    service: AppService,
    _keys: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let keys = tempfile::tempdir().expect("tempdir");
        let service = runtime.block_on(async { app(keys.path()) });
        Harness {
            runtime,
            service,
            _keys: keys,
        }
    })
}

fn app(keys: &std::path::Path) -> AppService {
    let limits = fixture::Limits {
        max_body_bytes: MAX_BODY_BYTES,
        default_timeout: Duration::from_secs(5),
    };
    fixture::stack(keys, limits).expect("fixture stack")
}

/// Checks one input (see the module docs).
pub fn check(data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let text = mode & 1 != 0;
    let path = if mode & 2 == 0 {
        GET_PUBLIC_KEY
    } else {
        REFRESH
    };
    let declare_length = mode & 4 != 0;
    let chunk = if mode & 8 != 0 {
        usize::from(mode >> 4) + 1
    } else {
        usize::MAX
    };
    let content_type = if text {
        "application/grpc-web-text"
    } else {
        "application/grpc-web+proto"
    };
    let mut request = http::Request::post(path)
        .header("content-type", content_type)
        .header("accept", content_type)
        .header("x-grpc-web", "1");
    if declare_length {
        request = request.header("content-length", body.len());
    }
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(chunk.min(body.len().max(1)))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let request = request
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .expect("request");

    let h = harness();
    let (parts, collected) = h.runtime.block_on(async {
        let answer = async {
            let response = h
                .service
                .clone()
                .oneshot(request)
                .await
                .expect("infallible");
            let (parts, body) = response.into_parts();
            let collected = body.collect().await.expect("response body");
            (parts, collected)
        };
        tokio::time::timeout(Duration::from_secs(30), answer)
            .await
            .expect("the service answers")
    });
    assert_eq!(parts.status, http::StatusCode::OK, "{parts:?}");
    let response_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        response_type.starts_with("application/grpc-web"),
        "{response_type:?}"
    );
    let header_status = parts.headers.get("grpc-status").map(|v| {
        (
            v.to_str().expect("ascii").to_owned(),
            parts
                .headers
                .get("grpc-message")
                .map(|m| m.to_str().expect("ascii").to_owned())
                .unwrap_or_default(),
        )
    });
    let raw = collected.to_bytes();
    let body = if response_type.starts_with("application/grpc-web-text") {
        decode_text(&raw)
    } else {
        raw.to_vec()
    };
    let frames = frames(&body);
    let trailers: Vec<&Frame> = frames.iter().filter(|f| f.trailers).collect();
    assert!(trailers.len() <= 1, "at most one trailer frame");
    if !trailers.is_empty() {
        assert!(frames.last().expect("frame").trailers, "trailers come last");
        assert!(
            header_status.is_none(),
            "grpc-status in headers and trailers"
        );
    }
    let trailer_status = trailers.first().map(|t| {
        let text = std::str::from_utf8(&t.payload).expect("trailers are text");
        let mut status = None;
        let mut message = String::new();
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            let (key, value) = line.split_once(':').expect("key:value trailer");
            match key.trim().to_ascii_lowercase().as_str() {
                "grpc-status" => status = Some(value.trim().to_owned()),
                "grpc-message" => message = value.trim().to_owned(),
                _ => {}
            }
        }
        (status.expect("grpc-status in the trailer frame"), message)
    });
    let (status, message) = header_status
        .or(trailer_status)
        .expect("a grpc-status in the headers or the trailer frame");
    let code: i32 = status.parse().expect("numeric grpc-status");
    assert!(
        message.len() <= 1024,
        "grpc-message of {} bytes",
        message.len()
    );
    let messages: Vec<&Frame> = frames.iter().filter(|f| !f.trailers).collect();
    match code {
        0 => {
            assert_eq!(messages.len(), 1, "OK carries one message");
            let payload = &messages[0].payload;
            if path == GET_PUBLIC_KEY {
                AuthenticationResponse::decode(payload.as_slice()).expect("AuthenticationResponse");
            } else {
                TokenInfo::decode(payload.as_slice()).expect("TokenInfo");
            }
        }
        // INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED (message limit),
        // UNIMPLEMENTED (compressed frames: no compression is offered),
        // UNAUTHENTICATED (refresh without a token).
        3 | 5 | 8 | 12 | 16 => assert!(messages.is_empty(), "an error carries no message"),
        // INTERNAL and DATA_LOSS only as tonic's and tonic-web's own answers
        // to undecodable input (bad base64, bad protobuf, bad framing):
        // third-party texts, never one of our handlers failing.
        13 | 15 => {
            let decoded = percent_decode(&message);
            assert!(
                ALLOWED_INTERNAL.iter().any(|m| decoded.starts_with(m)),
                "unexpected INTERNAL: {decoded:?}"
            );
            assert!(messages.is_empty(), "an error carries no message");
        }
        other => panic!("unexpected grpc-status {other}: {message:?}"),
    }
}

/// The INTERNAL / DATA_LOSS texts tonic and tonic-web give for undecodable
/// input (gRPC maps protobuf parse errors to INTERNAL); never our handlers.
const ALLOWED_INTERNAL: &[&str] = &[
    "tonic-web: ",
    "failed to decode Protobuf message",
    "protocol error: ",
    "Unexpected EOF decoding stream.",
    "Missing request message.",
];

struct Frame {
    trailers: bool,
    payload: Vec<u8>,
}

fn frames(mut body: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    while !body.is_empty() {
        assert!(body.len() >= 5, "truncated frame header");
        let flags = body[0];
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        assert!(body.len() >= 5 + len, "truncated frame");
        out.push(Frame {
            trailers: flags & 0x80 != 0,
            payload: body[5..5 + len].to_vec(),
        });
        body = &body[5 + len..];
    }
    out
}

/// grpc-web-text answers are base64 per chunk, so padding may appear in
/// the middle: decode four characters at a time.
fn decode_text(raw: &[u8]) -> Vec<u8> {
    assert!(raw.len().is_multiple_of(4), "base64 in whole quanta");
    raw.chunks(4)
        .flat_map(|q| {
            base64::engine::general_purpose::STANDARD
                .decode(q)
                .expect("base64 answer")
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
