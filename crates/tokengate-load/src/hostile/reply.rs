//! What the server did to one connection, as the attacker saw it: how the
//! connection ended ([`End`]), what the server said first ([`Reply`],
//! classified from the raw bytes), and both with the time it took
//! (`Ending`), which is what the tallies count.

use std::fmt;
use std::time::Duration;

use bytes::BytesMut;

use super::raw_h2::H2Frame;

/// How a connection ended, from the attacker's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The server closed it (EOF).
    Closed,
    /// The server reset it (RST), or reading failed otherwise.
    Reset,
    /// Still open when the attacker stopped waiting.
    StillOpen,
    /// The attacker closed it after reading the answer.
    Answered,
    /// The TCP connect failed.
    ConnectFailed,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            End::Closed => "closed",
            End::Reset => "reset",
            End::StillOpen => "still open",
            End::Answered => "answered",
            End::ConnectFailed => "connect failed",
        })
    }
}

/// What the server said before the connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Nothing.
    Nothing,
    /// An HTTP/1.1 status line.
    Http(u16),
    /// HTTP/2 frames, the first GOAWAY's error code if any.
    H2 {
        /// The error code of the first GOAWAY.
        goaway: Option<u32>,
    },
    /// Bytes that are neither.
    Other,
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Nothing => f.write_str("no answer"),
            Reply::Http(status) => write!(f, "HTTP {status}"),
            Reply::H2 { goaway: Some(code) } => write!(f, "GOAWAY {}", h2_error_name(*code)),
            Reply::H2 { goaway: None } => f.write_str("HTTP/2 frames, no GOAWAY"),
            Reply::Other => f.write_str("unrecognised bytes"),
        }
    }
}

/// The outcome of one connection.
#[derive(Debug, Clone)]
pub(super) struct Ending {
    pub(super) reply: Reply,
    pub(super) end: End,
    pub(super) after: Duration,
}

impl Ending {
    pub(super) fn key(&self) -> String {
        format!("{}, {}", self.reply, self.end)
    }

    pub(super) fn server_ended(&self) -> bool {
        matches!(self.end, End::Closed | End::Reset)
    }
}

/// HTTP/2 error code names (RFC 9113 §7).
pub fn h2_error_name(code: u32) -> String {
    const NAMES: [&str; 14] = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    NAMES
        .get(code as usize)
        .map_or_else(|| format!("0x{code:x}"), |n| (*n).to_owned())
}

/// What the server's first bytes were: an HTTP/1.1 status line, HTTP/2
/// frames (with the first GOAWAY's code), or something else.
pub fn classify(bytes: &[u8]) -> Reply {
    if bytes.is_empty() {
        return Reply::Nothing;
    }
    if let Some(status) = http1_status(bytes) {
        return Reply::Http(status);
    }
    let mut buf = BytesMut::from(bytes);
    let mut frames = 0;
    while let Some(frame) = H2Frame::parse(&mut buf) {
        frames += 1;
        if let Some(code) = frame.goaway_code() {
            return Reply::H2 { goaway: Some(code) };
        }
    }
    // A server SETTINGS frame is at least 9 bytes; partial tails are fine.
    if frames > 0 {
        Reply::H2 { goaway: None }
    } else {
        Reply::Other
    }
}

pub(super) fn http1_status(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"HTTP/1.")?;
    let code = rest.get(2..5)?;
    std::str::from_utf8(code).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostile::raw_h2::{GOAWAY, SETTINGS, put_frame};

    #[test]
    fn replies_are_classified() {
        assert_eq!(classify(b""), Reply::Nothing);
        assert_eq!(
            classify(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            Reply::Http(431)
        );
        let mut buf = BytesMut::new();
        put_frame(&mut buf, SETTINGS, 0, 0, &[0, 3, 0, 0, 1, 0]);
        put_frame(&mut buf, GOAWAY, 0, 0, &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(classify(&buf), Reply::H2 { goaway: Some(1) });
        assert_eq!(
            Reply::H2 { goaway: Some(11) }.to_string(),
            "GOAWAY ENHANCE_YOUR_CALM"
        );
        let mut buf = BytesMut::new();
        put_frame(&mut buf, SETTINGS, 0, 0, &[]);
        assert_eq!(classify(&buf), Reply::H2 { goaway: None });
        assert_eq!(classify(b"\xff\xff"), Reply::Other);
        assert_eq!(h2_error_name(99), "0x63");
    }
}
