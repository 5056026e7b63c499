//! The oversized attack: request bodies over the server's limit (a REST
//! body announced by `Content-Length` or sent chunked; a native gRPC
//! message whose length prefix announces 100 MB while the body stalls),
//! counted by the status the server answers with, or how the call failed.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{BufMut as _, Bytes, BytesMut};
use http::{HeaderMap, Request};
use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::{Instant, timeout_at};

use super::config::Kind;
use super::raw_conn::{connect, send_and_watch};
use super::run::Ctx;
use super::tally::Tallies;

const OVERSIZED: [&str; 3] = ["rest-content-length", "rest-chunked", "grpc-length-prefix"];

pub(super) async fn oversized_attacker(ctx: Arc<Ctx>, index: usize) -> Tallies {
    let mut tallies = Tallies::default();
    let mut n = index;
    while ctx.running() {
        let flavour = OVERSIZED[n % OVERSIZED.len()];
        n += 1;
        let until = (Instant::now() + ctx.cfg.attempt_timeout).min(ctx.give_up);
        let tally = tallies.of(Kind::Oversized, flavour);
        if flavour == "grpc-length-prefix" {
            let key = grpc_oversized(&ctx, until).await;
            tally.attempts += 1;
            tally.add(key, 1);
        } else {
            let chunks = rest_oversized(&ctx, flavour == "rest-chunked");
            let ending = send_and_watch(ctx.dial, chunks, until, true).await;
            tally.record(&ending);
        }
    }
    tallies
}

/// A REST issue with a body of `oversized_bytes`, announced by
/// `Content-Length` or sent chunked, in 64 KiB pieces.
fn rest_oversized(ctx: &Ctx, chunked: bool) -> Vec<Bytes> {
    let size = ctx.cfg.oversized_bytes;
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {size}")
    };
    let head = format!(
        "POST {}/identity/v1/token/issue HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nConnection: close\r\n{framing}\r\n\r\n",
        ctx.prefix, ctx.authority
    );
    let mut chunks = vec![Bytes::from(head)];
    let piece = Bytes::from(vec![b' '; 64 * 1024]);
    let mut left = size;
    while left > 0 {
        let n = left.min(piece.len());
        if chunked {
            let mut c = BytesMut::with_capacity(n + 16);
            c.put_slice(format!("{n:x}\r\n").as_bytes());
            c.put_slice(&piece[..n]);
            c.put_slice(b"\r\n");
            chunks.push(c.freeze());
        } else {
            chunks.push(piece.slice(..n));
        }
        left -= n;
    }
    if chunked {
        chunks.push(Bytes::from_static(b"0\r\n\r\n"));
    }
    chunks
}

/// A request body that sends one chunk and then stalls forever.
struct StallBody(Option<Bytes>);

impl Body for StallBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.0.take() {
            Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
            // Never woken: the stream ends when the server answers or the
            // connection is dropped.
            None => Poll::Pending,
        }
    }
}

/// A native gRPC issue whose 5-byte prefix announces a 100 MB message, with
/// 16 KiB of it sent; the answer's gRPC status (or what went wrong).
async fn grpc_oversized(ctx: &Ctx, until: Instant) -> String {
    let Some(stream) = connect(ctx.dial, until).await else {
        return "connect failed".into();
    };
    let handshake =
        http2::Builder::new(TokioExecutor::new()).handshake::<_, StallBody>(TokioIo::new(stream));
    let (mut sender, conn) = match timeout_at(until, handshake).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return format!("HTTP/2 handshake failed: {e}"),
        Err(_) => return "no HTTP/2 handshake in time".into(),
    };
    let conn = tokio::spawn(async move { drop(conn.await) });
    let key = grpc_oversized_call(ctx, &mut sender, until).await;
    conn.abort();
    key
}

async fn grpc_oversized_call(
    ctx: &Ctx,
    sender: &mut http2::SendRequest<StallBody>,
    until: Instant,
) -> String {
    let mut first = BytesMut::with_capacity(5 + 16 * 1024);
    first.put_u8(0);
    first.put_u32(100_000_000);
    first.put_bytes(0x0a, 16 * 1024);
    let request = Request::post(ctx.uri("/spaceone.api.identity.v1.Token/issue"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .body(StallBody(Some(first.freeze())));
    let request = match request {
        Ok(r) => r,
        Err(e) => return format!("bad request: {e}"),
    };
    let response = match timeout_at(until, sender.send_request(request)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return format!("transport error: {e}"),
        Err(_) => return "no answer in time".into(),
    };
    let (parts, body) = response.into_parts();
    let trailers = match timeout_at(until, body.collect()).await {
        Ok(Ok(collected)) => collected.trailers().cloned(),
        Ok(Err(_)) | Err(_) => None,
    };
    grpc_outcome(parts.status, &parts.headers, trailers.as_ref())
}

fn grpc_outcome(
    status: http::StatusCode,
    headers: &HeaderMap,
    trailers: Option<&HeaderMap>,
) -> String {
    if status != http::StatusCode::OK {
        return format!("HTTP {}", status.as_u16());
    }
    let code = headers
        .get("grpc-status")
        .or_else(|| trailers.and_then(|t| t.get("grpc-status")))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    match code {
        Some(c) => format!("grpc {}", crate::wire::grpc_code_name(c)),
        None => "no grpc-status".into(),
    }
}
