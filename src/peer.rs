//! Facts about the client of a request, known by the server and read by the
//! layers and transports: its address and where its protocol faults are
//! counted. A leaf module (like tonic's `Connected`): it depends on nothing
//! else in the crate, so every layer may use it without depending on the
//! server that fills it in.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// What a client did wrong; each is counted against its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFault {
    /// An HTTP/1.1 request head hyper could not parse (answered 400).
    MalformedRequest,
    /// An HTTP/1.1 request head past the 32 KiB cap (answered 431).
    RequestHeadTooLarge,
    /// A body or gRPC message past `limits.max_body_bytes`.
    BodyTooLarge,
    /// An HTTP/2 connection closed with GOAWAY for the client's errors
    /// (protocol errors, too many streams reset for its errors).
    Http2ProtocolError,
}

impl ClientFault {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientFault::MalformedRequest => "malformed_request",
            ClientFault::RequestHeadTooLarge => "request_head_too_large",
            ClientFault::BodyTooLarge => "body_too_large",
            ClientFault::Http2ProtocolError => "http2_protocol_error",
        }
    }
}

/// Where protocol faults are counted (the server's per-source throttle).
pub trait FaultSink: Send + Sync + 'static {
    /// Counts `fault` against the client at `ip`.
    fn report(&self, ip: IpAddr, fault: ClientFault);
}

/// The client at the other end of a request's connection, in every
/// request's extensions: its address (per-IP limits) and where its protocol
/// faults are counted (the body limits report theirs).
#[derive(Clone)]
pub struct Peer {
    addr: SocketAddr,
    faults: Arc<dyn FaultSink>,
}

impl Peer {
    /// The client at `addr`, its faults counted by `faults`.
    pub fn new(addr: SocketAddr, faults: Arc<dyn FaultSink>) -> Self {
        Self { addr, faults }
    }

    /// The client's TCP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counts `fault` against this client's address.
    pub fn report(&self, fault: ClientFault) {
        self.faults.report(self.addr.ip(), fault);
    }

    /// Counts `fault` against the client of the request carrying
    /// `extensions`, if it came through the server (tests may call layers
    /// without one).
    pub fn report_for(extensions: &http::Extensions, fault: ClientFault) {
        if let Some(peer) = extensions.get::<Peer>() {
            peer.report(fault);
        }
    }
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}
