//! `grpc_frame_limit`: our own gRPC framing reader,
//! `tokengate::layers::grpc_message_limit` (it reads the 5-byte length
//! prefixes as frames stream in and refuses a message above the limit
//! before it is buffered), driven with a body split into chunks at
//! fuzzer-chosen points and compared with a plain reference reader.
//!
//! Input: `[limit, n, n chunk sizes (0..=32 each, cycled), body...]`.
//!
//! Properties: never panics; however the body is chunked, the layer refuses
//! it (RESOURCE_EXHAUSTED) exactly when some length prefix exceeds the
//! limit, after passing through every chunk before the one completing that
//! prefix unchanged; otherwise every byte passes through unchanged.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::{BodyExt as _, StreamBody};
use tokengate::layers::grpc_message_limit::{GrpcMessageLimitLayer, LimitedFrames};
use tower::{Layer as _, ServiceExt as _};

type Frame = http_body::Frame<Bytes>;
type Chunks = StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame, Infallible>>>>;

/// Checks one input (see the module docs).
pub fn check(data: &[u8]) {
    let [limit, n, rest @ ..] = data else {
        return;
    };
    let limit = usize::from(*limit);
    let n = usize::from(*n % 8).min(rest.len());
    let (sizes, body) = rest.split_at(n);
    let sizes: Vec<usize> = sizes.iter().map(|s| usize::from(*s % 33)).collect();
    let chunks = split(body, &sizes);

    let expected = reference(body, limit).map(|offending| {
        // Chunks that end before the prefix is complete pass through.
        let mut passed = 0;
        for c in &chunks {
            if passed + c.len() >= offending {
                break;
            }
            passed += c.len();
        }
        passed
    });

    let inner = tower::service_fn(|request: http::Request<LimitedFrames<Chunks>>| async move {
        let mut body = request.into_body();
        let mut seen = Vec::new();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let Some(data) = frame.data_ref() {
                        seen.extend_from_slice(data);
                    }
                }
                Err(e) => return Ok::<_, Infallible>((seen, Some(e))),
            }
        }
        Ok((seen, None))
    });
    let service = GrpcMessageLimitLayer::new(limit).layer(inner);
    let frames: Vec<Result<Frame, Infallible>> = chunks
        .iter()
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let request = http::Request::new(StreamBody::new(futures::stream::iter(frames)));
    let (seen, error) = futures::executor::block_on(service.oneshot(request)).expect("infallible");
    match expected {
        None => {
            assert!(
                error.is_none(),
                "refused a body within the limit: {error:?}"
            );
            assert_eq!(seen, body, "bytes pass through unchanged");
        }
        Some(passed) => {
            let error = error.expect("a length prefix above the limit is refused");
            let status = error
                .downcast_ref::<tonic::Status>()
                .expect("the refusal is a Status");
            assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
            assert_eq!(
                seen,
                &body[..passed],
                "chunks before the refusal pass unchanged"
            );
        }
    }
}

/// Splits `body` into chunks whose sizes cycle through `sizes` (one chunk
/// when there are none); empty chunks are kept.
fn split<'a>(body: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    if sizes.is_empty() || sizes.iter().all(|s| *s == 0) {
        return vec![body];
    }
    let mut out = Vec::new();
    let mut rest = body;
    for size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at((*size).min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// The end offset (exclusive) of the first frame header whose length
/// exceeds `limit`, reading the body as back-to-back gRPC frames.
fn reference(body: &[u8], limit: usize) -> Option<usize> {
    let mut at = 0;
    while at + 5 <= body.len() {
        let len =
            u32::from_be_bytes([body[at + 1], body[at + 2], body[at + 3], body[at + 4]]) as usize;
        if len > limit {
            return Some(at + 5);
        }
        at += 5 + len;
    }
    None
}
