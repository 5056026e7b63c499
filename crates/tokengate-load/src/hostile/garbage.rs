//! The garbage attack: each attacker opens one connection at a time, sends
//! malformed input (random bytes; the HTTP/2 preface, then frames with
//! valid 9-byte headers but random type, flags, stream and payload;
//! HTTP/1.1 requests with too many, oversized or junk headers) and counts
//! how the server reacted. The bytes come from a seeded generator, so the
//! same seed sends the same garbage.

use std::sync::Arc;

use bytes::{BufMut as _, Bytes, BytesMut};
use tokio::time::Instant;

use super::config::Kind;
use super::raw_conn::send_and_watch;
use super::raw_h2::{PREFACE, SETTINGS, put_frame};
use super::run::Ctx;
use super::tally::Tallies;

/// The garbage flavours, tried in turn by each garbage attacker.
const GARBAGE: [&str; 6] = [
    "random-bytes",
    "h2-random-frames",
    "h1-100-headers",
    "h1-64k-header",
    "h1-1m-header",
    "h1-junk-request-line",
];

/// A small deterministic generator (SplitMix64) for the garbage.
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64, stream: u64) -> Self {
        Self(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

pub(super) async fn garbage_attacker(ctx: Arc<Ctx>, mut rng: Rng) -> Tallies {
    let mut tallies = Tallies::default();
    let mut n = rng.below(GARBAGE.len() as u64) as usize;
    while ctx.running() {
        let flavour = GARBAGE[n % GARBAGE.len()];
        n += 1;
        let chunks = garbage_bytes(flavour, &ctx.authority, &mut rng);
        let until = (Instant::now() + ctx.cfg.attempt_timeout).min(ctx.give_up);
        let ending = send_and_watch(ctx.dial, chunks, until, false).await;
        tallies.of(Kind::Garbage, flavour).record(&ending);
    }
    tallies
}

fn garbage_bytes(flavour: &str, authority: &str, rng: &mut Rng) -> Vec<Bytes> {
    let request = |extra: &[u8]| {
        let mut r = format!("GET /healthz HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n")
            .into_bytes();
        r.extend_from_slice(extra);
        r.extend_from_slice(b"\r\n");
        r
    };
    let bytes = match flavour {
        "random-bytes" => {
            let len = 1 + rng.below(4096) as usize;
            rng.bytes(len)
        }
        "h2-random-frames" => random_h2_frames(rng).to_vec(),
        "h1-100-headers" => request(
            &(0..100)
                .flat_map(|i| format!("X-Junk-{i}: {}\r\n", rng.next_u64()).into_bytes())
                .collect::<Vec<u8>>(),
        ),
        "h1-64k-header" => request(&big_header(64 * 1024)),
        "h1-1m-header" => request(&big_header(1 << 20)),
        _ => {
            let len = 1 + rng.below(200) as usize;
            let mut line = rng.bytes(len);
            line.retain(|b| *b != b'\n');
            line.extend_from_slice(b" /\x00\xff HTTP/9.9\r\nHost: \x01\r\n\r\n");
            line
        }
    };
    // Big requests go out in pieces, so the server can answer midway.
    bytes
        .chunks(64 * 1024)
        .map(Bytes::copy_from_slice)
        .collect()
}

fn big_header(len: usize) -> Vec<u8> {
    let mut h = b"X-Big: ".to_vec();
    h.resize(7 + len, b'a');
    h.extend_from_slice(b"\r\n");
    h
}

/// The client preface, an empty SETTINGS frame, then 1..=8 frames with
/// valid 9-byte headers and random type, flags, stream id and payload.
fn random_h2_frames(rng: &mut Rng) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_slice(PREFACE);
    put_frame(&mut buf, SETTINGS, 0, 0, &[]);
    for _ in 0..1 + rng.below(8) {
        let kind = rng.below(12) as u8;
        let flags = rng.next_u64() as u8;
        let stream = match rng.below(4) {
            0 => 0,
            1 => 1,
            2 => 1 + 2 * rng.below(100) as u32,
            _ => rng.next_u64() as u32,
        };
        let len = rng.below(65) as usize;
        let payload = rng.bytes(len);
        put_frame(&mut buf, kind, flags, stream, &payload);
    }
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostile::raw_h2::H2Frame;

    #[test]
    fn garbage_is_deterministic_and_bounded() {
        let mut a = Rng::new(7, 1);
        let mut b = Rng::new(7, 1);
        for flavour in GARBAGE {
            let x = garbage_bytes(flavour, "127.0.0.1:1", &mut a);
            let y = garbage_bytes(flavour, "127.0.0.1:1", &mut b);
            assert_eq!(x, y, "{flavour}");
            assert!(x.iter().all(|c| c.len() <= 64 * 1024));
        }
        let frames = random_h2_frames(&mut a);
        assert!(frames.starts_with(PREFACE));
        let mut rest = BytesMut::from(&frames[PREFACE.len()..]);
        let mut n = 0;
        while H2Frame::parse(&mut rest).is_some() {
            n += 1;
        }
        assert!(rest.is_empty() && (2..=9).contains(&n), "{n} whole frames");
    }
}
