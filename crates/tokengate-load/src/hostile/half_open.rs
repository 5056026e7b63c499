//! The half-open attack: connections that send part of a request (or
//! nothing) and then stall, holding whatever the server set aside for
//! them. Each slot keeps one such connection and opens the next when the
//! server closes it; [`HalfOpen`] names what is sent.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};

use super::config::Kind;
use super::raw_conn::send_and_watch;
use super::raw_h2::{PREFACE, SETTINGS, put_frame};
use super::reply::End;
use super::run::{Ctx, pause};
use super::tally::Tallies;

/// What a half-open connection sends before it stalls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum HalfOpen {
    /// Nothing at all.
    Silent,
    /// HTTP/1.1 request headers without the final empty line.
    PartialHeaders,
    /// HTTP/1.1 request headers of ~300 KiB (30 headers of 10 KiB) without
    /// the final empty line: what a stalled request may make the server
    /// buffer.
    BigPartialHeaders,
    /// The HTTP/2 client preface and an empty SETTINGS frame.
    H2Preface,
    /// A REST POST announcing 1000 body bytes and sending 10.
    PartialBody,
    /// The same with `grpc-timeout: 99999999S`, a deadline of ~3 years
    /// (tokengate honours `grpc-timeout` on every protocol).
    PartialBodyLongDeadline,
}

impl HalfOpen {
    /// The flavour name in the report.
    pub fn name(self) -> &'static str {
        match self {
            HalfOpen::Silent => "silent",
            HalfOpen::PartialHeaders => "partial-headers",
            HalfOpen::BigPartialHeaders => "big-partial-headers",
            HalfOpen::H2Preface => "h2-preface",
            HalfOpen::PartialBody => "partial-body",
            HalfOpen::PartialBodyLongDeadline => "partial-body-long-deadline",
        }
    }

    /// Every flavour.
    pub const ALL: [HalfOpen; 6] = [
        HalfOpen::Silent,
        HalfOpen::PartialHeaders,
        HalfOpen::BigPartialHeaders,
        HalfOpen::H2Preface,
        HalfOpen::PartialBody,
        HalfOpen::PartialBodyLongDeadline,
    ];
}

pub(super) async fn half_open_slot(ctx: Arc<Ctx>, kind: HalfOpen) -> Tallies {
    let mut tallies = Tallies::default();
    let bytes = half_open_bytes(kind, &ctx.authority, &ctx.prefix);
    while ctx.running() {
        let ending = send_and_watch(ctx.dial, vec![bytes.clone()], ctx.give_up, false).await;
        tallies.of(Kind::HalfOpen, kind.name()).record(&ending);
        if ending.end == End::ConnectFailed {
            pause(&ctx, Duration::from_millis(100)).await;
        }
    }
    tallies
}

fn half_open_bytes(kind: HalfOpen, authority: &str, prefix: &str) -> Bytes {
    let post = |extra: &str| {
        format!(
            "POST {prefix}/identity/v1/token/issue HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n{extra}Content-Length: 1000\r\n\r\n{{\"domain_i"
        )
    };
    match kind {
        HalfOpen::Silent => Bytes::new(),
        HalfOpen::PartialHeaders => Bytes::from(format!(
            "POST {prefix}/identity/v1/token/issue HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n"
        )),
        HalfOpen::BigPartialHeaders => {
            let mut head =
                format!("POST {prefix}/identity/v1/token/issue HTTP/1.1\r\nHost: {authority}\r\n")
                    .into_bytes();
            for i in 0..30 {
                head.extend_from_slice(format!("X-Pad-{i}: ").as_bytes());
                head.resize(head.len() + 10 * 1024, b'a');
                head.extend_from_slice(b"\r\n");
            }
            Bytes::from(head)
        }
        HalfOpen::H2Preface => {
            let mut buf = BytesMut::new();
            buf.put_slice(PREFACE);
            put_frame(&mut buf, SETTINGS, 0, 0, &[]);
            buf.freeze()
        }
        HalfOpen::PartialBody => Bytes::from(post("")),
        HalfOpen::PartialBodyLongDeadline => Bytes::from(post("grpc-timeout: 99999999S\r\n")),
    }
}
