//! The settings of a hostile run: which kinds of attack, how many attackers
//! of each, for how long and from which address; and the bounds
//! [`HostileConfig::validate`] holds them to, so that a run cannot take the
//! machine it runs on down with the server.

use std::net::IpAddr;
use std::time::Duration;

use super::error::HostileError;
use super::half_open::HalfOpen;
use super::streams::StreamAttack;

/// The kinds of attack, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Malformed bytes, frames and headers.
    Garbage,
    /// Stalled partial requests.
    HalfOpen,
    /// Bodies and messages over the limit.
    Oversized,
    /// Too many streams, rapid reset.
    Streams,
    /// A connection flood.
    Connections,
}

impl Kind {
    /// The kind name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Garbage => "garbage",
            Kind::HalfOpen => "half-open",
            Kind::Oversized => "oversized",
            Kind::Streams => "streams",
            Kind::Connections => "connections",
        }
    }
}

/// Upper bound of the connections a run may hold at once.
pub const MAX_HELD_CONNECTIONS: usize = 16_384;
/// Upper bound of the tasks of the garbage, oversized and streams attackers.
pub const MAX_ATTACKERS: usize = 64;

/// Everything a hostile run needs. Zero attackers of a kind turns it off.
#[derive(Debug, Clone)]
pub struct HostileConfig {
    /// `http://host:port[/prefix]` on loopback; the only place connections go.
    pub target: String,
    /// How long attacks are started.
    pub duration: Duration,
    /// After `duration`, how long connections still open may take to be
    /// closed by the server before they are counted as still open.
    pub drain: Duration,
    /// A garbage attempt waits at most this long for the server to react.
    pub attempt_timeout: Duration,
    /// `domain_id` of the calls the stream attacks make.
    pub domain: String,
    /// Garbage attackers (each one connection at a time).
    pub garbage: usize,
    /// Half-open connections held at once.
    pub half_open: usize,
    /// What the half-open connections send, spread evenly over the slots.
    pub half_open_kinds: Vec<HalfOpen>,
    /// Oversized-body attackers.
    pub oversized: usize,
    /// Size of the oversized REST bodies.
    pub oversized_bytes: usize,
    /// Stream attackers (each one HTTP/2 connection at a time).
    pub streams: usize,
    /// Streams opened at once per connection by the stream attacks.
    pub streams_per_connection: usize,
    /// What the stream attackers do, in turn.
    pub stream_kinds: Vec<StreamAttack>,
    /// Streams opened and cancelled per rapid-reset connection, at most.
    pub rapid_reset_streams: usize,
    /// TCP connections of the flood, opened at once and held.
    pub connections: usize,
    /// The local address every attack connects from (e.g. 127.0.0.2, so
    /// the server can tell the attacker from honest clients on 127.0.0.1);
    /// the kernel's choice when None.
    pub source: Option<IpAddr>,
    /// The server's PID, to sample its memory (Linux `/proc`).
    pub server_pid: Option<u32>,
    /// Seed of the random garbage.
    pub seed: u64,
}

impl HostileConfig {
    /// The defaults of the command line: 10 s, 2 garbage attackers, 200
    /// half-open connections, 2 oversized attackers, 1 stream attacker with
    /// 1,000 streams, a flood of 1,000 connections.
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            duration: Duration::from_secs(10),
            drain: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(10),
            domain: "domain-dev".into(),
            garbage: 2,
            half_open: 200,
            half_open_kinds: HalfOpen::ALL.to_vec(),
            oversized: 2,
            oversized_bytes: 2 << 20,
            streams: 1,
            streams_per_connection: 1000,
            stream_kinds: StreamAttack::ALL.to_vec(),
            rapid_reset_streams: 20_000,
            connections: 1000,
            source: None,
            server_pid: None,
            seed: 1,
        }
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<(), HostileError> {
        let bad = |m: &str| Err(HostileError::Config(m.to_owned()));
        if self.duration.is_zero() || self.duration.as_secs_f64() > crate::config::MAX_SECONDS {
            return bad("--duration must be > 0 and at most 24 h");
        }
        if self.drain.as_secs_f64() > 3600.0 || self.attempt_timeout.is_zero() {
            return bad("--drain must be at most 1 h and --attempt-timeout > 0");
        }
        if [self.garbage, self.oversized, self.streams]
            .iter()
            .any(|&n| n > MAX_ATTACKERS)
        {
            return bad("--garbage, --oversized and --streams are at most 64 each");
        }
        if self.half_open.saturating_add(self.connections) > MAX_HELD_CONNECTIONS {
            return bad("--half-open + --connections must be at most 16384");
        }
        if self.half_open > 0 && self.half_open_kinds.is_empty() {
            return bad("--half-open-kinds must name at least one kind");
        }
        if self.streams > 0 && self.stream_kinds.is_empty() {
            return bad("--stream-kinds must name at least one kind");
        }
        if !(1..=10_000).contains(&self.streams_per_connection)
            || !(1..=1_000_000).contains(&self.rapid_reset_streams)
        {
            return bad("--streams-per-connection is 1..=10000, --rapid-reset-streams 1..=1000000");
        }
        if !(1..=(256 << 20)).contains(&self.oversized_bytes) {
            return bad("--oversized-bytes is 1..=256 MiB");
        }
        if self.domain.is_empty() {
            return bad("--domain must not be empty");
        }
        if self.source.is_some_and(|ip| !ip.is_loopback()) {
            return bad("--source must be a loopback address (127.0.0.0/8 or ::1)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_bounds() {
        let mut c = HostileConfig::new("http://127.0.0.1:1");
        assert!(c.validate().is_ok());
        c.connections = MAX_HELD_CONNECTIONS;
        assert!(c.validate().is_err());
        c.connections = 0;
        c.half_open_kinds.clear();
        assert!(c.validate().is_err());
        c.half_open = 0;
        assert!(c.validate().is_ok());
    }
}
