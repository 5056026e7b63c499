//! HTTP/2 by hand, for what hyper's client will not send: frames written
//! byte by byte (header blocks as HPACK literals: no Huffman coding, no
//! table), frames parsed off the wire, and `RawH2`, a client connection
//! that does the preface and SETTINGS exchange, then reads frame by frame.

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::{Instant, timeout_at};

use super::raw_conn::connect;
use super::reply::End;
use crate::target::Dial;

pub(super) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub(super) const DATA: u8 = 0x0;
pub(super) const HEADERS: u8 = 0x1;
pub(super) const RST_STREAM: u8 = 0x3;
pub(super) const SETTINGS: u8 = 0x4;
pub(super) const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
pub(super) const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
pub(super) const END_HEADERS: u8 = 0x4;

/// Appends one frame: 24-bit length, type, flags, 31-bit stream id, payload.
pub(super) fn put_frame(buf: &mut BytesMut, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = (payload.len() as u32).min(0x00FF_FFFF);
    buf.put_slice(&len.to_be_bytes()[1..]);
    buf.put_u8(kind);
    buf.put_u8(flags);
    buf.put_u32(stream & 0x7FFF_FFFF);
    buf.put_slice(&payload[..len as usize]);
}

/// HPACK "literal header field without indexing — new name", no Huffman.
pub(super) fn hpack_literal(buf: &mut BytesMut, name: &[u8], value: &[u8]) {
    buf.put_u8(0);
    hpack_int(buf, name.len());
    buf.put_slice(name);
    hpack_int(buf, value.len());
    buf.put_slice(value);
}

/// An HPACK integer with a 7-bit prefix (a string length, H bit 0).
fn hpack_int(buf: &mut BytesMut, mut v: usize) {
    const MAX: usize = 127;
    if v < MAX {
        buf.put_u8(v as u8);
        return;
    }
    buf.put_u8(MAX as u8);
    v -= MAX;
    while v >= 128 {
        buf.put_u8((v % 128 + 128) as u8);
        v /= 128;
    }
    buf.put_u8(v as u8);
}

/// One HTTP/2 frame read off the wire.
#[derive(Debug)]
pub(super) struct H2Frame {
    pub(super) kind: u8,
    pub(super) flags: u8,
    pub(super) stream: u32,
    pub(super) payload: Bytes,
}

impl H2Frame {
    /// Takes one whole frame off the front of `buf`, if there is one.
    pub(super) fn parse(buf: &mut BytesMut) -> Option<Self> {
        if buf.len() < 9 {
            return None;
        }
        let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
        if buf.len() < 9 + len {
            return None;
        }
        let mut head = buf.split_to(9);
        let _ = head.split_to(3);
        let kind = head.get_u8();
        let flags = head.get_u8();
        let stream = head.get_u32() & 0x7FFF_FFFF;
        let payload = buf.split_to(len).freeze();
        Some(Self {
            kind,
            flags,
            stream,
            payload,
        })
    }

    /// The error code of a GOAWAY frame.
    pub(super) fn goaway_code(&self) -> Option<u32> {
        (self.kind == GOAWAY && self.payload.len() >= 8).then(|| {
            let mut p = self.payload.slice(4..8);
            p.get_u32()
        })
    }
}

/// A hand-driven HTTP/2 client connection: the preface with large windows,
/// the server's SETTINGS acknowledged, then frames read one by one.
pub(super) struct RawH2 {
    rd: OwnedReadHalf,
    pub(super) wr: OwnedWriteHalf,
    buf: BytesMut,
}

impl RawH2 {
    pub(super) async fn open(dial: Dial, until: Instant) -> Result<Self, End> {
        let stream = connect(dial, until).await.ok_or(End::ConnectFailed)?;
        let (rd, wr) = stream.into_split();
        let mut conn = Self {
            rd,
            wr,
            buf: BytesMut::with_capacity(64 * 1024),
        };
        let mut hello = BytesMut::new();
        hello.put_slice(PREFACE);
        // SETTINGS_ENABLE_PUSH = 0, SETTINGS_INITIAL_WINDOW_SIZE = 16 MiB.
        let mut settings = BytesMut::new();
        settings.put_u16(0x2);
        settings.put_u32(0);
        settings.put_u16(0x4);
        settings.put_u32(16 << 20);
        put_frame(&mut hello, SETTINGS, 0, 0, &settings);
        put_frame(&mut hello, WINDOW_UPDATE, 0, 0, &(1u32 << 30).to_be_bytes());
        conn.wr.write_all(&hello).await.map_err(|_| End::Reset)?;
        // The server's limits apply once its SETTINGS are acknowledged.
        loop {
            let f = conn.next_frame(until).await?;
            if f.kind == SETTINGS && f.flags & ACK == 0 {
                let mut ack = BytesMut::new();
                put_frame(&mut ack, SETTINGS, ACK, 0, &[]);
                conn.wr.write_all(&ack).await.map_err(|_| End::Reset)?;
                return Ok(conn);
            }
        }
    }

    /// The next frame; `Err(StillOpen)` when `until` passes first.
    pub(super) async fn next_frame(&mut self, until: Instant) -> Result<H2Frame, End> {
        loop {
            if let Some(f) = H2Frame::parse(&mut self.buf) {
                return Ok(f);
            }
            match timeout_at(until, self.rd.read_buf(&mut self.buf)).await {
                Err(_) => return Err(End::StillOpen),
                Ok(Ok(0)) => return Err(End::Closed),
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return Err(End::Reset),
            }
        }
    }

    /// Reads until the server ends the connection or `until` passes.
    pub(super) async fn finish(&mut self, until: Instant) -> End {
        loop {
            if let Err(end) = self.next_frame(until).await {
                return end;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = BytesMut::new();
        put_frame(&mut buf, HEADERS, END_HEADERS, 5, b"abc");
        put_frame(&mut buf, RST_STREAM, 0, 5, &8u32.to_be_bytes());
        buf.put_slice(&[0, 0]); // a partial next frame
        let f = H2Frame::parse(&mut buf).expect("headers");
        assert_eq!(
            (f.kind, f.flags, f.stream, &f.payload[..]),
            (HEADERS, END_HEADERS, 5, &b"abc"[..])
        );
        let f = H2Frame::parse(&mut buf).expect("rst");
        assert_eq!(f.payload.clone().get_u32(), 8);
        assert!(H2Frame::parse(&mut buf).is_none());
    }

    #[test]
    fn hpack_lengths() {
        let mut buf = BytesMut::new();
        hpack_int(&mut buf, 10);
        hpack_int(&mut buf, 127);
        hpack_int(&mut buf, 1337);
        // RFC 7541 C.1 gives 1337 with a 5-bit prefix; with 7 bits:
        // 127, then 1210 = 0b1001_0111010 -> 0xBA 0x09.
        assert_eq!(&buf[..], &[10, 127, 0, 127, 0xBA, 0x09]);
    }
}
