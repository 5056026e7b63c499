//! What the calls speak: the protocol ([`Protocol`]: native gRPC, gRPC-Web
//! binary or text, REST) and the HTTP version of the connections
//! ([`HttpVersion`]). Shared by the load run, the wire format, the
//! connections and the hostile traffic.

/// The protocol calls are made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    /// Native gRPC (`application/grpc`), always HTTP/2 with prior knowledge (h2c).
    Grpc,
    /// Binary gRPC-Web (`application/grpc-web+proto`).
    GrpcWeb,
    /// Text gRPC-Web (`application/grpc-web-text`, base64 bodies).
    GrpcWebText,
    /// REST/JSON routes of the `google.api.http` annotations.
    Rest,
}

impl Protocol {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::GrpcWeb => "grpc-web",
            Protocol::GrpcWebText => "grpc-web-text",
            Protocol::Rest => "rest",
        }
    }

    /// HTTP/2 for gRPC and gRPC-Web, HTTP/1.1 for REST.
    pub fn default_http(self) -> HttpVersion {
        match self {
            Protocol::Rest => HttpVersion::H1,
            _ => HttpVersion::H2,
        }
    }
}

/// The HTTP version of the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.1: one connection per call in flight, no pipelining.
    H1,
    /// HTTP/2 with prior knowledge (h2c): one connection per worker, calls
    /// multiplexed as streams.
    H2,
}

impl HttpVersion {
    /// `1.1` or `2`.
    pub fn name(self) -> &'static str {
        match self {
            HttpVersion::H1 => "1.1",
            HttpVersion::H2 => "2",
        }
    }
}
